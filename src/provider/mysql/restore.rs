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
use crate::error::{Error, Result};
use crate::format::Format;
use crate::pipeline::TailReader;
use crate::provider::tool::{feed, random_suffix, scratch_stem};
use crate::provider::{
    CommitFailed, CommitOptions, Committed, OtherSession, Provider, Replaced, Source, Staged,
    Tables,
};
use crate::scratch::{self, Claim, Purpose};

impl Mysql {
    /// Loads a dump into `db` with the client, which stops at the first failing statement.
    /// The client's own packet limit is raised; the server's `max_allowed_packet` still applies.
    pub(super) fn load(&self, db: &str, source: Source<'_>) -> Result<()> {
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
    pub(super) fn tables_of(&self, db: &str) -> Result<Vec<String>> {
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

    /// The other sessions using `db`, as the server lists them now.
    fn sessions_in(&self, db: &str) -> Result<Vec<OtherSession>> {
        Ok(self
            .query_in(
                None,
                &format!(
                    "SELECT ID, USER, HOST FROM information_schema.PROCESSLIST WHERE DB = {} \
                     AND ID <> CONNECTION_ID() AND COMMAND <> 'Killed' ORDER BY ID",
                    literal(db)
                ),
            )?
            .into_iter()
            .filter_map(|row| {
                let mut fields = row.into_iter();
                Some(OtherSession {
                    id: fields.next().flatten()?,
                    user: fields.next().flatten(),
                    application: None,
                    client: fields.next().flatten(),
                })
            })
            .collect())
    }
}

/// The other sessions using the target database (none when it does not exist): what the swap
/// would find in its way. The sessions of the tools faber-db itself just ran (the safety
/// backup's mysqldump, the checks) can linger a moment after their clients exit, while the
/// server closes them: only a session still there after a short wait is someone else's. The
/// pre-flight and the commit ask this same question.
pub(super) fn other_sessions(my: &Mysql) -> Result<Vec<OtherSession>> {
    let target = &my.conn.dbname;
    let mut others = my.sessions_in(target)?;
    for _ in 0..SESSION_SETTLE_TRIES {
        if others.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        others = my.sessions_in(target)?;
    }
    Ok(others)
}

/// What [`other_sessions`] cannot see: without PROCESS (or SUPER), the server lists a user's
/// own sessions only, and an application connected as another user is not among them.
pub(super) fn sessions_unseen(my: &Mysql) -> Result<Option<String>> {
    let account = my.scalar_in(None, "SELECT CURRENT_USER()")?;
    let (user, host) = account.rsplit_once('@').unwrap_or((&account, "%"));
    let found = my.query_in(
        None,
        &format!(
            "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = {} \
             AND PRIVILEGE_TYPE IN ('PROCESS', 'SUPER')",
            literal(&format!("'{user}'@'{host}'"))
        ),
    )?;
    Ok(found.is_empty().then(|| {
        format!(
            "sessions of other users cannot be seen: {account} lacks the PROCESS privilege \
             (GRANT PROCESS ON *.* TO {}@{}); make sure no application is connected as another user",
            literal_shown(user),
            literal_shown(host)
        )
    }))
}

/// `s` as a quoted MySQL string, as a person would type it in a grant.
fn literal_shown(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
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
    let loaded = my.tables_of(&scratch.name).map_err(unchanged)?;
    Ok(Box::new(StagedMysql {
        scratch,
        restored,
        loaded,
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
    /// The loaded tables' names: the scratch database must hold exactly these at the swap.
    loaded: Vec<String>,
    migrations_table: Option<String>,
}

impl Staged for StagedMysql<'_> {
    fn commit(self: Box<Self>, options: &CommitOptions) -> Result<Committed, CommitFailed> {
        let StagedMysql {
            scratch,
            restored,
            loaded,
            migrations_table,
        } = *self;
        let my = scratch.my;
        let target = my.conn.dbname.clone();
        clear_sessions(my, options.terminate_connections)?;
        let created = !my.exists()?;
        if created {
            my.query_in(None, &format!("CREATE DATABASE {}", ident(&target)))?;
        }
        let (old, leftover, replaced) = swap_in(my, &scratch.name, &loaded, &target, !created)
            .inspect_err(|f| {
                if created && !f.incomplete {
                    let _ =
                        my.query_in(None, &format!("DROP DATABASE IF EXISTS {}", ident(&target)));
                }
            })?;
        // The replaced views, triggers, routines and events join the replaced tables at once:
        // the safety backup taken of them then is the database as it was at the swap. Their
        // definitions were kept on disk first (`scratch::Claim::attach`): a run killed before
        // this leaves them there, beside the replaced tables' record.
        let replaced: Option<Box<dyn Replaced>> = match old {
            None => None,
            Some(old) => {
                if let Err(e) = my.run_script(Some(&old.name), &objects::create_script(&replaced)) {
                    let name = old.keep();
                    return Err(CommitFailed::incomplete(
                        Error::new(
                            e.kind(),
                            format!(
                                "the backup's tables are in {target}, but the views, triggers, routines and events they replaced could not be set aside with the replaced tables, which are kept in database {name}"
                            ),
                        )
                        .caused_by(e.one_line())
                        .with_hint("their definitions are kept beside the database's record; `faber-db doctor` says where. Restore again to finish the restore"),
                    ));
                }
                let (name, claim) = old.into_parts();
                Some(Box::new(ReplacedMysql {
                    my: my.at_database(&name),
                    name,
                    claim,
                }))
            }
        };
        crate::testpoint::pause("restore:tables-swapped");
        let mut script = format!(
            "SET SESSION lock_wait_timeout = 30;\n{}",
            objects::drop_script(&target, &leftover)
        )
        .into_bytes();
        script.extend(objects::create_script(&restored));
        if let Err(e) = my.run_script(Some(&target), &script) {
            let kept = replaced.as_ref().map(|r| r.describe());
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
        // What the target holds now, read back from it, as PostgreSQL's is.
        let inspection = my
            .inspect_db(&target, migrations_table.as_deref(), true)
            .map_err(|e| {
                CommitFailed::from(e.add_hint(
                    "the restore is in place; the data it replaced is kept (`faber-db doctor` says where)",
                ))
            })?;
        Ok(Committed {
            inspection,
            replaced,
            kept: Vec::new(),
        })
    }
}

/// Ends the other sessions using the target when `terminate`, else refuses (exit 7) while there
/// are any.
pub(super) fn clear_sessions(my: &Mysql, terminate: bool) -> Result<()> {
    let target = &my.conn.dbname;
    if terminate {
        for session in my.sessions_in(target)? {
            // A session that ended meanwhile is fine.
            let _ = my.query_in(
                None,
                &format!("KILL {}", session.id.parse::<u64>().unwrap_or(0)),
            );
        }
    }
    // The sessions of the tools faber-db itself just ran linger a moment: other_sessions waits
    // for them to close.
    let others = other_sessions(my)?;
    if !others.is_empty() {
        return Err(crate::provider::sessions_busy(target, &others));
    }
    Ok(())
}

/// Whether this user may create (and drop) a database other than the target: a probe database,
/// recorded in the ledger like every scratch database, created and dropped at once.
pub(super) fn probe_create_database(my: &Mysql) -> Result<()> {
    let probe = ScratchDb::create(my, Purpose::Verify)?;
    drop(probe);
    Ok(())
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

/// Refuses a restore of `target` while tables of other databases have foreign keys to its tables:
/// `RENAME TABLE` would move those keys to the replaced tables, set aside and then dropped.
fn refuse_foreign_references(my: &Mysql, target: &str) -> Result<()> {
    let rows = my.query_in(
        None,
        &format!(
            "SELECT DISTINCT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) FROM information_schema.KEY_COLUMN_USAGE \
             WHERE REFERENCED_TABLE_SCHEMA = {t} AND TABLE_SCHEMA <> {t} ORDER BY 1",
            t = literal(target)
        ),
    )?;
    let tables: Vec<String> = rows
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect();
    if tables.is_empty() {
        return Ok(());
    }
    Err(Error::tool(format!(
        "tables of other databases have foreign keys to {target}'s tables: {}; a restore would move those keys to the replaced tables; nothing was restored",
        tables.join(", ")
    ))
    .with_hint("drop those foreign keys first (and make them again after the restore), or restore into another database"))
}

/// Checks, in the empty database `old`, that this user may make objects with every DEFINER the
/// target's views, triggers, routines and events have: a probe procedure for each, dropped at
/// once.
fn probe_definers(my: &Mysql, old: &str, target: &str) -> Result<()> {
    let t = literal(target);
    let sql = format!(
        "SELECT DISTINCT DEFINER FROM (\
         SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = {t} \
         UNION SELECT DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {t} \
         UNION SELECT DEFINER FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = {t} \
         UNION SELECT DEFINER FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {t}) d \
         WHERE DEFINER <> CURRENT_USER()"
    );
    let definers: Vec<String> = my
        .query_in(None, &sql)?
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect();
    for definer in definers {
        let Some((user, host)) = definer.rsplit_once('@') else {
            continue;
        };
        let quoted = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"));
        let probe = format!(
            "CREATE DEFINER = {}@{} PROCEDURE {}.`__faber_definer_probe`() BEGIN END; \
             DROP PROCEDURE {}.`__faber_definer_probe`",
            quoted(user),
            quoted(host),
            ident(old),
            ident(old)
        );
        my.query_in(None, &probe).map_err(|e| {
            Error::tool(format!(
                "views, triggers, routines or events of {target} have the DEFINER {definer}, which this user may not name: a restore could not set them aside with the replaced tables; nothing was restored"
            ))
            .caused_by(e.one_line())
            .with_hint("restore as a user with SET USER (or SUPER), or as that definer")
        })?;
    }
    Ok(())
}

/// How to finish a restore left incomplete, and where the tables it replaced are.
fn finish_hint(old: Option<&str>) -> String {
    match old {
        Some(old) => format!(
            "restore again to finish; the replaced data is kept in {old} (`faber-db doctor` lists it)"
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
    loaded: &[String],
    target: &str,
    existed: bool,
) -> Result<Swapped<'a>, CommitFailed> {
    refuse_foreign_references(my, target)?;
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
    // The scratch database must hold what was loaded and checked: one that lost tables since
    // (dropped by hand, or by a run that took it for its own) would empty the target.
    if new_tables != loaded {
        return Err(Error::tool(format!(
            "the database the backup was loaded into, {scratch}, no longer holds the tables it was loaded with; nothing was restored"
        ))
        .with_hint("restore again")
        .into());
    }
    let old = if existed {
        let old = ScratchDb::create(my, Purpose::Replaced)?;
        // Every DEFINER of the replaced objects must be one this user may name, or they could
        // not be set aside after the swap: found out now, while nothing has changed.
        probe_definers(my, &old.name, target)?;
        // Their definitions are kept on disk before any is dropped.
        if let Some(claim) = &old.claim {
            claim.attach(&objects::create_script(&replaced)).map_err(|e| {
                Error::tool("cannot keep the definitions of the views, triggers, routines and events to be replaced")
                    .caused_by(e)
            })?;
        }
        Some(old)
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
