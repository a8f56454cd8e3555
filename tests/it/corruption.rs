//! Acceptance 3: a flipped byte is caught by verify and stops a restore.

use std::fs;

use crate::harness::Project;

fn flip_byte(path: &std::path::Path, at: usize) {
    let mut bytes = fs::read(path).unwrap();
    let i = at.min(bytes.len() - 1);
    bytes[i] ^= 0x01;
    fs::write(path, bytes).unwrap();
}

fn corrupt_backup(compression: &str) -> (Project, String) {
    let p = Project::new();
    p.sqlite("db/dev.sqlite3")
        .execute_batch("CREATE TABLE t (x TEXT); INSERT INTO t VALUES ('keep me'), ('and me');")
        .unwrap();
    let id = p.backup(&["dev", "--compression", compression]);
    let path = p.data_file(&id);
    let len = usize::try_from(fs::metadata(&path).unwrap().len()).unwrap();
    flip_byte(&path, len / 2);
    (p, id)
}

#[test]
fn verify_catches_a_flipped_byte_in_every_compression() {
    for compression in ["none", "gzip", "zstd"] {
        let (p, id) = corrupt_backup(compression);
        p.run(&["verify", &id]).code(5).stdout_has("corrupt");
        assert_eq!(p.backups()[0]["status"], "corrupt", "{compression}");
        // The manifest beside the file says the same.
        let manifest = p.path(&format!(
            "{}/dev/{id}.manifest.json",
            crate::harness::BACKUPS
        ));
        let m: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(manifest).unwrap()).unwrap();
        assert_eq!(m["status"], "corrupt");
    }
}

#[test]
fn verify_checksum_only_passes_a_good_backup_and_catches_a_flipped_byte() {
    let p = Project::new();
    p.sqlite("db/dev.sqlite3")
        .execute_batch("CREATE TABLE t (x TEXT); INSERT INTO t VALUES ('keep me');")
        .unwrap();
    let id = p.backup(&["dev"]);
    p.run(&["verify", "--checksum-only", &id])
        .code(0)
        .stdout_has("checksum ok (structure not checked)");
    let v = &p.backups()[0]["verification"];
    assert_eq!(v["checksum_only"], true);
    assert_eq!(v["integrity_check"], "not checked");
    // A full check afterwards records a full check again.
    p.run(&["verify", &id]).code(0).stdout_has("integrity ok");
    assert!(
        p.backups()[0]["verification"]
            .get("checksum_only")
            .is_none()
    );
    p.run(&["verify", "--checksum-only", "--deep", &id]).code(1);
    // Bytes as written but data an earlier full check found bad: a checksum alone never clears
    // that verdict.
    let reg = p.path(&format!("{}/backups.json", crate::harness::BACKUPS));
    let text = fs::read_to_string(&reg).unwrap();
    fs::write(
        &reg,
        text.replace("\"status\": \"valid\"", "\"status\": \"corrupt\""),
    )
    .unwrap();
    p.run(&["verify", "--checksum-only", &id])
        .code(5)
        .stdout_has(
            "an earlier full check found the data corrupt; run `faber-db verify` without \
             --checksum-only to check it again",
        );
    assert_eq!(p.backups()[0]["status"], "corrupt");
    p.run(&["verify", &id]).code(0);
    assert_eq!(p.backups()[0]["status"], "valid");
    let path = p.data_file(&id);
    let len = usize::try_from(fs::metadata(&path).unwrap().len()).unwrap();
    flip_byte(&path, len / 2);
    p.run(&["verify", "--checksum-only", &id])
        .code(5)
        .stdout_has("corrupt");
    assert_eq!(p.backups()[0]["status"], "corrupt");
    fs::remove_file(&path).unwrap();
    p.run(&["verify", "--checksum-only", &id])
        .code(5)
        .stdout_has("missing");
}

