//! The rest of the life of a backup: IDs, permissions, init, list, delete, status, concurrency,
//! and cleaning up after killed runs.

use std::fs;

use crate::harness::{BACKUPS, Project, mode};

fn project() -> Project {
    Project::new().seeded("db/dev.sqlite3")
}

#[test]
fn backup_files_are_0600_and_directories_0700() {
    let p = project();
    p.backup(&["dev"]);
    assert_eq!(mode(&p.path(BACKUPS)), 0o700);
    assert_eq!(mode(&p.path(&format!("{BACKUPS}/dev"))), 0o700);
    let files = p.backup_files();
    assert!(files.len() >= 4, "{files:?}");
    for f in files {
        assert_eq!(mode(&p.path(&format!("{BACKUPS}/{f}"))), 0o600, "{f}");
    }
}

#[test]
fn ids_follow_the_clock_and_collisions_get_suffixes() {
    let mut p = project();
    p.at("2025-01-24T14:00:00Z");
    assert_eq!(p.backup(&["dev"]), "backup-20250124-140000");
    assert_eq!(p.backup(&["dev"]), "backup-20250124-140000-2");
    assert_eq!(
        p.backup(&["dev", "--label", "pre-v2"]),
        "backup-20250124-140000-pre-v2"
    );
    assert_eq!(p.backup(&["dev"]), "backup-20250124-140000-3");
    let files = p.backup_files();
    assert!(
        files.contains(&"dev/backup-20250124-140000-pre-v2.sqlite3.gz".to_string()),
        "{files:?}"
    );
    assert!(
        files.contains(&"dev/backup-20250124-140000-pre-v2.manifest.json".to_string()),
        "{files:?}"
    );
}

#[test]
fn manifest_mirrors_the_registry_entry() {
    let p = project();
    let id = p.backup(&["dev", "--compression", "zstd"]);
    let manifest: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(p.path(&format!("{BACKUPS}/dev/{id}.manifest.json"))).unwrap(),
    )
    .unwrap();
    // The entry, and what the manifest alone records of the database.
    let mut entry = manifest.clone();
    for recorded in ["schema", "key_max"] {
        assert!(
            entry.as_object_mut().unwrap().remove(recorded).is_some(),
            "{recorded}"
        );
    }
    assert_eq!(entry, p.backups()[0]);
    assert_eq!(manifest["schema"]["tables"]["t"]["columns"][0]["name"], "x");
    assert_eq!(manifest["file"], format!("dev/{id}.sqlite3.zst"));
    assert!(
        manifest["server_version"]
            .as_str()
            .unwrap()
            .starts_with("SQLite 3.")
    );
    let size = fs::metadata(p.path("db/dev.sqlite3")).unwrap().len();
    assert_eq!(manifest["database_size_bytes"], size);
}

#[test]
fn concurrent_backups_get_distinct_ids_and_entries() {
    let mut p = project();
    p.at("2025-06-01T12:00:00Z");
    let p = std::sync::Arc::new(p);
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let p = p.clone();
            std::thread::spawn(move || p.run(&["backup", "dev"]).code(0))
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut ids: Vec<String> = p
        .backups()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 8, "{ids:?}");
    p.run(&["verify", "--all"]).code(0);
}

#[test]
fn stale_partial_files_are_removed_and_reported() {
    let p = project();
    p.backup(&["dev"]);
    let stale = p.path(&format!(
        "{BACKUPS}/dev/backup-20200101-000000.sqlite3.gz.partial"
    ));
    fs::write(&stale, b"half a backup").unwrap();
    p.run(&["list"])
        .code(0)
        .stderr_has("left by an interrupted run");
    assert!(!stale.exists());
    assert_eq!(p.backups().len(), 1);
}

#[test]
fn init_writes_a_config_and_never_overwrites_without_force() {
    let p = Project::empty();
    p.run(&["init"]).code(0).stdout_has("config.toml");
    let path = p.path(".fractary/plugins/faber-db/config.toml");
    let text = fs::read_to_string(&path).unwrap();
    for env in [
        "[environments.dev]",
        "[environments.staging]",
        "[environments.production]",
    ] {
        assert!(text.contains(env));
    }
    // It writes the compression a config without one gets: zstd.
    assert!(text.contains("\ncompression = \"zstd\""), "{text}");
    fs::write(&path, "# mine\n[environments.dev]\n").unwrap();
    p.run(&["init"]).code(1).stderr_has("already exists");
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "# mine\n[environments.dev]\n"
    );
    p.run(&["init", "--force"]).code(0);
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
    // The written config loads.
    p.run(&["status"])
        .code(0)
        .stdout_has("production [protected]");
}

