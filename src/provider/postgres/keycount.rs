//! A table's integer key either side of a backup's largest one, in PostgreSQL: `max()` of each
//! key before a dump (one query for many tables), and one aggregate pass per table that counts the
//! rows above and at or below it. Tables are named by their manifest keys (see [`super::key`]) and
//! quoted part by part; a largest key is an integer, written as digits.

use super::Postgres;
use super::key::{schema_and_table, table_key};
use super::psql::{hex_utf8, ident, unhex};
use crate::error::{Error, Result};
use crate::provider::keyquery::{key_maxima_via, split_from};
use crate::schema::KeySplit;

/// The table of manifest key `key`, quoted: `"schema"."table"`.
fn qualified(key: &str) -> Result<String> {
    let (schema, table) = schema_and_table(key)
        .ok_or_else(|| Error::tool(format!("{key:?} does not name one table")))?;
    Ok(format!("{}.{}", ident(&schema), ident(&table)))
}

impl Postgres {
    /// The largest value of each `(table, column)` key, in order.
    pub(super) fn key_maxima_in(&self, keys: &[(&str, &str)]) -> Result<Vec<Option<i64>>> {
        key_maxima_via(
            keys,
            |i, table, column| {
                Ok(format!(
                    "SELECT {i}, max({})::text FROM {}",
                    ident(column),
                    qualified(table)?
                ))
            },
            |sql| self.query_in(&self.conn.dbname, sql),
        )
    }

    /// The partitioned tables of the database, by manifest key: their partitions, listed
    /// beside them, hold their rows.
    pub(super) fn partitioned_in(&self) -> Result<Vec<String>> {
        let rows = self.query_in(
            &self.conn.dbname,
            &format!(
                "SELECT {}, {} FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind = 'p'",
                hex_utf8("n.nspname"),
                hex_utf8("c.relname")
            ),
        )?;
        Ok(rows
            .iter()
            .filter_map(|row| match row.as_slice() {
                [Some(schema), Some(table)] => Some(table_key(&unhex(schema)?, &unhex(table)?)),
                _ => None,
            })
            .collect())
    }

    /// The rows of `table` above `max` in `column`, and at or below it.
    pub(super) fn split_by_key_in(
        &self,
        table: &str,
        column: &str,
        max: Option<i64>,
    ) -> Result<KeySplit> {
        let (table, column) = (qualified(table)?, ident(column));
        let sql = match max {
            Some(max) => format!(
                "SELECT count(*) FILTER (WHERE {column} > {max}), \
                 count(*) FILTER (WHERE {column} <= {max}) FROM {table}"
            ),
            None => format!("SELECT count(*), 0 FROM {table}"),
        };
        split_from(&self.query_in(&self.conn.dbname, &sql)?)
    }
}

#[cfg(test)]
mod tests {
    use super::qualified;

    #[test]
    fn a_table_key_is_quoted_part_by_part() {
        assert_eq!(qualified("events").unwrap(), "\"public\".\"events\"");
        assert_eq!(qualified("audit.log").unwrap(), "\"audit\".\"log\"");
        assert_eq!(
            qualified("\"x\"\"; DROP TABLE t; --\"").unwrap(),
            "\"public\".\"x\"\"; DROP TABLE t; --\""
        );
        assert!(qualified("\"unterminated").is_err());
    }
}
