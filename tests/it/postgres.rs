//! PostgreSQL, against the real server and the real pg_dump / psql. Each test works in databases
//! of its own, dropped afterwards. Skipped when the server is absent, unless
//! FABER_REQUIRE_SERVICES=1.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::harness::Project;
use crate::services;

/// The server tests use, as an admin URL (its database is the maintenance one).
pub fn admin_url() -> String {
    std::env::var("FABER_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn server_up() -> bool {
    services::available("PostgreSQL", "127.0.0.1:5432")
}

/// A database of the test's own, dropped when it goes.
pub struct PgDb {
    pub name: String,
}

impl PgDb {
    pub fn new(tag: &str) -> PgDb {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "faber_it_{tag}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        psql(&admin_url(), &format!("DROP DATABASE IF EXISTS {name}"));
        psql(&admin_url(), &format!("CREATE DATABASE {name}"));
        PgDb { name }
    }

    /// A name for a database that does not exist yet (dropped at the end if it came to be).
    pub fn unborn(tag: &str) -> PgDb {
        let db = PgDb::new(tag);
        psql(&admin_url(), &format!("DROP DATABASE {}", db.name));
        db
    }

    pub fn url(&self) -> String {
        let mut u = url::Url::parse(&admin_url()).unwrap();
        u.set_path(&self.name);
        u.to_string()
    }

    pub fn exec(&self, sql: &str) -> String {
        psql(&self.url(), sql)
    }

    /// `pg_dump --schema-only`, without the lines that differ on every run.
    pub fn schema(&self) -> String {
        let out = Command::new("pg_dump")
            .args(["--schema-only", "--no-owner", &self.url()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| {
                !l.starts_with("\\restrict")
                    && !l.starts_with("\\unrestrict")
                    && !l.starts_with("--")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A checksum of every user table's rows.
    pub fn data(&self) -> BTreeMap<String, String> {
        let tables = self.exec(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables \
             WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
        );
        tables
            .lines()
            .map(|t| {
                let sum = self.exec(&format!(
                    "SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM {t} x"
                ));
                (t.to_string(), sum)
            })
            .collect()
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                "-X",
                "-q",
                &admin_url(),
                "-c",
                &format!(
                    "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                    self.name.replace('"', "\"\"")
                ),
            ])
            .output();
    }
}

pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            url,
            "-c",
            sql,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "psql failed on {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

pub const SCHEMA: &str = r"
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE accounts (
    id serial PRIMARY KEY,
    code bigint GENERATED ALWAYS AS IDENTITY,
    name text NOT NULL,
    profile jsonb,
    tags text[],
    avatar bytea,
    balance numeric(12, 2),
    seen timestamptz DEFAULT now(),
    feeling mood
);
CREATE TABLE events (
    id bigserial PRIMARY KEY,
    account_id int REFERENCES accounts(id),
    kind text,
    at date NOT NULL
) ;
CREATE INDEX events_kind ON events (kind);
CREATE TABLE measurements (at date NOT NULL, value int) PARTITION BY RANGE (at);
CREATE TABLE measurements_2024 PARTITION OF measurements FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE measurements_2025 PARTITION OF measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE SEQUENCE tickets START 1000;
SELECT setval('tickets', 4242);
CREATE VIEW rich AS SELECT name FROM accounts WHERE balance > 100;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.kind := coalesce(NEW.kind, 'touched'); RETURN NEW; END $$;
CREATE TRIGGER events_touch BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION touch();
INSERT INTO accounts (name, profile, tags, avatar, balance, feeling)
    SELECT 'user ' || g || ' ✓', jsonb_build_object('n', g, 'nested', jsonb_build_array(g, 'x')),
           ARRAY['a' || g, 'b'], decode(md5(g::text), 'hex'), g * 1.25, (ARRAY['sad','ok','happy'])[1 + g % 3]::mood
    FROM generate_series(1, 300) g;
INSERT INTO events (account_id, kind, at) SELECT 1 + g % 300, CASE WHEN g % 2 = 0 THEN 'login' END, date '2024-06-01' + g FROM generate_series(1, 700) g;
INSERT INTO measurements SELECT date '2024-03-01' + g, g FROM generate_series(1, 500) g;
";

pub fn project_with(envs: &[(&str, &PgDb)]) -> Project {
    let mut config = String::from("[defaults]\ncompression = \"gzip\"\n");
    let mut p_vars = Vec::new();
    for (env, db) in envs {
        let var = format!("{}_DATABASE_URL", env.to_uppercase());
        config.push_str(&format!("[environments.{env}]\nurl_env = \"{var}\"\n"));
        p_vars.push((var, db.url()));
    }
    let mut p = Project::with_config(&config);
    for (k, v) in p_vars {
        p = p.with_var(&k, &v);
    }
    p
}

fn round_trip(format: &str, compression: &str) {
    round_trip_with(format, compression, &[], &[]);
}

/// Backup (with `backup_args`) → verify --deep → restore into a new database and over the
/// damaged original (with `restore_args`), comparing schema and data each time.
fn round_trip_with(format: &str, compression: &str, backup_args: &[&str], restore_args: &[&str]) {
    if !server_up() {
        return;
    }
    let source = PgDb::new("src");
    source.exec(SCHEMA);
    let target = PgDb::unborn("dst");
    let p = project_with(&[("dev", &source), ("copy", &target)]);
    let mut args = vec![
        "backup",
        "dev",
        "--format",
        format,
        "--compression",
        compression,
    ];
    args.extend_from_slice(backup_args);
    let doc = p.json(&args, 0);
    let b = &doc["backup"];
    assert_eq!(b["provider"], "postgres");
    assert!(
        b["server_version"]
            .as_str()
            .unwrap()
            .starts_with("PostgreSQL 1"),
        "{b}"
    );
    assert!(b["database_size_bytes"].as_u64().unwrap() > 1 << 20, "{b}");
    assert_eq!(b["format"], format);
    assert_eq!(b["compression"], compression);
    assert_eq!(b["tables"]["accounts"]["rows"], 300);
    assert_eq!(b["tables"]["measurements"]["rows"], 500);
    let id = b["id"].as_str().unwrap().to_string();
    p.run(&["verify", &id, "--deep"])
        .code(0)
        .stdout_has("row counts match");

    // Into a database that does not exist yet: created by the restore.
    let restore = |env: &str| {
        let mut args = vec!["restore", env, "--from", &id, "--yes"];
        args.extend_from_slice(restore_args);
        p.run(&args)
    };
    restore("copy")
        .code(0)
        .stderr_has("restoring a backup of `dev` into `copy`");
    assert_eq!(target.schema(), source.schema());
    assert_eq!(target.data(), source.data());
    assert_eq!(target.exec("SELECT last_value FROM tickets"), "4242");
    // Over the original after damage: the same again, and a safety backup of the damage.
    source.exec("DELETE FROM events WHERE id > 10; DROP VIEW rich;");
    let damaged = source.data();
    restore("dev")
        .code(0)
        .stdout_has("row counts match the manifest");
    assert_eq!(source.schema(), target.schema());
    assert_eq!(source.data(), target.data());
    let safety = p
        .backups()
        .into_iter()
        .find(|b| b["reason"] == "pre-restore")
        .expect("a safety backup");
    assert_eq!(safety["tables"]["events"]["rows"], 10);
    assert_ne!(damaged, source.data());
    // No scratch databases are left behind.
    let leftovers = psql(
        &admin_url(),
        &format!(
            "SELECT count(*) FROM pg_database WHERE datname LIKE '{}\\_\\_faber%' OR datname LIKE '{}\\_\\_faber%'",
            source.name, target.name
        ),
    );
    assert_eq!(leftovers, "0");
    // Nor work files (a compressed custom archive is decoded to one for pg_restore --jobs).
    for env in ["dev", "copy"] {
        let dir = p.path(&format!("{}/{env}", crate::harness::BACKUPS));
        let names: Vec<String> = std::fs::read_dir(&dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            names.iter().all(|n| !n.starts_with("restore-")),
            "{names:?}"
        );
    }
}

#[test]
fn pg_round_trip_plain_gzip() {
    round_trip("sql", "gzip");
}

#[test]
fn pg_round_trip_plain_zstd() {
    round_trip("sql", "zstd");
}

#[test]
fn pg_round_trip_plain_uncompressed() {
    round_trip("sql", "none");
}

#[test]
fn pg_round_trip_custom() {
    round_trip("custom", "none");
}

#[test]
fn pg_round_trip_custom_with_zstd_on_top() {
    round_trip("custom", "zstd");
}

#[test]
fn pg_round_trip_custom_with_gzip_on_top_decoded_for_parallel_jobs() {
    round_trip_with("custom", "gzip", &[], &["--jobs", "2"]);
}

#[test]
fn pg_round_trip_custom_restored_with_parallel_jobs() {
    round_trip_with("custom", "none", &[], &["--jobs", "3"]);
}

#[test]
fn pg_round_trip_directory_parallel() {
    round_trip_with("directory", "gzip", &["--jobs", "2"], &["--jobs", "2"]);
}

#[test]
fn pg_round_trip_directory_uncompressed() {
    round_trip_with("directory", "none", &[], &[]);
}

#[test]
fn pg_directory_zstd_needs_pg_dump_16() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("dirzstd");
    let p = project_with(&[("dev", &db)]);
    let run = p.run(&[
        "backup",
        "dev",
        "--format",
        "directory",
        "--compression",
        "zstd",
    ]);
    // The pg_dump faber-db picks: the one on PATH (at least the server's version here).
    let version = Command::new("pg_dump").arg("--version").output().unwrap();
    let major: u32 = String::from_utf8_lossy(&version.stdout)
        .split_whitespace()
        .find_map(|w| w.split('.').next()?.parse().ok())
        .unwrap();
    if major >= 16 {
        run.code(0);
    } else {
        run.code(1)
            .stderr_has("cannot compress directory dumps with zstd");
        p.assert_nothing_left("dev");
    }
}

#[test]
fn pg_directory_dumps_record_every_file_and_catch_any_change() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("dir");
    db.exec("CREATE TABLE t (x int, y text); INSERT INTO t SELECT g, repeat('y', 50) FROM generate_series(1, 2000) g; CREATE TABLE u (z int);");
    let p = project_with(&[("dev", &db)]);
    let doc = p.json(&["backup", "dev", "--format", "directory"], 0);
    let b = &doc["backup"];
    assert_eq!(b["compression"], "gzip", "pg_dump's own, per file");
    let id = b["id"].as_str().unwrap().to_string();
    let dir = p.data_file(&id);
    assert!(dir.is_dir() && dir.to_string_lossy().ends_with(".dir"));
    assert_eq!(crate::harness::mode(&dir), 0o700);

    // Every file is recorded with its own SHA-256, and the checksum is sha256sum's listing's.
    let files = b["files"].as_array().unwrap();
    assert!(files.iter().any(|f| f["name"] == "toc.dat"));
    let mut listing = String::new();
    for f in files {
        let path = dir.join(f["name"].as_str().unwrap());
        assert_eq!(crate::harness::mode(&path), 0o600, "{}", path.display());
        assert_eq!(sha256sum(&path), f["sha256"].as_str().unwrap());
        listing.push_str(&format!(
            "{}  {}\n",
            f["sha256"].as_str().unwrap(),
            f["name"].as_str().unwrap()
        ));
    }
    let listing_file = p.path("listing");
    std::fs::write(&listing_file, listing).unwrap();
    assert_eq!(sha256sum(&listing_file), b["sha256"].as_str().unwrap());
    let total: u64 = files
        .iter()
        .map(|f| f["size_bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(b["size_bytes"].as_u64().unwrap(), total);
    // The manifest beside the directory holds the same record.
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.with_file_name(format!("{id}.manifest.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["files"], b["files"]);
    p.run(&["verify", &id]).code(0);

    // A stray file is reported and ignored: pg_restore reads only the files the dump names.
    let stray = dir.join("notes.txt");
    std::fs::write(&stray, "hello").unwrap();
    p.run(&["verify", &id])
        .code(0)
        .stderr_has("ignoring what the backup does not record")
        .stderr_has("notes.txt");
    std::fs::remove_file(&stray).unwrap();

    // An entry that lost its file list (rewritten by a faber-db that did not know the field)
    // is still checked, by the checksum over the whole listing.
    let reg_path = p.path(&format!("{}/backups.json", crate::harness::BACKUPS));
    let mut reg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&reg_path).unwrap()).unwrap();
    reg["backups"][0].as_object_mut().unwrap().remove("files");
    std::fs::write(&reg_path, serde_json::to_string(&reg).unwrap()).unwrap();
    p.run(&["verify", &id]).code(0);
    std::fs::write(&stray, "hello").unwrap();
    p.run(&["verify", &id])
        .code(5)
        .stdout_has("checksum differs");
    std::fs::remove_file(&stray).unwrap();
    p.run(&["verify", &id]).code(0);
    assert_eq!(p.backups()[0]["status"], "valid");
    reg["backups"][0]["files"] = b["files"].clone();
    std::fs::write(&reg_path, serde_json::to_string(&reg).unwrap()).unwrap();

    // A changed data file: verify marks the backup corrupt and restore refuses it.
    let data_file = files
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .find(|n| n.ends_with(".dat.gz"))
        .unwrap();
    let path = dir.join(&data_file);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    p.run(&["verify", &id])
        .code(5)
        .stdout_has(&format!("{data_file} changed"));
    assert_eq!(p.backups()[0]["status"], "corrupt");
    db.exec("DELETE FROM t WHERE x > 10");
    p.run(&["restore", "dev", "--from", &id, "--yes"]).code(5);
    assert_eq!(db.exec("SELECT count(*) FROM t"), "10");

    // A missing directory is `missing`; delete removes the entry and whatever is left.
    let id2 = p.backup(&["dev", "--format", "directory", "--compression", "none"]);
    let dir2 = p.data_file(&id2);
    assert!(
        std::fs::read_dir(&dir2)
            .unwrap()
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().ends_with(".gz"))
    );
    std::fs::rename(&dir2, p.path("moved-away")).unwrap();
    p.run(&["verify", &id2]).code(5).stdout_has("missing");
    std::fs::rename(p.path("moved-away"), &dir2).unwrap();
    p.run(&["verify", &id2]).code(0);
    p.run(&["delete", &id, "--yes", "--force"]).code(0);
    assert!(!dir.exists());
    // Cleanup removes a directory dump whole, and never the newest valid backup.
    let id3 = p.backup(&["dev", "--format", "directory"]);
    p.run(&["cleanup", "dev", "--keep-last", "1", "--yes"])
        .code(0);
    assert!(!dir2.exists());
    assert!(p.data_file(&id3).is_dir());
    assert_eq!(p.ids(), [id3]);
}

pub fn sha256sum(path: &std::path::Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn pg_custom_archives_default_to_zstd_over_an_uncompressed_archive_and_damage_is_caught() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("custom");
    db.exec("CREATE TABLE t (x int, y text); INSERT INTO t SELECT g, repeat('y', 50) FROM generate_series(1, 2000) g;");
    let p = project_with(&[("dev", &db)]);
    let doc = p.json(&["backup", "dev", "--format", "custom"], 0);
    assert_eq!(doc["backup"]["compression"], "zstd");
    let id = doc["backup"]["id"].as_str().unwrap().to_string();
    assert!(p.data_file(&id).to_string_lossy().ends_with(".dump.zst"));
    p.run(&["verify", &id]).code(0);
    // pg_dump did not compress the archive: decoded, it holds the rows as text.
    let decoded = zstd::decode_all(std::fs::File::open(p.data_file(&id)).unwrap()).unwrap();
    assert!(String::from_utf8_lossy(&decoded).contains(&"y".repeat(50)));
    // `--compression none`: an archive nobody compressed, pg_restore reads it as it is.
    let doc = p.json(
        &[
            "backup",
            "dev",
            "--format",
            "custom",
            "--compression",
            "none",
        ],
        0,
    );
    let id = doc["backup"]["id"].as_str().unwrap().to_string();
    assert!(p.data_file(&id).to_string_lossy().ends_with(".dump"));
    p.run(&["verify", &id]).code(0);
    // Damage the archive's header: pg_restore --list rejects it (and the checksum too).
    let path = p.data_file(&id);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[..5].copy_from_slice(b"XXXXX");
    std::fs::write(&path, bytes).unwrap();
    p.run(&["verify", &id])
        .code(5)
        .stdout_has("checksum mismatch");
    p.run(&["restore", "dev", "--from", &id, "--yes"]).code(5);
    assert_eq!(db.exec("SELECT count(*) FROM t"), "2000");
    // With the registry's checksum made to match the damage, the structure check still fails.
    let out = Command::new("sha256sum").arg(&path).output().unwrap();
    let sha = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let reg_path = p.path(&format!("{}/backups.json", crate::harness::BACKUPS));
    let old_sha = doc["backup"]["sha256"].as_str().unwrap().to_string();
    let text = std::fs::read_to_string(&reg_path)
        .unwrap()
        .replace(&old_sha, &sha)
        .replace("\"corrupt\"", "\"valid\"");
    std::fs::write(&reg_path, text).unwrap();
    p.run(&["verify", &id])
        .code(5)
        .stdout_has("archive is damaged");
}

#[test]
fn pg_migration_state_of_every_layout() {
    if !server_up() {
        return;
    }
    let layouts = [
        (
            "prisma",
            "CREATE TABLE _prisma_migrations (id varchar(36) PRIMARY KEY, checksum varchar(64) NOT NULL, finished_at timestamptz, migration_name varchar(255) NOT NULL, logs text, rolled_back_at timestamptz, started_at timestamptz NOT NULL DEFAULT now(), applied_steps_count int NOT NULL DEFAULT 0); INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name) VALUES ('a', 'x', now(), '20240101_init'), ('b', 'x', now(), '20240201_users'), ('c', 'x', NULL, '20240301_failed');",
            "20240201_users",
            2,
        ),
        (
            "sqlx",
            "CREATE TABLE _sqlx_migrations (version bigint PRIMARY KEY, description text NOT NULL, installed_on timestamptz NOT NULL DEFAULT now(), success boolean NOT NULL, checksum bytea NOT NULL, execution_time bigint NOT NULL); INSERT INTO _sqlx_migrations VALUES (1, 'init', now(), true, '\\x00', 1), (2, 'users', now(), true, '\\x00', 1);",
            "2_users",
            2,
        ),
        (
            "diesel",
            "CREATE TABLE __diesel_schema_migrations (version varchar(50) PRIMARY KEY, run_on timestamp NOT NULL DEFAULT now()); INSERT INTO __diesel_schema_migrations (version) VALUES ('20240101000000'), ('20240301000000');",
            "20240301000000",
            2,
        ),
        (
            "flyway",
            "CREATE TABLE flyway_schema_history (installed_rank int PRIMARY KEY, version varchar(50), description varchar(200), type varchar(20), script varchar(1000), checksum int, installed_by varchar(100), installed_on timestamp DEFAULT now(), execution_time int, success boolean); INSERT INTO flyway_schema_history (installed_rank, version, description, success) VALUES (1, '1', 'init', true), (2, '2', 'users', true), (3, '3', 'broken', false);",
            "2__users",
            2,
        ),
        (
            "schema_migrations",
            "CREATE TABLE schema_migrations (version varchar PRIMARY KEY); INSERT INTO schema_migrations VALUES ('20230101120000'), ('20230215093000');",
            "20230215093000",
            2,
        ),
        (
            "golang-migrate",
            "CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL); INSERT INTO schema_migrations VALUES (20240301, false);",
            "20240301",
            1,
        ),
        (
            "knex",
            "CREATE TABLE knex_migrations (id serial PRIMARY KEY, name varchar(255), batch int, migration_time timestamptz); INSERT INTO knex_migrations (name, batch) VALUES ('001_init.js', 1), ('002_users.js', 1);",
            "002_users.js",
            2,
        ),
        (
            "django",
            "CREATE TABLE django_migrations (id serial PRIMARY KEY, app varchar(255), name varchar(255), applied timestamptz); INSERT INTO django_migrations (app, name) VALUES ('auth', '0001_initial'), ('blog', '0002_post');",
            "blog.0002_post",
            2,
        ),
        (
            "alembic",
            "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY); INSERT INTO alembic_version VALUES ('ae1027a6acf');",
            "ae1027a6acf",
            1,
        ),
    ];
    for (tool, sql, last, count) in layouts {
        let db = PgDb::new("mig");
        db.exec(sql);
        let p = project_with(&[("dev", &db)]);
        let doc = p.json(&["backup", "dev"], 0);
        let m = &doc["backup"]["migrations"];
        assert_eq!(m["tool"], tool, "{m}");
        assert_eq!(m["last_migration"], last, "{tool}");
        assert_eq!(m["applied_count"], count, "{tool}");
    }
}

#[test]
fn pg_connection_failures_are_exit_3() {
    if !server_up() {
        return;
    }
    let missing = PgDb::unborn("absent");
    let p = project_with(&[("dev", &missing)]);
    p.run(&["backup", "dev"])
        .code(3)
        .stderr_has(&missing.name)
        .stderr_has("hint: create the database");
    // A role that does not exist is told about the role, not the database.
    let no_role = Project::with_config("[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\n")
        .with_var(
            "DEV_DATABASE_URL",
            "postgres://faber_no_such_role@127.0.0.1:5432/postgres",
        );
    no_role
        .run(&["backup", "dev"])
        .code(3)
        .stderr_has("faber_no_such_role")
        .stderr_has("create that role")
        .stderr_lacks("create the database");
    let p = Project::with_config("[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\n").with_var(
        "DEV_DATABASE_URL",
        "postgres://postgres@127.0.0.1:1/postgres",
    );
    p.run(&["backup", "dev"])
        .code(3)
        .stderr_has("cannot connect")
        .stderr_has("hint:");
    assert!(p.backups().is_empty());
}

#[test]
fn pg_password_never_reaches_argv_output_or_files() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("secret");
    db.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1);");
    // Wrappers in front of the real tools record every argument list they are given.
    let p = project_with(&[("dev", &db)]);
    let (path, log) = p.argv_wrappers(&["pg_dump", "psql"]);
    let secret = "s3cr3t-Pa55";
    let mut url = url::Url::parse(&db.url()).unwrap();
    url.set_password(Some(secret)).unwrap();
    let p = p
        .with_var("DEV_DATABASE_URL", url.as_str())
        .with_var("PATH", &path);
    let backup = p.run(&["backup", "dev"]).code(0);
    let id = p.ids()[0].clone();
    let verify = p.run(&["verify", &id, "--deep"]).code(0);
    let restore = p.run(&["restore", "dev", "--yes"]).code(0);
    let status = p.run(&["--json", "status"]).code(0);
    // The Claude Code hook writes the agent's command to the history: never its password.
    let answer = crate::hook::hook(
        &p,
        &format!("DATABASE_URL='{url}' npx prisma migrate deploy"),
    );
    let hook = answer.out.map(|o| o.to_string()).unwrap_or_default() + &answer.stderr;
    let history =
        std::fs::read_to_string(p.path(&format!("{}/history.jsonl", crate::harness::BACKUPS)))
            .unwrap();
    assert!(history.contains("\"event\":\"hook\""), "{history}");
    let argv = std::fs::read_to_string(&log).unwrap();
    assert!(
        argv.contains("pg_dump") && argv.contains("psql"),
        "the wrappers ran: {argv}"
    );
    for (what, text) in [
        ("argv", argv),
        ("backup output", backup.stdout + &backup.stderr),
        ("verify output", verify.stdout + &verify.stderr),
        ("restore output", restore.stdout + &restore.stderr),
        ("status output", status.stdout + &status.stderr),
        ("hook output", hook),
    ] {
        assert!(!text.contains(secret), "the password appears in {what}");
    }
    for f in p.backup_files() {
        let bytes = std::fs::read(p.path(&format!("{}/{f}", crate::harness::BACKUPS))).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(secret),
            "the password appears in {f}"
        );
    }
    assert!(status_url_redacted(&p));
}

