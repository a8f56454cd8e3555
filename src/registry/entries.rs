//! The registry's entries: `backups.json` read whole, read as light views for `list`, and
//! rewritten under the lock.

use std::borrow::Cow;
use std::fs;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{BackupRecord, REGISTRY_VERSION, Status, Store, UNDO_REASONS};
use crate::error::{Error, Kind, Result};
use crate::fsutil;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegistryFile {
    pub version: u32,
    pub backups: Vec<BackupRecord>,
}

impl Default for RegistryFile {
    fn default() -> Self {
        RegistryFile {
            version: REGISTRY_VERSION,
            backups: Vec::new(),
        }
    }
}

impl RegistryFile {
    pub fn find(&self, id: &str) -> Option<&BackupRecord> {
        self.backups.iter().find(|b| b.id == id)
    }

    /// The backups of `env` (all when `None`), newest first.
    pub fn newest_first(&self, env: Option<&str>) -> Vec<&BackupRecord> {
        let mut v: Vec<&BackupRecord> = self
            .backups
            .iter()
            .filter(|b| env.is_none_or(|e| b.environment == e))
            .collect();
        v.sort_by(|a, b| newest_first((a.timestamp, &a.id), (b.timestamp, &b.id)));
        v
    }

    /// What `restore --from latest` means: the newest valid backup of `env` that is not an undo
    /// point taken by a restore or rollback itself. Otherwise a second `restore` would bring back
    /// the state the first one replaced.
    pub fn newest_restorable(&self, env: &str) -> Option<&BackupRecord> {
        self.newest_first(Some(env)).into_iter().find(|b| {
            b.is_restorable()
                && !b
                    .reason
                    .as_deref()
                    .is_some_and(|r| UNDO_REASONS.contains(&r))
        })
    }

    /// The backup a plain `rollback ENV` picks: the newest restorable `pre-migration` backup.
    pub fn newest_pre_migration(&self, env: &str) -> Option<&BackupRecord> {
        self.newest_first(Some(env))
            .into_iter()
            .find(|b| b.is_restorable() && b.reason.as_deref() == Some("pre-migration"))
    }

    /// The newest backup of `env` whose status is valid.
    pub fn newest_valid(&self, env: &str) -> Option<&BackupRecord> {
        self.newest_first(Some(env))
            .into_iter()
            .find(|b| b.status == Status::Valid)
    }
}

/// The order backups are listed and picked in: newest first, the later ID first within a second.
pub fn newest_first(a: (DateTime<Utc>, &str), b: (DateTime<Utc>, &str)) -> std::cmp::Ordering {
    b.0.cmp(&a.0).then_with(|| b.1.cmp(a.1))
}

/// A registry entry as `list` shows it, borrowed from the registry's text: reading 10,000 entries
/// this way allocates next to nothing, where [`BackupRecord`] allocates every table and migration
/// name. `index` is its place in the registry, where [`Store::entries`] finds the whole entry.
#[derive(Debug, Deserialize)]
pub struct EntryView<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    pub environment: Cow<'a, str>,
    #[serde(borrow)]
    pub file: Cow<'a, str>,
    pub timestamp: DateTime<Utc>,
    pub size_bytes: u64,
    pub expires_at: Option<DateTime<Utc>>,
    pub status: Status,
    #[serde(borrow)]
    pub migrations: Option<MigrationsView<'a>>,
    #[serde(rename = "remote", default)]
    pub offsite: Option<OffsiteView>,
    #[serde(default)]
    pub verification: Option<ProofView>,
    #[serde(default)]
    pub last_drill: Option<DrillView>,
    #[serde(skip)]
    pub index: usize,
}

impl EntryView<'_> {
    /// When the backup was last proven restorable: its last restore drill that passed, or its
    /// last deep check while it is valid.
    pub fn proven(&self) -> Option<DateTime<Utc>> {
        let drilled = self.last_drill.as_ref().filter(|d| d.ok).map(|d| d.at);
        let deep = self
            .verification
            .as_ref()
            .filter(|v| v.deep && self.status == Status::Valid)
            .map(|v| v.verified_at);
        drilled.max(deep)
    }
}

/// The part of an entry's last verification that says whether it proved the backup restorable.
#[derive(Debug, Deserialize)]
pub struct ProofView {
    pub verified_at: DateTime<Utc>,
    #[serde(default)]
    pub deep: bool,
}

/// The part of an entry's last restore drill that `list` shows.
#[derive(Debug, Deserialize)]
pub struct DrillView {
    pub at: DateTime<Utc>,
    pub ok: bool,
}

/// The part of an entry's off-site copy that `list` shows.
#[derive(Debug, Deserialize)]
pub struct OffsiteView {
    pub status: OffsiteStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OffsiteStatus {
    Uploaded,
    Failed,
}

/// The part of an entry's migration state that `list` shows.
#[derive(Debug, Deserialize)]
pub struct MigrationsView<'a> {
    pub applied_count: u64,
    #[serde(borrow)]
    pub last_migration: Option<Cow<'a, str>>,
}

impl EntryView<'_> {
    /// Whether the backup has an off-site copy.
    pub fn has_offsite_copy(&self) -> bool {
        self.offsite
            .as_ref()
            .is_some_and(|r| r.status == OffsiteStatus::Uploaded)
    }
}

/// The registry read with its entries of type `T`: each pass over the text is one parse.
#[derive(Deserialize)]
struct RegistryOf<T> {
    version: u32,
    backups: Vec<T>,
}

/// Only an entry's ID.
#[derive(Deserialize)]
struct EntryId<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
}

