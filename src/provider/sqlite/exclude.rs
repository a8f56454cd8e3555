//! `exclude_table_data` of an SQLite backup: the rows of the excluded tables deleted from the
//! snapshot — the backup's own copy, never the live database — before it is stored. The tables,
//! their indexes and triggers stay as they were.

use std::path::Path;

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::provider::exclude;

/// Deletes from the snapshot at `snapshot` the rows of every table `patterns` matches; returns
/// those tables. Their triggers are set aside while it deletes (a delete trigger must not write
/// into the backup's other tables) and made again as they were. Deleted content is overwritten
/// (`secure_delete`): the rows are not in the stored file, not even in its free pages.
pub(super) fn clear_rows(snapshot: &Path, patterns: &[String]) -> Result<Vec<String>> {
    if patterns.is_empty() {
        return Ok(Vec::new());
    }
    let failed =
        |e: rusqlite::Error| Error::tool("cannot leave out the excluded tables' rows").caused_by(e);
    let conn = Connection::open(snapshot).map_err(failed)?;
    let excluded = clear(&conn, patterns).map_err(failed)?;
    conn.close().map_err(|(_, e)| failed(e))?;
    Ok(excluded)
}

fn clear(conn: &Connection, patterns: &[String]) -> rusqlite::Result<Vec<String>> {
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let names: Vec<String> = super::image::table_names(conn)?;
    let excluded = exclude::resolve(patterns, names.iter().map(String::as_str));
    if excluded.is_empty() {
        return Ok(excluded);
    }
    let tx = conn.unchecked_transaction()?;
    for table in &excluded {
        let triggers: Vec<(String, String)> = {
            let mut stmt = tx.prepare(
                "SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = ?1 \
                 AND sql IS NOT NULL ORDER BY rowid",
            )?;
            stmt.query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?
        };
        for (name, _) in &triggers {
            tx.execute_batch(&format!("DROP TRIGGER {}", quoted(name)))?;
        }
        tx.execute_batch(&format!("DELETE FROM {}", quoted(table)))?;
        for (_, sql) in &triggers {
            tx.execute_batch(sql)?;
        }
    }
    tx.commit()?;
    Ok(excluded)
}

/// `name` as an SQLite identifier.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_go_and_tables_indexes_and_triggers_stay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot.sqlite3");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE sessions (id INTEGER PRIMARY KEY, token TEXT);
             CREATE INDEX sessions_token ON sessions (token);
             CREATE TABLE sessions_old (id INTEGER PRIMARY KEY);
             CREATE TABLE user_sessions (id INTEGER PRIMARY KEY);
             CREATE TABLE log (what TEXT);
             CREATE TRIGGER sessions_gone AFTER DELETE ON sessions
               BEGIN INSERT INTO log VALUES ('gone'); END;
             INSERT INTO sessions (token) VALUES ('secret-token-xyzzy'), ('b');
             INSERT INTO sessions_old VALUES (1);
             INSERT INTO user_sessions VALUES (1), (2);",
        )
        .unwrap();
        let schema = |conn: &Connection| -> Vec<String> {
            conn.prepare("SELECT sql FROM sqlite_schema ORDER BY name")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        let schema_before = schema(&conn);
        drop(conn);

        let excluded = clear_rows(&path, &["sessions*".to_string()]).unwrap();
        assert_eq!(excluded, ["sessions", "sessions_old"]);
        let conn = Connection::open(&path).unwrap();
        let count = |t: &str| -> i64 {
            conn.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(count("sessions"), 0);
        assert_eq!(count("sessions_old"), 0);
        assert_eq!(count("user_sessions"), 2);
        assert_eq!(count("log"), 0, "the delete trigger did not fire");
        assert_eq!(schema_before, schema(&conn));
        drop(conn);
        let bytes = std::fs::read(&path).unwrap();
        let needle = b"secret-token-xyzzy";
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "a deleted row is still in the file"
        );
    }
}