fn status_url_redacted(p: &Project) -> bool {
    let doc = p.json(&["status"], 0);
    doc["environments"][0]["url"]
        .as_str()
        .is_some_and(|u| u.contains(":***@"))
}

/// The start of a stand-in pg_dump for directory dumps: makes the `--file` directory and writes
/// a first file into it.
const WRITES_TOC: &str = "while [ $# -gt 0 ]; do if [ \"$1\" = --file ]; then mkdir -p \"$2\"; echo toc > \"$2/toc.dat\"; fi; shift; done\n";

/// A directory of stand-in tools: `psql` and `pg_restore` are the real ones, `pg_dump` runs
/// `script` (or is absent); PATH is that directory alone and no versioned tools are found.
pub fn fake_tools(p: &Project, pg_dump_script: Option<&str>) -> (String, String) {
    let bin = p.path("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["psql", "pg_restore"] {
        std::os::unix::fs::symlink(which::which(tool).unwrap(), bin.join(tool)).unwrap();
    }
    if let Some(script) = pg_dump_script {
        let path = bin.join("pg_dump");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    let libdir = p.path("no-versioned-tools");
    std::fs::create_dir_all(&libdir).unwrap();
    (bin.display().to_string(), libdir.display().to_string())
}

#[test]
fn pg_dump_killed_midway_registers_nothing() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("killed");
    db.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1);");
    let p = project_with(&[("dev", &db)]);
    let script = crate::harness::stand_in(
        "pg_dump",
        "echo '-- PostgreSQL database dump'\necho 'SET statement_timeout = 0;'\nkill -9 $$\n",
    );
    let (path, libdir) = fake_tools(&p, Some(&script));
    let p = p
        .with_var("PATH", &path)
        .with_var("FABER_PG_LIBDIR", &libdir);
    p.run(&["backup", "dev"])
        .code(6)
        .stderr_has("pg_dump was killed");
    p.assert_nothing_left("dev");
}

