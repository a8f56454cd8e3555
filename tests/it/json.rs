//! Acceptance 7: `--json` prints one document with the documented fields, errors included.

use crate::harness::Project;

#[test]
fn backup_list_verify_and_errors_as_json() {
    let p = Project::new();
    p.sqlite("db/dev.sqlite3")
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1), (2);")
        .unwrap();

    let doc = p.json(&["backup", "dev", "--label", "j", "--reason", "testing"], 0);
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["command"], "backup");
    let b = &doc["backup"];
    for field in [
        "id",
        "environment",
        "database",
        "provider",
        "timestamp",
        "label",
        "reason",
        "file",
        "size_bytes",
        "format",
        "compression",
        "compressed",
        "encrypted",
        "sha256",
        "tool_version",
        "migrations",
        "tables",
        "retention_days",
        "expires_at",
        "status",
        "verification",
        "host",
        "user",
        "git",
        "duration_ms",
    ] {
        assert!(b.get(field).is_some(), "backup entry lacks `{field}`: {b}");
    }
    assert_eq!(b["provider"], "sqlite");
    assert_eq!(b["label"], "j");
    assert_eq!(b["reason"], "testing");
    assert_eq!(b["status"], "valid");
    assert_eq!(b["compressed"], true);
    assert_eq!(b["encrypted"], false);
    assert_eq!(b["retention_days"], 30);
    assert_eq!(b["tables"]["t"]["rows"], 2);
    assert_eq!(b["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(b["verification"]["integrity_check"], "quick");
    assert_eq!(b["verification"]["file_readable"], true);
    // The JSON entry is the registry entry.
    assert_eq!(&p.backups()[0], b);

    let id = b["id"].as_str().unwrap();
    let doc = p.json(&["list"], 0);
    assert_eq!(doc["command"], "list");
    assert_eq!(doc["backups"][0]["id"], id);
    assert_eq!(doc["totals"]["count"], 1);
    let doc = p.json(&["backup", "dev", "--list"], 0);
    assert_eq!(doc["command"], "list");
    assert_eq!(doc["backups"][0]["id"], id);

    let doc = p.json(&["verify", id], 0);
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["results"][0]["status"], "valid");
    assert_eq!(doc["backup"]["id"], id);

    let doc = p.json(&["backup", "nowhere"], 1);
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["command"], "backup");
    assert_eq!(doc["error"]["code"], 1);
    assert_eq!(doc["error"]["kind"], "config");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nowhere")
    );
    assert!(doc["error"]["hint"].as_str().unwrap().contains("dev"));

    let doc = p.json(&["status"], 0);
    assert_eq!(doc["environments"][0]["environment"], "dev");
    assert_eq!(doc["environments"][0]["reachable"], true);

    // Usage errors are JSON too when --json was asked for.
    let doc = p.json(&["backup"], 1);
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["error"]["kind"], "config");
}

#[test]
fn a_failed_verify_is_a_json_document_with_the_results() {
    let p = Project::new();
    p.sqlite("db/dev.sqlite3")
        .execute_batch("CREATE TABLE t (x);")
        .unwrap();
    let id = p.backup(&["dev"]);
    std::fs::write(p.data_file(&id), b"xx").unwrap();
    let doc = p.json(&["verify", &id], 5);
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["error"]["kind"], "verification");
    assert_eq!(doc["results"][0]["status"], "corrupt");
}
