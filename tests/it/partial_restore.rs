//! `restore --table` (some tables of a backup put back, every other table left byte for byte as
//! it was) and `restore --into` (the whole backup into a new database beside the live one, which
//! is left alone), on PostgreSQL in each format, MariaDB and SQLite; and the refusals that keep
//! them from touching what is not theirs: a name that exists, a view that depends on a table, a
//! partitioned table, a table the backup does not hold.

use std::collections::BTreeMap;

use crate::harness::{Project, dump_tables, schema};
use crate::mysql::{self, MyDb};
use crate::postgres::{self, PgDb};

/// `data` without the tables named in `but`.
fn others(data: &BTreeMap<String, String>, but: &[&str]) -> BTreeMap<String, String> {
    data.iter()
        .filter(|(k, _)| !but.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn pg_one_table(format: &str) {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("table");
    db.exec(postgres::SCHEMA);
    let p = postgres::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev", "--format", format]);
    let (data, shape) = (db.data(), db.schema());
    // Events lose rows and gain one; the other tables change too, and must stay changed.
    db.exec(
        "DELETE FROM events WHERE id < 100; INSERT INTO events (account_id, kind, at) VALUES (1, 'new', '2025-01-01'); \
         DROP INDEX events_kind; UPDATE accounts SET name = 'changed'; INSERT INTO measurements VALUES ('2024-05-05', 1);",
    );
    let changed = db.data();
    let doc = p.json(&["restore", "dev", "--from", &id, "--table", "events"], 0);
    assert_eq!(
        doc["tables_restored"],
        serde_json::json!(["events"]),
        "{doc}"
    );
    assert_eq!(doc["row_count_differences"], serde_json::json!([]), "{doc}");
    assert!(doc["safety_backup"].is_string(), "{doc}");
    let now = db.data();
    assert_eq!(now["public.events"], data["public.events"], "{format}");
    assert_eq!(
        others(&now, &["public.events"]),
        others(&changed, &["public.events"]),
        "{format}: the other tables must be left as they were"
    );
    // The index dropped since is back, and the trigger and the foreign key are there.
    let restored_shape = db.schema();
    assert!(restored_shape.contains("events_kind"), "{restored_shape}");
    assert_eq!(restored_shape, shape, "{format}");
    // The sequence goes on from the backup's, not from 1.
    let next = db.exec("INSERT INTO events (account_id, at) VALUES (2, '2025-02-02') RETURNING id");
    assert_eq!(next, "701", "{format}");
}

#[test]
fn pg_one_table_from_a_plain_backup() {
    pg_one_table("sql");
}

#[test]
fn pg_one_table_from_a_custom_archive() {
    pg_one_table("custom");
}

#[test]
fn pg_one_table_from_a_directory_dump() {
    pg_one_table("directory");
}

/// A parent table put back while another table's foreign key points at it: the key is dropped
/// and made again in the same transaction, checked against the restored rows; rows the backup
/// lacks make it fail with nothing changed.
#[test]
fn pg_a_parent_table_keeps_the_foreign_keys_pointing_at_it() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("parent");
    db.exec(
        "CREATE SCHEMA \"odd.schema\"; \
         CREATE TABLE \"odd.schema\".parents (id int PRIMARY KEY, name text); \
         CREATE TABLE kids (id int PRIMARY KEY, parent int REFERENCES \"odd.schema\".parents (id)); \
         INSERT INTO \"odd.schema\".parents SELECT g, 'p' || g FROM generate_series(1, 10) g; \
         INSERT INTO kids SELECT g, 1 + g % 10 FROM generate_series(1, 30) g;",
    );
    let p = postgres::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    let shape = db.schema();
    db.exec("UPDATE \"odd.schema\".parents SET name = 'x'; INSERT INTO kids VALUES (31, 1);");
    let key = "\"odd.schema\".parents";
    p.json(&["restore", "dev", "--from", &id, "--table", key], 0);
    assert_eq!(
        db.exec("SELECT string_agg(name, ',' ORDER BY id) FROM \"odd.schema\".parents"),
        (1..=10)
            .map(|g| format!("p{g}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    assert_eq!(db.exec("SELECT count(*) FROM kids"), "31", "kids untouched");
    assert_eq!(db.schema(), shape, "the foreign key is back as it was");
    // A kid now points at a parent the backup lacks: the key cannot be made again.
    db.exec(
        "INSERT INTO \"odd.schema\".parents VALUES (11, 'new'); INSERT INTO kids VALUES (32, 11);",
    );
    let before = db.data();
    let doc = p.json(
        &["restore", "dev", "--from", &id, "--schema", "odd.schema"],
        6,
    );
    let hint = doc["error"]["hint"].as_str().unwrap();
    assert!(hint.contains("--into"), "{doc}");
    assert_eq!(db.data(), before, "nothing changed");
    assert_eq!(db.schema(), shape);
}

/// Refusals that change nothing: a view depends on the table; a partitioned table; a table the
/// backup does not hold.
#[test]
fn pg_table_restores_that_cannot_be_done_change_nothing() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("refuse");
    db.exec(postgres::SCHEMA);
    let p = postgres::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    db.exec("UPDATE accounts SET name = 'changed'");
    let before = (db.data(), db.schema());
    // `rich` is a view over accounts.
    let doc = p.json(&["restore", "dev", "--from", &id, "--table", "accounts"], 6);
    assert!(
        doc["error"]["message"].as_str().unwrap().contains("depend"),
        "{doc}"
    );
    assert!(
        doc["error"]["hint"].as_str().unwrap().contains("--into"),
        "{doc}"
    );
    let doc = p.json(
        &["restore", "dev", "--from", &id, "--table", "measurements"],
        1,
    );
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("partitioned"),
        "{doc}"
    );
    let doc = p.json(&["restore", "dev", "--from", &id, "--table", "nope"], 1);
    assert!(
        doc["error"]["hint"].as_str().unwrap().contains("accounts"),
        "{doc}"
    );
    assert_eq!((db.data(), db.schema()), before);
}

#[test]
fn pg_into_makes_a_new_database_and_leaves_the_live_one_alone() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("live");
    db.exec(postgres::SCHEMA);
    let p = postgres::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev", "--format", "custom"]);
    let (data, shape) = (db.data(), db.schema());
    db.exec("DELETE FROM events; UPDATE accounts SET name = 'changed'");
    let changed = db.data();
    let side = PgDb::unborn("side");
    let dry = p.json(
        &[
            "restore",
            "dev",
            "--from",
            &id,
            "--into",
            &side.name,
            "--dry-run",
        ],
        0,
    );
    assert_eq!(dry["dry_run"], true);
    assert_eq!(
        postgres::psql(
            &postgres::admin_url(),
            &format!(
                "SELECT count(*) FROM pg_database WHERE datname = '{}'",
                side.name
            )
        ),
        "0"
    );
    let doc = p.json(&["restore", "dev", "--from", &id, "--into", &side.name], 0);
    assert_eq!(doc["into"]["name"], side.name.as_str(), "{doc}");
    assert!(
        doc["into"]["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/{}", side.name)),
        "{doc}"
    );
    assert_eq!(doc["row_count_differences"], serde_json::json!([]), "{doc}");
    assert_eq!(side.data(), data);
    assert_eq!(side.schema(), shape);
    assert_eq!(db.data(), changed, "the live database is left alone");
    // Not a scratch database any more: no marker, no record, and no later run drops it.
    assert_eq!(
        postgres::psql(
            &postgres::admin_url(),
            &format!(
                "SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = '{}'",
                side.name
            )
        ),
        ""
    );
    p.json(&["verify", &id, "--deep"], 0);
    assert_eq!(side.data(), data);
    // Never over a database that exists.
    side.exec("CREATE TABLE mine (x int)");
    let doc = p.json(&["restore", "dev", "--from", &id, "--into", &side.name], 1);
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already exists"),
        "{doc}"
    );
    assert_eq!(side.exec("SELECT count(*) FROM mine"), "0");
    let doc = p.json(&["restore", "dev", "--from", &id, "--into", &db.name], 1);
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already exists")
    );
    assert_eq!(db.data(), changed);
}