#[test]
fn pg_directory_dump_killed_midway_leaves_no_partial_directory() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("dirkilled");
    db.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1);");
    let p = project_with(&[("dev", &db)]);
    // Writes a first file where it was told to, then dies.
    let script = crate::harness::stand_in("pg_dump", &format!("{WRITES_TOC}kill -9 $$\n"));
    let (path, libdir) = fake_tools(&p, Some(&script));
    let p = p
        .with_var("PATH", &path)
        .with_var("FABER_PG_LIBDIR", &libdir);
    p.run(&["backup", "dev", "--format", "directory"])
        .code(6)
        .stderr_has("pg_dump was killed");
    p.assert_nothing_left("dev");
}

#[test]
fn killing_faber_db_ends_its_pg_dump_and_the_next_run_sweeps_the_partial_directory() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("orphan");
    db.exec("CREATE TABLE t (x int);");
    let p = project_with(&[("dev", &db)]);
    let pid_file = p.path("pg_dump.pid");
    // Starts writing where it was told to, then takes its time (as its own process: exec).
    let script = crate::harness::stand_in(
        "pg_dump",
        &format!(
            "{WRITES_TOC}echo $$ > '{}'\nexec '{}' 120\n",
            pid_file.display(),
            which::which("sleep").unwrap().display()
        ),
    );
    let (path, libdir) = fake_tools(&p, Some(&script));
    let p = p
        .with_var("PATH", &path)
        .with_var("FABER_PG_LIBDIR", &libdir);
    let mut faber = p
        .command(&["backup", "dev", "--format", "directory"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let pid = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        {
            break pid;
        }
        assert!(started.elapsed().as_secs() < 30, "pg_dump never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let partial = p
        .backup_files()
        .into_iter()
        .find(|f| f.contains(".dir.partial/"))
        .unwrap_or_else(|| panic!("no .partial directory: {:?}", p.backup_files()));
    faber.kill().unwrap();
    faber.wait().unwrap();
    // The dump tool goes with it (a zombie waiting for its reaper counts as gone).
    let alive = crate::harness::process_alive;
    let started = std::time::Instant::now();
    while alive(pid) {
        assert!(
            started.elapsed().as_secs() < 10,
            "pg_dump {pid} outlived faber-db"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        p.backup_files().contains(&partial),
        "{:?}",
        p.backup_files()
    );
    p.run(&["list"])
        .code(0)
        .stderr_has("removed")
        .stderr_has(".dir.partial");
    p.assert_nothing_left("dev");
}

#[test]
fn pg_dump_missing_or_too_old_is_exit_4() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("tools");
    let p = project_with(&[("dev", &db)]);
    let (path, libdir) = fake_tools(&p, None);
    let missing = p
        .with_var("PATH", &path)
        .with_var("FABER_PG_LIBDIR", &libdir);
    missing
        .run(&["backup", "dev"])
        .code(4)
        .stderr_has("pg_dump is not installed")
        .stderr_has("postgresql-client");

    let p = project_with(&[("dev", &db)]);
    let (path, libdir) = fake_tools(&p, Some("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n"));
    let old = p
        .with_var("PATH", &path)
        .with_var("FABER_PG_LIBDIR", &libdir);
    old.run(&["backup", "dev"])
        .code(4)
        .stderr_has("no pg_dump of version")
        .stderr_has("9.6.24");
    assert!(old.backups().is_empty());
}

#[test]
fn pg_wrong_password_is_exit_3() {
    if !server_up() {
        return;
    }
    // scripts/services.sh makes this one role give its password over TCP.
    psql(
        &admin_url(),
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'faber_pw_test') \
         THEN CREATE ROLE faber_pw_test LOGIN; END IF; END $$; ALTER ROLE faber_pw_test PASSWORD 'right-pw'",
    );
    let db = PgDb::new("pw");
    psql(
        &admin_url(),
        &format!("ALTER DATABASE {} OWNER TO faber_pw_test", db.name),
    );
    let with_password = |pw: &str| {
        let mut u = url::Url::parse(&db.url()).unwrap();
        u.set_username("faber_pw_test").unwrap();
        u.set_password(Some(pw)).unwrap();
        u.to_string()
    };
    let probe = Command::new("psql")
        .args(["-X", "-w", &with_password("wrong-pw"), "-c", "SELECT 1"])
        .output()
        .unwrap();
    if probe.status.success() {
        let msg = "PostgreSQL accepts any password for faber_pw_test: run scripts/services.sh";
        assert!(!services::required(), "{msg}");
        eprintln!("skipping: {msg}");
        return;
    }
    let p = Project::with_config("[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\n")
        .with_var("DEV_DATABASE_URL", &with_password("wrong-pw"));
    let run = p
        .run(&["backup", "dev"])
        .code(3)
        .stderr_has("password authentication failed")
        .stderr_has("hint:");
    assert!(!run.stderr.contains("wrong-pw"));
    let p = p.with_var("DEV_DATABASE_URL", &with_password("right-pw"));
    p.run(&["backup", "dev"]).code(0);
}

#[test]
fn pg_restore_refuses_connected_sessions_unless_told_to_end_them() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("busy");
    db.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2);");
    let p = project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    db.exec("DELETE FROM t");
    // An application session that stays connected.
    let mut app = Command::new("psql")
        .args(["-X", "-q", &db.url(), "-c", "SELECT pg_sleep(60)"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let connected = || db_sessions(&db) > 0;
    let started = std::time::Instant::now();
    while !connected() && started.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    p.run(&["restore", "dev", "--from", &id, "--yes"])
        .code(7)
        .stderr_has("--terminate-connections");
    assert_eq!(
        db.exec("SELECT count(*) FROM t"),
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
    assert_eq!(db.exec("SELECT count(*) FROM t"), "2");
    let _ = app.kill();
    let _ = app.wait();
}

pub fn db_sessions(db: &PgDb) -> u32 {
    psql(
        &admin_url(),
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}'",
            db.name
        ),
    )
    .parse()
    .unwrap()
}