#[test]
fn delete_removes_file_manifest_and_entry_but_guards_the_last_valid_backup() {
    let p = project();
    let first = p.backup(&["dev", "--label", "a"]);
    let second = p.backup(&["dev", "--label", "b"]);
    p.run(&["delete", &first]).code(0).stdout_has("Deleted");
    assert!(!p.backup_files().iter().any(|f| f.contains(&first)));
    assert_eq!(p.backups().len(), 1);
    p.run(&["delete", &second])
        .code(1)
        .stderr_has("only valid backup");
    p.run(&["delete", &second, "--force"]).code(0);
    assert!(p.backups().is_empty());
    assert_eq!(
        p.backup_files(),
        vec!["backups.json", "backups.json.lock", "history.jsonl"]
    );
}

#[test]
fn list_shows_newest_first_with_totals_and_filters_by_environment() {
    let mut p = project();
    p.sqlite("db/prod.sqlite3")
        .execute_batch("CREATE TABLE t (x);")
        .unwrap();
    p.at("2025-01-01T00:00:00Z");
    p.backup(&["dev", "--label", "older"]);
    p.at("2025-01-02T00:00:00Z");
    p.backup(&["dev", "--label", "newer"]);
    p.backup(&["production", "--yes"]);
    let run = p.run(&["list", "dev"]).code(0).stdout_has("2 backups");
    let older = run.stdout.find("older").unwrap();
    let newer = run.stdout.find("newer").unwrap();
    assert!(newer < older, "newest first:\n{}", run.stdout);
    assert!(
        !run.stdout.contains("backup-20250102-000000 "),
        "production is filtered out"
    );
    p.run(&["list"]).code(0).stdout_has("3 backups");
    p.run(&["list", "nope"])
        .code(1)
        .stderr_has("unknown environment");
}

#[test]
fn list_limits_to_twenty_without_all() {
    let mut p = project();
    for i in 0..22 {
        p.at(&format!("2025-01-01T00:00:{i:02}Z"));
        p.backup(&["dev"]);
    }
    let doc = p.json(&["list"], 0);
    assert_eq!(doc["backups"].as_array().unwrap().len(), 20);
    assert_eq!(doc["totals"]["count"], 22);
    let doc = p.json(&["list", "--all"], 0);
    assert_eq!(doc["backups"].as_array().unwrap().len(), 22);
}

#[test]
fn status_reports_each_environment() {
    let p = project();
    p.backup(&["dev"]);
    let doc = p.json(&["status"], 0);
    let envs = doc["environments"].as_array().unwrap();
    let dev = envs.iter().find(|e| e["environment"] == "dev").unwrap();
    assert_eq!(dev["reachable"], true);
    assert_eq!(dev["backups_count"], 1);
    assert_eq!(dev["provider"], "sqlite");
    let prod = envs
        .iter()
        .find(|e| e["environment"] == "production")
        .unwrap();
    assert_eq!(prod["protected"], true);
    assert_eq!(prod["reachable"], false, "db/prod.sqlite3 does not exist");
    let p = p.with_var("PROD_DATABASE_URL", "");
    p.run(&["status", "production"])
        .code(0)
        .stdout_has("PROD_DATABASE_URL");
}

#[test]
fn a_killed_backup_leaves_no_entry_and_no_final_file() {
    // Killed at whatever point it reached after a few milliseconds; kills at chosen points
    // come with the reliability suite.
    let p = project();
    let big = p.sqlite("db/dev.sqlite3");
    big.execute_batch("CREATE TABLE blobs (b BLOB);").unwrap();
    for _ in 0..50 {
        big.execute("INSERT INTO blobs VALUES (randomblob(100000))", [])
            .unwrap();
    }
    drop(big);
    let mut child = std::process::Command::new(crate::harness::BIN)
        .args(["backup", "dev", "--compression", "gzip"])
        .current_dir(p.root())
        .env("DEV_DATABASE_URL", "sqlite:db/dev.sqlite3")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(40));
    let _ = child.kill();
    let _ = child.wait();
    // Whatever point it reached, the registry is valid JSON and any entry has its file.
    for b in p.backups() {
        assert!(
            p.path(&format!("{BACKUPS}/{}", b["file"].as_str().unwrap()))
                .exists()
        );
    }
    // The next run sweeps what the killed one left.
    p.run(&["list"]).code(0);
    assert!(
        p.backup_files().iter().all(|f| !f.ends_with(".partial")),
        "{:?}",
        p.backup_files()
    );
}

