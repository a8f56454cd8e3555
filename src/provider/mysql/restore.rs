//! Restoring MySQL/MariaDB. The dump is loaded once, into a scratch database, and counted there:
//! a dump that cannot load on this server as this user (a DEFINER it may not name, a row over
//! `max_allowed_packet`) fails before the safety backup, with the target untouched. The commit
//! then moves the tables in: one `RENAME TABLE` takes the target's tables out to a database of
//! their own and the loaded ones in, all at once. Views, triggers, routines and events do not
//! move with their tables (see `objects`): the target's own are dropped just before that
//! statement and the backup's made just after it — the one stretch of a restore that is not
//! all-or-nothing. `verify --deep` loads into a scratch database and drops it.

use super::objects::{self, Named, Object};
use super::{Mysql, ident, literal};
use crate::error::{Error, Kind, Result};
use crate::format::Format;
use crate::pipeline::TailReader;
use crate::provider::tool::{feed, random_suffix, scratch_stem};
use crate::provider::{
    CommitFailed, CommitOptions, Committed, Inspection, Provider, Replaced, Source, Staged, Tables,
};
use crate::scratch::{self, Claim, Purpose};

impl Mysql {
    /// Loads a dump into `db` with the client, which stops at the first failing statement.
    /// The client's own packet limit is raised; the server's `max_allowed_packet` still applies.
    fn load(&self, db: &str, source: Source<'_>) -> Result<()> {
        let tools = self.tools()?;
        let mut cmd = self.command(&tools.client, tools.mariadb_client);
        cmd.arg("--max-allowed-packet=1G")
            .arg(format!("--database={db}"));
        feed(cmd, source, "mysql").map_err(|e| {
            if e.one_line().contains("1227") || e.one_line().contains("SUPER") {
                e.add_hint("the dump names a DEFINER this user may not set; restore as a user with SET USER (or SUPER), or as the definer")
            } else if e.one_line().contains("max_allowed_packet") {
                e.add_hint("a row is larger than the server's max_allowed_packet; raise it on the server")
            } else {
                e
            }
        })
    }

    /// `CHARACTER SET … COLLATE …` of the target database, when it exists.
    fn charset_clause(&self) -> Result<String> {
        let rows = self.query_in(
            None,
            &format!(
                "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA \
                 WHERE SCHEMA_NAME = {}",
                literal(&self.conn.dbname)
            ),
        )?;
        Ok(match rows.first().map(Vec::as_slice) {
            Some([Some(cs), Some(co)]) => {
                format!(" CHARACTER SET {} COLLATE {}", ident(cs), ident(co))
            }
            _ => String::new(),
        })
    }

    /// Names of `db`'s tables, all but its views: base tables, sequences, system-versioned
    /// tables — whatever `RENAME TABLE` moves.
    fn tables_of(&self, db: &str) -> Result<Vec<String>> {
        self.query_in(
            None,
            &format!(
                "SELECT HEX(TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} \
                 AND TABLE_TYPE <> 'VIEW' ORDER BY TABLE_NAME",
                literal(db)
            ),
        )?
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .map(|h| {
            hex::decode(&h)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    Error::tool(format!(
                        "the server gave a table name that is not UTF-8: {h}"
                    ))
                })
        })
        .collect()
    }

    /// Ids of the other sessions using `db`.
    fn sessions_in(&self, db: &str) -> Result<Vec<String>> {
        Ok(self
            .query_in(
                None,
                &format!(
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = {} AND ID <> CONNECTION_ID() AND COMMAND <> 'Killed'",
                    literal(db)
                ),
            )?
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect())
    }
}

/// How many times (200 ms apart) a restore looks again before it takes the sessions using the
/// target for another client's.
const SESSION_SETTLE_TRIES: u32 = 10;

/// A database faber-db created for itself, recorded in the project's ledger and dropped when
/// this value goes, unless kept.
struct ScratchDb<'a> {
    my: &'a Mysql,
    name: String,
    /// Its record in the ledger, released once the database is gone.
    claim: Option<Claim>,
    keep: bool,
}

