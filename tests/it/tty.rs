//! Confirmations typed at a real pseudo-terminal: a wrong answer aborts with exit 8 and changes
//! nothing; the right one goes on.

use std::fs;
use std::process::Stdio;

use rexpect::process::WaitStatus;
use rexpect::session::{PtySession, spawn_command};

use crate::harness::Project;

/// Runs faber-db on a terminal of its own.
fn on_tty(p: &Project, args: &[&str]) -> PtySession {
    on_tty_as(p, args, "dumb")
}

/// [`on_tty`] with `TERM` set to `term`.
fn on_tty_as(p: &Project, args: &[&str], term: &str) -> PtySession {
    let mut cmd = p.command(args);
    cmd.stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .env("TERM", term)
        .env("NO_COLOR", "1");
    spawn_command(cmd, Some(60_000)).expect("faber-db starts on a pty")
}

/// Waits for the end and returns the exit code.
fn exit_code(mut s: PtySession) -> i32 {
    let _ = s.exp_eof();
    match s.process().wait().expect("faber-db ends") {
        WaitStatus::Exited(_, code) => code,
        other => panic!("faber-db did not exit normally: {other:?}"),
    }
}

fn project() -> Project {
    Project::new().seeded("db/prod.sqlite3")
}

#[test]
fn a_wrong_environment_name_aborts_and_the_right_one_restores() {
    let p = project();
    let id = p.backup(&["production", "--yes"]);
    p.sqlite("db/prod.sqlite3")
        .execute("INSERT INTO t VALUES (2)", [])
        .unwrap();
    let db = fs::read(p.path("db/prod.sqlite3")).unwrap();
    let entries = p.backups().len();

    let mut s = on_tty(&p, &["restore", "production", "--from", &id]);
    s.exp_string("type its name to confirm").unwrap();
    s.send_line("prod").unwrap();
    assert_eq!(exit_code(s), 8);
    assert_eq!(
        fs::read(p.path("db/prod.sqlite3")).unwrap(),
        db,
        "nothing changed"
    );
    assert_eq!(p.backups().len(), entries, "not even a safety backup");

    let mut s = on_tty(&p, &["restore", "production", "--from", &id]);
    s.exp_string("type its name to confirm").unwrap();
    s.send_line("production").unwrap();
    assert_eq!(exit_code(s), 0);
    let rows: i64 = p
        .sqlite("db/prod.sqlite3")
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1, "restored");
}

#[test]
fn a_protected_backup_asks_yes_or_no() {
    let p = project();
    let mut s = on_tty(&p, &["backup", "production"]);
    s.exp_string("Proceed with production backup?").unwrap();
    s.send_line("n").unwrap();
    assert_eq!(exit_code(s), 8);
    assert!(p.backups().is_empty());

    let mut s = on_tty(&p, &["backup", "production"]);
    s.exp_string("Proceed with production backup?").unwrap();
    s.send_line("y").unwrap();
    assert_eq!(exit_code(s), 0);
    assert_eq!(p.backups().len(), 1);
}

#[test]
fn destructive_migrations_need_the_phrase_typed() {
    let p = Project::with_config(
        "[migrations]\ndirectory = \"migrations\"\n\
         [environments.production]\nurl_env = \"PROD_DATABASE_URL\"\nmigrate_command = \"echo migrating > migrated.txt\"\n",
    )
    .seeded("db/prod.sqlite3");
    p.write("migrations/001_drop.sql", "DROP TABLE t;");

    let mut s = on_tty(&p, &["migrate", "production"]);
    s.exp_string("proceed-with-destructive-changes").unwrap();
    s.send_line("yes").unwrap();
    assert_eq!(exit_code(s), 8);
    assert!(p.backups().is_empty());
    assert!(!p.path("migrated.txt").exists());

    let mut s = on_tty(&p, &["migrate", "production"]);
    s.exp_string("proceed-with-destructive-changes").unwrap();
    s.send_line("proceed-with-destructive-changes").unwrap();
    s.exp_string("type its name to confirm").unwrap();
    s.send_line("production").unwrap();
    assert_eq!(exit_code(s), 0);
    assert!(p.path("migrated.txt").exists(), "the command ran");
    assert_eq!(p.backups()[0]["reason"], "pre-migration");
}

