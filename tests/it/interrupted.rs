//! A migration cut short: faber-db stopped by a signal while the migrate command runs stops the
//! command's whole process group, records it and restores the pre-migration backup (exit 8); a
//! faber-db killed outright is reported by the next `status` until a restore or rollback.

use std::process::Stdio;

use crate::harness::{Project, process_alive, wait_for};

/// A migration tool that changes the database, says so (`migrating`, its pid in `tool.pid`,
/// and the pid of a helper it started in `helper.pid`), then takes its time.
const MIGRATE_SH: &str = r#"db="${DATABASE_URL#sqlite:}"
sqlite3 -bail "$db" "CREATE TABLE half_done (id integer)"
sleep 60 &
echo $! > helper.pid
echo $$ > tool.pid
touch migrating
wait
"#;

/// `dev` on SQLite with a pre-migration backup restored on failure, and the tool above.
fn project(rollback: bool) -> Project {
    let p = Project::with_config(&format!(
        "[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\nmigrate_command = \"sh ./migrate.sh\"\n\
         backup_before_migrate = true\nrollback_on_failure = {rollback}\n"
    ))
    .seeded("db/dev.sqlite3");
    p.write("migrate.sh", MIGRATE_SH);
    p
}

/// Starts `migrate dev` and waits until the tool is in the middle of its migration.
fn start(p: &Project) -> std::process::Child {
    let child = p
        .command(&["migrate", "dev", "--yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&p.path("migrating"));
    child
}

fn pid(p: &Project, file: &str) -> u32 {
    std::fs::read_to_string(p.path(file))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn has_half_done(p: &Project) -> bool {
    p.sqlite("db/dev.sqlite3")
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'half_done'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
        == 1
}

/// Waits up to 5 s for `pid` to be gone.
fn gone(pid: u32) -> bool {
    let started = std::time::Instant::now();
    while process_alive(pid) {
        if started.elapsed() > std::time::Duration::from_secs(5) {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    true
}

fn migrate_events(p: &Project) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p.path(&format!("{}/history.jsonl", crate::harness::BACKUPS)))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "migrate")
        .collect()
}

#[test]
fn sigterm_or_sighup_during_the_migrate_command_stops_it_records_it_and_restores() {
    for signal in [libc::SIGTERM, libc::SIGHUP, libc::SIGINT] {
        let p = project(true);
        let child = start(&p);
        let (tool, helper) = (pid(&p, "tool.pid"), pid(&p, "helper.pid"));
        assert!(has_half_done(&p), "the tool began");
        // SAFETY: a signal to the child this test started, which has not been waited for.
        assert_eq!(unsafe { libc::kill(child.id().cast_signed(), signal) }, 0);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(8), "signal {signal}: {stderr}");
        assert!(stderr.contains("error: interrupted"), "{stderr}");
        assert!(stderr.contains("was restored"), "{stderr}");
        assert!(gone(tool), "the migration tool was stopped");
        assert!(gone(helper), "and what it started");
        assert!(!has_half_done(&p), "the pre-migration backup was restored");
        let events = migrate_events(&p);
        let last = events.last().unwrap();
        assert_eq!(last["ok"], false, "{last}");
        assert_eq!(last["interrupted"], true, "{last}");
        assert!(
            last["id"].as_str().is_some_and(|id| p
                .backups()
                .iter()
                .any(|b| b["id"] == id && b["reason"] == "pre-migration")),
            "{last}"
        );
        // Finished: nothing for `status` to report.
        p.run(&["status", "dev"])
            .code(0)
            .stderr_lacks("half-migrated");
    }
}

#[test]
fn sigterm_without_rollback_on_failure_says_the_database_is_as_the_tool_left_it() {
    let p = project(false);
    let child = start(&p);
    let tool = pid(&p, "tool.pid");
    // SAFETY: a signal to the child this test started, which has not been waited for.
    assert_eq!(
        unsafe { libc::kill(child.id().cast_signed(), libc::SIGTERM) },
        0
    );
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    assert!(stderr.contains("error: interrupted"), "{stderr}");
    assert!(gone(tool));
    assert!(has_half_done(&p), "nothing was restored");
    // `status` says so, and names the backup to go back to.
    let id = migrate_events(&p).last().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    p.run(&["status", "dev"])
        .code(0)
        .stderr_has("database may be half-migrated")
        .stderr_has(&format!("faber-db rollback dev --to {id}"));
}

#[test]
fn a_killed_migrate_is_reported_by_status_until_a_rollback() {
    let p = project(true);
    let mut child = start(&p);
    let helper = pid(&p, "helper.pid");
    child.kill().unwrap();
    child.wait().unwrap();
    let id = p
        .backups()
        .iter()
        .find(|b| b["reason"] == "pre-migration")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    p.run(&["status", "dev"])
        .code(0)
        .stderr_has("migrate interrupted at")
        .stderr_has("database may be half-migrated")
        .stderr_has(&format!("faber-db rollback dev --to {id}"));
    let doc = p.json(&["status", "dev"], 0);
    let interrupted = &doc["environments"][0]["interrupted"];
    assert_eq!(interrupted["event"], "migrate", "{doc}");
    assert_eq!(interrupted["backup"], id.as_str(), "{doc}");
    // The tool's helper outlived faber-db and holds the environment: the refusal names it.
    assert!(process_alive(helper));
    p.run(&["rollback", "dev", "--to", &id, "--yes"])
        .code(7)
        .stderr_has(&format!("{helper}"))
        .stderr_has("sleep");
    // SAFETY: ends the helper this test's tool started.
    unsafe { libc::kill(helper.cast_signed(), libc::SIGKILL) };
    assert!(gone(helper));
    p.run(&["rollback", "dev", "--to", &id, "--yes"]).code(0);
    assert!(!has_half_done(&p));
    p.run(&["status", "dev"])
        .code(0)
        .stderr_lacks("half-migrated");
}

#[test]
fn a_failed_migrate_killed_before_its_restore_is_reported() {
    let p = project(true);
    p.write("migrate.sh", &MIGRATE_SH.replace("sleep 60 &", "exit 3"));
    let out = p
        .paused_at(&["migrate", "dev", "--yes"], "migrate:before-restore")
        .signal(libc::SIGKILL);
    assert_eq!(out.status.code(), None);
    assert!(has_half_done(&p));
    p.run(&["status", "dev"])
        .code(0)
        .stderr_has("database may be half-migrated")
        .stderr_has("faber-db rollback dev --to ");
    // A successful migrate clears it too; it must be asked to go on from the half-migrated
    // database, and its backup to go back to stays the one taken before the failed run.
    p.write("migrate.sh", "true\n");
    let before = p.backups();
    let pre = before
        .iter()
        .find(|b| b["reason"] == "pre-migration")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    p.run(&["migrate", "dev", "--yes"])
        .code(8)
        .stderr_has("was not undone")
        .stderr_has(&format!("faber-db --yes rollback dev --to {pre}"))
        .stderr_has("faber-db --yes migrate dev --resume");
    assert_eq!(p.backups(), before, "refused before any backup");
    let doc = p.json(&["migrate", "dev", "--yes", "--resume"], 0);
    assert_eq!(doc["backup"]["id"], pre.as_str(), "{doc}");
    assert_eq!(
        p.backups(),
        before,
        "no backup of the half-migrated database"
    );
    p.run(&["status", "dev"])
        .code(0)
        .stderr_lacks("half-migrated");
    p.run(&["migrate", "dev", "--yes"]).code(0);
}

#[test]
fn a_resumed_migrate_that_fails_restores_the_backup_from_before_the_first_run() {
    let p = project(true);
    let mut child = start(&p);
    let helper = pid(&p, "helper.pid");
    child.kill().unwrap();
    child.wait().unwrap();
    // SAFETY: ends the helper this test's tool started.
    unsafe { libc::kill(helper.cast_signed(), libc::SIGKILL) };
    assert!(gone(helper));
    assert!(has_half_done(&p));
    let pre = p.backups()[0]["id"].as_str().unwrap().to_string();
    // A dry run says what did not finish, changes nothing, and fails as the run would.
    p.run(&["migrate", "dev", "--dry-run"])
        .code(8)
        .stderr_has("database may be half-migrated")
        .stderr_has("faber-db migrate dev --resume");
    p.run(&["migrate", "dev", "--dry-run", "--resume"]).code(0);
    assert_eq!(p.backups().len(), 1, "nothing was backed up");
    p.write("migrate.sh", "exit 4\n");
    let doc = p.json(&["migrate", "dev", "--yes", "--resume"], 9);
    assert_eq!(doc["backup"]["id"], pre.as_str(), "{doc}");
    assert_eq!(doc["rolled_back"], true, "{doc}");
    assert!(
        !has_half_done(&p),
        "back to the database before the first run"
    );
    assert!(
        !p.backups()
            .iter()
            .any(|b| b["reason"] == "pre-migration" && b["id"] != pre.as_str()),
        "no second pre-migration backup"
    );
}
