//! A table's integer key either side of a backup's largest one, in MySQL and MariaDB: `MAX()` of
//! each key before a dump (one query for many tables), and one `SUM()` pass per table that counts
//! the rows above and at or below it. Names are quoted identifiers; a largest key is an integer,
//! written as digits.

use super::Mysql;
use super::client::ident;
use crate::error::Result;
use crate::provider::keyquery::{key_maxima_via, split_from};
use crate::schema::KeySplit;

impl Mysql {
    /// The largest value of each `(table, column)` key, in order.
    pub(super) fn key_maxima_in(&self, keys: &[(&str, &str)]) -> Result<Vec<Option<i64>>> {
        key_maxima_via(
            keys,
            |i, table, column| {
                Ok(format!(
                    "SELECT {i}, CAST(MAX({}) AS CHAR) FROM {}",
                    ident(column),
                    ident(table)
                ))
            },
            |sql| self.query_in(Some(&self.conn.dbname), sql),
        )
    }

    /// The rows of `table` above `max` in `column`, and at or below it.
    pub(super) fn split_by_key_in(
        &self,
        table: &str,
        column: &str,
        max: Option<i64>,
    ) -> Result<KeySplit> {
        let (table, column) = (ident(table), ident(column));
        let sql = match max {
            Some(max) => format!(
                "SELECT COALESCE(SUM({column} > {max}), 0), COALESCE(SUM({column} <= {max}), 0) \
                 FROM {table}"
            ),
            None => format!("SELECT COUNT(*), 0 FROM {table}"),
        };
        split_from(&self.query_in(Some(&self.conn.dbname), &sql)?)
    }
}
