//! The manifest written beside each backup's data: its registry entry, so that the registry
//! can be rebuilt from the files; and the record of manifests kept outside the environment
//! directories.
//!
//! A manifest also records the database's schema when the backup was taken (`schema`; backups
//! taken before faber-db recorded it have none). The registry does not: most commands read it
//! whole, and a schema can be many times larger than an entry's other fields. Whatever rewrites a
//! manifest from its entry keeps the schema the manifest holds ([`write_manifest_at`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{BackupRecord, Store};
use crate::error::Result;
use crate::fsutil;
use crate::schema::Schema;

/// A manifest as written: the entry, and the schema recorded with it.
#[derive(Serialize)]
struct ManifestOut<'a> {
    #[serde(flatten)]
    record: &'a BackupRecord,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema: Option<&'a serde_json::Value>,
}

/// The schema a manifest records, read apart from the entry (which the registry holds).
#[derive(Deserialize)]
struct SchemaOnly<T> {
    schema: Option<T>,
}

/// `<dir>/<id>.manifest.json` for a data file in `<dir>`.
pub fn manifest_path_for(data_file: &Path, id: &str) -> PathBuf {
    data_file.with_file_name(format!("{id}.manifest.json"))
}

impl BackupRecord {
    /// The manifest written beside the data: this record, and the database's `schema` when it
    /// was recorded, as pretty JSON, newline-terminated.
    pub fn manifest_bytes(&self, schema: Option<&Schema>) -> Vec<u8> {
        let schema = schema.map(|s| serde_json::to_value(s).expect("schemas serialize"));
        manifest_bytes(self, schema.as_ref())
    }
}

fn manifest_bytes(record: &BackupRecord, schema: Option<&serde_json::Value>) -> Vec<u8> {
    let out = ManifestOut { record, schema };
    let mut bytes = serde_json::to_vec_pretty(&out).expect("records serialize");
    bytes.push(b'\n');
    bytes
}

/// Writes `record`'s manifest at `path` (atomically), keeping the schema the manifest there
/// already records: an entry rewritten (verified, uploaded, …) is still the backup of that schema.
pub fn write_manifest_at(path: &Path, record: &BackupRecord) -> Result<()> {
    let kept = read_manifest(path).and_then(|bytes| schema_in(&bytes));
    fsutil::write_atomic(path, &manifest_bytes(record, kept.as_ref()))
}

/// Writes `record`'s manifest at `path` (atomically), with the schema that `copy` — another copy
/// of the manifest, its off-site one — records.
pub fn write_manifest_from(path: &Path, record: &BackupRecord, copy: &[u8]) -> Result<()> {
    fsutil::write_atomic(path, &manifest_bytes(record, schema_in(copy).as_ref()))
}

/// The most a manifest is read of: far more than the schema of ten thousand tables.
const MAX_MANIFEST_BYTES: u64 = 256 * 1024 * 1024;

/// The manifest at `path`, when it is a file (not a FIFO or a device, which a read would wait
/// on or never finish) of a manifest's size.
fn read_manifest(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let is_manifest = |m: std::fs::Metadata| m.is_file() && m.len() <= MAX_MANIFEST_BYTES;
    // Looked at before it is opened: opening a FIFO waits for a writer.
    if !is_manifest(std::fs::metadata(path).ok()?) {
        return None;
    }
    let file = std::fs::File::open(path).ok()?;
    if !is_manifest(file.metadata().ok()?) {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(MAX_MANIFEST_BYTES).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// The schema the manifest `bytes` records, as it is written there.
fn schema_in(bytes: &[u8]) -> Option<serde_json::Value> {
    serde_json::from_slice::<SchemaOnly<serde_json::Value>>(bytes)
        .ok()
        .and_then(|m| m.schema)
}

/// The schema the manifest at `path` records, if it records one that reads as a schema.
pub fn schema_at(path: &Path) -> Option<Schema> {
    let bytes = read_manifest(path)?;
    serde_json::from_slice::<SchemaOnly<Schema>>(&bytes)
        .ok()?
        .schema
}

impl Store {
    /// Writes `record`'s manifest beside its data (atomically), so that it mirrors the record.
    pub fn write_manifest(&self, record: &BackupRecord) -> Result<()> {
        let located = self.locate(record)?;
        write_manifest_at(&located.manifest, record)
    }

    /// The database's schema when `record` was taken, as its manifest records it: `None` for a
    /// backup taken before faber-db recorded schemas, or whose manifest is gone or unreadable.
    pub fn recorded_schema(&self, record: &BackupRecord) -> Option<Schema> {
        schema_at(&self.locate(record).ok()?.manifest)
    }

    /// The manifests of backups written outside the environment directories, as recorded (see
    /// [`crate::locate::ELSEWHERE_FILE`]).
    pub fn other_manifests(&self) -> Vec<PathBuf> {
        crate::locate::recorded_elsewhere(&self.dir)
    }

    /// Records `manifest` as the manifest of a backup written outside the environment
    /// directories. Called under the registry lock, before the backup's files exist: the only way
    /// a directory outside the backup directory becomes one where faber-db reads and removes.
    pub fn remember_manifest(&self, manifest: &Path) -> Result<()> {
        crate::locate::remember_elsewhere(&self.dir, manifest)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// Runs `f` on a thread of its own; `None` when it has not returned within five seconds.
    fn within_seconds<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(5)).ok()
    }

    #[test]
    fn a_manifest_that_is_no_file_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("backup-1.manifest.json");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let at = fifo.clone();
        assert_eq!(
            within_seconds(move || schema_at(&at)),
            Some(None),
            "reading a FIFO never ends"
        );
        let link = dir.path().join("backup-2.manifest.json");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert_eq!(
            within_seconds(move || schema_at(&link)),
            Some(None),
            "reading /dev/zero never ends"
        );
    }
}
