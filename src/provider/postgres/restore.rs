//! Restoring PostgreSQL: the dump is loaded into a scratch database and counted there; the commit
//! then swaps it in by renaming, so the target is untouched until the new data is complete, and a
//! failed load leaves nothing behind. The swap renames the target aside rather than dropping it:
//! no session can reach it there, so the safety backup taken of it afterwards holds every write
//! made before the swap. Every scratch database is recorded in the project's ledger and marked
//! (see `crate::scratch`): only those are ever dropped.

use super::copycount::{self, CopyCounter, CopyTarget};
use super::{MAINTENANCE_DB, Postgres, ident, literal};
use crate::error::{Cause, Error, Kind, Result};
use crate::format::Format;
use crate::pipeline::TailReader;
use crate::provider::tool::{feed, feed_output, random_suffix, scratch_stem};
use crate::provider::{
    CommitFailed, CommitOptions, Committed, OtherSession, Provider, Replaced, Source, Staged,
    Tables,
};
use crate::scratch::{self, Claim, Purpose};

/// Settings whose stored value is a list, given back as written (not as one quoted string).
const LIST_SETTINGS: [&str; 5] = [
    "search_path",
    "temp_tablespaces",
    "session_preload_libraries",
    "local_preload_libraries",
    "shared_preload_libraries",
];

/// A database faber-db created for itself, recorded in the project's ledger and dropped when
/// this value goes, unless kept.
pub(super) struct ScratchDb<'a> {
    pg: &'a Postgres,
    pub(super) name: String,
    /// Its record in the ledger, released once the database is gone or is the target.
    claim: Option<Claim>,
    /// The target's comment, which it takes at the swap: until then it carries its marker.
    comment: Option<String>,
    keep: bool,
}

