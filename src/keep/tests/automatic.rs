//! Automatic safety backups: counted apart from the ones asked for, kept by their own rule, and
//! the one a plain `rollback` picks.

use super::*;

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
    let soon = select(
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
    let later = select(
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
        select(
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
    let slots = select(
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
    let kept = select(
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
    let expired = select(&reg, Some("dev"), Rule::Expired, at("2030-01-01T00:00:00Z"));
    assert!(
        shown(&expired).contains(&"backup-20251230-110000 (rollback latest)".to_string()),
        "{:?}",
        shown(&expired)
    );
}
