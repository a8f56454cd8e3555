//! The backup's file before anything is restored from it: fetched from its off-site copy when
//! it is missing here, its SHA-256 checked (a damaged local copy replaced by the off-site one),
//! first or while the load gets ready, and held so that no cleanup or delete removes it while it
//! is restored.

use super::verdict::Verdict;
use crate::error::{Error, Remedy, Result};
use crate::format::Format;
use crate::offsite;
use crate::ops::verify;
use crate::registry::{BackupRecord, Status};
use crate::removal::Held;
use crate::session::Session;

/// Brings `record`'s file here if it is only off-site, checks its checksum, and holds it until
/// the returned value is dropped. A file that fails is marked in the registry (`missing`,
/// `corrupt`), and nothing is restored.
pub(super) fn fetched_and_checked(
    session: &Session,
    record: &BackupRecord,
) -> Result<Option<Held>> {
    let held = fetched(session, record)?;
    checked(session, record, held)
}

/// Runs `load` on `record`'s file, brought here if it is only off-site and held until the
/// returned value is dropped, with its checksum computed meanwhile on a thread of its own:
/// `load` gets ready (makes its scratch database, starts its tool) while the file is hashed,
/// and hands none of it to a tool before it matched (see [`Verdict`]). A load is kept only when
/// the file matched; one that did not is dropped, and the file is then checked as
/// [`fetched_and_checked`] does — marked, or replaced by its off-site copy and loaded again.
pub(super) fn loaded<T>(
    session: &Session,
    record: &BackupRecord,
    load: &mut dyn FnMut(Option<&Verdict>) -> Result<T>,
) -> Result<(T, Option<Held>)> {
    let held = fetched(session, record)?;
    // A directory dump's checksum is of its listing, and a missing file's is an error: both
    // are checked first, as ever.
    if held.is_none() || record.format == Format::Directory {
        let held = checked(session, record, held)?;
        return Ok((load(None)?, held));
    }
    let verdict = Verdict::start(&session.store.locate(record)?.data, &record.sha256);
    let loaded = load(Some(&verdict));
    if verdict.matched() {
        return loaded.map(|t| {
            verified(session, record);
            (t, held)
        });
    }
    // Whatever was loaded from a file that does not match is dropped (a scratch database with
    // it); the file's own failure is what the run reports.
    match loaded {
        Err(e) if crate::interrupt::happened() => return Err(e),
        other => drop(other),
    }
    let held = checked(session, record, held)?;
    // It matches now: the damaged file was replaced by its off-site copy.
    Ok((load(None)?, held))
}

/// Brings `record`'s file here if it is only off-site, and holds it until the returned value is
/// dropped (`None` when it is not here).
fn fetched(session: &Session, record: &BackupRecord) -> Result<Option<Held>> {
    offsite::fetch_if_missing(session, record).map_err(|e| {
        if verify::removed_meanwhile(session, &record.id) {
            removed(record)
        } else {
            e
        }
    })?;
    crate::removal::hold(&session.store.locate(record)?.data)
}

/// Gone because a cleanup or delete removed it since it was chosen: said so.
fn removed(record: &BackupRecord) -> Error {
    Error::config(format!(
        "{} was removed by another run (a cleanup or delete) after it was chosen; nothing was restored",
        record.id
    ))
    .with_hint(Remedy::PickAnother)
}

/// Checks the checksum of `record`'s file, `held`: a local copy that fails is replaced by its
/// off-site copy, held in its place, and checked the same way. The file held once it passed.
fn checked(
    session: &Session,
    record: &BackupRecord,
    mut held: Option<Held>,
) -> Result<Option<Held>> {
    if let Err((e, status)) = verify::checksum_ok(session, record) {
        // A local copy that rotted is replaced by the off-site one, checked the same way.
        let replaced = status == Some(Status::Corrupt)
            && offsite::refetch_damaged(session, record, &e).inspect_err(|_| {
                mark(session, &record.id, Status::Corrupt);
            })?;
        if !replaced {
            if status == Some(Status::Missing) && verify::removed_meanwhile(session, &record.id) {
                return Err(removed(record));
            }
            if let Some(status) = status {
                mark(session, &record.id, status);
            }
            return Err(e);
        }
        // The fetched copy took the damaged file's place: it is the one to hold now.
        held = crate::removal::hold(&session.store.locate(record)?.data)?;
        verify::checksum_ok(session, record).map_err(|(e, _)| e)?;
    }
    verified(session, record);
    Ok(held)
}

/// Says that `record`'s checksum held.
fn verified(session: &Session, record: &BackupRecord) {
    session
        .events()
        .ok(&format!("Checksum of {} verified", record.id));
}

/// Marks backup `id` with `status` in the registry; a failure to is a warning.
fn mark(session: &Session, id: &str, status: Status) {
    let result = session.store.update(|reg| {
        if let Some(b) = reg.backups.iter_mut().find(|b| b.id == id) {
            b.status = status;
        }
        Ok(())
    });
    if let Err(e) = result {
        session.events().warn(&format!(
            "could not mark {id} {}: {}",
            status.as_str(),
            e.one_line()
        ));
    }
}
