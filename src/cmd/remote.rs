//! The commands and steps that move backups to and from the off-site storage: `faber-db push
//! [ID | --env ENV]` (copy backups without an off-site copy), `faber-db pull [--env ENV]`
//! (register backups known only off-site), the upload after a backup, the fetch of a missing
//! file before a restore or verify, and the removal of off-site copies with their entries.

use clap::Args;
use serde::Serialize;

use crate::Report;
use crate::cmd;
use crate::dirdump;
use crate::error::{Error, Kind, Result};
use crate::ids;
use crate::offsite::{self, Bucket};
use crate::registry::{BackupRecord, Remote, Status};
use crate::removal::{self, Tombstone};
use crate::session::Session;
use crate::ui;

pub use crate::ops::fetch::{configured, fetch_if_missing, refetch_damaged};

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The backup to copy off-site (again, if it has a copy already)
    pub id: Option<String>,

    /// Every backup of this environment without an off-site copy (default: of every
    /// environment with `offsite` on)
    #[arg(long, value_name = "ENV", conflicts_with = "id")]
    pub env: Option<String>,
}

#[derive(Debug, Serialize)]
struct Pushed {
    id: String,
    environment: String,
    remote: Remote,
}

/// `faber-db push`: one backup, or every valid one still without an off-site copy (never
/// uploaded, or its upload failed).
pub fn push(session: &Session, args: PushArgs) -> Result<Report> {
    let ui = &session.ctx.ui;
    let config = configured(session)?;
    let reg = session.store.load()?;
    let chosen: Vec<&BackupRecord> = if let Some(id) = &args.id {
        ids::validate_id(id)?;
        let b = reg.find(id).ok_or_else(|| {
            Error::config(format!("no backup `{id}` in the registry"))
                .with_hint("`faber-db list` shows the backups")
        })?;
        match b.status {
            Status::Valid => {}
            // Its bytes are the ones written: named, it is copied like a valid one.
            Status::Mismatch => ui.warn(format!(
                "{id} is marked mismatch: its row counts differ from its manifest; copying it because it was named"
            )),
            s => {
                return Err(Error::verification(format!(
                    "{id} is {}; only valid backups are copied off-site",
                    s.as_str()
                ))
                .with_hint(format!("run `faber-db verify {id}` first")));
            }
        }
        vec![b]
    } else {
        if let Some(env) = &args.env {
            session.env(env)?;
        }
        reg.newest_first(args.env.as_deref())
            .into_iter()
            .filter(|b| match &args.env {
                Some(_) => true,
                None => session
                    .config
                    .environments
                    .get(&b.environment)
                    .is_some_and(|e| e.offsite),
            })
            .filter(|b| {
                b.status == Status::Valid
                    && !b.remote.as_ref().is_some_and(Remote::is_uploaded)
                    && session.store.locate(b).is_ok_and(|l| l.data.exists())
            })
            .collect()
    };
    if chosen.is_empty() {
        ui.line("Nothing to push: every valid backup has its off-site copy.");
        return Ok(Report::new().with("pushed", Vec::<Pushed>::new()));
    }

    let bucket = Bucket::open(config, &session.vars)?;
    let mut pushed = Vec::new();
    let mut failed = Vec::new();
    for b in chosen {
        // The local bytes are checked before they go anywhere: a file that rotted since its
        // backup must not replace a good off-site copy.
        let checked = crate::cmd::verify::checksum_ok(session, b).map_err(|(e, _)| e);
        match checked.and_then(|()| send(session, &bucket, b)) {
            Ok(remote) => {
                ui.ok(format!(
                    "Pushed {} ({}) to {}",
                    b.id,
                    ui::size(b.size_bytes),
                    remote_url(&remote)
                ));
                pushed.push(Pushed {
                    id: b.id.clone(),
                    environment: b.environment.clone(),
                    remote,
                });
            }
            Err(e) => {
                ui.fail(format!("{}: {}", b.id, e.one_line()));
                failed.push(b.id.clone());
            }
        }
    }
    let mut report = Report::new()
        .with("pushed", &pushed)
        .with("failed", &failed);
    if !failed.is_empty() {
        report.failure = Some(
            Error::new(
                Kind::Tool,
                format!(
                    "{} of {} uploads failed",
                    failed.len(),
                    failed.len() + pushed.len()
                ),
            )
            .with_hint(
                "the lines above say why: a backup whose file no longer matches its SHA-256 is not \
                 sent (`faber-db verify` marks it); the others can be pushed again when the \
                 storage is reachable",
            ),
        );
    }
    Ok(report)
}

