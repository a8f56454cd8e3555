//! Restoring MySQL/MariaDB. A whole database cannot be swapped in by renaming here (views,
//! triggers and routines do not move with `RENAME TABLE`), so the dump is loaded twice: first
//! into a scratch database, which proves that it loads on this server as this user (a DEFINER
//! it may not name, a row over `max_allowed_packet`) before anything is touched; then, once the
//! safety backup is taken, the target is recreated and loaded. `verify --deep` loads into a
//! scratch database and drops it.

use super::{Mysql, ident, literal};
use crate::error::{Error, Kind, Result};
use crate::format::Format;
use crate::pipeline::TailReader;
use crate::provider::tool::{feed, random_suffix, scratch_stem};
use crate::provider::{CommitOptions, Inspection, Source, Staged, StoredFile, Tables};

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

/// A database faber-db created for itself, dropped when this value goes.
struct ScratchDb<'a> {
    my: &'a Mysql,
    name: String,
}

impl<'a> ScratchDb<'a> {
    fn create(my: &'a Mysql, purpose: &str) -> Result<ScratchDb<'a>> {
        let name = format!(
            "{}__faber_{purpose}_{}",
            scratch_stem(&my.conn.dbname),
            random_suffix()
        );
        let charset = my.charset_clause()?;
        my.query_in(None, &format!("CREATE DATABASE {}{charset}", ident(&name)))?;
        Ok(ScratchDb { my, name })
    }
}

impl Drop for ScratchDb<'_> {
    fn drop(&mut self) {
        let _ = self.my.query_in(
            None,
            &format!("DROP DATABASE IF EXISTS {}", ident(&self.name)),
        );
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
    let Source::Stored(stored) = source else {
        return Err(Error::config(
            "a MySQL restore loads the stored backup when it commits",
        ));
    };
    // The trial load: a dump that cannot load here fails now, with the target untouched.
    let scratch = ScratchDb::create(my, "restore")?;
    my.load(&scratch.name, Source::Stored(stored))
        .map_err(|e| e.add_hint("the database was not changed"))?;
    drop(scratch);
    Ok(Box::new(StagedMysql {
        my,
        stored: stored.clone(),
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
    my: &'a Mysql,
    stored: StoredFile,
    migrations_table: Option<String>,
}

impl Staged for StagedMysql<'_> {
    fn commit(self: Box<Self>, options: &CommitOptions) -> Result<Inspection> {
        let my = self.my;
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
            .with_hint("stop the application, or pass --terminate-connections to end its sessions, then restore again"));
        }
        // The file must still be what was checked: it is read a second time now.
        let file = std::fs::File::open(&self.stored.path)
            .map_err(|e| Error::io(Kind::Verification, "cannot open", &self.stored.path, e))?;
        let (sha, _) = crate::pipeline::hash_file(file)
            .map_err(|e| Error::verification("the backup cannot be read").caused_by(e))?;
        if sha != self.stored.sha256 {
            return Err(Error::verification(
                "the backup file changed after it was checked; nothing was restored",
            ));
        }
        let charset = my.charset_clause()?;
        // A session that holds a table of the target without showing in the process list
        // (another user's, one using no database) would block the drop for a day: 30 s, then
        // exit 7 with nothing dropped.
        my.query_in(
            None,
            &format!(
                "SET SESSION lock_wait_timeout = 30; DROP DATABASE IF EXISTS {t}; CREATE DATABASE {t}{charset}",
                t = ident(&target)
            ),
        )?;
        my.load(&target, Source::Stored(&self.stored))
            .map_err(|e| {
                Error::new(
                    e.kind(),
                    format!("loading the backup into {target} failed; the database is incomplete"),
                )
                .caused_by(e.one_line())
            })?;
        my.inspect_db(&target, self.migrations_table.as_deref(), true)
    }
}
