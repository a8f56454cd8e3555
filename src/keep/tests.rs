//! Grandfather-father-son selection over a synthetic year of daily backups (issue 8, test 4),
//! its combination with `--keep-last`, corrupt backups and the floor.

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

fn keep(reg: &RegistryFile, policy: Policy) -> Plan {
    plan(reg, Some("dev"), Rule::Keep(policy), at(NOW))
}

/// The kept backups as `ID (reason, reason)`, newest first.
fn shown(plan: &Plan) -> Vec<String> {
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
fn corrupt_and_missing_backups_fill_no_slot() {
    let mut reg = year();
    set(&mut reg, "backup-20251231-140000", |b| {
        b.status = Status::Corrupt
    });
    set(&mut reg, "backup-20251230-020000", |b| {
        b.status = Status::Missing
    });
    set(&mut reg, "backup-20251130-235959", |b| {
        b.status = Status::Corrupt
    });
    set(&mut reg, "backup-20251130-020000", |b| {
        b.status = Status::Corrupt
    });
    let plan = keep(&reg, GFS);
    let mut expected = with_month_ends(vec![
        // The valid backup of the 31st takes the slots the corrupt newer one would have.
        "20251231-020000 (daily 2025-12-31, weekly 2026-W01, monthly 2025-12, newest valid, restore latest)",
        // The 30th has no valid backup: it takes no daily slot, so the seventh is the 24th.
        "20251229-020000 (daily 2025-12-29)",
        "20251228-235959 (daily 2025-12-28, weekly 2025-W52)",
        "20251227-020000 (daily 2025-12-27)",
        "20251226-020000 (daily 2025-12-26)",
        "20251225-020000 (daily 2025-12-25)",
        "20251224-020000 (daily 2025-12-24)",
        "20251221-020000 (weekly 2025-W51)",
        "20251214-020000 (weekly 2025-W50)",
    ]);
    // November's last day holds only corrupt backups: the 29th stands for the month.
    expected[9] = "backup-20251129-020000 (monthly 2025-11)".into();
    assert_eq!(shown(&plan), expected);
    let removed: BTreeSet<&str> = plan.removed.iter().map(|r| r.id.as_str()).collect();
    for id in [
        "backup-20251231-140000",
        "backup-20251230-020000",
        "backup-20251130-235959",
        "backup-20251130-020000",
    ] {
        assert!(removed.contains(id), "{id} goes");
    }

    // `--keep-last` counts every backup, as it always did, whatever its status.
    let last = keep(
        &reg,
        Policy {
            last: 1,
            ..Policy::default()
        },
    );
    assert_eq!(
        shown(&last),
        [
            "backup-20251231-140000 (last 1)",
            "backup-20251231-020000 (newest valid, restore latest)",
        ]
    );
}

#[test]
fn the_floor_and_forever_stay_whatever_the_policy() {
    let mut reg = year();
    set(&mut reg, "backup-20250301-020000", |b| {
        b.retention_days = None;
        b.expires_at = None;
    });
    // The newest backup is the safety backup a restore took: `restore --from latest` skips it.
    let mut safety = record("dev", at("2025-12-31T20:00:00Z"));
    safety.reason = Some("pre-restore".into());
    reg.backups.push(safety);

    // `--keep-automatic 0`: the safety backup is kept by the floor alone.
    let none = keep(
        &reg,
        Policy {
            automatic: Automatic::Last(0),
            ..Policy::default()
        },
    );
    assert_eq!(
        shown(&none),
        [
            "backup-20251231-200000 (newest valid)",
            "backup-20251231-140000 (restore latest)",
            "backup-20250301-020000 (forever)",
        ]
    );
    // A safety backup fills no calendar slot: the day's slot goes to the newest backup of the
    // day someone asked for.
    let daily = keep(
        &reg,
        Policy {
            daily: 1,
            ..Policy::default()
        },
    );
    assert_eq!(
        shown(&daily),
        [
            "backup-20251231-200000 (automatic within 7 days, newest valid)",
            "backup-20251231-140000 (daily 2025-12-31, restore latest)",
            "backup-20250301-020000 (forever)",
        ]
    );
    // A forever backup that is its month's newest also fills the slot.
    let monthly = keep(
        &reg,
        Policy {
            monthly: 12,
            ..Policy::default()
        },
    );
    assert!(
        shown(&monthly).contains(&"backup-20250331-020000 (monthly 2025-03)".to_string()),
        "{:?}",
        shown(&monthly)
    );
}

/// A backup whose row counts differ from its manifest (issue 16.9) stays whatever the rule, says
/// so, and takes no calendar slot nor the floor's places: those go to backups that can be trusted.
#[test]
fn mismatch_backups_stay_whatever_the_rule_and_fill_no_slot() {
    let mut reg = year();
    for id in ["backup-20251231-140000", "backup-20250615-120000"] {
        set(&mut reg, id, |b| b.status = Status::Mismatch);
    }
    let none = keep(&reg, Policy::default());
    assert_eq!(
        shown(&none),
        [
            "backup-20251231-140000 (mismatch)",
            "backup-20251231-020000 (newest valid, restore latest)",
            "backup-20250615-120000 (mismatch)",
        ]
    );
    let daily = keep(
        &reg,
        Policy {
            last: 1,
            daily: 1,
            ..Policy::default()
        },
    );
    assert_eq!(
        shown(&daily)[..2],
        [
            "backup-20251231-140000 (last 1, mismatch)",
            "backup-20251231-020000 (daily 2025-12-31, newest valid, restore latest)",
        ]
    );
    for rule in [Rule::Expired, Rule::OlderThan(Duration::days(1))] {
        let p = plan(&reg, Some("dev"), rule, at(NOW));
        for id in ["backup-20251231-140000", "backup-20250615-120000"] {
            let kept = p.kept.iter().find(|k| k.id == id).expect(id);
            assert_eq!(kept.status, Status::Mismatch);
            assert_eq!(kept.reasons.last(), Some(&Reason::Mismatch), "{rule:?}");
        }
        assert!(p.removed.iter().all(|r| r.status != Status::Mismatch));
    }
    // Never what `latest` or the floor picks, however new.
    assert_eq!(
        reg.newest_restorable("dev").map(|b| b.id.as_str()),
        Some("backup-20251231-020000")
    );
    assert_eq!(
        reg.newest_valid("dev").map(|b| b.id.as_str()),
        Some("backup-20251231-020000")
    );
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
    let all = plan(&reg, None, policy, at(NOW));
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
    let only = plan(&reg, Some("production"), policy, at(NOW));
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
    let expired = plan(&reg, None, Rule::Expired, at(NOW));
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

    let older = plan(&reg, None, Rule::OlderThan(Duration::days(2)), at(NOW));
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

proptest::proptest! {
    /// Over random registries and policies: every backup is either kept or removed, the floor and
    /// forever backups are kept, slots go only to valid backups, each to the newest valid one of
    /// its period, no more slots than asked, and asking for more never removes more.
    #[test]
    fn plans_keep_their_promises(
        entries in proptest::collection::vec((0..2usize, 0..400 * 24i64, 0..5u8, proptest::bool::weighted(0.05), proptest::bool::weighted(0.3)), 0..80),
        counts in proptest::array::uniform4(0..6usize),
        more in 0..4usize,
    ) {
        let start = at("2025-01-01T00:00:00Z");
        let mut reg = RegistryFile::default();
        for (i, (env, hours, status, forever, automatic)) in entries.into_iter().enumerate() {
            let mut b = record(["dev", "prod"][env], start + Duration::hours(hours));
            b.id = format!("{}-{i}", b.id);
            b.status = [Status::Valid, Status::Valid, Status::Corrupt, Status::Missing, Status::Mismatch][status as usize];
            if automatic {
                b.reason = Some("pre-migration".into());
                b.label = Some("pre-migration".into());
            }
            if forever {
                b.retention_days = None;
                b.expires_at = None;
            }
            reg.backups.push(b);
        }
        let [last, daily, weekly, monthly] = counts;
        let policy = Policy { last, daily, weekly, monthly, ..Policy::default() };
        let now = at("2026-03-01T00:00:00Z");
        let p = plan(&reg, None, Rule::Keep(policy), now);

        let kept: BTreeSet<&str> = p.kept.iter().map(|k| k.id.as_str()).collect();
        let removed: BTreeSet<&str> = p.removed.iter().map(|r| r.id.as_str()).collect();
        proptest::prop_assert_eq!(kept.len() + removed.len(), reg.backups.len());
        proptest::prop_assert!(kept.is_disjoint(&removed));
        for env in ["dev", "prod"] {
            for b in [reg.newest_valid(env), reg.newest_restorable(env)].into_iter().flatten() {
                proptest::prop_assert!(kept.contains(b.id.as_str()));
            }
        }
        for b in reg.backups.iter().filter(|b| b.is_forever() || b.status == Status::Mismatch) {
            proptest::prop_assert!(kept.contains(b.id.as_str()));
        }
        for k in &p.kept {
            let mut slots = [0usize; 3];
            for r in &k.reasons {
                let (kind, i) = match r {
                    Reason::Daily(_) => (Calendar::Daily, 0),
                    Reason::Weekly(..) => (Calendar::Weekly, 1),
                    Reason::Monthly(..) => (Calendar::Monthly, 2),
                    _ => continue,
                };
                slots[i] += 1;
                proptest::prop_assert_eq!(k.status, Status::Valid);
                let b = reg.backups.iter().find(|b| b.id == k.id).unwrap();
                proptest::prop_assert!(!b.is_automatic(), "automatic {} fills {}", k.id, r);
                proptest::prop_assert_eq!(kind.slot(k.timestamp), *r);
                // No newer valid backup of the environment falls in the same period.
                let newer = reg.backups.iter().any(|b| {
                    b.environment == k.environment
                        && b.status == Status::Valid
                        && !b.is_automatic()
                        && (b.timestamp, &b.id) > (k.timestamp, &k.id)
                        && kind.slot(b.timestamp) == *r
                });
                proptest::prop_assert!(!newer, "{} is not the newest of {}", k.id, r);
            }
            proptest::prop_assert!(slots.iter().all(|&n| n <= 1));
        }
        for env in ["dev", "prod"] {
            for (kind, count) in Calendar::ALL.into_iter().zip([daily, weekly, monthly]) {
                let in_env = p.kept.iter().filter(|k| k.environment == env);
                let filled = in_env
                    .flat_map(|k| &k.reasons)
                    .filter(|r| matches!((kind, r), (Calendar::Daily, Reason::Daily(_)) | (Calendar::Weekly, Reason::Weekly(..)) | (Calendar::Monthly, Reason::Monthly(..))))
                    .count();
                let periods: BTreeSet<String> = reg.backups.iter()
                    .filter(|b| b.environment == env && b.status == Status::Valid && !b.is_automatic())
                    .map(|b| kind.slot(b.timestamp).to_string())
                    .collect();
                proptest::prop_assert_eq!(filled, count.min(periods.len()));
            }
        }
        // The newest `last` backups someone asked for stay, however many automatic ones are newer.
        for env in ["dev", "prod"] {
            for b in reg.newest_first(Some(env)).into_iter().filter(|b| !b.is_automatic()).take(last) {
                proptest::prop_assert!(kept.contains(b.id.as_str()), "{} is among the last {}", b.id, last);
            }
        }
        // Asking for more of any kind keeps a superset.
        let bigger = Policy { last: last + more, daily: daily + more, weekly: weekly + more, monthly: monthly + more, ..Policy::default() };
        let q = plan(&reg, None, Rule::Keep(bigger), now);
        let kept_more: BTreeSet<&str> = q.kept.iter().map(|k| k.id.as_str()).collect();
        proptest::prop_assert!(kept.is_subset(&kept_more));
    }
}

/// A backup of `dev` at `when` with `label` and `reason`.
fn tagged(when: &str, label: Option<&str>, reason: Option<&str>) -> BackupRecord {
    let mut b = record("dev", at(when));
    b.label = label.map(str::to_string);
    b.reason = reason.map(str::to_string);
    b
}

/// A release: an older labelled backup, the labelled release backup, then the three kinds of
/// automatic safety backup faber-db takes itself (label and reason alike, as
/// `Request::automatic` and the hook write them), and a person's own `pre-migration` backup
/// with a label of its own.
fn release() -> RegistryFile {
    RegistryFile {
        version: 1,
        backups: vec![
            tagged("2025-12-01T10:00:00Z", Some("v1"), None),
            tagged("2025-12-20T10:00:00Z", None, Some("before the v2 release")),
            tagged("2025-12-30T10:00:00Z", Some("release-v2"), Some("release")),
            tagged(
                "2025-12-30T11:00:00Z",
                Some("pre-migration"),
                Some("pre-migration"),
            ),
            tagged(
                "2025-12-30T12:00:00Z",
                Some("pre-rollback"),
                Some("pre-rollback"),
            ),
            tagged(
                "2025-12-30T13:00:00Z",
                Some("pre-restore"),
                Some("pre-restore"),
            ),
            tagged(
                "2025-12-15T10:00:00Z",
                Some("v3-dryrun"),
                Some("pre-migration"),
            ),
        ],
    }
}

#[test]
fn keep_last_counts_the_backups_asked_for_apart_from_automatic_ones() {
    let reg = release();
    let automatic: Vec<bool> = reg.backups.iter().map(BackupRecord::is_automatic).collect();
    assert_eq!(
        automatic,
        [false, false, false, true, true, true, false],
        "a label of its own makes a pre-migration backup a person's"
    );
    // Two days after the release: the automatic ones are within the default seven days.
    let soon = plan(
        &reg,
        Some("dev"),
        Rule::Keep(Policy {
            last: 1,
            ..Policy::default()
        }),
        at("2026-01-01T00:00:00Z"),
    );
    assert_eq!(
        shown(&soon),
        [
            "backup-20251230-130000 (automatic within 7 days, newest valid)",
            "backup-20251230-120000 (automatic within 7 days)",
            "backup-20251230-110000 (automatic within 7 days, restore latest, rollback latest)",
            "backup-20251230-100000 (last 1)",
        ]
    );
    // A month later the automatic ones go, but for the floor; the release backup stays.
    let later = plan(
        &reg,
        Some("dev"),
        Rule::Keep(Policy {
            last: 2,
            ..Policy::default()
        }),
        at("2026-02-01T00:00:00Z"),
    );
    assert_eq!(
        shown(&later),
        [
            "backup-20251230-130000 (newest valid)",
            "backup-20251230-110000 (restore latest, rollback latest)",
            "backup-20251230-100000 (last 1)",
            "backup-20251220-100000 (last 2)",
        ]
    );
}

#[test]
fn keep_automatic_keeps_the_newest_n_automatic_backups_whatever_their_age() {
    let reg = release();
    let keep = |automatic| {
        plan(
            &reg,
            Some("dev"),
            Rule::Keep(Policy {
                last: 1,
                automatic,
                ..Policy::default()
            }),
            at("2026-03-01T00:00:00Z"),
        )
    };
    assert_eq!(
        shown(&keep(Automatic::Last(2))),
        [
            "backup-20251230-130000 (automatic 1, newest valid)",
            "backup-20251230-120000 (automatic 2)",
            "backup-20251230-110000 (restore latest, rollback latest)",
            "backup-20251230-100000 (last 1)",
        ]
    );
    // None of them, and the floor still holds.
    assert_eq!(
        shown(&keep(Automatic::Last(0))),
        [
            "backup-20251230-130000 (newest valid)",
            "backup-20251230-110000 (restore latest, rollback latest)",
            "backup-20251230-100000 (last 1)",
        ]
    );
}

#[test]
fn automatic_backups_fill_no_calendar_slot() {
    // The release day's newest backup is the pre-restore one: the daily slot goes to the
    // release backup, the newest backup of that day anyone asked for.
    let reg = release();
    let slots = plan(
        &reg,
        Some("dev"),
        Rule::Keep(Policy {
            daily: 1,
            automatic: Automatic::Last(0),
            ..Policy::default()
        }),
        at("2026-03-01T00:00:00Z"),
    );
    assert_eq!(
        shown(&slots),
        [
            "backup-20251230-130000 (newest valid)",
            "backup-20251230-110000 (restore latest, rollback latest)",
            "backup-20251230-100000 (daily 2025-12-30)",
        ]
    );
}

#[test]
fn the_backup_a_plain_rollback_picks_stays_whatever_its_age() {
    // A release's pre-migration backup, then backups a person took after it: it is neither the
    // newest nor the one `restore --from latest` picks, but `rollback` would restore it.
    let mut reg = release();
    reg.backups
        .push(tagged("2026-01-10T10:00:00Z", Some("v2.1"), None));
    reg.backups
        .push(tagged("2026-01-20T10:00:00Z", Some("v2.2"), None));
    let kept = plan(
        &reg,
        Some("dev"),
        Rule::Keep(Policy {
            last: 1,
            automatic: Automatic::Last(0),
            ..Policy::default()
        }),
        at("2026-06-01T00:00:00Z"),
    );
    assert_eq!(
        shown(&kept),
        [
            "backup-20260120-100000 (last 1, newest valid, restore latest)",
            "backup-20251230-110000 (rollback latest)",
        ]
    );
    // --expired and --older-than keep it too.
    let expired = plan(&reg, Some("dev"), Rule::Expired, at("2030-01-01T00:00:00Z"));
    assert!(
        shown(&expired).contains(&"backup-20251230-110000 (rollback latest)".to_string()),
        "{:?}",
        shown(&expired)
    );
}
