//! SQLite, in process: consistent copies through SQLite's online backup API, checks on decoded
//! images (`image`), and restores that stage, check, then copy in one transaction (`restore`).

mod copy;
mod dump;
mod exclude;
mod image;
mod keycount;
mod restore;
pub mod schema;
mod tables;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::{DumpTo, Dumped, Inspection, Provider, ProviderKind, Source, Staged};
use crate::error::{Error, Kind, Remedy, Result};
use crate::format::Format;
use image::inspect;

pub use image::{check_image, version};

/// Pages copied per backup step; between steps writers may proceed.
const PAGES_PER_STEP: i32 = 4096;
/// Restarts of an incremental copy (caused by concurrent writes) before copying in one step.
const MAX_RESTARTS: u32 = 3;
/// How long a backup or restore waits for a lock without making progress.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Sqlite {
    path: PathBuf,
    /// The project's ledger, where a restore records the staging file it writes beside the
    /// database (the application's directory, where no other file is faber-db's to remove).
    ledger: Option<crate::scratch::Ledger>,
}

impl Sqlite {
    pub fn new(path: PathBuf) -> Sqlite {
        Sqlite { path, ledger: None }
    }

    pub fn with_options(mut self, options: super::Options) -> Sqlite {
        self.ledger = options.ledger;
        self
    }

    fn not_found(&self) -> Error {
        Error::connection(format!(
            "SQLite database {} does not exist",
            self.path.display()
        ))
        .with_hint(Remedy::RestoreInto)
    }

