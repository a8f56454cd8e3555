//! Restore drills (`verify --drill`): the backup a restore would pick now loaded into a scratch
//! database and counted, the result kept on the entry and in the history; `status` says when a
//! drill last passed and flags one older than `max_drill_age`, `list` when each backup was last
//! proven restorable; a failed drill is a failure (exit 5) that the `[notify]` targets hear of.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{DEFAULT_CONFIG, Project};
use crate::notify::{history, listener};
use crate::postgres::{self, PgDb};

fn status_of(p: &Project, env: &str) -> Value {
    let doc = p.json(&["status", env], 0);
    doc["environments"][0].clone()
}

#[test]
fn a_drill_proves_the_backup_a_restore_would_pick_and_status_and_list_say_so() {
    let p = Project::with_config(&format!("{DEFAULT_CONFIG}max_drill_age = \"1d\"\n"))
        .seeded("db/dev.sqlite3");
    p.sqlite("db/prod.sqlite3")
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    let old = p.backup(&["production", "--yes"]);
    let newest = p.backup(&["production", "--yes"]);
    // Not drilled yet: overdue, and said so.
    let s = status_of(&p, "production");
    assert_eq!(s["drill_overdue"], true, "{s}");
    assert!(s["last_drill"].is_null(), "{s}");
    p.run(&["status", "production"])
        .code(0)
        .stderr_has("no restore drill has passed");
    let doc = p.json(&["verify", "--drill", "--env", "production"], 0);
    let d = &doc["drills"][0];
    assert_eq!(d["environment"], "production", "{doc}");
    assert_eq!(
        d["backup"]["id"],
        newest.as_str(),
        "the one `--from latest` picks: {doc}"
    );
    assert_eq!(d["drill"]["ok"], true, "{doc}");
    let entry = p
        .backups()
        .into_iter()
        .find(|b| b["id"] == newest.as_str())
        .unwrap();
    assert_eq!(entry["last_drill"]["ok"], true, "{entry}");
    assert!(
        p.backups()
            .iter()
            .find(|b| b["id"] == old.as_str())
            .unwrap()
            .get("last_drill")
            .is_none()
    );
    assert!(
        history(&p)
            .iter()
            .any(|e| e["event"] == "drill" && e["ok"] == true && e["id"] == newest.as_str()),
        "{:?}",
        history(&p)
    );
    let s = status_of(&p, "production");
    assert_eq!(s["drill_overdue"], false, "{s}");
    assert_eq!(s["last_drill"]["ok"], true, "{s}");
    assert!(s["last_good_drill_age_secs"].as_i64().unwrap() < 600, "{s}");
    let out = p.run(&["list", "production"]).code(0);
    assert!(out.stdout.contains("PROVEN"), "{}", out.stdout);
    let proven_row = out
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{newest} ")))
        .unwrap();
    assert!(proven_row.trim_end().ends_with("ago"), "{proven_row}");
    let old_row = out
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{old} ")))
        .unwrap();
    assert!(old_row.trim_end().ends_with('-'), "{old_row}");
    // Every environment with --all: dev has a backup too, staging-less configs just list theirs.
    p.backup(&["dev"]);
    let doc = p.json(&["verify", "--drill", "--all"], 0);
    assert_eq!(doc["drills"].as_array().unwrap().len(), 2, "{doc}");
}

#[test]
fn an_environment_without_a_backup_fails_its_drill() {
    let p = Project::new().seeded("db/dev.sqlite3");
    let doc = p.json(&["verify", "--drill", "--env", "dev"], 5);
    assert_eq!(doc["error"]["code"], 5, "{doc}");
    assert!(
        doc["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("faber-db backup dev"),
        "{doc}"
    );
    assert_eq!(doc["drills"][0]["drill"]["ok"], false, "{doc}");
}

/// A PostgreSQL backup damaged on disk: the drill loads nothing, marks it corrupt, exits 5, the
/// notify target hears of it, and `status` says the last drill failed and one is overdue.
#[test]
fn a_drill_of_a_damaged_backup_fails_notifies_and_status_flags_it() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("drill");
    db.exec(postgres::SCHEMA);
    let (url, rx) = listener("200 OK");
    let mut p = postgres::project_with(&[("prod", &db)]);
    let config = std::fs::read_to_string(p.path(".fractary/plugins/faber-db/config.toml")).unwrap();
    p.write(
        ".fractary/plugins/faber-db/config.toml",
        &format!("{config}max_drill_age = \"2h\"\n[notify]\nwebhook_url_env = \"HOOK\"\n"),
    );
    p.set_var("HOOK", &url);
    let id = p.backup(&["prod", "--yes"]);
    p.json(&["verify", "--drill", "--env", "prod"], 0);
    let (_, message) = rx.recv_timeout(Duration::from_secs(1)).unwrap_or_default();
    assert!(
        message.is_null(),
        "a drill that passed is not news: {message}"
    );
    // Damage the middle of the file.
    let file = p.data_file(&id);
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    let out = p.run(&["verify", "--drill", "--env", "prod"]).code(5);
    assert!(out.stderr.contains("drill"), "{}", out.stderr);
    let (_, message) = rx.recv_timeout(Duration::from_secs(10)).expect("notified");
    assert_eq!(message["event"], "drill.failed", "{message}");
    assert_eq!(message["environment"], "prod", "{message}");
    assert_eq!(message["backup_id"], id.as_str(), "{message}");
    let entry = p
        .backups()
        .into_iter()
        .find(|b| b["id"] == id.as_str())
        .unwrap();
    assert_eq!(entry["status"], "corrupt", "{entry}");
    assert_eq!(entry["last_drill"]["ok"], false, "{entry}");
    let s = status_of(&p, "prod");
    assert_eq!(s["last_drill"]["ok"], false, "{s}");
    p.run(&["status", "prod"])
        .code(0)
        .stderr_has("the last restore drill failed");
    // Two hours on, the drill that passed is too old.
    p.at(&(chrono::Utc::now() + chrono::Duration::hours(3)).to_rfc3339());
    let s = status_of(&p, "prod");
    assert_eq!(s["drill_overdue"], true, "{s}");
}
