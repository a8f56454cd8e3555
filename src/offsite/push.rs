//! Copying backups off-site: `push` (the backups still without a copy, or one named), and the
//! copy right after a backup. Each upload is recorded in the backup's registry entry and
//! manifest, whether it worked or not.

use chrono::{DateTime, Utc};

use super::names::{data_name, manifest_name, object_names};
use super::storage::{Storage, Stored};
use super::{configured, open};
use crate::audit;
use crate::error::{Error, Kind, Remedy, Result};
use crate::human;
use crate::ids;
use crate::locate::Located;
use crate::registry::{BackupRecord, OffsiteCopy, Status};
use crate::removal;
use crate::session::Session;

/// Which backups to push.
#[derive(Debug, Clone, Default)]
pub struct PushRequest {
    /// This backup (again, if it has a copy already); else every valid one without a copy.
    pub id: Option<String>,
    /// Only this environment's backups; else those of every environment with `offsite` on.
    pub env: Option<String>,
}

/// What a push did. Both lists empty: nothing needed pushing.
#[derive(Debug, Default)]
pub struct PushOutcome {
    pub pushed: Vec<Pushed>,
    /// The backups whose copy failed, in order, each reported as it failed.
    pub failed: Vec<Failed>,
}

/// A backup copied off-site, and its registry's record of the copy.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub id: String,
    pub environment: String,
    pub offsite: OffsiteCopy,
}

/// A backup whose copy failed, and why.
#[derive(Debug)]
pub struct Failed {
    pub id: String,
    pub error: Error,
}

/// Pushes the backups `request` names: one backup, or every valid one still without an
/// off-site copy (never uploaded, or its upload failed). `check` checks a backup's local bytes
/// against its registered SHA-256 before they go anywhere: a file that rotted since its backup
/// must not replace a good off-site copy. (It is `ops::verify`'s checksum, passed in: the
/// operations use this module, not the other way round.) Goes on past a failed backup.
pub fn push(
    session: &Session,
    request: &PushRequest,
    check: &dyn Fn(&BackupRecord) -> Result<()>,
) -> Result<PushOutcome> {
    configured(session)?;
    let reg = session.store.load()?;
    let chosen = choose(session, request, &reg)?;
    if chosen.is_empty() {
        return Ok(PushOutcome::default());
    }
    let bucket = open(session)?;
    Ok(push_to(session, bucket.as_ref(), &chosen, check))
}

/// The backups a push copies, from the registry `reg`.
fn choose<'r>(
    session: &Session,
    request: &PushRequest,
    reg: &'r crate::registry::RegistryFile,
) -> Result<Vec<&'r BackupRecord>> {
    if let Some(id) = &request.id {
        ids::validate_id(id)?;
        let b = reg.find(id).ok_or_else(|| {
            Error::config(format!("no backup `{id}` in the registry"))
                .with_hint(Remedy::ShowBackups)
        })?;
        match b.status {
            Status::Valid => {}
            // Its bytes are the ones written: named, it is copied like a valid one.
            Status::Mismatch => session.events().warn(&format!(
                "{id} is marked mismatch: its row counts differ from its manifest; copying it because it was named"
            )),
            s => {
                return Err(Error::verification(format!(
                    "{id} is {}; only valid backups are copied off-site",
                    s.as_str()
                ))
                .with_hint(Remedy::VerifyFirst { id: id.clone() }));
            }
        }
        return Ok(vec![b]);
    }
    if let Some(env) = &request.env {
        session.env(env)?;
    }
    Ok(reg
        .newest_first(request.env.as_deref())
        .into_iter()
        .filter(|b| match &request.env {
            Some(_) => true,
            None => session
                .config
                .environments
                .get(&b.environment)
                .is_some_and(|e| e.offsite),
        })
        .filter(|b| {
            b.status == Status::Valid
                && !b.offsite.as_ref().is_some_and(OffsiteCopy::is_uploaded)
                && session.store.locate(b).is_ok_and(|l| l.data.exists())
        })
        .collect())
}