impl<'a> ScratchDb<'a> {
    /// Creates `<target>__faber_<purpose>_<random>` (the target's name cut to 30 bytes), recorded
    /// in the ledger first and marked right after (MariaDB keeps a database's comment; on a
    /// server without them it goes unmarked, and no sweep ever drops it), with the target's
    /// character set and collation when it exists.
    fn create(my: &'a Mysql, purpose: Purpose) -> Result<ScratchDb<'a>> {
        let name = format!(
            "{}__faber_{}_{}",
            scratch_stem(&my.conn.dbname),
            purpose.name_part(),
            random_suffix()
        );
        let claim = my.ledger()?.claim(&my.server_id(), purpose, &name)?;
        let charset = my.charset_clause()?;
        if let Err(e) = my.query_in(None, &format!("CREATE DATABASE {}{charset}", ident(&name))) {
            claim.release();
            return Err(e);
        }
        // The marker is plain ASCII (a hex token): a string literal as it is, which COMMENT
        // takes where an expression would not do.
        let _ = my.query_in(
            None,
            &format!(
                "ALTER DATABASE {} COMMENT = '{}'",
                ident(&name),
                scratch::marker(&claim.entry().token)
            ),
        );
        Ok(ScratchDb {
            my,
            name,
            claim: Some(claim),
            keep: false,
        })
    }

    /// Leaves it in place, recorded, for a human or a sweep (as its record allows); returns its
    /// name.
    fn keep(mut self) -> String {
        self.keep = true;
        self.name.clone()
    }

    /// Leaves it in place and hands over its record, held.
    fn into_parts(mut self) -> (String, Option<Claim>) {
        self.keep = true;
        (self.name.clone(), self.claim.take())
    }
}

impl Drop for ScratchDb<'_> {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        let dropped = self.my.query_in(
            None,
            &format!("DROP DATABASE IF EXISTS {}", ident(&self.name)),
        );
        // Not dropped: its record stays, for the next run's sweep.
        if dropped.is_ok()
            && let Some(claim) = self.claim.take()
        {
            claim.release();
        }
    }
}

/// Drops the scratch databases killed runs left on this server: those the project's ledger
/// records, whose runs are dead, that still carry their record's marker, that nobody uses, and —
/// for tables a restore set aside — whose safety backup was taken. Returns their names. Any
/// other database, whatever its name, is never touched. Without `drop`, only the records of
/// databases that are gone are forgotten.
pub(super) fn sweep(my: &Mysql, drop: bool) -> Result<scratch::Sweep> {
    let Some(ledger) = &my.ledger else {
        return Ok(scratch::Sweep::default());
    };
    let look = |name: &str| -> Result<Option<scratch::Seen>> {
        let exists = |sql: &str| my.query_in(None, &format!("{sql} = {}", literal(name)));
        // A server that keeps no database comments (Oracle MySQL) cannot show a marker: its
        // scratch databases are seen unmarked, and never dropped.
        let comment = match exists(
            "SELECT SCHEMA_COMMENT FROM information_schema.SCHEMATA WHERE SCHEMA_NAME",
        ) {
            Ok(rows) => match rows.into_iter().next() {
                None => return Ok(None),
                Some(row) => row.into_iter().next().flatten(),
            },
            Err(_) => {
                if exists("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME")?
                    .is_empty()
                {
                    return Ok(None);
                }
                None
            }
        };
        Ok(Some(scratch::Seen {
            comment,
            in_use: !my.sessions_in(name)?.is_empty(),
        }))
    };
    let drop_db = |name: &str| {
        my.query_in(None, &format!("DROP DATABASE IF EXISTS {}", ident(name)))
            .map(|_| ())
    };
    ledger.sweep(&my.server_id(), drop, look, drop_db)
}

