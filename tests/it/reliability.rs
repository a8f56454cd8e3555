//! Faults: a second run of the same environment, killed runs, full disks, interrupts.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::{Project, wait_for};

/// A dev environment whose migrate command takes `secs` seconds (writing `started` first).
fn slow_migrate_project(secs: u32) -> Project {
    Project::with_config(&format!(
        "[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\nmigrate_command = \"touch started; sleep {secs}\"\n"
    ))
    .seeded("db/dev.sqlite3")
}

/// Starts `migrate dev` in the background and waits until its command runs.
fn start_migration(p: &Project) -> std::process::Child {
    let child = p
        .command(&["migrate", "dev"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&p.path("started"));
    child
}

#[test]
fn a_second_restore_rollback_or_migrate_of_an_environment_is_busy_at_once_or_waits() {
    let p = slow_migrate_project(4);
    let id = p.backup(&["dev"]);
    let mut migrate = start_migration(&p);
    for args in [
        vec!["restore", "dev", "--from", id.as_str()],
        vec!["rollback", "dev", "--to", id.as_str()],
        vec!["migrate", "dev"],
    ] {
        let started = Instant::now();
        p.run(&args)
            .code(7)
            .stderr_has("another restore, rollback or migrate of `dev` is running");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{args:?} waited"
        );
    }
    // Backups of the same environment are not in the way, and --wait waits its turn.
    p.backup(&["dev", "--label", "meanwhile"]);
    let started = Instant::now();
    p.run(&["restore", "dev", "--from", &id, "--wait", "30s"])
        .code(0);
    assert!(
        started.elapsed() > Duration::from_secs(1),
        "it waited for the migration"
    );
    assert!(migrate.wait().unwrap().success());
}

