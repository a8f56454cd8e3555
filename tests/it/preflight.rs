//! The pre-flight of `restore`, `rollback` and `migrate` (issue 18): what would stop the run is
//! found before anything changes — no scratch load, no safety backup, no migration — with a hint
//! that is the command that works. Against the real PostgreSQL and MariaDB servers, with an
//! application session held open the way an app holds its pool.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{BACKUPS, Project};
use crate::mysql::{self, MyDb};
use crate::postgres::{self, PgDb};
use crate::release;

/// An application's session on a database, held open until dropped.
pub struct App(Child);

impl App {
    /// A psql session on `db` that sleeps a minute, once the server lists it.
    pub fn on_postgres(db: &PgDb) -> App {
        let child = Command::new("psql")
            .args(["-X", "-q", &db.url(), "-c", "SELECT pg_sleep(60)"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while postgres::db_sessions(db) == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the app never connected"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        App(child)
    }

    /// A mysql client session on `db` that sleeps a minute, once the server lists it.
    fn on_mysql(db: &MyDb) -> App {
        let child = Command::new("mysql")
            .args(["-h", "127.0.0.1", "-u", "root"])
            .arg(format!("--database={}", db.name))
            .args(["-e", "SELECT SLEEP(60)"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        mysql::wait_for_session(&db.name);
        App(child)
    }

    /// Whether the app's client ended (its session was ended by the server), within 10 s.
    fn ended(&mut self) -> bool {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if self.0.try_wait().unwrap().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lines of the project's audit log.
fn history(p: &Project) -> Vec<String> {
    std::fs::read_to_string(p.path(&format!("{BACKUPS}/history.jsonl")))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The check named `name` of a report's `preflight`.
fn check<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["preflight"]["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no preflight checks in {doc}"))
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {doc}"))
}

/// PostgreSQL databases whose name starts with `db`'s, other than `db` (its scratch copies).
fn pg_scratch_databases(db: &PgDb) -> String {
    postgres::psql(
        &postgres::admin_url(),
        &format!(
            "SELECT string_agg(datname, ',') FROM pg_database WHERE starts_with(datname, '{0}') AND datname <> '{0}'",
            db.name
        ),
    )
}

/// The files of the backup directory, but the lock files a run leaves (empty, kept for the next).
fn data_files(p: &Project) -> Vec<String> {
    p.backup_files()
        .into_iter()
        .filter(|f| !f.ends_with(".lock"))
        .collect()
}

/// A restore refused in pre-flight did nothing at all: no file, no registry entry, no audit
/// event, no scratch load (whose lines it would have printed).
fn assert_refused_before_anything(p: &Project, run: &crate::harness::Run, files: &[String]) {
    assert_eq!(data_files(p), files, "a file was written: {run:?}");
    for line in ["Checksum of", "Staged and checked"] {
        assert!(
            !run.stdout.contains(line),
            "got as far as {line:?}: {run:?}"
        );
    }
}

#[test]
fn pg_restore_with_an_app_connected_stops_in_preflight_before_loading_or_backing_up() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("pfbusy");
    db.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2);");
    let p = postgres::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    db.exec("DELETE FROM t");
    let files = data_files(&p);
    let events = history(&p).len();
    let mut app = App::on_postgres(&db);

    let run = p
        .run(&["restore", "dev", "--yes"])
        .code(7)
        .stderr_has("1 other session connected to")
        .stderr_has("psql")
        // The exact command that works: the backup `latest` chose, by its ID.
        .stderr_has(&format!(
            "`faber-db --yes restore dev --from {id} --terminate-connections`"
        ));
    assert_refused_before_anything(&p, &run, &files);
    assert_eq!(history(&p).len(), events, "nothing happened to log");
    assert_eq!(pg_scratch_databases(&db), "", "no scratch database");
    assert_eq!(
        db.exec("SELECT count(*) FROM t"),
        "0",
        "nothing was restored"
    );

    // The same in --json: the failing check, the error, nothing restored.
    let doc = p.json(&["restore", "dev", "--from", &id, "--yes"], 7);
    assert_eq!(doc["restored"], false, "{doc}");
    assert_eq!(doc["error"]["kind"], "busy", "{doc}");
    assert_eq!(check(&doc, "sessions")["ok"], false, "{doc}");
    assert_eq!(check(&doc, "connection")["ok"], true, "{doc}");
    assert_eq!(data_files(&p), files);

    // The hint's command goes through, ending the app's session.
    let doc = p.json(
        &[
            "restore",
            "dev",
            "--from",
            &id,
            "--yes",
            "--terminate-connections",
        ],
        0,
    );
    assert_eq!(check(&doc, "sessions")["ok"], true, "{doc}");
    assert_eq!(db.exec("SELECT count(*) FROM t"), "2");
    assert!(doc["safety_backup"].is_string(), "{doc}");
    assert!(app.ended(), "the app's session was ended");
}

#[test]
fn mysql_restore_with_an_app_connected_stops_in_preflight_before_loading_or_backing_up() {
    if !mysql::server_up() {
        return;
    }
    let db = MyDb::new("pfbusy");
    db.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2), (3);");
    let p = mysql::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    db.exec("DELETE FROM t");
    let files = data_files(&p);
    let events = history(&p).len();
    let mut app = App::on_mysql(&db);

    let run = p
        .run(&["restore", "dev", "--from", &id, "--yes", "--jobs", "1"])
        .code(7)
        .stderr_has("1 other session connected to")
        // The options that change what it does are kept.
        .stderr_has(&format!(
            "`faber-db --yes restore dev --from {id} --jobs 1 --terminate-connections`"
        ));
    assert_refused_before_anything(&p, &run, &files);
    assert_eq!(history(&p).len(), events, "nothing happened to log");
    let scratch = mysql::mysql(
        None,
        &format!(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '{}\\_\\_faber%'",
            db.name
        ),
    );
    assert_eq!(scratch, "0", "no scratch database");
    assert_eq!(
        db.exec("SELECT COUNT(*) FROM t"),
        "0",
        "nothing was restored"
    );

    p.run(&[
        "restore",
        "dev",
        "--from",
        &id,
        "--yes",
        "--terminate-connections",
    ])
    .code(0);
    assert_eq!(db.exec("SELECT COUNT(*) FROM t"), "3");
    assert!(app.ended(), "the app's session was ended");
}

#[test]
fn pg_restore_dry_run_shows_the_failing_sessions_check_and_fails_like_the_run() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("pfdry");
    db.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1);");
    let p = postgres::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    let files = data_files(&p);
    let _app = App::on_postgres(&db);

