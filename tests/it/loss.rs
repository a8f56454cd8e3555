//! What a rollback would lose (issue 20): rows written since the backup, counted by primary key
//! against the largest key the backup's manifest records, else by row counts (approximate);
//! tables and columns added since; migrations undone — on all three providers; and a protected
//! environment's rollback that loses rows needing its name typed even with `--yes`.

use std::fs;

use serde_json::{Value, json};

use crate::harness::{BACKUPS, Project};
use crate::{mysql, postgres};

/// `(table, rows, basis, approximate)` of each table a `would_lose` names.
fn lost(doc: &Value) -> Vec<(String, u64, String, bool)> {
    doc["would_lose"]["tables"]
        .as_array()
        .unwrap_or_else(|| panic!("no would_lose.tables in {doc}"))
        .iter()
        .map(|t| {
            (
                t["table"].as_str().unwrap().to_string(),
                t["rows"].as_u64().unwrap(),
                t["basis"].as_str().unwrap().to_string(),
                t["approximate"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn row(table: &str, rows: u64, basis: &str, approximate: bool) -> (String, u64, String, bool) {
    (table.to_string(), rows, basis.to_string(), approximate)
}

/// `table.column` of each column a `would_lose` says was added.
fn columns_added(doc: &Value) -> Vec<String> {
    doc["would_lose"]["columns_added"]
        .as_array()
        .unwrap_or_else(|| panic!("no would_lose.columns_added in {doc}"))
        .iter()
        .map(|c| {
            format!(
                "{}.{}",
                c["table"].as_str().unwrap(),
                c["column"].as_str().unwrap()
            )
        })
        .collect()
}

/// The manifest of backup `id` of `env`, parsed.
fn manifest(p: &Project, env: &str, id: &str) -> (std::path::PathBuf, Value) {
    let path = p.path(&format!("{BACKUPS}/{env}/{id}.manifest.json"));
    let doc = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    (path, doc)
}

const SQLITE_BEFORE: &str = "
    CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
    INSERT INTO notes (body) VALUES ('a'), ('b'), ('c');
    CREATE TABLE log (line TEXT);
    INSERT INTO log VALUES ('x'), ('y');
    CREATE TABLE schema_migrations (version TEXT PRIMARY KEY);
    INSERT INTO schema_migrations VALUES ('001');";

/// 37 notes, 4 log lines, a column, a table and a migration since the backup.
const SQLITE_SINCE: &str = "
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 37)
    INSERT INTO notes (body) SELECT 'new ' || i FROM n;
    INSERT INTO log VALUES ('1'), ('2'), ('3'), ('4');
    ALTER TABLE notes ADD COLUMN color TEXT;
    CREATE TABLE tags (id INTEGER PRIMARY KEY);
    INSERT INTO tags DEFAULT VALUES;
    INSERT INTO schema_migrations VALUES ('002');";

#[test]
fn a_rollback_preview_counts_rows_by_key_else_approximately_and_names_columns_added() {
    let p = Project::new();
    p.sqlite("db/dev.sqlite3")
        .execute_batch(SQLITE_BEFORE)
        .unwrap();
    let id = p.backup(&["dev"]);
    // The largest keys are the manifest's, not the registry's.
    let (_, m) = manifest(&p, "dev", &id);
    assert_eq!(
        m["key_max"]["notes"],
        json!({"column": "id", "max": 3}),
        "{m}"
    );
    assert!(m["key_max"].get("log").is_none(), "no key, no max: {m}");
    let registry = fs::read_to_string(p.path(&format!("{BACKUPS}/backups.json"))).unwrap();
    assert!(!registry.contains("key_max"), "{registry}");
    // A manifest rewritten from its entry (verify records its verdict) keeps them.
    p.run(&["verify", &id]).code(0);
    assert_eq!(manifest(&p, "dev", &id).1["key_max"], m["key_max"]);

    p.sqlite("db/dev.sqlite3")
        .execute_batch(SQLITE_SINCE)
        .unwrap();
    let doc = p.json(&["rollback", "dev", "--to", &id, "--dry-run"], 0);
    assert_eq!(
        lost(&doc),
        [
            row("log", 4, "row_count", true),
            row("notes", 37, "primary_key", false),
            row("tags", 1, "table_added", false),
        ],
        "{doc}"
    );
    let would = &doc["would_lose"];
    assert_eq!(would["rows_total"], 42);
    assert_eq!(would["approximate"], true);
    assert_eq!(columns_added(&doc), ["notes.color"]);
    assert_eq!(would["tables_added"], json!(["tags"]));
    assert_eq!(would["migrations_undone"], json!(["002"]));
    assert_eq!(would["schema_known"], true);
    assert_eq!(doc["loss_needs_typed_name"], false, "dev is not protected");

    p.run(&["rollback", "dev", "--to", &id, "--dry-run"])
        .code(0)
        .stdout_has("at least 42 rows written since the backup")
        .stdout_has("notes: 37 (by primary key)")
        .stdout_has("log: 4 (approximate: row counts compared")
        .stdout_has("table tags, column notes.color");
    // Nothing was changed.
    let n: i64 = p
        .sqlite("db/dev.sqlite3")
        .query_row("SELECT count(*) FROM notes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 40);
}

#[test]
fn a_manifest_without_largest_keys_or_with_hostile_ones_falls_back_to_row_counts() {
    let p = Project::new();
    p.sqlite("db/dev.sqlite3")
        .execute_batch(SQLITE_BEFORE)
        .unwrap();
    let id = p.backup(&["dev"]);
    p.sqlite("db/dev.sqlite3")
        .execute_batch(SQLITE_SINCE)
        .unwrap();
    let (path, original) = manifest(&p, "dev", &id);
    let hostile = [
        // An earlier faber-db recorded none.
        Value::Null,
        // A largest key that is not an integer is not used, and never reaches SQL.
        json!({"notes": {"column": "id", "max": "0; DROP TABLE notes; --"}}),
        json!({"notes": {"column": "id", "max": 1.5}}),
        // Names come from the live schema: one it does not have is no key.
        json!({"notes": {"column": "id\"; DROP TABLE notes; --", "max": 1}}),
        json!({"notes\"; DROP TABLE notes; --": {"column": "id", "max": 1}}),
        json!("DROP TABLE notes"),
    ];
    for key_max in hostile {
        let mut m = original.clone();
        m["key_max"] = key_max.clone();
        fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
        let doc = p.json(&["rollback", "dev", "--to", &id, "--dry-run"], 0);
        assert!(
            lost(&doc).contains(&row("notes", 37, "row_count", true)),
            "{key_max}: {doc}"
        );
    }
    let n: i64 = p
        .sqlite("db/dev.sqlite3")
        .query_row("SELECT count(*) FROM notes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 40, "no statement of the manifest ran");

    // Without the schema, what was added is unknown — never "none".
    let mut m = original.clone();
    m.as_object_mut().unwrap().remove("schema");
    fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let doc = p.json(&["rollback", "dev", "--to", &id, "--dry-run"], 0);
    let would = &doc["would_lose"];
    assert_eq!(would["schema_known"], false, "{doc}");
    assert!(would["columns_added"].is_null() && would["tables_added"].is_null());
    assert!(
        would["schema_unknown"]
            .as_str()
            .unwrap()
            .contains("no schema")
    );
    assert!(lost(&doc).contains(&row("notes", 37, "primary_key", false)));
    p.run(&["rollback", "dev", "--to", &id, "--dry-run"])
        .code(0)
        .stdout_has("Added:      unknown: the backup's manifest records no schema");
}

#[test]
fn a_protected_rollback_that_loses_rows_needs_its_name_or_accept_data_loss_beside_yes() {
    let p = Project::new();
    p.sqlite("db/prod.sqlite3")
        .execute_batch(SQLITE_BEFORE)
        .unwrap();
    let id = p.backup(&["production", "--yes"]);
    // Nothing written since: --yes answers as it always did.
    p.run(&["rollback", "production", "--to", &id, "--yes"])
        .code(0);

    p.sqlite("db/prod.sqlite3")
        .execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 37)
             INSERT INTO notes (body) SELECT 'new ' || i FROM n;",
        )
        .unwrap();
    let db = fs::read(p.path("db/prod.sqlite3")).unwrap();
    let ids = p.ids();
    let doc = p.json(&["rollback", "production", "--to", &id, "--dry-run"], 0);
    assert_eq!(doc["loss_needs_typed_name"], true, "{doc}");
    assert_eq!(lost(&doc), [row("notes", 37, "primary_key", false)]);
    p.run(&["rollback", "production", "--to", &id, "--yes"])
        .code(8)
        .stderr_has(&format!(
            "error: rolling back `production` loses at least 37 rows written since the backup {id}"
        ))
        .stderr_has("--accept-data-loss")
        .stdout_has("notes: 37 (by primary key)");
    // --accept-data-loss is no --yes: without a terminal to type the name on, nothing goes.
    for args in [vec![], vec!["--accept-data-loss"]] {
        let mut all = vec!["rollback", "production", "--to", &id];
        all.extend(args);
        p.run(&all).code(8).stderr_has("needs confirmation");
    }
    assert_eq!(
        fs::read(p.path("db/prod.sqlite3")).unwrap(),
        db,
        "nothing restored"
    );
    assert_eq!(p.ids(), ids, "not even a safety backup");

    let doc = p.json(
        &[
            "rollback",
            "production",
            "--to",
            &id,
            "--yes",
            "--accept-data-loss",
        ],
        0,
    );
    assert_eq!(doc["rolled_back"], true, "{doc}");
    let n: i64 = p
        .sqlite("db/prod.sqlite3")
        .query_row("SELECT count(*) FROM notes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 3);
}

#[test]
fn pg_rollback_preview_counts_rows_by_key_with_any_table_name() {
    if !postgres::server_up() {
        return;
    }
    let db = postgres::PgDb::new("loss");
    db.exec(
        "CREATE TABLE notes (id bigserial PRIMARY KEY, body text);
         INSERT INTO notes (body) SELECT 'n' || g FROM generate_series(1, 3) g;
         CREATE TABLE log (line text);
         INSERT INTO log VALUES ('x'), ('y');
         CREATE SCHEMA \"odd.schema\";
         CREATE TABLE \"odd.schema\".\"we\"\"ird\" (\"k\"\"ey\" int PRIMARY KEY);
         INSERT INTO \"odd.schema\".\"we\"\"ird\" VALUES (10), (20);
         CREATE TABLE events (id bigint PRIMARY KEY, kind text) PARTITION BY RANGE (id);
         CREATE TABLE events_low PARTITION OF events FOR VALUES FROM (0) TO (1000);
         CREATE TABLE events_high PARTITION OF events FOR VALUES FROM (1000) TO (MAXVALUE);
         INSERT INTO events VALUES (1, 'a'), (2, 'b');",
    );
    let p = postgres::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    db.exec(
        "INSERT INTO notes (body) SELECT 'new' || g FROM generate_series(1, 37) g;
         INSERT INTO log VALUES ('1'), ('2'), ('3');
         ALTER TABLE notes ADD COLUMN color text;
         INSERT INTO \"odd.schema\".\"we\"\"ird\" VALUES (5), (30);
         INSERT INTO events VALUES (5, 'c'), (1500, 'd'), (1501, 'e');",
    );
    let doc = p.json(&["rollback", "dev", "--to", &id, "--dry-run"], 0);
    // A partitioned table's rows are its partitions', counted once.
    assert_eq!(
        lost(&doc),
        [
            row("\"odd.schema\".\"we\"\"ird\"", 2, "primary_key", false),
            row("events_high", 2, "primary_key", false),
            row("events_low", 1, "primary_key", false),
            row("log", 3, "row_count", true),
            row("notes", 37, "primary_key", false),
        ],
        "{doc}"
    );
    assert_eq!(doc["would_lose"]["rows_total"], 45);
    assert_eq!(columns_added(&doc), ["notes.color"]);
    assert_eq!(doc["would_lose"]["tables_added"], json!([]));
}

#[test]
fn mysql_rollback_preview_counts_rows_by_key_with_any_table_name() {
    if !mysql::server_up() {
        return;
    }
    let db = mysql::MyDb::new("loss");
    db.exec(
        "CREATE TABLE notes (id bigint AUTO_INCREMENT PRIMARY KEY, body text);
         INSERT INTO notes (body) VALUES ('a'), ('b'), ('c');
         CREATE TABLE log (line text);
         INSERT INTO log VALUES ('x'), ('y');
         CREATE TABLE `we``ird` (`k``ey` int PRIMARY KEY);
         INSERT INTO `we``ird` VALUES (10), (20);",
    );
    let p = mysql::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    db.exec(
        "INSERT INTO notes (body) SELECT 'new' FROM information_schema.COLLATIONS LIMIT 37;
         INSERT INTO log VALUES ('1'), ('2'), ('3');
         ALTER TABLE notes ADD COLUMN color text;
         INSERT INTO `we``ird` VALUES (5), (30);",
    );
    assert_eq!(db.exec("SELECT COUNT(*) FROM notes"), "40");
    let doc = p.json(&["rollback", "dev", "--to", &id, "--dry-run"], 0);
    assert_eq!(
        lost(&doc),
        [
            row("log", 3, "row_count", true),
            row("notes", 37, "primary_key", false),
            row("we`ird", 2, "primary_key", false),
        ],
        "{doc}"
    );
    assert_eq!(columns_added(&doc), ["notes.color"]);
}

#[test]
fn the_hook_asks_the_user_about_an_agents_accept_data_loss_showing_the_loss() {
    let p = Project::new();
    p.sqlite("db/prod.sqlite3")
        .execute_batch(SQLITE_BEFORE)
        .unwrap();
    let id = p.backup(&["production", "--yes"]);
    p.sqlite("db/prod.sqlite3")
        .execute_batch(SQLITE_SINCE)
        .unwrap();
    let db = fs::read(p.path("db/prod.sqlite3")).unwrap();
    // A real flag to the hook: parsed, dry-run for its plan, and the human decides.
    let answer = crate::hook::hook(
        &p,
        &format!("faber-db rollback production --to {id} --yes --accept-data-loss"),
    );
    assert_eq!(answer.decision(), Some("ask"), "{:?}", answer.out);
    let reason = answer.out.as_ref().unwrap()["hookSpecificOutput"]["permissionDecisionReason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reason.contains("only you can approve that"), "{reason}");
    assert!(reason.contains("notes: 37 (by primary key)"), "{reason}");
    assert_eq!(fs::read(p.path("db/prod.sqlite3")).unwrap(), db);
}