#[test]
fn ctrl_c_at_a_prompt_aborts_and_leaves_the_terminal_sane() {
    let p = project();
    let id = p.backup(&["production", "--yes"]);
    let db = fs::read(p.path("db/prod.sqlite3")).unwrap();
    for (args, prompt) in [
        (
            vec!["backup", "production"],
            "Proceed with production backup?",
        ),
        (
            vec!["restore", "production", "--from", id.as_str()],
            "type its name to confirm",
        ),
    ] {
        let mut cmd = std::process::Command::new("bash");
        cmd.arg("-c")
            .arg(format!(
                "stty -a; echo BEFORE-END; '{}' {}; echo \"EXIT=$?\"; stty -a",
                crate::harness::BIN,
                args.join(" ")
            ))
            .current_dir(p.root())
            .env("TERM", "dumb")
            .env("NO_COLOR", "1")
            .env("PROD_DATABASE_URL", "sqlite:db/prod.sqlite3");
        let mut s = spawn_command(cmd, Some(20_000)).unwrap();
        let before = s.exp_string("BEFORE-END").unwrap();
        s.exp_string(prompt).unwrap();
        s.send_control('c').unwrap();
        let out = s.exp_eof().unwrap();
        assert!(out.contains("interrupted"), "{out}");
        assert!(out.contains("EXIT=8"), "{args:?}: {out}");
        // The terminal's settings are what they were before, and the cursor is shown.
        let before = before.trim();
        let after = out.split("EXIT=8").nth(1).unwrap().trim();
        assert_eq!(before, after, "the terminal settings changed");
        assert!(out.contains("\x1b[?25h"), "the cursor is shown again");
    }
    assert_eq!(p.ids(), [id]);
    assert_eq!(fs::read(p.path("db/prod.sqlite3")).unwrap(), db);
}

#[test]
fn a_backup_shows_progress_on_a_terminal_and_nothing_on_a_pipe_or_with_json() {
    let p = Project::new();
    p.sqlite("db/dev.sqlite3")
        .execute_batch(
            "CREATE TABLE t (b BLOB); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 \
             FROM n WHERE i < 40000) INSERT INTO t SELECT randomblob(1000) FROM n;",
        )
        .unwrap();
    let on_terminal = |args: &[&str]| {
        let mut s = on_tty_as(&p, args, "xterm");
        let text = s.exp_eof().expect("faber-db ends");
        (text, s)
    };
    // Bytes dumped, the stored size so far, throughput and elapsed time, on the terminal.
    let (text, s) = on_terminal(&["backup", "dev", "--compression", "zstd"]);
    assert!(text.contains("dump (zstd)"), "{text}");
    assert!(text.contains("MiB/s"), "{text}");
    assert_eq!(exit_code(s), 0);
    let (text, s) = on_terminal(&["--json", "backup", "dev", "--compression", "zstd"]);
    assert!(!text.contains("dump (zstd)"), "{text}");
    assert_eq!(exit_code(s), 0);
    p.run(&["backup", "dev", "--compression", "zstd"])
        .code(0)
        .stderr_lacks("dump (zstd)");
}