    let doc = p.json(&["restore", "dev", "--from", &id, "--dry-run"], 7);
    assert_eq!(doc["dry_run"], true, "{doc}");
    assert!(
        doc["plan"]["safety_backup"].is_object(),
        "the plan is there: {doc}"
    );
    assert_eq!(doc["preflight"]["ok"], false, "{doc}");
    let sessions = check(&doc, "sessions");
    assert_eq!(sessions["ok"], false, "{doc}");
    assert!(
        sessions["detail"]
            .as_str()
            .unwrap()
            .contains("1 other session connected to"),
        "{doc}"
    );
    for name in ["connection", "tools", "space"] {
        assert_eq!(check(&doc, name)["ok"], true, "{name}: {doc}");
    }
    assert!(
        check(&doc, "tools")["detail"]
            .as_str()
            .unwrap()
            .contains("pg_restore"),
        "{doc}"
    );
    assert_eq!(doc["error"]["kind"], "busy", "{doc}");
    // Human: a ✗ line for the sessions, the plan, the hint.
    p.run(&["restore", "dev", "--from", &id, "--dry-run"])
        .code(7)
        .stdout_has("Pre-flight:")
        .stdout_has("✗  sessions")
        .stdout_has("✓  space")
        .stdout_has("Dry run: nothing was changed.")
        .stderr_has("--terminate-connections");
    // With the flag, the dry run passes and says they would be ended.
    let doc = p.json(
        &[
            "restore",
            "dev",
            "--from",
            &id,
            "--dry-run",
            "--terminate-connections",
        ],
        0,
    );
    assert_eq!(doc["preflight"]["ok"], true, "{doc}");
    assert!(
        check(&doc, "sessions")["detail"]
            .as_str()
            .unwrap()
            .contains("will be ended"),
        "{doc}"
    );
    // A rollback's dry run says the same.
    let doc = p.json(&["rollback", "dev", "--to", &id, "--dry-run"], 7);
    assert_eq!(check(&doc, "sessions")["ok"], false, "{doc}");
    assert!(
        doc["error"]["hint"].as_str().unwrap().contains(&format!(
            "faber-db rollback dev --to {id} --terminate-connections"
        )),
        "{doc}"
    );
    assert_eq!(data_files(&p), files, "a dry run writes nothing");
    assert_eq!(db.exec("SELECT count(*) FROM t"), "1");
}

