//! `migrate --rehearse`: the migration run first against a scratch copy of production made from
//! the pre-migration backup — a failing one stops there (exit 9) with production untouched, a
//! good one is reported (schema and row-count changes) and then runs for real. On PostgreSQL,
//! SQLite and MariaDB, with the release workflow's small migration tool as `migrate_command`.

use serde_json::Value;

use crate::harness::{BACKUPS, Project};
use crate::mysql::{self, MyDb};
use crate::postgres::{self, PgDb};
use crate::release::{PG_TOOLS, SQLITE_TOOLS, release_project};

/// A migration that adds a UNIQUE constraint on a column holding duplicates.
const UNIQUE_PG: &str =
    "-- names must be unique now\nALTER TABLE users ADD CONSTRAINT users_name_key UNIQUE (name);\n";
const UNIQUE_INDEX: &str =
    "-- names must be unique now\nCREATE UNIQUE INDEX users_name_key ON users (name);\n";
/// A good migration: a column added, a row inserted.
const ADD_EMAIL: &str = "ALTER TABLE users ADD COLUMN email text;\nINSERT INTO users (id, name, email) VALUES (3, 'cy', 'cy@example.com');\n";

/// The rehearsal's records left in the ledger: none once a run is over.
fn ledger_records(p: &Project) -> Vec<String> {
    std::fs::read_dir(p.path(&format!("{BACKUPS}/.scratch")))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A failed rehearsal's report and error, as `--json` carries them: exit 9, production not
/// touched, the failing migration and statement named, nothing migrated and no restore needed.
fn assert_failed(doc: &Value, statement: &str) {
    assert_eq!(doc["error"]["kind"], "migration", "{doc}");
    assert_eq!(doc["error"]["code"], 9, "{doc}");
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(message.contains("production was not touched"), "{message}");
    assert!(message.contains(statement), "{message}");
    assert!(
        doc["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("--rehearse --dry-run"),
        "{doc}"
    );
    let r = &doc["rehearsal"];
    assert_eq!(r["passed"], false, "{doc}");
    assert_eq!(r["failed_at"]["migration"], "003_unique", "{doc}");
    assert!(
        r["failed_at"]["statement"]
            .as_str()
            .unwrap()
            .contains(statement),
        "{doc}"
    );
    assert_ne!(r["exit_code"], 0, "{doc}");
    assert!(!r["output_tail"].as_array().unwrap().is_empty(), "{doc}");
    assert_eq!(r["applied"], serde_json::json!([]), "{doc}");
    assert_eq!(r["backup_reason"], "pre-migration", "{doc}");
    assert_eq!(doc["migrated"], false, "{doc}");
    assert!(
        doc.get("rolled_back").is_none(),
        "no restore was needed: {doc}"
    );
    // Nothing to go back to: no `backup` for a pipeline's undo step to restore.
    assert!(doc.get("backup").is_none(), "{doc}");
}

/// A passed rehearsal's report: the added column and the row-count change, then the real run,
/// whose migration state is the rehearsal's.
fn assert_passed(doc: &Value, users: &str) {
    let r = &doc["rehearsal"];
    assert_eq!(r["passed"], true, "{doc}");
    assert_eq!(r["exit_code"], 0, "{doc}");
    assert_eq!(r["applied"], serde_json::json!(["003"]), "{doc}");
    let changes = r["schema_changes"].as_array().unwrap();
    assert!(
        changes.iter().any(|c| c["change"] == "column_added"
            && c["table"] == users
            && c["column"]["name"] == "email"),
        "{doc}"
    );
    let rows = r["rows"].as_array().unwrap();
    let user_rows = rows.iter().find(|t| t["table"] == users).unwrap();
    assert_eq!(user_rows["before"], 2, "{doc}");
    assert_eq!(user_rows["after"], 3, "{doc}");
    assert_eq!(doc["migrated"], true, "{doc}");
    assert_eq!(
        doc["migrations_after"]["migrations_list"], r["migrations_after"]["migrations_list"],
        "{doc}"
    );
    assert_eq!(doc["migrations_after"]["applied_count"], 3, "{doc}");
}

/// The history says a rehearsal ran, with its verdict, and whether the real migration started.
fn assert_history(p: &Project, passed: bool) {
    let history = std::fs::read_to_string(p.path(&format!("{BACKUPS}/history.jsonl"))).unwrap();
    let events: Vec<Value> = history
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let last_rehearsal = events
        .iter()
        .rev()
        .find(|e| e["event"] == "rehearse")
        .unwrap();
    assert_eq!(last_rehearsal["ok"], passed, "{history}");
    let after: Vec<&Value> = events
        .iter()
        .rev()
        .take_while(|e| e["event"] != "rehearse")
        .collect();
    assert_eq!(
        after.iter().any(|e| e["event"] == "migrate-started"),
        passed,
        "{history}"
    );
}

#[test]
fn postgres_a_failing_migration_is_stopped_by_its_rehearsal_and_production_is_untouched() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("rehearse_bad");
    let p = release_project(&db.url(), PG_TOOLS);
    // Migrations 1 and 2, rehearsed by default: production is protected.
    let doc = p.json(&["migrate", "production", "--yes"], 0);
    assert_eq!(doc["rehearsal"]["passed"], true, "{doc}");
    assert_eq!(doc["migrations_after"]["applied_count"], 2, "{doc}");
    db.exec("INSERT INTO users (id, name) VALUES (1, 'ada'), (2, 'ada');");
    p.write("migrations/003_unique.up.sql", UNIQUE_PG);
    let (schema, data) = (db.schema(), db.data());
    let doc = p.json(&["migrate", "production", "--yes", "--rehearse"], 9);
    assert_failed(
        &doc,
        "ALTER TABLE users ADD CONSTRAINT users_name_key UNIQUE (name);",
    );
    assert_eq!(db.schema(), schema, "production's schema is unchanged");
    assert_eq!(db.data(), data, "production's rows are unchanged");
    // The copy is gone from the server, and from the ledger.
    let stem: String = db.name.chars().take(30).collect();
    let left = postgres::psql(
        &postgres::admin_url(),
        &format!(
            "SELECT count(*) FROM pg_database WHERE datname LIKE '{stem}%' AND datname <> '{}'",
            db.name
        ),
    );
    assert_eq!(left.trim(), "0", "no scratch database is left");
    assert_eq!(ledger_records(&p), Vec::<String>::new());
    assert_history(&p, false);
    // The human report says the same on stderr.
    p.run(&["migrate", "production", "--yes"])
        .code(9)
        .stderr_has("production was not touched")
        .stderr_has("UNIQUE (name)")
        .stdout_has("Rehearsal");
    assert_eq!(db.schema(), schema);
}

#[test]
fn postgres_a_good_migration_is_rehearsed_reported_then_run_as_rehearsed() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("rehearse_good");
    let p = release_project(&db.url(), PG_TOOLS);
    p.json(&["migrate", "production", "--yes", "--no-rehearse"], 0);
    db.exec("INSERT INTO users (id, name) VALUES (1, 'ada'), (2, 'bob');");
    p.write("migrations/003_email.up.sql", ADD_EMAIL);
    let (schema, data) = (db.schema(), db.data());
    // Rehearsed only: production untouched, the rehearsal's backup kept.
    let dry = p.json(&["migrate", "production", "--rehearse", "--dry-run"], 0);
    assert_eq!(dry["dry_run"], true, "{dry}");
    assert_eq!(dry["rehearsal"]["passed"], true, "{dry}");
    assert_eq!(dry["rehearsal"]["backup_reason"], "pre-rehearsal", "{dry}");
    assert!(
        p.backups()
            .iter()
            .any(|b| b["id"] == dry["rehearsal"]["backup"] && b["reason"] == "pre-rehearsal"),
        "the rehearsal's backup is registered"
    );
    assert_eq!((db.schema(), db.data()), (schema, data));
    // The real run: rehearsed, reported, then migrated.
    let doc = p.json(&["migrate", "production", "--yes"], 0);
    assert_passed(&doc, "users");
    assert_eq!(doc["rehearsal"]["backup"], doc["backup"]["id"], "{doc}");
    assert_eq!(
        db.exec("SELECT count(*), count(email) FROM users").trim(),
        "3|1"
    );
    assert_eq!(ledger_records(&p), Vec::<String>::new());
    assert_history(&p, true);
}

