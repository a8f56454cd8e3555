//! Reading SQLite images: decoded backups written to scratch files, opened immutable, checked,
//! counted and asked for their migration state.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Kind, Result};
use crate::fsutil::PartialFile;
use crate::migrations::{self, Queryable};
use crate::pipeline::BUF_SIZE;
use crate::provider::{Inspection, StructureCheck, TableStats, Tables};

/// Checks a decoded SQLite image: written to a scratch file in `work_dir`, integrity-checked, and
/// with `deep` its rows counted. The scratch file is always removed.
pub fn check_image(decoded: &mut dyn Read, work_dir: &Path, deep: bool) -> Result<StructureCheck> {
    let scratch_path = work_dir.join(format!("verify-{}.sqlite3", std::process::id()));
    let scratch = PartialFile::create(&scratch_path)
        .map_err(|e| Error::io(Kind::Config, "cannot create", &scratch_path, e))?;
    copy_into(decoded, scratch.file(), scratch.path(), Kind::Config)?;
    crate::testpoint::pause("verify:after-decode");
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
pub(super) fn copy_into(
    source: &mut dyn Read,
    file: &File,
    path: &Path,
    write_kind: Kind,
) -> Result<u64> {
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
pub(super) fn open_image(path: &Path) -> Result<Connection> {
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
pub(super) fn integrity_check(conn: &Connection) -> Result<String> {
    pragma_check(conn, "integrity_check")
}

/// `PRAGMA quick_check`: the pages and records, without matching indexes against their tables
/// (about a third of the full check's time). Its rows joined: `ok` when they are sound.
pub(super) fn quick_check(conn: &Connection) -> Result<String> {
    pragma_check(conn, "quick_check")
}

fn pragma_check(conn: &Connection, pragma: &str) -> Result<String> {
    let run = || -> rusqlite::Result<String> {
        let mut stmt = conn.prepare(&format!("PRAGMA {pragma}"))?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?.join("; "))
    };
    run().map_err(|e| {
        Error::verification("the backup is not a readable SQLite database").caused_by(e)
    })
}

pub(super) fn inspect(
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

/// The database's tables (SQLite's own left out), by name.
pub(super) fn table_names(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
    )?;
    stmt.query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()
}

pub(super) fn count_tables(conn: &Connection) -> rusqlite::Result<Tables> {
    let names = table_names(conn)?;
    let mut tables = Tables::new();
    for name in names {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        let rows: i64 =
            conn.query_row(&format!("SELECT count(*) FROM {quoted}"), [], |r| r.get(0))?;
        tables.insert(name, TableStats::exact(rows.max(0).cast_unsigned()));
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