#[test]
fn restore_refuses_a_corrupt_backup_and_leaves_the_database_alone() {
    let (p, id) = corrupt_backup("gzip");
    p.sqlite("db/dev.sqlite3")
        .execute("INSERT INTO t VALUES ('written later')", [])
        .unwrap();
    let db_before = fs::read(p.path("db/dev.sqlite3")).unwrap();
    p.run(&["restore", "dev", "--from", &id, "--yes"])
        .code(5)
        .stderr_has("checksum");
    assert_eq!(fs::read(p.path("db/dev.sqlite3")).unwrap(), db_before);
    assert_eq!(
        p.backups().len(),
        1,
        "no safety backup is taken when nothing will be restored"
    );
    assert_eq!(p.backups()[0]["status"], "corrupt");
    // Once marked corrupt, `latest` has nothing valid to offer.
    p.run(&["restore", "dev", "--yes"])
        .code(1)
        .stderr_has("no valid backup");
}

#[test]
fn verify_all_reports_every_backup_and_fails_if_one_is_bad() {
    let p = Project::new();
    p.sqlite("db/dev.sqlite3")
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    let good = p.backup(&["dev", "--label", "good"]);
    let bad = p.backup(&["dev", "--label", "bad"]);
    flip_byte(&p.data_file(&bad), 40);
    let run = p.run(&["verify", "--all"]).code(5);
    assert!(
        run.stdout.contains(&format!("✓ dev {good}")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!("✗ dev {bad}")),
        "{}",
        run.stdout
    );
    let missing = p.backup(&["dev", "--label", "gone"]);
    fs::remove_file(p.data_file(&missing)).unwrap();
    p.run(&["list"]).code(0).stdout_has("missing");
    p.run(&["verify", &missing]).code(5).stdout_has("missing");
    let entry = p
        .backups()
        .into_iter()
        .find(|b| b["id"] == missing.as_str())
        .unwrap();
    assert_eq!(entry["status"], "missing");
}

#[test]
fn deep_verify_compares_row_counts_with_the_manifest() {
    let p = Project::new();
    p.sqlite("db/dev.sqlite3")
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1), (2);")
        .unwrap();
    let id = p.backup(&["dev"]);
    p.run(&["verify", &id, "--deep"])
        .code(0)
        .stdout_has("row counts match");
    // A manifest that no longer matches the data is caught only by a deep check.
    let reg_path = p.path(&format!("{}/backups.json", crate::harness::BACKUPS));
    let text = fs::read_to_string(&reg_path)
        .unwrap()
        .replace("\"rows\": 2", "\"rows\": 3");
    fs::write(&reg_path, text).unwrap();
    p.run(&["verify", &id]).code(0);
    p.run(&["verify", &id, "--deep"])
        .code(5)
        .stdout_has("mismatch — row counts differ from the manifest: t 3 → 2");
    assert_eq!(p.backups()[0]["status"], "mismatch", "not corrupt");
}

#[test]
fn a_backup_that_cannot_be_checked_here_is_not_called_corrupt() {
    let p = Project::new();
    p.sqlite("db/dev.sqlite3")
        .execute_batch("CREATE TABLE t (x);")
        .unwrap();
    let id = p.backup(&["dev"]);
    // A registry entry this build cannot check (as if written by a newer faber-db).
    let reg_path = p.path(&format!("{}/backups.json", crate::harness::BACKUPS));
    let text = fs::read_to_string(&reg_path)
        .unwrap()
        .replace("\"provider\": \"sqlite\"", "\"provider\": \"postgres\"");
    fs::write(&reg_path, text).unwrap();
    let doc = p.json(&["verify", &id], 1);
    assert_eq!(doc["results"][0]["verified"], false);
    assert_eq!(
        p.backups()[0]["status"],
        "valid",
        "the status is left as it was"
    );
}