fn sqlite_project() -> Project {
    let p = release_project("sqlite:db/prod.sqlite3", SQLITE_TOOLS);
    rusqlite::Connection::open(p.path("db/prod.sqlite3"))
        .unwrap()
        .execute_batch("PRAGMA user_version = 1;")
        .unwrap();
    p
}

#[test]
fn sqlite_a_failing_migration_is_stopped_by_its_rehearsal_and_production_is_untouched() {
    let p = sqlite_project();
    p.json(&["migrate", "production", "--yes"], 0);
    p.sqlite("db/prod.sqlite3")
        .execute_batch("INSERT INTO users (id, name) VALUES (1, 'ada'), (2, 'ada');")
        .unwrap();
    p.write("migrations/003_unique.up.sql", UNIQUE_INDEX);
    let bytes = std::fs::read(p.path("db/prod.sqlite3")).unwrap();
    let doc = p.json(&["migrate", "production", "--yes"], 9);
    assert_failed(&doc, "CREATE UNIQUE INDEX users_name_key ON users (name);");
    assert_eq!(
        std::fs::read(p.path("db/prod.sqlite3")).unwrap(),
        bytes,
        "production's file is byte for byte the same"
    );
    assert!(
        doc["rehearsal"]["scratch"]
            .as_str()
            .unwrap()
            .contains("/.scratch/rehearse-"),
        "{doc}"
    );
    assert_eq!(ledger_records(&p), Vec::<String>::new(), "the copy is gone");
    assert_history(&p, false);
}

