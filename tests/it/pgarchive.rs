//! Custom archives mended for a parallel restore (src/pgarchive): real pg_dump archives taken
//! through a pipe, as faber-db takes them, read back by the real pg_restore.

use std::io::{Read, Seek, SeekFrom};
use std::process::{Command, Stdio};

use faber_db::pgarchive::{self, Copied};

use crate::postgres::{PgDb, SCHEMA, admin_url, project_with, psql, server_up};

/// Rows pg_dump writes as chunks of every size: many small ones, one larger than a merged chunk,
/// an empty table, large objects and a materialized view's data.
const MORE: &str = r"
CREATE TABLE notes (id int PRIMARY KEY, body text);
INSERT INTO notes SELECT g, repeat(md5(g::text), 1 + g % 7) FROM generate_series(1, 20000) g;
INSERT INTO notes VALUES (0, repeat('big row ', 90000));
CREATE TABLE nothing (x int);
SELECT lo_from_bytea(0, convert_to('a large object', 'UTF8'));
SELECT lo_from_bytea(0, decode(repeat('00ff', 200000), 'hex'));
CREATE MATERIALIZED VIEW note_sizes AS SELECT id % 10 AS bucket, sum(length(body)) AS size FROM notes GROUP BY 1;
";

/// `pg_dump -Fc -Z0` into a pipe, as faber-db runs it.
fn dump_through_a_pipe(db: &PgDb) -> Vec<u8> {
    let mut child = Command::new("pg_dump")
        .args(["--format=custom", "--compress=0", &db.url()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut bytes = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    assert!(child.wait().unwrap().success());
    bytes
}

/// What `pg_restore` makes of an archive file, as SQL (without the lines that differ per run).
fn as_sql(path: &std::path::Path) -> String {
    let out = Command::new("pg_restore")
        .arg("--file=-")
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn large_objects(db: &PgDb) -> String {
    db.exec("SELECT string_agg(md5(lo_get(oid)), ',' ORDER BY md5(lo_get(oid))) FROM pg_largeobject_metadata")
}

#[test]
fn a_mended_archive_is_read_by_pg_restore_as_the_one_pg_dump_wrote() {
    if !server_up() {
        return;
    }
    let source = PgDb::new("arch_src");
    source.exec(SCHEMA);
    source.exec(MORE);
    let dumped = dump_through_a_pipe(&source);
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("piped.dump");
    std::fs::write(&original, &dumped).unwrap();
    let mended_path = dir.path().join("mended.dump");
    let mut mended = std::fs::File::create_new(&mended_path).unwrap();
    let copied = pgarchive::copy_for_restore(&mut &dumped[..], &mended).unwrap();
    assert_eq!(copied, Copied::Mended);
    let size = mended.seek(SeekFrom::End(0)).unwrap();
    // 20,000 rows were 20,000 chunks of 5-byte lengths; now a few dozen.
    assert!(
        size + 5 * 19_000 < dumped.len() as u64,
        "{size} of {}",
        dumped.len()
    );
    // pg_restore reads the same objects and the same data out of both, in the same order.
    assert_eq!(as_sql(&mended_path), as_sql(&original));
    // And the parallel jobs load it into a new database whole.
    let target = PgDb::new("arch_dst");
    let out = Command::new("pg_restore")
        .args(["--jobs=2", "--exit-on-error", "--dbname", &target.url()])
        .arg(&mended_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(target.schema(), source.schema());
    assert_eq!(target.data(), source.data());
    assert_eq!(large_objects(&target), large_objects(&source));
    assert_eq!(target.exec("SELECT count(*) FROM note_sizes"), "10");
}

#[test]
fn an_archive_pg_dump_wrote_to_a_file_is_copied_as_it_is() {
    if !server_up() {
        return;
    }
    let source = PgDb::new("arch_file");
    source.exec("CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 1000);");
    let dir = tempfile::tempdir().unwrap();
    let written = dir.path().join("written.dump");
    let status = Command::new("pg_dump")
        .args(["--format=custom", "--compress=0", "--file"])
        .arg(&written)
        .arg(source.url())
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = std::fs::read(&written).unwrap();
    let out = tempfile::tempfile().unwrap();
    assert_eq!(
        pgarchive::copy_for_restore(&mut &bytes[..], &out).unwrap(),
        Copied::AsIs
    );
    let mut copy = Vec::new();
    (&out).seek(SeekFrom::Start(0)).unwrap();
    (&out).read_to_end(&mut copy).unwrap();
    assert_eq!(copy, bytes);
}

/// A stored archive, decoded, changed by `change`, encoded again; with `matching`, the registry's
/// checksum is made to match, as if it had been written so.
fn rewrite_backup(
    p: &crate::harness::Project,
    id: &str,
    matching: bool,
    change: impl Fn(&mut Vec<u8>),
) {
    let path = p.data_file(id);
    let mut archive = zstd::decode_all(std::fs::File::open(&path).unwrap()).unwrap();
    change(&mut archive);
    let old_sha = crate::postgres::sha256sum(&path);
    std::fs::write(&path, zstd::encode_all(&archive[..], 3).unwrap()).unwrap();
    if matching {
        record_new_checksum(p, &path, &old_sha);
    }
}

/// The registry's checksum of the backup file at `path` (which was `old_sha`) made to match it.
fn record_new_checksum(p: &crate::harness::Project, path: &std::path::Path, old_sha: &str) {
    let reg = p.path(&format!("{}/backups.json", crate::harness::BACKUPS));
    let text = std::fs::read_to_string(&reg)
        .unwrap()
        .replace(old_sha, &crate::postgres::sha256sum(path));
    std::fs::write(&reg, text).unwrap();
}

#[test]
fn an_archive_that_cannot_be_mended_goes_to_pg_restore_as_it_is_and_a_changed_one_is_called_changed()
 {
    if !server_up() {
        return;
    }
    let db = PgDb::new("arch_bad");
    db.exec("CREATE TABLE t (x int, y text); INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 3000) g;");
    let target = PgDb::unborn("arch_bad_copy");
    let p = project_with(&[("dev", &db), ("copy", &target)]);
    // A byte after the last block: not pg_dump's layout, yet pg_restore reads the archive.
    let id = p.backup(&["dev", "--format", "custom"]);
    rewrite_backup(&p, &id, true, |archive| archive.push(b'\n'));
    p.run(&["restore", "copy", "--from", &id, "--yes", "--jobs", "2"])
        .code(0)
        .stderr_has(&format!("backup {id}: the archive is damaged at byte"))
        .stderr_has("it ends in the middle; decoding it as it is for pg_restore");
    assert_eq!(target.exec("SELECT count(*) FROM t"), "3000");
    // The first row's chunk length made negative: pg_restore cannot read past it either.
    let negative = |archive: &mut Vec<u8>| {
        let row = b"1\trow 1\n";
        let at = archive.windows(row.len()).position(|w| w == row).unwrap();
        assert_eq!(archive[at - 5..at], [0, 8, 0, 0, 0]);
        archive[at - 5] = 1;
    };
    for matching in [true, false] {
        let id = p.backup(&["dev", "--format", "custom"]);
        db.exec("INSERT INTO t VALUES (-1, 'written after the backup')");
        let before = db.data();
        let args = ["restore", "dev", "--from", &id, "--yes", "--jobs", "2"];
        if matching {
            rewrite_backup(&p, &id, true, negative);
            p.run(&args)
                .code(6)
                .stderr_has("a chunk of negative length; decoding it as it is for pg_restore")
                .stderr_has("error: pg_restore failed")
                .stderr_has("the database was not changed");
        } else {
            // Changed after the restore checked it, before the work file: the damage is found
            // first, the checksum at the end of the file, and the checksum is what is told.
            let paused = p.paused_at(&args, "restore:before-work-file");
            rewrite_backup(&p, &id, false, negative);
            let out = paused.resume();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(5), "{stderr}");
            assert!(
                stderr.contains("cannot be decoded or failed its checksum"),
                "{stderr}"
            );
            assert!(!stderr.contains("damaged at byte"), "{stderr}");
        }
        assert_eq!(db.data(), before, "the database as it was");
        let leftovers = psql(
            &admin_url(),
            &format!(
                "SELECT count(*) FROM pg_database WHERE datname LIKE '{}\\_\\_faber%'",
                db.name
            ),
        );
        assert_eq!(leftovers, "0");
        let dir = p.path(&format!("{}/dev", crate::harness::BACKUPS));
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| !n.starts_with("restore-")),
            "{names:?}"
        );
    }
}

#[test]
fn a_stored_file_that_does_not_decode_into_the_work_file_is_called_damaged() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("arch_zstd");
    db.exec("CREATE TABLE t (x int, y text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g;");
    let p = project_with(&[("dev", &db)]);
    let id = p.backup(&["dev", "--format", "custom"]);
    // zstd data damaged, with the registry's checksum made to match: written so.
    let path = p.data_file(&id);
    let old_sha = crate::postgres::sha256sum(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&path, bytes).unwrap();
    record_new_checksum(&p, &path, &old_sha);
    db.exec("DELETE FROM t WHERE x > 10000");
    p.run(&["restore", "dev", "--from", &id, "--yes", "--jobs", "2"])
        .code(5)
        .stderr_has(&format!("error: backup {id} cannot be decoded"))
        .stderr_has("the stored file is damaged; nothing was restored")
        .stderr_lacks("cannot decode the backup into");
    assert_eq!(db.exec("SELECT count(*) FROM t"), "10000");
}
