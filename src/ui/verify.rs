//! How `verify` shows its verdict on one backup.

use crate::ops::verify::{Checked, Depth};
use crate::registry::BackupRecord;
use crate::ui::Ui;

/// Prints the verdict on one backup.
pub fn verdict(ui: &Ui, record: &BackupRecord, depth: Depth, checked: &Checked) {
    match &checked.problem {
        None if checked.removed => ui.line(format!(
            "{} {}: removed by another run meanwhile; not checked",
            record.environment, record.id
        )),
        None if depth == Depth::Checksum => ui.ok(format!(
            "{} {}: checksum ok (structure not checked)",
            record.environment, record.id
        )),
        None => ui.ok(format!(
            "{} {}: checksum ok, integrity {}{}",
            record.environment,
            record.id,
            checked.verification.integrity_check,
            if depth == Depth::Deep {
                ", row counts match"
            } else {
                ""
            }
        )),
        Some(p) => {
            let verdict = if checked.verified {
                checked.status.as_str()
            } else {
                "not verified"
            };
            ui.fail(format!(
                "{} {}: {verdict} — {p}",
                record.environment, record.id
            ));
        }
    }
}

/// One environment's restore drill, in a line.
pub fn drill(ui: &Ui, drilled: &crate::ops::verify::Drilled) {
    let took = crate::human::duration_ms(drilled.drill.duration_ms);
    match (&drilled.backup, drilled.drill.ok) {
        (Some(b), true) => ui.ok(format!(
            "Drill of `{}`: {} restored into a scratch database and its row counts match ({took})",
            drilled.environment, b.id
        )),
        (Some(b), false) => ui.fail(format!(
            "Drill of `{}` failed: {} — {}",
            drilled.environment,
            b.id,
            drilled.drill.problem.as_deref().unwrap_or("failed")
        )),
        (None, _) => ui.fail(format!(
            "Drill of `{}` failed: {}",
            drilled.environment,
            drilled
                .drill
                .problem
                .as_deref()
                .unwrap_or("no backup to restore")
        )),
    }
}