/// Copies a just-registered backup off-site. A failure is recorded in its registry entry and
/// returned; the local backup stays registered and valid either way.
pub fn after_backup(session: &Session, record: &mut BackupRecord) -> Result<()> {
    let config = configured(session)?;
    let outcome = match Bucket::open(config, &session.vars) {
        Ok(bucket) => send(session, &bucket, record),
        Err(e) => {
            // The bucket could not even be opened: the entry still says the copy failed.
            record_remote(
                session,
                &record.id,
                &failed(config.url(), record, &e, session.ctx.now),
            )?;
            Err(e)
        }
    };
    match outcome {
        Ok(remote) => {
            session
                .ctx
                .ui
                .ok(format!("Copied off-site to {}", remote_url(&remote)));
            record.remote = Some(remote);
            Ok(())
        }
        Err(e) => {
            if !record.remote.as_ref().is_some_and(Remote::is_uploaded) {
                record.remote = Some(failed(config.url(), record, &e, session.ctx.now));
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
            Err(err.add_hint(format!(
                "the local backup is registered and valid; copy it later with `faber-db push {}`",
                record.id
            )))
        }
    }
}

/// Uploads one registered backup and records the outcome in its registry entry and manifest.
/// A failed retry of a backup already off-site leaves its record as it was: the copy there is
/// still the one that was checked. An entry removed while its upload ran (a concurrent cleanup
/// or delete) takes the objects just uploaded with it.
fn send(session: &Session, bucket: &Bucket, record: &BackupRecord) -> Result<Remote> {
    let _signals = crate::interrupt::guard();
    let now = session.ctx.now;
    let log = |ok: bool, detail: Option<String>| {
        cmd::log_event(
            session,
            "push",
            Some(&record.environment),
            Some(&record.id),
            ok,
            detail,
        )
    };
    // Held while it is read: a cleanup or delete meanwhile leaves it alone.
    let located = session.store.locate(record)?;
    let _held = removal::hold(&located.data)?;
    // Said before anything is sent: a run killed midway leaves an entry that says an upload was
    // tried, so that removing the backup removes whatever reached the bucket.
    if !record.remote.as_ref().is_some_and(Remote::is_uploaded) {
        let trying = Remote::Failed {
            url: format!("{}/{}", bucket.base_url(), offsite::data_name(record)),
            error: "an upload was started and did not finish".to_string(),
            attempted_at: now,
        };
        if !record_remote(session, &record.id, &trying)? {
            return Err(Error::config(format!(
                "{} was removed before its upload began",
                record.id
            )));
        }
    }
    crate::testpoint::pause("upload:started");
    match bucket.upload_backup(&located, record) {
        Ok(u) => {
            let remote = offsite::uploaded(bucket, record, u, now);
            if !record_remote(session, &record.id, &remote)? {
                let _ = bucket.delete_backup(record);
                let e = Error::config(format!(
                    "{} was removed while it was uploaded; its off-site copy is removed too",
                    record.id
                ));
                log(false, Some(e.one_line()));
                return Err(e);
            }
            log(true, None);
            Ok(remote)
        }
        Err(e) => {
            if !record.remote.as_ref().is_some_and(Remote::is_uploaded) {
                record_remote(
                    session,
                    &record.id,
                    &failed(bucket.base_url(), record, &e, now),
                )?;
            }
            log(false, Some(e.one_line()));
            Err(e)
        }
    }
}

fn failed(
    base_url: String,
    record: &BackupRecord,
    e: &Error,
    at: chrono::DateTime<chrono::Utc>,
) -> Remote {
    Remote::Failed {
        url: format!("{base_url}/{}", offsite::data_name(record)),
        error: e.one_line(),
        attempted_at: at,
    }
}

/// Writes `remote` into the backup's registry entry, then into its manifest; `false` when the
/// entry is gone.
fn record_remote(session: &Session, id: &str, remote: &Remote) -> Result<bool> {
    let updated = session.store.update(|reg| {
        Ok(reg.backups.iter_mut().find(|b| b.id == id).map(|b| {
            b.remote = Some(remote.clone());
            b.clone()
        }))
    })?;
    if let Some(b) = updated {
        session.store.write_manifest(&b)?;
        return Ok(true);
    }
    Ok(false)
}

fn remote_url(remote: &Remote) -> &str {
    match remote {
        Remote::Uploaded { url, .. } | Remote::Failed { url, .. } => url,
    }
}

/// Removes the off-site copy of a backup removed here (see [`crate::removal`]); its tombstone
/// goes once the copy is gone. One problem line when it kept objects off-site.
pub fn remove_offsite(session: &Session, tombstone: Option<Tombstone>) -> Vec<String> {
    remove_offsite_all(session, tombstone.into_iter().collect())
}

/// [`remove_offsite`] for many backups, through one connection to the storage.
pub fn remove_offsite_all(session: &Session, tombstones: Vec<Tombstone>) -> Vec<String> {
    if tombstones.is_empty() {
        return Vec::new();
    }
    let bucket = configured(session).and_then(|c| Bucket::open(c, &session.vars));
    let mut problems = Vec::new();
    for t in tombstones {
        let b = &t.record;
        // A tombstone is read back from disk: its record names objects only once it is sound.
        let result = session
            .store
            .locate(b)
            .map_err(|e| e.one_line())
            .and_then(|_| bucket.as_ref().map_err(Error::one_line))
            .and_then(|bucket| bucket.delete_backup(b).map_err(|e| e.one_line()));
        match result {
            Ok(()) => {
                if let Some(Remote::Uploaded { url, .. }) = &b.remote {
                    session.ctx.ui.ok(format!("Removed off-site copy {url}"));
                }
                t.done();
            }
            Err(e) => problems.push(format!("off-site copy of {}: {e}", b.id)),
        }
    }
    problems
}

/// Removes the off-site copies that earlier removals could not (the storage was unreachable, the
/// run was killed): each backup's tombstone says what is left. Nothing to do without off-site
/// storage configured: the tombstones wait, and `doctor` lists them.
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
    problems.extend(remove_offsite_all(session, pending));
    problems
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Only this environment's backups
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,

    /// Also download the data of every backup that is off-site but not here (checked against its
    /// SHA-256), instead of leaving it for the restore or verify that needs it
    #[arg(long)]
    pub fetch: bool,
}