pub(super) fn stage<'a>(
    my: &'a Mysql,
    format: Format,
    source: Source<'_>,
    migrations_table: Option<&str>,
) -> Result<Box<dyn Staged + 'a>> {
    if format != Format::Sql {
        return Err(Error::config(format!(
            "a {format} backup cannot be restored into MySQL"
        )));
    }
    let scratch = ScratchDb::create(my, Purpose::Restore)?;
    let unchanged = |e: Error| e.add_hint("the database was not changed");
    match source {
        Source::Stream(stream) => {
            let mut stream = crate::testpoint::PauseMidway::new(stream, "restore:during-load");
            my.load(&scratch.name, Source::Stream(&mut stream))
        }
        other => my.load(&scratch.name, other),
    }
    .map_err(unchanged)?;
    // Read now, and the triggers and events dropped from the scratch database: its tables can
    // then move, and its events do not run there meanwhile.
    let found = objects::read(my, &scratch.name).map_err(unchanged)?;
    let in_the_way = found
        .iter()
        .map(|o| &o.named)
        .filter(|n| matches!(n.kind, "TRIGGER" | "EVENT"));
    my.run_script(
        Some(&scratch.name),
        objects::drop_script(&scratch.name, in_the_way).as_bytes(),
    )
    .map_err(unchanged)?;
    let restored = found
        .into_iter()
        .map(|o| o.moved(&scratch.name, &my.conn.dbname))
        .collect();
    let tables = my.count_rows(&scratch.name).map_err(unchanged)?;
    Ok(Box::new(StagedMysql {
        scratch,
        restored,
        tables,
        migrations_table: migrations_table.map(str::to_string),
    }))
}

/// Loads a dump into a scratch database, counts its rows and drops it again.
pub(super) fn deep_check(
    my: &Mysql,
    format: Format,
    source: Source<'_>,
) -> Result<(String, Tables)> {
    if format != Format::Sql {
        return Err(Error::config(format!(
            "cannot load a {format} backup into MySQL"
        )));
    }
    let scratch = ScratchDb::create(my, Purpose::Verify)?;
    // A load that fails although the checksum matched says more about this server (a missing
    // user of a DEFINER, a privilege) than about the backup: the caller reports it as not
    // verified.
    let trailer_missing = match source {
        Source::Stream(stream) => {
            let mut tail = TailReader::new(stream);
            my.load(&scratch.name, Source::Stream(&mut tail))?;
            !tail.ends_with_marker(super::DUMP_TRAILER)
        }
        other => {
            my.load(&scratch.name, other)?;
            false
        }
    };
    crate::testpoint::pause("verify:deep-loaded");
    if trailer_missing {
        return Ok((
            "the dump's completion trailer is missing".to_string(),
            Tables::new(),
        ));
    }
    let tables = my.count_rows(&scratch.name)?;
    Ok(("ok".to_string(), tables))
}

struct StagedMysql<'a> {
    /// The loaded tables, without their triggers.
    scratch: ScratchDb<'a>,
    /// The backup's views, triggers, routines and events, to make in the target.
    restored: Vec<Object>,
    /// Row counts of the loaded tables: the very tables the commit moves into the target.
    tables: Tables,
    migrations_table: Option<String>,
}