#[test]
fn sqlite_a_good_migration_is_rehearsed_reported_then_run_as_rehearsed() {
    let p = sqlite_project();
    p.json(&["migrate", "production", "--yes"], 0);
    p.sqlite("db/prod.sqlite3")
        .execute_batch("INSERT INTO users (id, name) VALUES (1, 'ada'), (2, 'bob');")
        .unwrap();
    p.write("migrations/003_email.up.sql", ADD_EMAIL);
    let doc = p.json(&["migrate", "production", "--yes"], 0);
    assert_passed(&doc, "users");
    let (rows, emails): (i64, i64) = p
        .sqlite("db/prod.sqlite3")
        .query_row("SELECT count(*), count(email) FROM users", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((rows, emails), (3, 1));
    assert_eq!(ledger_records(&p), Vec::<String>::new());
    assert_history(&p, true);
}

/// The release tool over the mysql client, which takes no URL: its parts are cut out of it.
const MYSQL_TOOLS: &str = r#"u="${DATABASE_URL#mysql://}"; hp="${u%%/*}"; db="${u#*/}"; db="${db%%\?*}"
user="${hp%%@*}"; hp="${hp#*@}"; host="${hp%%:*}"; port="${hp##*:}"
query() { mysql -h "$host" -P "$port" -u "$user" --batch --skip-column-names "$db" -e "$1"; }
run_sql() { mysql -h "$host" -P "$port" -u "$user" "$db" < "$1"; }
"#;

#[test]
fn mysql_a_failing_migration_is_stopped_by_its_rehearsal_and_production_is_untouched() {
    if !mysql::server_up() {
        return;
    }
    let db = MyDb::new("rehearse_bad");
    let p = release_project(&db.url(), MYSQL_TOOLS);
    p.write(
        "migrations/001_users.up.sql",
        "CREATE TABLE users (id integer PRIMARY KEY, name varchar(40) NOT NULL);",
    );
    p.json(&["migrate", "production", "--yes", "--no-rehearse"], 0);
    db.exec("INSERT INTO users (id, name) VALUES (1, 'ada'), (2, 'ada');");
    p.write("migrations/003_unique.up.sql", UNIQUE_INDEX);
    let (schema, data) = (db.schema(), db.data());
    let doc = p.json(&["migrate", "production", "--yes", "--rehearse"], 9);
    assert_failed(&doc, "CREATE UNIQUE INDEX users_name_key ON users (name);");
    assert_eq!(db.schema(), schema, "production's schema is unchanged");
    assert_eq!(db.data(), data, "production's rows are unchanged");
    let stem: String = db.name.chars().take(30).collect();
    let left = mysql::mysql(
        None,
        &format!(
            "SELECT count(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '{stem}%' AND SCHEMA_NAME <> '{}'",
            db.name
        ),
    );
    assert_eq!(left.trim(), "0", "no scratch database is left");
    assert_eq!(ledger_records(&p), Vec::<String>::new());
    assert_history(&p, false);
}

/// A good migration pending on a PostgreSQL production with two users.
fn pg_pending(tag: &str) -> (PgDb, Project) {
    let db = PgDb::new(tag);
    let p = release_project(&db.url(), PG_TOOLS);
    p.json(&["migrate", "production", "--yes", "--no-rehearse"], 0);
    db.exec("INSERT INTO users (id, name) VALUES (1, 'ada'), (2, 'bob');");
    p.write("migrations/003_email.up.sql", ADD_EMAIL);
    (db, p)
}

/// The scratch databases of `db` on the server.
fn pg_copies(db: &PgDb) -> String {
    let stem: String = db.name.chars().take(30).collect();
    postgres::psql(
        &postgres::admin_url(),
        &format!(
            "SELECT datname FROM pg_database WHERE datname LIKE '{stem}\\_\\_faber\\_rehearse\\_%'"
        ),
    )
}

#[test]
fn postgres_a_rehearsal_stopped_by_a_signal_drops_its_copy_and_runs_nothing() {
    if !postgres::server_up() {
        return;
    }
    let (db, p) = pg_pending("rehearse_sig");
    let (schema, data) = (db.schema(), db.data());
    let paused = p.paused_at(&["migrate", "production", "--yes"], "migrate:rehearsing");
    assert!(
        !pg_copies(&db).is_empty(),
        "the copy is there while it rehearses"
    );
    let out = paused.signal(libc::SIGTERM);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    assert!(stderr.contains("production was not touched"), "{stderr}");
    assert_eq!(pg_copies(&db), "", "the copy was dropped");
    assert_eq!(ledger_records(&p), Vec::<String>::new());
    assert_eq!((db.schema(), db.data()), (schema, data));
    assert_history(&p, false);
}

#[test]
fn postgres_a_rehearsal_killed_outright_leaves_its_copy_to_the_next_run_which_drops_it() {
    if !postgres::server_up() {
        return;
    }
    let (db, p) = pg_pending("rehearse_kill");
    let (schema, data) = (db.schema(), db.data());
    let out = p
        .paused_at(&["migrate", "production", "--yes"], "migrate:rehearsing")
        .signal(libc::SIGKILL);
    assert_eq!(out.status.code(), None);
    let left = pg_copies(&db);
    assert!(!left.is_empty(), "a killed run cannot drop its copy");
    assert_eq!((db.schema(), db.data()), (schema, data));
    assert_eq!(ledger_records(&p).len(), 1, "it is recorded");
    // The next rehearsal finds it in the ledger, proves it ours, and drops it.
    p.run(&["migrate", "production", "--yes"])
        .code(0)
        .stderr_has(&format!("dropped database {}", left.trim()));
    assert_eq!(pg_copies(&db), "");
    assert_eq!(ledger_records(&p), Vec::<String>::new());
    assert_eq!(db.exec("SELECT count(email) FROM users").trim(), "1");
}

#[test]
fn sqlite_a_rehearsal_killed_outright_leaves_its_copy_to_the_next_run_which_removes_it() {
    let p = sqlite_project();
    p.json(&["migrate", "production", "--yes"], 0);
    p.write("migrations/003_email.up.sql", ADD_EMAIL);
    let bytes = std::fs::read(p.path("db/prod.sqlite3")).unwrap();
    let out = p
        .paused_at(&["migrate", "production", "--yes"], "migrate:rehearsing")
        .signal(libc::SIGKILL);
    assert_eq!(out.status.code(), None);
    let copies = |p: &Project| -> Vec<String> {
        ledger_records(p)
            .into_iter()
            .filter(|n| n.starts_with("rehearse-"))
            .collect()
    };
    assert_eq!(copies(&p).len(), 1, "{:?}", ledger_records(&p));
    assert_eq!(std::fs::read(p.path("db/prod.sqlite3")).unwrap(), bytes);
    p.run(&["migrate", "production", "--yes"])
        .code(0)
        .stderr_has("left by an interrupted run");
    assert_eq!(
        ledger_records(&p),
        Vec::<String>::new(),
        "copy and record gone"
    );
}

#[test]
fn mysql_a_good_migration_is_rehearsed_reported_then_run_as_rehearsed() {
    if !mysql::server_up() {
        return;
    }
    let db = MyDb::new("rehearse_good");
    let p = release_project(&db.url(), MYSQL_TOOLS);
    p.write(
        "migrations/001_users.up.sql",
        "CREATE TABLE users (id integer PRIMARY KEY, name varchar(40) NOT NULL);",
    );
    p.json(&["migrate", "production", "--yes", "--no-rehearse"], 0);
    db.exec("INSERT INTO users (id, name) VALUES (1, 'ada'), (2, 'bob');");
    p.write("migrations/003_email.up.sql", ADD_EMAIL);
    let doc = p.json(&["migrate", "production", "--yes"], 0);
    assert_passed(&doc, "users");
    assert_eq!(
        db.exec("SELECT count(*), count(email) FROM users").trim(),
        "3\t1"
    );
    assert_eq!(ledger_records(&p), Vec::<String>::new());
    assert_history(&p, true);
}

#[test]
fn a_command_that_reaches_production_by_itself_is_caught_and_the_real_run_does_not_follow() {
    let p = sqlite_project();
    p.json(&["migrate", "production", "--yes"], 0);
    // The command names production's file itself instead of reading DATABASE_URL.
    let config = ".fractary/plugins/faber-db/config.toml";
    let text = std::fs::read_to_string(p.path(config)).unwrap();
    p.write(
        config,
        &text.replace(
            "migrate_command = \"sh ./migrate.sh\"",
            "migrate_command = \"DATABASE_URL=sqlite:db/prod.sqlite3 sh ./migrate.sh\"",
        ),
    );
    p.write("migrations/003_email.up.sql", ADD_EMAIL);
    let doc = p.json(&["migrate", "production", "--yes"], 9);
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("changed `production`'s own database, not only the copy"),
        "{doc}"
    );
    assert!(message.contains("the real migration was not run"), "{doc}");
    assert!(!message.contains("not touched"), "{doc}");
    assert!(
        doc["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("DATABASE_URL or PROD_DATABASE_URL"),
        "{doc}"
    );
    assert_eq!(doc["migrated"], false, "{doc}");
    // It ran once, on production, by itself: the real run did not follow.
    let emails: i64 = p
        .sqlite("db/prod.sqlite3")
        .query_row("SELECT count(email) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(emails, 1);
    assert_history(&p, false);
    assert_eq!(ledger_records(&p), Vec::<String>::new());
}