/// `faber-db pull [--env ENV]`: registers the backups found off-site that the registry does not
/// know — after the local disk or the registry is lost — from the manifests stored beside their
/// data. Nothing is downloaded but the manifests: a backup's data is fetched, and checked, when a
/// restore or verify needs it.
pub fn pull(session: &Session, args: PullArgs) -> Result<Report> {
    let ui = &session.ctx.ui;
    if let Some(env) = &args.env {
        session.env(env)?;
    }
    let bucket = Bucket::open(configured(session)?, &session.vars)?;
    let objects = bucket.list()?;
    let sizes: std::collections::BTreeMap<&str, &offsite::Object> =
        objects.iter().map(|o| (o.name.as_str(), o)).collect();
    let known = session.store.load()?;
    // Backups being removed are not brought back.
    let tombstoned = removal::tombstoned(&session.store);
    let locator = session.store.locator();
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    for o in &objects {
        let Some((env, file)) = o.name.split_once('/') else {
            continue;
        };
        let Some(id) = file.strip_suffix(".manifest.json") else {
            continue;
        };
        if args.env.as_deref().is_some_and(|e| e != env)
            || crate::ids::validate_id(id).is_err()
            || known.find(id).is_some()
            || tombstoned.contains(id)
        {
            continue;
        }
        let mut record = match bucket.read_manifest(&o.name) {
            Ok(r) if r.id == id && r.environment == env => r,
            Ok(_) => {
                skipped.push(format!("{}: the manifest names another backup", o.name));
                continue;
            }
            Err(e) => {
                skipped.push(format!("{}: {}", o.name, e.one_line()));
                continue;
            }
        };
        // Its data comes back into the environment's directory here, whatever the manifest
        // says its path was: the bucket's text is data, not a place to write to.
        let name = std::path::Path::new(&record.file)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        record.file = format!("{env}/{name}");
        if let Err(e) = locator.locate(&record.id, &record.environment, &record.file) {
            skipped.push(format!("{}: {}", o.name, e.one_line()));
            continue;
        }
        if let Some(bad) = record
            .files
            .iter()
            .find(|f| dirdump::check_name(&f.name).is_err())
        {
            skipped.push(format!(
                "{}: names a file `{}` outside its dump",
                o.name,
                crate::ids::shorten(&bad.name)
            ));
            continue;
        }
        // Every object of its data must be there, with the recorded sizes.
        let data = offsite::data_name(&record);
        let complete = if record.files.is_empty() {
            sizes
                .get(data.as_str())
                .is_some_and(|d| d.size_bytes == record.size_bytes)
        } else {
            record.files.iter().all(|f| {
                sizes
                    .get(format!("{data}/{}", f.name).as_str())
                    .is_some_and(|d| d.size_bytes == f.size_bytes)
            })
        };
        if !complete {
            skipped.push(format!("{}: its data is not complete off-site", record.id));
            continue;
        }
        record.remote = Some(Remote::Uploaded {
            url: bucket.url(&data),
            size_bytes: record.size_bytes,
            sha256: record.sha256.clone(),
            uploaded_at: o.last_modified,
        });
        found.push(record);
    }
    // Registered under the lock, unless a backup of the same ID appeared meanwhile.
    let added: Vec<BackupRecord> = session.store.update(|reg| {
        let tombstoned = removal::tombstoned(&session.store);
        let mut added = Vec::new();
        for r in found {
            if reg.find(&r.id).is_none() && !tombstoned.contains(&r.id) {
                reg.backups.push(r.clone());
                added.push(r);
            }
        }
        reg.backups
            .sort_by(|a, b| a.timestamp.cmp(&b.timestamp).then(a.id.cmp(&b.id)));
        Ok(added)
    })?;
    for r in &added {
        ui.ok(format!(
            "Registered {} {} ({}) from {}",
            r.environment,
            r.id,
            ui::size(r.size_bytes),
            bucket.base_url()
        ));
        cmd::log_event(
            session,
            "pull",
            Some(&r.environment),
            Some(&r.id),
            true,
            None,
        );
    }
    for s in &skipped {
        ui.warn(format!("not registered: {s}"));
    }
    let later = if args.fetch {
        ""
    } else {
        "; their data is fetched when a restore or verify needs it"
    };
    ui.line(format!(
        "{} backups registered from {}{later}",
        added.len(),
        bucket.base_url()
    ));
    let ids: Vec<&str> = added.iter().map(|r| r.id.as_str()).collect();
    let mut report = Report::new()
        .with("registered", ids)
        .with("skipped", &skipped);
    if args.fetch {
        let (fetched, failure) = fetch_all(session, args.env.as_deref())?;
        report = report.with("fetched", fetched);
        report.failure = failure;
    }
    Ok(report)
}

