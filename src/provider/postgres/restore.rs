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
        if format == Format::Sql {
            cmd.args(["-X", "-q", "-w", "-v", "ON_ERROR_STOP=1"]);
        } else {
            cmd.args(["--exit-on-error", "--no-password"])
                .arg(format!("--dbname=dbname='{}'", conninfo_escape(&self.name)));
            // Owners are kept when this role may set them, as a plain dump's psql load does.
            if !self.pg.is_superuser()? {
                cmd.arg("--no-owner");
            }
        }
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
    format!(
        "{}__faber_{purpose}_{}",
        scratch_stem(target),
        random_suffix()
    )
}

/// The target's name cut to 30 bytes at a character boundary: with the suffix, a scratch name
/// stays within PostgreSQL's 63-byte limit and is never truncated.
fn scratch_stem(target: &str) -> &str {
    let mut end = target.len().min(30);
    while !target.is_char_boundary(end) {
        end -= 1;
    }
    &target[..end]
}

/// A value inside single quotes in a libpq connection string.
fn conninfo_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
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

/// Drops the scratch databases of this target that killed runs left behind (nobody connected);
/// returns their names.
pub(super) fn sweep(pg: &Postgres) -> Result<Vec<String>> {
    let stem = scratch_stem(&pg.conn.dbname)
        .replace('\\', "\\\\")
        .replace('_', "\\_")
        .replace('%', "\\%");
    let rows = pg.query_in(
        MAINTENANCE_DB,
        &format!(
            "SELECT datname FROM pg_database d WHERE datname LIKE {} \
             AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)",
            literal(&format!("{stem}\\_\\_faber\\_%"))
        ),
    )?;
    let mut dropped = Vec::new();
    for name in rows
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
    {
        pg.query_in(
            MAINTENANCE_DB,
            &format!("DROP DATABASE IF EXISTS {}", ident(&name)),
        )?;
        dropped.push(name);
    }
    Ok(dropped)
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
        // Both renames in one transaction: the target is never missing, whatever stops us.
        let swap = if exists {
            format!(
                "BEGIN; ALTER DATABASE {t} RENAME TO {o}; ALTER DATABASE {s} RENAME TO {t}; COMMIT;",
                t = ident(&target),
                o = ident(&old),
                s = ident(&self.scratch.name)
            )
        } else {
            format!(
                "ALTER DATABASE {} RENAME TO {}",
                ident(&self.scratch.name),
                ident(&target)
            )
        };
        pg.query_in(MAINTENANCE_DB, &swap).map_err(|e| {
            if e.one_line().contains("being accessed by other users") {
                Error::new(Kind::Busy, format!("{target} could not be swapped; nothing was restored"))
                    .caused_by(e.one_line())
                    .with_hint("a session connected meanwhile; stop the application (or pass --terminate-connections) and restore again")
            } else {
                e.add_hint("nothing was restored")
            }
        })?;
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
