//! Acceptance 4: retention with a fixed clock; the newest valid backup and forever backups stay.
//! Issue 8: grandfather-father-son keep rules through the binary.

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
    let planned: Vec<&str> = crate::harness::ids_in(&doc, "removed");
    let mut planned_sorted = planned.clone();
    planned_sorted.sort_unstable();
    let mut expected = vec![old.as_str(), mid.as_str()];
    expected.sort_unstable();
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
    // The keep flags are one rule together; --expired and --older-than stand alone.
    p.run(&["cleanup", "--expired", "--keep-daily", "7"])
        .code(1)
        .stderr_has("cannot be used with");
    p.run(&["cleanup", "--older-than", "30d", "--keep-monthly", "12"])
        .code(1)
        .stderr_has("cannot be used with");
    p.run(&["cleanup", "--keep-weekly", "many"])
        .code(1)
        .stderr_has("--keep-weekly");
    let doc = p.json(&["cleanup", "--keep-daily", "-1"], 1);
    assert_eq!(doc["error"]["code"], 1);
}

/// Backups over five weeks and two months; the newest of the 18th is corrupt.
fn five_weeks(p: &mut Project) -> Vec<String> {
    let mut ids = Vec::new();
    for at in [
        "2025-01-15T10:00:00Z",
        "2025-01-31T10:00:00Z",
        "2025-02-10T10:00:00Z",
        "2025-02-16T10:00:00Z",
        "2025-02-17T10:00:00Z",
        "2025-02-18T09:00:00Z",
        "2025-02-18T18:00:00Z",
        "2025-02-19T10:00:00Z",
        "2025-02-19T12:00:00Z",
    ] {
        p.at(at);
        ids.push(p.backup(&["dev"]));
    }
    let corrupt = "backup-20250218-180000";
    std::fs::write(p.data_file(corrupt), b"garbage").unwrap();
    p.run(&["verify", corrupt]).code(5);
    p.at("2025-02-20T00:00:00Z");
    ids
}

const GFS: [&str; 10] = [
    "cleanup",
    "dev",
    "--keep-last",
    "1",
    "--keep-daily",
    "2",
    "--keep-weekly",
    "2",
    "--keep-monthly",
    "2",
];