#[test]
fn pg_restore_without_room_for_its_safety_backup_stops_before_loading() {
    if !postgres::server_up() {
        return;
    }
    let Some(fs) = crate::services::Tmpfs::mount("8m") else {
        return;
    };
    let db = PgDb::new("pfspace");
    db.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2);");
    let backups = fs.dir.path().join("backups");
    let p = postgres::project_with(&[("dev", &db)]);
    p.use_backup_dir(&backups);
    let id = p.json(&["backup", "dev"], 0)["backup"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    db.exec("DELETE FROM t");
    // The disk fills up: 1 MiB is left, less than the safety backup asks for (half the
    // database's size, plus 1 MiB).
    let free = fs4::available_space(fs.dir.path()).unwrap();
    std::fs::write(
        fs.dir.path().join("filler"),
        vec![1u8; usize::try_from(free - (1 << 20)).unwrap()],
    )
    .unwrap();
    let files: Vec<_> = list(&backups.join("dev"));

    let run = p
        .run(&["restore", "dev", "--from", &id, "--yes"])
        .code(2)
        .stderr_has("not enough free space")
        .stderr_has("for the pre-restore safety backup")
        .stderr_has("faber-db --yes cleanup dev --expired")
        .stderr_has("--no-safety-backup");
    for line in ["Checksum of", "Staged and checked"] {
        assert!(
            !run.stdout.contains(line),
            "got as far as {line:?}: {run:?}"
        );
    }
    assert_eq!(list(&backups.join("dev")), files, "nothing was written");
    assert_eq!(pg_scratch_databases(&db), "");
    assert_eq!(
        db.exec("SELECT count(*) FROM t"),
        "0",
        "nothing was restored"
    );
    // The dry run says the same, and why.
    let doc = p.json(&["restore", "dev", "--from", &id, "--dry-run"], 2);
    assert_eq!(check(&doc, "space")["ok"], false, "{doc}");
    assert_eq!(check(&doc, "sessions")["ok"], true, "{doc}");
    // Without a safety backup, it needs no room.
    p.run(&[
        "restore",
        "dev",
        "--from",
        &id,
        "--yes",
        "--no-safety-backup",
    ])
    .code(0);
    assert_eq!(db.exec("SELECT count(*) FROM t"), "2");
}

fn list(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The release project of tests/it/release.rs on a PostgreSQL database of its own, with
/// migrations 1 and 2 applied and two users; a marker file `migrate-ran` is touched by every
/// run of its migrate command after that.
fn migrated(db: &PgDb) -> Project {
    let p = release::release_project(&db.url(), release::PG_TOOLS);
    p.json(&["migrate", "production", "--yes"], 0);
    db.exec("INSERT INTO users (id, name) VALUES (1, 'ada'), (2, 'bob')");
    let script = std::fs::read_to_string(p.path("migrate.sh")).unwrap();
    p.write(
        "migrate.sh",
        &script.replacen("set -e\n", "set -e\ntouch migrate-ran\n", 1),
    );
    p
}

#[test]
fn pg_migrate_with_an_app_connected_restores_after_a_failure_ending_its_sessions_by_default() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("pfmig");
    let p = migrated(&db);
    let state = || format!("{}\n{:?}", db.schema(), db.data());
    let before = state();
    p.write("migrations/003_email.up.sql", release::M3_BAD);
    let mut app = App::on_postgres(&db);

    // The dry run says the sessions would be ended if the migration failed.
    let dry = p.json(&["migrate", "production", "--dry-run"], 0);
    let sessions = check(&dry, "sessions");
    assert_eq!(sessions["ok"], true, "{dry}");
    assert!(
        sessions["detail"]
            .as_str()
            .unwrap()
            .contains("terminate_connections_on_rollback"),
        "{dry}"
    );
    for name in ["migrate_command", "tools", "space"] {
        assert_eq!(check(&dry, name)["ok"], true, "{name}: {dry}");
    }

    // Not rehearsed: the migration fails on the database itself, which is restored.
    let doc = p.json(&["migrate", "production", "--yes", "--no-rehearse"], 9);
    assert_eq!(doc["error"]["kind"], "migration", "{doc}");
    assert_eq!(doc["rolled_back"], true, "{doc}");
    assert_eq!(doc["rollback_matches"], true, "{doc}");
    assert!(p.path("migrate-ran").exists());
    assert_eq!(state(), before, "the failed migration left no trace");
    assert!(app.ended(), "the app's session was ended for the restore");
}

