//! The backup registry (`backups.json`), the per-backup manifests beside each file, and the
//! append-only audit log (`history.jsonl`). Every change is a read-modify-write under an
//! exclusive lock, written atomically (DESIGN.md §5, §7).

use std::borrow::Cow;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Kind, Result};
use crate::format::Format;
use crate::fsutil;
use crate::locate::{Located, Locator};
use crate::migrations::MigrationState;
use crate::pipeline::Compression;
use crate::provider::{ProviderKind, Tables};

pub const REGISTRY_FILE: &str = "backups.json";
pub const HISTORY_FILE: &str = "history.jsonl";
pub const REGISTRY_VERSION: u32 = 1;
/// Reasons of the safety backups that restore and rollback take of what they replace.
pub const UNDO_REASONS: [&str; 2] = ["pre-restore", "pre-rollback"];
/// Reasons of the safety backups faber-db takes itself: a restore's and a rollback's of what
/// they replace, `migrate`'s and the Claude Code hook's before a migration. Such a backup is
/// labelled with its reason; one with a label of its own was asked for by someone.
pub const AUTOMATIC_REASONS: [&str; 3] = ["pre-restore", "pre-migration", "pre-rollback"];
/// How long a registry change waits for another run's change to finish.
const LOCK_WAIT: Duration = Duration::from_secs(60);

/// What the last check found of a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Valid,
    /// The stored bytes are not the ones written, or the data in them is unreadable.
    Corrupt,
    Missing,
    /// The bytes are the ones written, but a deep check's row counts differ from the manifest:
    /// the data may not be what the manifest says. Never picked on its own (`latest`, a
    /// rollback's choice) and never removed by a cleanup rule; restored only when named.
    Mismatch,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Valid => "valid",
            Status::Corrupt => "corrupt",
            Status::Missing => "missing",
            Status::Mismatch => "mismatch",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub integrity_check: String,
    pub file_readable: bool,
    pub verified_at: DateTime<Utc>,
    /// Whether the last verification also restored the data and compared row counts.
    #[serde(default)]
    pub deep: bool,
    /// Whether the last verification checked the SHA-256 only (`verify --checksum-only`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub checksum_only: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitState {
    pub commit: Option<String>,
    pub branch: Option<String>,
}

/// One backup: the registry entry, and the manifest written beside its file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupRecord {
    pub id: String,
    pub environment: String,
    pub database: String,
    pub provider: ProviderKind,
    pub timestamp: DateTime<Utc>,
    pub label: Option<String>,
    pub reason: Option<String>,
    /// The command this backup was taken before, secrets blanked out: a migration an agent ran,
    /// seen by the Claude Code hook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The data file, relative to the backup directory (or absolute when stored elsewhere).
    pub file: String,
    pub size_bytes: u64,
    /// Size of the dump before compression.
    pub raw_size_bytes: u64,
    pub format: Format,
    pub compression: Compression,
    pub compressed: bool,
    pub encrypted: bool,
    /// SHA-256 of the file; of a directory dump, SHA-256 of its sorted `sha256sum` listing.
    pub sha256: String,
    /// Of an encrypted backup: SHA-256 of the bytes encrypted, checked after decryption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plaintext_sha256: Option<String>,
    /// The files of a directory dump, each with its own SHA-256.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<crate::dirdump::FileDigest>,
    pub tool_version: String,
    /// The database server's version (`PostgreSQL 15.4 …`, `SQLite 3.45.0`) when backed up.
    #[serde(default)]
    pub server_version: Option<String>,
    /// The database's own size when backed up (`pg_database_size`, the SQLite file and WAL).
    #[serde(default)]
    pub database_size_bytes: Option<u64>,
    pub migrations: Option<MigrationState>,
    pub tables: Tables,
    /// Whole days the backup is kept; `null` for forever.
    pub retention_days: Option<u64>,
    pub expires_at: Option<DateTime<Utc>>,
    pub status: Status,
    pub verification: Option<Verification>,
    pub host: Option<String>,
    pub user: Option<String>,
    pub git: Option<GitState>,
    pub duration_ms: u64,
    /// The off-site copy, when the environment has one configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<Remote>,
}

