//! Removing backups so that a kill, a full disk or a concurrent run loses nothing and leaves
//! nothing behind: what `delete` and `cleanup` share.
//!
//! A backup goes in this order, under the registry lock: its manifest becomes its tombstone
//! (`.deleting/here/<ID>.json`: renamed, which needs no room on a full disk, else written), its
//! data and manifest are removed — freeing room first — and only then is the registry rewritten
//! without its entry. A run killed anywhere in between leaves a tombstone, and the next run
//! finishes the removal before it does anything else ([`finish_interrupted`]); nothing ever
//! registers a tombstoned backup again (`doctor --repair`, `pull`). A backup with an off-site copy
//! keeps its tombstone, moved to `.deleting/offsite/<ID>.json`, until that copy is gone too. The
//! two kinds live in directories of their own: a name tells nothing (labels may hold dots).
//!
//! A backup being read — restored, verified, uploaded — is held with a shared lock on its data
//! ([`hold`]); removal takes the lock exclusively or leaves the backup alone.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Kind, Result};
use crate::fsutil;
use crate::locate::Located;
use crate::registry::{BackupRecord, RegistryFile, Store};

/// The directory of tombstones in the backup directory. Its name is no environment's: those
/// cannot begin with a dot.
pub const TOMBSTONE_DIR: &str = ".deleting";
/// Below it, the tombstones whose backups' files and entries may still be there.
const HERE: &str = "here";
/// Below it, the tombstones whose backups are gone here and whose off-site copies are still to
/// be removed.
const OFFSITE: &str = "offsite";
const SUFFIX: &str = ".json";
/// How long a reader waits for a removal that holds the data to finish.
const HOLD_WAIT: Duration = Duration::from_secs(10);

/// A backup on its way out: its tombstone, locked while this value lives.
#[derive(Debug)]
pub struct Tombstone {
    pub record: BackupRecord,
    path: PathBuf,
    _lock: File,
}

impl Tombstone {
    /// The backup is gone everywhere: its tombstone goes too.
    pub fn done(self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// A backup removed from the registry and from here; `offsite` is its tombstone when its
/// off-site copy is still to be removed (by the caller, then [`Tombstone::done`]).
#[derive(Debug)]
pub struct Removed {
    pub record: BackupRecord,
    pub offsite: Option<Tombstone>,
}

/// Why a removal left a backup as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeptWhy {
    /// Another run reads it.
    InUse,
    /// Its entry names a file where faber-db keeps no backups.
    PathRefused,
    /// Its files cannot be reached or its removal recorded now (a directory not there, no
    /// tombstone could be made).
    Unavailable,
}

/// What a removal did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub removed: Vec<Removed>,
    /// Backups left as they were, why, and the error that says so.
    pub kept: Vec<(BackupRecord, KeptWhy, Error)>,
    /// Files of removed backups that could not be removed now, by backup ID: their tombstones
    /// keep them for the next run.
    pub problems: Vec<(String, String)>,
}

