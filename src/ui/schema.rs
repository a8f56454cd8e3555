//! How a schema change reads: one line each, `+` for what is there now and was not, `-` for what
//! was and is not, `~` for what changed — as `diff` and a migration's rehearsal print them.

use crate::schema::{Change, Column, Index};

/// The line of one change: no control character of a name or definition in it (see
/// [`super::printable`]).
pub fn change_line(change: &Change) -> String {
    super::printable(&raw_line(change)).into_owned()
}

fn raw_line(change: &Change) -> String {
    match change {
        Change::TableAdded { table } => format!("+ table {table}"),
        Change::TableDropped { table } => format!("- table {table}"),
        Change::ColumnAdded { table, column } => {
            format!("+ column {table}.{}: {}", column.name, column_text(column))
        }
        Change::ColumnDropped { table, column } => format!("- column {table}.{}", column.name),
        Change::ColumnAltered {
            table,
            before,
            after,
        } => format!(
            "~ column {table}.{}: {}",
            after.name,
            column_changes(before, after).join("; ")
        ),
        Change::IndexAdded {
            table,
            index,
            columns,
            unique,
            definition,
        } => format!(
            "+ {}index {index} on {table} ({}){}",
            if *unique { "unique " } else { "" },
            columns.join(", "),
            definition
                .as_ref()
                .map(|d| format!(" [{d}]"))
                .unwrap_or_default()
        ),
        Change::IndexDropped { table, index } => format!("- index {index} on {table}"),
        Change::ConstraintAdded {
            table,
            constraint,
            definition,
        } => format!("+ constraint {constraint} on {table}: {definition}"),
        Change::ConstraintDropped { table, constraint } => {
            format!("- constraint {constraint} on {table}")
        }
        Change::ConstraintAltered {
            table,
            constraint,
            before,
            after,
        } => format!("~ constraint {constraint} on {table}: {before} -> {after}"),
        Change::IndexAltered {
            table,
            index,
            before,
            after,
        } => format!(
            "~ index {index} on {table}: {} -> {}",
            index_text(before),
            index_text(after)
        ),
    }
}

/// A column as declared: `text NOT NULL DEFAULT 'x' PRIMARY KEY`.
fn column_text(c: &Column) -> String {
    let mut out = c.data_type.clone();
    if !c.nullable {
        out.push_str(" NOT NULL");
    }
    if let Some(d) = &c.default {
        out.push_str(&format!(" DEFAULT {d}"));
    }
    if c.primary_key {
        out.push_str(" PRIMARY KEY");
    }
    out
}

/// What changed in a column: its type, nullability, default, part in the primary key.
fn column_changes(before: &Column, after: &Column) -> Vec<String> {
    let mut out = Vec::new();
    if before.data_type != after.data_type {
        out.push(format!("type {} -> {}", before.data_type, after.data_type));
    }
    if before.nullable != after.nullable {
        let word = |nullable: bool| if nullable { "NULL" } else { "NOT NULL" };
        out.push(format!(
            "{} -> {}",
            word(before.nullable),
            word(after.nullable)
        ));
    }
    if before.default != after.default {
        let word = |d: &Option<String>| d.clone().unwrap_or_else(|| "none".to_string());
        out.push(format!(
            "default {} -> {}",
            word(&before.default),
            word(&after.default)
        ));
    }
    if before.primary_key != after.primary_key {
        out.push(if after.primary_key {
            "now in the primary key".to_string()
        } else {
            "no longer in the primary key".to_string()
        });
    }
    out
}

/// An index as shown: `unique (a, b)`, and the rest of its definition when there is one.
fn index_text(i: &Index) -> String {
    let mut out = format!(
        "{}({})",
        if i.unique { "unique " } else { "" },
        i.columns.join(", ")
    );
    if let Some(d) = &i.definition {
        out.push_str(&format!(" [{d}]"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(data_type: &str, nullable: bool, default: Option<&str>) -> Column {
        Column {
            name: "age".into(),
            data_type: data_type.into(),
            nullable,
            default: default.map(str::to_string),
            primary_key: false,
        }
    }

    #[test]
    fn each_change_reads_as_one_line_saying_what_changed() {
        let table = || "users".to_string();
        let added = Change::ColumnAdded {
            table: table(),
            column: column("text", false, Some("''")),
        };
        assert_eq!(
            change_line(&added),
            "+ column users.age: text NOT NULL DEFAULT ''"
        );
        let altered = Change::ColumnAltered {
            table: table(),
            before: column("integer", true, Some("0")),
            after: column("bigint", false, None),
        };
        assert_eq!(
            change_line(&altered),
            "~ column users.age: type integer -> bigint; NULL -> NOT NULL; default 0 -> none"
        );
        let index = Change::IndexAdded {
            table: table(),
            index: "users_email".into(),
            columns: vec!["email".into()],
            unique: true,
            definition: None,
        };
        assert_eq!(
            change_line(&index),
            "+ unique index users_email on users (email)"
        );
        let dropped = Change::IndexDropped {
            table: table(),
            index: "users_age".into(),
        };
        assert_eq!(change_line(&dropped), "- index users_age on users");
        assert_eq!(
            change_line(&Change::TableDropped { table: table() }),
            "- table users"
        );
    }

    #[test]
    fn a_name_holding_control_characters_is_shown_escaped() {
        let evil = Change::TableAdded {
            table: "t\u{1b}[2K\rx\n".into(),
        };
        assert_eq!(change_line(&evil), "+ table t\\u{1b}[2K\\rx\\n");
    }
}
