//! Acceptance 4: retention with a fixed clock; the newest valid backup and forever backups stay.

use crate::harness::Project;

fn project() -> Project {
    Project::new()
        .seeded("db/dev.sqlite3")
        .seeded("db/prod.sqlite3")
}

#[test]
fn expired_backups_go_and_the_newest_valid_one_stays() {
    let mut p = project();
    p.at("2025-01-01T00:00:00Z");
    let old = p.backup(&["dev", "--retention", "7d"]);
    let forever = p.backup(&["dev", "--retention", "forever", "--label", "keep"]);
    p.at("2025-01-05T00:00:00Z");
    let mid = p.backup(&["dev", "--retention", "7d"]);
    p.at("2025-01-20T00:00:00Z");
    let newest = p.backup(&["dev", "--retention", "1d"]);
    let prod = p.backup(&["production", "--retention", "1d", "--yes"]);

    // On Feb 1st every timed backup has expired: old, mid, newest (dev) and prod.
    p.at("2025-02-01T00:00:00Z");
    let before_files = p.backup_files();
    let doc = p.json(&["cleanup", "--expired", "--dry-run"], 0);
    let planned: Vec<&str> = doc["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let mut planned_sorted = planned.clone();
    planned_sorted.sort();
    let mut expected = vec![old.as_str(), mid.as_str()];
    expected.sort();
    assert_eq!(planned_sorted, expected);
    assert_eq!(p.backup_files(), before_files, "--dry-run removes nothing");
    assert_eq!(p.ids().len(), 5);

    let doc = p.json(&["cleanup", "--expired", "--yes"], 0);
    assert!(doc["freed_bytes"].as_u64().unwrap() > 0);
    let mut left = vec![forever.clone(), newest.clone(), prod.clone()];
    left.sort();
    assert_eq!(
        p.ids(),
        left,
        "the newest valid backup of each environment and the forever one remain"
    );
    for gone in [&old, &mid] {
        let prefix = format!("dev/{gone}.");
        assert!(
            !p.backup_files().iter().any(|f| f.starts_with(&prefix)),
            "{gone} files removed"
        );
    }
    let history =
        std::fs::read_to_string(p.path(".fractary/plugins/faber-db/backups/history.jsonl"))
            .unwrap();
    assert_eq!(
        history
            .lines()
            .filter(|l| l.contains("\"event\":\"cleanup\""))
            .count(),
        2
    );
}

#[test]
fn the_newest_valid_floor_skips_corrupt_backups() {
    let mut p = project();
    p.at("2025-01-01T00:00:00Z");
    let valid = p.backup(&["dev", "--retention", "1d"]);
    p.at("2025-01-02T00:00:00Z");
    let corrupt = p.backup(&["dev", "--retention", "1d"]);
    std::fs::write(p.data_file(&corrupt), b"garbage").unwrap();
    p.run(&["verify", &corrupt]).code(5);
    p.at("2025-03-01T00:00:00Z");
    p.run(&["cleanup", "dev", "--expired"]).code(0);
    assert_eq!(
        p.ids(),
        vec![valid],
        "the corrupt one goes, the older valid one stays"
    );
}

#[test]
fn keep_last_and_older_than() {
    let mut p = project();
    for day in 1..=5 {
        p.at(&format!("2025-01-0{day}T00:00:00Z"));
        p.backup(&["dev"]);
    }
    p.at("2025-01-06T00:00:00Z");
    p.run(&["cleanup", "dev", "--keep-last", "3"])
        .code(0)
        .stdout_has("2 backups removed");
    assert_eq!(
        p.ids(),
        vec![
            "backup-20250103-000000",
            "backup-20250104-000000",
            "backup-20250105-000000"
        ]
    );
    p.run(&["cleanup", "--older-than", "2d12h"]).code(0);
    assert_eq!(
        p.ids(),
        vec!["backup-20250104-000000", "backup-20250105-000000"]
    );
    // Even --keep-last 0 keeps the newest valid backup.
    p.run(&["cleanup", "dev", "--keep-last", "0"]).code(0);
    assert_eq!(p.ids(), vec!["backup-20250105-000000"]);
}

#[test]
fn cleanup_needs_exactly_one_rule() {
    let p = project();
    p.run(&["cleanup"]).code(1);
    p.run(&["cleanup", "--expired", "--keep-last", "2"]).code(1);
    p.run(&["cleanup", "--older-than", "soon"])
        .code(1)
        .stderr_has("invalid duration");
}

#[test]
fn cleanup_of_a_protected_environment_needs_confirmation() {
    let mut p = project();
    p.at("2025-01-01T00:00:00Z");
    p.backup(&["production", "--yes", "--retention", "1d"]);
    p.at("2025-01-02T00:00:00Z");
    p.backup(&["production", "--yes", "--retention", "1d"]);
    p.at("2025-02-01T00:00:00Z");
    let files = p.backup_files();
    p.run(&["cleanup", "--expired"]).code(8).stderr_has("--yes");
    assert_eq!(p.backup_files(), files);
    p.run(&["cleanup", "--expired", "--yes"]).code(0);
    assert_eq!(p.backups().len(), 1);
}

#[test]
fn cleanup_keeps_what_restore_latest_would_pick() {
    let mut p = project();
    p.at("2025-01-01T00:00:00Z");
    let real = p.backup(&["dev"]);
    p.at("2025-01-02T00:00:00Z");
    p.run(&["restore", "dev", "--yes"]).code(0);
    // The newest valid backup is now the pre-restore safety backup; the real one stays too.
    p.run(&["cleanup", "dev", "--keep-last", "1"]).code(0);
    assert!(p.ids().contains(&real), "{:?}", p.ids());
    p.run(&["restore", "dev", "--yes", "--dry-run"])
        .code(0)
        .stdout_has(&real);
}