#[test]
fn pg_migrate_told_not_to_end_sessions_stops_before_the_migration_while_an_app_is_connected() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("pfmigno");
    let p = migrated(&db);
    let config = ".fractary/plugins/faber-db/config.toml";
    let text = std::fs::read_to_string(p.path(config)).unwrap();
    p.write(
        config,
        &text.replacen(
            "migrate_command = \"sh ./migrate.sh\"\n",
            "migrate_command = \"sh ./migrate.sh\"\nterminate_connections_on_rollback = false\n",
            1,
        ),
    );
    // A migration that would go through: had it run, its column would be there.
    p.write("migrations/003_email.up.sql", release::M3_GOOD);
    let state = || format!("{}\n{:?}", db.schema(), db.data());
    let before = state();
    let backups = p.ids();
    let _app = App::on_postgres(&db);

    let doc = p.json(&["migrate", "production", "--yes"], 7);
    assert_eq!(doc["error"]["kind"], "busy", "{doc}");
    assert_eq!(doc["migrated"], false, "{doc}");
    assert_eq!(check(&doc, "sessions")["ok"], false, "{doc}");
    let hint = doc["error"]["hint"].as_str().unwrap();
    assert!(
        hint.contains("`faber-db --yes migrate production --terminate-connections`"),
        "{hint}"
    );
    assert!(
        hint.contains("terminate_connections_on_rollback = true"),
        "{hint}"
    );
    assert!(!p.path("migrate-ran").exists(), "the migration did not run");
    assert_eq!(p.ids(), backups, "no pre-migration backup was taken");
    assert_eq!(state(), before);
    // The dry run fails the same way.
    let dry = p.json(&["migrate", "production", "--dry-run"], 7);
    assert_eq!(check(&dry, "sessions")["ok"], false, "{dry}");

    // The hint's command runs the migration (which succeeds: nothing is ended).
    let doc = p.json(
        &["migrate", "production", "--yes", "--terminate-connections"],
        0,
    );
    assert_eq!(doc["migrations_after"]["applied_count"], 3, "{doc}");
    assert!(p.path("migrate-ran").exists());
}

#[test]
fn doctor_warns_of_an_app_connected_without_failing() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("pfdoc");
    let p = postgres::project_with(&[("dev", &db)]);
    let doc = p.json(&["doctor"], 0);
    let findings = doc["findings"].as_array().unwrap().clone();
    let find = |findings: &[Value], check: &str| -> Value {
        findings
            .iter()
            .find(|f| f["check"] == check)
            .unwrap_or_else(|| panic!("no {check} finding in {findings:?}"))
            .clone()
    };
    assert_eq!(find(&findings, "restore into dev: sessions")["level"], "ok");
    let tools = find(&findings, "restore into dev: tools");
    assert_eq!(tools["level"], "ok");
    assert!(
        tools["detail"].as_str().unwrap().contains("psql"),
        "{tools}"
    );

    let _app = App::on_postgres(&db);
    let doc = p.json(&["doctor"], 0);
    let sessions = find(
        doc["findings"].as_array().unwrap(),
        "restore into dev: sessions",
    );
    assert_eq!(sessions["level"], "warning", "{sessions}");
    assert!(
        sessions["detail"]
            .as_str()
            .unwrap()
            .contains("1 other session connected to"),
        "{sessions}"
    );
}