impl Staged for StagedMysql<'_> {
    fn commit(self: Box<Self>, options: &CommitOptions) -> Result<Committed, CommitFailed> {
        let StagedMysql {
            scratch,
            restored,
            tables,
            migrations_table,
        } = *self;
        let my = scratch.my;
        let target = my.conn.dbname.clone();
        if options.terminate_connections {
            for id in my.sessions_in(&target)? {
                // A session that ended meanwhile is fine.
                let _ = my.query_in(None, &format!("KILL {}", id.parse::<u64>().unwrap_or(0)));
            }
        }
        // The sessions of the tools faber-db itself just ran (the safety backup's mysqldump,
        // the checks) can linger a moment after their clients exit, while the server closes
        // them: only a session still there after a short wait is someone else's.
        let mut others = my.sessions_in(&target)?;
        for _ in 0..SESSION_SETTLE_TRIES {
            if others.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
            others = my.sessions_in(&target)?;
        }
        if !others.is_empty() {
            return Err(Error::new(
                Kind::Busy,
                format!("{} other sessions are using {target}; nothing was restored", others.len()),
            )
            .with_hint("stop the application, or pass --terminate-connections to end its sessions, then restore again")
            .into());
        }
        let created = !my.exists()?;
        if created {
            my.query_in(None, &format!("CREATE DATABASE {}", ident(&target)))?;
        }
        let (old, leftover, replaced) =
            swap_in(my, &scratch.name, &target, !created).inspect_err(|f| {
                if created && !f.incomplete {
                    let _ =
                        my.query_in(None, &format!("DROP DATABASE IF EXISTS {}", ident(&target)));
                }
            })?;
        crate::testpoint::pause("restore:tables-swapped");
        let mut script = format!(
            "SET SESSION lock_wait_timeout = 30;\n{}",
            objects::drop_script(&target, &leftover)
        )
        .into_bytes();
        script.extend(objects::create_script(&restored));
        if let Err(e) = my.run_script(Some(&target), &script) {
            let kept = old.map(ScratchDb::keep);
            return Err(CommitFailed::incomplete(
                Error::new(
                    e.kind(),
                    format!("the backup's tables are in {target}, but its views, triggers, routines and events could not all be made; the database is incomplete"),
                )
                .caused_by(e.one_line())
                .with_hint(finish_hint(kept.as_deref())),
            ));
        }
        drop(scratch);
        // The replaced views, triggers, routines and events join the replaced tables: the safety
        // backup taken of them then is the database as it was at the swap.
        let replaced: Option<Box<dyn Replaced>> = match old {
            None => None,
            Some(old) => {
                let moved: Vec<Object> = replaced
                    .into_iter()
                    .map(|o| o.moved(&target, &old.name))
                    .collect();
                if let Err(e) = my.run_script(Some(&old.name), &objects::create_script(&moved)) {
                    let name = old.keep();
                    return Err(Error::new(
                        e.kind(),
                        format!(
                            "the backup is restored, but the views, triggers, routines and events it replaced could not be set aside with their tables, which are kept in database {name}"
                        ),
                    )
                    .caused_by(e.one_line())
                    .with_hint("back that database up by hand, or drop it; `faber-db doctor` lists it")
                    .into());
                }
                let (name, claim) = old.into_parts();
                Some(Box::new(ReplacedMysql {
                    my: my.at_database(&name),
                    name,
                    claim,
                }))
            }
        };
        let migrations = my
            .inspect_db(&target, migrations_table.as_deref(), false)?
            .migrations;
        Ok(Committed {
            inspection: Inspection { tables, migrations },
            replaced,
        })
    }
}

/// The target's tables, views, triggers, routines and events as they were before a restore,
/// set aside at the swap.
struct ReplacedMysql {
    my: Mysql,
    name: String,
    claim: Option<Claim>,
}

impl Replaced for ReplacedMysql {
    fn provider(&self) -> Box<dyn Provider> {
        Box::new(self.my.clone())
    }

    fn describe(&self) -> String {
        format!("database {}", self.name)
    }

    fn discard(mut self: Box<Self>) -> Result<()> {
        // Recorded first: if the drop fails or is killed, a later sweep may finish it.
        if let Some(claim) = &mut self.claim {
            claim.mark_disposable().map_err(|e| {
                Error::tool(format!("cannot record that {} may be dropped", self.name)).caused_by(e)
            })?;
        }
        self.my
            .query_in(
                None,
                &format!(
                    "SET SESSION lock_wait_timeout = 30; DROP DATABASE {}",
                    ident(&self.name)
                ),
            )
            .map_err(|e| {
                Error::tool(format!(
                    "the restore is in place, but database {}, which held the replaced data, could not be dropped",
                    self.name
                ))
                .caused_by(e.one_line())
                .with_hint("the next restore or verify --deep on this server drops it")
            })?;
        if let Some(claim) = self.claim.take() {
            claim.release();
        }
        Ok(())
    }
}

/// How to finish a restore left incomplete, and where the tables it replaced are.
fn finish_hint(old: Option<&str>) -> String {
    match old {
        Some(old) => format!(
            "restore again to finish; the replaced tables are kept in database {old} (`faber-db doctor` lists it)"
        ),
        None => "restore again to finish".to_string(),
    }
}