#[test]
fn init_writes_where_config_points() {
    let p = Project::empty();
    p.run(&["--config", "ops/faber.toml", "init"]).code(0);
    assert!(p.path("ops/faber.toml").is_file());
    assert!(!p.path(".fractary/plugins/faber-db/config.toml").exists());
    p.run(&["--config", "ops/faber.toml", "init"])
        .code(1)
        .stderr_has("already exists");
    p.run(&["--config", "ops/faber.toml", "status"])
        .code(0)
        .stdout_has("staging");
}

#[test]
fn help_lists_every_command_and_each_has_its_own() {
    let p = Project::empty();
    let run = p.run(&["--help"]).code(0);
    for cmd in [
        "init", "backup", "list", "verify", "restore", "cleanup", "delete", "status",
    ] {
        assert!(
            run.stdout.contains(&format!("  {cmd} ")),
            "`{cmd}` missing from --help:\n{}",
            run.stdout
        );
        p.run(&[cmd, "--help"])
            .code(0)
            .stdout_has("Usage: faber-db")
            .stdout_has("Global options");
    }
}

#[test]
fn ids_are_unique_across_environments_and_compressions() {
    let mut p = Project::new()
        .seeded("db/dev.sqlite3")
        .seeded("db/prod.sqlite3");
    p.at("2025-06-01T12:00:00Z");
    let p = std::sync::Arc::new(p);
    let handles: Vec<_> = (0..12)
        .map(|i| {
            let p = p.clone();
            std::thread::spawn(move || {
                let args: &[&str] = match i % 3 {
                    0 => &["backup", "dev", "--compression", "gzip"],
                    1 => &["backup", "dev", "--compression", "zstd"],
                    _ => &["backup", "production", "--yes"],
                };
                p.run(args).code(0);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let ids = p.ids();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(unique.len(), 12, "{ids:?}");
    let manifests = p
        .backup_files()
        .into_iter()
        .filter(|f| f.ends_with(".manifest.json"))
        .count();
    assert_eq!(manifests, 12);
    // Deleting one removes exactly one entry and its own files.
    p.run(&["delete", &ids[0], "--yes"]).code(0);
    assert_eq!(p.ids().len(), 11);
    p.run(&["verify", "--all"]).code(0);
}

#[test]
fn huge_ages_and_the_audit_log_of_a_new_project() {
    let p = project();
    // Fails before anything exists: still logged, no warning about the log.
    let run = p.run(&["restore", "dev", "--yes"]).code(1);
    assert!(!run.stderr.contains("audit log"), "{}", run.stderr);
    p.backup(&["dev"]);
    p.run(&["cleanup", "--older-than", "300000years"])
        .code(0)
        .stdout_has("Nothing to clean up");
}

#[test]
fn status_warns_when_the_newest_valid_backup_is_older_than_max_backup_age() {
    let mut p = Project::with_config(
        "[defaults]\nmax_backup_age = \"24h\"\n\
         [environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\n\
         [environments.production]\nurl_env = \"PROD_DATABASE_URL\"\nmax_backup_age = \"7d\"\n",
    )
    .seeded("db/dev.sqlite3")
    .seeded("db/prod.sqlite3");
    p.at("2025-03-01T00:00:00Z");
    p.backup(&["dev"]);
    p.backup(&["production", "--yes"]);
    p.at("2025-03-01T20:00:00Z");
    let fresh = p.run(&["status"]).code(0);
    assert!(!fresh.stderr.contains("max_backup_age"), "{}", fresh.stderr);
    p.at("2025-03-02T02:00:00Z");
    p.run(&["status"])
        .code(0)
        .stderr_has("dev: the newest valid backup is 26h old > 24h (max_backup_age)");
    let doc = p.json(&["status"], 0);
    let envs = doc["environments"].as_array().unwrap();
    let dev = envs.iter().find(|e| e["environment"] == "dev").unwrap();
    let prod = envs
        .iter()
        .find(|e| e["environment"] == "production")
        .unwrap();
    assert_eq!(dev["backup_overdue"], true);
    assert_eq!(dev["newest_valid_backup_age_secs"], 26 * 3600);
    assert_eq!(dev["max_backup_age_secs"], 24 * 3600);
    assert_eq!(prod["backup_overdue"], false, "production allows 7d");
}

#[test]
fn diff_shows_tables_added_removed_and_changed_since_a_backup() {
    let p = project();
    p.sqlite("db/dev.sqlite3")
        .execute_batch("CREATE TABLE old (x); INSERT INTO old VALUES (1);")
        .unwrap();
    let id = p.backup(&["dev"]);
    p.sqlite("db/dev.sqlite3")
        .execute_batch("DROP TABLE old; CREATE TABLE fresh (y); INSERT INTO t VALUES (2), (3);")
        .unwrap();
    let doc = p.json(&["diff", &id], 0);
    let tables = doc["tables"].as_array().unwrap();
    let change = |name: &str| {
        tables
            .iter()
            .find(|t| t["table"] == name)
            .unwrap_or_else(|| panic!("{name} in {doc}"))
            .clone()
    };
    assert_eq!(change("old")["change"], "removed");
    assert_eq!(change("fresh")["change"], "added");
    assert_eq!(change("t")["change"], "changed");
    assert_eq!(change("t")["delta"], 2);
    p.run(&["diff", &id])
        .code(0)
        .stdout_has("removed")
        .stdout_has("+2");
    p.run(&["diff", "backup-20990101-000000"])
        .code(1)
        .stderr_has("no backup");
}

#[test]
fn diff_shows_schema_changes_and_says_when_a_manifest_records_no_schema() {
    let p = project();
    p.sqlite("db/dev.sqlite3")
        .execute_batch("CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT); CREATE INDEX tags_name ON tags (name);")
        .unwrap();
    let id = p.backup(&["dev"]);
    p.sqlite("db/dev.sqlite3")
        .execute_batch(
            "DROP INDEX tags_name; ALTER TABLE tags ADD COLUMN color TEXT NOT NULL DEFAULT 'red';",
        )
        .unwrap();
    let doc = p.json(&["diff", &id], 0);
    assert_eq!(
        crate::harness::schema_changes(&doc["schema_changes"]),
        ["column_added tags.color", "index_dropped tags.tags_name"],
        "{doc}"
    );
    p.run(&["diff", &id])
        .code(0)
        .stdout_has("+ column tags.color: TEXT NOT NULL DEFAULT 'red'")
        .stdout_has("- index tags_name on tags");

    // A manifest of an earlier faber-db records no schema; one whose schema is not a schema
    // (edited, damaged) is no better. Neither is taken for "nothing changed".
    let manifest = p.path(&format!("{BACKUPS}/dev/{id}.manifest.json"));
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    for junk in [
        serde_json::Value::Null,
        serde_json::json!({"tables": "../../etc"}),
    ] {
        m["schema"] = junk;
        std::fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();
        let doc = p.json(&["diff", &id], 0);
        assert!(doc["schema_changes"].is_null(), "{doc}");
        assert!(
            doc["schema_not_compared"]
                .as_str()
                .unwrap()
                .contains("no schema")
        );
        p.run(&["diff", &id])
            .code(0)
            .stdout_has("Schema: not compared")
            .stdout_has(&format!("faber-db diff {id} --deep"));
    }
    // --deep reads the backup's schema from a scratch copy of it, which goes after.
    let doc = p.json(&["diff", &id, "--deep"], 0);
    assert_eq!(doc["schema_from_scratch_copy"], true, "{doc}");
    assert_eq!(
        crate::harness::schema_changes(&doc["schema_changes"]),
        ["column_added tags.color", "index_dropped tags.tags_name"],
        "{doc}"
    );
    let scratch = p.path(&format!("{BACKUPS}/.scratch"));
    let left: Vec<_> = fs::read_dir(&scratch)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.iter()
            .all(|n| !n.to_string_lossy().starts_with("rehearse-")),
        "{left:?}"
    );
}

#[test]
fn quiet_keeps_warnings_and_errors_only() {
    let p = project();
    let run = p
        .run(&["-q", "backup", "dev", "--jobs", "2"])
        .code(0)
        .stderr_has("warning: --jobs applies to directory dumps only");
    // On stdout only what a script wants: the ID of the backup taken (issue 18).
    assert_eq!(run.stdout.trim(), p.ids()[0], "{}", run.stdout);
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    p.run(&["-q", "backup", "nope"])
        .code(1)
        .stderr_has("error: unknown environment");
}