#[test]
fn pg_leftovers_of_a_killed_restore_are_swept_and_odd_names_work() {
    if !server_up() {
        return;
    }
    // A name with characters that need quoting everywhere, `=` included (a connection string's).
    let db = PgDb::new("odd");
    let odd = format!("{}-Odd Name=1", db.name);
    psql(
        &admin_url(),
        &format!("ALTER DATABASE {} RENAME TO \"{odd}\"", db.name),
    );
    let odd_db = PgDb { name: odd.clone() };
    std::mem::forget(db);
    let mut url = url::Url::parse(&admin_url()).unwrap();
    url.set_path(&odd);
    psql(
        url.as_str(),
        "CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2), (3);",
    );
    let p = Project::with_config("[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\n")
        .with_var("DEV_DATABASE_URL", url.as_str())
        // The caller's PG* variables never redirect faber-db's tools.
        .with_var("PGPORT", "1")
        .with_var("PGDATABASE", "nowhere");
    let id = p.backup(&["dev", "--format", "custom"]);
    // A restore killed with its scratch database loaded: the next one drops it.
    crate::reliability::kill_at(
        &p,
        &["restore", "dev", "--from", &id, "--yes"],
        "restore:before-commit",
    );
    let stem: String = odd.chars().take(30).collect();
    let scratch = |like: &str| {
        psql(
            &admin_url(),
            &format!(
                "SELECT coalesce(string_agg(datname, ','), '') FROM pg_database WHERE datname LIKE '{}'",
                like.replace('_', "\\_")
            ),
        )
    };
    let leftover = scratch(&format!("{stem}__faber_restore_%"));
    assert!(
        !leftover.is_empty(),
        "the killed run left its scratch database"
    );
    psql(url.as_str(), "DELETE FROM t");
    p.run(&["restore", "dev", "--from", &id, "--yes"])
        .code(0)
        .stderr_has(&leftover);
    assert_eq!(psql(url.as_str(), "SELECT count(*) FROM t"), "3");
    assert_eq!(scratch(&leftover), "");
    p.run(&["verify", &id, "--deep"]).code(0);
    drop(odd_db);
}

/// Names of the databases whose names begin with `prefix`, comma-separated.
fn databases_like(prefix: &str) -> String {
    psql(
        &admin_url(),
        &format!(
            "SELECT coalesce(string_agg(datname, ',' ORDER BY datname), '') FROM pg_database \
             WHERE starts_with(datname, '{prefix}')"
        ),
    )
}

#[test]
fn pg_only_scratch_databases_of_this_project_are_dropped_never_a_look_alike_or_a_live_runs() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("lookalike");
    db.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2);");
    // A user's database that merely looks like one of faber-db's.
    let archive = PgDb {
        name: format!("{}__faber_archive_2023", db.name),
    };
    psql(&admin_url(), &format!("CREATE DATABASE {}", archive.name));
    // Two environments of the same database: their restores do not wait for each other.
    let p = project_with(&[("dev", &db), ("twin", &db)]);
    let id = p.backup(&["dev"]);
    let twin = p.paused_at(
        &["restore", "twin", "--from", &id, "--yes"],
        "restore:before-commit",
    );
    assert!(databases_like(&format!("{}__faber_restore_", db.name)).contains("restore"));
    p.run(&["restore", "dev", "--from", &id, "--yes"]).code(0);
    let out = twin.resume();
    assert!(
        out.status.success(),
        "the other run's staged database was left alone: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        databases_like(&archive.name),
        archive.name,
        "the look-alike stays"
    );
    p.run(&["verify", &id, "--deep"]).code(0);
    assert_eq!(
        databases_like(&archive.name),
        archive.name,
        "the look-alike stays"
    );
    assert_eq!(databases_like(&format!("{}__faber_r", db.name)), "");
}

#[test]
fn pg_a_killed_deep_verify_leaves_a_copy_that_doctor_reports_and_the_next_run_drops() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("deepkill");
    db.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2);");
    let p = project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    crate::reliability::kill_at(&p, &["verify", &id, "--deep"], "verify:deep-loaded");
    let leftover = databases_like(&format!("{}__faber_verify_", db.name));
    assert!(!leftover.is_empty());
    p.run(&["doctor"])
        .code(0)
        .stderr_has(&format!("database {leftover}"))
        .stderr_has("left by a killed run");
    p.run(&["verify", &id, "--deep"])
        .code(0)
        .stderr_has(&format!("dropped database {leftover}"));
    assert_eq!(databases_like(&format!("{}__faber_", db.name)), "");
    p.run(&["doctor"])
        .code(0)
        .stderr_lacks("left by a killed run");
}

#[test]
fn pg_no_write_made_before_the_swap_is_missing_from_the_safety_backup() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("nolost");
    db.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2), (3);");
    let p = project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    let restore = p.paused_at(
        &["--json", "restore", "dev", "--from", &id, "--yes"],
        "restore:before-commit",
    );
    // Acknowledged to a short-lived connection while the restore is staged and checked.
    db.exec("INSERT INTO t VALUES (42);");
    let out = restore.resume();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{doc}");
    assert_eq!(db.exec("SELECT count(*) FROM t"), "3");
    let safety = doc["safety_backup"].as_str().unwrap().to_string();
    p.run(&[
        "restore",
        "dev",
        "--from",
        &safety,
        "--yes",
        "--no-safety-backup",
    ])
    .code(0);
    assert_eq!(
        db.exec("SELECT string_agg(x::text, ',' ORDER BY x) FROM t"),
        "1,2,3,42",
        "the write made before the swap is in the safety backup"
    );
    assert_eq!(databases_like(&format!("{}__faber_", db.name)), "");
}

#[test]
fn pg_a_restore_killed_after_its_swap_keeps_the_replaced_data_until_a_human_decides() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("swapkill");
    db.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1);");
    let p = project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    db.exec("INSERT INTO t VALUES (2);");
    crate::reliability::kill_at(
        &p,
        &["restore", "dev", "--from", &id, "--yes"],
        "restore:swapped",
    );
    assert_eq!(
        db.exec("SELECT count(*) FROM t"),
        "1",
        "the restore is in place"
    );
    let kept = databases_like(&format!("{}__faber_old_", db.name));
    assert!(!kept.is_empty(), "the replaced data is kept");
    p.run(&["doctor"])
        .code(5)
        .stdout_has(&format!("database {kept}"))
        .stdout_has("the only copy");
    // No sweep drops it: not the next restore, not a repair.
    p.run(&["restore", "dev", "--from", &id, "--yes"]).code(0);
    p.run(&["doctor", "--repair"]).code(5);
    assert_eq!(databases_like(&kept), kept);
    let mut url = url::Url::parse(&admin_url()).unwrap();
    url.set_path(&kept);
    assert_eq!(psql(url.as_str(), "SELECT count(*) FROM t"), "2");
    // Once a human dropped it, faber-db forgets it.
    psql(&admin_url(), &format!("DROP DATABASE \"{kept}\""));
    p.run(&["restore", "dev", "--from", &id, "--yes"]).code(0);
    p.run(&["doctor"]).code(0).stdout_lacks("the only copy");
}

