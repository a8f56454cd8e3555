//! The off-site engine in-process, against a [`Directory`]: what a push stores and records,
//! what a fetch takes back and refuses, what a removal deletes, what a pull registers. The
//! S3 client itself is tested against a real server (`tests/it/offsite.rs`).

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::directory::Directory;
use super::fetch::fetch_from;
use super::names::{data_name, recorded_name};
use super::pull::pull_from;
use super::push::push_to;
use super::removals::remove_from;
use super::storage::Storage;
use crate::error::{Error, Kind, Result};
use crate::events::Recorder;
use crate::registry::{BackupRecord, OffsiteCopy, Status};
use crate::session::{Ctx, Session};

const ID: &str = "backup-20261123-100000";
const OTHER: &str = "backup-20261124-100000";

/// A project with a `dev` environment, a directory for off-site copies beside it, and what
/// the engine reported.
struct Fixture {
    dir: tempfile::TempDir,
    ctx: Ctx,
    seen: Arc<Recorder>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("project");
        let config = root.join(".fractary/plugins/faber-db/config.toml");
        fs::create_dir_all(config.parent().unwrap()).unwrap();
        fs::write(
            &config,
            "[environments.dev]\nurl = \"sqlite:db/dev.sqlite3\"\n",
        )
        .unwrap();
        let seen = Arc::new(Recorder::new());
        let now = "2026-11-23T12:00:00Z".parse().unwrap();
        let ctx = Ctx::for_tests(root, now, seen.clone());
        Fixture { dir, ctx, seen }
    }

    fn session(&self) -> Session<'_> {
        self.ctx.session().unwrap()
    }

    /// The off-site directory, with its objects below `prefix`.
    fn storage(&self, prefix: &str) -> Directory {
        Directory::new(self.dir.path().join("offsite"), prefix)
    }

    fn object(&self, key: &str) -> PathBuf {
        self.dir.path().join("offsite").join(key)
    }
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Registers a backup of `dev` whose data is `bytes`, with its manifest.
fn backup(session: &Session, id: &str, bytes: &[u8]) -> BackupRecord {
    let record: BackupRecord = serde_json::from_value(serde_json::json!({
        "id": id, "environment": "dev", "database": "app", "provider": "sqlite",
        "timestamp": format!("{}-{}-{}T10:00:00Z", &id[7..11], &id[11..13], &id[13..15]),
        "label": null, "reason": null, "file": format!("dev/{id}.sqlite3.zst"),
        "size_bytes": bytes.len(), "raw_size_bytes": bytes.len(), "format": "sqlite",
        "compression": "zstd", "compressed": true, "encrypted": false, "sha256": sha256(bytes),
        "tool_version": "t", "migrations": null, "tables": {}, "retention_days": null,
        "expires_at": null, "status": "valid", "verification": null, "host": null,
        "user": null, "git": null, "duration_ms": 5
    }))
    .unwrap();
    session.store.env_dir("dev").unwrap();
    fs::write(session.store.locate(&record).unwrap().data, bytes).unwrap();
    session
        .store
        .update(|reg| {
            reg.backups.push(record.clone());
            Ok(())
        })
        .unwrap();
    session.store.write_manifest(&record).unwrap();
    record
}

fn entry(session: &Session, id: &str) -> BackupRecord {
    session.store.load().unwrap().find(id).unwrap().clone()
}

fn names(storage: &dyn Storage) -> Vec<String> {
    storage
        .list()
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect()
}

#[allow(
    clippy::unnecessary_wraps,
    reason = "the shape of push's checksum check"
)]
fn unchecked(_: &BackupRecord) -> Result<()> {
    Ok(())
}

/// Pushes `record` to `storage`, which must work.
fn pushed(session: &Session, storage: &dyn Storage, record: &BackupRecord) -> BackupRecord {
    let outcome = push_to(session, storage, &[record], &unchecked);
    assert!(outcome.failed.is_empty(), "{:?}", outcome.failed);
    entry(session, &record.id)
}

/// Fetches `record`'s data from `storage` into its place.
fn fetch(session: &Session, storage: &dyn Storage, record: &BackupRecord) -> Result<()> {
    let located = session.store.locate(record).unwrap();
    let Some(OffsiteCopy::Uploaded { url, .. }) = &record.offsite else {
        panic!("{} has no off-site copy", record.id);
    };
    fetch_from(session, storage, record, &located, url)
}