/// Removes the backups `select` picks from the registry as it is under the lock.
pub fn remove(
    store: &Store,
    select: impl FnOnce(&RegistryFile) -> Result<Vec<String>>,
) -> Result<Outcome> {
    let _lock = store.lock()?;
    let mut reg = store.load()?;
    let ids = select(&reg)?;
    let locator = store.locator();
    prepare(store)?;
    let dir = tombstone_dir(store).join(HERE);
    let mut chosen: Vec<(BackupRecord, std::result::Result<Located, Error>)> = ids
        .iter()
        .filter_map(|id| reg.find(id).cloned())
        .map(|b| {
            let located = locator.locate(&b.id, &b.environment, &b.file);
            (b, located)
        })
        .collect();
    // Those with files here first: removing them makes room for the tombstones that must be
    // written rather than renamed.
    chosen.sort_by_key(|(_, l)| !l.as_ref().is_ok_and(|l| l.manifest.is_file()));
    let mut out = Outcome::default();
    let mut gone = Vec::new();
    for (record, located) in chosen {
        let located = match located {
            Ok(l) => l,
            Err(e) => {
                out.kept.push((record, KeptWhy::PathRefused, e));
                continue;
            }
        };
        // A backup in a directory that is not there (a disk unplugged) is not removed: its files
        // would come back with the disk, and nothing would say whose they are.
        if located.elsewhere
            && let Some(parent) = located.data.parent()
            && !parent.is_dir()
        {
            let e = Error::config(format!(
                "the directory of {}'s files, {}, is not there; nothing of it was removed",
                record.id,
                parent.display()
            ))
            .with_hint("make the directory available again (a disk plugged in), then remove it");
            out.kept.push((record, KeptWhy::Unavailable, e));
            continue;
        }
        // Held exclusively while it goes: a reader that holds it keeps it.
        let exclusive = match try_hold_exclusive(&located.data) {
            Ok(h) => h,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let e = Error::new(
                    Kind::Busy,
                    format!(
                        "{} is in use by another run (a restore, verify or upload)",
                        record.id
                    ),
                )
                .with_hint("run this again once that run has ended");
                out.kept.push((record, KeptWhy::InUse, e));
                continue;
            }
            Err(e) => {
                out.kept.push((
                    record,
                    KeptWhy::Unavailable,
                    Error::io(Kind::Config, "cannot open", &located.data, e),
                ));
                continue;
            }
        };
        let path = dir.join(format!("{}{SUFFIX}", record.id));
        if let Err(e) = lay_tombstone(&path, &record, &located) {
            out.kept.push((record, KeptWhy::Unavailable, e));
            continue;
        }
        crate::testpoint::pause("remove:after-tombstone");
        for p in [&located.data, &located.manifest] {
            if let Err(e) = fsutil::remove_backup_data(p) {
                out.problems
                    .push((record.id.clone(), format!("{}: {e}", p.display())));
            }
        }
        // Synced, so that a filesystem that frees blocks when its journal commits (ext4) has
        // the room for the registry's rewrite.
        if let Some(parent) = located.data.parent() {
            let _ = fsutil::sync_dir(parent);
        }
        drop(exclusive);
        gone.push((record, path));
    }
    if gone.is_empty() {
        return Ok(out);
    }
    crate::testpoint::pause("remove:before-registry");
    let ids: BTreeSet<&str> = gone.iter().map(|(r, _)| r.id.as_str()).collect();
    reg.backups.retain(|b| !ids.contains(b.id.as_str()));
    store.save(&reg).map_err(|e| {
        e.add_hint(
            "the backups' files are removed and their tombstones recorded: the next faber-db run \
             takes their entries out of the registry",
        )
    })?;
    for (record, path) in gone {
        let offsite = past_local(&path, &record)?;
        out.removed.push(Removed { record, offsite });
    }
    Ok(out)
}

/// Makes `record`'s tombstone at `path`: its manifest moved there when it can be (no room
/// needed), then written from the registry's record, which is the one that counts; written
/// outright when there is no manifest to move.
fn lay_tombstone(path: &Path, record: &BackupRecord, located: &Located) -> Result<()> {
    let moved = located.manifest.is_file() && fs::rename(&located.manifest, path).is_ok();
    let written = crate::registry::write_manifest_at(path, record);
    match (moved, written) {
        (_, Ok(())) => {}
        // The moved manifest holds the same record, as the backup last wrote it.
        (true, Err(_)) => {}
        (false, Err(e)) => {
            return Err(e.add_hint("nothing was removed: the removal could not be recorded first"));
        }
    }
    if let Some(dir) = path.parent() {
        let _ = fsutil::sync_dir(dir);
    }
    Ok(())
}