/// A backup of an SQLite database checks its snapshot with `PRAGMA quick_check` (pages and
/// records) and records `integrity_check: "quick"`; `--full-check` and `sqlite_full_check = true`
/// run the full `integrity_check` (indexes against their tables too), as `verify` always does.
#[test]
fn a_damaged_live_sqlite_database_is_refused_by_the_check_each_backup_runs() {
    // Damaged pages: the quick check refuses the backup, and nothing is registered or left —
    // through a snapshot (rollback journal) and streamed (WAL) alike.
    for mode in ["DELETE", "WAL"] {
        let p = Project::new();
        p.sqlite("db/dev.sqlite3")
            .execute_batch(&format!(
                "PRAGMA journal_mode = {mode}; CREATE TABLE t (a INTEGER, b TEXT);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
                 INSERT INTO t SELECT i, printf('%.200c', 'x') FROM n;
                 PRAGMA wal_checkpoint(TRUNCATE);"
            ))
            .unwrap();
        let db = p.path("db/dev.sqlite3");
        let mut bytes = fs::read(&db).unwrap();
        let page: usize = 4096;
        for b in &mut bytes[4 * page + 8..4 * page + 40] {
            *b = 0xff;
        }
        fs::write(&db, bytes).unwrap();
        p.run(&["backup", "dev"])
            .code(5)
            .stderr_has("failed SQLite's quick check")
            .stderr_has("the live database is damaged");
        assert!(p.backups().is_empty(), "{mode}");
        let left = p.backup_files();
        assert!(
            !left.iter().any(|f| f.contains("backup-")),
            "{mode}: {left:?}"
        );
    }

    // An index that no longer matches its table: the quick check passes it ...
    let p = Project::new();
    let conn = p.sqlite("db/dev.sqlite3");
    conn.execute_batch(
        "CREATE TABLE t (a TEXT); CREATE INDEX t_a ON t(a);
         INSERT INTO t VALUES ('one'), ('two');",
    )
    .unwrap();
    let version: i64 = conn
        .query_row("PRAGMA schema_version", [], |r| r.get(0))
        .unwrap();
    conn.execute_batch(&format!(
        "PRAGMA writable_schema = ON;
         UPDATE sqlite_master SET sql = 'CREATE INDEX t_a ON t(a || ''x'')' WHERE name = 't_a';
         PRAGMA schema_version = {};",
        version + 1
    ))
    .unwrap();
    drop(conn);
    let id = p.backup(&["dev"]);
    assert_eq!(p.backups()[0]["verification"]["integrity_check"], "quick");
    // ... the full check does not, at backup time when asked, and in verify.
    p.run(&["backup", "dev", "--full-check"])
        .code(5)
        .stderr_has("failed SQLite's integrity check: row 1 missing from index t_a");
    p.run(&["verify", &id]).code(5).stdout_has("corrupt");
    let config = fs::read_to_string(p.path(".fractary/plugins/faber-db/config.toml")).unwrap();
    let full = Project::with_config(&config.replace(
        "[environments.dev]\n",
        "[environments.dev]\nsqlite_full_check = true\n",
    ));
    fs::copy(p.path("db/dev.sqlite3"), full.path("db/dev.sqlite3")).unwrap();
    full.run(&["backup", "dev"])
        .code(5)
        .stderr_has("failed SQLite's integrity check");
}

/// A plain PostgreSQL dump changed after it was written to run a shell command and make a role
/// when psql loads it: what a psql fed a single unchecked byte would do.
fn tampered_pg_dump(p: &Project, id: &str, marker: &std::path::Path, role: &str) {
    let path = p.data_file(id);
    let dump = fs::read_to_string(&path).unwrap();
    let planted = format!(
        "\\! touch {}\nCREATE ROLE {role};\n{dump}",
        marker.display()
    );
    fs::write(&path, planted).unwrap();
}

