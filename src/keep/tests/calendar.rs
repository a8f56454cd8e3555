//! The calendar slots (daily, weekly, monthly), `--keep-last`, environments apart, and the
//! reasons `--expired` and `--older-than` give.

use super::*;

#[test]
fn a_year_of_daily_backups_keeps_7_daily_4_weekly_12_monthly() {
    let reg = year();
    assert_eq!(reg.backups.len(), 369);
    let plan = keep(&reg, GFS);
    assert_eq!(
        shown(&plan),
        with_month_ends(vec![
            "20251231-140000 (daily 2025-12-31, weekly 2026-W01, monthly 2025-12, newest valid, restore latest)",
            "20251230-020000 (daily 2025-12-30)",
            "20251229-020000 (daily 2025-12-29)",
            "20251228-235959 (daily 2025-12-28, weekly 2025-W52)",
            "20251227-020000 (daily 2025-12-27)",
            "20251226-020000 (daily 2025-12-26)",
            "20251225-020000 (daily 2025-12-25)",
            "20251221-020000 (weekly 2025-W51)",
            "20251214-020000 (weekly 2025-W50)",
        ])
    );
    assert_eq!(plan.kept.len(), 20);
    assert_eq!(plan.removed.len(), 349);
    // The earlier backups of a kept day go: a slot keeps one backup.
    let removed: BTreeSet<&str> = plan.removed.iter().map(|r| r.id.as_str()).collect();
    for id in [
        "backup-20251231-020000",
        "backup-20251228-020000",
        "backup-20251130-020000",
        "backup-20250615-120000",
    ] {
        assert!(removed.contains(id), "{id}");
    }
    assert_eq!(plan.freed_bytes(), 349 * 10);
}

#[test]
fn each_kind_alone() {
    let reg = year();
    let daily = keep(
        &reg,
        Policy {
            daily: 3,
            ..Policy::default()
        },
    );
    assert_eq!(
        shown(&daily),
        [
            "backup-20251231-140000 (daily 2025-12-31, newest valid, restore latest)",
            "backup-20251230-020000 (daily 2025-12-30)",
            "backup-20251229-020000 (daily 2025-12-29)",
        ]
    );
    let weekly = keep(
        &reg,
        Policy {
            weekly: 53,
            ..Policy::default()
        },
    );
    // 2025 touches ISO weeks 2025-W01 (from Wednesday 1 January) to 2026-W01.
    assert_eq!(weekly.kept.len(), 53);
    assert_eq!(
        weekly.kept.last().unwrap().reasons,
        [Reason::Weekly(2025, 1)]
    );
    assert_eq!(weekly.kept.last().unwrap().id, "backup-20250105-020000");
    let monthly = keep(
        &reg,
        Policy {
            monthly: 100,
            ..Policy::default()
        },
    );
    // More slots than months: one per month that has a backup, no more.
    assert_eq!(monthly.kept.len(), 12);
}

#[test]
fn keep_last_adds_to_the_calendar_slots() {
    let reg = year();
    let plan = keep(&reg, Policy { last: 3, ..GFS });
    assert_eq!(
        shown(&plan)[..4],
        [
            "backup-20251231-140000 (last 1, daily 2025-12-31, weekly 2026-W01, monthly 2025-12, newest valid, restore latest)",
            "backup-20251231-020000 (last 2)",
            "backup-20251230-020000 (last 3, daily 2025-12-30)",
            "backup-20251229-020000 (daily 2025-12-29)",
        ]
    );
    assert_eq!(
        plan.kept.len(),
        21,
        "only the second backup of the 31st is new"
    );

    // `--keep-last` alone is what it always was: the newest N.
    let last = keep(
        &reg,
        Policy {
            last: 3,
            ..Policy::default()
        },
    );
    assert_eq!(last.kept.len(), 3);
    assert_eq!(last.removed.len(), 366);
}

#[test]
fn environments_are_counted_apart() {
    let mut reg = year();
    for when in [
        "2025-12-30T08:00:00Z",
        "2025-12-30T09:00:00Z",
        "2025-10-01T08:00:00Z",
    ] {
        reg.backups.push(record("production", at(when)));
    }
    let policy = Rule::Keep(Policy {
        daily: 1,
        ..Policy::default()
    });
    let all = select(&reg, None, policy, at(NOW));
    let prod: Vec<String> = shown(&all)
        .into_iter()
        .filter(|s| s.contains("-20251230-") || s.contains("-20251001-"))
        .collect();
    assert_eq!(
        prod,
        ["backup-20251230-090000 (daily 2025-12-30, newest valid, restore latest)"]
    );
    assert_eq!(all.kept.len(), 2);
    assert_eq!(all.removed.len(), 368 + 2);
    // Asked for one environment, the other is neither kept nor removed.
    let only = select(&reg, Some("production"), policy, at(NOW));
    assert_eq!(only.kept.len() + only.removed.len(), 3);
    assert!(only.kept.iter().all(|k| k.environment == "production"));
}

#[test]
fn expired_and_older_than_say_why_they_keep() {
    let mut reg = year();
    set(&mut reg, "backup-20250301-020000", |b| {
        b.retention_days = None;
        b.expires_at = None;
    });
    let expired = select(&reg, None, Rule::Expired, at(NOW));
    // Expiring after 30 days: 2 December 02:00 onwards has not expired on 1 January.
    assert_eq!(expired.kept.len(), 30 + 2 + 1);
    assert_eq!(
        expired.kept[0].reasons,
        [
            Reason::NotExpired,
            Reason::NewestValid,
            Reason::RestoreLatest
        ]
    );
    assert_eq!(expired.kept.last().unwrap().reasons, [Reason::Forever]);

    let older = select(&reg, None, Rule::OlderThan(Duration::days(2)), at(NOW));
    assert_eq!(
        shown(&older),
        [
            "backup-20251231-140000 (newer than cutoff, newest valid, restore latest)",
            "backup-20251231-020000 (newer than cutoff)",
            "backup-20251230-020000 (newer than cutoff)",
            "backup-20250301-020000 (forever)",
        ]
    );
}