    /// Opens the live database for reading; a missing or unreadable file is a connection
    /// failure. It is opened read-write when allowed (never created), so that a rollback journal
    /// left by a crashed writer is rolled back as any SQLite client would; nothing is written.
    fn open_live(&self) -> Result<Connection> {
        if !self.path.is_file() {
            return Err(self.not_found());
        }
        let open = |flags: OpenFlags| -> rusqlite::Result<Connection> {
            let conn =
                Connection::open_with_flags(&self.path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            // Reading the schema proves this is a database and not some other file.
            conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
            Ok(conn)
        };
        open(OpenFlags::SQLITE_OPEN_READ_WRITE).or_else(|first| match first.sqlite_error_code() {
            Some(
                rusqlite::ErrorCode::ReadOnly
                | rusqlite::ErrorCode::CannotOpen
                | rusqlite::ErrorCode::PermissionDenied,
            ) => open(OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|e| self.cannot_open(e)),
            _ => Err(self.cannot_open(first)),
        })
    }

    /// Tables with row counts and migration state of the live database.
    fn inspect_counted(&self, migrations_table: Option<&str>) -> Result<Inspection> {
        inspect(&self.open_live()?, migrations_table, true)
    }

    fn keys_unreadable(&self, e: rusqlite::Error) -> Error {
        Error::connection(format!("cannot read the keys of {}", self.path.display())).caused_by(e)
    }

    fn side_file(&self, suffix: &str) -> PathBuf {
        let mut side = self.path.as_os_str().to_owned();
        side.push(suffix);
        PathBuf::from(side)
    }

    fn cannot_open(&self, e: rusqlite::Error) -> Error {
        if matches!(
            e.sqlite_error_code(),
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
        ) {
            return Error::new(
                Kind::Busy,
                format!(
                    "SQLite database {} is locked by another connection",
                    self.path.display()
                ),
            )
            .caused_by(e)
            .with_hint(
                "retry when the application is not in the middle of a long write, or stop it",
            );
        }
        let hint = if self.side_file("-journal").exists() {
            "a rollback journal left by a crashed writer needs write access to be rolled back: \
             run faber-db as a user who can write the database and its directory"
        } else {
            "check that the file is an SQLite database and readable by this user"
        };
        Error::connection(format!(
            "cannot open SQLite database {}",
            self.path.display()
        ))
        .caused_by(e)
        .with_hint(hint)
    }

    /// Copies the live database into `dest` with the online backup API, a batch of pages at a time.
    #[allow(
        clippy::unused_self,
        reason = "a step of this provider's dump, beside the others"
    )]
    fn snapshot_into(&self, src: &Connection, dest: &Path) -> Result<()> {
        let copy_failed = |e: rusqlite::Error| {
            if e.sqlite_error_code() == Some(ErrorCode::DiskFull) {
                Error::new(
                    Kind::DiskSpace,
                    "the backup directory filled up during the SQLite snapshot",
                )
                .caused_by(e)
                .with_hint(Remedy::MakeRoom { there: true })
            } else {
                Error::tool("SQLite online backup failed").caused_by(e)
            }
        };
        let mut dst = Connection::open(dest).map_err(copy_failed)?;
        // The snapshot is a work file: no journal, and no fsync per step (what is kept is the
        // stored backup, synced when it is complete).
        dst.pragma_update(None, "journal_mode", "OFF")
            .map_err(copy_failed)?;
        dst.pragma_update(None, "synchronous", "OFF")
            .map_err(copy_failed)?;
        let backup = Backup::new(src, &mut dst).map_err(copy_failed)?;
        // A write by another connection restarts an incremental copy from the first page. After
        // a few restarts the rest is copied in one step, under one read transaction (in WAL mode
        // writers go on meanwhile; in rollback mode they wait for it).
        let mut restarts = 0;
        let mut last_remaining = i32::MAX;
        let mut waiting_since = Instant::now();
        loop {
            let pages = if restarts >= MAX_RESTARTS {
                -1
            } else {
                PAGES_PER_STEP
            };
            crate::interrupt::check().map_err(|e| Error::aborted("interrupted").caused_by(e))?;
            match backup.step(pages).map_err(copy_failed)? {
                StepResult::Done => return Ok(()),
                StepResult::More => {
                    let remaining = backup.progress().remaining;
                    if remaining > last_remaining {
                        restarts += 1;
                    }
                    last_remaining = remaining;
                    waiting_since = Instant::now();
                }
                _ if waiting_since.elapsed() > BUSY_TIMEOUT => {
                    return Err(Error::new(
                        Kind::Busy,
                        "the SQLite database stayed locked by a writer",
                    )
                    .with_hint("retry when the application's write load is lower"));
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

impl Provider for Sqlite {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Sqlite
    }

    fn database_name(&self) -> String {
        self.path.file_name().map_or_else(
            || self.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }

    fn formats(&self) -> &'static [Format] {
        &[Format::Sqlite]
    }

    fn exists(&self) -> Result<bool> {
        Ok(self.path.exists())
    }

    fn check_connection(&self) -> Result<String> {
        self.open_live()?;
        Ok(version())
    }

    fn tools_report(&self) -> Result<Option<String>> {
        Ok(Some("built in, no tools needed".to_string()))
    }

    fn size_estimate(&self) -> Result<u64> {
        let size = |p: &Path| fs::metadata(p).map_or(0, |m| m.len());
        let mut wal = self.path.as_os_str().to_owned();
        wal.push("-wal");
        Ok(size(&self.path) + size(Path::new(&wal)))
    }

    fn backup_copies_first(&self, excludes_data: bool) -> bool {
        excludes_data || !self.open_live().is_ok_and(|conn| dump::streamable(&conn))
    }

    fn inspect(&self, migrations_table: Option<&str>, count_rows: bool) -> Result<Inspection> {
        let conn = self.open_live()?;
        inspect(&conn, migrations_table, count_rows)
    }

    fn schema(&self) -> Result<crate::schema::Schema> {
        let conn = self.open_live()?;
        schema::read(&conn).map_err(|e| {
            Error::connection(format!("cannot read the schema of {}", self.path.display()))
                .caused_by(e)
        })
    }

    fn key_maxima(&self, keys: &[(&str, &str)]) -> Result<Vec<Option<i64>>> {
        let conn = self.open_live()?;
        keys.iter()
            .map(|(table, column)| keycount::max(&conn, table, column))
            .collect::<rusqlite::Result<_>>()
            .map_err(|e| self.keys_unreadable(e))
    }

    fn split_by_key(
        &self,
        table: &str,
        column: &str,
        max: Option<i64>,
    ) -> Result<crate::schema::KeySplit> {
        let conn = self.open_live()?;
        keycount::split(&conn, table, column, max).map_err(|e| self.keys_unreadable(e))
    }

    fn dump(
        &self,
        options: &crate::provider::DumpOptions<'_>,
        work_dir: &Path,
        to: DumpTo<'_, '_>,
    ) -> Result<Dumped> {
        let DumpTo::Stream(sink) = to else {
            return Err(Error::config(
                "SQLite backups are single files; a directory dump is not available",
            ));
        };
        if options.format != Format::Sqlite {
            return Err(Error::config(format!(
                "SQLite backups are database images; format `{}` is not available",
                options.format
            ))
            .with_hint("--format applies to PostgreSQL; leave it out for SQLite"));
        }
        dump::dump(self, options, work_dir, sink)
    }

    fn prepare_restore(&self, raw_size: u64) -> Result<Vec<PathBuf>> {
        restore::prepare(self, raw_size)
    }

    fn staging_need(&self, raw_size: u64) -> Option<(PathBuf, u64)> {
        restore::staging_need(self, raw_size)
    }

    fn sweep_scratch(&self, drop: bool) -> Result<crate::scratch::Sweep> {
        Ok(copy::sweep(self, drop))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn replace_tables(
        &self,
        from: &dyn Provider,
        tables: &[String],
    ) -> Result<(), super::CommitFailed> {
        let Some(from) = from.as_any().downcast_ref::<Sqlite>() else {
            return Err(Error::config("tables of an SQLite database come from another").into());
        };
        tables::replace_tables(self, from, tables)
    }

    fn dangling_references(&self, tables: &[String]) -> Result<Vec<String>> {
        tables::dangling(self, tables)
    }

    fn check_new_database(&self, name: &str) -> Result<()> {
        tables::check_new_file(Path::new(name))
    }

    fn restore_into(
        &self,
        name: &str,
        format: Format,
        source: Source<'_>,
        migrations_table: Option<&str>,
        _jobs: u32,
    ) -> Result<Inspection> {
        if format != Format::Sqlite {
            return Err(Error::config(format!(
                "a {format} backup cannot be restored into SQLite"
            )));
        }
        let path = Path::new(name);
        match source {
            Source::Stream(stream) => tables::restore_into(self, path, stream, migrations_table),
            Source::Path(from) => {
                let mut input = File::open(from)
                    .map_err(|e| Error::io(Kind::Verification, "cannot open", from, e))?;
                tables::restore_into(self, path, &mut input, migrations_table)
            }
        }
    }

    fn scratch_copy<'a>(
        &'a self,
        format: Format,
        source: Source<'_>,
        _jobs: u32,
    ) -> Result<Box<dyn super::ScratchCopy + 'a>> {
        copy::scratch_copy(self, format, source)
    }

    fn stage_restore<'a>(
        &'a self,
        format: Format,
        source: Source<'_>,
        migrations_table: Option<&str>,
        _jobs: u32,
    ) -> Result<Box<dyn Staged + 'a>> {
        match source {
            Source::Stream(stream) => restore::stage(self, format, stream, migrations_table),
            Source::Path(path) => {
                let mut file = File::open(path)
                    .map_err(|e| Error::io(Kind::Verification, "cannot open", path, e))?;
                restore::stage(self, format, &mut file, migrations_table)
            }
        }
    }
}
