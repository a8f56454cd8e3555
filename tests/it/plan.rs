//! Knowing before acting: the plans of `--dry-run` with their estimates, `verify PATH`,
//! `backup --output-dir` and the default environment.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::harness::{BACKUPS, BIN, Project, mode};

/// Every file under `dir` with its bytes: what a run that changes nothing leaves equal.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut names = Vec::new();
    crate::harness::walk(dir, dir, &mut names);
    names
        .into_iter()
        .map(|n| {
            let bytes = fs::read(dir.join(&n)).unwrap();
            (n, bytes)
        })
        .collect()
}

/// A dev database of `rows` rows of varied text, so that compression has something to do.
fn filled(rows: u32) -> Project {
    let p = Project::new();
    add_rows(&p, 0, rows);
    p
}

fn add_rows(p: &Project, from: u32, rows: u32) {
    let mut db = p.sqlite("db/dev.sqlite3");
    let tx = db.transaction().unwrap();
    tx.execute_batch("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT)")
        .unwrap();
    for i in from..from + rows {
        // A pseudo-random mix of words: compressible like real text, not like a repeated line.
        let x = i.wrapping_mul(2_654_435_761);
        let body = format!(
            "note {i} by user{} about item {} status {} amount {}.{:02}",
            x % 977,
            (x >> 8) % 10_007,
            ["open", "closed", "pending", "void"][(x % 4) as usize],
            (x >> 4) % 100_000,
            x % 100
        );
        tx.execute("INSERT INTO notes (body) VALUES (?1)", [body])
            .unwrap();
    }
    tx.commit().unwrap();
}