#[test]
fn a_tampered_pg_dump_is_never_fed_to_psql_whichever_way_it_is_restored() {
    use crate::postgres::{PgDb, admin_url, project_with, psql, server_up};
    if !server_up() {
        return;
    }
    let db = PgDb::new("tampered");
    db.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2), (3);");
    let p = project_with(&[("dev", &db)]);
    let id = p.backup(&["dev", "--compression", "none"]);
    let marker = p.path("psql-ran");
    let role = format!("{}_planted", db.name);
    tampered_pg_dump(&p, &id, &marker, &role);
    db.exec("DELETE FROM t WHERE x > 1");
    let role_exists = || {
        psql(
            &admin_url(),
            &format!("SELECT count(*) FROM pg_roles WHERE rolname = '{role}'"),
        ) != "0"
    };
    let into = PgDb::unborn("tamperedinto");
    let _role = DropRole(role.clone());
    let attempts: [&[&str]; 3] = [
        &["restore", "dev", "--from", &id, "--yes"],
        &["restore", "dev", "--from", &id, "--yes", "--in-place"],
        &[
            "restore", "dev", "--from", &id, "--into", &into.name, "--yes",
        ],
    ];
    for args in attempts {
        p.run(args).code(5).stderr_has("failed its checksum");
        assert!(!marker.exists(), "psql ran the planted command: {args:?}");
        assert!(!role_exists(), "psql made the planted role: {args:?}");
        assert_eq!(db.exec("SELECT count(*) FROM t"), "1", "{args:?}");
        assert_eq!(p.backups()[0]["status"], "corrupt", "{args:?}");
        // Named again, as if it were good: the next attempt checks it all the same.
        mark_valid_again(&p);
    }
    assert_only_the_database_is_left(&db, &into);
}

/// Drops the role named, should a failing test have made it.
struct DropRole(String);

impl Drop for DropRole {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args(["-X", "-q", &crate::postgres::admin_url(), "-c"])
            .arg(format!("DROP ROLE IF EXISTS {}", self.0))
            .output();
    }
}

/// A changed custom archive restored with jobs goes through a work file it is decoded into:
/// the checksum comes first, so not a byte of it is decompressed into the backup directory, and
/// no database is left, `--into` included.
#[test]
fn a_changed_custom_archive_is_never_decoded_into_a_work_file() {
    use crate::postgres::{PgDb, project_with, server_up};
    if !server_up() {
        return;
    }
    let db = PgDb::new("changedcustom");
    db.exec("CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 500);");
    let p = project_with(&[("dev", &db)]);
    let id = p.backup(&["dev", "--format", "custom"]);
    let path = p.data_file(&id);
    let len = usize::try_from(fs::metadata(&path).unwrap().len()).unwrap();
    flip_byte(&path, len / 2);
    db.exec("DELETE FROM t WHERE x > 1");
    let into = PgDb::unborn("changedinto");
    let marker = p.path("decoding");
    for args in [
        vec!["restore", "dev", "--from", &id, "--jobs", "2", "--yes"],
        vec![
            "restore", "dev", "--from", &id, "--jobs", "2", "--into", &into.name, "--yes",
        ],
    ] {
        let out = p
            .command(&args)
            .env("FABER_TEST_PAUSE_AT", "restore:before-work-file")
            .env("FABER_TEST_PAUSE_MARKER", &marker)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{args:?}: {stderr}");
        assert!(stderr.contains("failed its checksum"), "{stderr}");
        assert!(!marker.exists(), "the work file was begun: {args:?}");
        assert_eq!(p.backups()[0]["status"], "corrupt");
        mark_valid_again(&p);
    }
    assert_eq!(db.exec("SELECT count(*) FROM t"), "1");
    assert_only_the_database_is_left(&db, &into);
}

/// The registry made to call every corrupt backup valid again, as if it had never been checked.
fn mark_valid_again(p: &Project) {
    let reg = p.path(&format!("{}/backups.json", crate::harness::BACKUPS));
    let text = fs::read_to_string(&reg).unwrap();
    fs::write(&reg, text.replace("\"corrupt\"", "\"valid\"")).unwrap();
}

/// Of `db`'s name and its scratch databases' and `into`, only `db` is on the server.
fn assert_only_the_database_is_left(db: &crate::postgres::PgDb, into: &crate::postgres::PgDb) {
    use crate::postgres::{admin_url, psql};
    let left = psql(
        &admin_url(),
        &format!(
            "SELECT string_agg(datname, ',') FROM pg_database \
             WHERE starts_with(datname, '{}') OR datname = '{}'",
            db.name, into.name
        ),
    );
    assert_eq!(left, db.name, "no scratch or --into database is left");
}
