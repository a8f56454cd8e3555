//! How a restore's or rollback's preview and pre-flight look: `restore`, `rollback` and `migrate`
//! (its automatic restore) print them the same way; and what a rollback would lose.

use crate::human;
use crate::migrations::describe;
use crate::ops::restore::Preview;
use crate::ops::rollback::{Basis, Loss};
use crate::preflight::Preflight;
use crate::provider::method::RestoreMethod;
use crate::ui::{self, To, Ui};

/// Prints the checks, one `✓`/`✗` line each, under `Pre-flight:`.
pub fn preflight(ui: &Ui, preflight: &Preflight) {
    ui.line("Pre-flight:");
    for c in &preflight.checks {
        let line = format!("{:<16} {}", c.name, c.detail);
        if c.ok {
            ui.ok(format!(" {line}"));
        } else {
            ui.fail(format!(" {line}"));
        }
    }
}

/// One `✓` line naming the checks that passed (a run that goes ahead says no more).
pub fn preflight_passed(ui: &Ui, preflight: &Preflight) {
    let names: Vec<&str> = preflight.checks.iter().map(|c| c.name).collect();
    ui.ok(format!("Pre-flight passed: {}", names.join(", ")));
    for c in &preflight.checks {
        if let Some(w) = &c.warning {
            ui.warn(format!("{}: {w}", c.name));
        }
    }
}

/// Prints a restore's or rollback's plan under `Plan: {title}`, where `to` says: with the
/// output (a dry run), or before the confirmation prompt.
pub fn plan(ui: &Ui, title: &str, plan: &Preview, to: To) {
    ui.say(to, format!("Plan: {title}"));
    let mut about = vec![
        ui::size(plan.backup_size_bytes),
        format!(
            "taken {} ({} old)",
            plan.backup_taken_at.format("%Y-%m-%d %H:%M UTC"),
            ui::age(plan.backup_age_secs)
        ),
    ];
    if let Some(label) = &plan.backup_label {
        about.push(format!("label {label}"));
    }
    if let Some(reason) = &plan.backup_reason {
        about.push(format!(
            "reason {reason}{}",
            if plan.backup_automatic {
                " (automatic)"
            } else {
                ""
            }
        ));
    }
    ui.say(
        to,
        format!(
            "  {} {} of `{}`, {} ({})",
            ui.bold("Backup:    "),
            plan.backup,
            plan.backup_environment,
            about.join(", "),
            plan.chosen
        ),
    );
    ui.say(
        to,
        format!(
            "  {} backup: {}; now: {}",
            ui.bold("Migrations:"),
            describe(plan.backup_migrations.as_ref()),
            if plan.database_exists {
                describe(plan.live_migrations.as_ref())
            } else {
                "the database does not exist".to_string()
            }
        ),
    );
    if !plan.undone.is_empty() {
        ui.say(
            to,
            format!("  {} {}", ui.bold("Undoes:    "), plan.undone.join(", ")),
        );
    }
    ui.say(
        to,
        format!(
            "  {} {}",
            ui.bold("Replaces:  "),
            if plan.database_exists {
                format!(
                    "everything in database {} now, with the backup's data",
                    plan.database
                )
            } else {
                format!(
                    "nothing: database {} is created from the backup",
                    plan.database
                )
            }
        ),
    );
    ui.say(
        to,
        format!(
            "  {} {}: {}",
            ui.bold("Method:    "),
            plan.method.map_or("none possible", RestoreMethod::as_str),
            plan.method_why
        ),
    );
    let safety = match &plan.safety_backup {
        Some(s) => format!(
            "a {} backup {}: about {} in about {} ({})",
            s.reason,
            if s.after_swap {
                "of the data the swap sets aside, where no session reaches it"
            } else {
                "first"
            },
            ui::size(s.estimate.size_bytes),
            ui::duration_ms(s.estimate.duration_ms),
            s.estimate.describe()
        ),
        None if !plan.database_exists => "none: there is no database to save".to_string(),
        None => "none (--no-safety-backup)".to_string(),
    };
    ui.say(to, format!("  {} {safety}", ui.bold("Safety:    ")));
    ui.say(
        to,
        format!(
            "  {} about {} to load ({}); about {} in all",
            ui.bold("Estimate:  "),
            ui::duration_ms(plan.load.duration_ms),
            plan.load.describe(),
            ui::duration_ms(plan.duration_ms)
        ),
    );
    ui.say(
        to,
        format!(
            "  {} {}",
            ui.bold("Confirm:   "),
            if plan.confirmation {
                "yes: the environment is protected; its name is asked for".to_string()
            } else {
                "no".to_string()
            }
        ),
    );
}

/// Prints what a rollback would lose (`Err`: why that cannot be told), under the plan, where `to`
/// says.
pub fn loss(ui: &Ui, loss: &Result<Loss, String>, to: To) {
    let loss = match loss {
        Ok(loss) => loss,
        Err(why) => {
            ui.say(to, format!("  {} unknown: {why}", ui.bold("Loses:     ")));
            return;
        }
    };
    let rows = if loss.rows_total == 0 {
        "no row written since the backup".to_string()
    } else {
        format!(
            "{}{} written since the backup",
            if loss.approximate { "at least " } else { "" },
            human::count(loss.rows_total, "row")
        )
    };
    ui.say(
        to,
        format!(
            "  {} {rows}{}",
            ui.bold("Loses:     "),
            if loss.approximate {
                " (some tables are compared by row count; rows changed in place are not counted)"
            } else {
                " (rows changed in place are not counted)"
            }
        ),
    );
    for t in &loss.tables {
        let how = match t.basis {
            Basis::PrimaryKey if t.approximate => "by primary key, against an estimated count",
            Basis::PrimaryKey => "by primary key",
            Basis::RowCount => "approximate: row counts compared, no usable integer key",
            Basis::TableAdded => "the table is new since the backup",
        };
        ui.say(
            to,
            format!(
                "               {}: {} ({how})",
                ui::printable(&t.table),
                t.rows
            ),
        );
    }
    let added = match (&loss.tables_added, &loss.columns_added) {
        (Some(tables), Some(columns)) if tables.is_empty() && columns.is_empty() => {
            "no table or column".to_string()
        }
        (Some(tables), Some(columns)) => tables
            .iter()
            .map(|t| format!("table {}", ui::printable(t)))
            .chain(columns.iter().map(|c| {
                format!(
                    "column {}",
                    ui::printable(&format!("{}.{}", c.table, c.column))
                )
            }))
            .collect::<Vec<_>>()
            .join(", "),
        _ => format!(
            "unknown: {}",
            loss.schema_unknown
                .as_deref()
                .unwrap_or("the schemas cannot be compared")
        ),
    };
    ui.say(to, format!("  {} {added}", ui.bold("Added:     ")));
}