impl<'a> ScratchDb<'a> {
    /// Creates `<target>__faber_<purpose>_<random>` (the target's name cut to 30 bytes, so an
    /// operator sees whose it is), recorded in the ledger first and marked right after. When the
    /// target exists, the new database is made like it — encoding, collation, locale provider,
    /// tablespace, connection limit, owner, access privileges and settings (its comment at the
    /// swap) — since it takes the target's place; else from template0.
    pub(super) fn create(pg: &'a Postgres, purpose: Purpose) -> Result<ScratchDb<'a>> {
        Self::create_as(
            pg,
            purpose,
            scratch_name(&pg.conn.dbname, purpose.name_part()),
        )
    }

    /// Creates database `name` as [`ScratchDb::create`] does: recorded first, marked, made like
    /// the target. `CREATE DATABASE` fails when `name` exists, so it is never someone else's.
    pub(super) fn create_as(
        pg: &'a Postgres,
        purpose: Purpose,
        name: String,
    ) -> Result<ScratchDb<'a>> {
        let claim = pg.ledger()?.claim(&pg.server_id(), purpose, &name)?;
        let like = pg.query_in(
            MAINTENANCE_DB,
            &format!(
                "SELECT pg_encoding_to_char(d.encoding), d.datcollate, d.datctype, pg_get_userbyid(d.datdba), \
                 d.datlocprovider::text, d.daticulocale, t.spcname, d.datconnlimit::text, d.oid::text, \
                 shobj_description(d.oid, 'pg_database'), (d.datacl IS NOT NULL)::text \
                 FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace WHERE d.datname = {}",
                literal(&pg.conn.dbname)
            ),
        )?;
        let target = like.into_iter().next();
        let get = |i: usize| target.as_ref().and_then(|r| r.get(i).cloned().flatten());
        let sql = create_sql(&name, &get);
        if let Err(e) = pg.query_in(MAINTENANCE_DB, &sql) {
            claim.release();
            return Err(e);
        }
        let marker = scratch::marker(&claim.entry().token);
        let scratch = ScratchDb {
            pg,
            name,
            claim: Some(claim),
            comment: get(9),
            keep: false,
        };
        pg.query_in(
            MAINTENANCE_DB,
            &format!(
                "COMMENT ON DATABASE {} IS {}",
                ident(&scratch.name),
                literal(&marker)
            ),
        )?;
        if target.is_none() {
            return Ok(scratch);
        }
        if let Some(owner) = get(3) {
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
        let steps = like_target(pg, &ident(&scratch.name), &get)?;
        for step in steps {
            pg.query_in(MAINTENANCE_DB, &step).map_err(|e| {
                e.add_hint("the restored database could not be given the target's privileges and settings; nothing was restored")
            })?;
        }
        Ok(scratch)
    }

    /// Loads a dump: plain SQL with `psql -v ON_ERROR_STOP=1` (any failing statement fails
    /// it), a custom archive or a directory dump with `pg_restore --exit-on-error --no-owner`,
    /// with `jobs` parallel workers when it reads from disk. A plain dump streamed to psql
    /// also gives the rows the server took into each table, as psql's `COPY n` lines say
    /// (see `copycount::server_counts`).
    pub(super) fn load(
        &self,
        format: Format,
        source: Source<'_>,
        jobs: u32,
    ) -> Result<Option<Copied>> {
        let tools = self.pg.tools()?;
        let (mut cmd, what) = match format {
            Format::Sql => (self.pg.command(&tools.psql, &self.name), "psql"),
            Format::Custom | Format::Directory => {
                (self.pg.command(&tools.pg_restore, &self.name), "pg_restore")
            }
            other @ Format::Sqlite => {
                return Err(Error::config(format!(
                    "{other} backups cannot be restored into PostgreSQL"
                )));
            }
        };
        let not_changed = |e: Error| e.with_hint("the database was not changed");
        if format == Format::Sql {
            cmd.args(["-X", "-w", "-v", "ON_ERROR_STOP=1"]);
            let Source::Stream(stream) = source else {
                // The path comes last: psql reads the file it names.
                cmd.args(["-q", "-f"]);
                return feed(cmd, source, what).map(|()| None).map_err(not_changed);
            };
            // Not quiet: psql prints each statement's tag, `COPY n` among them.
            let mut counter = CopyCounter::new(stream);
            let printed = feed_output(
                cmd,
                Source::Stream(&mut counter),
                what,
                copycount::is_copy_answer,
            )
            .map_err(not_changed)?;
            return Ok(copycount::server_counts(counter.blocks(), &printed));
        }
        cmd.args(["--exit-on-error", "--no-password"])
            .arg(format!("--dbname=dbname='{}'", conninfo_escape(&self.name)));
        // pg_restore runs jobs in parallel only from a file or directory it can seek in.
        if jobs > 1 && matches!(source, Source::Path(_)) {
            cmd.arg(format!("--jobs={jobs}"));
        }
        // Owners are kept when this role may set them, as a plain dump's psql load does.
        if !self.pg.is_superuser()? {
            cmd.arg("--no-owner");
        }
        feed(cmd, source, what).map(|()| None).map_err(not_changed)
    }
}

/// The rows the server took into each table a plain dump's COPY statements filled.
pub(super) type Copied = std::collections::BTreeMap<CopyTarget, u64>;

impl ScratchDb<'_> {
    /// It was renamed to the target's name at the swap, or became a database of its own (a
    /// restore `--into` it): no scratch database any more.
    pub(super) fn became_target(&mut self) {
        self.keep = true;
        if let Some(claim) = self.claim.take() {
            claim.release();
        }
    }
}

/// `CREATE DATABASE name`, made like the target whose `pg_database` row `get` reads (see
/// [`ScratchDb::create`]) when it exists: its encoding, collation, locale provider, tablespace
/// and connection limit.
fn create_sql(name: &str, get: &dyn Fn(usize) -> Option<String>) -> String {
    let mut sql = format!("CREATE DATABASE {} TEMPLATE template0", ident(name));
    if let (Some(enc), Some(collate), Some(ctype)) = (get(0), get(1), get(2)) {
        sql.push_str(&format!(
            " ENCODING {} LC_COLLATE {} LC_CTYPE {}",
            literal(&enc),
            literal(&collate),
            literal(&ctype)
        ));
        if get(4).as_deref() == Some("i") {
            let icu = get(5).unwrap_or_default();
            sql.push_str(&format!(
                " LOCALE_PROVIDER icu ICU_LOCALE {}",
                literal(&icu)
            ));
        }
        if let Some(ts) = get(6).filter(|t| t != "pg_default") {
            sql.push_str(&format!(" TABLESPACE {}", ident(&ts)));
        }
        sql.push_str(&format!(
            " CONNECTION LIMIT {}",
            get(7).unwrap_or_else(|| "-1".into())
        ));
    }
    sql
}