/// Once a backup is gone here and from the registry: its tombstone is removed, or — when it has
/// an off-site copy — renamed for the off-site removal and returned locked.
fn past_local(path: &Path, record: &BackupRecord) -> Result<Option<Tombstone>> {
    if record.offsite.is_none() {
        let _ = fs::remove_file(path);
        return Ok(None);
    }
    let offsite = path
        .parent()
        .and_then(Path::parent)
        .unwrap_or(path)
        .join(OFFSITE)
        .join(format!("{}{SUFFIX}", record.id));
    fs::rename(path, &offsite).map_err(|e| Error::io(Kind::Config, "cannot rename", path, e))?;
    let lock = File::open(&offsite)
        .and_then(|f| f.try_lock().map(|()| f).map_err(io::Error::from))
        .map_err(|e| Error::io(Kind::Config, "cannot lock", &offsite, e))?;
    Ok(Some(Tombstone {
        record: record.clone(),
        path: offsite,
        _lock: lock,
    }))
}

fn tombstone_dir(store: &Store) -> PathBuf {
    store.dir().join(TOMBSTONE_DIR)
}

/// Makes the tombstones' directories, if they are not there yet. Done when a backup is
/// registered too: on a full disk (ext4), a directory needs room that a file's rename does not.
pub fn prepare(store: &Store) -> Result<()> {
    let dir = tombstone_dir(store);
    fsutil::create_private_dir(&dir.join(HERE))?;
    fsutil::create_private_dir(&dir.join(OFFSITE))
}

/// The tombstones of one kind (`HERE` or `OFFSITE`), as (ID, path).
fn tombstones(store: &Store, kind: &str) -> Vec<(String, PathBuf)> {
    let dir = tombstone_dir(store).join(kind);
    fsutil::file_names(&dir)
        .into_iter()
        .filter_map(|name| {
            let id = name.strip_suffix(SUFFIX)?;
            crate::ids::validate_id(id).ok()?;
            Some((id.to_string(), dir.join(&name)))
        })
        .collect()
}

/// The IDs of every backup with a tombstone: backups being removed, which nothing may register
/// again.
pub fn tombstoned(store: &Store) -> BTreeSet<String> {
    tombstones(store, HERE)
        .into_iter()
        .chain(tombstones(store, OFFSITE))
        .map(|(id, _)| id)
        .collect()
}

/// What [`finish_interrupted`] did with one backup.
#[derive(Debug)]
pub struct Finished {
    pub id: String,
    /// `None` when the removal is finished here; else why it is not.
    pub problem: Option<String>,
}

/// Finishes the removals that killed runs left: each tombstone nobody holds has its backup's
/// files removed and its entry taken out of the registry. Under the registry lock; a tombstone
/// that cannot be read or names a refused path is left (and reported) for `doctor`.
pub fn finish_interrupted(store: &Store) -> Vec<Finished> {
    let found = tombstones(store, HERE);
    if found.is_empty() {
        return Vec::new();
    }
    let Ok(_lock) = store.lock() else {
        return Vec::new();
    };
    let Ok(mut reg) = store.load() else {
        return Vec::new();
    };
    let locator = store.locator();
    let mut out = Vec::new();
    let mut gone = Vec::new();
    for (id, path) in found {
        let Ok(file) = File::open(&path) else {
            continue;
        };
        if file.try_lock().is_err() {
            continue;
        }
        let fail = |problem: String| Finished {
            id: id.clone(),
            problem: Some(problem),
        };
        // The registry's record counts; the tombstone's when the entry is already gone.
        let record = match reg
            .find(&id)
            .cloned()
            .map_or_else(|| read_record(&path), Ok)
        {
            Ok(r) if r.id == id => r,
            Ok(_) => {
                out.push(fail("its tombstone names another backup".into()));
                continue;
            }
            Err(e) => {
                out.push(fail(e));
                continue;
            }
        };
        let located = match locator.locate(&record.id, &record.environment, &record.file) {
            Ok(l) => l,
            Err(e) => {
                out.push(fail(e.one_line()));
                continue;
            }
        };
        if located.elsewhere && located.data.parent().is_some_and(|d| !d.is_dir()) {
            out.push(fail(format!(
                "the directory of its files, {}, is not there",
                located.data.parent().unwrap_or(Path::new("")).display()
            )));
            continue;
        }
        let left: Vec<String> = [&located.data, &located.manifest]
            .into_iter()
            .filter_map(|p| {
                fsutil::remove_backup_data(p)
                    .err()
                    .map(|e| format!("{}: {e}", p.display()))
            })
            .collect();
        if !left.is_empty() {
            out.push(fail(left.join("; ")));
            continue;
        }
        gone.push((record, path, file));
    }
    if gone.is_empty() {
        return out;
    }
    let ids: BTreeSet<&str> = gone.iter().map(|(r, ..)| r.id.as_str()).collect();
    let before = reg.backups.len();
    reg.backups.retain(|b| !ids.contains(b.id.as_str()));
    if reg.backups.len() != before
        && let Err(e) = store.save(&reg)
    {
        for (record, ..) in &gone {
            out.push(Finished {
                id: record.id.clone(),
                problem: Some(e.one_line()),
            });
        }
        return out;
    }
    for (record, path, _lock) in gone {
        let problem = past_local(&path, &record).err().map(|e| e.one_line());
        out.push(Finished {
            id: record.id,
            problem,
        });
    }
    out
}

