//! `exclude_table_data` (and `backup --exclude-table-data`): the schema of the tables named is in
//! the backup, their rows are not, and the manifest says so; every row-count check (verify
//! --deep, restore, rollback, restore --table, diff) passes over them instead of failing; `*` is
//! the only wildcard, and a plain name matches that table alone; the live database is never
//! changed by the backup. On PostgreSQL (plain and custom), MariaDB and SQLite.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::harness::{BACKUPS, Project, dump_tables, schema};
use crate::mysql::{self, MyDb};
use crate::postgres::{self, PgDb};

/// Tables whose rows are excluded (`audit_log` by the config, `sessions*` on the command line),
/// and look-alikes whose rows are not.
const EXCLUDED: [&str; 3] = ["audit_log", "sessions", "sessions_old"];
const KEPT: [&str; 4] = ["accounts", "user_sessions", "audit_log2", "my_audit_log"];

/// Backs up `dev` of `p` with the config's `audit_log` and `--exclude-table-data sessions*`;
/// checks the manifest and returns the backup's entry.
fn backed_up(p: &Project) -> Value {
    let doc = p.json(&["backup", "dev", "--exclude-table-data", "sessions*"], 0);
    let b = doc["backup"].clone();
    for t in EXCLUDED {
        assert_eq!(b["tables"][t]["data_excluded"], true, "{t}: {b}");
        assert_eq!(b["tables"][t]["rows"], 0, "{t}: {b}");
    }
    for t in KEPT {
        assert!(b["tables"][t]["data_excluded"].is_null(), "{t}: {b}");
        assert!(b["tables"][t]["rows"].as_u64().unwrap() > 0, "{t}: {b}");
    }
    // The manifest beside the data says the same as the registry.
    let id = b["id"].as_str().unwrap();
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(p.path(&format!("{BACKUPS}/dev/{id}.manifest.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["tables"], b["tables"]);
    b
}

/// `diff` against the backup: the excluded tables are no changed rows, the others the same.
fn diff_passes_over_the_excluded(p: &Project, id: &str) {
    let doc = p.json(&["diff", id], 0);
    let tables = doc["tables"].as_array().unwrap();
    let change = |name: &str| {
        tables
            .iter()
            .find(|t| t["table"] == name)
            .unwrap_or_else(|| panic!("{name} in {doc}"))["change"]
            .clone()
    };
    for t in EXCLUDED {
        assert_eq!(change(t), "data_excluded", "{t}: {doc}");
    }
    for t in KEPT {
        assert_eq!(change(t), "same", "{t}: {doc}");
    }
    p.run(&["diff", id])
        .code(0)
        .stdout_has("excluded")
        .stdout_lacks("+3");
}

/// `data` of the tables not excluded.
fn kept<V: Clone>(data: &BTreeMap<String, V>) -> BTreeMap<String, V> {
    data.iter()
        .filter(|(k, _)| {
            !EXCLUDED
                .iter()
                .any(|e| k.ends_with(&format!(".{e}")) || k == e)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

const PG_SCHEMA: &str = "
CREATE TABLE accounts (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE audit_log (id bigserial PRIMARY KEY, account_id int REFERENCES accounts (id), what text NOT NULL);
CREATE INDEX audit_log_what ON audit_log (what);
CREATE TABLE sessions (id int PRIMARY KEY, token text UNIQUE);
CREATE TABLE sessions_old (id int PRIMARY KEY);
CREATE TABLE user_sessions (id int PRIMARY KEY, account_id int REFERENCES accounts (id));
CREATE TABLE audit_log2 (id int);
CREATE TABLE my_audit_log (id int);
CREATE VIEW recent AS SELECT what FROM audit_log ORDER BY id DESC LIMIT 10;
INSERT INTO accounts (name) SELECT 'a' || g FROM generate_series(1, 5) g;
INSERT INTO audit_log (account_id, what) SELECT 1 + g % 5, 'did ' || g FROM generate_series(1, 40) g;
INSERT INTO sessions SELECT g, 't' || g FROM generate_series(1, 3) g;
INSERT INTO sessions_old VALUES (1), (2), (3);
INSERT INTO user_sessions SELECT g, 1 + g % 5 FROM generate_series(1, 3) g;
INSERT INTO audit_log2 VALUES (1), (2), (3);
INSERT INTO my_audit_log VALUES (1), (2), (3);
";

fn excluding_config(urls: &[(&str, &str)]) -> String {
    let mut config =
        String::from("[defaults]\ncompression = \"gzip\"\nexclude_table_data = [\"cache\"]\n");
    for (env, var) in urls {
        config.push_str(&format!(
            "[environments.{env}]\nurl_env = \"{var}\"\nexclude_table_data = [\"audit_log\"]\n"
        ));
    }
    config
}

fn pg(format: &str) {
    if !postgres::server_up() {
        return;
    }
    let source = PgDb::new("excl");
    source.exec(PG_SCHEMA);
    let target = PgDb::unborn("excl_dst");
    let config = excluding_config(&[("dev", "DEV_DATABASE_URL"), ("copy", "COPY_DATABASE_URL")])
        .replace(
            "[defaults]\n",
            &format!("[defaults]\nformat = \"{format}\"\n"),
        );
    let p = Project::with_config(&config)
        .with_var("DEV_DATABASE_URL", &source.url())
        .with_var("COPY_DATABASE_URL", &target.url());
    let (data, shape) = (source.data(), source.schema());

    let b = backed_up(&p);
    assert_eq!(b["format"], format);
    let id = b["id"].as_str().unwrap().to_string();
    assert_eq!(source.data(), data, "the backup changed the live database");
    p.run(&["verify", &id, "--deep"])
        .code(0)
        .stdout_has("row counts match");

    // Into a fresh database: the excluded tables are there, with their indexes, and empty.
    p.run(&["restore", "copy", "--from", &id, "--yes"])
        .code(0)
        .stdout_has("row counts match the manifest")
        .stdout_has("not compared");
    assert_eq!(target.schema(), shape, "{format}");
    for t in EXCLUDED {
        assert_eq!(
            target.exec(&format!("SELECT count(*) FROM {t}")),
            "0",
            "{t}"
        );
    }
    assert_eq!(kept(&target.data()), kept(&data), "{format}");
    // The backup's sequences go on, and the foreign key is there.
    assert!(
        target
            .exec("SELECT indexdef FROM pg_indexes WHERE indexname = 'audit_log_what'")
            .contains("(what)")
    );
    diff_passes_over_the_excluded(&p, &id);

    // One excluded table put back: empty, as the backup has it, and no count differs.
    let doc = p.json(
        &[
            "restore", "dev", "--from", &id, "--table", "sessions", "--yes",
        ],
        0,
    );
    assert_eq!(doc["row_count_differences"], serde_json::json!([]), "{doc}");
    assert_eq!(source.exec("SELECT count(*) FROM sessions"), "0");
    assert_eq!(
        source.exec("SELECT count(*) FROM audit_log"),
        "40",
        "only the table named"
    );
    // Over the original: the check passes, and the excluded rows are gone as the backup has none.
    p.run(&["restore", "dev", "--from", &id, "--yes"])
        .code(0)
        .stdout_has("row counts match the manifest");
    assert_eq!(source.exec("SELECT count(*) FROM audit_log"), "0");
    assert_eq!(kept(&source.data()), kept(&data));
    assert_eq!(source.schema(), shape);
}

#[test]
fn pg_plain_backups_keep_the_schema_of_excluded_tables_and_none_of_their_rows() {
    pg("sql");
}

#[test]
fn pg_custom_archives_keep_the_schema_of_excluded_tables_and_none_of_their_rows() {
    pg("custom");
}

/// A partitioned table excluded by name: its partitions' rows are left out too, and marked.
#[test]
fn pg_excluding_a_partitioned_table_excludes_its_partitions() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("excl_part");
    db.exec(
        "CREATE TABLE events (at date NOT NULL, what text) PARTITION BY RANGE (at); \
         CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01'); \
         CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01'); \
         CREATE TABLE keep (x int); INSERT INTO keep VALUES (1); \
         INSERT INTO events VALUES ('2024-05-05', 'a'), ('2025-05-05', 'b');",
    );
    let p = postgres::project_with(&[("dev", &db)]);
    let doc = p.json(&["backup", "dev", "--exclude-table-data", "events"], 0);
    let tables = &doc["backup"]["tables"];
    for t in ["events", "events_2024", "events_2025"] {
        assert_eq!(tables[t]["data_excluded"], true, "{t}: {tables}");
    }
    assert_eq!(tables["keep"]["rows"], 1, "{tables}");
    let id = doc["backup"]["id"].as_str().unwrap();
    p.run(&["verify", id, "--deep"]).code(0);
    assert_eq!(db.exec("SELECT count(*) FROM events"), "2");
    let side = PgDb::unborn("excl_part_side");
    let doc = p.json(&["restore", "dev", "--from", id, "--into", &side.name], 0);
    assert_eq!(doc["row_count_differences"], serde_json::json!([]), "{doc}");
    assert_eq!(side.exec("SELECT count(*) FROM events"), "0");
    assert_eq!(side.exec("SELECT count(*) FROM events_2025"), "0");
    assert_eq!(side.exec("SELECT count(*) FROM keep"), "1");
    assert_eq!(side.schema(), db.schema());

    // One partition excluded: its parent counts the other's rows, which a deep check finds.
    for format in ["sql", "custom"] {
        let doc = p.json(
            &[
                "backup",
                "dev",
                "--format",
                format,
                "--exclude-table-data",
                "events_2024",
            ],
            0,
        );
        let tables = &doc["backup"]["tables"];
        assert_eq!(tables["events_2024"]["data_excluded"], true, "{tables}");
        assert_eq!(tables["events_2025"]["rows"], 1, "{tables}");
        assert_eq!(tables["events"]["rows"], 1, "{tables}");
        assert!(tables["events"]["data_excluded"].is_null(), "{tables}");
        assert!(tables["events"]["estimated"].is_null(), "{tables}");
        let id = doc["backup"]["id"].as_str().unwrap();
        p.run(&["verify", id, "--deep"])
            .code(0)
            .stdout_has("row counts match");
    }
}

const MY_SCHEMA: &str = "
CREATE TABLE accounts (id int AUTO_INCREMENT PRIMARY KEY, name varchar(40) NOT NULL);
CREATE TABLE audit_log (id bigint AUTO_INCREMENT PRIMARY KEY, account_id int, what varchar(80) NOT NULL,
  KEY audit_log_what (what), CONSTRAINT audit_account FOREIGN KEY (account_id) REFERENCES accounts (id));
CREATE TABLE sessions (id int PRIMARY KEY, token varchar(40), UNIQUE KEY sessions_token (token));
CREATE TABLE sessions_old (id int PRIMARY KEY);
CREATE TABLE user_sessions (id int PRIMARY KEY);
CREATE TABLE audit_log2 (id int);
CREATE TABLE my_audit_log (id int);
CREATE TRIGGER sessions_stamp BEFORE INSERT ON sessions FOR EACH ROW SET NEW.token = COALESCE(NEW.token, 'none');
CREATE VIEW recent AS SELECT what FROM audit_log;
INSERT INTO accounts (name) VALUES ('a1'), ('a2'), ('a3');
INSERT INTO audit_log (account_id, what) VALUES (1, 'x'), (2, 'y'), (3, 'z'), (1, 'w');
INSERT INTO sessions VALUES (1, 't1'), (2, 't2'), (3, NULL);
INSERT INTO sessions_old VALUES (1), (2), (3);
INSERT INTO user_sessions VALUES (1), (2), (3);
INSERT INTO audit_log2 VALUES (1), (2), (3);
INSERT INTO my_audit_log VALUES (1), (2), (3);
";

/// `SHOW CREATE TABLE` without the `AUTO_INCREMENT=` counter, which an empty table restarts.
fn without_counters(schema: &str) -> String {
    schema
        .split(' ')
        .filter(|w| !w.starts_with("AUTO_INCREMENT="))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn mariadb_backups_keep_the_schema_of_excluded_tables_and_none_of_their_rows() {
    if !mysql::server_up() {
        return;
    }
    let source = MyDb::new("excl");
    source.exec(MY_SCHEMA);
    let target = MyDb::unborn("excl_dst");
    let config = excluding_config(&[("dev", "DEV_DATABASE_URL"), ("copy", "COPY_DATABASE_URL")]);
    let p = Project::with_config(&config)
        .with_var("DEV_DATABASE_URL", &source.url())
        .with_var("COPY_DATABASE_URL", &target.url());
    let (data, shape) = (source.data(), source.schema());

    let b = backed_up(&p);
    let id = b["id"].as_str().unwrap().to_string();
    assert_eq!(source.data(), data, "the backup changed the live database");
    p.run(&["verify", &id]).code(0);
    p.run(&["verify", &id, "--deep"])
        .code(0)
        .stdout_has("row counts match");

    p.run(&["restore", "copy", "--from", &id, "--yes"])
        .code(0)
        .stdout_has("row counts match the manifest");
    assert_eq!(without_counters(&target.schema()), without_counters(&shape));
    for t in EXCLUDED {
        assert_eq!(
            target.exec(&format!("SELECT COUNT(*) FROM `{t}`")),
            "0",
            "{t}"
        );
    }
    assert_eq!(kept(&target.data()), kept(&data));
    diff_passes_over_the_excluded(&p, &id);

    p.run(&["restore", "dev", "--from", &id, "--yes"])
        .code(0)
        .stdout_has("row counts match the manifest");
    assert_eq!(source.exec("SELECT COUNT(*) FROM audit_log"), "0");
    assert_eq!(kept(&source.data()), kept(&data));
}

const SQLITE_SCHEMA: &str = "
PRAGMA journal_mode = WAL;
CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE audit_log (id INTEGER PRIMARY KEY, account_id INTEGER REFERENCES accounts (id), what TEXT NOT NULL);
CREATE INDEX audit_log_what ON audit_log (what);
CREATE TABLE sessions (id INTEGER PRIMARY KEY, token TEXT UNIQUE);
CREATE TABLE sessions_old (id INTEGER PRIMARY KEY);
CREATE TABLE user_sessions (id INTEGER PRIMARY KEY);
CREATE TABLE audit_log2 (id INTEGER);
CREATE TABLE my_audit_log (id INTEGER);
CREATE TRIGGER sessions_gone AFTER DELETE ON sessions BEGIN INSERT INTO audit_log2 VALUES (-1); END;
INSERT INTO accounts (name) VALUES ('a1'), ('a2'), ('a3');
INSERT INTO audit_log (account_id, what) VALUES (1, 'secret-audit-entry'), (2, 'y'), (3, 'z');
INSERT INTO sessions VALUES (1, 't1'), (2, 't2'), (3, 't3');
INSERT INTO sessions_old VALUES (1), (2), (3);
INSERT INTO user_sessions VALUES (1), (2), (3);
INSERT INTO audit_log2 VALUES (1), (2), (3);
INSERT INTO my_audit_log VALUES (1), (2), (3);
";

#[test]
fn sqlite_backups_keep_the_schema_of_excluded_tables_and_none_of_their_rows() {
    let config = excluding_config(&[("dev", "DEV_DATABASE_URL"), ("copy", "COPY_DATABASE_URL")]);
    let p = Project::with_config(&config).with_var("COPY_DATABASE_URL", "sqlite:db/copy.sqlite3");
    p.sqlite("db/dev.sqlite3")
        .execute_batch(SQLITE_SCHEMA)
        .unwrap();
    let live = || p.sqlite("db/dev.sqlite3");
    let (data, shape) = (dump_tables(&live()), schema(&live()));

    let b = backed_up(&p);
    let id = b["id"].as_str().unwrap().to_string();
    assert_eq!(
        dump_tables(&live()),
        data,
        "the backup changed the live database"
    );
    // Nothing but the backup's files is left in its directory (no snapshot, no WAL of it).
    let mut left: Vec<String> = std::fs::read_dir(p.path(&format!("{BACKUPS}/dev")))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [format!("{id}.manifest.json"), format!("{id}.sqlite3.gz")]
    );
    p.run(&["verify", &id, "--deep"])
        .code(0)
        .stdout_has("row counts match");

    p.run(&["restore", "copy", "--from", &id, "--yes"])
        .code(0)
        .stdout_has("row counts match the manifest");
    let copy = p.sqlite("db/copy.sqlite3");
    assert_eq!(schema(&copy), shape);
    let restored = dump_tables(&copy);
    for t in EXCLUDED {
        assert!(restored[t].is_empty(), "{t}: {:?}", restored[t]);
    }
    assert_eq!(
        kept(&restored),
        kept(&data),
        "the delete trigger did not fire in the backup"
    );
    // The rows are not in the stored file at all, not even in its free pages.
    let stored = std::fs::read(p.data_file(&id)).unwrap();
    let raw = {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&stored[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    };
    let needle = b"secret-audit-entry";
    assert!(!raw.windows(needle.len()).any(|w| w == needle));
    diff_passes_over_the_excluded(&p, &id);

    // A rollback to it: its restore's count check passes too.
    live()
        .execute_batch("INSERT INTO accounts (name) VALUES ('later');")
        .unwrap();
    // Its preview counts every live row of an excluded table as lost: the backup holds none, so
    // none is below its largest key.
    let doc = p.json(&["rollback", "dev", "--to", &id, "--dry-run"], 0);
    let lost: Vec<(String, u64, bool)> = doc["would_lose"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let name = t["table"].as_str().unwrap().to_string();
            (
                name,
                t["rows"].as_u64().unwrap(),
                t["approximate"].as_bool().unwrap(),
            )
        })
        .collect();
    let exact = |t: &str, n| (t.to_string(), n, false);
    assert_eq!(
        lost,
        [
            exact("accounts", 1),
            exact("audit_log", 3),
            exact("sessions", 3),
            exact("sessions_old", 3)
        ],
        "{doc}"
    );
    p.run(&["rollback", "dev", "--to", &id, "--yes", "--force"])
        .code(0);
    let now = dump_tables(&live());
    assert_eq!(kept(&now), kept(&data));
    assert!(now["audit_log"].is_empty());
}

/// A plain name in the config matches that table alone; a pattern that matches no table is said,
/// and the plan of a dry run names the patterns.
#[test]
fn a_plain_name_matches_no_look_alike_and_a_pattern_matching_nothing_is_said() {
    let config = "[defaults]\nexclude_table_data = [\"audit_log\", \"nothing_*\"]\n\
                  [environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\n";
    let p = Project::with_config(config);
    p.sqlite("db/dev.sqlite3")
        .execute_batch(
            "CREATE TABLE audit_log (x); CREATE TABLE audit_logs (x); CREATE TABLE Audit_Log2 (x);
             CREATE TABLE \"audit log\" (x); INSERT INTO audit_log VALUES (1); INSERT INTO audit_logs VALUES (1);
             INSERT INTO Audit_Log2 VALUES (1); INSERT INTO \"audit log\" VALUES (1);",
        )
        .unwrap();
    p.run(&["backup", "dev", "--dry-run"])
        .code(0)
        .stdout_has("audit_log, nothing_*");
    p.run(&["backup", "dev"])
        .code(0)
        .stderr_has("nothing_* matches no table");
    let entry = &p.backups()[0];
    let tables = &entry["tables"];
    assert_eq!(tables["audit_log"]["data_excluded"], true, "{tables}");
    for t in ["audit_logs", "Audit_Log2", "audit log"] {
        assert_eq!(tables[t]["rows"], 1, "{t}: {tables}");
        assert!(tables[t]["data_excluded"].is_null(), "{t}: {tables}");
    }
    // An empty pattern is refused, from the config or the command line.
    p.run(&["backup", "dev", "--exclude-table-data", ""])
        .code(1)
        .stderr_has("a pattern is empty");
}

/// MySQL: a table whose name begins with a dash is still a table name to the schema-only dump
/// of the excluded tables, never an option.
#[test]
fn mariadb_excludes_a_table_whose_name_begins_with_a_dash() {
    if !mysql::server_up() {
        return;
    }
    let db = MyDb::new("dash");
    db.exec("CREATE TABLE `-logs` (x int); INSERT INTO `-logs` VALUES (1), (2); CREATE TABLE kept (y int); INSERT INTO kept VALUES (3);");
    let p = mysql::project_with(&[("dev", &db)]);
    let doc = p.json(&["backup", "dev", "--exclude-table-data=-logs"], 0);
    let tables = &doc["backup"]["tables"];
    assert_eq!(tables["-logs"]["data_excluded"], true, "{doc}");
    assert_eq!(tables["kept"]["rows"], 1, "{doc}");
    let id = doc["backup"]["id"].as_str().unwrap().to_string();
    p.json(&["verify", &id, "--deep"], 0);
    assert_eq!(
        db.exec("SELECT count(*) FROM `-logs`"),
        "2",
        "the live rows stay"
    );
}