#[test]
fn mysql_one_table_and_into() {
    if !mysql::server_up() {
        return;
    }
    let db = MyDb::new("table");
    db.exec(mysql::SCHEMA);
    let p = mysql::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    let (data, shape) = (db.data(), db.schema());
    db.exec("DELETE FROM shapes WHERE id < 20; DROP TRIGGER shapes_first; UPDATE accounts SET name = 'changed';");
    let changed = db.data();
    let doc = p.json(&["restore", "dev", "--from", &id, "--table", "shapes"], 0);
    assert_eq!(doc["row_count_differences"], serde_json::json!([]), "{doc}");
    let now = db.data();
    let shapes: Vec<&String> = now.keys().filter(|k| k.contains("shapes")).collect();
    assert!(!shapes.is_empty(), "{now:?}");
    for k in &shapes {
        assert_eq!(now[*k], data[*k], "{k}");
    }
    let but: Vec<&str> = shapes.iter().map(|k| k.as_str()).collect();
    assert_eq!(others(&now, &but), others(&changed, &but));
    assert_eq!(db.schema(), shape, "the trigger dropped since is back");
    // The whole backup into a new database beside it.
    let side = MyDb::unborn("side");
    let doc = p.json(&["restore", "dev", "--from", &id, "--into", &side.name], 0);
    assert_eq!(doc["row_count_differences"], serde_json::json!([]), "{doc}");
    assert_eq!(side.data(), data);
    assert_eq!(db.data(), now, "the live database is left alone");
    let doc = p.json(&["restore", "dev", "--from", &id, "--into", &side.name], 1);
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already exists")
    );
}

