//! How `diff` shows a backup compared with the live database: the row counts as a table, the
//! migrations, then the schema's changes a line each.

use crate::ops::diff::{Diff, SchemaDiff, TableDiff};
use crate::ui::Ui;

/// Prints the comparison `d`.
pub fn show(ui: &Ui, d: &Diff<'_>) {
    let (env, record) = (d.env, &d.record);
    let when = record.timestamp.format("%Y-%m-%d %H:%M UTC");
    let (name, id, url) = (ui.bold(&env.name), ui.bold(&record.id), &d.url);
    ui.line(format!("{name} ({url}) now, against backup {id} of {when}"));
    // Names as the database holds them, control characters escaped: a table's name cannot
    // move the cursor or rewrite the lines around it.
    let names: Vec<_> = d
        .tables
        .iter()
        .map(|t| super::printable(&t.table))
        .collect();
    let width = names.iter().map(|n| n.chars().count()).max();
    let width = width.unwrap_or(5).max(5);
    ui.line(row(width, ["TABLE", "BACKUP", "NOW", "DELTA"]));
    for (t, name) in d.tables.iter().zip(&names) {
        let backup = if t.change == "data_excluded" {
            "excluded".to_string()
        } else {
            count(t.backup_rows, t)
        };
        let now = count(t.live_rows, t);
        ui.line(row(width, [name, &backup, &now, &delta(t)]));
    }
    if !d.applied_since.is_empty() {
        let list = super::printable(&d.applied_since.join(", ")).into_owned();
        ui.line(format!("Migrations applied since: {list}"));
    }
    if !d.missing.is_empty() {
        let list = super::printable(&d.missing.join(", ")).into_owned();
        let what = "Migrations in the backup but not applied now";
        ui.line(format!("{what}: {list}"));
    }
    if d.applied_since.is_empty() && d.missing.is_empty() {
        ui.line("Migrations: the same as in the backup");
    }
    show_schema(ui, &record.id, &d.schema, d.schema_from_copy);
}

/// The schema's changes, a line each; or why they are not known.
fn show_schema(ui: &Ui, id: &str, schema: &SchemaDiff, from_copy: bool) {
    let read = if from_copy {
        " (the backup's schema read from a scratch copy of it)"
    } else {
        ""
    };
    match schema {
        SchemaDiff::Compared(changes) if changes.is_empty() => {
            ui.line(format!("Schema: the same as in the backup{read}"));
        }
        SchemaDiff::Compared(changes) => {
            ui.line(format!("Schema changes since the backup{read}:"));
            for change in changes {
                ui.line(format!("  {}", super::schema::change_line(change)));
            }
        }
        SchemaDiff::NotRecorded => ui.line(format!(
            "Schema: not compared (the backup's manifest records no schema: it was taken by an earlier faber-db, while the schema changed, or when it could not be read); `faber-db diff {id} --deep` loads the backup into a scratch database to read it"
        )),
        SchemaDiff::Unreadable(why) => {
            ui.line(format!("Schema: not compared (the live schema cannot be read: {why})"));
        }
    }
}

/// A line of the table: its four columns aligned.
fn row(width: usize, [table, backup, now, delta]: [&str; 4]) -> String {
    format!("  {table:<width$}  {backup:>10}  {now:>10}  {delta:>8}")
}

/// A row count as shown: `~N` when either side is estimated, `-` when the table is not there.
fn count(n: Option<u64>, t: &TableDiff) -> String {
    match n {
        Some(n) if t.estimated => format!("~{n}"),
        Some(n) => n.to_string(),
        None => "-".into(),
    }
}

/// The DELTA column: `added`, `removed`, `+N`, `-N`, `0`; nothing for a table whose rows the
/// backup left out.
fn delta(t: &TableDiff) -> String {
    match (t.change, t.delta) {
        ("added", _) => "added".to_string(),
        ("removed", _) => "removed".to_string(),
        (_, Some(d)) if d > 0 => format!("+{d}"),
        (_, Some(d)) => d.to_string(),
        _ => String::new(),
    }
}