/// The database that holds the target's replaced tables (when the target existed), the routines
/// and events of the target still to drop, and every view, trigger, routine and event the target
/// had, to set aside with its tables.
type Swapped<'a> = (Option<ScratchDb<'a>>, Vec<Named>, Vec<Object>);

/// Moves the loaded tables of `scratch` into `target` and the target's own out to a database of
/// their own, all in one `RENAME TABLE`, after dropping the target's views and triggers (a view
/// may have the name of a table coming in; a table with triggers cannot move). A swap that
/// fails leaves the target as it was, those views and triggers made again — or says that it is
/// incomplete.
fn swap_in<'a>(
    my: &'a Mysql,
    scratch: &str,
    target: &str,
    existed: bool,
) -> Result<Swapped<'a>, CommitFailed> {
    // Read before they are dropped: to make them again if the swap fails, and to set them aside
    // with the replaced tables.
    let replaced = objects::read(my, target)?;
    let (in_the_way, leftover): (Vec<Object>, Vec<Object>) = replaced
        .iter()
        .cloned()
        .partition(|o| matches!(o.named.kind, "VIEW" | "TRIGGER"));
    let leftover: Vec<Named> = leftover.into_iter().map(|o| o.named).collect();
    let old_tables = my.tables_of(target)?;
    let new_tables = my.tables_of(scratch)?;
    let old = if existed {
        Some(ScratchDb::create(my, Purpose::Replaced)?)
    } else {
        None
    };
    let mut moves: Vec<String> = Vec::new();
    if let Some(old) = &old {
        moves.extend(old_tables.iter().map(|t| {
            format!(
                "{}.{} TO {}.{}",
                ident(target),
                ident(t),
                ident(&old.name),
                ident(t)
            )
        }));
    }
    moves.extend(new_tables.iter().map(|t| {
        format!(
            "{}.{} TO {}.{}",
            ident(scratch),
            ident(t),
            ident(target),
            ident(t)
        )
    }));
    // A session that holds a table of the target without showing in the process list (another
    // user's, one using no database) would block the swap for a day: 30 s, then exit 7.
    let mut script = format!(
        "SET SESSION lock_wait_timeout = 30;\n{}",
        objects::drop_script(target, in_the_way.iter().map(|o| &o.named))
    );
    if !moves.is_empty() {
        script.push_str(&format!("RENAME TABLE {};\n", moves.join(", ")));
    }
    let Err(e) = my.run_script(None, script.as_bytes()) else {
        return Ok((old, leftover, replaced));
    };
    // The tables moved all at once or not at all: only the views and triggers dropped before
    // may be gone.
    let moved = match (new_tables.is_empty(), old_tables.is_empty()) {
        (false, _) => my.tables_of(scratch).map(|t| t.is_empty()),
        (true, false) => my.tables_of(target).map(|t| t.is_empty()),
        (true, true) => Ok(false),
    };
    let undone = match moved {
        // The failure was in the report of the swap, not in the swap.
        Ok(true) => return Ok((old, leftover, replaced)),
        Ok(false) => objects::present(my, target).and_then(|present| {
            let gone: Vec<Object> = in_the_way
                .into_iter()
                .filter(|o| !present.contains(&o.named))
                .collect();
            my.run_script(Some(target), &objects::create_script(&gone))
        }),
        Err(e) => Err(e),
    };
    match undone {
        Ok(()) => Err(Error::new(
            e.kind(),
            format!("the tables of {target} could not be swapped; nothing was restored"),
        )
        .caused_by(e.one_line())
        .with_hint(e.hint().unwrap_or("fix the cause and restore again"))
        .into()),
        Err(undo) => {
            let kept = old.map(ScratchDb::keep);
            Err(CommitFailed::incomplete(
                Error::new(
                    e.kind(),
                    format!("swapping the tables of {target} failed, and its views and triggers could not all be made again; the database is incomplete"),
                )
                .caused_by(e.one_line())
                .caused_by(undo.one_line())
                .with_hint(finish_hint(kept.as_deref())),
            ))
        }
    }
}
