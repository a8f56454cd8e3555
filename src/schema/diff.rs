//! What changed from one schema to another, as a list a person reads in order: tables added and
//! dropped, then, table by table, columns added, dropped and altered, indexes added, dropped
//! and altered, and constraints added, dropped and altered.

use serde::Serialize;

use super::{Column, Index, Schema, Table};

/// One difference between two schemas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    TableAdded {
        table: String,
    },
    TableDropped {
        table: String,
    },
    ColumnAdded {
        table: String,
        column: Column,
    },
    /// The column as it was declared.
    ColumnDropped {
        table: String,
        column: Column,
    },
    /// The column's type, nullability, default or part in the primary key changed.
    ColumnAltered {
        table: String,
        before: Column,
        after: Column,
    },
    IndexAdded {
        table: String,
        index: String,
        columns: Vec<String>,
        unique: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        definition: Option<String>,
    },
    IndexDropped {
        table: String,
        index: String,
    },
    /// The index covers other columns now, became (or stopped being) unique, or is built
    /// otherwise (its method, order, `WHERE`).
    IndexAltered {
        table: String,
        index: String,
        before: Index,
        after: Index,
    },
    ConstraintAdded {
        table: String,
        constraint: String,
        definition: String,
    },
    ConstraintDropped {
        table: String,
        constraint: String,
    },
    /// The constraint of that name is defined otherwise now.
    ConstraintAltered {
        table: String,
        constraint: String,
        before: String,
        after: String,
    },
}

/// What changed from `before` to `after`.
pub fn changes(before: &Schema, after: &Schema) -> Vec<Change> {
    let mut out = Vec::new();
    for name in after.tables.keys() {
        if !before.tables.contains_key(name) {
            out.push(Change::TableAdded {
                table: name.clone(),
            });
        }
    }
    for name in before.tables.keys() {
        if !after.tables.contains_key(name) {
            out.push(Change::TableDropped {
                table: name.clone(),
            });
        }
    }
    for (name, was) in &before.tables {
        if let Some(now) = after.tables.get(name) {
            columns(name, was, now, &mut out);
            indexes(name, was, now, &mut out);
            constraints(name, was, now, &mut out);
        }
    }
    out
}

fn columns(table: &str, was: &Table, now: &Table, out: &mut Vec<Change>) {
    for column in &now.columns {
        match was.column(&column.name) {
            None => out.push(Change::ColumnAdded {
                table: table.to_string(),
                column: column.clone(),
            }),
            Some(before) if before != column => out.push(Change::ColumnAltered {
                table: table.to_string(),
                before: before.clone(),
                after: column.clone(),
            }),
            Some(_) => {}
        }
    }
    for column in &was.columns {
        if now.column(&column.name).is_none() {
            out.push(Change::ColumnDropped {
                table: table.to_string(),
                column: column.clone(),
            });
        }
    }
}

fn indexes(table: &str, was: &Table, now: &Table, out: &mut Vec<Change>) {
    for (name, index) in &now.indexes {
        match was.indexes.get(name) {
            None => out.push(Change::IndexAdded {
                table: table.to_string(),
                index: name.clone(),
                columns: index.columns.clone(),
                unique: index.unique,
                definition: index.definition.clone(),
            }),
            Some(before) if before != index => out.push(Change::IndexAltered {
                table: table.to_string(),
                index: name.clone(),
                before: before.clone(),
                after: index.clone(),
            }),
            Some(_) => {}
        }
    }
    for name in was.indexes.keys() {
        if !now.indexes.contains_key(name) {
            out.push(Change::IndexDropped {
                table: table.to_string(),
                index: name.clone(),
            });
        }
    }
}

fn constraints(table: &str, was: &Table, now: &Table, out: &mut Vec<Change>) {
    for (name, definition) in &now.constraints {
        match was.constraints.get(name) {
            None => out.push(Change::ConstraintAdded {
                table: table.to_string(),
                constraint: name.clone(),
                definition: definition.clone(),
            }),
            Some(before) if before != definition => out.push(Change::ConstraintAltered {
                table: table.to_string(),
                constraint: name.clone(),
                before: before.clone(),
                after: definition.clone(),
            }),
            Some(_) => {}
        }
    }
    for name in was.constraints.keys() {
        if !now.constraints.contains_key(name) {
            out.push(Change::ConstraintDropped {
                table: table.to_string(),
                constraint: name.clone(),
            });
        }
    }
}
