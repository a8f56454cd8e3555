//! Acceptance 1: the README's quick start works on a fresh clone, with no server.

use std::fs;
use std::path::Path;

use crate::harness::Project;

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.file_name().is_some_and(|n| n == "backups") {
            continue; // what a developer's own runs left behind is not part of a clone
        }
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// The quick-start command as the README gives it, as arguments to faber-db.
fn readme_quickstart_args() -> Vec<String> {
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.trim_start().starts_with("cargo run") && l.contains(" -- backup "))
        .expect("README.md shows a `cargo run … -- backup …` quick-start command");
    let args = line.split(" -- ").nth(1).unwrap();
    args.split_whitespace().map(str::to_string).collect()
}

#[test]
fn readme_quickstart_backs_up_the_demo_database() {
    let p = Project::empty();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join(".fractary"),
        &p.path(".fractary"),
    );
    let args = readme_quickstart_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    p.run(&args)
        .code(0)
        .stdout_has("Restore with: faber-db restore dev --from backup-");

    let backups = p.backups();
    assert_eq!(backups.len(), 1);
    let id = backups[0]["id"].as_str().unwrap();
    assert_eq!(backups[0]["environment"], "dev");
    assert_eq!(backups[0]["migrations"]["tool"], "sqlx");
    assert!(backups[0]["tables"]["users"]["rows"].as_u64().unwrap() > 0);

    p.run(&["list"]).code(0).stdout_has(id);
    p.run(&["verify", id]).code(0).stdout_has("checksum ok");
    p.run(&["verify", "--all", "--deep"])
        .code(0)
        .stdout_has("row counts match");
}
