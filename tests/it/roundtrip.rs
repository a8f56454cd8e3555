//! Acceptance 2: backup, damage, restore — every row back, byte for byte, with a safety backup.

use crate::harness::{Project, dump_tables, schema};

fn seed(p: &Project) {
    let db = p.sqlite("db/dev.sqlite3");
    db.execute_batch(
        "CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);
         INSERT INTO __diesel_schema_migrations (version) VALUES ('20240101000000'), ('20240301000000');
         CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT NOT NULL, balance REAL, avatar BLOB, note TEXT);
         CREATE TABLE events (id INTEGER PRIMARY KEY, account_id INTEGER REFERENCES accounts(id), kind TEXT, at TEXT);
         CREATE INDEX events_account ON events(account_id);
         CREATE VIEW rich AS SELECT name FROM accounts WHERE balance > 100;
         CREATE TRIGGER events_touch AFTER INSERT ON events BEGIN UPDATE accounts SET note = 'active' WHERE id = NEW.account_id; END;",
    )
    .unwrap();
    for i in 0..500i64 {
        db.execute(
            "INSERT INTO accounts (name, balance, avatar, note) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![
                format!("user-{i} ✓ ünïcödé"),
                i as f64 * 1.5,
                vec![u8::try_from(i % 256).unwrap(); usize::try_from(i % 64).unwrap()],
                if i % 3 == 0 { None } else { Some("n") }
            ],
        )
        .unwrap();
        db.execute(
            "INSERT INTO events (account_id, kind, at) VALUES (?1, 'login', '2025-01-01')",
            [i + 1],
        )
        .unwrap();
    }
}

fn round_trip(compression: &str) {
    let p = Project::new();
    seed(&p);
    let before = dump_tables(&p.sqlite("db/dev.sqlite3"));
    let before_schema = schema(&p.sqlite("db/dev.sqlite3"));
    let id = p.backup(&[
        "dev",
        "--compression",
        compression,
        "--label",
        "before-damage",
    ]);
    assert!(id.ends_with("-before-damage"));

    let db = p.sqlite("db/dev.sqlite3");
    db.execute_batch("PRAGMA foreign_keys = OFF; DELETE FROM accounts WHERE id > 10; DROP TABLE events; UPDATE accounts SET name = 'x';").unwrap();
    drop(db);
    let damaged = dump_tables(&p.sqlite("db/dev.sqlite3"));
    assert_ne!(damaged, before);

    p.run(&["restore", "dev", "--from", "latest", "--yes"])
        .code(0)
        .stdout_has("row counts match the manifest");
    let db = p.sqlite("db/dev.sqlite3");
    assert_eq!(
        dump_tables(&db),
        before,
        "restored rows differ ({compression})"
    );
    assert_eq!(schema(&db), before_schema);

    let backups = p.backups();
    assert_eq!(backups.len(), 2);
    let safety = backups
        .iter()
        .find(|b| b["reason"] == "pre-restore")
        .expect("a pre-restore safety backup");
    assert_eq!(safety["environment"], "dev");
    assert_eq!(safety["tables"]["accounts"]["rows"], 10);
    assert!(
        safety["tables"].get("events").is_none(),
        "the safety backup holds the damaged state"
    );
    let history =
        std::fs::read_to_string(p.path(".fractary/plugins/faber-db/backups/history.jsonl"))
            .unwrap();
    assert!(
        history
            .lines()
            .any(|l| l.contains("\"event\":\"restore\"") && l.contains(&id))
    );
}

#[test]
fn round_trip_gzip() {
    round_trip("gzip");
}

#[test]
fn round_trip_zstd() {
    round_trip("zstd");
}

#[test]
fn round_trip_uncompressed() {
    round_trip("none");
}

#[test]
fn restore_of_the_safety_backup_undoes_a_restore() {
    let p = Project::new();
    seed(&p);
    p.backup(&["dev"]);
    p.sqlite("db/dev.sqlite3")
        .execute("DELETE FROM events WHERE id > 5", [])
        .unwrap();
    let damaged = dump_tables(&p.sqlite("db/dev.sqlite3"));
    let doc = p.json(&["restore", "dev", "--yes"], 0);
    let safety = doc["safety_backup"].as_str().unwrap().to_string();
    p.run(&["restore", "dev", "--from", &safety, "--yes"])
        .code(0);
    assert_eq!(dump_tables(&p.sqlite("db/dev.sqlite3")), damaged);
}

