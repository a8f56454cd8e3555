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
