//! The queries of a table's integer key that the server providers share: the largest key of
//! many tables in one statement (`UNION ALL` of one `SELECT` each, in chunks), and reading the
//! numbers the client printed back. Each provider writes its own `SELECT`, quoting names its way.

use crate::error::{Error, Result};
use crate::schema::KeySplit;

/// How many tables one query reads the largest key of: the statement is one argument of the
/// client's.
const PER_QUERY: usize = 200;

/// Rows of text columns as a client prints them (`None` for NULL).
type Rows = Vec<Vec<Option<String>>>;

/// A number the client printed.
pub(super) fn number<T: std::str::FromStr>(text: Option<&String>) -> Result<T> {
    text.and_then(|t| t.parse().ok()).ok_or_else(|| {
        Error::tool(format!(
            "the server answered {text:?} where a number belongs"
        ))
    })
}

/// The largest value of each `(table, column)` key, in order: `select(i, table, column)` writes
/// the `SELECT i, <largest as text> FROM <table>` of one, `run` runs a statement.
pub(super) fn key_maxima_via(
    keys: &[(&str, &str)],
    select: impl Fn(usize, &str, &str) -> Result<String>,
    run: impl Fn(&str) -> Result<Rows>,
) -> Result<Vec<Option<i64>>> {
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(PER_QUERY) {
        let parts = chunk
            .iter()
            .enumerate()
            .map(|(i, (table, column))| select(i, table, column))
            .collect::<Result<Vec<_>>>()?;
        let rows = run(&parts.join(" UNION ALL "))?;
        let mut found = vec![None; chunk.len()];
        for row in rows {
            let i: usize = number(row.first().and_then(Option::as_ref))?;
            let max = match row.get(1).and_then(Option::as_ref) {
                None => None,
                text => Some(number(text)?),
            };
            *found
                .get_mut(i)
                .ok_or_else(|| Error::tool("the server answered for a table not asked about"))? =
                max;
        }
        out.extend(found);
    }
    Ok(out)
}

/// The rows above and at or below a key, from the one row of `SELECT <above>, <at or below>`.
pub(super) fn split_from(rows: &Rows) -> Result<KeySplit> {
    let row = rows
        .first()
        .ok_or_else(|| Error::tool("the count returned no row"))?;
    Ok(KeySplit {
        above: number(row.first().and_then(Option::as_ref))?,
        at_or_below: number(row.get(1).and_then(Option::as_ref))?,
    })
}
