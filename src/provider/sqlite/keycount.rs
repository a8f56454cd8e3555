//! A table's integer key either side of a backup's largest one, in SQLite: `max()` of it before
//! a dump, and one `sum()` pass that counts the rows above and at or below it. Names are quoted
//! identifiers; the largest key is bound as a parameter.

use rusqlite::Connection;
use rusqlite::types::Value;

use crate::schema::KeySplit;

/// `name` as a quoted identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The largest value of `column` in `table` (`None`: no row), which must be an integer.
pub fn max(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<Option<i64>> {
    let sql = format!("SELECT max({}) FROM {}", ident(column), ident(table));
    match conn.query_row(&sql, [], |row| row.get::<_, Value>(0))? {
        Value::Null => Ok(None),
        Value::Integer(max) => Ok(Some(max)),
        other => Err(rusqlite::Error::InvalidColumnType(
            0,
            column.to_string(),
            other.data_type(),
        )),
    }
}

/// The rows of `table` whose `column` is above `max`, and at or below it.
pub fn split(
    conn: &Connection,
    table: &str,
    column: &str,
    max: Option<i64>,
) -> rusqlite::Result<KeySplit> {
    let (table, column) = (ident(table), ident(column));
    let count = |row: &rusqlite::Row<'_>| -> rusqlite::Result<KeySplit> {
        let n = |i| row.get::<_, i64>(i).map(i64::unsigned_abs);
        Ok(KeySplit {
            above: n(0)?,
            at_or_below: n(1)?,
        })
    };
    match max {
        Some(max) => conn.query_row(
            &format!(
                "SELECT coalesce(sum({column} > ?1), 0), coalesce(sum({column} <= ?1), 0) FROM {table}"
            ),
            [max],
            count,
        ),
        None => conn.query_row(&format!("SELECT count(*), 0 FROM {table}"), [], count),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_counted_either_side_of_the_largest_key_whatever_the_names() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE \"we\"\"ird\" (\"i\"\"d\" INTEGER PRIMARY KEY, x TEXT);
             INSERT INTO \"we\"\"ird\" (x) VALUES ('a'), ('b'), ('c');
             CREATE TABLE empty (id INTEGER PRIMARY KEY);",
        )
        .unwrap();
        assert_eq!(max(&conn, "we\"ird", "i\"d").unwrap(), Some(3));
        assert_eq!(max(&conn, "empty", "id").unwrap(), None);
        let split_at = |m| split(&conn, "we\"ird", "i\"d", m).unwrap();
        assert_eq!(
            split_at(Some(1)),
            KeySplit {
                above: 2,
                at_or_below: 1
            }
        );
        assert_eq!(
            split_at(None),
            KeySplit {
                above: 3,
                at_or_below: 0
            }
        );
        assert_eq!(
            split(&conn, "empty", "id", Some(9)).unwrap(),
            KeySplit::default()
        );
        // A key that holds text is no integer key.
        conn.execute_batch("CREATE TABLE t (k INT PRIMARY KEY); INSERT INTO t VALUES ('x');")
            .unwrap();
        assert!(max(&conn, "t", "k").is_err());
    }
}
