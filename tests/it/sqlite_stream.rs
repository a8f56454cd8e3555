//! SQLite backups of a database in WAL mode stream its pages straight into the stored file, with
//! no copy on disk, under one read transaction; a second connection checks and counts the same
//! state meanwhile. These tests attack that: writers during the backup, rows that live only in
//! the WAL, a writer holding its lock throughout, and the counts recorded against the bytes
//! stored.

use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rusqlite::Connection;

use crate::harness::{Project, walk};

fn count(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// The stored file of an uncompressed backup, opened from a copy of it.
fn stored_image(p: &Project, id: &str) -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("image.sqlite3");
    fs::copy(p.data_file(id), &copy).unwrap();
    let conn = Connection::open(&copy).unwrap();
    (dir, conn)
}

/// A WAL database of about `blobs` × 20 kB, and a `ticks` table.
fn wal_database(p: &Project, blobs: u32) -> Connection {
    let db = p.sqlite("db/dev.sqlite3");
    db.pragma_update(None, "journal_mode", "WAL").unwrap();
    db.execute_batch(&format!(
        "CREATE TABLE blobs (b BLOB); CREATE TABLE ticks (t INTEGER); CREATE TABLE tocks (t INTEGER);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {blobs})
         INSERT INTO blobs SELECT randomblob(20000) FROM n;"
    ))
    .unwrap();
    db
}

fn files_named(p: &Project, part: &str) -> Vec<String> {
    let mut all = Vec::new();
    walk(p.root(), p.root(), &mut all);
    all.into_iter().filter(|f| f.contains(part)).collect()
}

#[test]
fn a_wal_backup_has_no_copy_on_disk_and_the_application_writes_on_meanwhile() {
    let p = Project::new();
    let db = wal_database(&p, 50);
    db.execute("INSERT INTO ticks VALUES (1)", []).unwrap();
    let paused = p.paused_at(
        &["backup", "dev", "--compression", "none"],
        "backup:during-dump",
    );
    // Half way through the dump: no snapshot of the database anywhere, ...
    assert_eq!(files_named(&p, "snapshot-"), Vec::<String>::new());
    // ... and a writer that will not wait at all is not kept out.
    db.busy_timeout(Duration::ZERO).unwrap();
    db.execute("INSERT INTO ticks VALUES (2)", []).unwrap();
    let out = paused.resume();
    assert!(out.status.success(), "{out:?}");
    // The backup is the state it started on: the write during it is not in it, in the counts
    // recorded or in the bytes stored.
    let entry = &p.backups()[0];
    assert_eq!(entry["tables"]["ticks"]["rows"], 1);
    assert_eq!(entry["tables"]["blobs"]["rows"], 50);
    let (_dir, image) = stored_image(&p, entry["id"].as_str().unwrap());
    assert_eq!(count(&image, "ticks"), 1);
    let check: String = image
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

#[test]
fn a_rollback_journal_backup_goes_through_a_snapshot() {
    // In rollback-journal mode a reader blocks writers, so the pages are not streamed under one
    // long read: the online backup API copies them into a snapshot first, letting writers in.
    let p = Project::new();
    p.sqlite("db/dev.sqlite3")
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    let paused = p.paused_at(
        &["backup", "dev", "--compression", "none"],
        "backup:during-dump",
    );
    let snapshots = files_named(&p, "snapshot-");
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    // Not holding a lock: a writer that will not wait gets in.
    let db = p.sqlite("db/dev.sqlite3");
    db.busy_timeout(Duration::ZERO).unwrap();
    db.execute("INSERT INTO t VALUES (2)", []).unwrap();
    assert!(paused.resume().status.success());
    assert_eq!(p.backups()[0]["tables"]["t"]["rows"], 1);
    assert_eq!(files_named(&p, "snapshot-"), Vec::<String>::new());
}

#[test]
fn rows_that_live_only_in_the_wal_are_in_the_backup() {
    let p = Project::new();
    let db = wal_database(&p, 10);
    // Nothing is copied back into the database file while this connection stays open.
    db.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    db.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    db.execute_batch(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
         INSERT INTO ticks SELECT i FROM n;
         DELETE FROM blobs WHERE rowid <= 4;",
    )
    .unwrap();
    let wal = fs::metadata(p.path("db/dev.sqlite3-wal")).unwrap().len();
    assert!(wal > 0, "the changes are in the WAL");
    let id = p.backup(&["dev", "--compression", "none"]);
    let (_dir, image) = stored_image(&p, &id);
    assert_eq!(count(&image, "ticks"), 500);
    assert_eq!(count(&image, "blobs"), 6);
    assert_eq!(p.backups()[0]["tables"]["ticks"]["rows"], 500);
    // And through a restore, as a user would get them back.
    drop(db);
    fs::remove_file(p.path("db/dev.sqlite3")).unwrap();
    let _ = fs::remove_file(p.path("db/dev.sqlite3-wal"));
    let _ = fs::remove_file(p.path("db/dev.sqlite3-shm"));
    p.run(&["restore", "dev", "--from", &id, "--yes"]).code(0);
    let db = p.sqlite("db/dev.sqlite3");
    assert_eq!(count(&db, "ticks"), 500);
    assert_eq!(count(&db, "blobs"), 6);
}

/// The counts a backup records and the bytes it stores must be of one state of the database, with
/// a writer committing as fast as it can throughout: every commit adds one row to each of two
/// tables, so any image of a single state has as many of one as of the other.
#[test]
fn recorded_counts_are_those_of_the_bytes_stored_under_a_busy_writer() {
    let p = Project::new();
    let db = wal_database(&p, 400);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            db.busy_timeout(Duration::from_secs(30)).unwrap();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                db.execute_batch(&format!(
                    "BEGIN IMMEDIATE; INSERT INTO ticks VALUES ({n}); INSERT INTO tocks VALUES ({n}); COMMIT;"
                ))
                .unwrap();
                n += 1;
            }
            n
        })
    };
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(p.backup(&["dev", "--compression", "none"]));
    }
    stop.store(true, Ordering::Relaxed);
    let commits = writer.join().unwrap();
    assert!(commits > 0);
    let mut seen = Vec::new();
    for id in &ids {
        let entry = p
            .backups()
            .into_iter()
            .find(|b| b["id"] == id.as_str())
            .unwrap();
        let (_dir, image) = stored_image(&p, id);
        let (ticks, tocks) = (count(&image, "ticks"), count(&image, "tocks"));
        assert_eq!(ticks, tocks, "{id}: an image of one state");
        assert_eq!(entry["tables"]["ticks"]["rows"], ticks, "{id}");
        assert_eq!(entry["tables"]["tocks"]["rows"], tocks, "{id}");
        seen.push(ticks);
    }
    // The writer was really writing while the backups ran.
    assert!(seen.windows(2).any(|w| w[0] != w[1]), "{seen:?}");
}