/// A backup's off-site copy: uploaded (with what was uploaded), or the last upload failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Remote {
    Uploaded {
        /// `s3://bucket/key` of the data file (of a directory dump: its key prefix).
        url: String,
        size_bytes: u64,
        sha256: String,
        uploaded_at: DateTime<Utc>,
    },
    Failed {
        url: String,
        error: String,
        attempted_at: DateTime<Utc>,
    },
}

impl Remote {
    pub fn is_uploaded(&self) -> bool {
        matches!(self, Remote::Uploaded { .. })
    }
}

impl BackupRecord {
    /// Valid, or missing here with an off-site copy to fetch (checked against the same SHA-256):
    /// what may be picked without being named. A `mismatch` backup is restored only when named.
    pub fn is_restorable(&self) -> bool {
        match self.status {
            Status::Valid => true,
            Status::Missing => self.remote.as_ref().is_some_and(Remote::is_uploaded),
            Status::Corrupt | Status::Mismatch => false,
        }
    }

    /// The manifest written beside the data: this record as pretty JSON, newline-terminated.
    pub fn manifest_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("records serialize");
        bytes.push(b'\n');
        bytes
    }

    /// Taken by faber-db itself before a risky step (see [`AUTOMATIC_REASONS`]), not asked for
    /// by a person or a pipeline: its reason is one of those, and its label is that reason or
    /// none.
    pub fn is_automatic(&self) -> bool {
        self.reason
            .as_deref()
            .is_some_and(|r| AUTOMATIC_REASONS.contains(&r))
            && self
                .label
                .as_deref()
                .is_none_or(|l| Some(l) == self.reason.as_deref())
    }

    pub fn is_forever(&self) -> bool {
        self.retention_days.is_none()
    }

    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// `<dir>/<id>.manifest.json` for a data file in `<dir>`.
pub fn manifest_path_for(data_file: &Path, id: &str) -> PathBuf {
    data_file.with_file_name(format!("{id}.manifest.json"))
}

/// Opens and exclusively locks `path`, waiting up to `wait`. `Err(None)` when it stayed held.
fn lock_file(path: &Path, wait: Duration) -> std::result::Result<File, Option<Error>> {
    if let Some(dir) = path.parent() {
        fsutil::create_private_dir(dir).map_err(Some)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            Some(Error::io(
                Kind::Config,
                "cannot open the lock file",
                path,
                e,
            ))
        })?;
    let started = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(fs::TryLockError::WouldBlock) if started.elapsed() < wait => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(fs::TryLockError::WouldBlock) => return Err(None),
            Err(fs::TryLockError::Error(e)) => {
                return Err(Some(Error::io(Kind::Config, "cannot lock", path, e)));
            }
        }
    }
}

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
    #[serde(default)]
    pub remote: Option<RemoteView>,
    #[serde(skip)]
    pub index: usize,
}