#[test]
#[expect(clippy::too_many_lines, reason = "one scenario, step after step")]
fn dry_runs_change_nothing_and_give_their_plans() {
    let p = filled(2_000);
    // Before any backup: the backup directory is not even created.
    let doc = p.json(&["backup", "dev", "--dry-run"], 0);
    assert!(
        !p.path(BACKUPS).exists(),
        "a dry run created the backup directory"
    );
    let plan = &doc["plan"];
    assert_eq!(doc["dry_run"], true);
    assert_eq!(plan["estimate"]["basis"], "defaults");
    assert_eq!(plan["estimate"]["backups"], 0);

    p.sqlite("db/dev.sqlite3")
        .execute_batch(
            "CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, \
             run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP); \
             INSERT INTO __diesel_schema_migrations (version) VALUES ('20240101000000');",
        )
        .unwrap();
    let id = p.backup(&["dev"]);
    // The live database moves on by one migration: the plans show both states.
    p.sqlite("db/dev.sqlite3")
        .execute_batch(
            "INSERT INTO __diesel_schema_migrations (version) VALUES ('20240301000000');",
        )
        .unwrap();
    p.sqlite("db/prod.sqlite3")
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    p.backup(&["production", "--yes"]);
    let before = snapshot(&p.path(BACKUPS));
    let db_before = fs::read(p.path("db/dev.sqlite3")).unwrap();

    let doc = p.json(&["backup", "dev", "--dry-run"], 0);
    let plan = &doc["plan"];
    assert!(doc.get("backup").is_none(), "{doc}");
    for step in [
        "validate connection",
        "dump",
        "compress",
        "checksum",
        "verify",
        "register",
    ] {
        assert!(
            plan["steps"].as_array().unwrap().iter().any(|s| s == step),
            "{step} missing from {}",
            plan["steps"]
        );
    }
    assert_eq!(plan["environment"], "dev");
    assert_eq!(plan["format"], "sqlite");
    assert_eq!(plan["compression"], "gzip");
    assert!(
        plan["database_size_bytes"].as_u64().unwrap() > 50_000,
        "{plan}"
    );
    assert_eq!(plan["estimate"]["basis"], "history");
    assert_eq!(plan["estimate"]["backups"], 1);
    assert!(plan["estimate"]["size_bytes"].as_u64().unwrap() > 0);
    assert!(plan["estimate"]["duration_ms"].as_u64().unwrap() > 0);
    assert!(plan["free_bytes"].as_u64().unwrap() > 0);
    assert!(plan["space_needed_bytes"].as_u64().unwrap() > 0);
    assert_eq!(plan["enough_space"], true);
    assert_eq!(plan["confirmation"], false);
    assert!(
        plan["destination"]
            .as_str()
            .unwrap()
            .ends_with(&format!("{BACKUPS}/dev")),
        "{plan}"
    );

    // A protected environment: the plan says it would ask, and no terminal is needed to see it.
    let doc = p.json(&["backup", "production", "--dry-run"], 0);
    assert_eq!(doc["plan"]["confirmation"], true);
    let doc = p.json(&["backup", "production", "--dry-run", "--yes"], 0);
    assert_eq!(doc["plan"]["confirmation"], false);

    let doc = p.json(&["restore", "dev", "--dry-run"], 0);
    let plan = &doc["plan"];
    assert_eq!(plan["backup"], id.as_str());
    assert!(
        plan["chosen"].as_str().unwrap().contains("latest"),
        "{plan}"
    );
    assert_eq!(plan["database_exists"], true);
    assert_eq!(plan["backup_migrations"]["applied_count"], 1, "{plan}");
    assert_eq!(plan["live_migrations"]["applied_count"], 2, "{plan}");
    assert_eq!(plan["live_migrations"]["last_migration"], "20240301000000");
    assert_eq!(plan["safety_backup"]["reason"], "pre-restore");
    assert_eq!(plan["safety_backup"]["estimate"]["basis"], "history");
    // No restore of dev yet: the load is estimated from the backup's own time.
    assert_eq!(plan["load"]["basis"], "backup");
    assert!(plan["duration_ms"].as_u64().unwrap() >= plan["load"]["duration_ms"].as_u64().unwrap());
    let doc = p.json(&["restore", "dev", "--dry-run", "--no-safety-backup"], 0);
    assert!(doc["plan"]["safety_backup"].is_null());

    let doc = p.json(&["rollback", "dev", "--dry-run"], 0);
    let plan = &doc["plan"];
    assert_eq!(plan["backup"], id.as_str());
    assert_eq!(plan["safety_backup"]["reason"], "pre-rollback");
    assert!(
        plan["chosen"]
            .as_str()
            .unwrap()
            .contains("newest valid backup"),
        "{plan}"
    );

    // The human plan names the steps and the estimate's source.
    p.run(&["backup", "dev", "--dry-run"])
        .code(0)
        .stdout_has("validate connection → check tools → estimate → dump")
        .stdout_has("from 1 earlier backup")
        .stdout_has("Dry run: nothing was written.");
    p.run(&["rollback", "dev", "--dry-run"])
        .code(0)
        .stdout_has("Undoes:")
        .stdout_has("20240301000000");
    p.run(&["restore", "dev", "--dry-run"])
        .code(0)
        .stdout_has("a pre-restore backup first")
        .stdout_has("backup: 1 migrations applied, last 20240101000000; now: 2 migrations applied")
        .stdout_has("Dry run: nothing was changed.");

    assert!(
        before == snapshot(&p.path(BACKUPS)),
        "a dry run changed the backup directory"
    );
    // Debris of a killed run stays where it is during dry runs: they touch nothing.
    let debris = p.path(&format!(
        "{BACKUPS}/dev/backup-20200101-000000.sqlite3.gz.partial"
    ));
    fs::write(&debris, "left by a killed run").unwrap();
    let before = snapshot(&p.path(BACKUPS));
    for args in [
        &["backup", "dev", "--dry-run"][..],
        &["restore", "dev", "--dry-run"],
        &["rollback", "dev", "--dry-run"],
        &["cleanup", "dev", "--keep-last", "1", "--dry-run"],
    ] {
        p.run(args).code(0);
    }
    assert!(debris.exists());
    assert!(
        before == snapshot(&p.path(BACKUPS)),
        "a dry run changed the backup directory"
    );
    assert_eq!(db_before, fs::read(p.path("db/dev.sqlite3")).unwrap());
}

