//! A PostgreSQL database's shape, from the catalog: its user tables (partitioned parents
//! included), their columns in order with the type as `format_type` spells it, and the indexes
//! other than the primary key's (which is the columns' `primary_key`), and the foreign key,
//! check and exclusion constraints as `pg_get_constraintdef` writes them (a `UNIQUE` constraint
//! is its index). Names come back hex-encoded, so that no character of them is taken for psql's
//! separators.

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
    let mut schema = Schema::default();
    let columns = run(&format!(
        "SELECT {}, {}, {}, {}, a.attnotnull::text, {}, \
         (EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary \
             AND a.attnum = ANY (i.indkey)))::text \
         FROM {TABLES} \
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
         LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum \
         WHERE {USER_TABLE} ORDER BY n.nspname, c.relname, a.attnum",
        hex_utf8("n.nspname"),
        hex_utf8("c.relname"),
        hex_utf8("a.attname"),
        hex_utf8("format_type(a.atttypid, a.atttypmod)"),
        hex_utf8("coalesce(pg_get_expr(d.adbin, d.adrelid), '')"),
    ))?;
    for row in columns {
        let [
            Some(nsp),
            Some(table),
            Some(name),
            Some(data_type),
            Some(not_null),
            default,
            Some(primary_key),
        ] = row.as_slice()
        else {
            continue;
        };
        let (Some(nsp), Some(table), Some(name), Some(data_type)) =
            (unhex(nsp), unhex(table), unhex(name), unhex(data_type))
        else {
            continue;
        };
        let default = default.as_deref().and_then(unhex).filter(|d| !d.is_empty());
        schema
            .tables
            .entry(table_key(&nsp, &table))
            .or_default()
            .columns
            .push(Column {
                name,
                data_type,
                nullable: not_null != "true",
                default,
                primary_key: primary_key == "true",
            });
    }
    for (key, name, index) in indexes(run)? {
        schema
            .tables
            .entry(key)
            .or_default()
            .indexes
            .insert(name, index);
    }
    for (key, name, definition) in constraints(run)? {
        schema
            .tables
            .entry(key)
            .or_default()
            .constraints
            .insert(name, definition);
    }
    Ok(schema)
}

/// Every foreign key, check and exclusion constraint of a user table: `(table key, name,
/// definition)`.
fn constraints(run: &Run<'_>) -> Result<Vec<(String, String, String)>> {
    let rows = run(&format!(
        "SELECT {}, {}, {}, {} \
         FROM pg_constraint k JOIN ({TABLES}) ON c.oid = k.conrelid \
         WHERE {USER_TABLE} AND k.contype IN ('f', 'c', 'x') ORDER BY 1, 2, 3",
        hex_utf8("n.nspname"),
        hex_utf8("c.relname"),
        hex_utf8("k.conname"),
        hex_utf8("pg_get_constraintdef(k.oid, true)"),
    ))?;
    let mut out = Vec::new();
    for row in rows {
        let [Some(nsp), Some(table), Some(name), Some(definition)] = row.as_slice() else {
            continue;
        };
        let (Some(nsp), Some(table), Some(name), Some(definition)) =
            (unhex(nsp), unhex(table), unhex(name), unhex(definition))
        else {
            continue;
        };
        out.push((table_key(&nsp, &table), name, definition));
    }
    Ok(out)
}

/// Every index of a user table but its primary key's: `(table key, index name, index)`.
fn indexes(run: &Run<'_>) -> Result<Vec<(String, String, Index)>> {
    let rows = run(&format!(
        "SELECT {}, {}, {}, i.indisunique::text, {} \
         FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid \
         JOIN ({TABLES}) ON c.oid = i.indrelid \
         WHERE {USER_TABLE} AND NOT i.indisprimary ORDER BY 1, 2, 3",
        hex_utf8("n.nspname"),
        hex_utf8("c.relname"),
        hex_utf8("x.relname"),
        hex_utf8(&format!(
            "array_to_string(ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true) \
             FROM generate_series(1, i.indnkeyatts) k), chr({}))",
            u32::from(UNIT)
        )),
    ))?;
    let mut out = Vec::new();
    for row in rows {
        let [
            Some(nsp),
            Some(table),
            Some(name),
            Some(unique),
            Some(columns),
        ] = row.as_slice()
        else {
            continue;
        };
        let (Some(nsp), Some(table), Some(name), Some(columns)) =
            (unhex(nsp), unhex(table), unhex(name), unhex(columns))
        else {
            continue;
        };
        let index = Index {
            columns: columns.split(UNIT).map(str::to_string).collect(),
            unique: unique == "true",
        };
        out.push((table_key(&nsp, &table), name, index));
    }
    Ok(out)
}