#[test]
fn cleanup_and_delete_show_what_they_remove_before_asking() {
    let mut p = project();
    p.at("2025-01-01T00:00:00Z");
    let old = p.backup(&["production", "--yes", "--label", "v1"]);
    p.at("2025-01-02T00:00:00Z");
    let auto = p.backup(&[
        "production",
        "--yes",
        "--reason",
        "pre-migration",
        "--label",
        "pre-migration",
    ]);
    // A later pre-migration backup: the one a plain `rollback` picks, which cleanup keeps.
    p.at("2025-01-02T12:00:00Z");
    let rollback_target = p.backup(&[
        "production",
        "--yes",
        "--reason",
        "pre-migration",
        "--label",
        "pre-migration",
    ]);
    p.at("2025-01-03T00:00:00Z");
    let newest = p.backup(&["production", "--yes", "--label", "v2"]);
    p.at("2025-01-20T00:00:00Z");

    let mut s = on_tty(&p, &["cleanup", "production", "--keep-last", "1"]);
    let (plan, _) = s.exp_regex("type its name to confirm").unwrap();
    for id in [&old, &auto] {
        assert!(plan.contains(id.as_str()), "{id} not in the plan: {plan}");
    }
    assert!(!plan.contains(newest.as_str()), "{plan}");
    assert!(!plan.contains(rollback_target.as_str()), "{plan}");
    assert!(plan.contains("2 backups"), "{plan}");
    assert!(plan.contains("19d old"), "{plan}");
    assert!(plan.contains("label v1"), "{plan}");
    assert!(plan.contains("reason pre-migration (automatic)"), "{plan}");
    assert!(plan.contains(" B"), "sizes: {plan}");
    s.send_line("nope").unwrap();
    assert_eq!(exit_code(s), 8);
    assert_eq!(p.ids().len(), 4, "nothing removed");

    let mut s = on_tty(&p, &["delete", &old]);
    let (plan, _) = s.exp_regex("type its name to confirm").unwrap();
    assert!(plan.contains(old.as_str()), "{plan}");
    assert!(plan.contains("19d old"), "{plan}");
    assert!(plan.contains("label v1"), "{plan}");
    s.send_line("production").unwrap();
    assert_eq!(exit_code(s), 0);
    assert_eq!(p.ids().len(), 3);
}

/// A project whose production database is at migration 001 (a `schema_migrations` table), with
/// `migrations/001_init.sql` applied and `migrate_command` writing `migrated.txt`.
fn migrated_project() -> Project {
    let p = Project::with_config(
        "[migrations]\ndirectory = \"migrations\"\n\
         [environments.production]\nurl_env = \"PROD_DATABASE_URL\"\n\
         migrate_command = \"echo migrating > migrated.txt\"\n",
    )
    .seeded("db/prod.sqlite3");
    p.sqlite("db/prod.sqlite3")
        .execute_batch(
            "CREATE TABLE schema_migrations (version TEXT PRIMARY KEY); \
             INSERT INTO schema_migrations VALUES ('001');",
        )
        .unwrap();
    p.write("migrations/001_init.sql", "CREATE TABLE t (x);");
    p
}

#[test]
fn restore_and_rollback_show_their_plan_before_asking() {
    let mut p = migrated_project();
    p.at("2025-01-01T00:00:00Z");
    let release = p.backup(&["production", "--yes", "--label", "v1"]);
    p.at("2025-01-01T12:00:00Z");
    let pre = p.backup(&[
        "production",
        "--yes",
        "--reason",
        "pre-migration",
        "--label",
        "pre-migration",
    ]);
    // Migration 002 applied since, and a row written.
    p.sqlite("db/prod.sqlite3")
        .execute_batch("INSERT INTO schema_migrations VALUES ('002'); INSERT INTO t VALUES (2);")
        .unwrap();
    p.at("2025-01-04T00:00:00Z");
    let db = fs::read(p.path("db/prod.sqlite3")).unwrap();

    let mut s = on_tty(&p, &["restore", "production", "--from", &release]);
    let plan = s.exp_string("type its name to confirm").unwrap();
    for needle in [
        "Plan: restore",
        release.as_str(),
        "named with --from",
        "label v1",
        ", taken 2025-01-01 00:00 UTC (3d old)",
        "B, taken",
        "backup: 1 migrations applied, last 001",
        "now: 2 migrations applied, last 002",
        "Undoes:     002",
        "Replaces:   everything in database",
        "a pre-restore backup first",
    ] {
        assert!(
            plan.contains(needle),
            "no {needle:?} before the prompt: {plan}"
        );
    }
    s.send_line("prod").unwrap();
    assert_eq!(exit_code(s), 8);

    // A plain rollback picks the pre-migration backup and says what it undoes.
    let mut s = on_tty(&p, &["rollback", "production"]);
    let plan = s.exp_string("type its name to confirm").unwrap();
    for needle in [
        "Plan: roll production",
        pre.as_str(),
        "the newest valid pre-migration backup",
        "reason pre-migration (automatic)",
        "(60h old)",
        "Undoes:     002",
        "a pre-rollback backup first",
        "Estimate:",
    ] {
        assert!(
            plan.contains(needle),
            "no {needle:?} before the prompt: {plan}"
        );
    }
    assert!(!plan.contains(release.as_str()), "{plan}");
    s.send_line("yes").unwrap();
    assert_eq!(exit_code(s), 8);

    // Neither wrong answer changed anything: not the database, not the backups.
    assert_eq!(fs::read(p.path("db/prod.sqlite3")).unwrap(), db);
    assert_eq!(p.ids().len(), 2, "not even a safety backup");
}

