//! `exclude_table_data` of a PostgreSQL backup: the patterns resolved against the tables of the
//! dump's own snapshot, each table found passed to `pg_dump --exclude-table-data` by its full
//! name in double quotes (where every character stands for itself: pg_dump's own wildcards,
//! `*` `?` `.` and case folding, play no part). A partitioned table's rows are its partitions':
//! excluding it excludes them too, and the manifest marks them all.

use super::inspect::{ESTIMATE_OF_USER_TABLES, Run};
use super::key::table_key;
use super::psql::{hex_utf8, unhex};
use crate::error::Result;
use crate::provider::exclude;

/// The tables whose rows a dump leaves out.
#[derive(Debug, Default)]
pub(super) struct Excluded {
    /// As the manifest names them.
    pub keys: Vec<String>,
    /// Their `(schema, table)`, for pg_dump.
    names: Vec<(String, String)>,
}

impl Excluded {
    /// pg_dump's options that leave their rows out.
    pub fn args(&self) -> impl Iterator<Item = String> + '_ {
        self.names.iter().map(|(schema, table)| {
            format!(
                "--exclude-table-data={}.{}",
                super::tables::pattern(schema),
                super::tables::pattern(table)
            )
        })
    }
}

/// The tables `patterns` match among the user tables `run` lists (in the dump's snapshot), with
/// the partitions of those partitioned.
pub(super) fn resolve(run: &Run<'_>, patterns: &[String]) -> Result<Excluded> {
    if patterns.is_empty() {
        return Ok(Excluded::default());
    }
    // Each table, and for a partitioned one its partitions at every level, as hex pairs.
    let rows = run(&format!(
        "SELECT {}, {}, CASE WHEN c.relkind = 'p' THEN (SELECT string_agg({} || '.' || {}, ',') \
             FROM pg_partition_tree(c.oid) t \
             JOIN pg_class l ON l.oid = t.relid JOIN pg_namespace ln ON ln.oid = l.relnamespace \
             WHERE t.relid <> c.oid) END, \
         {ESTIMATE_OF_USER_TABLES}",
        hex_utf8("n.nspname"),
        hex_utf8("c.relname"),
        hex_utf8("ln.nspname"),
        hex_utf8("l.relname"),
    ))?;
    let pair = |p: &str| {
        let (schema, table) = p.split_once('.')?;
        Some((unhex(schema)?, unhex(table)?))
    };
    let mut out = Excluded::default();
    for row in rows {
        let [Some(schema), Some(table), parts, _] = row.as_slice() else {
            continue;
        };
        let (Some(schema), Some(table)) = (unhex(schema), unhex(table)) else {
            continue;
        };
        if !patterns
            .iter()
            .any(|p| exclude::matches(p, &table_key(&schema, &table)))
        {
            continue;
        }
        let parts = parts.as_deref().unwrap_or_default();
        for (schema, table) in std::iter::once(Some((schema, table)))
            .chain(parts.split(',').map(pair))
            .flatten()
        {
            let key = table_key(&schema, &table);
            if !out.keys.contains(&key) {
                out.keys.push(key);
                out.names.push((schema, table));
            }
        }
    }
    Ok(out)
}
