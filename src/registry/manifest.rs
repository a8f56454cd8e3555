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
    let kept = std::fs::read(path).ok().and_then(|bytes| schema_in(&bytes));
    fsutil::write_atomic(path, &manifest_bytes(record, kept.as_ref()))
}

/// Writes `record`'s manifest at `path` (atomically), with the schema that `copy` — another copy
/// of the manifest, its off-site one — records.
pub fn write_manifest_from(path: &Path, record: &BackupRecord, copy: &[u8]) -> Result<()> {
    fsutil::write_atomic(path, &manifest_bytes(record, schema_in(copy).as_ref()))
}

/// The schema the manifest `bytes` records, as it is written there.
fn schema_in(bytes: &[u8]) -> Option<serde_json::Value> {
    serde_json::from_slice::<SchemaOnly<serde_json::Value>>(bytes)
        .ok()
        .and_then(|m| m.schema)
}

/// The schema the manifest at `path` records, if it records one that reads as a schema.
pub fn schema_at(path: &Path) -> Option<Schema> {
    let bytes = std::fs::read(path).ok()?;
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