/// Checks and uploads each of `chosen` to `storage`, reporting each as it is done.
pub(super) fn push_to(
    session: &Session,
    storage: &dyn Storage,
    chosen: &[&BackupRecord],
    check: &dyn Fn(&BackupRecord) -> Result<()>,
) -> PushOutcome {
    let events = session.events();
    let mut outcome = PushOutcome::default();
    for b in chosen {
        match check(b).and_then(|()| send(session, storage, b)) {
            Ok(offsite) => {
                events.ok(&format!(
                    "Pushed {} ({}) to {}",
                    b.id,
                    human::size(b.size_bytes),
                    offsite_url(&offsite)
                ));
                outcome.pushed.push(Pushed {
                    id: b.id.clone(),
                    environment: b.environment.clone(),
                    offsite,
                });
            }
            Err(e) => {
                events.fail(&format!("{}: {}", b.id, e.one_line()));
                outcome.failed.push(Failed {
                    id: b.id.clone(),
                    error: e,
                });
            }
        }
    }
    outcome
}

/// Copies a just-registered backup off-site. A failure is recorded in its registry entry and
/// returned; the local backup stays registered and valid either way.
pub fn after_backup(session: &Session, record: &mut BackupRecord) -> Result<()> {
    let config = configured(session)?;
    let outcome = match super::open_config(config, &session.vars) {
        Ok(bucket) => send(session, bucket.as_ref(), record),
        Err(e) => {
            // The bucket could not even be opened: the entry still says the copy failed.
            record_offsite(
                session,
                &record.id,
                &failed(config.url(), record, &e, session.ctx.now),
            )?;
            Err(e)
        }
    };
    settle_after_backup(session, &config.url(), record, outcome)
}

/// The end of [`after_backup`]: the copy said, or the error that says the backup is kept here.
fn settle_after_backup(
    session: &Session,
    base_url: &str,
    record: &mut BackupRecord,
    outcome: Result<OffsiteCopy>,
) -> Result<()> {
    let e = match outcome {
        Ok(offsite) => {
            session
                .events()
                .ok(&format!("Copied off-site to {}", offsite_url(&offsite)));
            record.offsite = Some(offsite);
            return Ok(());
        }
        Err(e) => e,
    };
    if !record
        .offsite
        .as_ref()
        .is_some_and(OffsiteCopy::is_uploaded)
    {
        record.offsite = Some(failed(base_url.to_string(), record, &e, session.ctx.now));
    }
    // Ctrl-C during the upload is an interruption (exit 8), not a storage failure.
    let mut err = if e.kind() == Kind::Aborted {
        Error::aborted(format!(
            "interrupted: {} is kept here, but its off-site copy was not finished",
            record.id
        ))
    } else {
        Error::new(
            Kind::Tool,
            format!(
                "{} is kept here, but its off-site copy failed: {}",
                record.id,
                e.message()
            ),
        )
    };
    for c in e.causes() {
        err = err.caused_by(c);
    }
    err = err.with_hints(e.hints());
    Err(err.add_hint(Remedy::PushLater {
        id: record.id.clone(),
    }))
}

/// Uploads one registered backup and records the outcome in its registry entry and manifest.
/// A failed retry of a backup already off-site leaves its record as it was: the copy there is
/// still the one that was checked. An entry removed while its upload ran (a concurrent cleanup
/// or delete) takes the objects just uploaded with it.
fn send(session: &Session, storage: &dyn Storage, record: &BackupRecord) -> Result<OffsiteCopy> {
    let _signals = crate::interrupt::guard();
    let now = session.ctx.now;
    let log = |ok: bool, detail: Option<String>| {
        audit::log_event(
            session,
            "push",
            Some(&record.environment),
            Some(&record.id),
            ok,
            detail,
        );
    };
    // Held while it is read: a cleanup or delete meanwhile leaves it alone.
    let located = session.store.locate(record)?;
    let _held = removal::hold(&located.data)?;
    // Said before anything is sent: a run killed midway leaves an entry that says an upload was
    // tried, so that removing the backup removes whatever reached the storage.
    if !record
        .offsite
        .as_ref()
        .is_some_and(OffsiteCopy::is_uploaded)
    {
        let trying = OffsiteCopy::Failed {
            url: format!("{}/{}", storage.base_url(), data_name(record)),
            error: "an upload was started and did not finish".to_string(),
            attempted_at: now,
        };
        if !record_offsite(session, &record.id, &trying)? {
            return Err(Error::config(format!(
                "{} was removed before its upload began",
                record.id
            )));
        }
    }
    crate::testpoint::pause("upload:started");
    match upload_backup(storage, &located, record) {
        Ok(stored) => {
            let offsite = uploaded(storage, record, stored, now);
            if !record_offsite(session, &record.id, &offsite)? {
                let _ = super::removals::delete_backup(storage, record);
                let e = Error::config(format!(
                    "{} was removed while it was uploaded; its off-site copy is removed too",
                    record.id
                ));
                log(false, Some(e.one_line()));
                return Err(e);
            }
            log(true, None);
            Ok(offsite)
        }
        Err(e) => {
            if !record
                .offsite
                .as_ref()
                .is_some_and(OffsiteCopy::is_uploaded)
            {
                record_offsite(
                    session,
                    &record.id,
                    &failed(storage.base_url(), record, &e, now),
                )?;
            }
            log(false, Some(e.one_line()));
            Err(e)
        }
    }
}

