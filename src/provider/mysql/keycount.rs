//! A table's integer key either side of a backup's largest one, in MySQL and MariaDB: `MAX()` of
//! each key before a dump (one query for many tables), and one `SUM()` pass per table that counts
//! the rows above and at or below it. Names are quoted identifiers; a largest key is an integer,
//! written as digits.

use super::Mysql;
use super::client::ident;
use crate::error::{Error, Result};
use crate::schema::KeySplit;

/// How many tables one query reads the largest key of: the statement is one argument of the
/// client's.
const PER_QUERY: usize = 200;

/// A number the client printed.
fn number<T: std::str::FromStr>(text: Option<&String>) -> Result<T> {
    text.and_then(|t| t.parse().ok()).ok_or_else(|| {
        Error::tool(format!(
            "the server answered {text:?} where a number belongs"
        ))
    })
}

impl Mysql {
    /// The largest value of each `(table, column)` key, in order.
    pub(super) fn key_maxima_in(&self, keys: &[(&str, &str)]) -> Result<Vec<Option<i64>>> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(PER_QUERY) {
            let sql = chunk
                .iter()
                .enumerate()
                .map(|(i, (table, column))| {
                    format!(
                        "SELECT {i}, CAST(MAX({}) AS CHAR) FROM {}",
                        ident(column),
                        ident(table)
                    )
                })
                .collect::<Vec<_>>()
                .join(" UNION ALL ");
            let rows = self.query_in(Some(&self.conn.dbname), &sql)?;
            let mut found = vec![None; chunk.len()];
            for row in rows {
                let i: usize = number(row.first().and_then(Option::as_ref))?;
                let max = match row.get(1).and_then(Option::as_ref) {
                    None => None,
                    text => Some(number(text)?),
                };
                *found.get_mut(i).ok_or_else(|| {
                    Error::tool("the server answered for a table not asked about")
                })? = max;
            }
            out.extend(found);
        }
        Ok(out)
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
        let rows = self.query_in(Some(&self.conn.dbname), &sql)?;
        let row = rows
            .first()
            .ok_or_else(|| Error::tool("the count returned no row"))?;
        Ok(KeySplit {
            above: number(row.first().and_then(Option::as_ref))?,
            at_or_below: number(row.get(1).and_then(Option::as_ref))?,
        })
    }
}
