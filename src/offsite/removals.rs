//! Removing the off-site copies of backups removed here (see [`crate::removal`]): each backup's
//! tombstone says what is left off-site, and goes once the copy is gone.

use std::path::Path;

use super::names::{names_at, recorded_name};
use super::open;
use super::storage::Storage;
use crate::error::{Error, Result};
use crate::registry::{BackupRecord, OffsiteCopy};
use crate::removal::{self, Tombstone};
use crate::session::Session;

/// Removes the off-site copy of a backup removed here; its tombstone goes once the copy is
/// gone. One problem line when it kept objects off-site.
pub fn remove_copy(session: &Session, tombstone: Option<Tombstone>) -> Vec<String> {
    remove_copies(session, tombstone.into_iter().collect())
}

/// [`remove_copy`] for many backups, through one connection to the storage.
pub fn remove_copies(session: &Session, tombstones: Vec<Tombstone>) -> Vec<String> {
    if tombstones.is_empty() {
        return Vec::new();
    }
    match open(session) {
        Ok(bucket) => remove_from(session, Ok(bucket.as_ref()), tombstones),
        Err(e) => remove_from(session, Err(&e), tombstones),
    }
}

/// Removes the off-site copies that earlier removals could not (the storage was unreachable,
/// the run was killed): each backup's tombstone says what is left. Nothing to do without
/// off-site storage configured: the tombstones wait, and `doctor` lists them.
pub fn finish_pending_removals(session: &Session) -> Vec<String> {
    if session.config.offsite.is_none() {
        return Vec::new();
    }
    let mut problems = Vec::new();
    let mut pending = Vec::new();
    for t in removal::pending_offsite(&session.store) {
        match t {
            Ok(t) => pending.push(t),
            Err(e) => problems.push(format!("a tombstone cannot be read: {e}")),
        }
    }
    problems.extend(remove_copies(session, pending));
    problems
}

/// [`remove_copies`] from `storage`, or the error that says it cannot be reached.
pub(super) fn remove_from(
    session: &Session,
    storage: std::result::Result<&dyn Storage, &Error>,
    tombstones: Vec<Tombstone>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for t in tombstones {
        let b = &t.record;
        // A tombstone is read back from disk: its record names objects only once it is sound.
        let result = session
            .store
            .locate(b)
            .map_err(|e| e.one_line())
            .and_then(|_| storage.map_err(Error::one_line))
            .and_then(|storage| delete_backup(storage, b).map_err(|e| e.one_line()));
        match result {
            Ok(()) => {
                if let Some(OffsiteCopy::Uploaded { url, .. }) = &b.offsite {
                    session.events().ok(&format!("Removed off-site copy {url}"));
                }
                t.done();
            }
            Err(e) => problems.push(format!("off-site copy of {}: {e}", b.id)),
        }
    }
    problems
}

/// Removes a backup's objects (data and manifest) from `storage`. Objects already gone are not
/// an error.
pub(super) fn delete_backup(storage: &dyn Storage, record: &BackupRecord) -> Result<()> {
    for f in &record.files {
        crate::dirdump::member(Path::new(""), &f.name)?;
    }
    storage.delete_all(&names_at(record, recorded_name(storage, record)))
}
