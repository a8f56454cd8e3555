//! Bringing a backup's data back from its off-site copy: when the local copy is gone (before a
//! restore or verify, or `pull --fetch`), or failed its checksum. What comes back takes the
//! data's place only once its SHA-256 is the registered one.

use std::path::PathBuf;

use super::names::{manifest_name, recorded_name};
use super::open;
use super::storage::Storage;
use crate::audit;
use crate::error::{Error, Kind, Remedy, Result};
use crate::fsutil::{self, PartialDir, PartialFile};
use crate::human;
use crate::locate::Located;
use crate::registry::{BackupRecord, OffsiteCopy, Status};
use crate::session::Session;

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
    if !record
        .offsite
        .as_ref()
        .is_some_and(OffsiteCopy::is_uploaded)
    {
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

/// What fetching every missing backup did.
#[derive(Debug, Default)]
pub struct FetchOutcome {
    /// The backups fetched, newest first.
    pub fetched: Vec<String>,
    /// Why the others could not be, each reported as it failed.
    pub failed: Vec<Error>,
}

/// The data of every backup (of `env`) that has an off-site copy and is not here, each fetched
/// and checked as a restore would. Goes on past a failure; Ctrl-C stops it all (what was
/// fetched stays, the rest waits for the next run).
pub fn fetch_missing(session: &Session, env: Option<&str>) -> Result<FetchOutcome> {
    let reg = session.store.load()?;
    let mut outcome = FetchOutcome::default();
    for b in reg.newest_first(env) {
        match fetch_if_missing(session, b) {
            Ok(true) => outcome.fetched.push(b.id.clone()),
            Ok(false) => {}
            Err(e) if e.kind() == Kind::Aborted => return Err(e),
            Err(e) => {
                session
                    .events()
                    .fail(&format!("{} {}: {}", b.environment, b.id, e.one_line()));
                outcome.failed.push(e);
            }
        }
    }
    Ok(outcome)
}

/// Fetches a backup's data from its off-site copy into its place.
fn fetch(session: &Session, record: &BackupRecord) -> Result<bool> {
    // Ctrl-C stops the download and removes what it wrote (exit 8), rather than killing the run.
    let _signals = crate::interrupt::guard();
    let located = session.store.locate(record)?;
    let Some(OffsiteCopy::Uploaded { url, .. }) = &record.offsite else {
        return Ok(false);
    };
    let bucket = open(session)?;
    fetch_from(session, bucket.as_ref(), record, &located, url)?;
    Ok(true)
}

/// Fetches `record`'s data, at `located`, from its copy at `url` in `storage`; records what
/// that shows in its registry entry.
pub(super) fn fetch_from(
    session: &Session,
    storage: &dyn Storage,
    record: &BackupRecord,
    located: &Located,
    url: &str,
) -> Result<()> {
    let path = &located.data;
    if let Some(parent) = path.parent() {
        fsutil::create_private_dir(parent)?;
        fsutil::ensure_free_space(
            parent,
            record.size_bytes,
            "to fetch the backup from the off-site storage",
            Remedy::MakeRoom { there: false },
        )?;
    }
    let fetched = download(storage, located, record);
    if let Err(e) = &fetched
        && e.kind() == Kind::Verification
    {
        // Gone or damaged off-site, and not here either (or damaged here too): the backup is
        // missing (or corrupt), and its entry no longer counts the off-site object as a copy
        // to restore from.
        let offsite = OffsiteCopy::Failed {
            url: url.to_string(),
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
                b.offsite = Some(offsite.clone());
            }
            Ok(())
        })?;
    }
    audit::log_event(
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
        human::size(record.size_bytes)
    ));
    // A manifest gone with the data comes back with the schema its off-site copy records.
    let copy = if located.manifest.exists() {
        None
    } else {
        storage.get(&manifest_name(record)).ok()
    };
    restored_entry(session, record, located, copy.as_deref())
}

