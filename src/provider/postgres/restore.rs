//! Restoring PostgreSQL: the dump is loaded into a scratch database and counted there (before the
//! safety backup is taken); the commit then swaps it in by renaming, so the target is untouched
//! until the new data is complete, and a failed load leaves nothing behind.

use std::io::Read;

use super::{MAINTENANCE_DB, Postgres, feed, ident, literal};
use crate::error::{Error, Kind, Result};
use crate::format::Format;
use crate::pipeline::TailReader;
use crate::provider::{CommitOptions, Inspection, Provider, Staged, Tables};

/// A database faber-db created for itself, dropped when this value goes unless kept.
struct ScratchDb<'a> {
    pg: &'a Postgres,
    name: String,
    keep: bool,
}

impl<'a> ScratchDb<'a> {
    /// Creates `<target>__faber_<purpose>_<random>` (the target's name cut to 30 characters, so
    /// an operator sees whose it is) like the target database (encoding, collation, owner) when
    /// it exists, else from template0.
    fn create(pg: &'a Postgres, purpose: &str) -> Result<ScratchDb<'a>> {
        let name = scratch_name(&pg.conn.dbname, purpose);
        let like = pg.query_in(
            MAINTENANCE_DB,
            &format!(
                "SELECT pg_encoding_to_char(encoding), datcollate, datctype, pg_get_userbyid(datdba) \
                 FROM pg_database WHERE datname = {}",
                literal(&pg.conn.dbname)
            ),
        )?;
        let mut sql = format!("CREATE DATABASE {} TEMPLATE template0", ident(&name));
        let mut owner = None;
        if let Some([Some(enc), Some(collate), Some(ctype), o]) = like.first().map(Vec::as_slice) {
            sql.push_str(&format!(
                " ENCODING {} LC_COLLATE {} LC_CTYPE {}",
                literal(enc),
                literal(collate),
                literal(ctype)
            ));
            owner = o.clone();
        }
        pg.query_in(MAINTENANCE_DB, &sql)?;
        let scratch = ScratchDb {
            pg,
            name,
            keep: false,
        };
        if let Some(owner) = owner {
            // Best effort: a role that may not hand databases to others keeps ownership itself.
            let _ = pg.query_in(
                MAINTENANCE_DB,
                &format!(
                    "ALTER DATABASE {} OWNER TO {}",
                    ident(&scratch.name),
                    ident(&owner)
                ),
            );
        }
        Ok(scratch)
    }

    /// Loads a dump: plain SQL with `psql -v ON_ERROR_STOP=1` (any failing statement fails
    /// it), a custom archive with `pg_restore --exit-on-error --no-owner`.
    fn load(&self, format: Format, source: &mut dyn Read) -> Result<()> {
        let tools = self.pg.tools()?;
        let (mut cmd, what) = match format {
            Format::Sql => (self.pg.command(&tools.psql, &self.name), "psql"),
            Format::Custom => (self.pg.command(&tools.pg_restore, &self.name), "pg_restore"),
            other => {
                return Err(Error::config(format!(
                    "{other} backups cannot be restored into PostgreSQL by this build"
                )));
            }
        };
        match format {
            Format::Sql => cmd.args(["-X", "-q", "-w", "-v", "ON_ERROR_STOP=1"]),
            _ => cmd
                .args(["--exit-on-error", "--no-owner", "--no-password"])
                .arg(format!("--dbname={}", self.name)),
        };
        feed(cmd, source, what).map_err(|e| e.with_hint("the database was not changed"))
    }
}

impl Drop for ScratchDb<'_> {
    fn drop(&mut self) {
        if !self.keep {
            let _ = self.pg.query_in(
                MAINTENANCE_DB,
                &format!("DROP DATABASE IF EXISTS {}", ident(&self.name)),
            );
        }
    }
}

fn scratch_name(target: &str, purpose: &str) -> String {
    let stem: String = target.chars().take(30).collect();
    format!("{stem}__faber_{purpose}_{}", random_suffix())
}

