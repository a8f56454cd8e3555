//! Acceptance 5: bad input gets a clear error and the documented exit code, and changes nothing.

use std::fs;

use crate::harness::{BACKUPS, Project};

fn project() -> Project {
    Project::new().seeded("db/dev.sqlite3")
}

#[test]
fn unknown_environment_lists_the_known_ones() {
    let p = project();
    p.run(&["backup", "qa"])
        .code(1)
        .stderr_has("unknown environment `qa`")
        .stderr_has("dev, production")
        .stderr_lacks("did you mean");
    // A near miss names the environment meant; nothing is backed up all the same.
    p.run(&["backup", "prod"])
        .code(1)
        .stderr_has("unknown environment `prod`")
        .stderr_has("did you mean `production`?");
    p.run(&["restore", "deb", "--dry-run"])
        .code(1)
        .stderr_has("did you mean `dev`?");
    assert!(p.backup_files().is_empty());
}

#[test]
fn quiet_backup_prints_its_id_and_list_takes_env_as_an_option() {
    let p = project();
    let run = p.run(&["-q", "backup", "dev"]).code(0);
    let id = run.stdout.trim();
    assert!(
        id.starts_with("backup-") && !id.contains('\n'),
        "{:?}",
        run.stdout
    );
    assert_eq!(p.ids(), vec![id.to_string()]);
    // Not with --json: the document says it.
    let doc = p.json(&["-q", "backup", "dev"], 0);
    assert!(doc["backup"]["id"].is_string());
    p.run(&["list", "--env", "dev"])
        .code(0)
        .stdout_has(id)
        .stdout_has("2 backups, ");
    p.run(&["cleanup", "dev", "--keep-last", "1", "--yes"])
        .code(0)
        .stdout_has("1 backup removed");

    p.run(&["list", "--env", "production"])
        .code(0)
        .stdout_lacks(id);
    p.run(&["list", "dev", "--env", "dev"]).code(1);
}

#[test]
fn invalid_labels_and_reasons_are_refused() {
    let p = project();
    for bad in [
        "../../x",
        "a/b",
        "with space",
        "new\nline",
        ".hidden",
        &"x".repeat(65),
        "$(rm -rf /)",
    ] {
        p.run(&["backup", "dev", "--label", bad])
            .code(1)
            .stderr_has("invalid label");
        p.run(&["backup", "dev", "--reason", bad])
            .code(1)
            .stderr_has("invalid reason");
    }
    assert!(p.backups().is_empty());
    assert!(!p.path("x").exists());
}

#[test]
fn unknown_and_malformed_backup_ids_are_refused() {
    let p = project();
    p.backup(&["dev"]);
    p.run(&["verify", "backup-20200101-000000"])
        .code(1)
        .stderr_has("no backup with ID");
    p.run(&[
        "restore",
        "dev",
        "--from",
        "backup-20200101-000000",
        "--yes",
    ])
    .code(1)
    .stderr_has("no backup with ID");
    p.run(&["delete", "backup-20200101-000000"])
        .code(1)
        .stderr_has("no backup with ID");
    for bad in [
        "../../etc/passwd",
        "backup-20200101-000000/../../x",
        "latest2",
    ] {
        // With a `/`, verify takes a path: a file that is no backup of ours is refused.
        let verify = p.run(&["verify", bad]).code(1);
        match bad {
            "../../etc/passwd" => verify
                .stderr_has("no manifest beside")
                .stderr_lacks("root:"),
            "latest2" => verify.stderr_has("invalid backup ID"),
            _ => verify.stderr_has("does not exist"),
        };
        p.run(&["delete", bad])
            .code(1)
            .stderr_has("invalid backup ID");
    }
}