#[test]
fn the_lock_of_a_killed_run_never_blocks() {
    let p = Project::new().seeded("db/dev.sqlite3");
    let id = p.backup(&["dev"]);
    // A restore killed while it holds the environment's lock (just before its commit).
    kill_at(
        &p,
        &["restore", "dev", "--from", &id],
        "restore:before-commit",
    );
    let started = Instant::now();
    p.run(&["restore", "dev", "--from", &id]).code(0);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn doctor_reports_a_damaged_backup_with_exit_5() {
    let p = Project::new()
        .seeded("db/dev.sqlite3")
        .seeded("db/prod.sqlite3");
    let good = p.backup(&["dev"]);
    let cut = p.backup(&["dev"]);
    p.run(&["doctor"]).code(0);
    // A file cut short: doctor sees it from its size, without reading it.
    let file = p.data_file(&cut);
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    p.run(&["doctor"])
        .code(5)
        .stdout_has(&cut)
        .stdout_has(&format!(
            "it was written with; `faber-db verify {cut}` tells whether it is damaged"
        ))
        .stderr_has("doctor found 1 problem\n");
    // Once verify has marked it corrupt, doctor says so.
    p.run(&["verify", &cut]).code(5);
    p.run(&["doctor"])
        .code(5)
        .stdout_has(&format!(
            "it is marked corrupt; `faber-db verify {cut}` checks it again"
        ))
        .stdout_lacks(&format!("backup {good}:"));
}

#[test]
fn doctor_finds_what_is_wrong_and_repair_rebuilds_the_registry_from_the_manifests() {
    let p = Project::new()
        .seeded("db/dev.sqlite3")
        .seeded("db/prod.sqlite3");
    let a = p.backup(&["dev", "--label", "a"]);
    let b = p.backup(&["dev", "--label", "b"]);
    let c = p.backup(&["dev", "--label", "c"]);
    p.run(&["doctor"]).code(0).stdout_has("registry: 3 entries");

    // A truncated registry: every command stops with exit 1 and leaves it as it is.
    let reg = p.path(&format!("{}/backups.json", crate::harness::BACKUPS));
    let good = std::fs::read_to_string(&reg).unwrap();
    let garbage = &good[..good.len() / 2];
    std::fs::write(&reg, garbage).unwrap();
    p.run(&["list"]).code(1).stderr_has("malformed");
    assert_eq!(std::fs::read_to_string(&reg).unwrap(), garbage);
    // One backup's file is gone, and a stray data file lies about.
    std::fs::remove_file(p.data_file_from_manifest(&c)).unwrap();
    p.write(
        &format!(
            "{}/dev/backup-20200101-000000.sql.gz",
            crate::harness::BACKUPS
        ),
        "stray",
    );
    p.run(&["doctor"])
        .code(5)
        .stdout_has("malformed")
        .stderr_has("backup-20200101-000000.sql.gz is neither registered")
        .stderr_has("doctor --repair");

    let doc = p.json(&["doctor", "--repair"], 0);
    assert_eq!(doc["repaired"], true, "{doc}");
    let kept: Vec<_> = std::fs::read_dir(p.path(crate::harness::BACKUPS))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("backups.json.corrupt-"))
        .collect();
    assert_eq!(kept.len(), 1, "the malformed registry is kept aside");
    let aside = p.path(&format!("{}/{}", crate::harness::BACKUPS, kept[0]));
    assert_eq!(std::fs::read_to_string(aside).unwrap(), garbage);
    let status = |id: &str| {
        p.backups()
            .into_iter()
            .find(|e| e["id"] == id)
            .map(|e| e["status"].as_str().unwrap().to_string())
    };
    assert_eq!(status(&a).as_deref(), Some("valid"));
    assert_eq!(status(&b).as_deref(), Some("valid"));
    assert_eq!(status(&c).as_deref(), Some("missing"));
    p.run(&["list"]).code(0).stdout_has("missing");
    p.run(&["verify", &a]).code(0);
    // Now only the stray file is left to mention.
    p.run(&["doctor"]).code(0).stderr_has("neither registered");
    // A registered backup whose manifest is gone is reported, and repair writes it again.
    let manifest = p.data_file(&a).with_file_name(format!("{a}.manifest.json"));
    std::fs::remove_file(&manifest).unwrap();
    p.run(&["doctor"])
        .code(5)
        .stdout_has("its manifest is gone");
    p.run(&["doctor", "--repair"]).code(0);
    let rewritten: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    assert_eq!(rewritten["id"], a.as_str());
    // A repair fixes the registry, not the rest: an unreachable database is still exit 5.
    std::fs::remove_file(p.path("db/prod.sqlite3")).unwrap();
    std::fs::remove_file(p.data_file(&b)).unwrap();
    p.run(&["doctor", "--repair"])
        .code(5)
        .stdout_has("Registry rebuilt")
        .stderr_has("1 problem the repair does not fix");
    assert_eq!(status(&b).as_deref(), Some("missing"));
    // A registry from a newer faber-db is reported, never rewritten.
    let newer = "{\"version\": 99, \"backups\": []}\n";
    std::fs::write(&reg, newer).unwrap();
    p.run(&["doctor", "--repair"])
        .code(5)
        .stdout_has("upgrade faber-db");
    assert_eq!(std::fs::read_to_string(&reg).unwrap(), newer);
}

/// Starts `args` paused at test point `point`, waits until it is there, and kills it (SIGKILL).
pub fn kill_at(p: &Project, args: &[&str], point: &str) {
    p.paused_at(args, point).signal(libc::SIGKILL);
}

/// The registry parses, whatever happened.
fn registry_is_valid(p: &Project) {
    let path = p.path(&format!("{}/backups.json", crate::harness::BACKUPS));
    if let Ok(text) = std::fs::read_to_string(&path) {
        serde_json::from_str::<serde_json::Value>(&text).expect("valid JSON");
    }
}

/// Kills a backup at each point before its registry entry is written: nothing is registered,
/// no final-named file appears, and the next run removes what is left and says so.
pub fn killed_before_the_commit_leaves_nothing(p: &Project, env: &str, extra: &[&str]) {
    killed_at_points_leaves_nothing(
        p,
        env,
        extra,
        &[
            "backup:after-reserve",
            "backup:before-publish",
            "backup:after-manifest",
        ],
    );
}

