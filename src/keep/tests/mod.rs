//! Grandfather-father-son selection over a synthetic year of daily backups (issue 8, test 4),
//! its combination with `--keep-last`, corrupt backups and the floor.
//!
//! The fixtures are here; the tests by what they check: the calendar slots (`calendar`), the
//! backups that stay whatever the rule (`floor`), automatic safety backups (`automatic`), and
//! the promises over random registries (`properties`).

mod automatic;
mod calendar;
mod floor;
mod properties;

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::*;

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
}

/// A backup of `env` taken at `when`, kept 30 days, valid.
fn record(env: &str, when: DateTime<Utc>) -> BackupRecord {
    let id = format!("backup-{}", when.format("%Y%m%d-%H%M%S"));
    serde_json::from_value(serde_json::json!({
        "id": id, "environment": env, "database": "app", "provider": "sqlite",
        "timestamp": when, "label": null, "reason": null,
        "file": format!("{env}/{id}.sqlite3.zst"), "size_bytes": 10, "raw_size_bytes": 20,
        "format": "sqlite", "compression": "zstd", "compressed": true, "encrypted": false,
        "sha256": "00", "tool_version": "t", "migrations": null, "tables": {},
        "retention_days": 30, "expires_at": when + Duration::days(30), "status": "valid",
        "verification": null, "host": null, "user": null, "git": null, "duration_ms": 5
    }))
    .unwrap()
}

/// One backup of `dev` at 02:00 UTC every day of 2025, and four more: a second one on the last
/// day (14:00), the last second of November, the last second of ISO week 2025-W52 (Sunday
/// 28 December) and an extra in June.
fn year() -> RegistryFile {
    let mut backups = Vec::new();
    let mut day = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
    while day.year() == 2025 {
        backups.push(record("dev", day.and_hms_opt(2, 0, 0).unwrap().and_utc()));
        day = day.succ_opt().unwrap();
    }
    for extra in [
        "2025-12-31T14:00:00Z",
        "2025-11-30T23:59:59Z",
        "2025-12-28T23:59:59Z",
        "2025-06-15T12:00:00Z",
    ] {
        backups.push(record("dev", at(extra)));
    }
    RegistryFile {
        version: 1,
        backups,
    }
}

fn set(reg: &mut RegistryFile, id: &str, change: impl FnOnce(&mut BackupRecord)) {
    change(
        reg.backups
            .iter_mut()
            .find(|b| b.id == id)
            .unwrap_or_else(|| panic!("no backup {id}")),
    );
}

const NOW: &str = "2026-01-01T00:00:00Z";

fn keep(reg: &RegistryFile, policy: Policy) -> Selection {
    select(reg, Some("dev"), Rule::Keep(policy), at(NOW))
}

/// The kept backups as `ID (reason, reason)`, newest first.
fn shown(plan: &Selection) -> Vec<String> {
    plan.kept
        .iter()
        .map(|k| {
            let reasons: Vec<String> = k.reasons.iter().map(ToString::to_string).collect();
            format!("{} ({})", k.id, reasons.join(", "))
        })
        .collect()
}

/// The eleven month ends before December, each kept as its month's newest backup.
fn month_ends() -> Vec<String> {
    [
        "20251130-235959 (monthly 2025-11)",
        "20251031-020000 (monthly 2025-10)",
        "20250930-020000 (monthly 2025-09)",
        "20250831-020000 (monthly 2025-08)",
        "20250731-020000 (monthly 2025-07)",
        "20250630-020000 (monthly 2025-06)",
        "20250531-020000 (monthly 2025-05)",
        "20250430-020000 (monthly 2025-04)",
        "20250331-020000 (monthly 2025-03)",
        "20250228-020000 (monthly 2025-02)",
        "20250131-020000 (monthly 2025-01)",
    ]
    .iter()
    .map(|s| format!("backup-{s}"))
    .collect()
}

fn with_month_ends(mut kept: Vec<&str>) -> Vec<String> {
    let mut out: Vec<String> = kept.drain(..).map(|s| format!("backup-{s}")).collect();
    out.extend(month_ends());
    out
}

const GFS: Policy = Policy {
    last: 0,
    daily: 7,
    weekly: 4,
    monthly: 12,
    automatic: Automatic::DEFAULT,
};