#[test]
fn pg_plain_dumps_count_rows_from_the_stream_under_any_name() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("names");
    db.exec(
        "CREATE SCHEMA \"Odd \"\"Schema\"\"\"; \
         CREATE TABLE \"Odd \"\"Schema\"\"\".\"Mixed.Case (t)\" (x text); \
         INSERT INTO \"Odd \"\"Schema\"\"\".\"Mixed.Case (t)\" SELECT 'line\\.' || g || E'\\n\\\\.' FROM generate_series(1, 7) g; \
         CREATE TABLE \"select\" (x int); INSERT INTO \"select\" VALUES (1), (2); \
         CREATE TABLE empty (x int); \
         CREATE TABLE m (at int NOT NULL) PARTITION BY RANGE (at); \
         CREATE TABLE m_1 PARTITION OF m FOR VALUES FROM (0) TO (10); \
         CREATE TABLE m_2 PARTITION OF m FOR VALUES FROM (10) TO (20); \
         INSERT INTO m SELECT g FROM generate_series(0, 14) g; \
         CREATE TABLE lonely (at int) PARTITION BY RANGE (at);",
    );
    let p = project_with(&[("dev", &db)]);
    // Counted from the dump itself: exact whatever the size limit says.
    let config = std::fs::read_to_string(p.path(".fractary/plugins/faber-db/config.toml")).unwrap();
    p.write(
        ".fractary/plugins/faber-db/config.toml",
        &config.replacen(
            "[defaults]\n",
            "[defaults]\nrow_count_max_table_size = \"0\"\n",
            1,
        ),
    );
    let doc = p.json(&["backup", "dev", "--format", "sql"], 0);
    let tables = &doc["backup"]["tables"];
    let exact = |n: u64| serde_json::json!({ "rows": n });
    // Quoted where a part holds a dot or a quote: `schema.name` alone would be ambiguous.
    assert_eq!(
        tables["\"Odd \"\"Schema\"\"\".\"Mixed.Case (t)\""],
        exact(7),
        "{tables}"
    );
    assert_eq!(tables["select"], exact(2), "{tables}");
    assert_eq!(tables["empty"], exact(0), "{tables}");
    assert_eq!(tables["m"], exact(15), "{tables}");
    assert_eq!(tables["m_1"], exact(10), "{tables}");
    assert_eq!(tables["m_2"], exact(5), "{tables}");
    // A partitioned table without partitions has no data in the dump: the estimate, marked.
    assert_eq!(tables["lonely"]["estimated"], true, "{tables}");
    let id = doc["backup"]["id"].as_str().unwrap().to_string();
    p.run(&["verify", &id, "--deep"]).code(0);

    // Restored, each table's rows are the server's own answers (psql's `COPY n`), so they are
    // exact under any name and whatever the size limit, where `count(*)` would only estimate:
    // a manifest made to say one row more is caught by the restore and the deep check alike.
    db.exec("DELETE FROM m; DELETE FROM \"select\";");
    p.run(&["restore", "dev", "--from", &id, "--yes"])
        .code(0)
        .stdout_has("row counts match the manifest")
        // Only `lonely`, estimated in the manifest: it has no rows to answer for.
        .stdout_has("(1 large tables have estimated counts, not compared)");
    assert_eq!(db.exec("SELECT count(*) FROM m"), "15");
    let reg = p.path(&format!("{}/backups.json", crate::harness::BACKUPS));
    let text = std::fs::read_to_string(&reg).unwrap();
    assert_eq!(text.matches("\"rows\": 2\n").count(), 1, "{text}");
    std::fs::write(&reg, text.replace("\"rows\": 2\n", "\"rows\": 3\n")).unwrap();
    p.run(&["restore", "dev", "--from", &id, "--yes"])
        .code(5)
        .stderr_has("select 3 → 2");
    p.run(&["verify", &id, "--deep"])
        .code(5)
        .stdout_has("select 3 → 2");
}

#[test]
fn pg_restore_keeps_the_databases_privileges_and_settings() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("props");
    psql(
        &admin_url(),
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'faber_it_reader') \
         THEN CREATE ROLE faber_it_reader; END IF; END $$",
    );
    let n = &db.name;
    for sql in [
        format!("REVOKE CONNECT ON DATABASE {n} FROM PUBLIC"),
        format!("GRANT CONNECT ON DATABASE {n} TO faber_it_reader"),
        format!("ALTER DATABASE {n} SET search_path TO app, public"),
        format!("ALTER DATABASE {n} SET work_mem TO '8MB'"),
        format!("ALTER DATABASE {n} SET app.tenant TO 'acme'"),
        format!("ALTER DATABASE {n} CONNECTION LIMIT 42"),
        format!("COMMENT ON DATABASE {n} IS 'the app''s data'"),
    ] {
        psql(&admin_url(), &sql);
    }
    db.exec("CREATE SCHEMA app; CREATE TABLE app.t (x int); INSERT INTO app.t VALUES (1);");
    let props = |name: &str| {
        psql(
            &admin_url(),
            &format!(
                "SELECT (SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(d.datacl) a), d.datconnlimit, shobj_description(d.oid, 'pg_database'), \
                 (SELECT string_agg(c, ';' ORDER BY c) FROM pg_db_role_setting s, unnest(s.setconfig) c WHERE s.setdatabase = d.oid) \
                 FROM pg_database d WHERE d.datname = '{name}'"
            ),
        )
    };
    let before = props(n);
    let p = project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    p.run(&["restore", "dev", "--from", &id, "--yes"]).code(0);
    assert_eq!(props(n), before);
    assert_eq!(
        db.exec("SELECT count(*) FROM t"),
        "1",
        "search_path app, public still applies"
    );
}

#[test]
fn pg_counts_come_from_the_dumps_own_snapshot_under_live_writes() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("live");
    db.exec(
        "CREATE TABLE big (id bigserial PRIMARY KEY, payload text); \
         INSERT INTO big (payload) SELECT repeat(md5(g::text), 8) FROM generate_series(1, 100000) g; \
         CREATE TABLE ticks (id bigserial PRIMARY KEY, at timestamptz DEFAULT now());",
    );
    let p = project_with(&[("dev", &db)]);
    // The application writes all the time, through one session.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let url = db.url();
        std::thread::spawn(move || {
            let mut psql = Command::new("psql")
                .args(["-X", "-q", &url])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let mut stdin = psql.stdin.take().unwrap();
            while !stop.load(Ordering::Relaxed) {
                use std::io::Write;
                if writeln!(stdin, "INSERT INTO ticks DEFAULT VALUES;").is_err() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            drop(stdin);
            let _ = psql.wait();
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(200));
    let ids: Vec<String> = (0..3)
        .map(|_| p.backup(&["dev", "--compression", "zstd"]))
        .collect();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    for id in &ids {
        // The deep check loads the dump and counts it: equal to what the backup recorded.
        p.run(&["verify", id, "--deep"])
            .code(0)
            .stdout_has("row counts match");
    }
}

#[test]
fn pg_free_space_is_checked_against_the_formats_estimate() {
    if !server_up() {
        return;
    }
    let Some(fs) = crate::services::Tmpfs::mount("6m") else {
        return;
    };
    let db = PgDb::new("space");
    db.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1);");
    let size: u64 = db
        .exec("SELECT pg_database_size(current_database())")
        .parse()
        .unwrap();
    // Between half the database's size (a compressed dump's estimate) and all of it.
    assert!(size / 2 + (1 << 20) < 6 << 20 && size > 6 << 20, "{size}");
    let backups = fs.dir.path().join("backups");
    let p = project_with(&[("dev", &db)]);
    p.use_backup_dir(&backups);
    p.run(&["backup", "dev", "--compression", "none"])
        .code(2)
        .stderr_has("not enough free space");
    p.run(&[
        "backup",
        "dev",
        "--format",
        "directory",
        "--compression",
        "none",
    ])
    .code(2);
    // Refused before its directory is even made: nothing there, if it is there at all.
    assert!(!std::fs::read_dir(backups.join("dev")).is_ok_and(|mut d| d.next().is_some()));
    p.run(&["backup", "dev", "--compression", "gzip"]).code(0);
    p.run(&["backup", "dev", "--format", "custom"]).code(0);
}

#[test]
fn pg_tables_above_the_size_limit_get_estimated_counts_that_are_not_compared() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("estimate");
    db.exec(
        "CREATE TABLE big (x int, y text); INSERT INTO big SELECT g, repeat('y', 100) FROM generate_series(1, 3000) g; \
         CREATE TABLE empty (x int); ANALYZE big;",
    );
    let p = project_with(&[("dev", &db)]);
    let config = std::fs::read_to_string(p.path(".fractary/plugins/faber-db/config.toml")).unwrap();
    // Every table with a byte in it is "large"; an environment may set its own limit.
    let config = config.replacen(
        "[defaults]\n",
        "[defaults]\nrow_count_max_table_size = \"0\"\n",
        1,
    );
    p.write(".fractary/plugins/faber-db/config.toml", &config);
    let doc = p.json(&["backup", "dev", "--format", "custom"], 0);
    let tables = &doc["backup"]["tables"];
    assert_eq!(tables["big"]["estimated"], true, "{tables}");
    assert_eq!(tables["big"]["rows"], 3000, "ANALYZE counted them all");
    assert_eq!(
        tables["empty"],
        serde_json::json!({"rows": 0}),
        "exact counts carry no flag"
    );
    let id = doc["backup"]["id"].as_str().unwrap().to_string();
    // The restored table is not analyzed yet: its estimate differs, and is not held against it.
    db.exec("DELETE FROM big WHERE x > 5");
    p.run(&["restore", "dev", "--from", &id, "--yes"])
        .code(0)
        .stdout_has("estimated counts, not compared");
    assert_eq!(db.exec("SELECT count(*) FROM big"), "3000");
    p.run(&["verify", &id, "--deep"]).code(0);

    let config = config.replace(
        "url_env = \"DEV_DATABASE_URL\"\n",
        "url_env = \"DEV_DATABASE_URL\"\nrow_count_max_table_size = \"1 GiB\"\n",
    );
    p.write(".fractary/plugins/faber-db/config.toml", &config);
    let doc = p.json(&["backup", "dev"], 0);
    assert_eq!(
        doc["backup"]["tables"]["big"],
        serde_json::json!({"rows": 3000})
    );
    p.write(
        ".fractary/plugins/faber-db/config.toml",
        &config.replace("\"1 GiB\"", "\"lots\""),
    );
    p.run(&["list"]).code(1).stderr_has("invalid size `lots`");
}

