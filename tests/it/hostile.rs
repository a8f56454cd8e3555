//! Hostile files and interrupted removals: paths read from the registry, manifests and claims are
//! data; a removal killed anywhere, run on a full disk or racing a reader loses nothing and
//! leaves nothing behind (issue 16).

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::harness::{BACKUPS, Project};

/// Rewrites backup `id`'s registry entry with `change`.
fn edit_entry(p: &Project, id: &str, change: impl Fn(&mut Value)) {
    let path = p.path(&format!("{BACKUPS}/backups.json"));
    let mut reg: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    let entry = reg["backups"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|b| b["id"] == id)
        .unwrap();
    change(entry);
    fs::write(&path, serde_json::to_string_pretty(&reg).unwrap()).unwrap();
}

/// Every file below `dir` with its content, to show nothing there changed.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push((path.clone(), fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn an_entry_naming_a_file_outside_the_backup_directory_is_refused_and_nothing_there_is_touched() {
    // Relative escapes, an absolute path, and one that goes down and up again — each named like
    // the backup's own data, so that only where it is gives it away.
    let variants = |id: &str, outside: &Path| {
        vec![
            format!("../../../../outside/{id}.sqlite3.gz"),
            outside
                .join(format!("{id}.sqlite3.gz"))
                .display()
                .to_string(),
            format!("dev/../../../../../outside/{id}.sqlite3.gz"),
        ]
    };
    let probe = Project::new();
    for n in 0..variants("x", &probe.path("outside")).len() {
        let p = Project::new()
            .seeded("db/dev.sqlite3")
            .seeded("db/prod.sqlite3");
        let old = p.backup(&["dev", "--label", "old"]);
        let newer = p.backup(&["dev", "--label", "newer"]);
        let outside = p.path("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join(format!("{old}.sqlite3.gz")), "precious").unwrap();
        fs::write(outside.join("notes.txt"), "mine").unwrap();
        let before = snapshot(&outside);
        let file = variants(&old, &outside)[n].clone();
        edit_entry(&p, &old, |e| e["file"] = Value::from(file.clone()));

        p.run(&["-y", "delete", &old, "--force"])
            .code(1)
            .stderr_has(&old)
            .stderr_has("refused");
        assert!(p.ids().contains(&old), "{file}: the entry stays");
        let doc = p.json(&["-y", "cleanup", "--keep-last", "1"], 1);
        let kept = &doc["kept"];
        assert!(
            kept.as_array()
                .unwrap()
                .iter()
                .any(|k| k["id"] == old.as_str() && k["reasons"][0] == "its file path is refused"),
            "{file}: {doc}"
        );
        p.run(&["restore", "dev", "--from", &old])
            .code(1)
            .stderr_has("refused");
        p.run(&["verify", &old]).code(1).stderr_has("refused");
        p.run(&["doctor"]).code(5).stdout_has("refused");
        // The repair writes nothing there and leaves the files alone: the entry is rebuilt
        // from the backup's own manifest, beside its own data.
        p.run(&["doctor", "--repair"]).code(0);
        assert_eq!(
            snapshot(&outside),
            before,
            "{file}: nothing outside changed"
        );
        let mut both = vec![newer.clone(), old.clone()];
        both.sort();
        assert_eq!(p.ids(), both, "{file}");
        assert!(p.data_file(&old).starts_with(p.path(BACKUPS)));
        p.run(&["verify", &old]).code(0);
        p.run(&["doctor"]).code(0);
        // Without a sound manifest, the repair takes the entry out.
        let manifest = p
            .data_file(&old)
            .with_file_name(format!("{old}.manifest.json"));
        fs::remove_file(manifest).unwrap();
        edit_entry(&p, &old, |e| e["file"] = Value::from(file.clone()));
        p.run(&["doctor", "--repair"]).code(0).stderr_has(&old);
        assert_eq!(p.ids(), vec![newer.clone()], "{file}");
        assert_eq!(
            snapshot(&outside),
            before,
            "{file}: nothing outside changed"
        );
    }
}

