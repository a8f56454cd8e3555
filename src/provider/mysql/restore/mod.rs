//! Restoring MySQL/MariaDB. The dump is loaded once, into a scratch database, and counted there:
//! a dump that cannot load on this server as this user (a DEFINER it may not name, a row over
//! `max_allowed_packet`) fails before the safety backup, with the target untouched. The commit
//! then moves the tables in: one `RENAME TABLE` takes the target's tables out to a database of
//! their own and the loaded ones in, all at once. Views, triggers, routines and events do not
//! move with their tables (see `objects`): the target's own are dropped just before that
//! statement and the backup's made just after it — the one stretch of a restore that is not
//! all-or-nothing. `verify --deep` loads into a scratch database and drops it.
//!
//! The scratch databases are in `scratch`, the swap in `swap`, the other sessions in the way in
//! `sessions`.

mod copy;
mod scratch;
mod sessions;
mod swap;
mod tables;

use super::objects::{self, Object};
use super::{Mysql, ident, literal};
use crate::error::{Cause, Error, Remedy, Result};
use crate::format::Format;
use crate::pipeline::TailReader;
use crate::provider::tool::feed;
use crate::provider::{
    CommitFailed, CommitOptions, Committed, Provider, Replaced, Source, Staged, Tables,
};
use crate::scratch::Purpose;
pub(super) use copy::scratch_copy;
pub(super) use scratch::sweep;
use scratch::{ReplacedMysql, ScratchDb};
pub(super) use sessions::{clear_sessions, other_sessions, sessions_unseen};
use swap::{finish_hint, swap_in};
pub(super) use tables::{check_new_name, dangling, replace_tables, restore_into};

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

    /// Turns off the events of database `db` (a copy of a backup): its scheduled jobs must not
    /// run there — a purge would delete the very rows the copy was made for.
    pub(super) fn disable_events(&self, db: &str) -> Result<()> {
        for event in objects::present(self, db)?
            .into_iter()
            .filter(|n| n.kind == "EVENT")
        {
            self.query_in(
                Some(db),
                &format!("ALTER EVENT {}.{} DISABLE", ident(db), ident(&event.name)),
            )?;
        }
        Ok(())
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
        other @ Source::Path(_) => my.load(&scratch.name, other),
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
        other @ Source::Path(_) => {
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
                        .caused_by(Cause::in_one_line(e))
                        .with_hint(Remedy::DefinitionsKept),
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
                .caused_by(Cause::in_one_line(e))
                .with_hint(finish_hint(kept.as_deref())),
            ));
        }
        drop(scratch);
        // What the target holds now, read back from it, as PostgreSQL's is.
        let inspection = my
            .inspect_db(&target, migrations_table.as_deref(), true)
            .map_err(|e| CommitFailed::from(e.add_hint(Remedy::ReplacedDataKept)))?;
        Ok(Committed {
            inspection,
            replaced,
            kept: Vec::new(),
        })
    }
}

/// Whether this user may create (and drop) a database other than the target: a probe database,
/// recorded in the ledger like every scratch database, created and dropped at once.
pub(super) fn probe_create_database(my: &Mysql) -> Result<()> {
    let probe = ScratchDb::create(my, Purpose::Verify)?;
    drop(probe);
    Ok(())
}
