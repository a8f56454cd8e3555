//! SQLite, in process: consistent copies through SQLite's online backup API. A restore stages the
//! backup in a file beside the database, checks it, then copies it into the live database in one
//! transaction (so open connections see the restored data); a file that is not a database is
//! replaced by renaming the staged file over it.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::{Dumped, Inspection, Provider, ProviderKind, Sink, StructureCheck, TableStats, Tables};
use crate::error::{Error, Kind, Result};
use crate::format::Format;
use crate::fsutil::{self, PartialFile};
use crate::migrations::{self, Queryable};
use crate::pipeline::BUF_SIZE;

/// Pages copied per backup step; between steps writers may proceed.
const PAGES_PER_STEP: i32 = 1024;
/// Restarts of an incremental copy (caused by concurrent writes) before copying in one step.
const MAX_RESTARTS: u32 = 3;
/// How long a backup or restore waits for a lock without making progress.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Sqlite {
    path: PathBuf,
}

impl Sqlite {
    pub fn new(path: PathBuf) -> Sqlite {
        Sqlite { path }
    }

    fn not_found(&self) -> Error {
        Error::connection(format!(
            "SQLite database {} does not exist",
            self.path.display()
        ))
        .with_hint(
            "check the environment's URL, or restore a backup into it with `faber-db restore`",
        )
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

    fn side_file(&self, suffix: &str) -> PathBuf {
        let mut side = self.path.as_os_str().to_owned();
        side.push(suffix);
        PathBuf::from(side)
    }

    fn cannot_open(&self, e: rusqlite::Error) -> Error {
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
    fn snapshot_into(&self, src: &Connection, dest: &Path) -> Result<()> {
        let copy_failed =
            |e: rusqlite::Error| Error::tool("SQLite online backup failed").caused_by(e);
        let mut dst = Connection::open(dest).map_err(copy_failed)?;
        dst.pragma_update(None, "journal_mode", "OFF")
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

    fn size_estimate(&self) -> Result<u64> {
        let size = |p: &Path| fs::metadata(p).map_or(0, |m| m.len());
        let mut wal = self.path.as_os_str().to_owned();
        wal.push("-wal");
        Ok(size(&self.path) + size(Path::new(&wal)))
    }

    fn inspect(&self, migrations_table: Option<&str>, count_rows: bool) -> Result<Inspection> {
        let conn = self.open_live()?;
        inspect(&conn, migrations_table, count_rows)
    }

    fn dump(
        &self,
        format: Format,
        migrations_table: Option<&str>,
        work_dir: &Path,
        sink: &mut Sink<'_>,
    ) -> Result<Dumped> {
        if format != Format::Sqlite {
            return Err(Error::config(format!(
                "SQLite backups are database images; format `{format}` is not available"
            ))
            .with_hint("--format applies to PostgreSQL; leave it out for SQLite"));
        }
        let src = self.open_live()?;
        let snapshot_path = work_dir.join(format!("snapshot-{}.sqlite3", std::process::id()));
        let snapshot = PartialFile::create(&snapshot_path)
            .map_err(|e| Error::io(Kind::Tool, "cannot create", &snapshot_path, e))?;
        self.snapshot_into(&src, snapshot.path())?;
        drop(src);

        let image = open_image(snapshot.path())?;
        let integrity_check = integrity_check(&image)?;
        if integrity_check != "ok" {
            return Err(Error::verification(format!(
                "the database failed SQLite's integrity check: {integrity_check}"
            ))
            .with_hint(
                "the live database is damaged; repair it before relying on a backup of it",
            ));
        }
        let inspection =
            inspect(&image, migrations_table, true).map_err(|e| Error::tool(e.one_line()))?;
        drop(image);

        let mut file = File::open(snapshot.path())
            .map_err(|e| Error::io(Kind::Tool, "cannot read", snapshot.path(), e))?;
        let written = sink(&mut file)
            .map_err(|e| Error::io(Kind::Tool, "cannot write the backup of", &self.path, e))?;
        Ok(Dumped {
            inspection,
            written,
            tool_version: version(),
            integrity_check,
        })
    }

    fn prepare_restore(&self) -> Result<Vec<PathBuf>> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        if !dir.is_dir() {
            return Err(
                Error::connection(format!("directory {} does not exist", dir.display()))
                    .with_hint("create it, or check the environment's URL"),
            );
        }
        // A staging file left by a killed restore is removed; one in use means a restore runs.
        let staging = fsutil::partial_path(&self.path);
        let Ok(file) = File::open(&staging) else {
            return Ok(Vec::new());
        };
        match file.try_lock() {
            Ok(()) => {
                fsutil::remove_if_exists(&staging)
                    .map_err(|e| Error::io(Kind::Tool, "cannot remove", &staging, e))?;
                Ok(vec![staging])
            }
            Err(_) => Err(Error::new(
                Kind::Busy,
                format!("another restore of {} is running", self.path.display()),
            )
            .with_hint("wait for it to finish")),
        }
    }

    fn restore(
        &self,
        format: Format,
        source: &mut dyn Read,
        migrations_table: Option<&str>,
    ) -> Result<Inspection> {
        if format != Format::Sqlite {
            return Err(Error::config(format!(
                "a {format} backup cannot be restored into SQLite"
            )));
        }
        let staging = fsutil::partial_path(&self.path);
        let staged = PartialFile::create(&self.path)
            .map_err(|e| Error::io(Kind::Tool, "cannot stage the restore at", &staging, e))?;
        copy_into(source, staged.file(), staged.path(), Kind::Tool)?;
        let image = open_image(staged.path())?;
        let check = integrity_check(&image)?;
        if check != "ok" {
            return Err(Error::verification(format!(
                "the backup's data failed SQLite's integrity check: {check}"
            )));
        }
        let inspection = inspect(&image, migrations_table, true)
            .map_err(|e| Error::verification(e.one_line()))?;

        if let Some(live) = self.open_for_restore()? {
            copy_database(&image, live)?;
            return Ok(inspection);
        }
        drop(image);
        // No database to copy into (or not one SQLite can open): the staged file takes its place.
        if let Ok(meta) = fs::metadata(&self.path) {
            let _ = fs::set_permissions(
                staged.path(),
                fs::Permissions::from_mode(meta.permissions().mode()),
            );
        }
        staged
            .persist(&self.path)
            .map_err(|e| Error::io(Kind::Tool, "cannot replace", &self.path, e))?;
        for suffix in ["-wal", "-shm", "-journal"] {
            let _ = fsutil::remove_if_exists(&self.side_file(suffix));
        }
        Ok(inspection)
    }
}

impl Sqlite {
    /// The live database opened for writing, or `None` when there is no database to write into:
    /// the file is missing or is not an SQLite database.
    fn open_for_restore(&self) -> Result<Option<Connection>> {
        if !self.path.exists() {
            return Ok(None);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(&self.path, flags).map_err(|e| self.cannot_open(e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| self.cannot_open(e))?;
        match conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(())) {
            Ok(()) => Ok(Some(conn)),
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) => Ok(None),
            Err(e) => Err(self.cannot_open(e)),
        }
    }
}

/// Copies a whole database into `live` with the backup API in one step: one write transaction,
/// so a crash leaves the old content and no reader ever sees a mix.
fn copy_database(image: &Connection, mut live: Connection) -> Result<()> {
    let failed = |e: rusqlite::Error| {
        Error::tool("copying the backup into the database failed; the database is unchanged")
            .caused_by(e)
    };
    let backup = Backup::new(image, &mut live).map_err(failed)?;
    let started = Instant::now();
    loop {
        match backup.step(-1).map_err(failed)? {
            StepResult::Done => return Ok(()),
            StepResult::More => {}
            _ if started.elapsed() > BUSY_TIMEOUT => {
                return Err(Error::new(
                    Kind::Busy,
                    "the database stayed locked by another connection; nothing was restored",
                )
                .with_hint("stop the application that writes to it, then restore again"));
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Checks a decoded SQLite image: written to a scratch file in `work_dir`, integrity-checked, and
/// with `deep` its rows counted. The scratch file is always removed.
pub fn check_image(decoded: &mut dyn Read, work_dir: &Path, deep: bool) -> Result<StructureCheck> {
    let scratch_path = work_dir.join(format!("verify-{}.sqlite3", std::process::id()));
    let scratch = PartialFile::create(&scratch_path)
        .map_err(|e| Error::io(Kind::Config, "cannot create", &scratch_path, e))?;
    copy_into(decoded, scratch.file(), scratch.path(), Kind::Config)?;
    let image = open_image(scratch.path())?;
    let integrity_check = integrity_check(&image)?;
    let tables = if deep && integrity_check == "ok" {
        Some(
            count_tables(&image)
                .map_err(|e| Error::verification("cannot count rows in the backup").caused_by(e))?,
        )
    } else {
        None
    };
    Ok(StructureCheck {
        integrity_check,
        tables,
    })
}

/// Copies a decoded stream into `file`. A read failure means the backup's data is bad
/// (verification); a write failure is about the disk at `path`, attributed to `write_kind`.
fn copy_into(source: &mut dyn Read, file: &File, path: &Path, write_kind: Kind) -> Result<u64> {
    let unreadable =
        |e: io::Error| Error::verification("the backup's data stream is unreadable").caused_by(e);
    let cannot_write = |e: io::Error| Error::io(write_kind, "cannot write", path, e);
    let mut out = io::BufWriter::with_capacity(BUF_SIZE, file);
    let mut buf = vec![0u8; BUF_SIZE];
    let mut total = 0u64;
    loop {
        let n = match source.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(unreadable(e)),
        };
        out.write_all(&buf[..n]).map_err(cannot_write)?;
        total += n as u64;
    }
    out.flush().map_err(cannot_write)?;
    Ok(total)
}

/// Opens an image file read-only and immutable: no locks, no `-wal`/`-shm` files created.
fn open_image(path: &Path) -> Result<Connection> {
    let uri = format!("file:{}?immutable=1", uri_escape(&path.to_string_lossy()));
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Connection::open_with_flags(uri, flags).map_err(|e| {
        Error::verification("the backup is not a readable SQLite database").caused_by(e)
    })
}

fn uri_escape(path: &str) -> String {
    path.chars()
        .map(|c| match c {
            '%' => "%25".to_string(),
            '?' => "%3f".to_string(),
            '#' => "%23".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// `PRAGMA integrity_check`, its rows joined: `ok` when the image is sound.
fn integrity_check(conn: &Connection) -> Result<String> {
    let run = || -> rusqlite::Result<String> {
        let mut stmt = conn.prepare("PRAGMA integrity_check")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?.join("; "))
    };
    run().map_err(|e| {
        Error::verification("the backup is not a readable SQLite database").caused_by(e)
    })
}

fn inspect(
    conn: &Connection,
    migrations_table: Option<&str>,
    count_rows: bool,
) -> Result<Inspection> {
    let tables = if count_rows {
        count_tables(conn).map_err(|e| Error::connection("cannot count rows").caused_by(e))?
    } else {
        Tables::new()
    };
    let migrations = migrations::read_state(&Db(conn), migrations_table)?;
    Ok(Inspection { tables, migrations })
}

fn count_tables(conn: &Connection) -> rusqlite::Result<Tables> {
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
    )?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut tables = Tables::new();
    for name in names {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        let rows: i64 =
            conn.query_row(&format!("SELECT count(*) FROM {quoted}"), [], |r| r.get(0))?;
        tables.insert(
            name,
            TableStats {
                rows: rows.max(0) as u64,
            },
        );
    }
    Ok(tables)
}

pub fn version() -> String {
    format!("SQLite {}", rusqlite::version())
}

struct Db<'a>(&'a Connection);

impl Queryable for Db<'_> {
    fn table_exists(&self, table: &str) -> Result<bool> {
        self.0
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(|e| Error::connection("cannot read the SQLite schema").caused_by(e))
    }

    fn query_text(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
        let run = || -> rusqlite::Result<Vec<Vec<Option<String>>>> {
            let mut stmt = self.0.prepare(sql)?;
            let columns = stmt.column_count();
            let rows = stmt.query_map([], |row| {
                (0..columns)
                    .map(|i| {
                        Ok(match row.get_ref(i)? {
                            rusqlite::types::ValueRef::Null => None,
                            rusqlite::types::ValueRef::Integer(n) => Some(n.to_string()),
                            rusqlite::types::ValueRef::Real(x) => Some(x.to_string()),
                            rusqlite::types::ValueRef::Text(t)
                            | rusqlite::types::ValueRef::Blob(t) => {
                                Some(String::from_utf8_lossy(t).into_owned())
                            }
                        })
                    })
                    .collect::<rusqlite::Result<Vec<_>>>()
            })?;
            rows.collect()
        };
        run().map_err(|e| {
            Error::connection(format!("cannot read migration state ({sql})")).caused_by(e)
        })
    }
}
