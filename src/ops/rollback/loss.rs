//! What rolling back to a backup loses: per table, the rows in the live database the backup does
//! not have; the tables and columns made since; the migrations undone. Nothing is copied:
//!
//! - a table whose primary key is one integer column, whose largest value the backup's manifest
//!   records for that same column, is counted in one aggregate query: the rows whose key is above
//!   the backup's largest (written since), plus the rows at or below it beyond the backup's
//!   count (written since into the gaps) — exact but for rows deleted since;
//! - any other table of the backup: the live row count less the backup's, approximate (rows
//!   deleted and written again cancel out);
//! - a table the backup does not have: all its rows.
//!
//! Rows changed in place are not counted anywhere: a rollback undoes them too. The migration
//! table's rows are the migrations undone, listed apart; a partitioned table's rows are counted
//! in its partitions.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Undo;
use crate::config::Environment;
use crate::error::Result;
use crate::provider::{self, Provider, ProviderKind, TableStats, Tables};
use crate::registry::BackupRecord;
use crate::schema::{self, Change, KeyMaxima, KeySplit, Schema};
use crate::session::Session;

/// How a table's lost rows were counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// By its integer primary key, against the backup's largest.
    PrimaryKey,
    /// The live row count less the backup's: approximate.
    RowCount,
    /// The backup does not have the table: all its rows.
    TableAdded,
}

/// The rows one table loses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableLoss {
    pub table: String,
    pub rows: u64,
    pub basis: Basis,
    /// The count is not exact: a row-count difference, or an estimated count.
    pub approximate: bool,
}

/// A column there is now and the backup does not have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnAdded {
    pub table: String,
    pub column: String,
}

/// What rolling back to a backup loses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Loss {
    /// Rows in the live database the backup does not have, all tables together.
    pub rows_total: u64,
    /// Some table was counted approximately (see [`TableLoss::approximate`]).
    pub approximate: bool,
    /// The tables that lose rows, by name.
    pub tables: Vec<TableLoss>,
    /// Tables there are now and not in the backup; `None` when the schemas cannot be compared.
    pub tables_added: Option<Vec<String>>,
    /// Columns there are now and not in the backup; `None` when the schemas cannot be compared.
    pub columns_added: Option<Vec<ColumnAdded>>,
    /// The migrations the rollback undoes.
    pub migrations_undone: Vec<String>,
    /// Whether both schemas were known, so that `tables_added` and `columns_added` say.
    pub schema_known: bool,
    /// Why they are not, when they are not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_unknown: Option<String>,
}

/// The rows a table loses, from the backup's count of it (`None`: the backup does not have it),
/// the live count, and, when its key could be used, how its rows fall either side of the
/// backup's largest key.
pub fn table_loss(
    table: &str,
    backup: Option<&TableStats>,
    live: &TableStats,
    split: Option<KeySplit>,
) -> TableLoss {
    let (rows, basis, approximate) = match (backup, split) {
        (None, _) => (live.rows, Basis::TableAdded, live.estimated),
        (Some(b), Some(s)) => (
            s.above + s.at_or_below.saturating_sub(b.rows),
            Basis::PrimaryKey,
            b.estimated,
        ),
        (Some(b), None) => (live.rows.saturating_sub(b.rows), Basis::RowCount, true),
    };
    TableLoss {
        table: table.to_string(),
        rows,
        basis,
        approximate,
    }
}

/// What returning `env`'s database (`db`) to `record` loses; `undo` is what it undoes.
pub fn would_lose(
    session: &Session,
    env: &Environment,
    db: &dyn Provider,
    record: &BackupRecord,
    undo: &Undo,
) -> Result<Loss> {
    let migrations_undone = undo.undone.clone();
    if !db.exists()? {
        return Ok(Loss {
            rows_total: 0,
            approximate: false,
            tables: Vec::new(),
            tables_added: Some(Vec::new()),
            columns_added: Some(Vec::new()),
            migrations_undone,
            schema_known: true,
            schema_unknown: None,
        });
    }
    let live = db.inspect(env.migrations_table.as_deref(), true)?;
    let live_schema = db.schema();
    let recorded = session.store.recorded(record);
    // The migration table's rows are the migrations undone; a partitioned table's are its
    // partitions', counted there.
    let partitioned = db.partitioned_tables()?;
    let skip: Vec<&str> = [live.migrations.as_ref(), record.migrations.as_ref()]
        .into_iter()
        .flatten()
        .map(|m| m.table.as_str())
        .chain(partitioned.iter().map(String::as_str))
        .collect();
    let keys = usable_keys(
        live_schema.as_ref().ok(),
        recorded.key_max.as_ref().unwrap_or(&KeyMaxima::new()),
    );
    let tables = count(record, &live.tables, &skip, &|table| {
        let (column, max) = keys.get(table)?;
        // A count that fails is made from the row counts instead.
        db.split_by_key(table, column, *max).ok()
    });
    let (schema_known, schema_unknown, tables_added, columns_added) =
        match (&recorded.schema, &live_schema) {
            (None, _) => (
                false,
                Some("the backup's manifest records no schema".to_string()),
                None,
                None,
            ),
            (Some(_), Err(e)) => (
                false,
                Some(format!("the live schema cannot be read: {}", e.one_line())),
                None,
                None,
            ),
            (Some(then), Ok(now)) => {
                let (tables, columns) = added(then, now);
                (true, None, Some(tables), Some(columns))
            }
        };
    Ok(Loss {
        rows_total: tables.iter().map(|t| t.rows).sum(),
        approximate: tables.iter().any(|t| t.approximate),
        tables: tables.into_iter().filter(|t| t.rows > 0).collect(),
        tables_added,
        columns_added,
        migrations_undone,
        schema_known,
        schema_unknown,
    })
}