#[test]
fn restore_into_a_wal_database_replaces_it_cleanly() {
    let p = Project::new();
    let db = p.sqlite("db/dev.sqlite3");
    db.pragma_update(None, "journal_mode", "WAL").unwrap();
    db.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2), (3);")
        .unwrap();
    p.backup(&["dev"]);
    // Rows written after the backup sit in the write-ahead log while this connection lives.
    db.execute_batch("PRAGMA wal_autocheckpoint = 0; INSERT INTO t VALUES (4), (5);")
        .unwrap();
    drop(db);
    p.run(&["restore", "dev", "--yes"]).code(0);
    let db = p.sqlite("db/dev.sqlite3");
    let n: i64 = db
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 3);
    let ok: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    // The safety backup captured the rows that were only in the log.
    let safety = p
        .backups()
        .into_iter()
        .find(|b| b["reason"] == "pre-restore")
        .unwrap();
    assert_eq!(safety["tables"]["t"]["rows"], 5);
}

#[test]
fn restore_into_a_missing_database_recreates_it() {
    let p = Project::new();
    seed(&p);
    let before = dump_tables(&p.sqlite("db/dev.sqlite3"));
    p.backup(&["dev"]);
    std::fs::remove_file(p.path("db/dev.sqlite3")).unwrap();
    p.run(&["restore", "dev", "--yes"])
        .code(0)
        .stderr_has("no safety backup");
    assert_eq!(dump_tables(&p.sqlite("db/dev.sqlite3")), before);
}

#[test]
fn dry_run_restore_changes_nothing() {
    let p = Project::new();
    seed(&p);
    p.backup(&["dev"]);
    p.sqlite("db/dev.sqlite3")
        .execute("DELETE FROM events", [])
        .unwrap();
    let reg = std::fs::read(p.path(".fractary/plugins/faber-db/backups/backups.json")).unwrap();
    let db = std::fs::read(p.path("db/dev.sqlite3")).unwrap();
    p.run(&["restore", "dev", "--dry-run"])
        .code(0)
        .stdout_has("Dry run");
    assert_eq!(
        std::fs::read(p.path(".fractary/plugins/faber-db/backups/backups.json")).unwrap(),
        reg
    );
    assert_eq!(std::fs::read(p.path("db/dev.sqlite3")).unwrap(), db);
}

#[test]
fn restoring_latest_twice_never_brings_back_the_replaced_state() {
    let p = Project::new();
    seed(&p);
    let before = dump_tables(&p.sqlite("db/dev.sqlite3"));
    let good = p.backup(&["dev"]);
    p.sqlite("db/dev.sqlite3")
        .execute("DELETE FROM events", [])
        .unwrap();
    let first = p.json(&["restore", "dev", "--yes"], 0);
    assert_eq!(first["backup"]["id"], good.as_str());
    // The first restore's safety backup is newer, but `latest` is still the real backup.
    let second = p.json(&["restore", "dev", "--yes"], 0);
    assert_eq!(second["backup"]["id"], good.as_str());
    assert_eq!(dump_tables(&p.sqlite("db/dev.sqlite3")), before);
}

#[test]
fn a_target_that_cannot_be_saved_is_not_overwritten() {
    let p = Project::new();
    seed(&p);
    p.backup(&["dev"]);
    std::fs::write(
        p.path("db/dev.sqlite3"),
        "not a database, but maybe something someone needs",
    )
    .unwrap();
    p.run(&["restore", "dev", "--yes"])
        .code(3)
        .stderr_has("safety backup failed")
        .stderr_has("--no-safety-backup");
    assert_eq!(
        std::fs::read_to_string(p.path("db/dev.sqlite3")).unwrap(),
        "not a database, but maybe something someone needs"
    );
    p.run(&["restore", "dev", "--yes", "--no-safety-backup"])
        .code(0)
        .stderr_has("no safety backup");
    assert!(dump_tables(&p.sqlite("db/dev.sqlite3")).contains_key("accounts"));
}

