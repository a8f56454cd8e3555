//! Part of a backup put back: some of its tables into the database (`restore --table`), or all
//! of it into a new file beside it (`restore --into`).
//!
//! Tables come from a scratch copy of the backup, attached to a connection on the database: in
//! one `BEGIN IMMEDIATE` transaction each table is dropped, made anew from the copy's definition,
//! filled from the copy, and given the copy's indexes, triggers and `AUTOINCREMENT` counter. A
//! failure rolls all of it back.

use std::io::Read;
use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::image::{copy_into, inspect, integrity_check, open_image};
use super::{BUSY_TIMEOUT, Sqlite};
use crate::error::{Error, Kind, Result};
use crate::fsutil::{self, PartialFile};
use crate::provider::{CommitFailed, Inspection};
use crate::scratch::{Purpose, Released};

/// The name the copy is attached under.
const COPY: &str = "faber_backup";

/// Decodes the backup into a new file at `path`, which must not exist: staged beside it under a
/// `.partial` name (recorded in the ledger), checked, then linked into place — a file made there
/// meanwhile is never replaced.
pub(super) fn restore_into(
    db: &Sqlite,
    path: &Path,
    source: &mut dyn Read,
    migrations_table: Option<&str>,
) -> Result<Inspection> {
    check_new_file(path)?;
    let staging = fsutil::partial_path(path);
    let server = format!("sqlite:{}", path.display());
    let claim = match &db.ledger {
        Some(ledger) => {
            // What a killed run left at this very path, as the ledger proves: removed first.
            for dead in ledger.dead(&server) {
                if Path::new(&dead.entry().name) == staging {
                    fsutil::remove_if_exists(&staging)
                        .map_err(|e| Error::io(Kind::Tool, "cannot remove", &staging, e))?;
                    dead.release();
                }
            }
            Some(Released(ledger.claim(
                &server,
                Purpose::Restore,
                &staging.to_string_lossy(),
            )?))
        }
        None => None,
    };
    let file = PartialFile::create(path)
        .map_err(|e| Error::io(Kind::Tool, "cannot create", &staging, e))?;
    copy_into(source, file.file(), file.path(), Kind::Tool)?;
    let check = integrity_check(&open_image(file.path())?)?;
    if check != "ok" {
        return Err(Error::verification(format!(
            "the backup's data failed SQLite's integrity check: {check}"
        )));
    }
    file.persist_new(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            taken(path)
        } else {
            Error::io(Kind::Tool, "cannot create", path, e)
        }
    })?;
    drop(claim);
    inspect(&open_image(path)?, migrations_table, true)
}

fn taken(path: &Path) -> Error {
    Error::config(format!(
        "{} already exists; a restore --into makes a new file and never replaces one",
        path.display()
    ))
    .with_hint("choose another path, or remove that file yourself if nothing needs it")
}

/// `path` can be a new file's: nothing there, in a directory that exists.
pub(super) fn check_new_file(path: &Path) -> Result<()> {
    if path.symlink_metadata().is_ok() {
        return Err(taken(path));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(
            Error::config(format!("directory {} does not exist", dir.display()))
                .with_hint("create it first, or name a file in an existing directory"),
        );
    }
    Ok(())
}

/// Replaces tables `tables` of `db` with those of the copy `from`, in one transaction.
pub(super) fn replace_tables(
    db: &Sqlite,
    from: &Sqlite,
    tables: &[String],
) -> Result<(), CommitFailed> {
    let target = db.restore_target()?;
    // Never made here: a table restore puts tables into a database that exists.
    if !target.is_file() {
        return Err(db.not_found().into());
    }
    let conn = Connection::open_with_flags(
        &target,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| db.cannot_open(e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| db.cannot_open(e))?;
    let failed = |e: rusqlite::Error| {
        let busy = e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy);
        let err = Error::new(
            if busy { Kind::Busy } else { Kind::Tool },
            "the tables could not be replaced; nothing was changed",
        )
        .caused_by(e);
        if busy {
            err.with_hint("another connection holds the database; stop the application that writes to it, then restore again")
        } else {
            err
        }
    };
    // Rows of other tables that point at a replaced one must not stop (or cascade into) the
    // drop; the setting cannot change inside a transaction.
    conn.execute_batch("PRAGMA foreign_keys = OFF")
        .map_err(failed)?;
    conn.execute(
        &format!("ATTACH DATABASE ?1 AS {COPY}"),
        params![from.path.to_string_lossy()],
    )
    .map_err(failed)?;
    let replaced = replace_in(&conn, tables);
    let _ = conn.execute(&format!("DETACH DATABASE {COPY}"), []);
    replaced.map_err(|e| match e {
        Replace::Sql(e) => failed(e).into(),
        Replace::Refused(e) => e.into(),
    })
}

enum Replace {
    Sql(rusqlite::Error),
    Refused(Error),
}

impl From<rusqlite::Error> for Replace {
    fn from(e: rusqlite::Error) -> Replace {
        Replace::Sql(e)
    }
}

fn replace_in(conn: &Connection, tables: &[String]) -> std::result::Result<(), Replace> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let done = (|| {
        for table in tables {
            replace_one(conn, table)?;
        }
        views_still_work(conn)?;
        conn.execute_batch("COMMIT")?;
        Ok(())
    })();
    if done.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    done
}