#[test]
fn migrate_shows_its_plan_before_asking() {
    let p = migrated_project();
    p.write("migrations/002_add.sql", "CREATE TABLE u (y);");
    let db = fs::read(p.path("db/prod.sqlite3")).unwrap();

    // Not rehearsed: the plan comes before a question asked before anything is done.
    let mut s = on_tty(&p, &["migrate", "production", "--no-rehearse"]);
    let plan = s.exp_string("type its name to confirm").unwrap();
    for needle in [
        "Applied: 1 migrations",
        "1 pending in",
        "002_add",
        "Plan: migrate production",
        "Backup:     a pre-migration backup first: about",
        "Command:    echo migrating > migrated.txt",
        "On failure: the pre-migration backup is restored (rollback_on_failure)",
        "Confirm:    yes: the environment is protected; its name is asked for",
    ] {
        assert!(
            plan.contains(needle),
            "no {needle:?} before the prompt: {plan}"
        );
    }
    s.send_line("staging").unwrap();
    assert_eq!(exit_code(s), 8);
    assert!(!p.path("migrated.txt").exists(), "the command did not run");
    assert!(p.backups().is_empty(), "no backup taken");
    assert_eq!(fs::read(p.path("db/prod.sqlite3")).unwrap(), db);

    // A destructive migration: the plan, its statement flagged, comes before the phrase.
    p.write("migrations/003_drop.sql", "DROP TABLE u;");
    let mut s = on_tty(&p, &["migrate", "production"]);
    let plan = s
        .exp_string("type proceed-with-destructive-changes")
        .unwrap();
    for needle in [
        "2 pending in",
        "003_drop",
        "003_drop.sql line 1: DROP TABLE",
        "DROP TABLE u",
        "Command:    echo migrating > migrated.txt",
        "proceed-with-destructive-changes is asked for, then its name",
    ] {
        assert!(
            plan.contains(needle),
            "no {needle:?} before the prompt: {plan}"
        );
    }
    s.send_line("yes").unwrap();
    assert_eq!(exit_code(s), 8);
    assert!(!p.path("migrated.txt").exists());
    assert!(p.backups().is_empty());

    // The dry run's JSON carries the same plan.
    let dry = p.json(&["migrate", "production", "--dry-run"], 0);
    assert_eq!(
        dry["plan"]["command"], "echo migrating > migrated.txt",
        "{dry}"
    );
    assert!(dry["plan"]["backup"]["size_bytes"].is_u64(), "{dry}");
    assert_eq!(dry["plan"]["phrase"], true, "{dry}");

    // With --yes nothing is asked, and --json stays one document.
    let out = p.json(
        &["migrate", "production", "--yes", "--allow-destructive"],
        0,
    );
    assert_eq!(out["migrated"], true, "{out}");
    assert!(p.path("migrated.txt").exists());
}

