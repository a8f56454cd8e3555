//! Databases behind one trait: what faber-db needs from SQLite, PostgreSQL or MySQL to dump,
//! inspect, check and restore. A new database is one new file here.

mod counts;
mod dump_options;
pub mod exclude;
mod keyquery;
pub mod method;
pub mod mysql;
pub mod postgres;
mod sessions;
pub mod sqlite;
pub(crate) mod tool;
mod url;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::Format;
use crate::migrations::MigrationState;
use crate::pipeline::{Compression, Written};

pub use self::counts::{TableStats, Tables};
pub use self::dump_options::{DumpOptions, QUICK_CHECK_PASSED, TableNow, TableProgress};
pub(crate) use self::dump_options::{InTable, Watched};
pub use self::method::{Blocked, MethodChoice, RestoreMethod, RestorePrivileges};
pub use self::postgres::GlobalsApplied;
pub use self::sessions::{OtherSession, describe_sessions, sessions_busy};
pub use self::url::{
    DatabaseUrl, blank_out, is_secret_param as url_is_secret_param, naming as url_naming,
};

/// Which database software a backup came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Sqlite,
    Postgres,
    Mysql,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Sqlite => "sqlite",
            ProviderKind::Postgres => "postgres",
            ProviderKind::Mysql => "mysql",
        }
    }
}

/// `found`, with each table under the name `expected` gives it. A manifest written by an earlier
/// faber-db names a PostgreSQL table whose name holds a `.` or `"` the older, ambiguous way
/// (see `postgres::legacy_table_key`); such a table is matched when exactly one found table
/// has that older name and the manifest does not know it by its own.
pub fn as_named_in(kind: ProviderKind, expected: &Tables, found: &Tables) -> Tables {
    let older = |name: &String| match kind {
        ProviderKind::Postgres if !expected.contains_key(name) => postgres::legacy_table_key(name)
            .filter(|old| expected.contains_key(old) && !found.contains_key(old)),
        _ => None,
    };
    let mut claimed: BTreeMap<String, usize> = BTreeMap::new();
    for old in found.keys().filter_map(older) {
        *claimed.entry(old).or_default() += 1;
    }
    found
        .iter()
        .map(|(name, stats)| {
            let name = older(name)
                .filter(|old| claimed.get(old) == Some(&1))
                .unwrap_or_else(|| name.clone());
            (name, *stats)
        })
        .collect()
}

/// Tables larger than this get estimated row counts unless [`Options`] say otherwise.
pub const DEFAULT_ROW_COUNT_MAX_TABLE_SIZE: u64 = 1 << 30;

/// How a provider is to go about its work, from the environment's config.
#[derive(Debug, Clone)]
pub struct Options {
    /// Tables larger than this get estimated row counts.
    pub row_count_max_table_size: u64,
    /// Where the scratch databases it creates are recorded (see [`crate::scratch`]); without
    /// one, it creates none.
    pub ledger: Option<crate::scratch::Ledger>,
}

/// What a database holds, as far as a backup records it.
#[derive(Debug, Clone, Default)]
pub struct Inspection {
    pub tables: Tables,
    pub migrations: Option<MigrationState>,
}

/// What a finished dump reports besides the bytes it streamed.
#[derive(Debug, Clone)]
pub struct Dumped {
    pub inspection: Inspection,
    /// What the sink stored, for a streamed dump; `None` for a directory dump.
    pub written: Option<Written>,
    pub tool_version: String,
    /// The database's integrity check result on the dumped data (`ok` when sound).
    pub integrity_check: String,
}

/// The structure check of a decoded backup (DESIGN.md §6).
#[derive(Debug, Clone)]
pub struct StructureCheck {
    pub integrity_check: String,
    /// Per-table row counts of the backup's data, when a deep check loaded it.
    pub tables: Option<Tables>,
}

/// Receives the dump stream and stores it; returns what was stored.
pub type Sink<'a> = dyn FnMut(&mut dyn Read) -> std::io::Result<Written> + 'a;

/// Where a dump goes.
pub enum DumpTo<'a, 'b> {
    /// A byte stream, handed to the sink.
    Stream(&'a mut Sink<'b>),
    /// Files the dump tool writes into the directory `path`, which it creates
    /// (`pg_dump --format=directory`), with `jobs` parallel workers and its own compression.
    Directory {
        path: &'a Path,
        jobs: u32,
        compression: Compression,
    },
}