#[test]
fn a_dry_run_without_room_fails_as_the_backup_would() {
    let Some(fs) = crate::services::Tmpfs::mount("2m") else {
        return;
    };
    let p = Project::new();
    // 3 MB of incompressible rows: an SQLite backup asks for twice that, plus 1 MiB.
    crate::harness::three_random_megabytes(&p.sqlite("db/dev.sqlite3"), false);
    let out = fs.dir.path().join("out");
    let args = [
        "backup",
        "dev",
        "--dry-run",
        "--output-dir",
        out.to_str().unwrap(),
    ];
    let doc = p.json(&args, 2);
    assert_eq!(doc["plan"]["enough_space"], false);
    assert_eq!(doc["error"]["kind"], "disk_space", "{doc}");
    assert!(!out.exists(), "a dry run created the output directory");
    p.run(&args)
        .code(2)
        .stdout_has("not enough")
        .stderr_has("not enough free space");
    // The backup itself stops the same way, leaving nothing in the output directory.
    p.run(&["backup", "dev", "--output-dir", out.to_str().unwrap()])
        .code(2);
    let left: Vec<_> = fs::read_dir(&out)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    assert!(p.backups().is_empty());
}

#[test]
fn the_estimate_from_three_backups_is_within_half_of_the_fourth() {
    let p = filled(6_000);
    for round in 0..3 {
        add_rows(&p, 6_000 + round * 500, 500);
        p.backup(&["dev"]);
    }
    add_rows(&p, 7_500, 500);
    let plan = p.json(&["backup", "dev", "--dry-run"], 0)["plan"].clone();
    assert_eq!(plan["estimate"]["basis"], "history");
    assert_eq!(plan["estimate"]["backups"], 3);
    let doc = p.json(&["backup", "dev"], 0);
    let actual = doc["backup"]["size_bytes"].as_u64().unwrap() as f64;
    let estimated = plan["estimate"]["size_bytes"].as_u64().unwrap() as f64;
    assert!(
        (estimated - actual).abs() <= actual * 0.5,
        "estimated {estimated}, actual {actual}"
    );
    // The real backup reports the estimate it was made with beside what it took.
    assert_eq!(doc["estimate"]["basis"], "history");
    assert_eq!(
        doc["estimate"]["size_bytes"],
        plan["estimate"]["size_bytes"]
    );
    p.run(&["backup", "dev"])
        .code(0)
        .stdout_has("Actual:")
        .stdout_has("estimated")
        .stdout_has("from 4 earlier backups");
}

