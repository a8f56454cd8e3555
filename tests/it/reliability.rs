//! Faults: a second run of the same environment, killed runs, full disks, interrupts.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::Project;

/// A dev environment whose migrate command takes `secs` seconds (writing `started` first).
fn slow_migrate_project(secs: u32) -> Project {
    Project::with_config(&format!(
        "[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\nmigrate_command = \"touch started; sleep {secs}\"\n"
    ))
    .seeded("db/dev.sqlite3")
}

fn wait_for(path: &std::path::Path) {
    let started = Instant::now();
    while !path.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_second_restore_rollback_or_migrate_of_an_environment_is_busy_at_once_or_waits() {
    let p = slow_migrate_project(4);
    let id = p.backup(&["dev"]);
    let mut migrate = p
        .command(&["migrate", "dev"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&p.path("started"));
    for args in [
        vec!["restore", "dev", "--from", id.as_str()],
        vec!["rollback", "dev", "--to", id.as_str()],
        vec!["migrate", "dev"],
    ] {
        let started = Instant::now();
        p.run(&args)
            .code(7)
            .stderr_has("another restore, rollback or migrate of `dev` is running");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{args:?} waited"
        );
    }
    // Backups of the same environment are not in the way, and --wait waits its turn.
    p.backup(&["dev", "--label", "meanwhile"]);
    let started = Instant::now();
    p.run(&["restore", "dev", "--from", &id, "--wait", "30s"])
        .code(0);
    assert!(
        started.elapsed() > Duration::from_secs(1),
        "it waited for the migration"
    );
    assert!(migrate.wait().unwrap().success());
}

#[test]
fn the_lock_of_a_killed_run_never_blocks() {
    let p = slow_migrate_project(60);
    let id = p.backup(&["dev"]);
    let mut migrate = p
        .command(&["migrate", "dev"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&p.path("started"));
    p.run(&["restore", "dev", "--from", &id]).code(7);
    migrate.kill().unwrap();
    migrate.wait().unwrap();
    p.run(&["restore", "dev", "--from", &id]).code(0);
}
