//! `migrate --rehearse` attacked: a rehearsal must run the migrate command against the copy and
//! nothing else, and a failed one must not say "production was not touched" when it was.

use std::net::ToSocketAddrs;

use crate::postgres::{self, PgDb};
use crate::release::release_project;

/// The release tool over psql as many shell scripts write it: no URL, libpq's `PG*` variables.
const PG_ENV_TOOLS: &str = r#"query() { psql -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }
run_sql() { psql -X -q -v ON_ERROR_STOP=1 -f "$1"; }
"#;

/// Half a migration applies before it fails (psql without a transaction): a column added, then
/// a UNIQUE index on duplicates.
const HALF_BAD: &str = "ALTER TABLE users ADD COLUMN nick text;\nCREATE UNIQUE INDEX users_name_key ON users (name);\n";

/// Writes duplicates and the migration that fails on them half-way, runs `migrate --rehearse`
/// (exit 9), and checks that production's schema and rows are what they were: the report.
fn rehearse_half_bad_leaving_production_as_it_was(
    p: &crate::harness::Project,
    db: &PgDb,
) -> serde_json::Value {
    db.exec("INSERT INTO users (id, name) VALUES (1, 'ada'), (2, 'ada');");
    p.write("migrations/003_unique.up.sql", HALF_BAD);
    let (schema, data) = (db.schema(), db.data());
    let doc = p.json(&["migrate", "production", "--yes", "--rehearse"], 9);
    assert_eq!(
        (db.schema(), db.data()),
        (schema, data),
        "the rehearsal ran on production: {doc}"
    );
    doc
}

#[test]
fn postgres_a_rehearsal_never_runs_on_the_database_pgdatabase_names() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("rh_pgenv");
    let admin = url::Url::parse(&postgres::admin_url()).unwrap();
    let p = release_project(&db.url(), PG_ENV_TOOLS)
        .with_var("PGHOST", admin.host_str().unwrap())
        .with_var("PGPORT", &admin.port().unwrap_or(5432).to_string())
        .with_var("PGUSER", admin.username())
        .with_var("PGDATABASE", &db.name);
    // Migrations 1 and 2 for real (the tool reaches production through PGDATABASE, as it is
    // meant to outside a rehearsal).
    p.json(&["migrate", "production", "--yes", "--no-rehearse"], 0);
    let doc = rehearse_half_bad_leaving_production_as_it_was(&p, &db);
    let message = doc["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(message.contains("production was not touched"), "{doc}");
}

#[test]
fn postgres_a_rehearsal_never_runs_on_the_database_pgservice_names() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("rh_pgsvc");
    let admin = url::Url::parse(&postgres::admin_url()).unwrap();
    let (host, port) = (
        admin.host_str().unwrap().to_string(),
        admin.port().unwrap_or(5432).to_string(),
    );
    let p = release_project(&db.url(), PG_ENV_TOOLS);
    // libpq takes a service's `dbname` over PGDATABASE.
    p.write(
        "pg_service.conf",
        &format!(
            "[prod]\nhost={host}\nport={port}\nuser={}\ndbname={}\n",
            admin.username(),
            db.name
        ),
    );
    let service_file = p.path("pg_service.conf").to_string_lossy().into_owned();
    let p = p
        .with_var("PGSERVICEFILE", &service_file)
        .with_var("PGSERVICE", "prod")
        .with_var("PGHOST", &host)
        .with_var("PGPORT", &port)
        .with_var("PGUSER", admin.username());
    p.json(&["migrate", "production", "--yes", "--no-rehearse"], 0);
    let doc = rehearse_half_bad_leaving_production_as_it_was(&p, &db);
    assert_eq!(
        doc["rehearsal"]["failed_at"]["migration"], "003_unique",
        "{doc}"
    );
}