#[test]
fn a_write_held_open_throughout_does_not_stop_a_wal_backup() {
    let p = Project::new();
    let db = wal_database(&p, 20);
    db.execute("INSERT INTO ticks VALUES (1)", []).unwrap();
    // Another connection holds the write lock, with a row not yet committed, for the whole run.
    let writer = p.sqlite("db/dev.sqlite3");
    writer
        .execute_batch("BEGIN IMMEDIATE; INSERT INTO ticks VALUES (2);")
        .unwrap();
    let id = p.backup(&["dev", "--compression", "none"]);
    writer.execute_batch("COMMIT").unwrap();
    assert_eq!(count(&db, "ticks"), 2);
    assert_eq!(p.backups()[0]["tables"]["ticks"]["rows"], 1);
    assert_eq!(p.backups()[0]["verification"]["integrity_check"], "quick");
    let (_dir, image) = stored_image(&p, &id);
    assert_eq!(count(&image, "ticks"), 1);
}

#[test]
fn a_killed_wal_backup_leaves_nothing_and_the_next_one_works() {
    let p = Project::new();
    let _db = wal_database(&p, 50);
    let paused = p.paused_at(&["backup", "dev"], "backup:during-dump");
    let out = paused.signal(libc::SIGKILL);
    assert!(!out.status.success());
    assert!(p.backups().is_empty());
    let id = p.backup(&["dev"]);
    assert_eq!(p.backups().len(), 1);
    // The killed run's partial file went with the next run's sweep; only the new backup is left.
    let left: Vec<String> = p
        .backup_files()
        .into_iter()
        .filter(|f| f.starts_with("dev/"))
        .collect();
    assert!(
        !left.is_empty() && left.iter().all(|f| f.contains(&id)),
        "{left:?} (backup {id})"
    );
}