/// Where a restore or a check reads a dump from.
pub enum Source<'a> {
    /// The decoded dump as a byte stream (checked against its SHA-256 as it is read).
    Stream(&'a mut dyn Read),
    /// A dump on disk whose checksum was checked just before: a directory dump, or an
    /// uncompressed archive that the restore tool reads in parallel.
    Path(&'a Path),
}

/// One database, reached through its URL.
pub trait Provider {
    fn kind(&self) -> ProviderKind;

    /// The database's name as recorded in backups (a file name for SQLite).
    fn database_name(&self) -> String;

    /// The formats this database can be dumped in; the first is the default.
    fn formats(&self) -> &'static [Format];

    /// Whether the database exists at all (a restore into a missing one has nothing to save).
    fn exists(&self) -> Result<bool>;

    /// Checks the database can be reached; returns the server's version.
    fn check_connection(&self) -> Result<String>;

    /// A conservative size of the dump before compression, for the free-space check.
    fn size_estimate(&self) -> Result<u64>;

    /// Whether a backup copies the database whole on disk before it stores it (an SQLite
    /// snapshot), and so needs room for that copy too; `excludes_data`: some tables' rows are
    /// to be left out.
    fn backup_copies_first(&self, excludes_data: bool) -> bool {
        let _ = excludes_data;
        false
    }

    /// Tables with row counts (when `count_rows`) and migration state of the live database.
    fn inspect(&self, migrations_table: Option<&str>, count_rows: bool) -> Result<Inspection>;

    /// What `status` shows of a database that answers: the server's version
    /// ([`Provider::check_connection`]) and the migration state. A provider whose client tool
    /// costs tens of milliseconds a call asks for both in fewer calls.
    fn version_and_migrations(
        &self,
        migrations_table: Option<&str>,
    ) -> Result<(String, Option<MigrationState>)> {
        let version = self.check_connection()?;
        Ok((version, self.inspect(migrations_table, false)?.migrations))
    }

    /// The live database's tables, columns and indexes.
    fn schema(&self) -> Result<crate::schema::Schema> {
        Err(Error::tool(format!(
            "reading the schema of a {} database is not supported yet",
            self.kind().as_str()
        )))
    }

    /// The largest value of each `(table, column)` key — a table as [`Provider::schema`] names
    /// it, its single integer primary-key column — in order (`None`: the table is empty). Read
    /// before a dump, for its manifest. Not supported by default: nothing is recorded.
    fn key_maxima(&self, keys: &[(&str, &str)]) -> Result<Vec<Option<i64>>> {
        let _ = keys;
        Err(self.keys_unsupported())
    }

    /// How the rows of `table` fall either side of `max` in its integer key `column` (all
    /// above when `max` is `None`), in one aggregate query that reads no row out. Not supported
    /// by default: a rollback's preview then compares row counts.
    fn split_by_key(
        &self,
        table: &str,
        column: &str,
        max: Option<i64>,
    ) -> Result<crate::schema::KeySplit> {
        let _ = (table, column, max);
        Err(self.keys_unsupported())
    }

    /// The tables whose rows are those of other tables listed beside them (PostgreSQL's
    /// partitioned tables, whose partitions hold the rows), by name: counted once, not twice.
    fn partitioned_tables(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// The error of the key methods a provider does not implement.
    fn keys_unsupported(&self) -> Error {
        Error::tool(format!(
            "reading the keys of a {} database is not supported",
            self.kind().as_str()
        ))
    }

    /// Takes a consistent dump to `to`, as `options` ask (without the rows of the tables
    /// `exclude_data` matches). `work_dir` holds any temporary files, named `*.partial`.
    fn dump(
        &self,
        options: &DumpOptions<'_>,
        work_dir: &Path,
        to: DumpTo<'_, '_>,
    ) -> Result<Dumped>;

    /// Gets the target ready for a restore of `raw_size` bytes, before anything else: sweeps
    /// what a killed restore left (returned), fails if another restore is running or there is
    /// no room.
    fn prepare_restore(&self, raw_size: u64) -> Result<Vec<std::path::PathBuf>>;

    /// The dump and restore tools this database would use, with their versions (`doctor`).
    fn tools_report(&self) -> Result<Option<String>> {
        Ok(None)
    }

    /// The tools a restore into this database runs, with their versions (the pre-flight of
    /// `restore`, `rollback` and `migrate`); fails (exit 4) when one is missing. `None` when a
    /// restore runs no tool (SQLite).
    fn restore_tools_report(&self) -> Result<Option<String>> {
        Ok(None)
    }

    /// The other sessions connected to the database (not this process's own connection), as
    /// the restore's swap would find them: the pre-flight refuses on them before anything
    /// changes, and the commit checks again. `None` when the database has no sessions to speak
    /// of (SQLite); empty when it does not exist.
    fn other_sessions(&self) -> Result<Option<Vec<OtherSession>>> {
        Ok(None)
    }

    /// Ends the other sessions on the database when `terminate`, else fails (exit 7) while any
    /// is connected: what a restore's commit does first, also asked for before an in-place
    /// restore's safety backup, so that no session writes between that backup and the load.
    fn clear_sessions(&self, _terminate: bool) -> Result<()> {
        Ok(())
    }

    /// Which other sessions [`Provider::other_sessions`] cannot see, when some are hidden from
    /// the connected role (a MySQL user without PROCESS sees only its own), said to a person
    /// with the grant that would show them; `None` when it sees them all.
    fn sessions_unseen(&self) -> Result<Option<String>> {
        Ok(None)
    }

    /// Where a restore stages the backup on this machine and how many bytes that takes for a
    /// dump of `raw_size` bytes (SQLite: a staging file beside the database); `None` when the
    /// staging copy is on the database server.
    fn staging_need(&self, _raw_size: u64) -> Option<(std::path::PathBuf, u64)> {
        None
    }

    /// Loads the dump `source` somewhere it can be checked without touching the database, with
    /// up to `jobs` parallel workers where the tool can; [`Staged::commit`] then puts it in place.
    fn stage_restore<'a>(
        &'a self,
        format: Format,
        source: Source<'_>,
        migrations_table: Option<&str>,
        jobs: u32,
    ) -> Result<Box<dyn Staged + 'a>>;

    /// Whether a commit sets the data it replaces aside, where no application reaches it, rather
    /// than destroying it (see [`Committed::replaced`]): the safety backup is then taken of that,
    /// after the swap, and no write made before the swap can miss it.
    fn sets_replaced_aside(&self) -> bool {
        false
    }

    /// What the connected role may do towards restoring this database — whether it may swap a
    /// checked scratch copy in, or replace the content in place, and if not, why and which grant
    /// is missing (see [`method`]). Reads the server and changes nothing; the restore's method is
    /// chosen from it with [`method::choose`].
    fn restore_privileges(&self) -> Result<RestorePrivileges> {
        Ok(RestorePrivileges::file_swap())
    }

    /// Whether a failed [`Provider::restore_in_place`] leaves the database as it was (PostgreSQL:
    /// one transaction). Where it does not (MySQL), the caller restores the safety backup.
    fn in_place_is_atomic(&self) -> bool {
        false
    }

    /// Replaces the database's content with the dump `source` in place: the target's own
    /// objects are dropped and the dump loaded into it (see [`method`]). Called after the
    /// safety backup; returns what the database then holds. A failure says whether the
    /// database was left changed ([`CommitFailed::incomplete`]).
    fn restore_in_place(
        &self,
        format: Format,
        _source: Source<'_>,
        _migrations_table: Option<&str>,
        _options: &InPlace<'_>,
    ) -> Result<Committed, CommitFailed> {
        Err(Error::config(format!(
            "{format} backups of this database are not restored in place"
        ))
        .into())
    }

    /// Drops the scratch databases that killed runs left on this server, as the project's
    /// ledger proves them ours (see [`crate::scratch`]), and says what it found. Without `drop`,
    /// only forgets the records of those that are gone.
    fn sweep_scratch(&self, _drop: bool) -> Result<crate::scratch::Sweep> {
        Ok(crate::scratch::Sweep::default())
    }

    /// Loads the dump into a new scratch database of this server (SQLite: a file in the
    /// ledger's directory), recorded in the project's ledger as a rehearsal's: it lives until
    /// the returned copy is dropped, which drops it (a killed run's is swept by a later one).
    fn scratch_copy<'a>(
        &'a self,
        format: Format,
        _source: Source<'_>,
        _jobs: u32,
    ) -> Result<Box<dyn ScratchCopy + 'a>> {
        Err(Error::config(format!(
            "{format} backups of a {} database cannot be loaded into a scratch database",
            self.kind().as_str()
        )))
    }

    /// This provider as [`std::any::Any`]: a table restore reads the tables it puts back from a
    /// scratch copy of the same kind ([`Provider::replace_tables`]).
    fn as_any(&self) -> &dyn std::any::Any;

    /// Replaces tables `tables` (as the manifest names them) of this database with those of
    /// `from`, a scratch copy of the same kind that holds the backup: their definitions, rows,
    /// indexes, constraints and triggers. Nothing else of the database changes. PostgreSQL and
    /// SQLite do it in one transaction, so a failure leaves the database as it was; a failure
    /// that left it changed says so ([`CommitFailed::incomplete`]).
    fn replace_tables(&self, _from: &dyn Provider, _tables: &[String]) -> Result<(), CommitFailed> {
        Err(Error::config(format!(
            "tables of a {} database cannot be restored one by one",
            self.kind().as_str()
        ))
        .into())
    }

    /// Refuses, before anything is loaded or backed up, tables of `tables` that
    /// [`Provider::replace_tables`] could not replace here (PostgreSQL: a partitioned table, a
    /// partition, one a view depends on).
    fn check_replaceable(&self, _tables: &[String]) -> Result<()> {
        Ok(())
    }

    /// After [`Provider::replace_tables`]: the foreign keys of other tables whose rows now point
    /// at rows the restored `tables` lack, where the restore does not check them (MySQL loads
    /// with foreign key checks off; SQLite checks none), each said in a line.
    fn dangling_references(&self, _tables: &[String]) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// Whether `name` can be made by [`Provider::restore_into`]: no database (file) by that name,
    /// and a role that may create it. Changes nothing.
    fn check_new_database(&self, _name: &str) -> Result<()> {
        Ok(())
    }

    /// Loads the dump into `name`, a new database on this server (SQLite: a new file at that
    /// path), which it creates and never one that exists, and leaves it there; returns what it
    /// holds. A load that fails removes it again (it is recorded in the project's ledger until it
    /// is complete, so a killed run's is swept by a later one).
    fn restore_into(
        &self,
        _name: &str,
        format: Format,
        _source: Source<'_>,
        _migrations_table: Option<&str>,
        _jobs: u32,
    ) -> Result<Inspection> {
        Err(Error::config(format!(
            "{format} backups cannot be restored into another {} database",
            self.kind().as_str()
        )))
    }

    /// The server's roles and tablespaces as SQL (`include_globals`), role passwords only when
    /// asked for.
    fn dump_globals(&self, _role_passwords: bool) -> Result<String> {
        Err(Error::config(format!(
            "include_globals applies to PostgreSQL, not {}",
            self.kind().as_str()
        )))
    }

    /// Makes the roles and tablespaces of `script` (from [`Provider::dump_globals`]) that this
    /// server lacks, leaving those it has as they are.
    fn apply_globals(&self, _script: &str) -> Result<GlobalsApplied> {
        Err(Error::config(format!(
            "--with-globals applies to PostgreSQL, not {}",
            self.kind().as_str()
        )))
    }

    /// Loads the dump somewhere scratch, returns its integrity verdict and per-table row counts,
    /// and removes it again (`verify --deep` of server databases).
    fn deep_check(
        &self,
        format: Format,
        _source: Source<'_>,
        _jobs: u32,
    ) -> Result<(String, Tables)> {
        Err(Error::config(format!(
            "deep checks of {format} backups need no server here"
        )))
    }
}

