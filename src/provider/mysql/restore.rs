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
use crate::provider::{CommitFailed, CommitOptions, Inspection, Provider, Source, Staged, Tables};

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

    /// Names of databases that begin with `prefix`.
    fn databases_starting_with(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self
            .query_in(None, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")?
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .filter(|n| n.starts_with(prefix))
            .collect())
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

/// A database faber-db created for itself, dropped when this value goes unless kept.
struct ScratchDb<'a> {
    my: &'a Mysql,
    name: String,
    keep: bool,
}

impl<'a> ScratchDb<'a> {
    /// Creates `<target>__faber_<purpose>_<random>` (the target's name cut to 30 bytes), with the
    /// target's character set and collation when it exists: what `sweep` finds by its prefix.
    fn create(my: &'a Mysql, purpose: &str) -> Result<ScratchDb<'a>> {
        let name = format!(
            "{}__faber_{purpose}_{}",
            scratch_stem(&my.conn.dbname),
            random_suffix()
        );
        let charset = my.charset_clause()?;
        my.query_in(None, &format!("CREATE DATABASE {}{charset}", ident(&name)))?;
        Ok(ScratchDb {
            my,
            name,
            keep: false,
        })
    }

    /// Leaves it in place (for the next restore's sweep); returns its name.
    fn keep(mut self) -> String {
        self.keep = true;
        self.name.clone()
    }

    /// Drops it now, saying whether that worked.
    fn remove(mut self) -> Result<()> {
        self.keep = true;
        self.my.query_in(
            None,
            &format!(
                "SET SESSION lock_wait_timeout = 30; DROP DATABASE IF EXISTS {}",
                ident(&self.name)
            ),
        )?;
        Ok(())
    }
}

impl Drop for ScratchDb<'_> {
    fn drop(&mut self) {
        if !self.keep {
            let _ = self.my.query_in(
                None,
                &format!("DROP DATABASE IF EXISTS {}", ident(&self.name)),
            );
        }
    }
}

/// Drops the scratch databases of this target that killed runs left behind (nobody using
/// them); returns their names.
pub(super) fn sweep(my: &Mysql) -> Result<Vec<String>> {
    let prefix = format!("{}__faber_", scratch_stem(&my.conn.dbname));
    let mut dropped = Vec::new();
    for name in my.databases_starting_with(&prefix)? {
        if !my.sessions_in(&name)?.is_empty() {
            continue;
        }
        my.query_in(None, &format!("DROP DATABASE IF EXISTS {}", ident(&name)))?;
        dropped.push(name);
    }
    Ok(dropped)
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
    let scratch = ScratchDb::create(my, "restore")?;
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
    let scratch = ScratchDb::create(my, "verify")?;
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
    fn commit(self: Box<Self>, options: &CommitOptions) -> Result<Inspection, CommitFailed> {
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
        let (old, leftover) = swap_in(my, &scratch.name, &target).inspect_err(|f| {
            if created && !f.incomplete {
                let _ = my.query_in(None, &format!("DROP DATABASE IF EXISTS {}", ident(&target)));
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
        if let Some(old) = old {
            let name = old.name.clone();
            old.remove().map_err(|e| {
                Error::tool(format!(
                    "the restore is in place, but {name}, which holds the replaced tables, could not be dropped"
                ))
                .caused_by(e.one_line())
                .with_hint(format!("drop it by hand: DROP DATABASE {}", ident(&name)))
            })?;
        }
        let migrations = my
            .inspect_db(&target, migrations_table.as_deref(), false)?
            .migrations;
        Ok(Inspection { tables, migrations })
    }
}

/// How to finish a restore left incomplete, and where the tables it replaced are.
fn finish_hint(old: Option<&str>) -> String {
    match old {
        Some(old) => format!(
            "restore again to finish; the replaced tables are in database {old} until the next restore drops it"
        ),
        None => "restore again to finish".to_string(),
    }
}

/// The database that holds the target's replaced tables (if it had any), and the routines and
/// events of the target still to drop.
type Swapped<'a> = (Option<ScratchDb<'a>>, Vec<Named>);

/// Moves the loaded tables of `scratch` into `target` and the target's own out to a database of
/// their own, all in one `RENAME TABLE`, after dropping the target's views and triggers (a view
/// may have the name of a table coming in; a table with triggers cannot move). A swap that
/// fails leaves the target as it was, those views and triggers made again — or says that it is
/// incomplete.
fn swap_in<'a>(my: &'a Mysql, scratch: &str, target: &str) -> Result<Swapped<'a>, CommitFailed> {
    let (in_the_way, leftover): (Vec<Named>, Vec<Named>) = objects::present(my, target)?
        .into_iter()
        .partition(|n| matches!(n.kind, "VIEW" | "TRIGGER"));
    // Read before they are dropped, to make them again if the swap fails.
    let in_the_way = objects::define(my, target, &in_the_way)?;
    let old_tables = my.tables_of(target)?;
    let new_tables = my.tables_of(scratch)?;
    let old = if old_tables.is_empty() {
        None
    } else {
        Some(ScratchDb::create(my, "old")?)
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
        return Ok((old, leftover));
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
        Ok(true) => return Ok((old, leftover)),
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
