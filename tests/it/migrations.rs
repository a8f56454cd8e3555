//! Migration state is read from the tables the common migration tools keep.

use crate::harness::Project;

/// Backs up a dev database prepared by `sql` and returns the recorded migration state.
fn recorded(sql: &str) -> serde_json::Value {
    let p = Project::new();
    p.sqlite("db/dev.sqlite3").execute_batch(sql).unwrap();
    let doc = p.json(&["backup", "dev"], 0);
    doc["backup"]["migrations"].clone()
}

#[test]
fn sqlx() {
    let m = recorded(
        "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, installed_on TEXT, success BOOLEAN NOT NULL, checksum BLOB, execution_time BIGINT);
         INSERT INTO _sqlx_migrations VALUES (20240102000000, 'add posts', '', 1, x'00', 1), (20240101000000, 'init', '', 1, x'00', 1), (20240103000000, 'broken', '', 0, x'00', 1);",
    );
    assert_eq!(m["tool"], "sqlx");
    assert_eq!(m["applied_count"], 2, "failed migrations do not count");
    assert_eq!(m["last_migration"], "20240102000000_add posts");
    assert_eq!(m["migrations_list"][0], "20240101000000_init");
}

#[test]
fn diesel() {
    let m = recorded(
        "CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);
         INSERT INTO __diesel_schema_migrations (version) VALUES ('20240301000000'), ('20240201000000');",
    );
    assert_eq!(m["tool"], "diesel");
    assert_eq!(m["applied_count"], 2);
    assert_eq!(m["last_migration"], "20240301000000");
}

#[test]
fn prisma() {
    let m = recorded(
        "CREATE TABLE _prisma_migrations (id TEXT PRIMARY KEY, checksum TEXT NOT NULL, finished_at DATETIME, migration_name TEXT NOT NULL, logs TEXT, rolled_back_at DATETIME, started_at DATETIME NOT NULL DEFAULT current_timestamp, applied_steps_count INTEGER NOT NULL DEFAULT 0);
         INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, rolled_back_at) VALUES
           ('a', 'x', '2024-01-01', '20240101000000_init', NULL),
           ('b', 'x', '2024-02-01', '20240201000000_add_users', NULL),
           ('c', 'x', NULL, '20240301000000_failed', NULL),
           ('d', 'x', '2024-03-02', '20240302000000_reverted', '2024-03-03');",
    );
    assert_eq!(m["tool"], "prisma");
    assert_eq!(
        m["applied_count"], 2,
        "unfinished and rolled-back migrations do not count"
    );
    assert_eq!(m["last_migration"], "20240201000000_add_users");
}

#[test]
fn schema_migrations() {
    let m = recorded(
        "CREATE TABLE schema_migrations (version VARCHAR NOT NULL PRIMARY KEY);
         INSERT INTO schema_migrations VALUES ('20230101120000'), ('20230215093000'), ('20230110000000');",
    );
    assert_eq!(m["tool"], "schema_migrations");
    assert_eq!(m["applied_count"], 3);
    assert_eq!(m["last_migration"], "20230215093000");
}

#[test]
fn knex_django_alembic_and_flyway() {
    let m = recorded(
        "CREATE TABLE knex_migrations (id INTEGER PRIMARY KEY, name TEXT, batch INTEGER, migration_time TEXT);
         INSERT INTO knex_migrations (name, batch) VALUES ('001_init.js', 1), ('002_users.js', 2);",
    );
    assert_eq!(
        (m["tool"].as_str(), m["last_migration"].as_str()),
        (Some("knex"), Some("002_users.js"))
    );
    let m = recorded(
        "CREATE TABLE django_migrations (id INTEGER PRIMARY KEY, app TEXT, name TEXT, applied TEXT);
         INSERT INTO django_migrations (app, name) VALUES ('auth', '0001_initial'), ('blog', '0002_post');",
    );
    assert_eq!(
        (m["tool"].as_str(), m["last_migration"].as_str()),
        (Some("django"), Some("blog.0002_post"))
    );
    let m = recorded(
        "CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY); INSERT INTO alembic_version VALUES ('ae1027a6acf');",
    );
    assert_eq!(
        (m["tool"].as_str(), m["applied_count"].as_u64()),
        (Some("alembic"), Some(1))
    );
    let m = recorded(
        "CREATE TABLE flyway_schema_history (installed_rank INT PRIMARY KEY, version VARCHAR(50), description VARCHAR(200), success BOOLEAN);
         INSERT INTO flyway_schema_history VALUES (1, '1', 'init', 1), (2, '2', 'add users', 1);",
    );
    assert_eq!(
        (m["tool"].as_str(), m["last_migration"].as_str()),
        (Some("flyway"), Some("2__add users"))
    );
}

