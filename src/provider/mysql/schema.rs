//! A MySQL or MariaDB database's shape, from `information_schema`: its base tables (views are not
//! tables), their columns in order with the type as `COLUMN_TYPE` spells it, and the indexes other
//! than the primary key (which is the columns' `primary_key`), and the foreign keys and checks
//! (a `UNIQUE` constraint is its index). Names come back hex-encoded (a name may be spelled
//! `NULL`), and tables are matched byte for byte (`information_schema` takes `T` for `t`).

use super::Mysql;
use crate::error::Result;
use crate::schema::{Column, Index, Schema};

impl Mysql {
    /// The schema of the database `db` on this server.
    pub(super) fn schema_of(&self, db: &str) -> Result<Schema> {
        let mut schema = Schema::default();
        let columns = self.query_in(
            Some(db),
            &format!(
                "SELECT HEX(c.TABLE_NAME), HEX(c.COLUMN_NAME), c.COLUMN_TYPE, c.IS_NULLABLE, \
                 c.COLUMN_DEFAULT, c.COLUMN_KEY FROM information_schema.COLUMNS c \
                 JOIN information_schema.TABLES t \
                   ON t.TABLE_SCHEMA = c.TABLE_SCHEMA {same_table} \
                 WHERE c.TABLE_SCHEMA = DATABASE() AND {BASE_TABLE} \
                 ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION",
                same_table = same_table("c"),
            ),
        )?;
        for row in columns {
            let [
                Some(table),
                Some(name),
                Some(data_type),
                Some(nullable),
                default,
                key,
            ] = row.as_slice()
            else {
                continue;
            };
            let (Some(table), Some(name)) = (unhex(table), unhex(name)) else {
                continue;
            };
            schema
                .tables
                .entry(table)
                .or_default()
                .columns
                .push(Column {
                    name,
                    data_type: data_type.clone(),
                    nullable: nullable == "YES",
                    default: column_default(default.as_deref()),
                    primary_key: key.as_deref() == Some("PRI"),
                });
        }
        // One row per indexed column, in the index's order; a prefix index shows its length.
        let parts = self.query_in(
            Some(db),
            &format!(
                "SELECT HEX(s.TABLE_NAME), HEX(s.INDEX_NAME), s.NON_UNIQUE, HEX(s.COLUMN_NAME), \
                 s.SUB_PART, s.COLLATION, s.INDEX_TYPE FROM information_schema.STATISTICS s \
                 JOIN information_schema.TABLES t \
                   ON t.TABLE_SCHEMA = s.TABLE_SCHEMA {same_table} \
                 WHERE s.TABLE_SCHEMA = DATABASE() AND {BASE_TABLE} \
                   AND s.INDEX_NAME <> 'PRIMARY' \
                 ORDER BY s.TABLE_NAME, s.INDEX_NAME, s.SEQ_IN_INDEX",
                same_table = same_table("s"),
            ),
        )?;
        for row in parts {
            let [
                Some(table),
                Some(index),
                Some(non_unique),
                column,
                sub_part,
                order,
                index_type,
            ] = row.as_slice()
            else {
                continue;
            };
            let (Some(table), Some(index)) = (unhex(table), unhex(index)) else {
                continue;
            };
            // A functional index part (MySQL 8) has no column.
            let mut part = column
                .as_deref()
                .and_then(unhex)
                .unwrap_or_else(|| "(expression)".to_string());
            if let Some(length) = sub_part {
                part = format!("{part}({length})");
            }
            if order.as_deref() == Some("D") {
                part.push_str(" DESC");
            }
            let index = schema
                .tables
                .entry(table)
                .or_default()
                .indexes
                .entry(index)
                .or_insert_with(|| Index {
                    columns: Vec::new(),
                    unique: non_unique == "0",
                    // FULLTEXT, SPATIAL, HASH: said when it is not the usual B-tree.
                    definition: index_type
                        .clone()
                        .filter(|t| t != "BTREE")
                        .map(|t| format!("USING {t}")),
                });
            index.columns.push(part);
        }
        for (table, name, definition) in self.foreign_keys(db)?.into_iter().chain(self.checks(db)?)
        {
            schema
                .tables
                .entry(table)
                .or_default()
                .constraints
                .insert(name, definition);
        }
        Ok(schema)
    }