/// Kills a backup at each of `points`: nothing is registered, no final-named file appears, and
/// the next run removes what is left and says so.
pub fn killed_at_points_leaves_nothing(p: &Project, env: &str, extra: &[&str], points: &[&str]) {
    for &point in points {
        let before = p.ids();
        let mut args = vec!["backup", env];
        args.extend_from_slice(extra);
        kill_at(p, &args, point);
        registry_is_valid(p);
        assert_eq!(p.ids(), before, "{point}: nothing registered");
        let left = p.backup_files();
        assert!(
            left.iter().any(|f| f.contains(".partial")),
            "{point}: a .partial is left for the next run: {left:?}"
        );
        p.run(&["list"])
            .code(0)
            .stderr_has("left by an interrupted run");
        let names: Vec<String> = p
            .backup_files()
            .into_iter()
            .filter(|f| f.starts_with(&format!("{env}/")))
            .collect();
        let expected: Vec<String> = before
            .iter()
            .flat_map(|id| {
                let data = p.data_file(id);
                let rel = |path: std::path::PathBuf| {
                    path.strip_prefix(p.path(crate::harness::BACKUPS))
                        .unwrap()
                        .display()
                        .to_string()
                };
                let manifest = rel(data.with_file_name(format!("{id}.manifest.json")));
                if data.is_dir() {
                    std::fs::read_dir(&data)
                        .unwrap()
                        .flatten()
                        .map(|e| rel(e.path()))
                        .chain([manifest])
                        .collect::<Vec<_>>()
                } else {
                    vec![rel(data), manifest]
                }
            })
            .collect();
        let mut expected = expected;
        expected.sort();
        assert_eq!(names, expected, "{point}: only the earlier backups remain");
    }
}

/// Kills a backup just after its entry was written: the next run finishes moving its data to the
/// final name, and it verifies.
pub fn killed_after_the_commit_is_finished_by_the_next_run(p: &Project, env: &str, extra: &[&str]) {
    let before = p.ids();
    let mut args = vec!["backup", env];
    args.extend_from_slice(extra);
    kill_at(p, &args, "backup:after-commit");
    registry_is_valid(p);
    let new: Vec<String> = p
        .ids()
        .into_iter()
        .filter(|i| !before.contains(i))
        .collect();
    assert_eq!(new.len(), 1, "the entry was written");
    assert!(
        !p.data_file(&new[0]).exists(),
        "not yet under its final name"
    );
    p.run(&["list"])
        .code(0)
        .stderr_has("finished")
        .stderr_has("registered when its run was interrupted");
    assert!(p.data_file(&new[0]).exists());
    assert!(!p.backup_files().iter().any(|f| f.contains(".partial")));
    p.run(&["verify", &new[0]]).code(0);
}

#[test]
fn sqlite_backups_killed_at_each_step_leave_a_consistent_state() {
    let p = Project::new().seeded("db/dev.sqlite3");
    p.backup(&["dev"]);
    // In the middle of the dump: the working snapshot is taken, the backup file not yet written.
    killed_at_points_leaves_nothing(&p, "dev", &[], &["backup:during-dump"]);
    killed_before_the_commit_leaves_nothing(&p, "dev", &[]);
    killed_after_the_commit_is_finished_by_the_next_run(&p, "dev", &[]);
}

#[test]
fn hostile_names_labels_and_ids_are_refused_and_nothing_runs() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let p = Project::new().seeded("db/dev.sqlite3");
    let id = p.backup(&["dev"]);
    let long = "x".repeat(10 * 1024);
    let hostile: Vec<&str> = vec![
        "../../outside",
        "/etc/passwd",
        "a/../../b",
        "new\nline",
        "$(touch pwned)",
        "`touch pwned`",
        "; touch pwned",
        "x|touch pwned",
        &long,
    ];
    for bad in &hostile {
        for args in [
            vec!["backup", bad],
            vec!["backup", "dev", "--label", bad],
            vec!["backup", "dev", "--reason", bad],
            vec!["restore", bad, "--yes"],
            vec!["restore", "dev", "--from", bad, "--yes"],
            vec!["verify", bad],
            vec!["delete", bad, "--yes"],
            vec!["diff", bad],
            vec!["rollback", "dev", "--to", bad, "--yes"],
            vec!["list", bad],
            vec!["status", bad],
            vec!["cleanup", bad, "--expired", "--yes"],
        ] {
            let run = p.run(&args).code(1);
            assert!(
                run.stderr.starts_with("error: "),
                "{args:?}: {}",
                run.stderr
            );
            assert!(
                run.stderr.len() < 4 * 1024,
                "{args:?}: the error repeats the input whole"
            );
        }
    }
    // Bytes that are not UTF-8 never reach a file name.
    for bytes in [&b"\xff\xfe"[..], &b"dev\xc0"[..]] {
        let out = p
            .command(&["backup"])
            .arg(OsStr::from_bytes(bytes))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let out = p
            .command(&["backup", "dev", "--label"])
            .arg(OsStr::from_bytes(bytes))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
    }
    assert!(!p.path("pwned").exists(), "nothing was executed");
    assert!(!p.path("outside").exists());
    assert_eq!(p.ids(), [id]);
    // Everything faber-db wrote is under the backup directory.
    let mut stray = Vec::new();
    for entry in std::fs::read_dir(p.root()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if ![".fractary", "db"].contains(&name.as_str()) {
            stray.push(name);
        }
    }
    assert!(stray.is_empty(), "{stray:?}");
}