/// The statements that give database `me` the target's access privileges (when the target has
/// its own list) and settings, of the database and of its roles in it.
fn like_target(
    pg: &Postgres,
    me: &str,
    get: &dyn Fn(usize) -> Option<String>,
) -> Result<Vec<String>> {
    let mut steps = Vec::new();
    if get(10).as_deref() == Some("true") {
        // The target's own access list, not the default (which lets PUBLIC connect).
        steps.push(format!("REVOKE ALL ON DATABASE {me} FROM PUBLIC"));
        let grants = pg.query_in(
            MAINTENANCE_DB,
            &format!(
                "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, \
                 a.privilege_type FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = {}",
                literal(&pg.conn.dbname)
            ),
        )?;
        for row in grants {
            if let [Some(grantee), Some(privilege)] = row.as_slice() {
                steps.push(format!("GRANT {privilege} ON DATABASE {me} TO {grantee}"));
            }
        }
    }
    let settings = pg.query_in(
        MAINTENANCE_DB,
        &format!(
            "SELECT s.setrole::text, quote_ident(pg_get_userbyid(s.setrole)), c FROM pg_db_role_setting s, \
             unnest(s.setconfig) c WHERE s.setdatabase = {}",
            get(8).unwrap_or_else(|| "0".into())
        ),
    )?;
    for row in settings {
        let [Some(role_oid), role, Some(item)] = row.as_slice() else {
            continue;
        };
        let Some((name, value)) = item.split_once('=') else {
            continue;
        };
        let value = if LIST_SETTINGS.contains(&name) {
            value.to_string()
        } else {
            literal(value)
        };
        match (role_oid.as_str(), role) {
            ("0", _) => steps.push(format!(
                "ALTER DATABASE {me} SET {} TO {value}",
                ident(name)
            )),
            (_, Some(role)) => steps.push(format!(
                "ALTER ROLE {role} IN DATABASE {me} SET {} TO {value}",
                ident(name)
            )),
            _ => {}
        }
    }
    Ok(steps)
}

impl Drop for ScratchDb<'_> {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        let dropped = self.pg.query_in(
            MAINTENANCE_DB,
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

fn scratch_name(target: &str, purpose: &str) -> String {
    format!(
        "{}__faber_{purpose}_{}",
        scratch_stem(target),
        random_suffix()
    )
}

/// A value inside single quotes in a libpq connection string.
fn conninfo_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

/// Drops the scratch databases killed runs left on this server: those the project's ledger
/// records, whose runs are dead, that still carry their record's marker, that nobody is connected
/// to, and — for data a restore replaced — whose safety backup was taken. Returns their names.
/// Any other database, whatever its name, is never touched. Without `drop`, only the records of
/// databases that are gone are forgotten.
pub(super) fn sweep(pg: &Postgres, drop: bool) -> Result<scratch::Sweep> {
    let Some(ledger) = &pg.ledger else {
        return Ok(scratch::Sweep::default());
    };
    let look = |name: &str| -> Result<Option<scratch::Seen>> {
        let found = pg.query_in(
            MAINTENANCE_DB,
            &format!(
                "SELECT coalesce(shobj_description(d.oid, 'pg_database'), ''), \
                 (SELECT count(*) FROM pg_stat_activity a WHERE a.datname = d.datname)::text \
                 FROM pg_database d WHERE d.datname = {}",
                literal(name)
            ),
        )?;
        Ok(found.into_iter().next().map(|row| scratch::Seen {
            comment: row.first().cloned().flatten(),
            in_use: row.get(1).cloned().flatten().as_deref() != Some("0"),
        }))
    };
    let drop_db = |name: &str| {
        pg.query_in(
            MAINTENANCE_DB,
            &format!("DROP DATABASE IF EXISTS {}", ident(name)),
        )
        .map(|_| ())
    };
    ledger.sweep(&pg.server_id(), drop, look, drop_db)
}

