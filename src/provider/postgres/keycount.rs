//! A table's integer key either side of a backup's largest one, in PostgreSQL: `max()` of each
//! key before a dump (one query for many tables), and one aggregate pass per table that counts the
//! rows above and at or below it. Tables are named by their manifest keys (see [`super::key`]) and
//! quoted part by part; a largest key is an integer, written as digits.

use super::Postgres;
use super::key::{schema_and_table, table_key};
use super::psql::{hex_utf8, ident, unhex};
use crate::error::{Error, Result};
use crate::schema::KeySplit;

/// How many tables one query reads the largest key of: the statement is one argument of psql's.
const PER_QUERY: usize = 200;

/// The table of manifest key `key`, quoted: `"schema"."table"`.
fn qualified(key: &str) -> Result<String> {
    let (schema, table) = schema_and_table(key)
        .ok_or_else(|| Error::tool(format!("{key:?} does not name one table")))?;
    Ok(format!("{}.{}", ident(&schema), ident(&table)))
}

/// A number psql printed.
fn number<T: std::str::FromStr>(text: Option<&String>) -> Result<T> {
    text.and_then(|t| t.parse().ok()).ok_or_else(|| {
        Error::tool(format!(
            "the server answered {text:?} where a number belongs"
        ))
    })
}

impl Postgres {
    /// The largest value of each `(table, column)` key, in order.
    pub(super) fn key_maxima_in(&self, keys: &[(&str, &str)]) -> Result<Vec<Option<i64>>> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(PER_QUERY) {
            let parts = chunk
                .iter()
                .enumerate()
                .map(|(i, (table, column))| {
                    Ok(format!(
                        "SELECT {i}, max({})::text FROM {}",
                        ident(column),
                        qualified(table)?
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            let rows = self.query_in(&self.conn.dbname, &parts.join(" UNION ALL "))?;
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
        let rows = self.query_in(&self.conn.dbname, &sql)?;
        let row = rows
            .first()
            .ok_or_else(|| Error::tool("the count returned no row"))?;
        Ok(KeySplit {
            above: number(row.first().and_then(Option::as_ref))?,
            at_or_below: number(row.get(1).and_then(Option::as_ref))?,
        })
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
