//! Fetching a backup's data back from its off-site copy, when the local copy is gone or failed
//! its checksum: checked against the registered SHA-256 before it takes the file's place.

use crate::config::Offsite;
use crate::error::{Error, Kind, Remedy, Result};
use crate::fsutil;
use crate::offsite::Bucket;
use crate::registry::{BackupRecord, Remote, Status};
use crate::session::Session;

/// The `[storage.offsite]` config, or the error that says how to add it.
pub fn configured<'a>(session: &'a Session) -> Result<&'a Offsite> {
    session.config.offsite.as_ref().ok_or_else(|| {
        Error::config("no off-site storage is configured").with_hint(
            "add [storage.offsite] with url = \"s3://bucket/prefix\" to the config \
             (see docs/configuration.md)",
        )
    })
}

/// Brings a backup's data back from its off-site copy when the local copy is gone, checked
/// against the registered SHA-256 before it takes the file's place. `Ok(false)`: nothing to
/// fetch (the file is here, or there is no off-site copy).
pub fn fetch_if_missing(session: &Session, record: &BackupRecord) -> Result<bool> {
    if session.store.locate(record)?.data.exists() {
        return Ok(false);
    }
    fetch(session, record)
}

/// Replaces a local copy that failed its checksum (`failure`) with the backup's off-site copy,
/// checked against the registered SHA-256 before it takes the file's place. `Ok(false)` when
/// there is no off-site copy. When the off-site copy is bad too, the error says both.
pub fn refetch_damaged(session: &Session, record: &BackupRecord, failure: &Error) -> Result<bool> {
    if !record.remote.as_ref().is_some_and(Remote::is_uploaded) {
        return Ok(false);
    }
    session.events().warn(&format!(
        "{}; fetching its off-site copy instead",
        failure.message()
    ));
    fetch(session, record).map_err(|e| match e.kind() {
        Kind::Verification => Error::verification(format!(
            "{}, and its off-site copy cannot be used either: {}",
            failure.message(),
            e.message()
        ))
        .with_hint(Remedy::RestoreAnotherBackup {
            marked_corrupt: false,
        }),
        // Not a verdict on the off-site copy (the network, the disk, Ctrl-C): said as it is.
        _ => e.add_hint(Remedy::RetryFromOffsite {
            id: record.id.clone(),
        }),
    })?;
    Ok(true)
}

/// Fetches a backup's data from its off-site copy into its place.
fn fetch(session: &Session, record: &BackupRecord) -> Result<bool> {
    // Ctrl-C stops the download and removes what it wrote (exit 8), rather than killing the run.
    let _signals = crate::interrupt::guard();
    let located = session.store.locate(record)?;
    let path = &located.data;
    let Some(Remote::Uploaded { url, .. }) = &record.remote else {
        return Ok(false);
    };
    let bucket = Bucket::open(configured(session)?, &session.vars)?;
    if let Some(parent) = path.parent() {
        fsutil::create_private_dir(parent)?;
        fsutil::ensure_free_space(
            parent,
            record.size_bytes,
            "to fetch the backup from the off-site storage",
            Remedy::MakeRoom { there: false },
        )?;
    }
    let fetched = bucket.fetch_backup(&located, record);
    if let Err(e) = &fetched
        && e.kind() == Kind::Verification
    {
        // Gone or damaged off-site, and not here either (or damaged here too): the backup is
        // missing (or corrupt), and its entry no longer counts the off-site object as a copy
        // to restore from.
        let remote = Remote::Failed {
            url: url.clone(),
            error: e.one_line(),
            attempted_at: session.ctx.now,
        };
        let status = if path.exists() {
            Status::Corrupt
        } else {
            Status::Missing
        };
        session.store.update(|reg| {
            if let Some(b) = reg.backups.iter_mut().find(|b| b.id == record.id) {
                b.status = status;
                b.remote = Some(remote.clone());
            }
            Ok(())
        })?;
    }
    crate::audit::log_event(
        session,
        "fetch",
        Some(&record.environment),
        Some(&record.id),
        fetched.is_ok(),
        fetched.as_ref().err().map(Error::one_line),
    );
    fetched?;
    session.events().ok(&format!(
        "Fetched {} ({}) from {url}, SHA-256 checked",
        record.id,
        crate::human::size(record.size_bytes)
    ));
    // The file is the registered one again; its manifest is rewritten if it went with it —
    // under the registry lock, so that a removal cannot come between (and leave a manifest
    // without its backup).
    let current = session.store.update(|reg| {
        let Some(b) = reg.backups.iter_mut().find(|b| b.id == record.id) else {
            return Ok(None);
        };
        // The data is the registered bytes again, checked.
        if matches!(b.status, Status::Missing | Status::Corrupt) {
            b.status = Status::Valid;
        }
        if !located.manifest.exists() {
            fsutil::write_atomic(&located.manifest, &b.manifest_bytes())?;
        }
        Ok(Some(b.clone()))
    })?;
    match current {
        Some(_) => {}
        // Removed while it was fetched (a cleanup or delete): what was fetched is this run's,
        // and goes with it.
        None => {
            let _ = fsutil::remove_backup_data(path);
            return Err(Error::config(format!(
                "{} was removed while it was fetched",
                record.id
            )));
        }
    }
    Ok(true)
}