/// One table, inside the transaction.
fn replace_one(conn: &Connection, table: &str) -> std::result::Result<(), Replace> {
    let quoted = quote(table);
    let definition: Option<Option<String>> = conn
        .query_row(
            &format!("SELECT sql FROM {COPY}.sqlite_schema WHERE type = 'table' AND name = ?1"),
            [table],
            |r| r.get(0),
        )
        .optional()?;
    let Some(Some(definition)) = definition else {
        return Err(Replace::Refused(Error::verification(format!(
            "the backup holds no table {table}; nothing was changed"
        ))));
    };
    if !starts_with_words(&definition, "CREATE TABLE") {
        return Err(Replace::Refused(Error::config(format!(
            "{table} is not a plain table (a virtual table?): a table restore puts back plain tables; nothing was changed"
        ))
        .with_hint("restore the backup --into a new file and copy the rows across by hand")));
    }
    conn.execute(&format!("DROP TABLE IF EXISTS main.{quoted}"), [])?;
    conn.execute(&definition, [])?;
    let list = column_list(conn, table)?;
    conn.execute(
        &format!("INSERT INTO main.{quoted} ({list}) SELECT {list} FROM {COPY}.{quoted}"),
        [],
    )?;
    let mut stmt = conn.prepare(&format!(
        "SELECT sql FROM {COPY}.sqlite_schema WHERE type IN ('index', 'trigger') \
         AND tbl_name = ?1 AND sql IS NOT NULL ORDER BY type, name"
    ))?;
    let others = stmt
        .query_map([table], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for sql in others {
        conn.execute(&sql, [])?;
    }
    // The AUTOINCREMENT counter as the backup had it (the drop removed the database's).
    let counted: bool = conn.query_row(
        &format!("SELECT count(*) > 0 FROM {COPY}.sqlite_schema WHERE name = 'sqlite_sequence'"),
        [],
        |r| r.get(0),
    )?;
    let here: bool = conn.query_row(
        "SELECT count(*) > 0 FROM main.sqlite_schema WHERE name = 'sqlite_sequence'",
        [],
        |r| r.get(0),
    )?;
    if counted && here {
        conn.execute("DELETE FROM main.sqlite_sequence WHERE name = ?1", [table])?;
        conn.execute(
            &format!(
                "INSERT INTO main.sqlite_sequence (name, seq) \
                 SELECT name, seq FROM {COPY}.sqlite_sequence WHERE name = ?1"
            ),
            [table],
        )?;
    }
    Ok(())
}

/// The columns of the copy's `table` to copy: its stored ones, after its rowid (which a table
/// without an INTEGER PRIMARY KEY would otherwise renumber) under a name no column takes.
fn column_list(conn: &Connection, table: &str) -> rusqlite::Result<String> {
    let columns: Vec<(String, i64)> = {
        let mut stmt = conn.prepare(&format!(
            "SELECT name, hidden FROM pragma_table_xinfo(?1, '{COPY}') ORDER BY cid"
        ))?;
        stmt.query_map([table], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?
    };
    let without_rowid = conn
        .query_row(
            "SELECT wr FROM pragma_table_list WHERE schema = ?1 AND name = ?2",
            [COPY, table],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        .is_some_and(|wr| wr != 0);
    let rowid = (!without_rowid)
        .then(|| {
            ["rowid", "_rowid_", "oid"]
                .into_iter()
                .find(|n| !columns.iter().any(|(c, _)| c.eq_ignore_ascii_case(n)))
        })
        .flatten();
    Ok(rowid
        .map(str::to_string)
        .into_iter()
        .chain(
            columns
                .iter()
                .filter(|(_, hidden)| *hidden == 0)
                .map(|(c, _)| quote(c)),
        )
        .collect::<Vec<_>>()
        .join(", "))
}

/// Every view of the database still reads: one over a column the restored table no longer has
/// stops the restore, which is rolled back.
fn views_still_work(conn: &Connection) -> std::result::Result<(), Replace> {
    let views: Vec<String> = {
        let mut stmt =
            conn.prepare("SELECT name FROM main.sqlite_schema WHERE type = 'view' ORDER BY name")?;
        stmt.query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    for view in views {
        if let Err(e) = conn.prepare(&format!("SELECT * FROM main.{} LIMIT 0", quote(&view))) {
            return Err(Replace::Refused(
                Error::tool(format!(
                    "view {view} would no longer work with the restored tables ({e}); nothing was changed"
                ))
                .with_hint("restore the backup --into a new file and copy the rows across by hand, or fix the view first"),
            ));
        }
    }
    Ok(())
}

/// Whether `sql` begins with the words `words`, whatever their case and the space between.
fn starts_with_words(sql: &str, words: &str) -> bool {
    let mut rest = sql.trim_start();
    for word in words.split(' ') {
        let Some(head) = rest.get(..word.len()) else {
            return false;
        };
        if !head.eq_ignore_ascii_case(word) {
            return false;
        }
        rest = rest[word.len()..].trim_start();
    }
    true
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The rows of other tables that point at rows the restored `tables` lack now (SQLite checks no
/// foreign key while it replaces a table), from `PRAGMA foreign_key_check`.
pub(super) fn dangling(db: &Sqlite, tables: &[String]) -> Result<Vec<String>> {
    let conn = db.open_live()?;
    let mut stmt = conn
        .prepare("SELECT \"table\", parent, count(*) FROM pragma_foreign_key_check GROUP BY 1, 2 ORDER BY 1, 2")
        .map_err(|e| db.cannot_open(e))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
        .map_err(|e| db.cannot_open(e))?;
    Ok(rows
        .into_iter()
        .filter(|(child, parent, _)| tables.contains(parent) && !tables.contains(child))
        .map(|(child, parent, n)| format!("{child}: {n} rows (foreign key to {parent})"))
        .collect())
}