#[test]
fn pg_a_directory_backup_changed_while_pg_restore_reads_it_is_not_put_in_place() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("racy");
    db.exec("CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 100);");
    let p = project_with(&[("dev", &db)]);
    let id = p.backup(&["dev", "--format", "directory"]);
    db.exec("DELETE FROM t WHERE x > 1");
    // A pg_restore that loads as asked, then changes a file of the dump it read.
    let bin = p.path("racybin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["psql", "pg_dump"] {
        std::os::unix::fs::symlink(which::which(tool).unwrap(), bin.join(tool)).unwrap();
    }
    let script = format!(
        "#!/bin/sh\n'{}' \"$@\"\nstatus=$?\nfor last; do :; done\n\
         if [ -d \"$last\" ]; then echo tampered >> \"$last/toc.dat\"; fi\nexit $status\n",
        which::which("pg_restore").unwrap().display()
    );
    std::fs::write(bin.join("pg_restore"), script).unwrap();
    std::fs::set_permissions(
        bin.join("pg_restore"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let libdir = p.path("no-versioned-tools");
    std::fs::create_dir_all(&libdir).unwrap();
    let p = p
        .with_var("PATH", &bin.display().to_string())
        .with_var("FABER_PG_LIBDIR", &libdir.display().to_string());
    p.run(&["restore", "dev", "--from", &id, "--yes", "--jobs", "2"])
        .code(5)
        .stderr_has("toc.dat changed")
        .stderr_has("nothing was restored");
    assert_eq!(db.exec("SELECT count(*) FROM t"), "1");
    let leftovers = psql(
        &admin_url(),
        &format!(
            "SELECT count(*) FROM pg_database WHERE datname LIKE '{}\\_\\_faber%'",
            db.name
        ),
    );
    assert_eq!(leftovers, "0");
}

#[test]
fn migrate_never_echoes_the_password_of_database_url() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("echo");
    let secret = "s3cr3t-Migr8";
    let mut url = url::Url::parse(&db.url()).unwrap();
    url.set_password(Some(secret)).unwrap();
    let p = Project::with_config(
        "[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\n\
         migrate_command = \"echo using $DATABASE_URL; echo password is $PW >&2; exit 3\"\n",
    )
    .with_var("DEV_DATABASE_URL", url.as_str())
    .with_var("PW", secret);
    let run = p.run(&["--json", "migrate", "dev"]).code(9);
    assert!(
        run.stderr.contains("using postgres://postgres:***@"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("password is ***"), "{}", run.stderr);
    for (what, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        assert!(!text.contains(secret), "the password appears in {what}");
    }
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["error"]["code"], 9);
    assert!(doc["output_tail"].to_string().contains("***"), "{doc}");
    for f in p.backup_files() {
        let text = std::fs::read_to_string(p.path(&format!("{}/{f}", crate::harness::BACKUPS)))
            .unwrap_or_default();
        assert!(!text.contains(secret), "the password appears in {f}");
    }
}

#[test]
fn ctrl_c_during_a_backup_stops_the_dump_and_leaves_nothing() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("sigint");
    db.exec("CREATE TABLE t (x int);");
    for signal in ["INT", "TERM"] {
        let p = project_with(&[("dev", &db)]);
        let pid_file = p.path("pg_dump.pid");
        // A dump that never ends.
        let script = crate::harness::stand_in(
            "pg_dump",
            &format!(
                "echo $$ > '{}'\nwhile :; do echo '-- a dump that goes on and on'; done\n",
                pid_file.display()
            ),
        );
        let (path, libdir) = fake_tools(&p, Some(&script));
        let p = p
            .with_var("PATH", &path)
            .with_var("FABER_PG_LIBDIR", &libdir);
        let child = p
            .command(&["backup", "dev"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        // The stand-in writes its pid after it creates the file: wait until it reads back whole.
        let dump_pid: u32 = loop {
            let pid = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.trim().parse().ok());
            if let Some(pid) = pid
                && p.backup_files().iter().any(|f| f.ends_with(".partial"))
            {
                break pid;
            }
            if started.elapsed().as_secs() >= 20 {
                // Not left behind streaming a dump that never ends.
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(child.id().to_string())
                    .status();
                panic!("the dump never started");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(8), "SIG{signal}: {stderr}");
        assert!(stderr.contains("interrupted"), "{stderr}");
        p.assert_nothing_left("dev");
        assert!(
            !crate::harness::process_alive(dump_pid),
            "the dump tool {dump_pid} was left running"
        );
    }
}

#[test]
fn pg_a_backup_that_fills_the_disk_is_exit_2_and_leaves_nothing() {
    if !server_up() {
        return;
    }
    let Some(fs) = crate::services::Tmpfs::mount("18m") else {
        return;
    };
    let db = PgDb::new("diskfull");
    // ~21 MB of incompressible bytes: the estimate (half the database's size for a compressed
    // dump) fits in 18 MB, the dump does not.
    db.exec(
        "CREATE TABLE t (b bytea); ALTER TABLE t ALTER COLUMN b SET STORAGE EXTERNAL; \
         INSERT INTO t SELECT (SELECT string_agg(decode(md5((g * 1000 + i)::text), 'hex'), ''::bytea) \
         FROM generate_series(1, 1000) i) FROM generate_series(1, 1300) g;",
    );
    let backups = fs.dir.path().join("backups");
    let p = project_with(&[("dev", &db)]);
    p.use_backup_dir(&backups);
    for format in ["sql", "directory"] {
        p.run(&["backup", "dev", "--format", format])
            .code(2)
            .stderr_has("hint:");
        let left: Vec<_> = std::fs::read_dir(backups.join("dev"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "{format}: {left:?}");
        let registry = std::fs::read_to_string(backups.join("backups.json")).unwrap_or_default();
        assert!(!registry.contains("backup-"), "{registry}");
        let free = fs4::available_space(fs.dir.path()).unwrap();
        assert!(
            free > 17 << 20,
            "{format}: the space was given back ({free} free)"
        );
    }
}

#[test]
fn pg_backups_killed_at_each_step_leave_a_consistent_state() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("killsteps");
    db.exec("CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 1000);");
    let p = project_with(&[("dev", &db)]);
    p.backup(&["dev"]);
    for extra in [&["--format", "sql"][..], &["--format", "directory"][..]] {
        crate::reliability::killed_before_the_commit_leaves_nothing(&p, "dev", extra);
        crate::reliability::killed_after_the_commit_is_finished_by_the_next_run(&p, "dev", extra);
    }
}

#[test]
fn pg_a_killed_restore_is_reported_and_leaves_no_scratch_behind() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("killrestore");
    db.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1);");
    let p = project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    db.exec("INSERT INTO t VALUES (2);");
    let untouched = || db.exec("SELECT count(*) FROM t") == "2";
    crate::reliability::killed_restore_is_reported_and_can_be_finished(
        &p, "dev", &id, &untouched, false,
    );
    assert_eq!(db.exec("SELECT count(*) FROM t"), "1");
    let leftovers = psql(
        &admin_url(),
        &format!(
            "SELECT count(*) FROM pg_database WHERE datname LIKE '{}\\_\\_faber%'",
            db.name
        ),
    );
    assert_eq!(
        leftovers, "0",
        "the killed run's scratch database was swept"
    );
}

#[test]
fn pg_the_password_shows_nowhere_whatever_the_command_and_mode() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("secretall");
    db.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1);");
    let secret = "Sup3r-s3cret-pw";
    let mut url = url::Url::parse(&db.url()).unwrap();
    url.set_password(Some(secret)).unwrap();
    let p = Project::with_config(
        "[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\nmigrate_command = \"exit 0\"\n",
    )
    .with_var("DEV_DATABASE_URL", url.as_str());
    // Wrappers in front of the real tools record every argument list they are given.
    let (path, log) = p.argv_wrappers(&["pg_dump", "psql", "pg_restore"]);
    let p = p.with_var("PATH", &path);
    let id = p.backup(&["dev", "--format", "custom"]);
    let id2 = p.backup(&["dev", "--label", "two"]);
    let mut outputs = Vec::new();
    for args in [
        vec!["list"],
        vec!["status"],
        vec!["verify", "--all", "--deep"],
        vec!["diff", id.as_str()],
        vec!["doctor"],
        vec![
            "restore",
            "dev",
            "--from",
            id.as_str(),
            "--yes",
            "--jobs",
            "2",
        ],
        vec!["rollback", "dev", "--to", id2.as_str(), "--yes"],
        vec!["migrate", "dev", "--yes"],
        vec!["cleanup", "dev", "--keep-last", "1", "--dry-run"],
        vec!["delete", id.as_str(), "--yes", "--force"],
        vec!["backup", "dev", "--url-that-does-not-exist"],
    ] {
        for mode in [&[][..], &["--json"][..], &["-v"][..]] {
            let mut all: Vec<&str> = mode.to_vec();
            all.extend_from_slice(&args);
            let out = p.command(&all).output().unwrap();
            outputs.push((
                format!("{all:?}"),
                String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr),
            ));
        }
    }
    let argv = std::fs::read_to_string(&log).unwrap();
    assert!(
        argv.contains("pg_restore") && argv.contains("pg_dump"),
        "{argv}"
    );
    outputs.push(("child argv".into(), argv));
    for f in p.backup_files() {
        let bytes = std::fs::read(p.path(&format!("{}/{f}", crate::harness::BACKUPS))).unwrap();
        outputs.push((f, String::from_utf8_lossy(&bytes).into_owned()));
    }
    for (what, text) in outputs {
        assert!(!text.contains(secret), "the password appears in {what}");
    }
}