/// The part of an entry's off-site copy that `list` shows.
#[derive(Debug, Deserialize)]
pub struct RemoteView {
    pub status: RemoteStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RemoteStatus {
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
    pub fn is_remote(&self) -> bool {
        self.remote
            .as_ref()
            .is_some_and(|r| r.status == RemoteStatus::Uploaded)
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

/// The backup directory: registry, history, and one subdirectory of files per environment.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// Held while the registry may be changed; released on drop (and by the OS if the process dies).
pub struct RegistryLock {
    _file: File,
}

impl RegistryLock {
    /// The locked file's descriptor, for a child that is to hold the lock as long as it lives.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self._file)
    }
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

    /// Writes `record`'s manifest beside its data (atomically), so that it mirrors the record.
    pub fn write_manifest(&self, record: &BackupRecord) -> Result<()> {
        let located = self.locate(record)?;
        fsutil::write_atomic(&located.manifest, &record.manifest_bytes())
    }

    /// The directory of an environment's backup files, created 0700 if needed.
    pub fn env_dir(&self, env: &str) -> Result<PathBuf> {
        let dir = self.dir.join(env);
        fsutil::create_private_dir(&dir)?;
        Ok(dir)
    }

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
    fn registered(&self, id: &str) -> Option<bool> {
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

    /// Takes the exclusive registry lock, waiting for another run's change to finish.
    pub fn lock(&self) -> Result<RegistryLock> {
        let path = self.dir.join(format!("{REGISTRY_FILE}.lock"));
        let file = lock_file(&path, LOCK_WAIT).map_err(|e| match e {
            None => {
                Error::new(Kind::Busy, "another faber-db run holds the registry lock").with_hint(
                    format!("wait for it to finish; the lock is {}", path.display()),
                )
            }
            Some(e) => e,
        })?;
        Ok(RegistryLock { _file: file })
    }

    /// Takes the lock of `env`'s database for a restore, rollback or migrate: one at a time per
    /// environment. Without `wait`, a second one fails at once (exit 7); with it, it waits that
    /// long. The lock is the operating system's: it dies with the process holding it.
    pub fn env_lock(&self, env: &str, what: &str, wait: Option<Duration>) -> Result<RegistryLock> {
        let path = self.dir.join(format!("{env}.lock"));
        let file = lock_file(&path, wait.unwrap_or(Duration::ZERO)).map_err(|e| match e {
            None => Error::new(
                Kind::Busy,
                format!("another restore, rollback or migrate of `{env}` is running; the {what} did not start"),
            )
            .with_hint(busy_hint(&path)),
            Some(e) => e,
        })?;
        Ok(RegistryLock { _file: file })
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

    /// The audit log's events about `env`, oldest first, as JSON (unreadable lines skipped).
    pub fn history(&self, env: &str) -> Vec<serde_json::Value> {
        let Ok(text) = fs::read_to_string(self.dir.join(HISTORY_FILE)) else {
            return Vec::new();
        };
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["environment"] == env)
            .collect()
    }

    /// Appends one event to the audit log. A failure here is reported, never fatal.
    pub fn append_history(&self, event: &HistoryEvent) -> Result<()> {
        fsutil::create_private_dir(&self.dir)?;
        let path = self.dir.join(HISTORY_FILE);
        let mut line = serde_json::to_vec(event).expect("events serialize");
        line.push(b'\n');
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io(Kind::Config, "cannot open", &path, e))?;
        // One write per event: appends of a line this size do not interleave.
        f.write_all(&line)
            .map_err(|e| Error::io(Kind::Config, "cannot append to", &path, e))
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

    /// Cleans up after runs that were killed: `.partial` files and directories nobody holds are
    /// removed — or, when their backup's entry was already written, moved to their final name —
    /// and manifests left without an entry and without data are removed. Under the registry lock,
    /// so no publish is midway; skipped when the registry cannot be read (see `doctor`), since
    /// deciding what is debris needs it.
    pub fn sweep(&self) -> Vec<fsutil::Swept> {
        // Nothing to sweep where nothing was ever written (and nothing to write there now).
        if !self.dir.is_dir() {
            return Vec::new();
        }
        // Every run starts here: without leftovers (the usual case), neither the lock nor the
        // registry is needed. A manifest left without entry comes with its `.partial` data.
        if !fsutil::has_leftovers(&self.dir) {
            return Vec::new();
        }
        let Ok(_lock) = self.lock() else {
            return Vec::new();
        };
        let Ok(reg) = self.load() else {
            return Vec::new();
        };
        // Entries whose `file` is refused name nothing here: their partials are not finished.
        let locator = self.locator();
        let registered: std::collections::BTreeSet<PathBuf> = reg
            .backups
            .iter()
            .filter_map(|b| locator.locate(&b.id, &b.environment, &b.file).ok())
            .map(|l| l.data)
            .collect();
        let mut swept = self.sweep_claims(&reg, &registered, &locator);
        swept.extend(fsutil::remove_stale_partials(&self.dir, &|p| {
            registered.contains(p)
        }));
        swept.extend(self.remove_orphan_manifests(&reg));
        swept
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

    /// What killed backups into other directories left there: for each claim nobody holds, the
    /// backup's `.partial` data in the directory it names is finished (when registered) or removed,
    /// and its manifest removed when it has neither entry nor data; then the claim goes.
    fn sweep_claims(
        &self,
        reg: &RegistryFile,
        registered: &std::collections::BTreeSet<PathBuf>,
        locator: &Locator,
    ) -> Vec<fsutil::Swept> {
        let claim_end = format!("{}{}", fsutil::CLAIM_SUFFIX, fsutil::PARTIAL_SUFFIX);
        let mut out = Vec::new();
        for (name, path) in self.env_files() {
            let Some(id) = name.strip_suffix(&claim_end) else {
                continue;
            };
            let Ok(mut claim) = File::open(&path) else {
                continue;
            };
            if claim.try_lock().is_err() {
                continue;
            }
            let mut dir = Vec::new();
            if std::io::Read::read_to_end(&mut claim, &mut dir).is_ok() && !dir.is_empty() {
                use std::os::unix::ffi::OsStrExt;
                let dir = PathBuf::from(std::ffi::OsStr::from_bytes(&dir));
                // The claim's text is data: only a directory this project recorded for the
                // backup is looked into.
                if !locator.is_recorded_dir(id, &dir) {
                    let _ = fs::remove_file(&path);
                    continue;
                }
                out.extend(fsutil::remove_stale_partials_of(&dir, id, &|p| {
                    registered.contains(p)
                }));
                let manifest = dir.join(format!("{id}.manifest.json"));
                let has_data = fsutil::file_names(&dir)
                    .iter()
                    .any(|n| n.starts_with(&format!("{id}.")) && !n.ends_with(".manifest.json"));
                if reg.find(id).is_none() && !has_data && fs::remove_file(&manifest).is_ok() {
                    out.push(fsutil::Swept {
                        path: manifest,
                        finished: false,
                    });
                }
            }
            let _ = fs::remove_file(&path);
        }
        out
    }

    /// Manifests whose backup has no entry and no data: a publish killed between writing the
    /// manifest and the entry.
    fn remove_orphan_manifests(&self, reg: &RegistryFile) -> Vec<fsutil::Swept> {
        let mut out = Vec::new();
        let locator = self.locator();
        for (name, path) in self.env_files() {
            let Some(id) = name.strip_suffix(".manifest.json") else {
                continue;
            };
            if reg.find(id).is_some() {
                continue;
            }
            let record = fs::read_to_string(&path)
                .ok()
                .and_then(|t| serde_json::from_str::<BackupRecord>(&t).ok());
            // Data without an entry stays (doctor reports it): never delete a backup. Nor a
            // manifest that does not speak for the data beside it (refused, or a stray copy).
            let has_data =
                record.is_none_or(|r| match locator.locate(&r.id, &r.environment, &r.file) {
                    Ok(l) => l.manifest != path || fs::symlink_metadata(&l.data).is_ok(),
                    Err(_) => true,
                });
            if !has_data && fs::remove_file(&path).is_ok() {
                out.push(fsutil::Swept {
                    path,
                    finished: false,
                });
            }
        }
        out
    }

    /// Registers a finished backup: its manifest, then its registry entry — the commit point —
    /// then its data under the final name (`persist`), all under the lock. A run killed after the
    /// commit leaves the data under its `.partial` name, and the next [`Store::sweep`] finishes
    /// the move; a `persist` that fails takes the entry and manifest back, and only once the
    /// entry is known to be gone does `discard` remove what `persist` may have moved.
    pub fn publish(
        &self,
        record: &BackupRecord,
        manifest: &Path,
        manifest_bytes: &[u8],
        persist: impl FnOnce() -> Result<()>,
        discard: impl FnOnce(),
    ) -> Result<()> {
        let _lock = self.lock()?;
        // The other entries are copied as the text they are, not parsed and written again: with
        // 10,000 of them this keeps the commit to a few milliseconds of work and one fsync.
        let text = self.read_text()?;
        let raw = self.entries(text.as_deref())?;
        // IDs are plain ASCII: a registered one appears quoted in the text.
        let quoted = format!("\"{}\"", record.id);
        if text.as_deref().is_some_and(|t| t.contains(&quoted))
            && self.has_id(text.as_deref(), &record.id)?
        {
            return Err(Error::tool(format!(
                "backup ID {} was registered by another run",
                record.id
            )));
        }
        let write = |bytes: &[u8]| fsutil::write_atomic(&self.registry_path(), bytes);
        fsutil::write_atomic(manifest, manifest_bytes)?;
        crate::testpoint::pause("backup:after-manifest");
        if let Err(e) = write(&registry_text(&raw, Some(record))) {
            // The write may have landed (a rename done, its directory sync failed): the
            // registry on disk decides.
            let landed = self.registered(&record.id) == Some(true);
            if !landed {
                let _ = fs::remove_file(manifest);
                return Err(e);
            }
        }
        crate::testpoint::pause("backup:after-commit");
        if let Err(e) = persist() {
            let taken_back = write(&registry_text(&raw, None)).is_ok()
                || self.registered(&record.id) == Some(false);
            if taken_back {
                let _ = fs::remove_file(manifest);
                discard();
                return Err(e);
            }
            // The entry stays: so must the data, wherever it is, for the next sweep or doctor.
            return Err(e.add_hint(
                "the registry could not be put back either; run `faber-db doctor` to check it",
            ));
        }
        Ok(())
    }
}

/// The registry's text with `entries` (each an entry's JSON text) and then `added`, laid out
/// exactly as `serde_json::to_vec_pretty` lays out a [`RegistryFile`].
fn registry_text(entries: &[&str], added: Option<&BackupRecord>) -> Vec<u8> {
    const ITEM: &[u8] = b"\n    ";
    let mut out = Vec::with_capacity(entries.iter().map(|e| e.len() + 6).sum::<usize>() + 8192);
    out.extend_from_slice(
        format!("{{\n  \"version\": {REGISTRY_VERSION},\n  \"backups\": [").as_bytes(),
    );
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(ITEM);
        out.extend_from_slice(entry.as_bytes());
    }
    if let Some(record) = added {
        if !entries.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(ITEM);
        // Indented one level deeper than on its own; JSON strings hold no raw newlines.
        for byte in serde_json::to_vec_pretty(record).expect("records serialize") {
            out.push(byte);
            if byte == b'\n' {
                out.extend_from_slice(&ITEM[1..]);
            }
        }
    }
    if entries.is_empty() && added.is_none() {
        out.extend_from_slice(b"]\n}\n");
    } else {
        out.extend_from_slice(b"\n  ]\n}\n");
    }
    out
}

/// What to do about an environment's lock held by another process: wait — or, when what holds it
/// is not faber-db (a migration tool a killed faber-db left running: its processes inherit the
/// lock), which processes those are.
fn busy_hint(lock: &Path) -> String {
    let strangers: Vec<String> = holders(lock)
        .into_iter()
        .filter(|(_, name)| name != "faber-db")
        .map(|(pid, name)| format!("{name} (pid {pid})"))
        .collect();
    if strangers.is_empty() {
        return "wait for it to finish, or pass --wait 10m to wait for it".to_string();
    }
    format!(
        "it is held by {}, left running by a faber-db migrate that was stopped: wait for it to finish, or stop it (kill {}) and check the database with `faber-db status`",
        strangers.join(", "),
        strangers
            .iter()
            .filter_map(|s| s.rsplit("pid ").next()?.strip_suffix(')'))
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// The processes other than this one that hold `path` open, with their program names (never
/// their arguments: a migration tool's may hold a password). Linux, best effort: processes of
/// other users are not seen.
fn holders(path: &Path) -> Vec<(u32, String)> {
    let Ok(target) = fs::canonicalize(path) else {
        return Vec::new();
    };
    let me = std::process::id();
    let Ok(procs) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for proc in procs.flatten() {
        let Some(pid) = proc
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = fs::read_dir(proc.path().join("fd")) else {
            continue;
        };
        if fds
            .flatten()
            .any(|fd| fs::read_link(fd.path()).is_ok_and(|l| l == target))
        {
            let name = fs::read_to_string(proc.path().join("comm"))
                .map(|n| n.trim().to_string())
                .unwrap_or_else(|_| "?".to_string());
            out.push((pid, name));
        }
    }
    out.sort();
    out
}

/// One line of `history.jsonl`.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEvent {
    pub time: DateTime<Utc>,
    pub event: &'static str,
    pub environment: Option<String>,
    pub id: Option<String>,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub user: Option<String>,
    pub host: Option<String>,
    /// The project's git commit and branch at the time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git: Option<GitState>,
    /// The run that wrote it (see `Ctx::run_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// How long the work took, and on how many bytes: a restore's load of the backup's data,
    /// from which later restores of the environment are estimated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timing: Option<Timing>,
    /// What the Claude Code hook decided on an agent's command (`hook` events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook: Option<HookRecord>,
    /// A signal stopped the work (a `migrate` cut short by SIGTERM, SIGINT or SIGHUP).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

/// A decision of the Claude Code hook: on what, and what it answered.
#[derive(Debug, Clone, Serialize)]
pub struct HookRecord {
    /// `allow`, `ask`, `deny`, or `none` (no decision: Claude Code's own rules apply).
    pub decision: &'static str,
    /// What it saw: `migration`, `faber-db --yes`, `destructive SQL`.
    pub matched: String,
    /// The agent's command, secrets blanked out.
    pub command: String,
    /// Why, as told to Claude Code.
    pub reason: String,
}

/// The time a piece of work took and the bytes it moved.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Timing {
    pub duration_ms: u64,
    pub bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> BackupRecord {
        serde_json::from_value(serde_json::json!({
            "id": id, "environment": "dev", "database": "app", "provider": "sqlite",
            "timestamp": "2026-11-23T10:00:00Z", "label": null, "reason": "a \"quoted\"\nreason é",
            "file": format!("dev/{id}.sqlite3.zst"), "size_bytes": 10, "raw_size_bytes": 20,
            "format": "sqlite", "compression": "zstd", "compressed": true, "encrypted": false,
            "sha256": "00", "tool_version": "t", "migrations": {"tool": "sqlx", "table": "_sqlx_migrations",
            "applied_count": 2, "last_migration": "2_b", "migrations_list": ["1_a", "2_b"]},
            "tables": {"users": {"rows": 3}, "empty": {"rows": 0}}, "retention_days": null,
            "expires_at": null, "status": "valid", "verification": null, "host": null,
            "user": null, "git": {"commit": null, "branch": "main"}, "duration_ms": 5
        }))
        .unwrap()
    }

    /// The commit writes the registry by copying the other entries' text: the result must be
    /// byte for byte what serializing the whole registry gives, for 0, 1 and 2 entries before.
    #[test]
    fn spliced_registry_text_is_the_serialized_registry() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().to_path_buf());
        let pretty = |reg: &RegistryFile| {
            let mut bytes = serde_json::to_vec_pretty(reg).unwrap();
            bytes.push(b'\n');
            bytes
        };
        let mut reg = RegistryFile::default();
        for n in 0..3 {
            let text = String::from_utf8(pretty(&reg)).unwrap();
            let raw = store.entries(Some(&text)).unwrap();
            assert_eq!(registry_text(&raw, None), text.as_bytes());
            let added = record(&format!("backup-20261123-100000-{n}"));
            let spliced = registry_text(&raw, Some(&added));
            reg.backups.push(added);
            assert_eq!(
                String::from_utf8(spliced).unwrap(),
                String::from_utf8(pretty(&reg)).unwrap()
            );
            let parsed: Vec<BackupRecord> = raw
                .iter()
                .map(|r| serde_json::from_str(r).unwrap())
                .collect();
            assert_eq!(parsed, reg.backups[..n]);
            let ids = store.ids(Some(&text)).unwrap();
            assert_eq!(ids.len(), n);
            let views = store.views(Some(&text)).unwrap();
            assert!(
                views
                    .iter()
                    .enumerate()
                    .all(|(i, v)| v.index == i && v.id == ids[i])
            );
        }
    }

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