/// Runs faber-db in `dir` (no project there), without a terminal.
fn run_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .env_remove("FABER_ENV")
        .env_remove("ENV_MODE")
        .env_remove("FABER_NOW")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn verify_by_path_checks_a_copy_against_its_manifest_without_a_registry() {
    let p = filled(1_000);
    let id = p.backup(&["dev", "--label", "v1.2"]);
    let data = p.data_file(&id);
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join(data.file_name().unwrap());
    fs::copy(&data, &copy).unwrap();
    fs::copy(
        p.path(&format!("{BACKUPS}/dev/{id}.manifest.json")),
        elsewhere.path().join(format!("{id}.manifest.json")),
    )
    .unwrap();
    let registry = fs::read(p.path(&format!("{BACKUPS}/backups.json"))).unwrap();

    // From a directory with no project at all, by relative path, then by its manifest.
    let name = copy.file_name().unwrap().to_str().unwrap().to_string();
    let (code, out, err) = run_in(elsewhere.path(), &["--json", "verify", &name]);
    assert_eq!(code, 0, "{out}{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["backup"]["id"], id.as_str());
    assert_eq!(doc["backup"]["status"], "valid");
    assert_eq!(doc["path"], copy.to_str().unwrap());
    let manifest = format!("{id}.manifest.json");
    let (code, _, err) = run_in(elsewhere.path(), &["verify", &manifest]);
    assert_eq!(code, 0, "{err}");
    // Inside the project too, by absolute path; the registry is not written.
    p.run(&["verify", copy.to_str().unwrap()]).code(0);
    assert_eq!(
        registry,
        fs::read(p.path(&format!("{BACKUPS}/backups.json"))).unwrap()
    );
    let (code, _, err) = run_in(elsewhere.path(), &["verify", &name, "--checksum-only"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run_in(elsewhere.path(), &["verify", &name, "--deep"]);
    assert_eq!(code, 0, "{err}");
    let nothing_new: Vec<_> = fs::read_dir(elsewhere.path()).unwrap().collect();
    assert_eq!(nothing_new.len(), 2, "verify left files beside the copy");
    assert!(
        !elsewhere.path().join(".fractary").exists(),
        "verify by path made a project where it ran"
    );

    // One flipped byte: corrupt, exit 5.
    let mut bytes = fs::read(&copy).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    fs::write(&copy, bytes).unwrap();
    let (code, out, _) = run_in(elsewhere.path(), &["--json", "verify", &name]);
    assert_eq!(code, 5, "{out}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["results"][0]["status"], "corrupt");
    // The registered original is untouched and still valid.
    p.run(&["verify", &id]).code(0);

    // Without its manifest: a clear error, exit 1.
    fs::remove_file(elsewhere.path().join(&manifest)).unwrap();
    let (code, _, err) = run_in(elsewhere.path(), &["verify", &name]);
    assert_eq!(code, 1);
    assert!(err.contains("no manifest beside"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    let (code, _, err) = run_in(elsewhere.path(), &["verify", "./no-such-file.sql.gz"]);
    assert_eq!(code, 1);
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn an_output_dir_backup_is_listed_verified_restored_and_cleaned_like_any_other() {
    let p = filled(500);
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("usb/faber");
    let doc = p.json(&["backup", "dev", "--output-dir", dir.to_str().unwrap()], 0);
    let id = doc["backup"]["id"].as_str().unwrap().to_string();
    assert_eq!(mode(&dir), 0o700);
    let file = doc["backup"]["file"].as_str().unwrap();
    assert!(Path::new(file).is_absolute(), "{file}");
    assert!(file.starts_with(dir.to_str().unwrap()), "{file}");
    assert!(Path::new(file).is_file());
    assert!(dir.join(format!("{id}.manifest.json")).is_file());
    assert_eq!(p.backups()[0]["file"], file);
    // Nothing of it in the configured directory but the registry and the history.
    assert!(
        p.backup_files().iter().all(|f| !f.starts_with("dev/")),
        "{:?}",
        p.backup_files()
    );

    let list = p.json(&["list", "dev"], 0);
    assert!(list.to_string().contains(&id), "{list}");
    p.run(&["verify", &id]).code(0);
    p.run(&["verify", &id, "--deep"]).code(0);

    p.sqlite("db/dev.sqlite3")
        .execute_batch("DELETE FROM notes")
        .unwrap();
    p.run(&["restore", "dev", "--from", &id, "--no-safety-backup"])
        .code(0);
    let rows: i64 = p
        .sqlite("db/dev.sqlite3")
        .query_row("SELECT count(*) FROM notes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 500);
    // That restore recorded its time: the next plan is estimated from it.
    let doc = p.json(&["restore", "dev", "--from", &id, "--dry-run"], 0);
    assert_eq!(doc["plan"]["load"]["basis"], "restores", "{doc}");
    assert_eq!(doc["plan"]["load"]["backups"], 1);
    let history = fs::read_to_string(p.path(&format!("{BACKUPS}/history.jsonl"))).unwrap();
    assert!(
        history.contains("\"timing\":{\"duration_ms\":"),
        "{history}"
    );

    // A relative --output-dir is taken from the current directory; a newer backup lets
    // cleanup remove the first one, files and all.
    let second = p.json(&["backup", "dev", "--output-dir", "elsewhere"], 0);
    assert!(
        second["backup"]["file"]
            .as_str()
            .unwrap()
            .starts_with(p.path("elsewhere").to_str().unwrap()),
        "{second}"
    );
    p.run(&["cleanup", "dev", "--keep-last", "1", "--yes"])
        .code(0);
    assert!(!p.ids().contains(&id));
    assert!(!Path::new(file).exists());
    assert!(!dir.join(format!("{id}.manifest.json")).exists());

    // A file where the directory should be: refused before anything is written.
    let blocker = out.path().join("a-file");
    fs::write(&blocker, "x").unwrap();
    p.run(&["backup", "dev", "--output-dir", blocker.to_str().unwrap()])
        .code(1)
        .stderr_has("is not a directory");
}

#[test]
fn the_environment_may_come_from_faber_env_env_mode_or_the_config() {
    let config = format!(
        "default_environment = \"production\"\n{}",
        crate::harness::DEFAULT_CONFIG
    );
    let mut p = Project::with_config(&config)
        .seeded("db/dev.sqlite3")
        .seeded("db/prod.sqlite3");
    let env_of = |p: &Project| {
        let doc = p.json(&["backup", "--dry-run", "--yes"], 0);
        doc["plan"]["environment"].as_str().unwrap().to_string()
    };
    assert_eq!(env_of(&p), "production");
    p.run(&["backup", "--dry-run", "--yes"])
        .code(0)
        .stdout_has("Environment: production (from default_environment)");
    // ENV_MODE over the config, from a dotenv file too.
    p.write(".env", "ENV_MODE=dev\n");
    assert_eq!(env_of(&p), "dev");
    fs::remove_file(p.path(".env")).unwrap();
    p.set_var("ENV_MODE", "dev");
    assert_eq!(env_of(&p), "dev");
    // FABER_ENV over both.
    p.set_var("FABER_ENV", "production");
    p.run(&["backup", "--dry-run", "--yes"])
        .code(0)
        .stdout_has("Environment: production (from FABER_ENV)");
    // A protected environment chosen by default still asks: without a terminal, exit 8.
    p.run(&["backup"]).code(8).stderr_has("needs confirmation");
    // A name given wins over all of them.
    let doc = p.json(&["backup", "dev", "--dry-run"], 0);
    assert_eq!(doc["plan"]["environment"], "dev");
    // It works for the other commands that take ENV.
    let id = p.backup(&["production", "--yes"]);
    let doc = p.json(&["restore", "--dry-run"], 0);
    assert_eq!(doc["plan"]["backup"], id.as_str());
    // A variable naming no environment is an error that says where the name came from.
    p.set_var("FABER_ENV", "qa");
    p.run(&["backup", "--dry-run"])
        .code(1)
        .stderr_has("FABER_ENV names environment `qa`")
        .stderr_has("dev, production");
}

#[test]
fn without_any_default_a_missing_environment_lists_them() {
    let p = Project::new().seeded("db/dev.sqlite3");
    p.run(&["backup"])
        .code(1)
        .stderr_has("error: no environment given")
        .stderr_has("dev, production")
        .stderr_has("FABER_ENV");
    assert!(!p.path(BACKUPS).exists());
    // A default that names no environment is a config error.
    let p = Project::with_config(&format!(
        "default_environment = \"qa\"\n{}",
        crate::harness::DEFAULT_CONFIG
    ));
    p.run(&["list"])
        .code(1)
        .stderr_has("default_environment = \"qa\" is not one of the environments");
}

#[test]
fn an_output_dir_is_never_swept_of_what_is_not_ours_and_a_killed_run_leaves_nothing_there() {
    let mut p = filled(300);
    p.at("2026-11-23T10:00:00Z");
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap().to_string();
    // Files of the user's in the output directory: one with a name like a backup's, two that look
    // like work files of other tools. None of them is faber-db's to remove.
    let taken = out.path().join("backup-20261123-100000.sqlite3.gz");
    let theirs = [
        out.path().join("backup-2024.tar.gz.partial"),
        out.path().join(".notes.123.tmp"),
    ];
    fs::write(&taken, "someone else's file").unwrap();
    for f in &theirs {
        fs::write(f, "keep me").unwrap();
    }
    // The name in use there is not reused: the ID gets a suffix.
    let id = p.backup(&["dev", "--output-dir", &dir]);
    assert_eq!(id, "backup-20261123-100000-2");
    assert_eq!(fs::read_to_string(&taken).unwrap(), "someone else's file");

    // Killed before its entry was written: the next run (any command) removes its partial file
    // in the output directory, and the claim it left in the environment's directory.
    let backup = ["backup", "dev", "--output-dir", &dir];
    crate::reliability::kill_at(&p, &backup, "backup:after-reserve");
    let partials = |d: &Path| {
        fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("backup-20261123-100000") && n.ends_with(".partial"))
            .collect::<Vec<_>>()
    };
    let env_dir = p.path(&format!("{BACKUPS}/dev"));
    assert_eq!(partials(out.path()).len(), 1, "{:?}", partials(out.path()));
    assert_eq!(partials(&env_dir).len(), 1, "{:?}", partials(&env_dir));
    p.run(&["list"])
        .code(0)
        .stderr_has("left by an interrupted run");
    assert!(
        partials(out.path()).is_empty(),
        "{:?}",
        partials(out.path())
    );
    assert!(partials(&env_dir).is_empty(), "{:?}", partials(&env_dir));

    // Killed after its entry was written: the next run finishes it in the output directory.
    crate::reliability::kill_at(&p, &backup, "backup:after-commit");
    p.run(&["list"]).code(0).stderr_has("finished");
    let last = p.ids().into_iter().max().unwrap();
    assert!(
        p.data_file(&last)
            .starts_with(out.path().canonicalize().unwrap())
    );
    assert!(p.data_file(&last).is_file());
    p.run(&["verify", &last]).code(0);
    assert!(partials(&env_dir).is_empty(), "{:?}", partials(&env_dir));

    for f in &theirs {
        assert_eq!(fs::read_to_string(f).unwrap(), "keep me", "{}", f.display());
    }

    // Inside the backup directory, only the environment's own directory is accepted.
    let other = p.path(&format!("{BACKUPS}/production"));
    p.run(&["backup", "dev", "--output-dir", other.to_str().unwrap()])
        .code(1)
        .stderr_has("inside the backup directory");
    let own = p.path(&format!("{BACKUPS}/dev/../dev"));
    p.run(&["backup", "dev", "--output-dir", own.to_str().unwrap()])
        .code(0);
}

#[test]
fn doctor_repair_finds_the_backups_of_output_dirs_again() {
    let p = filled(200);
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("copies");
    let id = p.backup(&["dev", "--output-dir", dir.to_str().unwrap()]);
    let here = p.backup(&["dev"]);
    // Another project writes to the same directory: its backups are not this registry's.
    let other = filled(100);
    let theirs = other.backup(&[
        "dev",
        "--output-dir",
        dir.to_str().unwrap(),
        "--label",
        "theirs",
    ]);
    fs::write(p.path(&format!("{BACKUPS}/backups.json")), "{ not json").unwrap();
    p.run(&["doctor", "--repair"])
        .stdout_has("Registry rebuilt");
    let mut ids = p.ids();
    ids.sort();
    let mut want = vec![id.clone(), here];
    want.sort();
    assert_eq!(ids, want);
    assert!(!p.ids().contains(&theirs));
    assert!(p.data_file(&id).starts_with(dir.canonicalize().unwrap()));
    p.run(&["verify", &id]).code(0);
    p.run(&["restore", "dev", "--from", &id, "--no-safety-backup"])
        .code(0);
}