/// `pull --fetch`: the data of every backup (of `env`) that has an off-site copy and is not
/// here, each fetched and checked as a restore would. Goes on past a failure; the first is the
/// report's.
fn fetch_all(session: &Session, env: Option<&str>) -> Result<(Vec<String>, Option<Error>)> {
    let reg = session.store.load()?;
    let mut fetched = Vec::new();
    let mut failures = Vec::new();
    for b in reg.newest_first(env) {
        match fetch_if_missing(session, b) {
            Ok(true) => fetched.push(b.id.clone()),
            Ok(false) => {}
            // Ctrl-C stops it all: what was fetched stays, the rest waits for the next run.
            Err(e) if e.kind() == Kind::Aborted => return Err(e),
            Err(e) => {
                session
                    .ctx
                    .ui
                    .fail(format!("{} {}: {}", b.environment, b.id, e.one_line()));
                failures.push(e);
            }
        }
    }
    session.ctx.ui.line(format!(
        "{} backups fetched{}",
        fetched.len(),
        if failures.is_empty() {
            String::new()
        } else {
            format!(", {} failed", failures.len())
        }
    ));
    let failure = failures.into_iter().next().map(|first| {
        Error::new(
            first.kind(),
            format!("not every backup could be fetched: {}", first.message()),
        )
        .with_hint("the others are here; see the lines above, and `faber-db list`")
    });
    Ok((fetched, failure))
}