#[test]
fn a_protected_migrate_shows_its_rehearsal_before_asking() {
    let p = Project::with_config(
        "[migrations]\ndirectory = \"migrations\"\n\
         [environments.production]\nurl_env = \"PROD_DATABASE_URL\"\n\
         migrate_command = \"sqlite3 -bail \\\"${DATABASE_URL#sqlite:}\\\" < migrations/002_add.sql\"\n",
    )
    .seeded("db/prod.sqlite3");
    p.sqlite("db/prod.sqlite3")
        .execute_batch(
            "CREATE TABLE schema_migrations (version TEXT PRIMARY KEY); \
             INSERT INTO schema_migrations VALUES ('001');",
        )
        .unwrap();
    p.write("migrations/001_init.sql", "CREATE TABLE t (x);");
    p.write(
        "migrations/002_add.sql",
        "CREATE TABLE u (y); INSERT INTO schema_migrations VALUES ('002');",
    );
    let db = fs::read(p.path("db/prod.sqlite3")).unwrap();

    let mut s = on_tty(&p, &["migrate", "production"]);
    let shown = s.exp_string("type its name to confirm").unwrap();
    for needle in [
        "Plan: migrate production",
        "Rehearse:   first, on a scratch copy",
        "Rehearsal on a copy of backup",
        "(pre-migration): passed",
        "Migrations: 1",
        "(applied 002)",
        "+ table u",
        "schema_migrations 1",
    ] {
        assert!(
            shown.contains(needle),
            "no {needle:?} before the prompt: {shown}"
        );
    }
    s.send_line("staging").unwrap();
    assert_eq!(exit_code(s), 8);
    // Rehearsed on a copy: production is as it was; the pre-migration backup is kept.
    assert_eq!(fs::read(p.path("db/prod.sqlite3")).unwrap(), db);
    assert_eq!(p.backups().len(), 1);

    let mut s = on_tty(&p, &["migrate", "production"]);
    s.exp_string("type its name to confirm").unwrap();
    s.send_line("production").unwrap();
    assert_eq!(exit_code(s), 0);
    let tables: i64 = p
        .sqlite("db/prod.sqlite3")
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'u'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1, "migrated once confirmed");
}

#[test]
fn a_protected_rollback_that_loses_rows_asks_for_the_name_even_with_yes() {
    let p = Project::new();
    p.sqlite("db/prod.sqlite3")
        .execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('a');")
        .unwrap();
    let id = p.backup(&["production", "--yes"]);
    p.sqlite("db/prod.sqlite3")
        .execute_batch("INSERT INTO notes (body) VALUES ('b'), ('c');")
        .unwrap();
    let db = fs::read(p.path("db/prod.sqlite3")).unwrap();

    let mut s = on_tty(&p, &["rollback", "production", "--to", &id, "--yes"]);
    let plan = s.exp_string("type its name to confirm").unwrap();
    for needle in [
        "Plan: roll production",
        "Loses:      2 rows written since the backup",
        "notes: 2 (by primary key)",
    ] {
        assert!(
            plan.contains(needle),
            "no {needle:?} before the prompt: {plan}"
        );
    }
    s.send_line("prod").unwrap();
    assert_eq!(exit_code(s), 8);
    assert_eq!(
        fs::read(p.path("db/prod.sqlite3")).unwrap(),
        db,
        "nothing changed"
    );

    let mut s = on_tty(&p, &["rollback", "production", "--to", &id, "--yes"]);
    s.exp_string("type its name to confirm").unwrap();
    s.send_line("production").unwrap();
    assert_eq!(exit_code(s), 0);
    let rows: i64 = p
        .sqlite("db/prod.sqlite3")
        .query_row("SELECT count(*) FROM notes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1, "rolled back");
}

/// A PostgreSQL backup on a terminal says, beside its bar, which table its dump is in and how
/// many of its rows are stored so far.
#[test]
fn a_backup_on_a_terminal_shows_the_table_its_dump_is_in() {
    if !crate::postgres::server_up() {
        return;
    }
    let db = crate::postgres::PgDb::new("tty_tables");
    db.exec(
        "CREATE TABLE events (id int, note text);
         INSERT INTO events SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 400000) g;",
    );
    let p = crate::postgres::project_with(&[("dev", &db)]);
    let mut s = on_tty_as(&p, &["backup", "dev"], "xterm");
    s.exp_string("table 1 events: ").unwrap();
    assert_eq!(exit_code(s), 0);
}