/// A restore killed just before it changes the database: the database is untouched, the safety
/// backup exists, `status` says the restore was interrupted and how to finish it, and doing so
/// clears the warning.
/// Kills a restore just before its commit: the database is untouched, `status` reports the
/// restore as unfinished and says where the data from before is — the safety backup taken first
/// (`safety_first`), or, where it is taken of the data the swap sets aside, that nothing was set
/// aside yet — and a new restore finishes it.
pub fn killed_restore_is_reported_and_can_be_finished(
    p: &Project,
    env: &str,
    id: &str,
    untouched: &dyn Fn() -> bool,
    safety_first: bool,
) {
    kill_at(
        p,
        &["restore", env, "--from", id, "--yes"],
        "restore:before-commit",
    );
    registry_is_valid(p);
    assert!(untouched(), "the database is as it was");
    assert_eq!(
        p.backups().iter().any(|b| b["reason"] == "pre-restore"),
        safety_first,
        "a safety backup is taken first only where the swap sets nothing aside"
    );
    p.run(&["status", env])
        .code(0)
        .stderr_has("did not finish")
        .stderr_has(&format!("faber-db restore {env} --from {id}"))
        .stderr_has(if safety_first {
            "holds the data from before"
        } else {
            "set aside at the swap for its safety backup"
        });
    let doc = p.json(&["status", env], 0);
    assert_eq!(doc["environments"][0]["interrupted"]["backup"], id);
    p.run(&["restore", env, "--from", id, "--yes"]).code(0);
    let after = p.run(&["status", env]).code(0);
    assert!(!after.stderr.contains("did not finish"), "{}", after.stderr);
}

#[test]
fn a_killed_sqlite_restore_leaves_the_old_database_and_says_how_to_finish() {
    let p = Project::new().seeded("db/dev.sqlite3");
    let id = p.backup(&["dev"]);
    p.sqlite("db/dev.sqlite3")
        .execute("INSERT INTO t VALUES (2)", [])
        .unwrap();
    let before = std::fs::read(p.path("db/dev.sqlite3")).unwrap();
    let untouched = || std::fs::read(p.path("db/dev.sqlite3")).unwrap() == before;
    // A restore that fails before it changes anything says nothing about the interrupted one.
    let broken = p.backup(&["dev", "--label", "broken"]);
    let data = p.data_file(&broken);
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();
    kill_at(
        &p,
        &["restore", "dev", "--from", &id, "--yes"],
        "restore:before-commit",
    );
    p.run(&["restore", "dev", "--from", &broken]).code(5);
    p.run(&["status", "dev"])
        .code(0)
        .stderr_has("did not finish");
    killed_restore_is_reported_and_can_be_finished(&p, "dev", &id, &untouched, true);
    let rows: i64 = p
        .sqlite("db/dev.sqlite3")
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1, "restored");
}

