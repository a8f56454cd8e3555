//! The release workflow end to end: migrate with a pre-migration backup, a failing migration
//! rolled back (exit 9), a good one, then `rollback` — on SQLite and on PostgreSQL, with a small
//! migration tool (a shell script over sqlite3 / psql) as the environment's `migrate_command`.

use std::time::{Duration, Instant};

use crate::harness::Project;
use crate::postgres::PgDb;

/// Applies `migrations/*.up.sql` not yet in `schema_migrations`, each recorded by its version,
/// like golang-migrate. `$RUN_SQL FILE` and `$QUERY SQL` differ per database.
pub const MIGRATE_SH: &str = r#"#!/bin/sh
set -e
query "CREATE TABLE IF NOT EXISTS schema_migrations (version varchar(64) PRIMARY KEY)"
for f in $(ls migrations/*.up.sql | sort); do
  v=$(basename "$f" | cut -d_ -f1)
  n=$(query "SELECT count(*) FROM schema_migrations WHERE version = '$v'")
  [ "$n" = 0 ] || continue
  echo "applying $f"
  run_sql "$f"
  query "INSERT INTO schema_migrations VALUES ('$v')"
done
"#;

pub const SQLITE_TOOLS: &str = r#"db="${DATABASE_URL#sqlite:}"
query() { sqlite3 -bail "$db" "$1"; }
run_sql() { sqlite3 -bail "$db" < "$1"; }
"#;

pub const PG_TOOLS: &str = r#"query() { psql "$DATABASE_URL" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }
run_sql() { psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -f "$1"; }
"#;

pub const M1: &str = "CREATE TABLE users (id integer PRIMARY KEY, name text NOT NULL);";
pub const M2: &str = "CREATE TABLE posts (id integer PRIMARY KEY, user_id integer REFERENCES users (id), body text);";
/// Fails half-way: the first statements apply, the third does not.
pub const M3_BAD: &str = "ALTER TABLE users ADD COLUMN email text;\nUPDATE users SET email = name || '@example.com';\nINSERT INTO no_such_table VALUES (1);";
pub const M3_GOOD: &str =
    "ALTER TABLE users ADD COLUMN email text;\nUPDATE users SET email = name || '@example.com';";

pub fn release_project(url: &str, tools: &str) -> Project {
    let p = Project::with_config(
        "[defaults]\ncompression = \"gzip\"\n[migrations]\ndirectory = \"migrations\"\n\
         [environments.production]\nurl_env = \"PROD_DATABASE_URL\"\nmigrate_command = \"sh ./migrate.sh\"\n",
    )
    .with_var("PROD_DATABASE_URL", url);
    p.write(
        "migrate.sh",
        &MIGRATE_SH.replacen("set -e\n", &format!("set -e\n{tools}"), 1),
    );
    // The project is a git checkout on branch release-2.
    p.write(".git/HEAD", "ref: refs/heads/release-2\n");
    p.write(
        ".git/refs/heads/release-2",
        "0123456789abcdef0123456789abcdef01234567\n",
    );
    p.write("migrations/001_users.up.sql", M1);
    p.write("migrations/001_users.down.sql", "DROP TABLE users;");
    p.write("migrations/002_posts.up.sql", M2);
    p
}

/// The whole scenario, with `state` reading the database's schema and data as text.
fn scenario(p: &Project, seed: &dyn Fn(&str), state: &dyn Fn() -> String) {
    // Release 1: migrations 1 and 2 on a database with no migration table yet.
    let doc = p.json(&["migrate", "production", "--yes"], 0);
    assert_eq!(doc["pending"].as_array().unwrap().len(), 2, "{doc}");
    assert_eq!(doc["migrations_after"]["applied_count"], 2, "{doc}");
    seed(
        "INSERT INTO users (id, name) VALUES (1, 'ada'), (2, 'bob'); INSERT INTO posts VALUES (1, 1, 'hello');",
    );
    let before_release = state();

    // Release 2 fails half-way: the pre-migration backup is restored, exit 9. (Not rehearsed:
    // a rehearsal would stop it before it touched the database; tests/it/rehearse.rs.)
    p.write("migrations/003_email.up.sql", M3_BAD);
    let doc = p.json(&["migrate", "production", "--yes", "--no-rehearse"], 9);
    assert_eq!(doc["error"]["kind"], "migration", "{doc}");
    assert_eq!(doc["rolled_back"], true, "{doc}");
    assert_eq!(doc["rollback_matches"], true, "{doc}");
    assert_eq!(doc["pending"][0]["name"], "003_email");
    let backup_id = doc["backup"]["id"].as_str().unwrap().to_string();
    let backup = p
        .backups()
        .into_iter()
        .find(|b| b["id"] == backup_id.as_str())
        .unwrap();
    assert_eq!(backup["reason"], "pre-migration");
    assert_eq!(backup["migrations"]["applied_count"], 2);
    assert!(
        doc["output_tail"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("no_such_table")),
        "{doc}"
    );
    assert_eq!(state(), before_release, "the failed release left no trace");
    assert!(
        p.backups().iter().any(|b| b["reason"] == "pre-rollback"),
        "the failed attempt is kept"
    );
    // The kept failed attempt has the same last migration, but is never a rollback target.
    let dry = p.json(
        &[
            "rollback",
            "production",
            "--to-migration",
            "002",
            "--dry-run",
        ],
        0,
    );
    assert_eq!(dry["backup"]["id"], backup_id.as_str(), "{dry}");

    // The fixed release 2 goes through.
    p.write("migrations/003_email.up.sql", M3_GOOD);
    let doc = p.json(&["migrate", "production", "--yes"], 0);
    assert_eq!(doc["migrations_after"]["applied_count"], 3, "{doc}");
    let release_backup = doc["backup"]["id"].as_str().unwrap().to_string();
    // What the release changed, against its pre-migration backup.
    seed("INSERT INTO users (id, name) VALUES (3, 'cy'); DELETE FROM posts;");
    let diff = p.json(&["diff", &release_backup], 0);
    assert_eq!(
        diff["migrations_applied_since"],
        serde_json::json!(["003"]),
        "{diff}"
    );
    let tables = diff["tables"].as_array().unwrap();
    let row = |name: &str| tables.iter().find(|t| t["table"] == name).unwrap().clone();
    assert_eq!(row("users")["delta"], 1, "{diff}");
    assert_eq!(row("posts")["delta"], -1, "{diff}");
    assert_eq!(row("posts")["change"], "changed");
    seed("DELETE FROM users WHERE id = 3; INSERT INTO posts VALUES (1, 1, 'hello');");
    assert_ne!(state(), before_release);
    // Nothing left to do: no backup, no command.
    let count = p.backups().len();
    p.run(&["migrate", "production", "--yes"])
        .code(0)
        .stdout_has("No pending migrations");
    assert_eq!(p.backups().len(), count);

    // And is rolled back.
    let dry = p.json(&["rollback", "production", "--dry-run"], 0);
    assert_eq!(dry["undone"], serde_json::json!(["003"]), "{dry}");
    let doc = p.json(&["rollback", "production", "--yes"], 0);
    assert_eq!(doc["migrations_match"], true, "{doc}");
    assert_eq!(doc["migrations_after"]["applied_count"], 2);
    assert_eq!(state(), before_release);

    // Every step is in the audit log.
    let history =
        std::fs::read_to_string(p.path(&format!("{}/history.jsonl", crate::harness::BACKUPS)))
            .unwrap();
    for event in ["\"migrate\"", "\"rollback\"", "\"backup\""] {
        assert!(history.contains(event), "{event} in {history}");
    }
    let last: serde_json::Value = serde_json::from_str(history.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "rollback");
    assert_eq!(last["ok"], true);
    assert_eq!(last["git"]["branch"], "release-2");
    assert_eq!(
        last["git"]["commit"],
        "0123456789abcdef0123456789abcdef01234567"
    );
}

#[test]
fn sqlite_release_pipeline_migrate_fail_restore_migrate_rollback() {
    let p = release_project("sqlite:db/prod.sqlite3", SQLITE_TOOLS);
    rusqlite::Connection::open(p.path("db/prod.sqlite3"))
        .unwrap()
        .execute_batch("PRAGMA user_version = 1;")
        .unwrap();
    let seed = |sql: &str| p.sqlite("db/prod.sqlite3").execute_batch(sql).unwrap();
    let state = || {
        let conn = p.sqlite("db/prod.sqlite3");
        let mut out = String::new();
        let mut tables = conn
            .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap();
        let rows: Vec<(String, String)> = tables
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for (name, sql) in rows {
            out.push_str(&format!("{sql}\n"));
            let mut q = conn
                .prepare(&format!("SELECT * FROM \"{name}\" ORDER BY 1"))
                .unwrap();
            let n = q.column_count();
            let data: Vec<String> = q
                .query_map([], |r| {
                    Ok((0..n)
                        .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                        .collect::<Vec<_>>()
                        .join("|"))
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            out.push_str(&data.join("\n"));
            out.push('\n');
        }
        out
    };
    scenario(&p, &seed, &state);
}

#[test]
fn postgres_release_pipeline_migrate_fail_restore_migrate_rollback() {
    on_postgres("release", scenario);
}

#[test]
fn protected_migrate_and_rollback_without_a_terminal_stop_at_once() {
    let p = release_project("sqlite:db/prod.sqlite3", SQLITE_TOOLS);
    p.sqlite("db/prod.sqlite3")
        .execute_batch("CREATE TABLE keep (x); INSERT INTO keep VALUES (1);")
        .unwrap();
    let id = p.backup(&["production", "--yes"]);
    let db = std::fs::read(p.path("db/prod.sqlite3")).unwrap();
    for args in [
        vec!["migrate", "production"],
        vec!["rollback", "production"],
        vec!["rollback", "production", "--to", id.as_str()],
    ] {
        let started = Instant::now();
        p.run(&args).code(8).stderr_has("--yes");
        assert!(started.elapsed() < Duration::from_secs(5), "{args:?} hung");
    }
    // A destructive migration needs its own confirmation: --yes is not enough.
    p.write("migrations/003_drop.up.sql", "DROP TABLE keep;");
    p.run(&["migrate", "production", "--yes"])
        .code(8)
        .stderr_has("DROP TABLE")
        .stderr_has("--allow-destructive");
    assert_eq!(std::fs::read(p.path("db/prod.sqlite3")).unwrap(), db);
    assert_eq!(p.backups().len(), 1);
}

#[test]
fn completion_scripts_know_every_command_and_parse() {
    let p = Project::empty();
    let bash = p.run(&["completions", "bash"]).code(0).stdout.clone();
    for command in [
        "backup", "restore", "migrate", "rollback", "diff", "verify", "cleanup",
    ] {
        assert!(
            bash.contains(command),
            "{command} missing from the bash completions"
        );
    }
    let script = p.path("faber-db.bash");
    std::fs::write(&script, &bash).unwrap();
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    p.run(&["completions", "zsh"])
        .code(0)
        .stdout_has("#compdef faber-db");
    p.run(&["completions", "fish"])
        .code(0)
        .stdout_has("complete -c faber-db");
    p.run(&["completions", "tcsh"]).code(1);
}

#[test]
fn migrate_runs_what_it_cannot_list_and_creates_what_does_not_exist() {
    // Knex migrations are code: faber-db cannot tell which are pending, so the command runs.
    let p = Project::with_config(
        "[migrations]\ndirectory = \"migrations\"\n\
         [environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\nmigrate_command = \"touch ran-$(ls ran-* 2>/dev/null | wc -l)\"\n",
    );
    p.write("migrations/20240101_init.js", "exports.up = () => {};");
    // The database does not exist yet: no backup, and the command creates it.
    p.run(&["migrate", "dev"])
        .code(0)
        .stderr_has("does not exist yet")
        .stderr_has("cannot be listed");
    assert!(p.path("ran-0").exists());
    assert!(p.backups().is_empty());
}

#[test]
fn rollback_refuses_to_drop_data_when_there_is_no_migration_to_undo() {
    let p = release_project("sqlite:db/prod.sqlite3", SQLITE_TOOLS);
    rusqlite::Connection::open(p.path("db/prod.sqlite3"))
        .unwrap()
        .execute_batch("PRAGMA user_version = 1;")
        .unwrap();
    p.json(&["migrate", "production", "--yes"], 0);
    // A pipeline's own pre-migration backup, before a release with nothing to migrate.
    let pre = p.backup(&[
        "production",
        "--yes",
        "--label",
        "pre-migration",
        "--reason",
        "pre-migration",
    ]);
    p.run(&["migrate", "production", "--yes"]).code(0);
    p.sqlite("db/prod.sqlite3")
        .execute_batch("INSERT INTO users (id, name) VALUES (7, 'written after the release');")
        .unwrap();
    // Nothing was migrated since that backup: a plain rollback would only lose the row.
    p.run(&["rollback", "production", "--yes"])
        .code(1)
        .stderr_has("no migration to roll back")
        .stderr_has(&format!("--to {pre}"));
    let rows: i64 = p
        .sqlite("db/prod.sqlite3")
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1);
    // --force goes ahead all the same once the row's loss is accepted: it is in the
    // pre-rollback backup.
    p.run(&["rollback", "production", "--force", "--yes"])
        .code(8)
        .stderr_has("loses 1 row written since the backup");
    let doc = p.json(
        &[
            "rollback",
            "production",
            "--force",
            "--yes",
            "--accept-data-loss",
        ],
        0,
    );
    assert_eq!(doc["backup"]["id"], pre.as_str(), "{doc}");
    assert_eq!(doc["rolled_back"], true, "{doc}");
    let rows: i64 = p
        .sqlite("db/prod.sqlite3")
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0);
    // Another environment's backup is restore's business, not rollback's.
    let q = Project::new()
        .seeded("db/dev.sqlite3")
        .seeded("db/prod.sqlite3");
    let dev = q.backup(&["dev"]);
    q.run(&["rollback", "production", "--to", &dev, "--yes"])
        .code(1)
        .stderr_has("is a backup of `dev`");
}

/// The `on_failure` step after a failed migration that restored its own backup, and rollbacks
/// in a row: nothing is restored twice. `state` reads the database's schema and data as text.
fn rollback_after_an_undo_is_a_no_op(p: &Project, seed: &dyn Fn(&str), state: &dyn Fn() -> String) {
    p.json(&["migrate", "production", "--yes"], 0);
    seed("INSERT INTO users (id, name) VALUES (1, 'ada'), (2, 'bob');");
    p.write("migrations/003_email.up.sql", M3_BAD);
    // Not rehearsed: the migration fails on the database itself, and migrate restores it.
    let doc = p.json(&["migrate", "production", "--yes", "--no-rehearse"], 9);
    assert_eq!(doc["rolled_back"], true, "{doc}");
    let pre = doc["backup"]["id"].as_str().unwrap().to_string();
    let restored = state();
    let count = p.backups().len();

    // The pipeline's on_failure step, plain and naming the backup, dry run included: the
    // automatic restore already did it.
    for args in [
        vec!["rollback", "production", "--yes"],
        vec!["rollback", "production", "--to", pre.as_str(), "--yes"],
        vec!["rollback", "production", "--to", pre.as_str(), "--dry-run"],
    ] {
        let doc = p.json(&args, 0);
        assert_eq!(doc["rolled_back"], false, "{args:?}: {doc}");
        assert_eq!(doc["already_restored"]["backup"], pre.as_str(), "{doc}");
        assert_eq!(doc["already_restored"]["by"], "migrate", "{doc}");
        assert_eq!(doc["backup"]["id"], pre.as_str(), "{doc}");
        assert_eq!(p.backups().len(), count, "{args:?} took a backup");
        assert_eq!(state(), restored, "{args:?} changed the database");
    }
    p.run(&["rollback", "production", "--to", &pre, "--yes"])
        .code(0)
        .stdout_has(&format!("already restored from {pre}"))
        .stdout_has("--force");
    assert_eq!(p.backups().len(), count);

    // --force restores all the same, with its safety backup; then a second one is a no-op.
    let doc = p.json(
        &["rollback", "production", "--to", &pre, "--force", "--yes"],
        0,
    );
    assert_eq!(doc["rolled_back"], true, "{doc}");
    assert!(doc["safety_backup"].is_string(), "{doc}");
    assert_eq!(p.backups().len(), count + 1);
    assert_eq!(state(), restored);
    let doc = p.json(&["rollback", "production", "--to", &pre, "--yes"], 0);
    assert_eq!(doc["rolled_back"], false, "{doc}");
    assert_eq!(doc["already_restored"]["by"], "rollback", "{doc}");
    assert_eq!(p.backups().len(), count + 1);

    // A migration since: the rollback is needed, and happens once.
    p.write("migrations/003_email.up.sql", M3_GOOD);
    let doc = p.json(&["migrate", "production", "--yes"], 0);
    let pre2 = doc["backup"]["id"].as_str().unwrap().to_string();
    let count = p.backups().len();
    let doc = p.json(&["rollback", "production", "--to", &pre2, "--yes"], 0);
    assert_eq!(doc["rolled_back"], true, "{doc}");
    assert_eq!(doc["undone"], serde_json::json!(["003"]), "{doc}");
    assert_eq!(state(), restored);
    assert_eq!(p.backups().len(), count + 1);
    let doc = p.json(&["rollback", "production", "--yes"], 0);
    assert_eq!(doc["rolled_back"], false, "{doc}");
    assert_eq!(doc["already_restored"]["backup"], pre2.as_str(), "{doc}");
    assert_eq!(p.backups().len(), count + 1);

    // Rows written since the restore: the database is no longer the backup's, so naming it
    // restores again, the loss accepted (the safety backup keeps the rows).
    seed("INSERT INTO users (id, name) VALUES (3, 'cy');");
    let doc = p.json(&["rollback", "production", "--to", &pre2, "--dry-run"], 0);
    assert_eq!(doc["would_lose"]["rows_total"], 1, "{doc}");
    let doc = p.json(
        &[
            "rollback",
            "production",
            "--to",
            &pre2,
            "--yes",
            "--accept-data-loss",
        ],
        0,
    );
    assert_eq!(doc["rolled_back"], true, "{doc}");
    assert_eq!(state(), restored);
    assert_eq!(p.backups().len(), count + 2);
}

#[test]
fn sqlite_rollback_after_migrates_own_restore_or_another_rollback_is_a_no_op() {
    let p = release_project("sqlite:db/prod.sqlite3", SQLITE_TOOLS);
    rusqlite::Connection::open(p.path("db/prod.sqlite3"))
        .unwrap()
        .execute_batch("PRAGMA user_version = 1;")
        .unwrap();
    let seed = |sql: &str| p.sqlite("db/prod.sqlite3").execute_batch(sql).unwrap();
    let state = || {
        let conn = p.sqlite("db/prod.sqlite3");
        let schema: Vec<String> = conn
            .prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let users: Vec<String> = conn
            .prepare("SELECT id || ':' || name FROM users ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        format!("{schema:?}\n{users:?}")
    };
    rollback_after_an_undo_is_a_no_op(&p, &seed, &state);
}

#[test]
fn postgres_rollback_after_migrates_own_restore_or_another_rollback_is_a_no_op() {
    on_postgres("undone", rollback_after_an_undo_is_a_no_op);
}

/// Steps of a release run on a project, given how to seed its database with SQL and how to
/// read its schema and data back as text.
type Steps = fn(&Project, &dyn Fn(&str), &dyn Fn() -> String);

/// Runs `steps` on a release project over a PostgreSQL database of its own (named after
/// `tag`).
fn on_postgres(tag: &str, steps: Steps) {
    if !crate::services::available("PostgreSQL", "127.0.0.1:5432") {
        return;
    }
    let db = PgDb::new(tag);
    let p = release_project(&db.url(), PG_TOOLS);
    let seed = |sql: &str| {
        db.exec(sql);
    };
    let state = || format!("{}\n{:?}", db.schema(), db.data());
    steps(&p, &seed, &state);
}

/// The `scripts/release.sh` block of docs/release-pipeline.md, as written there.
fn release_script_from_the_docs() -> String {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/release-pipeline.md"
    ))
    .unwrap();
    let marker = "<!-- release.sh:";
    let after = &doc[doc.find(marker).expect("the marked recipe")..];
    let start = after.find("```sh\n").unwrap() + "```sh\n".len();
    let end = start + after[start..].find("\n```").unwrap();
    after[start..end].to_string() + "\n"
}

#[test]
fn release_script_from_the_docs_holds_under_bash_e() {
    if !crate::services::available("PostgreSQL", "127.0.0.1:5432") {
        return;
    }
    if which::which("jq").is_err() {
        assert!(
            !crate::services::required(),
            "jq is missing and FABER_REQUIRE_SERVICES=1: run scripts/services.sh"
        );
        eprintln!("skipping: no jq");
        return;
    }
    let db = PgDb::new("recipe");
    let p = release_project(&db.url(), PG_TOOLS);
    p.write("scripts/release.sh", &release_script_from_the_docs());
    let bin_dir = std::path::Path::new(crate::harness::BIN).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let release = |deploy: &str| {
        let out = p
            .command_of(
                "bash",
                &["-e", "-o", "pipefail", "scripts/release.sh", "production"],
            )
            .env("PATH", &path)
            .env("DEPLOY_COMMAND", deploy)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let reasons = |p: &Project| -> Vec<String> {
        p.backups()
            .iter()
            .map(|b| b["reason"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let state = || format!("{}\n{:?}", db.schema(), db.data());

    // The happy path: migrations 1 and 2, deployed.
    let (code, err) = release("true");
    assert_eq!(code, 0, "{err}");
    assert_eq!(reasons(&p), vec!["pre-migration"]);
    db.exec("INSERT INTO users (id, name) VALUES (1, 'ada')");
    let released = state();

    // A failing migration: its rehearsal stops it before it touches the database, and there is
    // nothing to undo.
    p.write("migrations/003_email.up.sql", M3_BAD);
    let (code, err) = release("true");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("migrate exited 9"), "{err}");
    assert!(err.contains("production was not touched"), "{err}");
    assert!(!p.path("rollback.json").exists(), "nothing was undone");
    assert_eq!(state(), released);
    let pre_rollbacks = |p: &Project| reasons(p).iter().filter(|r| *r == "pre-rollback").count();
    assert_eq!(pre_rollbacks(&p), 0, "{:?}", reasons(&p));

    // A good migration, then a failing deploy: the undo restores the backup, once.
    p.write("migrations/003_email.up.sql", M3_GOOD);
    let (code, err) = release("false");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("the deploy failed"), "{err}");
    let undo: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.path("rollback.json")).unwrap()).unwrap();
    assert_ne!(undo["rolled_back"], false, "{undo}");
    assert_eq!(state(), released, "the migration is undone");
    assert_eq!(pre_rollbacks(&p), 1, "{:?}", reasons(&p));
}

#[test]
fn migrate_reports_its_backup_as_an_entry_and_a_dry_run_without_a_command_fails_like_the_run() {
    let p = release_project("sqlite:db/prod.sqlite3", SQLITE_TOOLS);
    p.sqlite("db/prod.sqlite3")
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    let doc = p.json(&["migrate", "production", "--yes"], 0);
    // The entry, as `backup --json` prints it.
    let id = doc["backup"]["id"].as_str().unwrap();
    assert_eq!(doc["backup"]["reason"], "pre-migration", "{doc}");
    assert_eq!(doc["backup"]["environment"], "production");
    assert_eq!(p.ids(), vec![id.to_string()]);

    let q = Project::with_config("[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\n")
        .seeded("db/dev.sqlite3");
    let doc = q.json(&["migrate", "dev", "--dry-run"], 1);
    assert_eq!(doc["dry_run"], true, "{doc}");
    assert!(doc["pending"].is_array(), "the plan is there: {doc}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no migrate_command"),
        "{doc}"
    );
    q.run(&["migrate", "dev", "--dry-run"])
        .code(1)
        .stderr_has("hint: set environments.dev.migrate_command");
}
