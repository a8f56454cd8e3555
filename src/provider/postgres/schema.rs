//! A PostgreSQL database's shape, from the catalog: its user tables (partitioned parents
//! included), their columns in order with the type as `format_type` spells it, and the indexes
//! other than the primary key's (which is the columns' `primary_key`), and the foreign key,
//! check and exclusion constraints as `pg_get_constraintdef` writes them (a `UNIQUE` constraint
//! is its index). Names come back hex-encoded, so that no character of them is taken for psql's
//! separators. It is one query — one psql run — since every backup reads it twice.

use super::inspect::Run;
use super::key::table_key;
use super::psql::{hex_utf8, unhex};
use crate::error::Result;
use crate::schema::{Column, Index, Schema};

/// What separates an index's columns inside one hex-encoded field.
const UNIT: char = '\u{1f}';

/// A table (`c`) and its schema (`n`), to join.
const TABLES: &str = "pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace";

/// That the table `c` in schema `n` is a user table.
const USER_TABLE: &str = "c.relkind IN ('r', 'p') \
     AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'";

/// The schema of the database `run` queries.
pub(super) fn schema_via(run: &Run<'_>) -> Result<Schema> {
    // Rows of four kinds, told apart by their first field and padded to one width:
    // `c` a column (its number orders it), `i` an index, `k` a constraint, `t` a table (one
    // without columns has no other row).
    let rows = run(&format!(
        "SELECT 'c', {nsp}, {rel}, a.attnum, {att}, {typ}, a.attnotnull::text, {def}, \
             (EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary \
                 AND a.attnum = ANY (i.indkey)))::text \
         FROM {TABLES} \
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
         LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum \
         WHERE {USER_TABLE} \
         UNION ALL \
         SELECT 'i', {nsp}, {rel}, 0, {idx}, i.indisunique::text, {idx_columns}, {idx_def}, NULL \
         FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid \
         JOIN ({TABLES}) ON c.oid = i.indrelid \
         WHERE {USER_TABLE} AND NOT i.indisprimary \
         UNION ALL \
         SELECT 'k', {nsp}, {rel}, 0, {con}, {con_def}, NULL, NULL, NULL \
         FROM pg_constraint k JOIN ({TABLES}) ON c.oid = k.conrelid \
         WHERE {USER_TABLE} AND k.contype IN ('f', 'c', 'x') \
         UNION ALL \
         SELECT 't', {nsp}, {rel}, 0, '', NULL, NULL, NULL, NULL FROM {TABLES} WHERE {USER_TABLE} \
         ORDER BY 1, 2, 3, 4, 5",
        nsp = hex_utf8("n.nspname"),
        rel = hex_utf8("c.relname"),
        att = hex_utf8("a.attname"),
        typ = hex_utf8("format_type(a.atttypid, a.atttypmod)"),
        def = hex_utf8("coalesce(pg_get_expr(d.adbin, d.adrelid), '')"),
        idx = hex_utf8("x.relname"),
        idx_columns = hex_utf8(&format!(
            "array_to_string(ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true) \
             FROM generate_series(1, i.indnkeyatts) k), chr({}))",
            u32::from(UNIT)
        )),
        // From ` USING <method> (` on: the name and table before it are the row's.
        idx_def = hex_utf8(
            "substr(pg_get_indexdef(i.indexrelid, 0, true), strpos(pg_get_indexdef(i.indexrelid, 0, true), \
             ' USING ' || (SELECT amname FROM pg_am WHERE oid = x.relam) || ' (') + 1)"
        ),
        con = hex_utf8("k.conname"),
        con_def = hex_utf8("pg_get_constraintdef(k.oid, true)"),
    ))?;
    let mut schema = Schema::default();
    for row in rows {
        let [Some(kind), Some(nsp), Some(rel), _, Some(name), rest @ ..] = row.as_slice() else {
            continue;
        };
        let (Some(nsp), Some(rel), Some(name)) = (unhex(nsp), unhex(rel), unhex(name)) else {
            continue;
        };
        let table = schema.tables.entry(table_key(&nsp, &rel)).or_default();
        match (kind.as_str(), rest) {
            ("c", [Some(data_type), Some(not_null), default, Some(primary_key)]) => {
                let Some(data_type) = unhex(data_type) else {
                    continue;
                };
                table.columns.push(Column {
                    name,
                    data_type,
                    nullable: not_null != "true",
                    default: default.as_deref().and_then(unhex).filter(|d| !d.is_empty()),
                    primary_key: primary_key == "true",
                });
            }
            ("i", [Some(unique), Some(columns), definition, _]) => {
                let Some(columns) = unhex(columns) else {
                    continue;
                };
                let index = Index {
                    columns: columns.split(UNIT).map(str::to_string).collect(),
                    unique: unique == "true",
                    definition: definition.as_deref().and_then(unhex),
                };
                table.indexes.insert(name, index);
            }
            ("k", [Some(definition), ..]) => {
                if let Some(definition) = unhex(definition) {
                    table.constraints.insert(name, definition);
                }
            }
            _ => {}
        }
    }
    Ok(schema)
}