#[test]
fn sqlite_one_table_and_into() {
    let p = Project::new();
    p.sqlite("db/dev.sqlite3")
        .execute_batch(
            "PRAGMA foreign_keys = OFF;
             CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, shout TEXT GENERATED ALWAYS AS (upper(name)) VIRTUAL);
             CREATE INDEX users_name ON users (name);
             CREATE TABLE notes (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users (id), body BLOB);
             CREATE TRIGGER users_note AFTER INSERT ON users BEGIN INSERT INTO notes (user_id, body) VALUES (NEW.id, x'00ff'); END;
             INSERT INTO users (name) VALUES ('ann'), ('bob'), ('cy');
             DELETE FROM users WHERE name = 'cy';",
        )
        .unwrap();
    let id = p.backup(&["dev"]);
    let conn = p.sqlite("db/dev.sqlite3");
    let (data, shape) = (dump_tables(&conn), schema(&conn));
    conn.execute_batch(
        "PRAGMA foreign_keys = OFF; DELETE FROM users WHERE name = 'ann'; DROP INDEX users_name; DROP TRIGGER users_note;
         INSERT INTO notes (user_id, body) VALUES (2, 'later');",
    )
    .unwrap();
    let changed = dump_tables(&conn);
    drop(conn);
    let doc = p.json(&["restore", "dev", "--from", &id, "--table", "users"], 0);
    assert_eq!(doc["row_count_differences"], serde_json::json!([]), "{doc}");
    let conn = p.sqlite("db/dev.sqlite3");
    let now = dump_tables(&conn);
    assert_eq!(now["users"], data["users"]);
    assert_eq!(now["notes"], changed["notes"], "notes untouched");
    assert_eq!(schema(&conn), shape, "index and trigger back");
    // AUTOINCREMENT goes on past the deleted `cy` (3), as the backup had it.
    conn.execute("INSERT INTO users (name) VALUES ('dee')", [])
        .unwrap();
    assert_eq!(conn.last_insert_rowid(), 4);
    drop(conn);
    // Into a new file: made, the live one left alone; never over a file that exists.
    let doc = p.json(
        &["restore", "dev", "--from", &id, "--into", "db/side.sqlite3"],
        0,
    );
    let made = p.path("db/side.sqlite3");
    assert_eq!(doc["into"]["name"], made.to_str().unwrap(), "{doc}");
    assert_eq!(dump_tables(&p.sqlite("db/side.sqlite3")), data);
    let doc = p.json(
        &["restore", "dev", "--from", &id, "--into", "db/side.sqlite3"],
        1,
    );
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already exists")
    );
    let doc = p.json(
        &["restore", "dev", "--from", &id, "--into", "db/dev.sqlite3"],
        1,
    );
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already exists")
    );
    let doc = p.json(
        &[
            "restore",
            "dev",
            "--from",
            &id,
            "--into",
            ".fractary/plugins/faber-db/backups/x.sqlite3",
        ],
        1,
    );
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("backup directory"),
        "{doc}"
    );
    // A protected environment asks; without a terminal and --yes it refuses, changing nothing.
    p.sqlite("db/prod.sqlite3")
        .execute_batch("CREATE TABLE users (x); INSERT INTO users VALUES (1);")
        .unwrap();
    let pid = p.backup(&["production", "--yes"]);
    p.sqlite("db/prod.sqlite3")
        .execute_batch("INSERT INTO users VALUES (2);")
        .unwrap();
    let out = p.run(&["restore", "production", "--from", &pid, "--table", "users"]);
    assert_eq!(out.code, 8, "{}", out.stderr);
    let rows: i64 = p
        .sqlite("db/prod.sqlite3")
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 2, "nothing changed");
}
