//! A MySQL or MariaDB database's shape, from `information_schema`: its base tables (views are not
//! tables), their columns in order with the type as `COLUMN_TYPE` spells it, and the indexes other
//! than the primary key (which is the columns' `primary_key`), and the foreign keys and checks
//! (a `UNIQUE` constraint is its index). The client's `--batch` output escapes tabs and
//! newlines, so a name holding them reads back whole.

use super::Mysql;
use crate::error::Result;
use crate::schema::{Column, Index, Schema};

impl Mysql {
    /// The schema of the database `db` on this server.
    pub(super) fn schema_of(&self, db: &str) -> Result<Schema> {
        let mut schema = Schema::default();
        let columns = self.query_in(
            Some(db),
            "SELECT c.TABLE_NAME, c.COLUMN_NAME, c.COLUMN_TYPE, c.IS_NULLABLE, c.COLUMN_DEFAULT, \
             c.COLUMN_KEY FROM information_schema.COLUMNS c \
             JOIN information_schema.TABLES t \
               ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME \
             WHERE c.TABLE_SCHEMA = DATABASE() AND t.TABLE_TYPE = 'BASE TABLE' \
             ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION",
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
            schema
                .tables
                .entry(table.clone())
                .or_default()
                .columns
                .push(Column {
                    name: name.clone(),
                    data_type: data_type.clone(),
                    nullable: nullable == "YES",
                    default: column_default(default.as_deref()),
                    primary_key: key.as_deref() == Some("PRI"),
                });
        }
        // One row per indexed column, in the index's order; a prefix index shows its length.
        let parts = self.query_in(
            Some(db),
            "SELECT s.TABLE_NAME, s.INDEX_NAME, s.NON_UNIQUE, s.COLUMN_NAME, s.SUB_PART \
             FROM information_schema.STATISTICS s \
             JOIN information_schema.TABLES t \
               ON t.TABLE_SCHEMA = s.TABLE_SCHEMA AND t.TABLE_NAME = s.TABLE_NAME \
             WHERE s.TABLE_SCHEMA = DATABASE() AND t.TABLE_TYPE = 'BASE TABLE' \
               AND s.INDEX_NAME <> 'PRIMARY' \
             ORDER BY s.TABLE_NAME, s.INDEX_NAME, s.SEQ_IN_INDEX",
        )?;
        for row in parts {
            let [Some(table), Some(index), Some(non_unique), column, sub_part] = row.as_slice()
            else {
                continue;
            };
            // A functional index part (MySQL 8) has no column.
            let mut part = column.clone().unwrap_or_else(|| "(expression)".to_string());
            if let Some(length) = sub_part {
                part = format!("{part}({length})");
            }
            let index = schema
                .tables
                .entry(table.clone())
                .or_default()
                .indexes
                .entry(index.clone())
                .or_insert_with(|| Index {
                    columns: Vec::new(),
                    unique: non_unique == "0",
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
            "SELECT r.TABLE_NAME, r.CONSTRAINT_NAME, k.COLUMN_NAME, \
               IF(k.REFERENCED_TABLE_SCHEMA = DATABASE(), r.REFERENCED_TABLE_NAME, \
                  CONCAT(k.REFERENCED_TABLE_SCHEMA, '.', r.REFERENCED_TABLE_NAME)), \
               k.REFERENCED_COLUMN_NAME, r.UPDATE_RULE, r.DELETE_RULE \
             FROM information_schema.REFERENTIAL_CONSTRAINTS r \
             JOIN information_schema.KEY_COLUMN_USAGE k \
               ON k.CONSTRAINT_SCHEMA = r.CONSTRAINT_SCHEMA AND k.TABLE_NAME = r.TABLE_NAME \
              AND k.CONSTRAINT_NAME = r.CONSTRAINT_NAME \
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
            match keys.last_mut() {
                Some(key) if key.table == *table && key.name == *name => {
                    key.from.push(from.clone());
                    key.to.push(to.clone());
                }
                _ => keys.push(ForeignKey {
                    table: table.clone(),
                    name: name.clone(),
                    from: vec![from.clone()],
                    parent: parent.clone(),
                    to: vec![to.clone()],
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
                "SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE \
                 FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() \
                 ORDER BY 1, 2",
            )
            .or_else(|_| {
                self.query_in(
                    Some(db),
                    "SELECT t.TABLE_NAME, t.CONSTRAINT_NAME, c.CHECK_CLAUSE \
                     FROM information_schema.TABLE_CONSTRAINTS t \
                     JOIN information_schema.CHECK_CONSTRAINTS c \
                       ON c.CONSTRAINT_SCHEMA = t.CONSTRAINT_SCHEMA \
                      AND c.CONSTRAINT_NAME = t.CONSTRAINT_NAME \
                     WHERE t.TABLE_SCHEMA = DATABASE() AND t.CONSTRAINT_TYPE = 'CHECK' \
                     ORDER BY 1, 2",
                )
            })?;
        Ok(rows
            .into_iter()
            .filter_map(|row| match row.as_slice() {
                [Some(table), Some(name), Some(clause)] => {
                    Some((table.clone(), name.clone(), format!("CHECK ({clause})")))
                }
                _ => None,
            })
            .collect())
    }
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