#[test]
fn backups_cleanups_and_deletes_at_once_lose_nothing_and_leave_nothing_dangling() {
    let p = std::sync::Arc::new(Project::new().seeded("db/dev.sqlite3"));
    let early: Vec<String> = (0..4)
        .map(|i| p.backup(&["dev", "--label", &format!("early{i}")]))
        .collect();
    let mut handles = Vec::new();
    for i in 0..6 {
        let p = p.clone();
        handles.push(std::thread::spawn(move || {
            p.run(&["backup", "dev", "--label", &format!("late{i}")])
                .code(0);
        }));
    }
    for id in &early[..2] {
        let (p, id) = (p.clone(), id.clone());
        handles.push(std::thread::spawn(move || {
            // A cleanup may have removed it first: then the delete finds nothing (exit 1).
            let run = p.run(&["delete", &id, "--yes", "--force"]);
            assert!(run.code == 0 || run.code == 1, "{run:?}");
        }));
    }
    for _ in 0..2 {
        let p = p.clone();
        handles.push(std::thread::spawn(move || {
            let run = p.run(&["cleanup", "dev", "--keep-last", "5", "--yes"]);
            assert!(run.code == 0 || run.code == 1, "{run:?}");
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    // Every entry has its data and manifest; every data file and manifest has its entry.
    let entries = p.backups();
    let mut expected: Vec<String> = Vec::new();
    for b in &entries {
        let id = b["id"].as_str().unwrap();
        let file = b["file"].as_str().unwrap().to_string();
        assert!(p.data_file(id).exists(), "{id} lost its data");
        expected.push(file.clone());
        expected.push(format!("dev/{id}.manifest.json"));
    }
    expected.sort();
    let files: Vec<String> = p
        .backup_files()
        .into_iter()
        .filter(|f| f.starts_with("dev/"))
        .collect();
    assert_eq!(files, expected, "no dangling files, no dangling entries");
    assert!(
        entries.len() >= 5,
        "cleanup keeps the newest five: {}",
        entries.len()
    );
    for id in early.iter().take(2) {
        assert!(
            !entries.iter().any(|b| b["id"] == id.as_str()),
            "{id} was deleted"
        );
    }
    p.run(&["verify", "--all"]).code(0);
}

#[test]
fn everything_written_is_private_even_under_a_permissive_umask() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let p = Project::new().seeded("db/dev.sqlite3");
    let run = |args: &[&str]| {
        let mut cmd = p.command(args);
        // SAFETY: umask is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::umask(0);
                Ok(())
            });
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["backup", "dev", "--compression", "zstd"]);
    run(&["backup", "dev", "--label", "second"]);
    let id = p.ids()[0].clone();
    run(&["verify", "--all"]);
    run(&["restore", "dev", "--from", &id]);
    run(&["cleanup", "dev", "--keep-last", "2"]);
    let mut checked = 0;
    let mut stack = vec![p.path(crate::harness::BACKUPS)];
    while let Some(dir) = stack.pop() {
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", dir.display());
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", path.display());
            checked += 1;
        }
    }
    assert!(
        checked >= 7,
        "registry, lock files, history, data and manifests: {checked}"
    );
}

#[test]
fn ctrl_c_during_a_restores_safety_backup_stops_it_before_the_database_changes() {
    let p = Project::new().seeded("db/dev.sqlite3");
    let id = p.backup(&["dev"]);
    p.sqlite("db/dev.sqlite3")
        .execute("INSERT INTO t VALUES (2)", [])
        .unwrap();
    let before = std::fs::read(p.path("db/dev.sqlite3")).unwrap();
    let out = p
        .paused_at(&["restore", "dev", "--from", &id], "backup:before-publish")
        .signal(libc::SIGINT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(
        std::fs::read(p.path("db/dev.sqlite3")).unwrap(),
        before,
        "the database was not replaced"
    );
}

#[test]
fn a_migration_left_running_by_a_killed_faber_db_still_holds_the_environment() {
    let p = slow_migrate_project(3);
    let id = p.backup(&["dev"]);
    let mut migrate = start_migration(&p);
    migrate.kill().unwrap();
    migrate.wait().unwrap();
    // faber-db is gone, its migration's `sleep` is not: the environment is still busy.
    p.run(&["restore", "dev", "--from", &id]).code(7);
    let started = Instant::now();
    p.run(&["restore", "dev", "--from", &id, "--wait", "30s"])
        .code(0);
    assert!(
        started.elapsed() > Duration::from_millis(500),
        "it waited for the migration"
    );
}