pub(super) fn stage<'a>(
    pg: &'a Postgres,
    format: Format,
    source: Source<'_>,
    migrations_table: Option<&str>,
    jobs: u32,
) -> Result<Box<dyn Staged + 'a>> {
    let scratch = ScratchDb::create(pg, Purpose::Restore)?;
    let copied = scratch.load(format, source, jobs)?;
    Ok(Box::new(StagedPostgres {
        scratch,
        migrations_table: migrations_table.map(str::to_string),
        copied,
    }))
}

/// Loads a dump into a scratch database, counts its rows and drops it again.
pub(super) fn deep_check(
    pg: &Postgres,
    format: Format,
    source: Source<'_>,
    jobs: u32,
) -> Result<(String, Tables)> {
    let scratch = ScratchDb::create(pg, Purpose::Verify)?;
    // A load that fails although the checksum matched says more about this server (a missing
    // role, extension) than about the backup: the caller reports it as not verified.
    let (trailer_missing, copied) = match source {
        Source::Stream(stream) => {
            let mut tail = TailReader::new(stream);
            let copied = scratch.load(format, Source::Stream(&mut tail), jobs)?;
            (!tail.ends_with_marker(super::DUMP_TRAILER), copied)
        }
        path @ Source::Path(_) => (false, scratch.load(format, path, jobs)?),
    };
    crate::testpoint::pause("verify:deep-loaded");
    if format == Format::Sql && trailer_missing {
        return Ok((
            "the dump's completion trailer is missing".to_string(),
            Tables::new(),
        ));
    }
    let tables = pg.count_rows_loaded(&scratch.name, copied.as_ref())?;
    Ok(("ok".to_string(), tables))
}

/// The `FROM … WHERE …` of the sessions connected to `target` other than the querying one. An
/// autovacuum worker is no one's session: the server ends it itself for the rename or drop of
/// the database, so it must not make a restore refuse.
fn sessions_of(target: &str) -> String {
    format!(
        "FROM pg_stat_activity WHERE datname = {} AND pid <> pg_backend_pid() \
         AND backend_type IS DISTINCT FROM 'autovacuum worker'",
        literal(target)
    )
}

/// The sessions connected to the target database other than the querying one (none when it
/// does not exist): what the swap would find in its way. The pre-flight and the commit ask
/// this same question.
pub(super) fn other_sessions(pg: &Postgres) -> Result<Vec<OtherSession>> {
    let rows = pg.query_in(
        MAINTENANCE_DB,
        &format!(
            "SELECT pid, usename, application_name, client_addr {} ORDER BY pid",
            sessions_of(&pg.conn.dbname)
        ),
    )?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let mut fields = row.into_iter();
            let mut next = || fields.next().flatten();
            OtherSession {
                id: next().unwrap_or_default(),
                user: next(),
                application: next(),
                client: next(),
            }
        })
        .collect())
}

struct StagedPostgres<'a> {
    scratch: ScratchDb<'a>,
    migrations_table: Option<String>,
    /// The rows the load put into each table, as the server said.
    copied: Option<Copied>,
}