/// After a fetch: the entry says the data is the registered bytes again, and the manifest is
/// rewritten if it went with the data — under the registry lock, so that a removal cannot come
/// between (and leave a manifest without its backup). A backup removed while it was fetched
/// (a cleanup or delete) takes what was fetched with it. The manifest written keeps the schema
/// of `copy`, the manifest's off-site copy.
fn restored_entry(
    session: &Session,
    record: &BackupRecord,
    located: &Located,
    copy: Option<&[u8]>,
) -> Result<()> {
    let current = session.store.update(|reg| {
        let Some(b) = reg.backups.iter_mut().find(|b| b.id == record.id) else {
            return Ok(None);
        };
        // The data is the registered bytes again, checked.
        if matches!(b.status, Status::Missing | Status::Corrupt) {
            b.status = Status::Valid;
        }
        if !located.manifest.exists() {
            match copy {
                Some(copy) => crate::registry::write_manifest_from(&located.manifest, b, copy)?,
                None => crate::registry::write_manifest_at(&located.manifest, b)?,
            }
        }
        Ok(Some(b.clone()))
    })?;
    if current.is_none() {
        let _ = fsutil::remove_backup_data(&located.data);
        return Err(Error::config(format!(
            "{} was removed while it was fetched",
            record.id
        )));
    }
    Ok(())
}

/// Downloads a backup's data into its place in the backup directory, through a `.partial`
/// that becomes the file only when its SHA-256 is the registered one — replacing what is there
/// then (a local copy that failed its checksum).
fn download(storage: &dyn Storage, located: &Located, record: &BackupRecord) -> Result<PathBuf> {
    let data = located.data.clone();
    if let Some(parent) = data.parent() {
        fsutil::create_private_dir(parent)?;
    }
    let name = recorded_name(storage, record);
    let create_failed = |e| Error::io(Kind::Tool, "cannot create", &data, e);
    // Downloaded under a name of its own (see FETCH_SUFFIX); one a killed fetch left goes.
    let fetching = fsutil::fetching_path(&data);
    fsutil::remove_if_stale(&fsutil::partial_path(&fetching));
    if record.files.is_empty() {
        let partial = PartialFile::create(&fetching).map_err(create_failed)?;
        let sha256 = storage.get_file(&name, partial.file(), partial.path())?;
        check_fetched(record, &record.id, &sha256, &record.sha256)?;
        partial.persist(&data).map_err(create_failed)?;
    } else {
        let partial = PartialDir::create(&fetching).map_err(create_failed)?;
        let content = partial.content();
        fsutil::create_private_dir(&content)?;
        for f in &record.files {
            let path = crate::dirdump::member(&content, &f.name)?;
            let file = fsutil::create_new_private(&path)
                .map_err(|e| Error::io(Kind::Tool, "cannot create", &path, e))?;
            let sha256 = storage.get_file(&format!("{name}/{}", f.name), &file, &path)?;
            file.sync_all()
                .map_err(|e| Error::io(Kind::Tool, "cannot write", &path, e))?;
            check_fetched(record, &f.name, &sha256, &f.sha256)?;
        }
        // A directory cannot be renamed over another: a damaged one goes first. Killed in
        // between, the backup is missing here (the sweep removes the `.fetch.partial`) and
        // is fetched again when next needed; its off-site copy is untouched.
        fsutil::remove_backup_data(&data).map_err(create_failed)?;
        partial.persist(&data).map_err(create_failed)?;
    }
    Ok(data)
}

/// Whether what was fetched of `what` (`got`) is what was registered (`want`).
fn check_fetched(record: &BackupRecord, what: &str, got: &str, want: &str) -> Result<()> {
    if got == want {
        return Ok(());
    }
    Err(Error::verification(format!(
        "the off-site copy of {what} does not match the SHA-256 registered for {}",
        record.id
    ))
    .with_hint("the remote object is damaged or was replaced; use another backup"))
}