#[test]
fn an_open_connection_sees_the_restored_data() {
    let p = Project::new();
    seed(&p);
    let before = dump_tables(&p.sqlite("db/dev.sqlite3"));
    p.backup(&["dev"]);
    // The application keeps its connection open across the restore (WAL mode, as apps use).
    let app = p.sqlite("db/dev.sqlite3");
    app.pragma_update(None, "journal_mode", "WAL").unwrap();
    app.execute("DELETE FROM events WHERE id > 100", [])
        .unwrap();
    p.run(&["restore", "dev", "--yes"]).code(0);
    assert_eq!(
        dump_tables(&app),
        before,
        "the open connection reads the restored data"
    );
    app.execute(
        "INSERT INTO events (account_id, kind, at) VALUES (1, 'after', 'now')",
        [],
    )
    .unwrap();
    drop(app);
    let n: i64 = p
        .sqlite("db/dev.sqlite3")
        .query_row(
            "SELECT count(*) FROM events WHERE kind = 'after'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        n, 1,
        "a write after the restore lands in the database, not in a replaced file"
    );
}

#[test]
fn a_restore_killed_earlier_does_not_block_the_next() {
    let p = Project::new();
    seed(&p);
    let id = p.backup(&["dev"]);
    // Killed with its staging file written beside the database.
    crate::reliability::kill_at(
        &p,
        &[
            "restore",
            "dev",
            "--yes",
            "--from",
            &id,
            "--no-safety-backup",
        ],
        "restore:before-commit",
    );
    let staged = || -> Vec<String> {
        std::fs::read_dir(p.path("db"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".faber-restore-"))
            .collect()
    };
    let left = staged();
    assert_eq!(left.len(), 1, "{left:?}");
    p.run(&["restore", "dev", "--yes"])
        .code(0)
        .stderr_has("left by an interrupted restore")
        .stderr_has(&left[0]);
    assert!(staged().is_empty());
    assert_eq!(
        p.backups()
            .iter()
            .filter(|b| b["reason"] == "pre-restore")
            .count(),
        1
    );
}

#[test]
fn a_missing_backup_file_is_marked_missing_by_restore() {
    let p = Project::new();
    seed(&p);
    let id = p.backup(&["dev"]);
    std::fs::remove_file(p.data_file(&id)).unwrap();
    p.run(&["restore", "dev", "--from", &id, "--yes"]).code(5);
    assert_eq!(p.backups()[0]["status"], "missing");
}

#[test]
fn a_backup_finishes_while_the_application_keeps_writing() {
    let p = Project::new();
    let db = p.sqlite("db/dev.sqlite3");
    db.pragma_update(None, "journal_mode", "WAL").unwrap();
    db.execute_batch("CREATE TABLE blobs (b BLOB); CREATE TABLE ticks (t INTEGER);")
        .unwrap();
    // Large enough for many incremental steps, each of which a write would restart.
    db.execute_batch(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1200)
         INSERT INTO blobs SELECT randomblob(50000) FROM n;",
    )
    .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                db.execute("INSERT INTO ticks VALUES (?1)", [n]).unwrap();
                n += 1;
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            n
        })
    };
    let mut child = std::process::Command::new(crate::harness::BIN)
        .args(["backup", "dev", "--compression", "none"])
        .current_dir(p.root())
        .env("DEV_DATABASE_URL", "sqlite:db/dev.sqlite3")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > std::time::Duration::from_secs(90) {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let ticks = writer.join().unwrap();
    let status = status.expect("the backup finished while the writer kept writing");
    assert!(status.success());
    assert!(ticks > 0);
    assert_eq!(p.backups()[0]["tables"]["blobs"]["rows"], 1200);
}

fn pragma(conn: &rusqlite::Connection, name: &str) -> String {
    conn.query_row(&format!("PRAGMA {name}"), [], |r| {
        r.get::<_, rusqlite::types::Value>(0)
    })
    .map(|v| match v {
        rusqlite::types::Value::Integer(n) => n.to_string(),
        rusqlite::types::Value::Text(t) => t,
        other => format!("{other:?}"),
    })
    .unwrap()
}