#[test]
fn a_linked_environment_directory_is_refused_before_anything_is_written() {
    let p = Project::new().seeded("db/dev.sqlite3");
    let elsewhere = p.path("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    fs::create_dir_all(p.path(BACKUPS)).unwrap();
    std::os::unix::fs::symlink(&elsewhere, p.path(&format!("{BACKUPS}/dev"))).unwrap();
    p.run(&["backup", "dev"])
        .code(1)
        .stderr_has("a link leading elsewhere");
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
    assert!(p.ids().is_empty());
}

#[test]
fn output_dirs_with_a_newline_in_their_path_are_found_again_by_a_repair() {
    let p = Project::new()
        .seeded("db/dev.sqlite3")
        .seeded("db/prod.sqlite3");
    let dir = p.path("exports\nnight");
    let id = p.backup(&["dev", "--output-dir", dir.to_str().unwrap()]);
    assert!(p.data_file(&id).starts_with(dir.canonicalize().unwrap()));
    fs::remove_file(p.path(&format!("{BACKUPS}/backups.json"))).unwrap();
    p.run(&["doctor", "--repair"]).code(0);
    assert_eq!(p.ids(), vec![id.clone()]);
    p.run(&["verify", &id]).code(0);
    p.run(&["doctor"]).code(0);
}

#[test]
fn the_environments_own_directory_given_through_a_link_is_an_ordinary_backup() {
    let p = Project::empty();
    let real = p.path("disk/backups");
    fs::create_dir_all(real.join("dev")).unwrap();
    std::os::unix::fs::symlink(&real, p.path("backups-link")).unwrap();
    p.write(
        ".fractary/plugins/faber-db/config.toml",
        "[defaults]\nbackup_dir = \"backups-link\"\n\n[environments.dev]\nurl = \"sqlite:db/dev.sqlite3\"\n",
    );
    fs::create_dir_all(p.path("db")).unwrap();
    p.sqlite("db/dev.sqlite3")
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    let own = real.join("dev").canonicalize().unwrap();
    let id = p.backup(&["dev", "--output-dir", own.to_str().unwrap()]);
    let file = fs::read_to_string(p.path("backups-link/backups.json")).unwrap();
    assert!(
        file.contains(&format!("\"file\": \"dev/{id}.sqlite3")),
        "recorded as the environment's own: {file}"
    );
    p.run(&["doctor"])
        .code(0)
        .stderr_lacks("neither registered");
}

/// The backups and files a project holds, to compare before and after.
fn backups_and_files(p: &Project) -> (Vec<String>, Vec<String>) {
    (p.ids(), p.backup_files())
}

#[test]
fn a_removal_killed_at_any_point_is_finished_by_the_next_run_and_never_brought_back() {
    for point in ["remove:after-tombstone", "remove:before-registry"] {
        for args in [
            vec!["-y", "cleanup", "--keep-last", "1"],
            vec!["-y", "delete", "VICTIM", "--force"],
        ] {
            let p = Project::new()
                .seeded("db/dev.sqlite3")
                .seeded("db/prod.sqlite3");
            let old = p.backup(&["dev", "--label", "old"]);
            let kept = p.backup(&["dev", "--label", "kept"]);
            let args: Vec<&str> = args
                .iter()
                .map(|a| if *a == "VICTIM" { old.as_str() } else { a })
                .collect();
            crate::reliability::kill_at(&p, &args, point);
            // The next run, whatever it is, finishes the removal first.
            p.run(&["list"])
                .code(0)
                .stderr_has(&format!("finished removing {old}"));
            let (ids, files) = backups_and_files(&p);
            assert_eq!(ids, vec![kept.clone()], "{point} {args:?}");
            assert!(
                files.iter().all(|f| !f.contains(&old)),
                "{point} {args:?}: {files:?}"
            );
            p.run(&["doctor"])
                .code(0)
                .stderr_lacks("neither registered");
            p.run(&["doctor", "--repair"]).code(0);
            assert_eq!(
                p.ids(),
                vec![kept.clone()],
                "{point} {args:?}: not brought back"
            );
        }
    }
}

#[test]
#[allow(clippy::many_single_char_names)]
fn delete_and_cleanup_make_room_on_a_full_disk() {
    let Some(fs_) = crate::services::Tmpfs::mount("3m") else {
        return;
    };
    let p = Project::new().seeded("db/dev.sqlite3");
    p.sqlite("db/dev.sqlite3")
        .execute_batch(
            "CREATE TABLE big (b); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) \
             INSERT INTO big SELECT randomblob(2000) FROM n;",
        )
        .unwrap();
    p.use_backup_dir(fs_.dir.path());
    let a = p.backup(&["dev", "--label", "a", "--compression", "none"]);
    let b = p.backup(&["dev", "--label", "b", "--compression", "none"]);
    let c = p.backup(&["dev", "--label", "c", "--compression", "none"]);
    // Filled to the last byte.
    let filler = fs_.dir.path().join("filler");
    let mut f = fs::File::create(&filler).unwrap();
    let chunk = vec![7u8; 4096];
    while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    drop(f);
    assert!(fs::write(fs_.dir.path().join("probe"), "x").is_err());
    p.run(&["-y", "delete", &a]).code(0);
    let mut f = fs::OpenOptions::new().append(true).open(&filler).unwrap();
    while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    drop(f);
    p.run(&["-y", "cleanup", "--keep-last", "1"]).code(0);
    let reg: Value =
        serde_json::from_str(&fs::read_to_string(fs_.dir.path().join("backups.json")).unwrap())
            .unwrap();
    let ids: Vec<&str> = reg["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![c.as_str()]);
    let left: Vec<String> = fs::read_dir(fs_.dir.path().join("dev"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        left.iter().all(|n| !n.contains(&a) && !n.contains(&b)),
        "{left:?}"
    );
    drop(p);
}

#[test]
fn a_backup_being_restored_is_never_removed() {
    let p = Project::new().seeded("db/dev.sqlite3");
    let old = p.backup(&["dev", "--label", "old"]);
    let newer = p.backup(&["dev", "--label", "newer"]);
    let restore = p.paused_at(
        &["restore", "dev", "--from", &old, "--no-safety-backup"],
        "restore:before-commit",
    );
    p.run(&["-y", "delete", &old, "--force"])
        .code(7)
        .stderr_has("in use");
    let doc = p.json(&["-y", "cleanup", "--keep-last", "1"], 0);
    assert!(
        doc["kept"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == old.as_str() && k["reasons"][0] == "in use by another run"),
        "{doc}"
    );
    assert!(p.data_file(&old).is_file());
    let out = restore.resume();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    p.run(&["-y", "delete", &old, "--force"]).code(0);
    assert_eq!(p.ids(), vec![newer]);
}

#[test]
fn verify_all_says_a_backup_removed_meanwhile_was_removed_not_missing() {
    let p = Project::new().seeded("db/dev.sqlite3");
    let old = p.backup(&["dev", "--label", "old"]);
    let newer = p.backup(&["dev", "--label", "newer"]);
    // Paused after checking the newest, before the older one.
    let verify = p.paused_at(&["--json", "verify", "--all"], "verify:after-one");
    p.run(&["-y", "cleanup", "--keep-last", "1"]).code(0);
    let out = verify.resume();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{doc}");
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results[0]["id"], newer.as_str());
    assert_eq!(results[0]["status"], "valid");
    assert_eq!(results[1]["id"], old.as_str());
    assert_eq!(results[1]["removed"], true, "{doc}");
}

#[test]
fn a_killed_removal_of_a_backup_labelled_like_a_tombstone_suffix_is_finished_too() {
    for point in ["remove:after-tombstone", "remove:before-registry"] {
        let p = Project::new()
            .seeded("db/dev.sqlite3")
            .seeded("db/prod.sqlite3");
        // Labels may hold dots: `x.offsite` is one.
        let kept = p.backup(&["dev", "--label", "x"]);
        let victim = p.backup(&["dev", "--label", "x.offsite"]);
        crate::reliability::kill_at(&p, &["-y", "delete", &victim, "--force"], point);
        p.run(&["list"])
            .code(0)
            .stderr_has(&format!("finished removing {victim}"));
        assert_eq!(p.ids(), vec![kept.clone()], "{point}");
        assert!(
            p.backup_files().iter().all(|f| !f.contains(&victim)),
            "{point}: {:?}",
            p.backup_files()
        );
        // The other backup is not taken for one being removed.
        p.run(&["doctor"]).code(0).stderr_lacks(&kept);
        p.run(&["verify", &kept]).code(0);
    }
}

/// A small ext4 filesystem in a loop-mounted image, for one test: a disk where, unlike tmpfs, a
/// new directory needs a free block. Unmounted on drop. Needs root and mkfs.ext4; skips without.
struct Ext4 {
    dir: tempfile::TempDir,
    _image: tempfile::TempDir,
}

impl Ext4 {
    fn mount(size: &str) -> Option<Ext4> {
        let image = tempfile::Builder::new()
            .prefix("faber-ext4-")
            .tempdir()
            .unwrap();
        let file = image.path().join("fs.img");
        let dir = tempfile::Builder::new()
            .prefix("faber-ext4-mnt-")
            .tempdir()
            .unwrap();
        let ok = std::process::Command::new("truncate")
            .args(["-s", size])
            .arg(&file)
            .status()
            .is_ok_and(|s| s.success())
            // No blocks reserved for root: full is full.
            && std::process::Command::new("mkfs.ext4")
                .args(["-q", "-m", "0"])
                .arg(&file)
                .status()
                .is_ok_and(|s| s.success())
            && std::process::Command::new("mount")
                .args(["-o", "loop"])
                .arg(&file)
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                !crate::services::required(),
                "cannot mount an ext4 image, and FABER_REQUIRE_SERVICES=1; run as root"
            );
            eprintln!("skipping: cannot mount an ext4 image");
            return None;
        }
        Some(Ext4 { dir, _image: image })
    }
}