#[test]
fn ctrl_c_during_a_directory_dump_stops_pg_dump_and_its_workers() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("sigdir");
    db.exec("CREATE TABLE t (x int);");
    let p = project_with(&[("dev", &db)]);
    let pid_file = p.path("worker.pid");
    // Writes a first file, then "works" in a process of its own (like pg_dump's workers).
    let script = crate::harness::stand_in(
        "pg_dump",
        &format!(
            "{WRITES_TOC}'{}' 120 & echo $! > '{}'\nwait\n",
            which::which("sleep").unwrap().display(),
            pid_file.display()
        ),
    );
    let (path, libdir) = fake_tools(&p, Some(&script));
    let p = p
        .with_var("PATH", &path)
        .with_var("FABER_PG_LIBDIR", &libdir);
    let child = p
        .command(&["backup", "dev", "--format", "directory"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !pid_file.exists() {
        assert!(started.elapsed().as_secs() < 20, "the dump never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    let worker: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    p.assert_nothing_left("dev");
    let started = std::time::Instant::now();
    let alive = crate::harness::process_alive;
    while alive(worker) {
        assert!(
            started.elapsed().as_secs() < 5,
            "the worker {worker} outlived the interrupt"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn pg_plans_verify_by_path_and_output_dirs_of_directory_dumps() {
    if !server_up() {
        return;
    }
    let source = PgDb::new("plan");
    source.exec(SCHEMA);
    let p = project_with(&[("dev", &source)]);
    let doc = p.json(&["backup", "dev", "--format", "directory", "--dry-run"], 0);
    let plan = &doc["plan"];
    assert_eq!(plan["provider"], "postgres");
    assert_eq!(plan["format"], "directory");
    assert!(
        plan["tools"].as_str().unwrap().contains("pg_dump"),
        "{plan}"
    );
    assert!(
        plan["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "check tools"),
        "{plan}"
    );
    assert!(plan["database_size_bytes"].as_u64().unwrap() > 0);
    assert!(
        !p.path(crate::harness::BACKUPS).exists(),
        "a dry run wrote the backup directory"
    );

    // A directory dump into an output directory, verified by the path of its copy.
    let out = tempfile::tempdir().unwrap();
    let doc = p.json(
        &[
            "backup",
            "dev",
            "--format",
            "directory",
            "--output-dir",
            out.path().to_str().unwrap(),
        ],
        0,
    );
    let id = doc["backup"]["id"].as_str().unwrap().to_string();
    assert_eq!(doc["estimate"]["basis"], "defaults");
    let dump = std::path::PathBuf::from(doc["backup"]["file"].as_str().unwrap());
    assert!(dump.starts_with(out.path()) && dump.is_dir(), "{doc}");
    p.run(&["verify", &id]).code(0);
    p.run(&["verify", dump.to_str().unwrap()]).code(0);
    let copy = tempfile::tempdir().unwrap();
    let copied = copy.path().join(dump.file_name().unwrap());
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(&dump)
        .arg(&copied)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::copy(
        out.path().join(format!("{id}.manifest.json")),
        copy.path().join(format!("{id}.manifest.json")),
    )
    .unwrap();
    p.run(&["verify", copied.to_str().unwrap()]).code(0);
    // A loose file is never loaded into the server its manifest names.
    p.run(&["verify", copied.to_str().unwrap(), "--deep"])
        .code(1)
        .stderr_has("not done for a file given by path");
    let toc = copied.join("toc.dat");
    let mut bytes = std::fs::read(&toc).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&toc, bytes).unwrap();
    p.run(&["verify", copied.to_str().unwrap()])
        .code(5)
        .stdout_has("corrupt");

    // Restore's plan names the backup, the live migrations and the safety backup.
    let doc = p.json(&["restore", "dev", "--from", &id, "--dry-run"], 0);
    assert_eq!(doc["plan"]["backup"], id.as_str());
    assert_eq!(doc["plan"]["chosen"], "named with --from");
    assert_eq!(doc["plan"]["safety_backup"]["reason"], "pre-restore");
    p.run(&["restore", "dev", "--from", &id, "--yes"]).code(0);
}

/// Tables under names PostgreSQL allows that quoting, line-based parsing or a `schema.name` key
/// would garble (issue 16.9): a newline, a tab, quotes, dots, psql's own output separators,
/// unicode, in tables, columns, schemas and partitions. Each holds its own number of rows. A
/// comment and a function body hold lines that look like a dump's data block.
const ODD_NAMES: &str = "CREATE SCHEMA \"we.ird\nschema\"; CREATE SCHEMA sch; CREATE SCHEMA \"sch.x\"; \
     CREATE TABLE \"line\nbreak\" (id int, \"co\nl\" text); \
     INSERT INTO \"line\nbreak\" VALUES (1, E'a\\nb'); \
     CREATE TABLE \"quo\"\"te\" (x int); INSERT INTO \"quo\"\"te\" SELECT generate_series(1, 2); \
     CREATE TABLE \"it's\" (id int); INSERT INTO \"it's\" SELECT generate_series(1, 3); \
     CREATE TABLE \"dot.ted\" (x int); INSERT INTO \"dot.ted\" SELECT generate_series(1, 4); \
     CREATE TABLE \"ünïcödé\" (x int); INSERT INTO \"ünïcödé\" SELECT generate_series(1, 5); \
     CREATE TABLE \"tab\there\" (x int); INSERT INTO \"tab\there\" SELECT generate_series(1, 6); \
     CREATE TABLE \"sep\u{1d}a\u{1e}rated\u{1f}\u{1}\" (x int); \
     INSERT INTO \"sep\u{1d}a\u{1e}rated\u{1f}\u{1}\" SELECT generate_series(1, 7); \
     CREATE TABLE \"we.ird\nschema\".t (x int); INSERT INTO \"we.ird\nschema\".t SELECT generate_series(1, 8); \
     CREATE TABLE sch.\"x.y\" (x int); INSERT INTO sch.\"x.y\" SELECT generate_series(1, 9); \
     CREATE TABLE \"sch.x\".y (x int); INSERT INTO \"sch.x\".y SELECT generate_series(1, 10); \
     CREATE TABLE \"par\ntitioned\" (at int NOT NULL) PARTITION BY RANGE (at); \
     CREATE TABLE \"p.1\" PARTITION OF \"par\ntitioned\" FOR VALUES FROM (0) TO (10); \
     CREATE TABLE \"we.ird\nschema\".\"p\n2\" PARTITION OF \"par\ntitioned\" FOR VALUES FROM (10) TO (20); \
     INSERT INTO \"par\ntitioned\" SELECT generate_series(5, 15); \
     COMMENT ON TABLE \"it's\" IS E'not data:\\n\\nCOPY public.\"it''s\" (id) FROM stdin;\\n1\\n\\\\.\\n'; \
     CREATE FUNCTION odd() RETURNS int LANGUAGE plpgsql AS $f$ BEGIN /*\n\nCOPY public.\"it's\" (id) FROM stdin;\n2\n\\.\n*/ RETURN 1; END $f$;";

/// The manifest's name and row count of each table of [`ODD_NAMES`]: `name` in `public`,
/// `schema.name` elsewhere, a part holding a `.` or `"` in double quotes.
fn odd_names_expected() -> BTreeMap<String, u64> {
    [
        ("line\nbreak", 1),
        ("\"quo\"\"te\"", 2),
        ("it's", 3),
        ("\"dot.ted\"", 4),
        ("ünïcödé", 5),
        ("tab\there", 6),
        ("sep\u{1d}a\u{1e}rated\u{1f}\u{1}", 7),
        ("\"we.ird\nschema\".t", 8),
        ("sch.\"x.y\"", 9),
        ("\"sch.x\".y", 10),
        ("par\ntitioned", 11),
        ("\"p.1\"", 5),
        ("\"we.ird\nschema\".p\n2", 6),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_string(), n))
    .collect()
}

/// Every user table's rows, hashed, by the table's hex-encoded name: names with newlines and
/// separators cannot travel through psql's output as they are.
fn fingerprint(db: &PgDb) -> String {
    db.exec(
        "SELECT string_agg(t, ',' ORDER BY t) FROM (SELECT encode(convert_to(format('%I.%I', \
         schemaname, tablename), 'UTF8'), 'hex') || '=' || (xpath('/row/c/text()', query_to_xml(format(\
         'SELECT md5(coalesce(string_agg(x::text, ''|'' ORDER BY x::text), '''')) AS c FROM %I.%I x', \
         schemaname, tablename), false, true, '')))[1]::text AS t FROM pg_tables \
         WHERE schemaname NOT IN ('pg_catalog', 'information_schema')) s",
    )
}

#[test]
fn pg_any_identifier_is_counted_restored_and_verified_in_every_format() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("idents");
    db.exec(ODD_NAMES);
    let target = PgDb::unborn("idents_dst");
    let p = project_with(&[("dev", &db), ("copy", &target)]);
    let expected = odd_names_expected();
    for format in ["sql", "custom", "directory"] {
        let doc = p.json(&["backup", "dev", "--format", format], 0);
        let tables: BTreeMap<String, serde_json::Value> =
            serde_json::from_value(doc["backup"]["tables"].clone()).unwrap();
        let counted: BTreeMap<String, u64> = tables
            .iter()
            .map(|(k, v)| {
                assert!(v.get("estimated").is_none(), "{format}: {k:?} {v}");
                (k.clone(), v["rows"].as_u64().unwrap())
            })
            .collect();
        assert_eq!(counted, expected, "{format}");
        let id = doc["backup"]["id"].as_str().unwrap().to_string();
        p.run(&["verify", &id, "--deep"])
            .code(0)
            .stdout_has("row counts match");
        assert_eq!(p.backups().last().unwrap()["status"], "valid");
        p.run(&["restore", "copy", "--from", &id, "--yes"])
            .code(0)
            .stdout_has("row counts match the manifest");
        assert_eq!(fingerprint(&target), fingerprint(&db), "{format}");
    }
    // `restore --from latest` picks the newest of them, as valid as the others.
    p.run(&["restore", "dev", "--from", "latest", "--yes"])
        .code(0)
        .stdout_has("row counts match the manifest");
}

#[test]
fn pg_manifests_of_earlier_versions_name_dotted_tables_their_way_and_still_compare_equal() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("legacy");
    db.exec(
        "CREATE SCHEMA \"Odd \"\"Schema\"\"\"; CREATE TABLE \"Odd \"\"Schema\"\"\".\"Mixed.Case (t)\" (x int); \
         INSERT INTO \"Odd \"\"Schema\"\"\".\"Mixed.Case (t)\" VALUES (1), (2); \
         CREATE TABLE \"dot.ted\" (x int); INSERT INTO \"dot.ted\" VALUES (1); CREATE TABLE plain (x int);",
    );
    let p = project_with(&[("dev", &db)]);
    let id = p.backup(&["dev", "--format", "custom"]);
    let tables = &p.backups()[0]["tables"];
    assert_eq!(
        tables["\"Odd \"\"Schema\"\"\".\"Mixed.Case (t)\""]["rows"], 2,
        "{tables}"
    );
    assert_eq!(tables["\"dot.ted\""]["rows"], 1, "{tables}");
    // The entry and manifest as a faber-db before the quoted form wrote them: parts joined by a
    // bare dot.
    let legacy = |text: &str| {
        text.replace(
            "\"\\\"Odd \\\"\\\"Schema\\\"\\\"\\\".\\\"Mixed.Case (t)\\\"\"",
            "\"Odd \\\"Schema\\\".Mixed.Case (t)\"",
        )
        .replace("\"\\\"dot.ted\\\"\"", "\"dot.ted\"")
    };
    let registry = p.path(&format!("{}/backups.json", crate::harness::BACKUPS));
    let manifest = p.path(&format!(
        "{}/dev/{id}.manifest.json",
        crate::harness::BACKUPS
    ));
    for file in [&registry, &manifest] {
        let text = std::fs::read_to_string(file).unwrap();
        let old = legacy(&text);
        assert_ne!(old, text);
        std::fs::write(file, old).unwrap();
    }
    assert_eq!(p.backups()[0]["tables"]["dot.ted"]["rows"], 1);
    let diff = p.json(&["diff", &id], 0);
    let changes: Vec<(&str, &str)> = diff["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["table"].as_str().unwrap(), t["change"].as_str().unwrap()))
        .collect();
    assert_eq!(
        changes,
        [
            ("Odd \"Schema\".Mixed.Case (t)", "same"),
            ("dot.ted", "same"),
            ("plain", "same")
        ]
    );
    p.run(&["verify", &id, "--deep"])
        .code(0)
        .stdout_has("row counts match");
    p.run(&["restore", "dev", "--from", &id, "--yes"])
        .code(0)
        .stdout_has("row counts match the manifest");
}

#[test]
fn pg_a_ledger_record_copied_from_another_checkout_never_drops_that_runs_live_scratch_database() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("synced");
    db.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2);");
    // Two checkouts of one project on this host, one server: the backup directory is synced
    // between them (a shared folder), `.scratch/` with it.
    let a = project_with(&[("dev", &db)]);
    let b = project_with(&[("dev", &db)]);
    let id = a.backup(&["dev"]);
    let restore = a.paused_at(
        &["restore", "dev", "--from", &id, "--yes"],
        "restore:before-commit",
    );
    let ledger = |p: &Project| p.path(&format!("{}/.scratch", crate::harness::BACKUPS));
    std::fs::create_dir_all(ledger(&b)).unwrap();
    for e in std::fs::read_dir(ledger(&a)).unwrap().flatten() {
        std::fs::copy(e.path(), ledger(&b).join(e.file_name())).unwrap();
    }
    let staged = databases_like(&format!("{}__faber_restore_", db.name));
    assert!(!staged.is_empty());
    // The other checkout's run is alive (its process runs): its database is not debris.
    let _ = b.run(&["doctor", "--repair"]);
    assert_eq!(
        databases_like(&format!("{}__faber_restore_", db.name)),
        staged,
        "a live run's staged database was dropped"
    );
    let out = restore.resume();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The live database's schema as the library reads it.
fn read_schema(db: &PgDb) -> faber_db::schema::Schema {
    crate::harness::read_schema(&db.url())
}

#[test]
fn pg_schema_is_read_from_the_catalog_and_a_migration_is_its_changes() {
    use faber_db::schema::{Change, Index, changes};
    if !server_up() {
        return;
    }
    let db = PgDb::new("schema");
    db.exec(
        "CREATE TABLE users (id bigserial PRIMARY KEY, email varchar(80) NOT NULL, age int DEFAULT 0);
         CREATE UNIQUE INDEX users_email ON users (email);
         CREATE INDEX users_lower ON users (lower(email));
         CREATE SCHEMA audit;
         CREATE TABLE audit.\"Log|Entries\" (line text);",
    );
    let before = read_schema(&db);
    assert_eq!(
        before.tables.keys().collect::<Vec<_>>(),
        ["audit.Log|Entries", "users"]
    );
    let users = &before.tables["users"];
    let id = users.column("id").unwrap();
    assert!(id.primary_key && !id.nullable && id.data_type == "bigint");
    assert!(id.default.as_deref().unwrap().starts_with("nextval("));
    let email = users.column("email").unwrap();
    assert_eq!(email.data_type, "character varying(80)");
    assert!(!email.nullable && !email.primary_key);
    assert_eq!(users.column("age").unwrap().default.as_deref(), Some("0"));
    assert_eq!(
        users.indexes["users_email"],
        Index {
            columns: vec!["email".into()],
            unique: true,
            definition: Some("USING btree (email)".into()),
        }
    );
    assert_eq!(users.indexes["users_lower"].columns, ["lower(email::text)"]);
    assert!(
        !users.indexes.contains_key("users_pkey"),
        "the primary key is the columns'"
    );

    db.exec(
        "ALTER TABLE users ADD COLUMN name text;
         ALTER TABLE users ALTER COLUMN age TYPE bigint;
         DROP INDEX users_lower;
         DROP TABLE audit.\"Log|Entries\";
         CREATE TABLE sessions (token text NOT NULL);",
    );
    let after = read_schema(&db);
    let mut age = users.column("age").unwrap().clone();
    let was = age.clone();
    age.data_type = "bigint".into();
    assert_eq!(
        changes(&before, &after),
        [
            Change::TableAdded {
                table: "sessions".into()
            },
            Change::TableDropped {
                table: "audit.Log|Entries".into()
            },
            Change::ColumnAltered {
                table: "users".into(),
                before: was,
                after: age,
            },
            Change::ColumnAdded {
                table: "users".into(),
                column: after.tables["users"].column("name").unwrap().clone(),
            },
            Change::IndexDropped {
                table: "users".into(),
                index: "users_lower".into(),
            },
        ]
    );
}

#[test]
fn pg_diff_reports_an_added_column_a_changed_type_and_a_dropped_index_from_the_manifest() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("schemadiff");
    db.exec(
        "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL, age int);
         CREATE INDEX users_age ON users (age);
         CREATE UNIQUE INDEX users_email_live ON users (email) WHERE age > 0;
         CREATE TABLE orders (id int PRIMARY KEY, user_id bigint REFERENCES users (id));
         INSERT INTO users (email, age) VALUES ('a@x', 1), ('b@x', 2);",
    );
    let p = project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    // The registry stays light: the schema is the manifest's.
    let registry = p.path(&format!("{}/backups.json", crate::harness::BACKUPS));
    assert!(
        !std::fs::read_to_string(registry)
            .unwrap()
            .contains("\"schema\"")
    );
    // A manifest rewritten from its entry (verify records its verdict) keeps the schema.
    p.run(&["verify", &id]).code(0);
    db.exec(
        "ALTER TABLE users ADD COLUMN name varchar(40) NOT NULL DEFAULT '';
         ALTER TABLE users ALTER COLUMN age TYPE bigint;
         DROP INDEX users_age;
         ALTER TABLE users ADD CONSTRAINT age_positive CHECK (age >= 0);
         ALTER TABLE orders DROP CONSTRAINT orders_user_id_fkey;
         DROP INDEX users_email_live; CREATE UNIQUE INDEX users_email_live ON users (email);",
    );
    let doc = p.json(&["diff", &id], 0);
    assert_eq!(
        crate::harness::schema_changes(&doc["schema_changes"]),
        [
            "constraint_dropped orders.orders_user_id_fkey",
            "column_altered users.age",
            "column_added users.name",
            "index_altered users.users_email_live",
            "index_dropped users.users_age",
            "constraint_added users.age_positive"
        ],
        "{doc}"
    );
    let age = &doc["schema_changes"][1];
    assert_eq!(
        (&age["before"]["type"], &age["after"]["type"]),
        (&"integer".into(), &"bigint".into())
    );
    p.run(&["diff", &id])
        .code(0)
        .stdout_has("Schema changes since the backup:")
        .stdout_has("~ column users.age: type integer -> bigint")
        .stdout_has(
            "+ column users.name: character varying(40) NOT NULL DEFAULT ''::character varying",
        )
        .stdout_has("- index users_age on users")
        .stdout_has("~ index users_email_live on users: unique (email) [USING btree (email) WHERE age > 0] -> unique (email) [USING btree (email)]")
        .stdout_has("+ constraint age_positive on users: CHECK (age >= 0)")
        .stdout_has("- constraint orders_user_id_fkey on orders");
    // A manifest without the schema: --deep reads it from a scratch copy of the backup, and the
    // copy is dropped after.
    let manifest = p.path(&format!(
        "{}/dev/{id}.manifest.json",
        crate::harness::BACKUPS
    ));
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    m.as_object_mut().unwrap().remove("schema");
    std::fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();
    let deep = p.json(&["diff", &id, "--deep"], 0);
    assert_eq!(deep["schema_from_scratch_copy"], true);
    assert_eq!(deep["schema_changes"], doc["schema_changes"]);
    assert_eq!(databases_like(&format!("{}__faber_", db.name)), "");
}

#[test]
fn pg_schema_has_a_table_without_columns() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("schemaempty");
    db.exec(
        "CREATE TABLE empty ();
         CREATE TABLE emptied (a int);
         ALTER TABLE emptied DROP COLUMN a;",
    );
    let before = read_schema(&db);
    assert!(before.tables.contains_key("empty"), "{before:?}");
    assert!(before.tables["emptied"].columns.is_empty(), "{before:?}");
    // Dropping a table without columns is a change like any other.
    db.exec("DROP TABLE empty");
    let after = read_schema(&db);
    assert_eq!(
        faber_db::schema::changes(&before, &after),
        [faber_db::schema::Change::TableDropped {
            table: "empty".into()
        }]
    );
}

#[test]
fn pg_schema_reads_names_with_separators_quotes_and_unicode_whole() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("schemaodd");
    db.exec(
        "CREATE SCHEMA \"s|\nx\";
         CREATE TABLE \"s|\nx\".\"t\\\t'q\" (\"c\"\"ol|\" int PRIMARY KEY, \"é\nü\" text);
         CREATE INDEX \"i|\tx\" ON \"s|\nx\".\"t\\\t'q\" (\"é\nü\");
         ALTER TABLE \"s|\nx\".\"t\\\t'q\" ADD CONSTRAINT \"k\nk\" CHECK (\"c\"\"ol|\" > 0);
         CREATE TABLE \"a.b\" (x int);
         CREATE SCHEMA a;
         CREATE TABLE a.b (y int);",
    );
    let schema = read_schema(&db);
    let key = "s|\nx.t\\\t'q";
    let table = &schema.tables[key];
    let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["c\"ol|", "é\nü"]);
    assert!(table.columns[0].primary_key);
    assert_eq!(table.indexes["i|\tx"].columns, ["\"é\nü\""]);
    assert!(table.constraints.contains_key("k\nk"), "{table:?}");
    // A table whose name holds a dot is not the table of that name in another schema.
    assert_eq!(schema.tables["\"a.b\""].columns[0].name, "x");
    assert_eq!(schema.tables["a.b"].columns[0].name, "y");
}