#[test]
fn keep_daily_weekly_monthly_show_why_and_remove_the_rest() {
    let mut p = project();
    let ids = five_weeks(&mut p);
    let files = p.backup_files();

    let mut dry = GFS.to_vec();
    dry.push("--dry-run");
    let run = p.run(&dry).code(0);
    let expected = "\
keep         dev backup-20250219-120000 (last 1, daily 2025-02-19, weekly 2025-W08, monthly 2025-02, newest valid, restore latest)
would remove dev backup-20250219-100000 (";
    assert!(run.stdout.starts_with(expected), "{}", run.stdout);
    for line in [
        "would remove dev backup-20250218-180000 (",
        "keep         dev backup-20250218-090000 (daily 2025-02-18)\n",
        "would remove dev backup-20250217-100000 (",
        "keep         dev backup-20250216-100000 (weekly 2025-W07)\n",
        "would remove dev backup-20250210-100000 (",
        "keep         dev backup-20250131-100000 (monthly 2025-01)\n",
        "would remove dev backup-20250115-100000 (",
        "Dry run: 5 backups would be removed, ",
        "; 4 kept\n",
    ] {
        assert!(run.stdout.contains(line), "{line:?} in\n{}", run.stdout);
    }
    assert_eq!(run.stdout.lines().count(), 10, "{}", run.stdout);

    let doc = p.json(&dry, 0);
    assert_eq!(doc["dry_run"], true);
    let kept: Vec<(&str, Vec<&str>)> = doc["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let reasons = k["reasons"].as_array().unwrap();
            (
                k["id"].as_str().unwrap(),
                reasons.iter().map(|r| r.as_str().unwrap()).collect(),
            )
        })
        .collect();
    assert_eq!(
        kept,
        [
            (
                "backup-20250219-120000",
                vec![
                    "last 1",
                    "daily 2025-02-19",
                    "weekly 2025-W08",
                    "monthly 2025-02",
                    "newest valid",
                    "restore latest"
                ]
            ),
            ("backup-20250218-090000", vec!["daily 2025-02-18"]),
            ("backup-20250216-100000", vec!["weekly 2025-W07"]),
            ("backup-20250131-100000", vec!["monthly 2025-01"]),
        ]
    );
    let removed: Vec<&str> = crate::harness::ids_in(&doc, "removed");
    assert_eq!(
        removed,
        [
            "backup-20250219-100000",
            "backup-20250218-180000",
            "backup-20250217-100000",
            "backup-20250210-100000",
            "backup-20250115-100000",
        ]
    );
    assert_eq!(doc["removed"][1]["status"], "corrupt");
    let sizes: u64 = doc["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["size_bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(doc["freed_bytes"].as_u64().unwrap(), sizes);
    assert_eq!(p.backup_files(), files, "--dry-run removes nothing");
    assert_eq!(p.ids(), ids);

    // The real run removes what the dry run showed: entries, data files and manifests.
    let doc = p.json(&GFS, 0);
    assert_eq!(doc["dry_run"], false);
    assert_eq!(doc["kept"].as_array().unwrap().len(), 4);
    assert_eq!(doc["removed"].as_array().unwrap().len(), 5);
    let mut left: Vec<String> = kept.iter().map(|(id, _)| id.to_string()).collect();
    left.sort();
    assert_eq!(p.ids(), left);
    for gone in removed {
        let prefix = format!("dev/{gone}.");
        assert!(
            !p.backup_files().iter().any(|f| f.starts_with(&prefix)),
            "{gone} files removed"
        );
    }
    // Run again, nothing more goes: the kept set keeps itself.
    p.run(&GFS).code(0).stdout_has("Nothing to clean up.");
    assert_eq!(p.ids(), left);
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

#[test]
fn cleanup_removes_only_what_the_confirmed_plan_named() {
    let mut p = project();
    p.at("2025-01-01T00:00:00Z");
    let first = p.backup(&["dev"]);
    p.at("2025-01-02T00:00:00Z");
    let second = p.backup(&["dev"]);
    // The plan shown removes `first`. Before it takes the lock, a third backup lands: the rule
    // would now remove `second` too, but that was never shown, so it stays.
    let cleanup = p.paused_at(
        &["--json", "cleanup", "dev", "--keep-last", "1", "--yes"],
        "cleanup:before-lock",
    );
    p.at("2025-01-03T00:00:00Z");
    let third = p.backup(&["dev"]);
    let out = cleanup.resume();
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let removed: Vec<&str> = crate::harness::ids_in(&doc, "removed");
    assert_eq!(removed, vec![first.as_str()]);
    let kept = doc["kept"].as_array().unwrap();
    let reasons_of = |id: &str| {
        kept.iter()
            .find(|k| k["id"] == id)
            .map(|k| k["reasons"].to_string())
            .unwrap_or_default()
    };
    assert!(
        reasons_of(&second).contains("not in the confirmed plan"),
        "{doc}"
    );
    assert!(reasons_of(&third).contains("last 1"), "{doc}");
    assert_eq!(p.ids(), vec![second.clone(), third.clone()]);
    // The next cleanup, shown and confirmed, removes it.
    p.run(&["cleanup", "dev", "--keep-last", "1", "--yes"])
        .code(0);
    assert_eq!(p.ids(), vec![third]);
}

/// Sets the recorded row count of table `t` of backup `id`, in its registry entry and its
/// manifest, as a hand edit would: the backup's file and checksum stay as they are.
fn set_recorded_rows(p: &Project, id: &str, rows: u64) {
    let registry = p.path(&format!("{}/backups.json", crate::harness::BACKUPS));
    let mut reg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&registry).unwrap()).unwrap();
    for b in reg["backups"].as_array_mut().unwrap() {
        if b["id"] == id {
            b["tables"]["t"]["rows"] = rows.into();
        }
    }
    std::fs::write(&registry, serde_json::to_string_pretty(&reg).unwrap()).unwrap();
    let manifest = p.path(&format!(
        "{}/dev/{id}.manifest.json",
        crate::harness::BACKUPS
    ));
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    m["tables"]["t"]["rows"] = rows.into();
    std::fs::write(&manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();
}

/// The `kept` entry of `id` in a cleanup report.
fn kept<'a>(doc: &'a serde_json::Value, id: &str) -> Option<&'a serde_json::Value> {
    doc["kept"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id)
}

