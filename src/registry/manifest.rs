//! The manifest written beside each backup's data: its registry entry, so that the registry
//! can be rebuilt from the files; and the record of manifests kept outside the environment
//! directories.
//!
//! A manifest also records what the database was like when the backup was taken, which the
//! registry does not ([`Recorded`]): its schema (`schema`), and the largest value of each table's
//! single integer primary key, read before the dump (`key_max`), which a rollback's preview
//! compares with the live database. Backups taken before faber-db recorded them have neither.
//! Most commands read the registry whole, and a schema can be many times larger than an entry's
//! other fields. Whatever rewrites a manifest from its entry keeps what it records
//! ([`write_manifest_at`]).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{BackupRecord, Store};
use crate::error::Result;
use crate::fsutil;
use crate::schema::{KeyMax, KeyMaxima, Schema};

/// The fields a manifest holds beyond its registry entry: kept as they are when the entry is
/// rewritten.
const RECORDED: [&str; 3] = ["schema", "key_max", "globals"];

/// What a manifest records about the database besides its entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Its schema, when it was read, the same, before and after the dump.
    pub schema: Option<Schema>,
    /// The largest key of each table with a single integer primary key, read before the dump.
    pub key_max: Option<KeyMaxima>,
    /// The server's roles and tablespaces (`include_globals`, PostgreSQL).
    pub globals: Option<Globals>,
}

/// A PostgreSQL server's roles and tablespaces, as `pg_dumpall --globals-only` wrote them when
/// the backup was taken.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Globals {
    /// The script; when `sealed`, encrypted to the backup's recipients and hex-encoded.
    pub script: String,
    /// SHA-256 of the script as the server gave it.
    pub sha256: String,
    /// Whether the roles' password hashes are in it.
    pub role_passwords: bool,
    pub sealed: bool,
}

/// `<dir>/<id>.manifest.json` for a data file in `<dir>`.
pub fn manifest_path_for(data_file: &Path, id: &str) -> PathBuf {
    data_file.with_file_name(format!("{id}.manifest.json"))
}

impl BackupRecord {
    /// The manifest written beside the data: this record, and what was `recorded` of the
    /// database, as pretty JSON, newline-terminated.
    pub fn manifest_bytes(&self, recorded: &Recorded) -> Vec<u8> {
        let mut extra = Map::new();
        if let Some(schema) = &recorded.schema {
            extra.insert(
                "schema".into(),
                serde_json::to_value(schema).expect("schemas serialize"),
            );
        }
        if let Some(key_max) = &recorded.key_max {
            extra.insert(
                "key_max".into(),
                serde_json::to_value(key_max).expect("keys serialize"),
            );
        }
        if let Some(globals) = &recorded.globals {
            extra.insert(
                "globals".into(),
                serde_json::to_value(globals).expect("globals serialize"),
            );
        }
        manifest_bytes(self, extra)
    }
}

fn manifest_bytes(record: &BackupRecord, extra: Map<String, Value>) -> Vec<u8> {
    let mut out = serde_json::to_value(record).expect("records serialize");
    if let Value::Object(fields) = &mut out {
        fields.extend(extra);
    }
    let mut bytes = serde_json::to_vec_pretty(&out).expect("records serialize");
    bytes.push(b'\n');
    bytes
}

/// The manifest at `path` as JSON fields, if it is a manifest's file and reads as an object.
fn fields_at(path: &Path) -> Option<Map<String, Value>> {
    fields_in(&read_manifest(path)?)
}

/// The manifest `bytes` as JSON fields, if they read as an object.
fn fields_in(bytes: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice(bytes).ok()? {
        Value::Object(fields) => Some(fields),
        _ => None,
    }
}

/// The fields of a manifest that record the database ([`RECORDED`]), as they are written there.
fn kept(fields: Option<Map<String, Value>>) -> Map<String, Value> {
    fields
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, v)| RECORDED.contains(&k.as_str()) && !v.is_null())
        .collect()
}

/// Writes `record`'s manifest at `path` (atomically), keeping what the manifest there already
/// records of the database ([`RECORDED`]): an entry rewritten (verified, uploaded, …) is still the
/// backup of that schema, with those keys.
pub fn write_manifest_at(path: &Path, record: &BackupRecord) -> Result<()> {
    fsutil::write_atomic(path, &manifest_bytes(record, kept(fields_at(path))))
}

/// Writes `record`'s manifest at `path` (atomically), with what `copy` — another copy of the
/// manifest, its off-site one — records of the database.
pub fn write_manifest_from(path: &Path, record: &BackupRecord, copy: &[u8]) -> Result<()> {
    fsutil::write_atomic(path, &manifest_bytes(record, kept(fields_in(copy))))
}

/// What the manifest at `path` records of the database: each part that reads as what it should
/// be. A table's largest key that is not an integer (an edited or damaged manifest) is left out,
/// as if it had not been recorded.
pub fn recorded_at(path: &Path) -> Recorded {
    let Some(mut fields) = fields_at(path) else {
        return Recorded::default();
    };
    let schema = fields
        .remove("schema")
        .and_then(|v| serde_json::from_value(v).ok());
    let key_max = match fields.remove("key_max") {
        Some(Value::Object(tables)) => Some(
            tables
                .into_iter()
                .filter_map(|(table, v)| Some((table, serde_json::from_value::<KeyMax>(v).ok()?)))
                .collect(),
        ),
        _ => None,
    };
    let globals = fields
        .remove("globals")
        .and_then(|v| serde_json::from_value(v).ok());
    Recorded {
        schema,
        key_max,
        globals,
    }
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

/// The schema the manifest at `path` records, if it records one that reads as a schema.
pub fn schema_at(path: &Path) -> Option<Schema> {
    recorded_at(path).schema
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

    /// What `record`'s manifest records of the database (nothing for a backup taken before
    /// faber-db recorded it, or whose manifest is gone or unreadable).
    pub fn recorded(&self, record: &BackupRecord) -> Recorded {
        self.locate(record)
            .map(|l| recorded_at(&l.manifest))
            .unwrap_or_default()
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