    /// The foreign keys of `db`'s tables: `(table, name, FOREIGN KEY (…) REFERENCES t(…) ON …)`.
    fn foreign_keys(&self, db: &str) -> Result<Vec<(String, String, String)>> {
        let rows = self.query_in(
            Some(db),
            "SELECT HEX(r.TABLE_NAME), HEX(r.CONSTRAINT_NAME), HEX(k.COLUMN_NAME), \
               HEX(IF(CAST(k.REFERENCED_TABLE_SCHEMA AS BINARY) = CAST(DATABASE() AS BINARY), \
                  r.REFERENCED_TABLE_NAME, \
                  CONCAT(k.REFERENCED_TABLE_SCHEMA, '.', r.REFERENCED_TABLE_NAME))), \
               HEX(k.REFERENCED_COLUMN_NAME), r.UPDATE_RULE, r.DELETE_RULE \
             FROM information_schema.REFERENTIAL_CONSTRAINTS r \
             JOIN information_schema.KEY_COLUMN_USAGE k \
               ON k.CONSTRAINT_SCHEMA = r.CONSTRAINT_SCHEMA \
              AND CAST(k.TABLE_NAME AS BINARY) = CAST(r.TABLE_NAME AS BINARY) \
              AND CAST(k.CONSTRAINT_NAME AS BINARY) = CAST(r.CONSTRAINT_NAME AS BINARY) \
             WHERE r.CONSTRAINT_SCHEMA = DATABASE() \
             ORDER BY r.TABLE_NAME, r.CONSTRAINT_NAME, k.ORDINAL_POSITION",
        )?;
        // One row per column of each key, in order: gathered, then written out.
        let mut keys: Vec<ForeignKey> = Vec::new();
        for row in rows {
            let [
                Some(table),
                Some(name),
                Some(from),
                Some(parent),
                Some(to),
                Some(on_update),
                Some(on_delete),
            ] = row.as_slice()
            else {
                continue;
            };
            let [Some(table), Some(name), Some(from), Some(parent), Some(to)] =
                [table, name, from, parent, to].map(|h| unhex(h))
            else {
                continue;
            };
            match keys.last_mut() {
                Some(key) if key.table == table && key.name == name => {
                    key.from.push(from);
                    key.to.push(to);
                }
                _ => keys.push(ForeignKey {
                    table,
                    name,
                    from: vec![from],
                    parent,
                    to: vec![to],
                    actions: format!("ON UPDATE {on_update} ON DELETE {on_delete}"),
                }),
            }
        }
        Ok(keys
            .into_iter()
            .map(|k| {
                let definition = format!(
                    "FOREIGN KEY ({}) REFERENCES {}({}) {}",
                    k.from.join(", "),
                    k.parent,
                    k.to.join(", "),
                    k.actions
                );
                (k.table, k.name, definition)
            })
            .collect())
    }

    /// The checks of `db`'s tables: `(table, name, CHECK (…))`. MariaDB's `CHECK_CONSTRAINTS`
    /// names each one's table (its names are a table's own); MySQL 8's does not (its names are
    /// the schema's), and is read through `TABLE_CONSTRAINTS`.
    fn checks(&self, db: &str) -> Result<Vec<(String, String, String)>> {
        let rows = self
            .query_in(
                Some(db),
                "SELECT HEX(TABLE_NAME), HEX(CONSTRAINT_NAME), CHECK_CLAUSE \
                 FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() \
                 ORDER BY 1, 2",
            )
            .or_else(|_| {
                self.query_in(
                    Some(db),
                    "SELECT HEX(t.TABLE_NAME), HEX(t.CONSTRAINT_NAME), c.CHECK_CLAUSE \
                     FROM information_schema.TABLE_CONSTRAINTS t \
                     JOIN information_schema.CHECK_CONSTRAINTS c \
                       ON c.CONSTRAINT_SCHEMA = t.CONSTRAINT_SCHEMA \
                      AND CAST(c.CONSTRAINT_NAME AS BINARY) = CAST(t.CONSTRAINT_NAME AS BINARY) \
                     WHERE t.TABLE_SCHEMA = DATABASE() AND t.CONSTRAINT_TYPE = 'CHECK' \
                     ORDER BY 1, 2",
                )
            })?;
        Ok(rows
            .into_iter()
            .filter_map(|row| match row.as_slice() {
                [Some(table), Some(name), Some(clause)] => {
                    Some((unhex(table)?, unhex(name)?, format!("CHECK ({clause})")))
                }
                _ => None,
            })
            .collect())
    }
}

/// That the table `t` is a base table: MariaDB's system-versioned tables are tables too.
const BASE_TABLE: &str = "t.TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')";

/// That the table `t` is the table of `alias`'s row, byte for byte: `information_schema`
/// compares names case- and accent-insensitively, so that `T` would be `t` and `café` `cafe`.
fn same_table(alias: &str) -> String {
    format!("AND CAST(t.TABLE_NAME AS BINARY) = CAST({alias}.TABLE_NAME AS BINARY)")
}

/// A name the server sent through `HEX()`: hex-encoded, so that a name spelled `NULL` is not
/// taken for a missing value.
pub(super) fn unhex(hex_name: &str) -> Option<String> {
    let bytes = hex::decode(hex_name).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// A foreign key, gathered from its rows (one per column).
struct ForeignKey {
    table: String,
    name: String,
    from: Vec<String>,
    parent: String,
    to: Vec<String>,
    actions: String,
}

/// A column's default as `information_schema` gives it. MariaDB (since 10.2.7) writes a default
/// of NULL as the word `NULL` and quotes string defaults (`'abc'`), so the bare word is no
/// default; MySQL gives SQL NULL for it.
fn column_default(raw: Option<&str>) -> Option<String> {
    raw.filter(|d| *d != "NULL").map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::column_default;

    #[test]
    fn a_null_default_is_no_default_and_a_quoted_one_is_kept() {
        assert_eq!(column_default(None), None);
        assert_eq!(column_default(Some("NULL")), None);
        assert_eq!(column_default(Some("'NULL'")), Some("'NULL'".to_string()));
        assert_eq!(column_default(Some("0")), Some("0".to_string()));
    }
}