#[test]
fn no_migration_table_is_null_not_an_error() {
    let m = recorded("CREATE TABLE t (x);");
    assert!(m.is_null());
}

#[test]
fn the_config_can_name_the_table() {
    let p = Project::with_config(
        "[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\nmigrations_table = \"schema_migrations\"\n",
    );
    p.sqlite("db/dev.sqlite3")
        .execute_batch(
            "CREATE TABLE _sqlx_migrations (version BIGINT, description TEXT, success BOOLEAN);
             INSERT INTO _sqlx_migrations VALUES (1, 'a', 1);
             CREATE TABLE schema_migrations (version TEXT); INSERT INTO schema_migrations VALUES ('7');",
        )
        .unwrap();
    let doc = p.json(&["backup", "dev"], 0);
    assert_eq!(doc["backup"]["migrations"]["tool"], "schema_migrations");
    assert_eq!(doc["backup"]["migrations"]["last_migration"], "7");
}

#[test]
fn a_known_table_name_in_another_layout_is_not_an_error() {
    // Ruby Sequel keeps a `schema_migrations` table with a `filename` column.
    let m = recorded(
        "CREATE TABLE schema_migrations (filename TEXT PRIMARY KEY); INSERT INTO schema_migrations VALUES ('001_init.rb');",
    );
    assert!(m.is_null(), "{m}");
}

/// `status` of a PostgreSQL environment shows the server's version and the migration state; it
/// asks for the version in the same psql call that looks for the migration tables, so a database
/// without one costs a single call (a call costs tens of milliseconds on a slow machine).
#[test]
fn pg_status_reads_the_version_and_the_migration_state_in_as_few_psql_calls_as_it_can() {
    if !crate::postgres::server_up() {
        return;
    }
    let db = crate::postgres::PgDb::new("status_calls");
    let p = crate::postgres::project_with(&[("dev", &db)]);
    let (path, log) = p.argv_wrappers(&["psql"]);
    let p = p.with_var("PATH", &path);
    let status = |p: &Project| {
        std::fs::write(&log, "").unwrap();
        let doc = p.json(&["status", "dev"], 0);
        let calls = std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("psql "))
            .count();
        (doc["environments"][0].clone(), calls)
    };

    let (env, calls) = status(&p);
    assert_eq!(env["reachable"], true, "{env}");
    assert!(
        env["server_version"]
            .as_str()
            .is_some_and(|v| v.starts_with("PostgreSQL 1")),
        "{env}"
    );
    assert!(env["migrations"].is_null(), "{env}");
    assert_eq!(calls, 1, "one psql call without a migration table");

    db.exec(
        "CREATE TABLE knex_migrations (id serial PRIMARY KEY, name text);
         INSERT INTO knex_migrations (name) VALUES ('001_users.js'), ('002_posts.js');",
    );
    let (env, calls) = status(&p);
    assert_eq!(env["migrations"]["tool"], "knex", "{env}");
    assert_eq!(env["migrations"]["applied_count"], 2, "{env}");
    assert_eq!(env["migrations"]["last_migration"], "002_posts.js");
    assert!(env["server_version"].as_str().is_some(), "{env}");
    assert_eq!(calls, 2, "a second call reads the migration table");

    // A configured table of a layout faber-db does not know: its rows are counted.
    p.write(
        ".fractary/plugins/faber-db/config.toml",
        "[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\nmigrations_table = \"my_versions\"\n",
    );
    db.exec("CREATE TABLE my_versions (v int); INSERT INTO my_versions VALUES (1), (2), (3);");
    let (env, _) = status(&p);
    assert_eq!(env["migrations"]["tool"], "custom", "{env}");
    assert_eq!(env["migrations"]["applied_count"], 3, "{env}");
    assert!(env["server_version"].as_str().is_some(), "{env}");

    // A database that is gone: not reachable, and said why.
    drop(db);
    let (env, _) = status(&p);
    assert_eq!(env["reachable"], false, "{env}");
    assert!(
        env["problem"].as_str().is_some_and(|m| !m.is_empty()),
        "{env}"
    );
}
