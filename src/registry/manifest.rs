//! The manifest written beside each backup's data: its registry entry, so that the registry
//! can be rebuilt from the files; and the record of manifests kept outside the environment
//! directories.

use std::path::{Path, PathBuf};

use super::{BackupRecord, Store};
use crate::error::Result;
use crate::fsutil;

/// `<dir>/<id>.manifest.json` for a data file in `<dir>`.
pub fn manifest_path_for(data_file: &Path, id: &str) -> PathBuf {
    data_file.with_file_name(format!("{id}.manifest.json"))
}

impl BackupRecord {
    /// The manifest written beside the data: this record as pretty JSON, newline-terminated.
    pub fn manifest_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("records serialize");
        bytes.push(b'\n');
        bytes
    }
}

impl Store {
    /// Writes `record`'s manifest beside its data (atomically), so that it mirrors the record.
    pub fn write_manifest(&self, record: &BackupRecord) -> Result<()> {
        let located = self.locate(record)?;
        fsutil::write_atomic(&located.manifest, &record.manifest_bytes())
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
