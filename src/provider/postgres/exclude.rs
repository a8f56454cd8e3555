//! `exclude_table_data` of a PostgreSQL backup: the patterns resolved against the tables of the
//! dump's own snapshot, each table found passed to `pg_dump --exclude-table-data` by its full
//! name in double quotes (where every character stands for itself: pg_dump's own wildcards,
//! `*` `?` `.` and case folding, play no part). A partitioned table's rows are its partitions':
//! excluding it excludes them too, and the manifest marks them all; a partitioned table some of
//! whose partitions are excluded counts the rows of the others.

use super::inspect::{ESTIMATE_OF_USER_TABLES, Run};
use super::key::table_key;
use super::psql::{hex_utf8, unhex};
use crate::error::Result;
use crate::provider::{TableStats, Tables, exclude};

/// The tables whose rows a dump leaves out.
#[derive(Debug, Default)]
pub(super) struct Excluded {
    /// As the manifest names them.
    pub keys: Vec<String>,
    /// Their `(schema, table)`, for pg_dump.
    names: Vec<(String, String)>,
    /// The partitioned tables not excluded that some of whose partitions are: each with its
    /// leaf partitions, whose rows it counts (see [`Excluded::mark`]).
    parents: Vec<(String, Vec<String>)>,
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

    /// Marks the excluded tables in `tables`; a partitioned table that is not excluded, though
    /// some of its partitions are, then counts the rows of its leaf partitions as the dump holds
    /// them (not compared when one of them is an estimate).
    pub fn mark(&self, tables: &mut Tables) {
        exclude::mark(tables, &self.keys);
        for (parent, leaves) in &self.parents {
            let counted: Vec<TableStats> = leaves
                .iter()
                .filter_map(|l| tables.get(l).copied())
                .collect();
            if let Some(stats) = tables.get_mut(parent) {
                stats.rows = counted.iter().map(|t| t.rows).sum();
                stats.estimated =
                    counted.len() != leaves.len() || counted.iter().any(|t| t.estimated);
            }
        }
    }
}

/// One user table as [`resolve`] lists it.
struct Listed {
    key: String,
    schema: String,
    table: String,
    /// Of a partitioned table: its partitions at every level, and its leaf partitions.
    parts: Vec<(String, String)>,
    leaves: Vec<String>,
}

/// The tables `patterns` match among the user tables `run` lists (in the dump's snapshot), with
/// the partitions of those partitioned.
pub(super) fn resolve(run: &Run<'_>, patterns: &[String]) -> Result<Excluded> {
    if patterns.is_empty() {
        return Ok(Excluded::default());
    }
    let listed = list(run)?;
    let mut out = Excluded::default();
    for t in listed
        .iter()
        .filter(|t| patterns.iter().any(|p| exclude::matches(p, &t.key)))
    {
        for (schema, table) in
            std::iter::once((t.schema.clone(), t.table.clone())).chain(t.parts.iter().cloned())
        {
            let key = table_key(&schema, &table);
            if !out.keys.contains(&key) {
                out.keys.push(key);
                out.names.push((schema, table));
            }
        }
    }
    for t in &listed {
        if !out.keys.contains(&t.key) && t.leaves.iter().any(|l| out.keys.contains(l)) {
            out.parents.push((t.key.clone(), t.leaves.clone()));
        }
    }
    Ok(out)
}

/// Every user table, and of a partitioned one its partitions (all, and the leaves).
fn list(run: &Run<'_>) -> Result<Vec<Listed>> {
    let parts = |leaf_only: &str| {
        format!(
            "CASE WHEN c.relkind = 'p' THEN (SELECT string_agg({} || '.' || {}, ',') \
             FROM pg_partition_tree(c.oid) t \
             JOIN pg_class l ON l.oid = t.relid JOIN pg_namespace ln ON ln.oid = l.relnamespace \
             WHERE t.relid <> c.oid{leaf_only}) END",
            hex_utf8("ln.nspname"),
            hex_utf8("l.relname"),
        )
    };
    let rows = run(&format!(
        "SELECT {}, {}, {}, {}, {ESTIMATE_OF_USER_TABLES}",
        hex_utf8("n.nspname"),
        hex_utf8("c.relname"),
        parts(""),
        parts(" AND t.isleaf"),
    ))?;
    let pairs = |list: &Option<String>| -> Vec<(String, String)> {
        list.as_deref()
            .unwrap_or_default()
            .split(',')
            .filter_map(|p| {
                let (schema, table) = p.split_once('.')?;
                Some((unhex(schema)?, unhex(table)?))
            })
            .collect()
    };
    Ok(rows
        .iter()
        .filter_map(|row| {
            let [Some(schema), Some(table), parts, leaves, _] = row.as_slice() else {
                return None;
            };
            let (schema, table) = (unhex(schema)?, unhex(table)?);
            Some(Listed {
                key: table_key(&schema, &table),
                schema,
                table,
                parts: pairs(parts),
                leaves: pairs(leaves).iter().map(|(s, t)| table_key(s, t)).collect(),
            })
        })
        .collect())
}
