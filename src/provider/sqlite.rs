//! SQLite, in process: consistent copies through SQLite's online backup API, restores by writing
//! a new file beside the database and renaming it over the old one.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::{Dumped, Inspection, Provider, ProviderKind, Sink, StructureCheck, TableStats, Tables};
use crate::error::{Error, Kind, Result};
use crate::format::Format;
use crate::fsutil::PartialFile;
use crate::migrations::{self, Queryable};
use crate::pipeline::BUF_SIZE;

/// Pages copied per backup step; between steps writers may proceed.
const PAGES_PER_STEP: i32 = 1024;
/// How long a backup waits for writers that keep the database locked.
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

    /// Opens the live database read-only; a missing or unreadable file is a connection failure.
    fn open_live(&self) -> Result<Connection> {
        if !self.path.is_file() {
            return Err(self.not_found());
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| self.cannot_open(e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| self.cannot_open(e))?;
        // Reading the schema proves this is a database and not some other file.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
            .map_err(|e| self.cannot_open(e))?;
        Ok(conn)
    }

    fn cannot_open(&self, e: rusqlite::Error) -> Error {
        Error::connection(format!(
            "cannot open SQLite database {}",
            self.path.display()
        ))
        .caused_by(e)
        .with_hint("check that the file is an SQLite database and readable by this user")
    }

    /// Copies the live database into `dest` with the online backup API, a batch of pages at a time.
    fn snapshot_into(&self, src: &Connection, dest: &Path) -> Result<()> {
        let copy_failed =
            |e: rusqlite::Error| Error::tool("SQLite online backup failed").caused_by(e);
        let mut dst = Connection::open(dest).map_err(copy_failed)?;
        dst.pragma_update(None, "journal_mode", "OFF")
            .map_err(copy_failed)?;
        let backup = Backup::new(src, &mut dst).map_err(copy_failed)?;
        let started = Instant::now();
        loop {
            match backup.step(PAGES_PER_STEP).map_err(copy_failed)? {
                StepResult::Done => break,
                StepResult::More => {}
                _ if started.elapsed() > BUSY_TIMEOUT => {
                    return Err(Error::new(
                        Kind::Busy,
                        "the SQLite database stayed locked by a writer",
                    )
                    .with_hint("retry when the application's write load is lower"));
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        Ok(())
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
        let dir = self.path.parent().unwrap_or(Path::new("."));
        if !dir.is_dir() {
            return Err(Error::connection(format!(
                "directory {} does not exist",
                dir.display()
            )));
        }
        let staged = PartialFile::create(&self.path)
            .map_err(|e| Error::io(Kind::Tool, "cannot stage the restore at", &self.path, e))?;
        copy_into(source, staged.file())
            .map_err(|e| Error::io(Kind::Tool, "cannot write", staged.path(), e))?;
        let image = open_image(staged.path())?;
        let check = integrity_check(&image)?;
        if check != "ok" {
            return Err(Error::verification(format!(
                "the backup's data failed SQLite's integrity check: {check}"
            )));
        }
        let inspection = inspect(&image, migrations_table, true)
            .map_err(|e| Error::verification(e.one_line()))?;
        drop(image);

        if let Ok(meta) = fs::metadata(&self.path) {
            // The restored file keeps the mode the application's database had.
            let _ = fs::set_permissions(
                staged.path(),
                fs::Permissions::from_mode(meta.permissions().mode()),
            );
            self.fold_wal()?;
        }
        let target = self.path.clone();
        staged
            .persist(&target)
            .map_err(|e| Error::io(Kind::Tool, "cannot replace", &target, e))?;
        for suffix in ["-wal", "-shm"] {
            let mut side = target.as_os_str().to_owned();
            side.push(suffix);
            let _ = crate::fsutil::remove_if_exists(Path::new(&side));
        }
        Ok(inspection)
    }
}

impl Sqlite {
    /// Moves the content of the live database's write-ahead log into the file and empties the
    /// log, so that no old log is replayed over the restored file.
    fn fold_wal(&self) -> Result<()> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| self.cannot_open(e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| self.cannot_open(e))?;
        let journal: String = match conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)) {
            Ok(mode) => mode,
            // Not a database (the user chose to replace it without a safety backup): there is
            // no log of it to fold.
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) => {
                return Ok(());
            }
            Err(e) => return Err(self.cannot_open(e)),
        };
        if journal.eq_ignore_ascii_case("wal") {
            let busy: i64 = conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
                .map_err(|e| self.cannot_open(e))?;
            if busy != 0 {
                return Err(Error::new(
                    Kind::Busy,
                    format!("{} is in use by another process", self.path.display()),
                )
                .with_hint(
                    "stop the application that holds the database open, then restore again",
                ));
            }
        }
        Ok(())
    }
}

/// Checks a decoded SQLite image: written to a scratch file in `work_dir`, integrity-checked, and
/// with `deep` its rows counted. The scratch file is always removed.
pub fn check_image(decoded: &mut dyn Read, work_dir: &Path, deep: bool) -> Result<StructureCheck> {
    let scratch_path = work_dir.join(format!("verify-{}.sqlite3", std::process::id()));
    let scratch = PartialFile::create(&scratch_path)
        .map_err(|e| Error::io(Kind::Config, "cannot create", &scratch_path, e))?;
    copy_into(decoded, scratch.file())
        .map_err(|e| Error::verification("the backup's data stream is unreadable").caused_by(e))?;
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

fn copy_into(source: &mut dyn Read, file: &File) -> io::Result<u64> {
    let mut out = io::BufWriter::with_capacity(BUF_SIZE, file);
    let n = io::copy(source, &mut out)?;
    io::Write::flush(&mut out)?;
    Ok(n)
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