impl Store {
    /// Reads the registry without locking: it is only ever replaced atomically. A missing registry
    /// is an empty one; a malformed one is an error that leaves the file as it is.
    pub fn load(&self) -> Result<RegistryFile> {
        let Some(text) = self.read_text()? else {
            return Ok(RegistryFile::default());
        };
        let reg: RegistryFile = serde_json::from_str(&text).map_err(|e| self.malformed(e))?;
        self.check_version(reg.version)?;
        Ok(reg)
    }

    /// The registry's text, to read entries from with [`Store::views`]; `None` when there is no
    /// registry yet.
    pub fn read_text(&self) -> Result<Option<String>> {
        let path = self.registry_path();
        match fs::read_to_string(&path) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(
                Kind::Config,
                "cannot read the registry",
                &path,
                e,
            )),
        }
    }

    /// The entries of the registry text `text` (from [`Store::read_text`]), as `list` shows them.
    pub fn views<'a>(&self, text: Option<&'a str>) -> Result<Vec<EntryView<'a>>> {
        let mut views: Vec<EntryView<'a>> = self.parse(text)?;
        for (i, v) in views.iter_mut().enumerate() {
            v.index = i;
        }
        Ok(views)
    }

    /// The entries of the registry text `text`, each as its JSON text.
    pub fn entries<'a>(&self, text: Option<&'a str>) -> Result<Vec<&'a str>> {
        let raw: Vec<&'a serde_json::value::RawValue> = self.parse(text)?;
        Ok(raw.into_iter().map(|r| r.get()).collect())
    }

    /// Whether the registry text `text` has an entry with this ID.
    pub fn has_id(&self, text: Option<&str>, id: &str) -> Result<bool> {
        Ok(self.ids(text)?.iter().any(|i| i == id))
    }

    /// Whether the registry on disk now has an entry `id`; `None` when it cannot be read.
    pub(super) fn registered(&self, id: &str) -> Option<bool> {
        let text = self.read_text().ok()?;
        self.has_id(text.as_deref(), id).ok()
    }

    /// The registry's IDs.
    pub fn ids<'a>(&self, text: Option<&'a str>) -> Result<Vec<Cow<'a, str>>> {
        let ids: Vec<EntryId<'a>> = self.parse(text)?;
        Ok(ids.into_iter().map(|e| e.id).collect())
    }

    /// The entries of the registry text `text`, each read as a `T` (only the fields it needs).
    pub fn entries_as<'a, T: Deserialize<'a>>(&self, text: Option<&'a str>) -> Result<Vec<T>> {
        self.parse(text)
    }

    fn parse<'a, T: Deserialize<'a>>(&self, text: Option<&'a str>) -> Result<Vec<T>> {
        let Some(text) = text else {
            return Ok(Vec::new());
        };
        let reg: RegistryOf<T> = serde_json::from_str(text).map_err(|e| self.malformed(e))?;
        self.check_version(reg.version)?;
        Ok(reg.backups)
    }

    pub fn malformed(&self, e: serde_json::Error) -> Error {
        Error::config(format!(
            "the backup registry {} is malformed",
            self.registry_path().display()
        ))
        .caused_by(e)
        .with_hint("the file was left untouched; restore it from a copy, or move it aside and re-add the entries from the *.manifest.json files beside each backup (each holds its entry)")
    }

    fn check_version(&self, version: u32) -> Result<()> {
        if version == REGISTRY_VERSION {
            return Ok(());
        }
        Err(Error::config(format!(
            "the backup registry {} has version {version}, this faber-db reads version {REGISTRY_VERSION}",
            self.registry_path().display(),
        ))
        .with_hint("use the faber-db release that wrote it"))
    }

    /// Reads, changes and atomically rewrites the registry under the exclusive lock.
    pub fn update<T>(&self, change: impl FnOnce(&mut RegistryFile) -> Result<T>) -> Result<T> {
        let _lock = self.lock()?;
        let mut reg = self.load()?;
        let out = change(&mut reg)?;
        self.save(&reg)?;
        Ok(out)
    }

    /// Rewrites the registry atomically as `reg`. The caller holds the lock.
    pub fn save(&self, reg: &RegistryFile) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(reg).expect("the registry serializes");
        bytes.push(b'\n');
        fsutil::write_atomic(&self.registry_path(), &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Whatever `backups.json` holds — garbage, truncated JSON, entries with fields of the
        /// wrong type — loading it is a value or a configuration error (exit 1), never a panic,
        /// and the file is left exactly as it was.
        #[test]
        fn any_registry_text_loads_or_is_refused_and_left_alone(
            text in "(\\{|\\}|\\[|\\]|,|:|\"(version|backups|id|environment|file|status|sha256|timestamp|tables|rows)\"|\"[a-z0-9 -]{0,8}\"|-?[0-9]{1,20}|true|null| ){0,40}",
            cut in 0usize..400,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::new(dir.path().to_path_buf());
            let end = text.char_indices().nth(cut).map_or(text.len(), |(i, _)| i);
            let text = &text[..end];
            std::fs::write(store.registry_path(), text).unwrap();
            if let Err(e) = store.load() {
                proptest::prop_assert_eq!(e.kind(), Kind::Config);
            }
            for e in [store.views(Some(text)).err(), store.entries(Some(text)).err(), store.ids(Some(text)).err()].into_iter().flatten() {
                proptest::prop_assert_eq!(e.kind(), Kind::Config);
            }
            proptest::prop_assert_eq!(std::fs::read_to_string(store.registry_path()).unwrap(), text);
        }
    }
}
