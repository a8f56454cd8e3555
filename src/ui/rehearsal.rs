//! How a migration's rehearsal looks: whether it passed on the copy, the migrations it applied,
//! the schema it changed, the row counts that moved, and where it failed.

use crate::ops::migrate::{Rehearsal, RowChange};
use crate::ui::{self, To, Ui};

/// Prints `r` where `to` says.
pub fn rehearsal(ui: &Ui, r: &Rehearsal, to: To) {
    let verdict = if r.passed {
        "passed"
    } else if r.interrupted {
        "was stopped"
    } else {
        "FAILED"
    };
    ui.say(
        to,
        format!(
            "{} on a copy of backup {} ({}): {verdict} in {}",
            ui.bold("Rehearsal"),
            r.backup,
            r.backup_reason,
            ui::duration_ms(r.duration_ms)
        ),
    );
    if r.interrupted {
        return;
    }
    let count = |m: Option<&crate::migrations::MigrationState>| m.map_or(0, |m| m.applied_count);
    ui.say(
        to,
        format!(
            "  {} {} → {}{}",
            ui.bold("Migrations:"),
            count(r.migrations_before.as_ref()),
            count(r.migrations_after.as_ref()),
            if r.applied.is_empty() {
                String::new()
            } else {
                format!(" (applied {})", r.applied.join(", "))
            }
        ),
    );
    match (&r.schema_changes, &r.schema_unread) {
        (Some(changes), _) if changes.is_empty() => {
            ui.say(to, format!("  {} unchanged", ui.bold("Schema:    ")));
        }
        (Some(changes), _) => {
            ui.say(to, format!("  {}", ui.bold("Schema:")));
            for c in changes {
                ui.say(to, format!("    {}", ui::schema::change_line(c)));
            }
        }
        (None, why) => ui.say(
            to,
            format!(
                "  {} not read ({})",
                ui.bold("Schema:    "),
                why.as_deref().unwrap_or("unknown")
            ),
        ),
    }
    if r.rows.is_empty() {
        ui.say(
            to,
            format!("  {} no table's row count changed", ui.bold("Rows:      ")),
        );
    } else {
        ui.say(to, format!("  {}", ui.bold("Rows:")));
        for row in &r.rows {
            ui.say(to, format!("    {}", rows(row)));
        }
    }
    if let Some(f) = &r.failed_at {
        let line = f.line.map(|n| format!(" line {n}")).unwrap_or_default();
        let at = format!(
            "{} ({}{line}){}",
            f.migration,
            f.file,
            f.statement
                .as_deref()
                .map(|s| format!(": {s}"))
                .unwrap_or_default()
        );
        ui.say(
            to,
            format!("  {} {}", ui.bold("Failed at: "), ui::printable(&at)),
        );
    }
}

/// `users 2 → 3`, `audit (new) → 0`, `old 5 → (dropped)`.
fn rows(r: &RowChange) -> String {
    let n = |v: Option<u64>, none: &str| v.map_or_else(|| none.to_string(), |v| v.to_string());
    format!(
        "{} {} → {}{}",
        ui::printable(&r.table),
        n(r.before, "(new)"),
        n(r.after, "(dropped)"),
        if r.estimated { " (estimated)" } else { "" }
    )
}
