//! A table's key as a rollback's preview uses it: the primary key when it is one integer column,
//! and the largest value of it a backup's manifest records (read before the dump, so that a row
//! written during the dump counts as one the backup may lack, never the reverse).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Table;

/// The largest key of one table when a backup was taken: its single integer primary-key column,
/// and the largest value in it (`None`: the table was empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyMax {
    pub column: String,
    pub max: Option<i64>,
}

/// The largest key of each table that has a single integer primary key, by table name.
pub type KeyMaxima = BTreeMap<String, KeyMax>;

/// How a table's rows fall either side of a backup's largest key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeySplit {
    /// Rows whose key is greater than the backup's largest (all rows when it had none).
    pub above: u64,
    /// Rows whose key is at most the backup's largest.
    pub at_or_below: u64,
}

/// The names of integer types, as SQLite, PostgreSQL (`format_type`) and MySQL (`COLUMN_TYPE`)
/// spell their first word.
const INTEGER_TYPES: [&str; 10] = [
    "integer",
    "int",
    "bigint",
    "smallint",
    "tinyint",
    "mediumint",
    "int2",
    "int4",
    "int8",
    "serial",
];

/// Whether a declared type is an integer type: `integer`, `bigint`, `int(11) unsigned`, `INT`.
pub fn is_integer_type(data_type: &str) -> bool {
    let first = data_type
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    INTEGER_TYPES.contains(&first.as_str())
}

/// The table's primary-key column when the key is that one column and of an integer type.
pub fn integer_key(table: &Table) -> Option<&str> {
    let mut keys = table.columns.iter().filter(|c| c.primary_key);
    let key = keys.next()?;
    (keys.next().is_none() && is_integer_type(&key.data_type)).then_some(key.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Column;

    fn column(name: &str, data_type: &str, primary_key: bool) -> Column {
        Column {
            name: name.into(),
            data_type: data_type.into(),
            nullable: !primary_key,
            default: None,
            primary_key,
        }
    }

    #[test]
    fn integer_types_are_told_by_their_first_word() {
        for t in [
            "INTEGER",
            "integer",
            "bigint",
            "int(11)",
            "bigint(20) unsigned",
            "INT",
            "smallint",
        ] {
            assert!(is_integer_type(t), "{t}");
        }
        for t in [
            "text",
            "interval",
            "point",
            "uuid",
            "numeric(10,0)",
            "",
            "INTEGRAL",
        ] {
            assert!(!is_integer_type(t), "{t}");
        }
    }

    #[test]
    fn only_a_single_integer_primary_key_is_a_key() {
        let table = |columns| Table {
            columns,
            ..Table::default()
        };
        let one = table(vec![
            column("id", "bigint", true),
            column("x", "text", false),
        ]);
        assert_eq!(integer_key(&one), Some("id"));
        let composite = table(vec![column("a", "int", true), column("b", "int", true)]);
        assert_eq!(integer_key(&composite), None);
        let textual = table(vec![column("code", "text", true)]);
        assert_eq!(integer_key(&textual), None);
        let none = table(vec![column("x", "integer", false)]);
        assert_eq!(integer_key(&none), None);
    }
}