#[test]
fn sqlite_restore_dry_run_checks_room_for_the_safety_backup_and_the_staging_copy_together() {
    let p = Project::new().seeded("db/dev.sqlite3");
    let id = p.backup(&["dev"]);
    let doc = p.json(&["restore", "dev", "--from", &id, "--dry-run"], 0);
    let names: Vec<&str> = doc["preflight"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    // No sessions to speak of in SQLite.
    assert_eq!(names, ["connection", "tools", "space"], "{doc}");
    assert_eq!(doc["preflight"]["ok"], true, "{doc}");
    // The backup directory and the database's are on one filesystem here: one sum for both.
    let space = check(&doc, "space")["detail"].as_str().unwrap();
    assert!(
        space.contains("for the pre-restore safety backup and the restore's staging copy"),
        "{space}"
    );
    // Without a safety backup, only the staging copy needs room, and the tools to dump none.
    let doc = p.json(
        &[
            "restore",
            "dev",
            "--from",
            &id,
            "--dry-run",
            "--no-safety-backup",
        ],
        0,
    );
    let space = check(&doc, "space")["detail"].as_str().unwrap();
    assert!(space.ends_with("for the restore's staging copy"), "{space}");
    let tools = &doc["preflight"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "tools");
    assert!(!tools, "{doc}");
}

/// A resumed migrate restores the backup taken before the run that did not finish when it
/// fails: its pre-flight checks what that restore needs, as a migrate that takes a new backup
/// does — with or without --no-backup — and its hint keeps `--resume` (without it the command
/// it names is refused, exit 8).
#[test]
fn pg_resumed_migrate_told_not_to_end_sessions_stops_before_the_migration_with_a_hint_that_resumes()
{
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("pfresume");
    let p = migrated(&db);
    // Release 3 fails, and faber-db is killed before its automatic restore: unfinished.
    p.write("migrations/003_email.up.sql", release::M3_BAD);
    let out = p
        .paused_at(
            &["migrate", "production", "--yes", "--no-rehearse"],
            "migrate:before-restore",
        )
        .signal(libc::SIGKILL);
    assert_eq!(out.status.code(), None);
    std::fs::remove_file(p.path("migrate-ran")).unwrap();
    let config = ".fractary/plugins/faber-db/config.toml";
    let text = std::fs::read_to_string(p.path(config)).unwrap();
    p.write(
        config,
        &text.replacen(
            "migrate_command = \"sh ./migrate.sh\"\n",
            "migrate_command = \"sh ./migrate.sh\"\nterminate_connections_on_rollback = false\n",
            1,
        ),
    );
    let backups = p.ids();
    let _app = App::on_postgres(&db);

    for extra in [&[][..], &["--no-backup"][..]] {
        let mut args = vec!["migrate", "production", "--yes", "--resume"];
        args.extend_from_slice(extra);
        let doc = p.json(&args, 7);
        assert_eq!(doc["error"]["kind"], "busy", "{args:?}: {doc}");
        assert_eq!(check(&doc, "sessions")["ok"], false, "{args:?}: {doc}");
        let hint = doc["error"]["hint"].as_str().unwrap();
        let mut wanted = vec!["faber-db", "--yes", "migrate", "production"];
        wanted.extend_from_slice(extra);
        wanted.extend(["--resume", "--terminate-connections"]);
        assert!(
            hint.contains(&format!("`{}`", wanted.join(" "))),
            "{args:?}: {hint}"
        );
        assert!(
            !p.path("migrate-ran").exists(),
            "{args:?}: the migration ran"
        );
        assert_eq!(p.ids(), backups, "{args:?}: no backup was taken");
    }
    // Room is asked for the pre-rollback backup alone: no pre-migration backup is taken.
    let space = check(
        &p.json(
            &[
                "migrate",
                "production",
                "--yes",
                "--resume",
                "--terminate-connections",
            ],
            9,
        ),
        "space",
    )["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!space.contains("pre-migration"), "{space}");
    assert!(space.contains("pre-rollback"), "{space}");
}

/// A MySQL user without PROCESS sees its own sessions only: an application connected as another
/// user is invisible to it. The sessions check must not say that no other session is connected
/// then: it says what it cannot see and the grant that would let it, and the run warns.
#[test]
fn mysql_sessions_check_of_a_user_without_process_says_it_cannot_see_other_users() {
    if !mysql::server_up() {
        return;
    }
    let db = MyDb::new("pfblind");
    db.exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);");
    let user = crate::inplace::DbUser::new(&db);
    let p = mysql::project_with(&[("dev", &db)]).with_var("DEV_DATABASE_URL", &user.url(&db));
    let id = p.backup(&["dev"]);
    // Connected as root: another user.
    let _app = App::on_mysql(&db);
    let doc = p.json(&["restore", "dev", "--from", &id, "--dry-run"], 0);
    let sessions = check(&doc, "sessions");
    let detail = sessions["detail"].as_str().unwrap();
    assert!(
        !detail.starts_with("no other session is connected"),
        "{doc}"
    );
    assert!(detail.contains("PROCESS"), "{detail}");
    assert!(detail.contains("other users"), "{detail}");
    assert!(!detail.contains("own-pw"), "{detail}");
    // The run says so too, where a person sees it.
    p.run(&["restore", "dev", "--from", &id, "--yes"])
        .code(0)
        .stderr_has("warning:")
        .stderr_has("PROCESS");
}
