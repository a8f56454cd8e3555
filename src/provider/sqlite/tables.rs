//! Part of a backup put back: some of its tables into the database (`restore --table`), or all
//! of it into a new file beside it (`restore --into`).
//!
//! Tables come from a scratch copy of the backup, attached to a connection on the database: in
//! one `BEGIN IMMEDIATE` transaction each table is dropped, made anew from the copy's definition,
//! filled from the copy, and given the copy's indexes, triggers and `AUTOINCREMENT` counter. A
//! failure rolls all of it back.

use std::io::Read;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

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
    let taken = || {
        Error::config(format!(
            "{} already exists; a restore --into makes a new file and never replaces one",
            path.display()
        ))
        .with_hint("choose another path, or remove that file yourself if nothing needs it")
    };
    if path.symlink_metadata().is_ok() {
        return Err(taken());
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(
            Error::config(format!("directory {} does not exist", dir.display()))
                .with_hint("create it first, or name a file in an existing directory"),
        );
    }
    let staging = fsutil::partial_path(path);
    let claim = match &db.ledger {
        Some(ledger) => Some(Released(ledger.claim(
            &format!("sqlite:{}", path.display()),
            Purpose::Restore,
            &staging.to_string_lossy(),
        )?)),
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
            taken()
        } else {
            Error::io(Kind::Tool, "cannot create", path, e)
        }
    })?;
    drop(claim);
    inspect(&open_image(path)?, migrations_table, true)
}

/// Replaces tables `tables` of `db` with those of the copy `from`, in one transaction.
pub(super) fn replace_tables(
    db: &Sqlite,
    from: &Sqlite,
    tables: &[String],
) -> Result<(), CommitFailed> {
    let target = db.restore_target()?;
    let conn = Connection::open(&target).map_err(|e| db.cannot_open(e))?;
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
    let columns: Vec<String> = {
        let mut stmt = conn.prepare(&format!(
            "SELECT name FROM pragma_table_xinfo(?1, '{COPY}') WHERE hidden = 0 ORDER BY cid"
        ))?;
        stmt.query_map([table], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    let list = columns
        .iter()
        .map(|c| quote(c))
        .collect::<Vec<_>>()
        .join(", ");
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