impl Staged for StagedPostgres<'_> {
    fn commit(mut self: Box<Self>, options: &CommitOptions) -> Result<Committed, CommitFailed> {
        let pg = self.scratch.pg;
        let target = pg.conn.dbname.clone();
        clear_sessions(pg, options.terminate_connections)?;
        let scratch_name_now = self.scratch.name.clone();
        let target_comment = match &self.scratch.comment {
            Some(c) => literal(c),
            None => "NULL".to_string(),
        };
        if !pg.exists()? {
            let into = format!(
                "BEGIN; COMMENT ON DATABASE {s} IS NULL; ALTER DATABASE {s} RENAME TO {t}; COMMIT;",
                s = ident(&scratch_name_now),
                t = ident(&target)
            );
            pg.query_in(MAINTENANCE_DB, &into)
                .map_err(|e| e.add_hint("nothing was restored"))?;
            self.scratch.became_target();
            return Ok(Committed {
                inspection: pg.inspect_loaded(
                    &target,
                    self.migrations_table.as_deref(),
                    self.copied.as_ref(),
                )?,
                replaced: None,
                kept: Vec::new(),
            });
        }
        // The target goes aside under a name of its own, recorded and marked in the same
        // transaction that swaps the restored database in: the target is never missing, and
        // what it held is never lost, whatever stops us.
        let old = scratch_name(&target, Purpose::Replaced.name_part());
        let claim = pg
            .ledger()?
            .claim(&pg.server_id(), Purpose::Replaced, &old)?;
        let swap = format!(
            "BEGIN; ALTER DATABASE {t} RENAME TO {o}; COMMENT ON DATABASE {o} IS {m}; \
             COMMENT ON DATABASE {s} IS {c}; ALTER DATABASE {s} RENAME TO {t}; COMMIT;",
            t = ident(&target),
            o = ident(&old),
            m = literal(&scratch::marker(&claim.entry().token)),
            s = ident(&scratch_name_now),
            c = target_comment,
        );
        if let Err(e) = pg.query_in(MAINTENANCE_DB, &swap) {
            claim.release();
            return Err(if e.one_line().contains("being accessed by other users") {
                Error::new(Kind::Busy, format!("{target} could not be swapped; nothing was restored"))
                    .caused_by(Cause::in_one_line(e))
                    .with_hint("a session connected meanwhile; stop the application (or pass --terminate-connections) and restore again")
            } else {
                e.add_hint("nothing was restored")
            }
            .into());
        }
        self.scratch.became_target();
        crate::testpoint::pause("restore:swapped");
        let replaced = ReplacedPostgres {
            pg: pg.at_database(&old),
            name: old,
            claim,
        };
        // Read back from the database; a failure here leaves the replaced data where it is.
        let inspection = pg
            .inspect_loaded(
                &target,
                self.migrations_table.as_deref(),
                self.copied.as_ref(),
            )
            .map_err(|e| {
                CommitFailed::from(e.add_hint(format!(
                    "the restore is in place; the data it replaced is kept in database {}",
                    replaced.name
                )))
            })?;
        Ok(Committed {
            inspection,
            replaced: Some(Box::new(replaced)),
            kept: Vec::new(),
        })
    }
}

/// Ends the other sessions connected to the target when `terminate`, else refuses (exit 7) while
/// there are any.
pub(super) fn clear_sessions(pg: &Postgres, terminate: bool) -> Result<()> {
    let target = &pg.conn.dbname;
    if terminate {
        pg.query_in(
            MAINTENANCE_DB,
            &format!("SELECT pg_terminate_backend(pid) {}", sessions_of(target)),
        )?;
    }
    let others = other_sessions(pg)?;
    if !others.is_empty() {
        return Err(crate::provider::sessions_busy(target, &others));
    }
    Ok(())
}

/// The target as it was before a restore, renamed aside at the swap.
struct ReplacedPostgres {
    pg: Postgres,
    name: String,
    claim: Claim,
}

impl Replaced for ReplacedPostgres {
    fn provider(&self) -> Box<dyn Provider> {
        Box::new(self.pg.clone())
    }

    fn describe(&self) -> String {
        format!("database {}", self.name)
    }

    fn discard(mut self: Box<Self>) -> Result<()> {
        // Recorded first: if the drop fails or is killed, a later sweep may finish it.
        self.claim.mark_disposable().map_err(|e| {
            Error::tool(format!("cannot record that {} may be dropped", self.name)).caused_by(e)
        })?;
        self.pg
            .query_in(
                MAINTENANCE_DB,
                &format!("DROP DATABASE {}", ident(&self.name)),
            )
            .map_err(|e| {
                Error::tool(format!(
                    "the restore is in place, but database {}, which held the replaced data, could not be dropped",
                    self.name
                ))
                .caused_by(Cause::in_one_line(e))
                .with_hint("the next restore or verify --deep on this server drops it")
            })?;
        self.claim.release();
        Ok(())
    }
}
