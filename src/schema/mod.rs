//! A database's shape — its tables, their columns, indexes and constraints — and what changed between two
//! of them. The providers read it (SQLite from `sqlite_schema` and its pragmas); a migration's
//! rehearsal, `diff` and a rollback's preview compare two (issue 20). Nothing here touches a
//! database.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod diff;
mod keys;

pub use diff::{Change, changes};
pub use keys::{KeyMax, KeyMaxima, KeySplit, integer_key, is_integer_type};

/// Every table of a database, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    pub tables: BTreeMap<String, Table>,
}

/// One table: its columns in their order, its indexes by name, and its constraints other than
/// the primary key, `NOT NULL` and `UNIQUE` (which the columns and indexes are) by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub columns: Vec<Column>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub indexes: BTreeMap<String, Index>,
    /// Foreign keys and checks (and PostgreSQL's exclusion constraints): each one's definition as
    /// the database writes it (`FOREIGN KEY (a) REFERENCES t(id) ON DELETE CASCADE`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub constraints: BTreeMap<String, String>,
}

/// One column, as the database declares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// The declared type, as the database spells it (`INTEGER`, `character varying(80)`).
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
    /// The default expression, as the database spells it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Part of the table's primary key.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub primary_key: bool,
}

/// One index: the columns (or expressions) it covers, in order, whether it is unique, and how it
/// is built beyond that, where the database says more.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub columns: Vec<String>,
    pub unique: bool,
    /// The rest of its definition, as the database writes it: PostgreSQL's from `USING` on
    /// (method, order, `INCLUDE`, `WHERE`); SQLite's `CREATE INDEX` of a partial index;
    /// MySQL's index type when it is not a B-tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<String>,
}

impl Table {
    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}