#[test]
fn a_missing_database_file_is_a_connection_failure() {
    let p = project().with_var("DEV_DATABASE_URL", "sqlite:db/nope.sqlite3");
    p.run(&["backup", "dev"])
        .code(3)
        .stderr_has("does not exist");
    assert!(
        !p.path("db/nope.sqlite3").exists(),
        "the database is not created by a backup"
    );
    assert!(p.backups().is_empty());
    assert!(
        p.backup_files().iter().all(|f| !f.ends_with(".partial")),
        "{:?}",
        p.backup_files()
    );
}

#[test]
fn a_file_that_is_not_a_database_is_a_connection_failure() {
    let p = project();
    fs::write(
        p.path("db/dev.sqlite3"),
        "this is not a database, just text that is long enough to matter",
    )
    .unwrap();
    p.run(&["backup", "dev"])
        .code(3)
        .stderr_has("cannot open SQLite database");
    p.assert_nothing_left("dev");
}

#[test]
fn an_unset_url_variable_is_named() {
    let p = Project::with_config("[environments.dev]\nurl_env = \"MY_DEV_URL\"\n");
    p.run(&["backup", "dev"])
        .code(1)
        .stderr_has("variable MY_DEV_URL is not set");
}

#[test]
fn a_malformed_toml_config_names_file_line_and_column() {
    let p = project();
    p.write(
        ".fractary/plugins/faber-db/config.toml",
        "[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\nretention = 30d\n",
    );
    p.run(&["backup", "dev"])
        .code(1)
        .stderr_has("config.toml:3:13");
    p.write(
        ".fractary/plugins/faber-db/config.toml",
        "[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\ncolour = \"blue\"\n",
    );
    p.run(&["list"])
        .code(1)
        .stderr_has("config.toml:3:1")
        .stderr_has("unknown field `colour`");
    p.write(
        ".fractary/plugins/faber-db/config.toml",
        "[environments.dev]\nretention = \"30 dayz\"\n",
    );
    p.run(&["list"])
        .code(1)
        .stderr_has("config.toml:2:13")
        .stderr_has("invalid duration");
    p.write(
        ".fractary/plugins/faber-db/config.toml",
        "[defaults]\ncompression = \"lz4\"\n[environments.dev]\n",
    );
    p.run(&["list"])
        .code(1)
        .stderr_has("config.toml:2:15")
        .stderr_has("lz4");
}

#[test]
fn a_malformed_json_config_names_line_and_column() {
    let p = Project::empty();
    p.write(".fractary/plugins/faber-db/config.json", "{\n  \"environments\": {\n    \"dev\": {\"connection_string_env\": \"X\", \"colour\": 1}\n  }\n}\n");
    p.run(&["list"])
        .code(1)
        .stderr_has("config.json:3:")
        .stderr_has("unknown field `colour`");
}

#[test]
fn a_missing_config_points_to_init() {
    let p = Project::empty();
    p.run(&["list"])
        .code(1)
        .stderr_has("no faber-db config found")
        .stderr_has("faber-db init");
}

#[test]
fn a_malformed_registry_is_reported_and_left_untouched() {
    let p = project();
    p.backup(&["dev"]);
    let reg = p.path(&format!("{BACKUPS}/backups.json"));
    for garbage in ["{\"version\": 1, \"backups\": [", "not json at all", ""] {
        fs::write(&reg, garbage).unwrap();
        for args in [
            &["list"][..],
            &["backup", "dev"],
            &["verify", "--all"],
            &["cleanup", "--expired"],
        ] {
            p.run(args)
                .code(1)
                .stderr_has("registry")
                .stderr_has("hint:");
            assert_eq!(
                fs::read_to_string(&reg).unwrap(),
                garbage,
                "{args:?} left the registry as it was"
            );
        }
    }
    let files: Vec<String> = p
        .backup_files()
        .into_iter()
        .filter(|f| f.ends_with(".sqlite3.gz"))
        .collect();
    assert_eq!(
        files.len(),
        1,
        "the failed backup left no data file: {files:?}"
    );
}