/// A backup loaded into a scratch database of faber-db's own (see [`Provider::scratch_copy`]),
/// for a migration to be rehearsed on. Dropping it drops the database.
pub trait ScratchCopy {
    /// The scratch database's name on its server; for SQLite, the copy's path.
    fn name(&self) -> &str;

    /// The copy, as a database to read (its schema, row counts and migration state).
    fn provider(&self) -> &dyn Provider;
}

/// Checks a decoded plain SQL dump: it must decode to the end and carry the dump tool's
/// completion trailer.
fn check_sql_dump(decoded: &mut dyn Read, trailer: &str) -> Result<StructureCheck> {
    let mut tail = crate::pipeline::TailReader::new(decoded);
    crate::pipeline::copy(&mut tail, &mut std::io::sink())
        .map_err(|e| Error::verification("the backup's data stream is unreadable").caused_by(e))?;
    let integrity_check = if tail.ends_with_marker(trailer) {
        "ok".to_string()
    } else {
        "the dump's completion trailer is missing".to_string()
    };
    Ok(StructureCheck {
        integrity_check,
        tables: None,
    })
}

/// How a staged restore may clear the way.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommitOptions {
    /// End other sessions connected to the target database (PostgreSQL) instead of refusing.
    pub terminate_connections: bool,
}

