//! What stays whatever the rule: the floor, forever backups, and the backups whose status
//! keeps them out of the slots (corrupt, missing, mismatch).

use super::*;

#[test]
fn corrupt_and_missing_backups_fill_no_slot() {
    let mut reg = year();
    set(&mut reg, "backup-20251231-140000", |b| {
        b.status = Status::Corrupt;
    });
    set(&mut reg, "backup-20251230-020000", |b| {
        b.status = Status::Missing;
    });
    set(&mut reg, "backup-20251130-235959", |b| {
        b.status = Status::Corrupt;
    });
    set(&mut reg, "backup-20251130-020000", |b| {
        b.status = Status::Corrupt;
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
        let p = select(&reg, Some("dev"), rule, at(NOW));
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