#[test]
fn restore_into_a_wal_database_with_another_page_size() {
    let p = Project::new();
    seed(&p);
    let before = dump_tables(&p.sqlite("db/dev.sqlite3"));
    p.backup(&["dev"]);
    let db = p.sqlite("db/dev.sqlite3");
    db.execute_batch(
        "PRAGMA page_size = 8192; VACUUM; PRAGMA journal_mode = WAL; DELETE FROM events;",
    )
    .unwrap();
    assert_eq!(pragma(&db, "page_size"), "8192");
    drop(db);
    p.run(&["restore", "dev", "--yes"]).code(0);
    let db = p.sqlite("db/dev.sqlite3");
    assert_eq!(dump_tables(&db), before);
    assert_eq!(
        pragma(&db, "journal_mode"),
        "wal",
        "the database keeps its journal mode"
    );
    assert_eq!(pragma(&db, "integrity_check"), "ok");
}

#[test]
fn restore_keeps_the_databases_own_journal_mode() {
    let p = Project::new();
    let db = p.sqlite("db/dev.sqlite3");
    db.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(db);
    p.backup(&["dev"]);
    // The application moved to rollback journaling since (e.g. for a network filesystem).
    p.sqlite("db/dev.sqlite3")
        .execute_batch("PRAGMA journal_mode = DELETE; INSERT INTO t VALUES (2);")
        .unwrap();
    p.run(&["restore", "dev", "--yes"]).code(0);
    let db = p.sqlite("db/dev.sqlite3");
    assert_eq!(pragma(&db, "journal_mode"), "delete");
    let n: i64 = db
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn a_damaged_database_can_be_replaced_without_a_safety_backup() {
    let p = Project::new();
    seed(&p);
    let before = dump_tables(&p.sqlite("db/dev.sqlite3"));
    p.backup(&["dev"]);
    // Damage the first page's b-tree header: SQLite reports the file as malformed.
    let mut bytes = std::fs::read(p.path("db/dev.sqlite3")).unwrap();
    for b in &mut bytes[100..108] {
        *b = 0xff;
    }
    std::fs::write(p.path("db/dev.sqlite3"), bytes).unwrap();
    p.run(&["restore", "dev", "--yes"])
        .code(3)
        .stderr_has("--no-safety-backup");
    p.run(&["restore", "dev", "--yes", "--no-safety-backup"])
        .code(0);
    assert_eq!(dump_tables(&p.sqlite("db/dev.sqlite3")), before);
}

#[test]
fn a_database_reached_through_a_link_is_restored_where_the_link_leads() {
    for damaged in [false, true] {
        let p = Project::new();
        seed(&p);
        // The real database lives in another directory; the URL names a link to it.
        std::fs::create_dir_all(p.path("data")).unwrap();
        std::fs::rename(p.path("db/dev.sqlite3"), p.path("data/real.sqlite3")).unwrap();
        std::os::unix::fs::symlink("../data/real.sqlite3", p.path("db/dev.sqlite3")).unwrap();
        let before = dump_tables(&p.sqlite("data/real.sqlite3"));
        let id = p.backup(&["dev"]);
        if damaged {
            let mut bytes = std::fs::read(p.path("data/real.sqlite3")).unwrap();
            for b in &mut bytes[100..108] {
                *b = 0xff;
            }
            std::fs::write(p.path("data/real.sqlite3"), bytes).unwrap();
        } else {
            p.sqlite("data/real.sqlite3")
                .execute_batch("DELETE FROM events;")
                .unwrap();
        }
        p.run(&[
            "restore",
            "dev",
            "--yes",
            "--from",
            &id,
            "--no-safety-backup",
        ])
        .code(0);
        let link = std::fs::symlink_metadata(p.path("db/dev.sqlite3")).unwrap();
        assert!(
            link.file_type().is_symlink(),
            "damaged={damaged}: the link stays a link"
        );
        assert_eq!(
            dump_tables(&p.sqlite("data/real.sqlite3")),
            before,
            "damaged={damaged}: the database the link leads to is restored"
        );
        let left: Vec<_> = std::fs::read_dir(p.path("db")).unwrap().flatten().collect();
        assert_eq!(
            left.len(),
            1,
            "damaged={damaged}: nothing staged beside the link: {left:?}"
        );
    }
}