/// How an in-place restore goes about its work.
#[derive(Debug, Clone, Copy, Default)]
pub struct InPlace<'a> {
    /// End other sessions connected to the target database instead of refusing.
    pub terminate_connections: bool,
    /// The row counts the backup's manifest records: where the load is one transaction
    /// (PostgreSQL), they are compared before it commits, and a difference rolls it back. `None`
    /// when the counts are known to differ (a `mismatch` backup restored by name).
    pub expected: Option<&'a Tables>,
}

/// What a commit did: what the database holds now, and the data it replaced when that was set
/// aside (PostgreSQL, MySQL) rather than destroyed.
pub struct Committed {
    pub inspection: Inspection,
    pub replaced: Option<Box<dyn Replaced>>,
    /// Tables of other roles that an in-place restore kept and the backup does not hold: not in
    /// `inspection`, so not compared with the manifest.
    pub kept: Vec<String>,
}

/// The data a restore replaced, set aside under a scratch name no application uses, complete as
/// it was at the swap, until its safety backup is taken. Dropped without [`Replaced::discard`],
/// it stays, recorded in the ledger as not to be dropped (`doctor` reports it).
pub trait Replaced {
    /// The replaced data as a database to back up; it records itself under the target's name.
    fn provider(&self) -> Box<dyn Provider>;