#[test]
fn a_push_stores_the_data_and_the_manifest_and_records_the_copy() {
    let fx = Fixture::new();
    let session = fx.session();
    let record = backup(&session, ID, b"the dump");
    let storage = fx.storage("team/app");

    let outcome = push_to(&session, &storage, &[&record], &unchecked);

    assert_eq!(outcome.pushed.len(), 1);
    let file = format!("dev/{ID}.sqlite3.zst");
    assert_eq!(
        names(&storage),
        [format!("dev/{ID}.manifest.json"), file.clone()]
    );
    let url = storage.url(&file);
    assert!(url.ends_with(&format!("/offsite/team/app/{file}")), "{url}");
    let Some(OffsiteCopy::Uploaded {
        url: recorded,
        sha256,
        size_bytes,
        ..
    }) = entry(&session, ID).offsite
    else {
        panic!("no upload recorded");
    };
    assert_eq!(
        (recorded.as_str(), sha256, size_bytes),
        (url.as_str(), record.sha256.clone(), 8)
    );
    // The manifest off-site is the one here, with the copy in it.
    let manifest: BackupRecord = serde_json::from_slice(
        &fs::read(fx.object(&format!("team/app/dev/{ID}.manifest.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest.id, ID);
    assert_eq!(fx.seen.seen(), [format!("ok: Pushed {ID} (8 B) to {url}")]);
}

#[test]
fn a_backup_that_changed_since_it_was_taken_is_not_kept_off_site() {
    let fx = Fixture::new();
    let session = fx.session();
    let record = backup(&session, ID, b"the dump");
    fs::write(session.store.locate(&record).unwrap().data, b"rotted!!").unwrap();
    let storage = fx.storage("");

    let outcome = push_to(&session, &storage, &[&record], &unchecked);

    assert!(outcome.pushed.is_empty());
    assert_eq!(outcome.failed[0].error.kind(), Kind::Verification);
    assert!(names(&storage).is_empty(), "{:?}", names(&storage));
    let Some(OffsiteCopy::Failed { url, error, .. }) = entry(&session, ID).offsite else {
        panic!("the failure is not recorded");
    };
    assert_eq!(url, format!("{}/dev/{ID}.sqlite3.zst", storage.base_url()));
    assert!(
        error.contains("no longer matches its registered SHA-256"),
        "{error}"
    );
    let seen = fx.seen.seen();
    assert!(seen[0].starts_with(&format!("fail: {ID}: ")), "{seen:?}");
}

#[test]
fn a_backup_its_check_refuses_is_not_sent_at_all() {
    let fx = Fixture::new();
    let session = fx.session();
    let record = backup(&session, ID, b"the dump");
    let other = backup(&session, OTHER, b"another dump");
    let storage = fx.storage("");
    let refuse = |b: &BackupRecord| {
        if b.id == ID {
            Err(Error::verification("it failed its checksum"))
        } else {
            Ok(())
        }
    };

    let outcome = push_to(&session, &storage, &[&record, &other], &refuse);

    assert_eq!(outcome.failed.len(), 1);
    assert_eq!(outcome.pushed[0].id, OTHER);
    assert_eq!(entry(&session, ID).offsite, None);
    assert!(names(&storage).iter().all(|n| n.contains(OTHER)));
    assert_eq!(
        fx.seen.seen()[0],
        format!("fail: {ID}: it failed its checksum")
    );
}

#[test]
fn a_missing_file_comes_back_checked_with_its_manifest() {
    let fx = Fixture::new();
    let session = fx.session();
    let storage = fx.storage("p");
    let record = backup(&session, ID, b"the dump");
    let record = pushed(&session, &storage, &record);
    let located = session.store.locate(&record).unwrap();
    fs::remove_file(&located.data).unwrap();
    fs::remove_file(&located.manifest).unwrap();

    fetch(&session, &storage, &record).unwrap();

    assert_eq!(fs::read(&located.data).unwrap(), b"the dump");
    assert!(located.manifest.exists());
    assert_eq!(entry(&session, ID).status, Status::Valid);
    let seen = fx.seen.seen();
    assert!(
        seen.last()
            .unwrap()
            .starts_with(&format!("ok: Fetched {ID} (8 B) from file://")),
        "{seen:?}"
    );
}

#[test]
fn a_damaged_copy_never_takes_the_place_of_the_data_and_the_entry_says_so() {
    let fx = Fixture::new();
    let session = fx.session();
    let storage = fx.storage("");
    let record = backup(&session, ID, b"the dump");
    let record = pushed(&session, &storage, &record);
    let located = session.store.locate(&record).unwrap();
    fs::remove_file(&located.data).unwrap();
    fs::write(fx.object(&format!("dev/{ID}.sqlite3.zst")), b"replaced").unwrap();

    let err = fetch(&session, &storage, &record).unwrap_err();

    assert_eq!(err.kind(), Kind::Verification);
    assert!(
        err.message().contains("does not match the SHA-256"),
        "{err:?}"
    );
    assert!(!located.data.exists());
    let leftovers: Vec<_> = fs::read_dir(located.data.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains(".fetch"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let now = entry(&session, ID);
    assert_eq!(now.status, Status::Missing);
    assert!(matches!(now.offsite, Some(OffsiteCopy::Failed { .. })));
}

#[test]
fn a_copy_gone_from_the_storage_is_a_verdict_on_the_copy() {
    let fx = Fixture::new();
    let session = fx.session();
    let storage = fx.storage("");
    let record = backup(&session, ID, b"the dump");
    let record = pushed(&session, &storage, &record);
    fs::remove_file(session.store.locate(&record).unwrap().data).unwrap();
    fs::remove_file(fx.object(&format!("dev/{ID}.sqlite3.zst"))).unwrap();

    let err = fetch(&session, &storage, &record).unwrap_err();

    assert_eq!(err.kind(), Kind::Verification);
    assert!(err.message().contains("does not exist"), "{err:?}");
    assert_eq!(entry(&session, ID).status, Status::Missing);
}

#[test]
fn a_removal_deletes_the_copy_where_it_was_put_and_nothing_else() {
    let fx = Fixture::new();
    let session = fx.session();
    let record = backup(&session, ID, b"the dump");
    pushed(&session, &fx.storage("old"), &record);
    // Another object of the storage, which no entry names.
    let stray = fx.object("old/dev/backup-20200101-000000.sqlite3.zst");
    fs::write(&stray, b"not ours").unwrap();
    // The prefix changed since the upload: the copy is found where the entry says it went.
    let storage = fx.storage("new");
    assert_eq!(
        recorded_name(&storage, &entry(&session, ID)),
        format!("/old/dev/{ID}.sqlite3.zst")
    );
    let removed = crate::removal::remove(&session.store, |_| Ok(vec![ID.to_string()])).unwrap();
    let tombstone = removed.removed.into_iter().next().unwrap().offsite;

    let problems = remove_from(&session, Ok(&storage), tombstone.into_iter().collect());

    assert!(problems.is_empty(), "{problems:?}");
    assert!(!fx.object(&format!("old/dev/{ID}.sqlite3.zst")).exists());
    assert!(!fx.object(&format!("old/dev/{ID}.manifest.json")).exists());
    assert!(stray.exists());
    assert!(crate::removal::pending_offsite(&session.store).is_empty());
    let seen = fx.seen.seen();
    assert!(
        seen.last()
            .unwrap()
            .starts_with("ok: Removed off-site copy file://"),
        "{seen:?}"
    );
}

#[test]
fn an_entry_whose_url_names_another_object_is_not_believed() {
    let fx = Fixture::new();
    let session = fx.session();
    let storage = fx.storage("");
    let mut record = backup(&session, ID, b"the dump");
    record.offsite = Some(OffsiteCopy::Uploaded {
        url: storage.url("dev/backup-20200101-000000.sqlite3.zst"),
        size_bytes: 8,
        sha256: record.sha256.clone(),
        uploaded_at: record.timestamp,
    });
    assert_eq!(recorded_name(&storage, &record), data_name(&record));
}

#[test]
fn a_removal_that_cannot_reach_the_storage_keeps_the_tombstone() {
    let fx = Fixture::new();
    let session = fx.session();
    let record = backup(&session, ID, b"the dump");
    pushed(&session, &fx.storage(""), &record);
    let removed = crate::removal::remove(&session.store, |_| Ok(vec![ID.to_string()])).unwrap();
    let tombstone = removed.removed.into_iter().next().unwrap().offsite;
    let unreachable = Error::config("no off-site storage is configured");

    let problems = remove_from(&session, Err(&unreachable), tombstone.into_iter().collect());

    assert_eq!(
        problems,
        [format!(
            "off-site copy of {ID}: no off-site storage is configured"
        )]
    );
    assert_eq!(crate::removal::pending_offsite(&session.store).len(), 1);
    assert!(fx.object(&format!("dev/{ID}.sqlite3.zst")).exists());
}

#[test]
fn a_pull_registers_what_is_complete_off_site_and_says_why_not_the_rest() {
    let fx = Fixture::new();
    let session = fx.session();
    let storage = fx.storage("p");
    for (id, bytes) in [(ID, &b"the dump"[..]), (OTHER, &b"another dump"[..])] {
        let record = backup(&session, id, bytes);
        pushed(&session, &storage, &record);
    }
    // The disk is lost, and one backup's data with it off-site.
    fs::remove_dir_all(session.store.dir()).unwrap();
    fs::remove_file(fx.object(&format!("p/dev/{OTHER}.sqlite3.zst"))).unwrap();
    let session = fx.session();

    let outcome = pull_from(&session, &storage, None).unwrap();

    let ids: Vec<&str> = outcome.registered.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, [ID]);
    assert_eq!(
        outcome.skipped,
        [format!("{OTHER}: its data is not complete off-site")]
    );
    let found = entry(&session, ID);
    assert_eq!(found.file, format!("dev/{ID}.sqlite3.zst"));
    assert!(matches!(
        &found.offsite,
        Some(OffsiteCopy::Uploaded { url, .. }) if *url == storage.url(&format!("dev/{ID}.sqlite3.zst"))
    ));
    // Its data is fetched when needed.
    fetch(&session, &storage, &found).unwrap();
    assert_eq!(
        fs::read(session.store.locate(&found).unwrap().data).unwrap(),
        b"the dump"
    );
}

#[test]
fn a_directory_storage_keeps_its_objects_inside_it() {
    let fx = Fixture::new();
    let storage = fx.storage("p");
    let source = fx.dir.path().join("source");
    fs::write(&source, b"bytes").unwrap();
    for name in ["../escape", "/../escape", "a//b", "./a"] {
        let err = storage.put_file(name, &source).unwrap_err();
        assert_eq!(err.kind(), Kind::Config, "{name}");
    }
    let stored = storage.put_file("dev/x", &source).unwrap();
    assert_eq!((stored.size_bytes, stored.sha256), (5, sha256(b"bytes")));
    assert_eq!(storage.get("/p/dev/x").unwrap(), b"bytes");
    storage.delete("dev/x").unwrap();
    storage.delete("dev/x").unwrap();
    assert!(names(&storage).is_empty());
    assert!(!fx.object("escape").exists());
}

#[test]
fn a_manifest_fetched_back_keeps_the_schema_its_off_site_copy_records() {
    let fx = Fixture::new();
    let session = fx.session();
    let storage = fx.storage("p");
    let record = backup(&session, ID, b"the dump");
    let mut schema = crate::schema::Schema::default();
    schema
        .tables
        .insert("users".into(), crate::schema::Table::default());
    let located = session.store.locate(&record).unwrap();
    fs::write(
        &located.manifest,
        record.manifest_bytes(&crate::registry::Recorded {
            schema: Some(schema.clone()),
            key_max: None,
            globals: None,
        }),
    )
    .unwrap();
    let record = pushed(&session, &storage, &record);
    assert_eq!(session.store.recorded_schema(&record), Some(schema.clone()));

    // The data and its manifest are lost here: fetched back, the manifest is written again.
    fs::remove_file(&located.data).unwrap();
    fs::remove_file(&located.manifest).unwrap();
    fetch(&session, &storage, &record).unwrap();
    assert_eq!(session.store.recorded_schema(&record), Some(schema.clone()));

    // The whole disk is lost: pulled, then fetched.
    fs::remove_dir_all(session.store.dir()).unwrap();
    let session = fx.session();
    pull_from(&session, &storage, None).unwrap();
    let found = entry(&session, ID);
    fetch(&session, &storage, &found).unwrap();
    assert_eq!(session.store.recorded_schema(&found), Some(schema));
}