#[test]
fn postgres_a_failed_rehearsal_that_changed_production_does_not_say_it_did_not() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("rh_half");
    let p = release_project(&db.url(), crate::release::PG_TOOLS);
    p.json(&["migrate", "production", "--yes", "--no-rehearse"], 0);
    db.exec("INSERT INTO users (id, name) VALUES (1, 'ada'), (2, 'ada');");
    // The command reaches production by itself (a URL written into it), and half the
    // migration applies there before it fails: the migration state does not move.
    let config = ".fractary/plugins/faber-db/config.toml";
    let text = std::fs::read_to_string(p.path(config)).unwrap();
    p.write(
        config,
        &text.replace(
            "migrate_command = \"sh ./migrate.sh\"",
            &format!(
                "migrate_command = \"DATABASE_URL={} sh ./migrate.sh\"",
                db.url()
            ),
        ),
    );
    p.write("migrations/003_unique.up.sql", HALF_BAD);
    let schema = db.schema();
    let doc = p.json(&["migrate", "production", "--yes", "--rehearse"], 9);
    assert_ne!(db.schema(), schema, "the command did change production");
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(!message.contains("not touched"), "{doc}");
    assert!(
        message.contains("changed `production`'s own database, not only the copy"),
        "{doc}"
    );
}

#[test]
fn postgres_a_rehearsal_that_prints_its_url_shows_no_password_anywhere() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("rh_secret");
    // The server trusts loopback: any password connects, and this one must never be shown.
    let mut url = url::Url::parse(&db.url()).unwrap();
    url.set_password(Some("s3cr%40t-Pw")).unwrap();
    let p = release_project(url.as_str(), crate::release::PG_TOOLS);
    p.json(&["migrate", "production", "--yes", "--no-rehearse"], 0);
    p.write(
        "migrations/003_leak.up.sql",
        "SELECT 1;\nINSERT INTO no_such_table VALUES (1);\n",
    );
    // The tool echoes the URL it was given, raw and decoded, then fails.
    let script = std::fs::read_to_string(p.path("migrate.sh")).unwrap();
    p.write(
        "migrate.sh",
        &script.replacen(
            "set -e\n",
            "set -e\necho \"url $DATABASE_URL $PROD_DATABASE_URL\"\necho \"decoded $(echo \"$DATABASE_URL\" | sed 's/%40/@/g')\" >&2\n",
            1,
        ),
    );
    let run = p.run(&["--json", "migrate", "production", "--yes", "--rehearse"]);
    let human = p.run(&["migrate", "production", "--yes", "--rehearse"]);
    let history =
        std::fs::read_to_string(p.path(&format!("{}/history.jsonl", crate::harness::BACKUPS)))
            .unwrap();
    for text in [
        &run.stdout,
        &run.stderr,
        &human.stdout,
        &human.stderr,
        &history,
    ] {
        assert!(
            !text.contains("s3cr") && !text.contains("t-Pw"),
            "a password is shown:\n{text}"
        );
    }
    assert!(run.stdout.contains("url postgres://"), "{}", run.stdout);
}

#[test]
fn postgres_a_variable_reaching_production_by_another_host_name_is_pointed_at_the_copy() {
    if !postgres::server_up() {
        return;
    }
    let Some(alias) = loopback_alias() else {
        return;
    };
    let db = PgDb::new("rh_alias");
    // Prisma's `directUrl`: the migration tool reads DIRECT_URL, which reaches the same
    // database by another name of the host than the environment's URL does.
    let mut direct = url::Url::parse(&db.url()).unwrap();
    direct.set_host(Some(&alias)).unwrap();
    let tools = r#"query() { psql "$DIRECT_URL" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }
run_sql() { psql "$DIRECT_URL" -X -q -v ON_ERROR_STOP=1 -f "$1"; }
"#;
    let p = release_project(&db.url(), tools).with_var("DIRECT_URL", direct.as_str());
    p.json(&["migrate", "production", "--yes", "--no-rehearse"], 0);
    let doc = rehearse_half_bad_leaving_production_as_it_was(&p, &db);
    assert!(
        doc["rehearsal"]["variables"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "DIRECT_URL"),
        "{doc}"
    );
}

/// A name of this host, other than `localhost`, that resolves to the loopback address.
fn loopback_alias() -> Option<String> {
    let name = std::fs::read_to_string("/etc/hostname")
        .ok()?
        .trim()
        .to_string();
    let loopback = (name.as_str(), 5432)
        .to_socket_addrs()
        .ok()?
        .any(|a| a.ip().is_loopback());
    (loopback && !name.is_empty() && name != "localhost").then_some(name)
}