    /// Where it is kept, as said to a user.
    fn describe(&self) -> String;

    /// Its safety backup is registered, or none is wanted: drops it.
    fn discard(self: Box<Self>) -> Result<()>;
}

/// A restore that is loaded and checked, waiting to replace the database's content.
pub trait Staged {
    /// Replaces the database's content with the staged data; returns what the database then
    /// holds, read back from it (or from the very tables moved into it).
    fn commit(self: Box<Self>, options: &CommitOptions) -> Result<Committed, CommitFailed>;
}

/// A [`Staged::commit`] that failed: why, and whether it had begun to change the database,
/// which it then left incomplete.
#[derive(Debug)]
pub struct CommitFailed {
    pub error: Error,
    pub incomplete: bool,
}

impl CommitFailed {
    /// A failure after the database began to change.
    pub fn incomplete(error: Error) -> CommitFailed {
        CommitFailed {
            error,
            incomplete: true,
        }
    }
}

impl From<Error> for CommitFailed {
    /// A failure before anything changed.
    fn from(error: Error) -> CommitFailed {
        CommitFailed {
            error,
            incomplete: false,
        }
    }
}

/// Opens the provider for a parsed URL.
pub fn open(url: &DatabaseUrl, options: Options) -> Result<Box<dyn Provider>> {
    match url {
        DatabaseUrl::Sqlite(path) => Ok(Box::new(
            sqlite::Sqlite::new(path.clone()).with_options(options),
        )),
        DatabaseUrl::Server {
            kind: ProviderKind::Postgres,
            url,
        } => Ok(Box::new(
            postgres::Postgres::new(url)?.with_options(options),
        )),
        DatabaseUrl::Server {
            kind: ProviderKind::Mysql,
            url,
        } => Ok(Box::new(mysql::Mysql::new(url)?.with_options(options))),
        DatabaseUrl::Server {
            kind: ProviderKind::Sqlite,
            ..
        } => Err(Error::config("an SQLite database has no server URL")),
    }
}

/// Checks the structure of a dump without a live database; `deep` also counts its rows.
pub fn check_structure(
    kind: ProviderKind,
    format: Format,
    source: Source<'_>,
    work_dir: &Path,
    deep: bool,
) -> Result<StructureCheck> {
    match (kind, format, source) {
        (ProviderKind::Sqlite, Format::Sqlite, Source::Stream(decoded)) => {
            sqlite::check_image(decoded, work_dir, deep)
        }
        (ProviderKind::Postgres, Format::Sql, Source::Stream(decoded)) if !deep => {
            check_sql_dump(decoded, postgres::DUMP_TRAILER)
        }
        (ProviderKind::Mysql, Format::Sql, Source::Stream(decoded)) if !deep => {
            check_sql_dump(decoded, mysql::DUMP_TRAILER)
        }
        (ProviderKind::Postgres, Format::Custom | Format::Directory, source) if !deep => {
            postgres::check_archive(source)?;
            Ok(StructureCheck {
                integrity_check: "ok".into(),
                tables: None,
            })
        }
        _ => Err(Error::config(format!(
            "cannot check {} backups in {format} format with this build",
            kind.as_str()
        ))),
    }
}
