//! The backup store: the registry (`backups.json`), the per-backup manifests beside each file,
//! and the append-only audit log (`history.jsonl`). Every change is a read-modify-write under an
//! exclusive lock, written atomically (DESIGN.md §5, §7).
//!
//! One [`Store`] (the backup directory) whose jobs each have a module: what a backup is
//! (`record`), the registry's entries (`entries`), the manifests (`manifest`), the audit log
//! (`history`), the locks (`lock`), registering a finished backup (`publish`), and cleaning up
//! after killed runs (`sweep`).

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::fsutil;
use crate::locate::{Located, Locator};

mod entries;
mod history;
mod lock;
mod manifest;
mod publish;
mod record;
mod sweep;

pub use entries::{
    EntryView, MigrationsView, OffsiteStatus, OffsiteView, RegistryFile, newest_first,
};
pub use history::{HISTORY_FILE, HistoryEvent, HookRecord, Timing};
pub use lock::RegistryLock;
pub use manifest::{
    Globals, Recorded, manifest_path_for, recorded_at, schema_at, write_manifest_at,
    write_manifest_from,
};
pub use record::{BackupRecord, Drill, GitState, OffsiteCopy, Status, Verification};

pub const REGISTRY_FILE: &str = "backups.json";
pub const REGISTRY_VERSION: u32 = 1;
/// Reasons of the safety backups that restore and rollback take of what they replace.
pub const UNDO_REASONS: [&str; 2] = ["pre-restore", "pre-rollback"];
/// Reasons of the safety backups faber-db takes itself: a restore's and a rollback's of what
/// they replace, `migrate`'s and the Claude Code hook's before a migration. Such a backup is
/// labelled with its reason; one with a label of its own was asked for by someone.
pub const AUTOMATIC_REASONS: [&str; 3] = ["pre-restore", "pre-migration", "pre-rollback"];

/// The backup directory: registry, history, and one subdirectory of files per environment.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(dir: PathBuf) -> Store {
        Store { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn registry_path(&self) -> PathBuf {
        self.dir.join(REGISTRY_FILE)
    }

    /// Turns entries' `file` into paths, confined to where this project keeps backups (see
    /// [`crate::locate`]): for many entries, one locator.
    pub fn locator(&self) -> Locator {
        Locator::new(&self.dir)
    }

    /// Where `record`'s data and manifest are; an error (exit 1) naming the entry when its
    /// `file` points anywhere faber-db would not have put it.
    pub fn locate(&self, record: &BackupRecord) -> Result<Located> {
        self.locator()
            .locate(&record.id, &record.environment, &record.file)
    }

    /// The directory of an environment's backup files, created 0700 if needed.
    pub fn env_dir(&self, env: &str) -> Result<PathBuf> {
        let dir = self.dir.join(env);
        fsutil::create_private_dir(&dir)?;
        Ok(dir)
    }

    /// The names of the files in every environment's directory: what IDs are in use on disk.
    pub fn file_names(&self) -> Vec<String> {
        let Ok(dirs) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        dirs.flatten()
            .filter(|d| d.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|d| fs::read_dir(d.path()).ok())
            .flat_map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
            })
            .collect()
    }

    /// What lies in the environment directories: (file name, path) of each entry. Directories
    /// whose names begin with a dot are faber-db's own (tombstones), not environments'.
    pub fn env_files(&self) -> Vec<(String, PathBuf)> {
        let Ok(envs) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        envs.flatten()
            .filter(|e| !e.file_name().as_encoded_bytes().starts_with(b"."))
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|env| fs::read_dir(env.path()).ok())
            .flat_map(|files| {
                files
                    .flatten()
                    .map(|f| (f.file_name().to_string_lossy().into_owned(), f.path()))
            })
            .collect()
    }
}