fn read_record(path: &Path) -> std::result::Result<BackupRecord, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The tombstones whose backups are gone here but still have an off-site copy to remove, each
/// locked for the caller (taken under the registry lock, so that two runs never take the same).
pub fn pending_offsite(store: &Store) -> Vec<std::result::Result<Tombstone, String>> {
    let found = tombstones(store, OFFSITE);
    if found.is_empty() {
        return Vec::new();
    }
    let Ok(_lock) = store.lock() else {
        return Vec::new();
    };
    found
        .into_iter()
        .filter_map(|(id, path)| {
            let file = File::open(&path).ok()?;
            file.try_lock().ok()?;
            Some(match read_record(&path) {
                Ok(record) if record.id == id => Ok(Tombstone {
                    record,
                    path,
                    _lock: file,
                }),
                Ok(_) => Err(format!("{}: names another backup", path.display())),
                Err(e) => Err(e),
            })
        })
        .collect()
}

/// A reader's hold on a backup's data: while it lives, no removal takes the backup.
#[derive(Debug)]
pub struct Held {
    _file: File,
}

/// Holds a backup's data (located first) against removal while it is read: a shared lock on the
/// file, or on the directory of a directory dump. `None` when the data is not there — or was
/// removed while this waited for a removal in progress.
pub fn hold(path: &Path) -> Result<Option<Held>> {
    let file = match open_data(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(Kind::Verification, "cannot open", path, e)),
    };
    let started = Instant::now();
    loop {
        match file.try_lock_shared() {
            Ok(()) => break,
            Err(fs::TryLockError::WouldBlock) if started.elapsed() < HOLD_WAIT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(fs::TryLockError::WouldBlock) => {
                return Err(Error::new(
                    Kind::Busy,
                    format!("{} is being removed by another run", path.display()),
                ));
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(Error::io(Kind::Verification, "cannot lock", path, e));
            }
        }
    }
    // The name must still name what is held: a removal may have gone first.
    if !fsutil::same_file(&file, path) {
        return Ok(None);
    }
    Ok(Some(Held { _file: file }))
}

/// The data at `path`, locked exclusively for its removal; `None` when it is not there. Fails
/// with `WouldBlock` when a reader holds it.
fn try_hold_exclusive(path: &Path) -> io::Result<Option<File>> {
    let file = match open_data(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        // A link was refused by the locator; anything else unreadable is removed all the same.
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(e),
        Err(_) => return Ok(None),
    };
    file.try_lock().map_err(io::Error::from)?;
    Ok(Some(file))
}

/// Opens a file or directory for a lock on it, never through a link.
fn open_data(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}