#[test]
fn usage_errors_exit_1_not_2() {
    let p = project();
    p.run(&["backup"]).code(1);
    p.run(&["frobnicate"]).code(1);
    p.run(&["backup", "dev", "--compression", "lz4"]).code(1);
    p.run(&["--help"]).code(0).stdout_has("Usage");
}

#[test]
fn format_options_that_do_not_apply_to_sqlite_are_refused() {
    let p = project();
    p.run(&["backup", "dev", "--format", "custom"])
        .code(1)
        .stderr_has("SQLite backups are images of the database file");
    assert!(p.backups().is_empty());
}

#[test]
fn retentions_out_of_range_are_refused() {
    let p = project();
    p.run(&["backup", "dev", "--retention", "100000000000y"])
        .code(1)
        .stderr_has("longer than 1000 years");
    p.run(&["backup", "dev", "--retention", "0s"]).code(1);
    p.write(
        ".fractary/plugins/faber-db/config.toml",
        "[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\nbackup_retention_days = 213503982334602\n",
    );
    p.run(&["list"]).code(1).stderr_has("out of range");
    assert!(p.backups().is_empty());
}

#[test]
fn a_streamed_sqlite_backup_asks_for_room_for_itself_not_for_a_snapshot_too() {
    let Some(fs) = crate::services::Tmpfs::mount("5m") else {
        return;
    };
    let backups = fs.dir.path().join("backups");
    let p = Project::new();
    p.use_backup_dir(&backups);
    // 3 MB of incompressible rows in WAL mode: its pages are streamed, with no snapshot on disk.
    crate::harness::three_random_megabytes(&p.sqlite("db/dev.sqlite3"), true);
    p.run(&["backup", "dev", "--dry-run"])
        .code(0)
        .stdout_lacks("6.8 MiB");
    p.run(&["backup", "dev"]).code(0);
    // Rows left out are deleted from a snapshot: that backup needs room for both.
    p.run(&["backup", "dev", "--exclude-table-data", "t"])
        .code(2)
        .stderr_has("about 6.8 MiB needed");
    let registry: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(backups.join("backups.json")).unwrap()).unwrap();
    assert_eq!(
        registry["backups"].as_array().unwrap().len(),
        1,
        "{registry}"
    );
}

#[test]
fn a_database_that_leaves_wal_mode_after_the_plan_is_asked_for_its_snapshots_room() {
    let Some(fs) = crate::services::Tmpfs::mount("5m") else {
        return;
    };
    let backups = fs.dir.path().join("backups");
    let p = Project::new();
    p.use_backup_dir(&backups);
    let db = p.sqlite("db/dev.sqlite3");
    crate::harness::three_random_megabytes(&db, true);
    // Planned as a stream (room for itself), then the database goes back to a rollback journal.
    let paused = p.paused_at(&["backup", "dev"], "backup:after-reserve");
    let mode: String = db
        .query_row("PRAGMA journal_mode=DELETE", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
    drop(db);
    let out = paused.resume();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("for the backup and its working snapshot"),
        "{stderr}"
    );
    let left: Vec<_> = fs::read_dir(backups.join("dev"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn too_little_free_space_is_exit_2_before_anything_is_written() {
    let Some(fs) = crate::services::Tmpfs::mount("2m") else {
        return;
    };
    let backups = fs.dir.path().join("backups");
    let p = Project::new();
    p.use_backup_dir(&backups);
    // 3 MB of incompressible rows: an SQLite backup asks for twice that, plus 1 MiB.
    crate::harness::three_random_megabytes(&p.sqlite("db/dev.sqlite3"), false);
    p.run(&["backup", "dev"])
        .code(2)
        .stderr_has("not enough free space")
        .stderr_has("2.0 MiB free, about 6.8 MiB needed");
    let left: Vec<_> = fs::read_dir(backups.join("dev"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    let registry = fs::read_to_string(backups.join("backups.json")).unwrap_or_default();
    assert!(!registry.contains("backup-"), "{registry}");
}