fn random_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{:x}",
        (nanos as u64) ^ (u64::from(std::process::id()) << 32)
    )
}

pub(super) fn stage<'a>(
    pg: &'a Postgres,
    format: Format,
    source: &mut dyn Read,
    migrations_table: Option<&str>,
) -> Result<Box<dyn Staged + 'a>> {
    let scratch = ScratchDb::create(pg, "restore")?;
    scratch.load(format, source)?;
    let inspection = pg.inspect_db(&scratch.name, migrations_table, true)?;
    Ok(Box::new(StagedPostgres {
        scratch,
        inspection,
        migrations_table: migrations_table.map(str::to_string),
    }))
}

/// Loads a dump into a scratch database, counts its rows and drops it again.
pub(super) fn deep_check(
    pg: &Postgres,
    format: Format,
    source: &mut dyn Read,
) -> Result<(String, Tables)> {
    let scratch = ScratchDb::create(pg, "verify")?;
    let mut tail = TailReader::new(source);
    // A load that fails although the checksum matched says more about this server (a missing
    // role, extension) than about the backup: the caller reports it as not verified.
    scratch.load(format, &mut tail)?;
    if format == Format::Sql && !tail.ends_with_marker(super::DUMP_TRAILER) {
        return Ok((
            "the dump's completion trailer is missing".to_string(),
            Tables::new(),
        ));
    }
    let tables = pg.count_rows(&scratch.name)?;
    Ok(("ok".to_string(), tables))
}

struct StagedPostgres<'a> {
    scratch: ScratchDb<'a>,
    inspection: Inspection,
    migrations_table: Option<String>,
}

impl Staged for StagedPostgres<'_> {
    fn inspection(&self) -> &Inspection {
        &self.inspection
    }

    fn commit(mut self: Box<Self>, options: &CommitOptions) -> Result<Inspection> {
        let pg = self.scratch.pg;
        let target = pg.conn.dbname.clone();
        let sessions = format!(
            "FROM pg_stat_activity WHERE datname = {} AND pid <> pg_backend_pid()",
            literal(&target)
        );
        if options.terminate_connections {
            pg.query_in(
                MAINTENANCE_DB,
                &format!("SELECT pg_terminate_backend(pid) {sessions}"),
            )?;
        }
        let others = pg.scalar(MAINTENANCE_DB, &format!("SELECT count(*) {sessions}"))?;
        if others != "0" {
            return Err(Error::new(Kind::Busy, format!("{others} other sessions are connected to {target}; nothing was restored"))
                .with_hint("stop the application, or pass --terminate-connections to end its sessions, then restore again"));
        }
        let exists = pg.exists()?;
        let old = scratch_name(&target, "old");
        let rename = |from: &str, to: &str| {
            pg.query_in(
                MAINTENANCE_DB,
                &format!("ALTER DATABASE {} RENAME TO {}", ident(from), ident(to)),
            )
        };
        let busy = |e: Error| {
            Error::new(
                Kind::Busy,
                format!("{target} could not be swapped; nothing was restored"),
            )
            .caused_by(e.one_line())
            .with_hint("a session connected meanwhile; stop the application and restore again")
        };
        if exists {
            rename(&target, &old).map_err(busy)?;
        }
        if let Err(e) = rename(&self.scratch.name, &target) {
            if exists {
                let _ = rename(&old, &target);
            }
            return Err(e);
        }
        self.scratch.keep = true;
        if exists {
            pg.query_in(MAINTENANCE_DB, &format!("DROP DATABASE {}", ident(&old)))
                .map_err(|e| {
                    Error::tool(format!(
                        "the restore is in place, but the old database {old} could not be dropped"
                    ))
                    .caused_by(e.one_line())
                    .with_hint(format!("drop it by hand: DROP DATABASE \"{old}\""))
                })?;
        }
        pg.inspect_db(&target, self.migrations_table.as_deref(), true)
    }
}
