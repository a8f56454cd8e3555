//! The backup's file before anything is restored from it: fetched from its off-site copy when
//! it is missing here, its SHA-256 checked (a damaged local copy replaced by the off-site one),
//! and held so that no cleanup or delete removes it while it is restored.

use crate::error::{Error, Remedy, Result};
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
    // Gone because a cleanup or delete removed it since it was chosen: said so.
    let removed = || {
        Error::config(format!(
            "{} was removed by another run (a cleanup or delete) after it was chosen; nothing was restored",
            record.id
        ))
        .with_hint(Remedy::PickAnother)
    };
    offsite::fetch_if_missing(session, record).map_err(|e| {
        if verify::removed_meanwhile(session, &record.id) {
            removed()
        } else {
            e
        }
    })?;
    let located = session.store.locate(record)?;
    let mut held = crate::removal::hold(&located.data)?;
    if let Err((e, status)) = verify::checksum_ok(session, record) {
        // A local copy that rotted is replaced by the off-site one, checked the same way.
        let replaced = status == Some(Status::Corrupt)
            && offsite::refetch_damaged(session, record, &e).inspect_err(|_| {
                mark(session, &record.id, Status::Corrupt);
            })?;
        if !replaced {
            if status == Some(Status::Missing) && verify::removed_meanwhile(session, &record.id) {
                return Err(removed());
            }
            if let Some(status) = status {
                mark(session, &record.id, status);
            }
            return Err(e);
        }
        // The fetched copy took the damaged file's place: it is the one to hold now.
        held = crate::removal::hold(&located.data)?;
        verify::checksum_ok(session, record).map_err(|(e, _)| e)?;
    }
    session
        .events()
        .ok(&format!("Checksum of {} verified", record.id));
    Ok(held)
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