/// For each live table whose key is one integer column, and the backup's manifest records the
/// largest of that same column: the column and that largest value. Table and column names are
/// the live schema's; the manifest only says which.
fn usable_keys(
    live: Option<&Schema>,
    recorded: &KeyMaxima,
) -> BTreeMap<String, (String, Option<i64>)> {
    let Some(live) = live else {
        return BTreeMap::new();
    };
    live.tables
        .iter()
        .filter_map(|(name, table)| {
            let column = schema::integer_key(table)?;
            let then = recorded.get(name).filter(|k| k.column == column)?;
            Some((name.clone(), (column.to_string(), then.max)))
        })
        .collect()
}

/// What each live table but those in `skip` loses, counted by key where `split` can.
fn count(
    record: &BackupRecord,
    live: &Tables,
    skip: &[&str],
    split: &dyn Fn(&str) -> Option<KeySplit>,
) -> Vec<TableLoss> {
    live.iter()
        .filter(|(name, _)| !skip.contains(&name.as_str()))
        .map(|(name, now)| {
            let then = backup_count(record, name);
            let split = then.and_then(|_| split(name));
            table_loss(name, then, now, split)
        })
        .collect()
}

/// The backup's count of live table `name`: under that name, or under the name an earlier
/// faber-db gave a PostgreSQL table.
fn backup_count<'a>(record: &'a BackupRecord, name: &str) -> Option<&'a TableStats> {
    record.tables.get(name).or_else(|| match record.provider {
        ProviderKind::Postgres => record
            .tables
            .get(&provider::postgres::legacy_table_key(name)?),
        _ => None,
    })
}

/// The tables and columns there are in `now` and not in `then`.
fn added(then: &Schema, now: &Schema) -> (Vec<String>, Vec<ColumnAdded>) {
    let mut tables = Vec::new();
    let mut columns = Vec::new();
    for change in schema::changes(then, now) {
        match change {
            Change::TableAdded { table } => tables.push(table),
            Change::ColumnAdded { table, column } => columns.push(ColumnAdded {
                table,
                column: column.name,
            }),
            _ => {}
        }
    }
    (tables, columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(rows: u64) -> TableStats {
        TableStats::exact(rows)
    }

    fn split(above: u64, at_or_below: u64) -> KeySplit {
        KeySplit { above, at_or_below }
    }

    #[test]
    fn by_key_the_rows_above_the_backups_largest_and_those_beyond_its_count_are_lost() {
        // 37 written since, with keys above the backup's largest.
        let t = table_loss("notes", Some(&stats(3)), &stats(40), Some(split(37, 3)));
        assert_eq!(
            (t.rows, t.basis, t.approximate),
            (37, Basis::PrimaryKey, false)
        );
        // 2 written into the gaps below it, 1 of the backup's deleted: 37 + (4 - 3).
        let t = table_loss("notes", Some(&stats(3)), &stats(41), Some(split(37, 4)));
        assert_eq!(t.rows, 38);
        // Rows deleted since are no loss, and never a negative one.
        let t = table_loss("notes", Some(&stats(10)), &stats(2), Some(split(0, 2)));
        assert_eq!(t.rows, 0);
        // Rows written during the dump, above the largest read before it: counted as lost.
        let t = table_loss("notes", Some(&stats(5)), &stats(5), Some(split(1, 4)));
        assert_eq!(t.rows, 1);
    }

    #[test]
    fn without_a_key_the_count_difference_is_approximate_and_a_new_table_loses_all() {
        let t = table_loss("log", Some(&stats(3)), &stats(8), None);
        assert_eq!((t.rows, t.basis, t.approximate), (5, Basis::RowCount, true));
        let t = table_loss("log", Some(&stats(8)), &stats(3), None);
        assert_eq!((t.rows, t.approximate), (0, true));
        let t = table_loss("tags", None, &stats(12), Some(split(99, 99)));
        assert_eq!(
            (t.rows, t.basis, t.approximate),
            (12, Basis::TableAdded, false)
        );
        // An estimated count is never exact.
        let big = TableStats {
            rows: 1000,
            estimated: true,
            data_excluded: false,
        };
        assert!(table_loss("big", Some(&big), &stats(1005), Some(split(5, 1000))).approximate);
        assert!(table_loss("big", None, &big, None).approximate);
    }

    #[test]
    fn a_key_is_used_only_when_the_manifest_records_the_same_integer_column() {
        let live: Schema = serde_json::from_value(serde_json::json!({"tables": {
            "notes": {"columns": [{"name": "id", "type": "INTEGER", "nullable": false, "primary_key": true}]},
            "renamed": {"columns": [{"name": "uid", "type": "INTEGER", "nullable": false, "primary_key": true}]},
            "log": {"columns": [{"name": "line", "type": "TEXT", "nullable": true}]}
        }}))
        .unwrap();
        let recorded: KeyMaxima = serde_json::from_value(serde_json::json!({
            "notes": {"column": "id", "max": 3},
            "renamed": {"column": "id", "max": 3},
            "log": {"column": "line", "max": 3},
            "gone": {"column": "id", "max": 3}
        }))
        .unwrap();
        let keys = usable_keys(Some(&live), &recorded);
        assert_eq!(
            keys.into_iter().collect::<Vec<_>>(),
            [("notes".to_string(), ("id".to_string(), Some(3)))]
        );
        assert!(usable_keys(None, &recorded).is_empty());
    }
}
