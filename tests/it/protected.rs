//! Acceptance 6: protected environments never act without a confirmation, and never hang.

use std::fs;

use crate::harness::Project;

fn project() -> Project {
    Project::new().seeded("db/prod.sqlite3")
}

#[test]
fn backup_without_a_terminal_or_yes_is_refused() {
    let p = project();
    let run = p.run(&["backup", "production"]).code(8).stderr_has("--yes");
    assert!(run.stderr.contains("needs confirmation"));
    assert!(p.backups().is_empty());
    assert!(p.backup_files().is_empty(), "{:?}", p.backup_files());
    let doc = p.json(&["backup", "production"], 8);
    assert_eq!(doc["error"]["kind"], "aborted");
    assert_eq!(doc["error"]["code"], 8);
}

#[test]
fn restore_and_delete_without_yes_change_nothing() {
    let p = project();
    let id = p.backup(&["production", "--yes"]);
    p.sqlite("db/prod.sqlite3")
        .execute("INSERT INTO t VALUES (2)", [])
        .unwrap();
    let db = fs::read(p.path("db/prod.sqlite3")).unwrap();
    let files = p.backup_files();
    let registry = p.registry();
    p.run(&["restore", "production", "--from", &id]).code(8);
    p.run(&["backup", "production", "--label", "x"]).code(8);
    p.backup(&["production", "--yes", "--label", "second"]);
    let files_after_second = p.backup_files();
    assert!(files_after_second.len() > files.len());
    p.run(&["delete", &id]).code(8);
    assert_eq!(fs::read(p.path("db/prod.sqlite3")).unwrap(), db);
    assert_eq!(p.backup_files(), files_after_second);
    assert_eq!(
        p.backups().len(),
        registry["backups"].as_array().unwrap().len() + 1
    );
    p.run(&["delete", &id, "--yes"]).code(0);
    assert_eq!(p.backups().len(), 1);
}

#[test]
fn protection_follows_the_config() {
    // `require_approval` (the plugin's key) and safety.protected_environments both protect.
    let p = Project::with_config(
        "[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\nrequire_approval = true\n\
         [environments.qa]\nurl = \"sqlite:db/dev.sqlite3\"\n\
         [safety]\nprotected_environments = [\"qa\"]\n",
    );
    p.sqlite("db/dev.sqlite3")
        .execute_batch("CREATE TABLE t (x);")
        .unwrap();
    p.run(&["backup", "dev"]).code(8);
    p.run(&["backup", "qa"]).code(8);
    p.run(&["status"])
        .code(0)
        .stdout_has("dev [protected]")
        .stdout_has("qa [protected]");
}

#[test]
fn every_protected_command_without_a_terminal_or_yes_stops_within_a_second() {
    let p = Project::with_config(
        "[migrations]\ndirectory = \"migrations\"\n\
         [environments.production]\nurl_env = \"PROD_DATABASE_URL\"\nmigrate_command = \"touch migrated\"\n",
    )
    .seeded("db/prod.sqlite3");
    p.write("migrations/001_x.sql", "CREATE TABLE x (y int);");
    let id = p.backup(&["production", "--yes"]);
    let second = p.backup(&["production", "--yes", "--label", "second"]);
    let db = fs::read(p.path("db/prod.sqlite3")).unwrap();
    let files = p.backup_files();
    for args in [
        vec!["backup", "production"],
        vec!["restore", "production", "--from", id.as_str()],
        vec!["rollback", "production"],
        vec!["migrate", "production"],
        vec!["delete", id.as_str(), "--force"],
        vec!["cleanup", "production", "--keep-last", "1"],
    ] {
        let started = std::time::Instant::now();
        p.run(&args).code(8).stderr_has("--yes");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{args:?} took {:?}",
            started.elapsed()
        );
    }
    assert_eq!(fs::read(p.path("db/prod.sqlite3")).unwrap(), db);
    assert_eq!(p.backup_files(), files);
    let mut ids = vec![id, second];
    ids.sort();
    assert_eq!(p.ids(), ids);
    assert!(!p.path("migrated").exists());
}