impl Drop for Ext4 {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
#[allow(clippy::many_single_char_names)]
fn delete_and_cleanup_make_room_on_a_full_ext4_disk() {
    let Some(disk) = Ext4::mount("8M") else {
        return;
    };
    let p = Project::new().seeded("db/dev.sqlite3");
    p.sqlite("db/dev.sqlite3")
        .execute_batch(
            "CREATE TABLE big (b); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) \
             INSERT INTO big SELECT randomblob(2000) FROM n;",
        )
        .unwrap();
    let backups = disk.dir.path().join("backups");
    p.use_backup_dir(&backups);
    let a = p.backup(&["dev", "--label", "a", "--compression", "none"]);
    let b = p.backup(&["dev", "--label", "b", "--compression", "none"]);
    let c = p.backup(&["dev", "--label", "c", "--compression", "none"]);
    // Filled to the last block, as a disk that ran full in the night.
    let filler = disk.dir.path().join("filler");
    let fill = || {
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&filler)
            .unwrap();
        let chunk = vec![7u8; 1024];
        while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    };
    fill();
    assert!(fs::write(disk.dir.path().join("probe"), "x").is_err());
    // The first removal on this disk: the tool's own remedy must work.
    p.run(&["-y", "delete", &a]).code(0);
    fill();
    p.run(&["-y", "cleanup", "--keep-last", "1"]).code(0);
    let reg: Value =
        serde_json::from_str(&fs::read_to_string(backups.join("backups.json")).unwrap()).unwrap();
    let ids: Vec<&str> = reg["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![c.as_str()], "{b} removed too");
    drop(p);
}

#[test]
fn a_backup_deleted_while_its_output_dir_is_away_is_not_brought_back_when_it_returns() {
    let p = Project::new().seeded("db/dev.sqlite3");
    let kept = p.backup(&["dev", "--label", "kept"]);
    // An --output-dir on a disk that is not always there (a USB disk, a network share).
    let usb = p.path("usb");
    fs::create_dir(&usb).unwrap();
    let exported = p.backup(&[
        "dev",
        "--label",
        "exported",
        "--output-dir",
        usb.to_str().unwrap(),
    ]);
    let data = p.data_file(&exported);
    assert!(data.starts_with(usb.canonicalize().unwrap()));
    // Unmounted: the directory is gone for now.
    let away = p.path("usb-away");
    fs::rename(&usb, &away).unwrap();
    let deleted = p.run(&["-y", "delete", &exported]);
    fs::rename(&away, &usb).unwrap();
    assert!(
        deleted.code != 0 || !data.exists(),
        "delete said it deleted {exported}, whose file is still there: {deleted:?}"
    );
    // Whatever it said, a repair never registers a backup that was deleted.
    let _ = p.run(&["doctor", "--repair"]);
    if deleted.code == 0 {
        assert_eq!(p.ids(), vec![kept.clone()], "the deleted backup came back");
    }
}

#[test]
fn a_restore_never_removes_a_users_file_beside_the_database_named_like_its_staging_file() {
    let p = Project::new().seeded("db/dev.sqlite3");
    let id = p.backup(&["dev"]);
    // The application's directory is the user's: files there that faber-db did not make are
    // not its to remove, whatever their names.
    for name in [
        "dev.sqlite3.partial",
        "dev.sqlite3.partial-wal",
        "dev.sqlite3.partial-journal",
    ] {
        p.write(&format!("db/{name}"), "the user's own");
    }
    p.run(&["restore", "dev", "--from", &id, "--yes"]).code(0);
    for name in [
        "dev.sqlite3.partial",
        "dev.sqlite3.partial-wal",
        "dev.sqlite3.partial-journal",
    ] {
        assert_eq!(
            fs::read_to_string(p.path(&format!("db/{name}")))
                .ok()
                .as_deref(),
            Some("the user's own"),
            "{name}"
        );
    }
}

#[test]
fn an_sqlite_link_switched_during_a_restore_never_costs_the_replaced_data_its_safety_backup() {
    let mut p = Project::new();
    for (name, x) in [("real-a.sqlite3", 1), ("real-b.sqlite3", 2)] {
        p.sqlite(&format!("db/{name}"))
            .execute_batch(&format!("CREATE TABLE t (x); INSERT INTO t VALUES ({x});"))
            .unwrap();
    }
    std::os::unix::fs::symlink("real-a.sqlite3", p.path("db/dev.sqlite3")).unwrap();
    p.set_var("PROD_DATABASE_URL", "sqlite:db/check.sqlite3");
    let id = p.backup(&["dev"]);
    // What the restore is about to replace: a row the backup lacks.
    p.sqlite("db/real-a.sqlite3")
        .execute("INSERT INTO t VALUES (5)", [])
        .unwrap();
    // The link is switched (a deploy) while the restore takes its safety backup.
    let restore = p.paused_at(
        &["--json", "restore", "dev", "--from", &id, "--yes"],
        "backup:after-reserve",
    );
    fs::remove_file(p.path("db/dev.sqlite3")).unwrap();
    std::os::unix::fs::symlink("real-b.sqlite3", p.path("db/dev.sqlite3")).unwrap();
    let out = restore.resume();
    let rows = |rel: &str| -> Vec<i64> {
        p.sqlite(rel)
            .prepare("SELECT x FROM t ORDER BY x")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    if rows("db/real-a.sqlite3") == vec![1, 5] {
        return; // untouched: nothing lost
    }
    // real-a.sqlite3 was overwritten: its data must be in the safety backup.
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let safety = p
        .backups()
        .into_iter()
        .filter(|b| b["reason"] == "pre-restore")
        .map(|b| b["id"].as_str().unwrap().to_string())
        .next()
        .unwrap_or_else(|| panic!("no safety backup: {doc}"));
    p.run(&[
        "-y",
        "restore",
        "production",
        "--from",
        &safety,
        "--no-safety-backup",
    ])
    .code(0);
    assert_eq!(
        rows("db/check.sqlite3"),
        vec![1, 5],
        "real-a.sqlite3 was overwritten, and its safety backup holds another database: {doc} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sqlite_a_write_made_during_the_restore_stops_it_before_the_copy() {
    let p = Project::new().seeded("db/dev.sqlite3");
    let id = p.backup(&["dev"]);
    let restore = p.paused_at(
        &["--json", "restore", "dev", "--from", &id, "--yes"],
        "restore:before-commit",
    );
    // Acknowledged to the application after the safety backup, before the copy would replace
    // the data: it would be in neither, so the restore stops.
    p.sqlite("db/dev.sqlite3")
        .execute("INSERT INTO t VALUES (42)", [])
        .unwrap();
    let out = restore.resume();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(7), "{doc}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("was written to while the restore was staged"),
        "{doc}"
    );
    let rows: Vec<i64> = p
        .sqlite("db/dev.sqlite3")
        .prepare("SELECT x FROM t ORDER BY x")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows, vec![1, 42], "nothing was restored, nothing lost");
    // Without the application writing, the same restore goes through.
    p.run(&["restore", "dev", "--from", &id, "--yes"]).code(0);
}