/// Issue 16.9: row counts that differ from the manifest while the checksum holds make a backup
/// `mismatch`, never `corrupt`: `latest` skips it, it restores by name with a warning, cleanup
/// keeps it whatever the rule, `delete` removes it, and a deep check that agrees clears it.
#[test]
fn cleanup_keeps_a_mismatch_backup_that_restore_latest_skips() {
    let mut p = project();
    p.at("2024-12-31T00:00:00Z");
    let oldest = p.backup(&["dev", "--retention", "1d"]);
    p.at("2025-01-01T00:00:00Z");
    let older = p.backup(&["dev", "--retention", "1d"]);
    p.at("2025-01-02T00:00:00Z");
    let odd = p.backup(&["dev", "--retention", "1d"]);
    set_recorded_rows(&p, &odd, 5);
    let status = |p: &Project| {
        p.backups()
            .into_iter()
            .find(|b| b["id"] == odd.as_str())
            .unwrap()["status"]
            .clone()
    };

    p.json(&["verify", &odd], 0);
    let doc = p.json(&["verify", &odd, "--deep"], 5);
    assert_eq!(doc["backup"]["status"], "mismatch", "{doc}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("t 5 → 1"),
        "{doc}"
    );
    p.run(&["verify", &odd, "--deep"])
        .code(5)
        .stdout_has(&format!(
            "{odd}: mismatch — row counts differ from the manifest: t 5 → 1"
        ));
    assert_eq!(status(&p), "mismatch");
    let manifest = p.path(&format!(
        "{}/dev/{odd}.manifest.json",
        crate::harness::BACKUPS
    ));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    assert_eq!(m["status"], "mismatch");
    // Only a deep check may clear it: the checksum and the structure say nothing of the counts.
    p.run(&["verify", &odd, "--checksum-only"])
        .code(5)
        .stdout_has("mismatch");
    p.run(&["verify", &odd]).code(5).stdout_has("mismatch");
    assert_eq!(status(&p), "mismatch");
    let listed = p.json(&["list", "dev"], 0);
    assert_eq!(listed["backups"][0]["status"], "mismatch");
    p.run(&["list", "dev"]).code(0).stdout_has("mismatch");
    let env_status = p.json(&["status", "dev"], 0);
    assert_eq!(
        env_status["environments"][0]["mismatch_backups"], 1,
        "{env_status}"
    );

    // `latest` and rollback's own choice pass it by; named, it restores with a warning.
    let doc = p.json(&["restore", "dev", "--from", "latest", "--dry-run"], 0);
    assert_eq!(doc["plan"]["backup"], older.as_str());
    let doc = p.json(&["rollback", "dev", "--dry-run"], 0);
    assert_eq!(doc["plan"]["backup"], older.as_str(), "{doc}");
    p.at("2025-01-02T01:00:00Z");
    p.run(&["restore", "dev", "--from", &odd, "--yes"])
        .code(0)
        .stderr_has("row counts differ from its manifest");
    p.run(&["rollback", "dev", "--to", &odd, "--yes"])
        .code(0)
        .stderr_has("row counts differ from its manifest");
    p.run(&["restore", "dev", "--from", "latest", "--yes"])
        .code(0)
        .stdout_has(&older);
    assert_eq!(status(&p), "mismatch", "restores mark nothing");

    // Cleanup keeps it whatever the rule, and says why.
    p.at("2025-03-01T00:00:00Z");
    for rule in [
        &["--keep-last", "0"][..],
        &["--expired"][..],
        &["--older-than", "1d"][..],
    ] {
        let mut args = vec!["cleanup", "dev", "--dry-run"];
        args.extend_from_slice(rule);
        let doc = p.json(&args, 0);
        let k = kept(&doc, &odd).unwrap_or_else(|| panic!("{rule:?}: {doc}"));
        assert_eq!(k["status"], "mismatch");
        assert_eq!(k["reasons"], serde_json::json!(["mismatch"]), "{rule:?}");
        let removed = crate::harness::ids_in(&doc, "removed");
        assert!(!removed.contains(&odd.as_str()), "{rule:?}");
    }
    p.run(&["cleanup", "dev", "--keep-last", "0", "--dry-run"])
        .code(0)
        .stdout_has(&format!("keep         dev {odd} (mismatch)"));
    let doc = p.json(&["cleanup", "dev", "--keep-last", "0", "--yes"], 0);
    assert!(kept(&doc, &odd).is_some());
    assert!(p.ids().contains(&odd));
    assert!(
        !p.ids().contains(&oldest),
        "the rule still removes the others"
    );

    // The manifest put back, a deep check clears it.
    set_recorded_rows(&p, &odd, 1);
    p.run(&["verify", &odd, "--deep"])
        .code(0)
        .stdout_has("row counts match");
    assert_eq!(status(&p), "valid");

    // Mismatched again, `delete` removes it when asked.
    set_recorded_rows(&p, &odd, 7);
    p.run(&["verify", &odd, "--deep"]).code(5);
    assert_eq!(status(&p), "mismatch");
    p.run(&["delete", &odd, "--yes"]).code(0);
    assert!(!p.ids().contains(&odd));
}

