//! After a restore: the database as it now is, compared with the backup's manifest.

use super::Restored;
use crate::human;
use crate::ops::verify;
use crate::provider::Inspection;
use crate::provider::method::MethodChoice;
use crate::registry::{BackupRecord, Status};
use crate::session::Session;

/// The restored database compared with the backup's manifest, and said.
pub(super) fn compared(
    session: &Session,
    record: &BackupRecord,
    inspection: Inspection,
    safety: Option<String>,
    method: MethodChoice,
) -> Restored {
    let events = session.events();
    let diffs = verify::compare_tables(record.provider, &record.tables, &inspection.tables);
    let mismatch_known = record.status == Status::Mismatch;
    let rows: u64 = inspection.tables.values().map(|t| t.rows).sum();
    let estimated = inspection
        .tables
        .iter()
        .filter(|(name, t)| t.estimated || record.tables.get(*name).is_some_and(|e| e.estimated))
        .count();
    if diffs.is_empty() {
        let unchecked = unchecked(estimated, excluded_data(record));
        events.ok(&format!(
            "Restored {}, {}; row counts match the manifest{unchecked}",
            human::count(inspection.tables.len() as u64, "table"),
            human::count(rows, "row")
        ));
    } else if mismatch_known {
        // Not a failure: this is the data the deep check loaded, and it was asked for by name.
        events.warn(&format!(
            "restored {} tables, {rows} rows; as the deep check found, row counts differ from the manifest: {}",
            inspection.tables.len(),
            diffs.join(", ")
        ));
    }
    if let Some(m) = &inspection.migrations {
        events.line(&format!(
            "Migrations: {} applied, last {}",
            m.applied_count,
            m.last_migration.as_deref().unwrap_or("-")
        ));
    }
    Restored {
        safety,
        inspection,
        diffs,
        mismatch_known,
        method,
        kept: Vec::new(),
    }
}

/// The tables of `record` whose data the backup left out (`exclude_table_data`).
pub(super) fn excluded_data(record: &BackupRecord) -> Vec<&str> {
    record
        .tables
        .iter()
        .filter(|(_, t)| t.data_excluded)
        .map(|(name, _)| name.as_str())
        .collect()
}

/// What a restore's row-count check left out, said after it: ` (…)`, or nothing.
fn unchecked(estimated: usize, excluded: Vec<&str>) -> String {
    let mut left_out = Vec::new();
    if estimated > 0 {
        left_out.push(format!("{estimated} large tables have estimated counts"));
    }
    if !excluded.is_empty() {
        left_out.push(format!("no rows of {} in the backup", excluded.join(", ")));
    }
    if left_out.is_empty() {
        String::new()
    } else {
        format!(" ({}, not compared)", left_out.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::unchecked;

    #[test]
    fn what_the_count_check_left_out_is_said() {
        assert_eq!(unchecked(0, Vec::new()), "");
        assert_eq!(
            unchecked(2, Vec::new()),
            " (2 large tables have estimated counts, not compared)"
        );
        assert_eq!(
            unchecked(1, vec!["audit_log", "sessions"]),
            " (1 large tables have estimated counts; no rows of audit_log, sessions in the backup, not compared)"
        );
    }
}