/// Uploads a registered backup: its data (file, or each file of a directory dump), then its
/// manifest, so a manifest off-site always names complete data. The bytes read are hashed as
/// they go and must be the registered SHA-256, or nothing is kept.
fn upload_backup(
    storage: &dyn Storage,
    located: &Located,
    record: &BackupRecord,
) -> Result<Stored> {
    let data = &located.data;
    let name = data_name(record);
    let stored = if record.files.is_empty() {
        let stored = storage.put_file(&name, data)?;
        if stored.sha256 != record.sha256 {
            let _ = storage.delete_all(std::slice::from_ref(&name));
            return Err(Error::verification(format!(
                "{} no longer matches its registered SHA-256; nothing was kept off-site",
                data.display()
            ))
            .with_hint(Remedy::Verify {
                id: record.id.clone(),
            }));
        }
        stored
    } else {
        for f in &record.files {
            let path = crate::dirdump::member(data, &f.name)?;
            let stored = storage.put_file(&format!("{name}/{}", f.name), &path)?;
            if stored.sha256 != f.sha256 {
                let _ = storage.delete_all(&object_names(record));
                return Err(Error::verification(format!(
                    "{} of {} no longer matches its registered SHA-256; nothing was kept off-site",
                    f.name, record.id
                ))
                .with_hint(Remedy::Verify {
                    id: record.id.clone(),
                }));
            }
        }
        Stored {
            size_bytes: record.size_bytes,
            sha256: record.sha256.clone(),
        }
    };
    storage.put_file(&manifest_name(record), &located.manifest)?;
    Ok(stored)
}

/// The registry's record of a finished upload.
fn uploaded(
    storage: &dyn Storage,
    record: &BackupRecord,
    s: Stored,
    at: DateTime<Utc>,
) -> OffsiteCopy {
    OffsiteCopy::Uploaded {
        url: storage.url(&data_name(record)),
        size_bytes: s.size_bytes,
        sha256: s.sha256,
        uploaded_at: at,
    }
}

/// The registry's record of a failed upload to the storage at `base_url`.
fn failed(base_url: String, record: &BackupRecord, e: &Error, at: DateTime<Utc>) -> OffsiteCopy {
    OffsiteCopy::Failed {
        url: format!("{base_url}/{}", data_name(record)),
        error: e.one_line(),
        attempted_at: at,
    }
}

/// Writes `offsite` into the backup's registry entry, then into its manifest; `false` when
/// the entry is gone.
fn record_offsite(session: &Session, id: &str, offsite: &OffsiteCopy) -> Result<bool> {
    let updated = session.store.update(|reg| {
        Ok(reg.backups.iter_mut().find(|b| b.id == id).map(|b| {
            b.offsite = Some(offsite.clone());
            b.clone()
        }))
    })?;
    if let Some(b) = updated {
        session.store.write_manifest(&b)?;
        return Ok(true);
    }
    Ok(false)
}

/// The URL an off-site record names.
fn offsite_url(offsite: &OffsiteCopy) -> &str {
    match offsite {
        OffsiteCopy::Uploaded { url, .. } | OffsiteCopy::Failed { url, .. } => url,
    }
}