/// Issue 18: a labelled release backup, then the automatic backups of a release gone wrong —
/// the hook's pre-migration backup, a rollback's and a restore's safety backups — all newer.
/// Returns (older labelled, release, pre-migration, pre-rollback, pre-restore).
fn release(p: &mut Project) -> [String; 5] {
    p.at("2025-01-01T00:00:00Z");
    let older = p.backup(&["dev", "--label", "v1"]);
    p.at("2025-01-02T00:00:00Z");
    let release = p.backup(&["dev", "--label", "release-v2"]);
    p.at("2025-01-02T01:00:00Z");
    // As the Claude Code hook takes it before a migration.
    let pre_migration = p.backup(&[
        "dev",
        "--reason",
        "pre-migration",
        "--label",
        "pre-migration",
        "--before-command=npx prisma migrate deploy",
    ]);
    p.at("2025-01-02T02:00:00Z");
    p.run(&["rollback", "dev", "--to", &release, "--yes"])
        .code(0);
    p.at("2025-01-02T03:00:00Z");
    p.run(&["restore", "dev", "--from", &release, "--yes"])
        .code(0);
    let by_reason = |reason: &str| {
        p.backups()
            .iter()
            .find(|b| b["reason"] == reason)
            .unwrap_or_else(|| panic!("no {reason} backup"))["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (pre_rollback, pre_restore) = (by_reason("pre-rollback"), by_reason("pre-restore"));
    assert_eq!(p.ids().len(), 5);
    [older, release, pre_migration, pre_rollback, pre_restore]
}

fn reasons_of(doc: &serde_json::Value, id: &str) -> String {
    kept(doc, id).map_or_else(
        || panic!("{id} not kept: {doc}"),
        |k| k["reasons"].to_string(),
    )
}

#[test]
fn keep_last_never_lets_automatic_backups_push_out_a_labelled_one() {
    let mut p = project();
    let [older, release, pre_migration, pre_rollback, pre_restore] = release(&mut p);

    // The next day: three automatic backups are newer than the release backup; --keep-last 1
    // counts the backups someone asked for, so the release backup is the one it keeps.
    p.at("2025-01-03T00:00:00Z");
    let doc = p.json(&["cleanup", "dev", "--keep-last", "1"], 0);
    assert_eq!(crate::harness::ids_in(&doc, "removed"), [older.as_str()]);
    assert!(reasons_of(&doc, &release).contains("last 1"), "{doc}");
    for id in [&pre_migration, &pre_rollback, &pre_restore] {
        assert!(
            reasons_of(&doc, id).contains("automatic within 7 days"),
            "{doc}"
        );
    }

    // Past the default seven days the automatic ones go, but for the floor.
    p.at("2025-01-20T00:00:00Z");
    let doc = p.json(&["cleanup", "dev", "--keep-last", "1"], 0);
    assert_eq!(
        crate::harness::ids_in(&doc, "removed"),
        [pre_rollback.as_str()]
    );
    assert!(
        reasons_of(&doc, &pre_restore).contains("newest valid"),
        "{doc}"
    );
    assert!(
        reasons_of(&doc, &pre_migration).contains("restore latest"),
        "{doc}"
    );
    let mut left = vec![release, pre_migration, pre_restore];
    left.sort();
    assert_eq!(p.ids(), left);
}

#[test]
fn keep_automatic_keeps_the_newest_n_automatic_backups() {
    let mut p = project();
    let [older, release, pre_migration, pre_rollback, pre_restore] = release(&mut p);
    p.at("2025-01-03T00:00:00Z");
    let doc = p.json(
        &[
            "cleanup",
            "dev",
            "--keep-last",
            "2",
            "--keep-automatic",
            "1",
            "--dry-run",
        ],
        0,
    );
    assert_eq!(
        crate::harness::ids_in(&doc, "removed"),
        [pre_rollback.as_str()]
    );
    assert!(
        reasons_of(&doc, &pre_restore).contains("automatic 1"),
        "{doc}"
    );
    assert!(reasons_of(&doc, &release).contains("last 1"), "{doc}");
    assert!(reasons_of(&doc, &older).contains("last 2"), "{doc}");
    assert!(
        !reasons_of(&doc, &pre_migration).contains("automatic"),
        "only the newest automatic one counts: {doc}"
    );
    // --keep-automatic 0 keeps none beyond the floor.
    let doc = p.json(
        &[
            "cleanup",
            "dev",
            "--keep-last",
            "2",
            "--keep-automatic",
            "0",
        ],
        0,
    );
    assert_eq!(
        crate::harness::ids_in(&doc, "removed"),
        [pre_rollback.as_str()]
    );
    assert_eq!(p.ids().len(), 4);

    // Alone it would say nothing of the backups someone asked for: refused.
    p.run(&["cleanup", "dev", "--keep-automatic", "3"])
        .code(1)
        .stderr_has("--keep-last");
    // And it is a keep rule: not with --expired or --older-than.
    p.run(&["cleanup", "--expired", "--keep-automatic", "3"])
        .code(1)
        .stderr_has("cannot be used with");
}
