//! Registering the backups found off-site that the registry does not know — after the local
//! disk or the registry is lost — from the manifests stored beside their data. Nothing is
//! downloaded but the manifests: a backup's data is fetched, and checked, when it is needed
//! ([`super::fetch`]).

use std::collections::{BTreeMap, BTreeSet};

use super::names::data_name;
use super::open;
use super::storage::{Object, Storage};
use crate::audit;
use crate::dirdump;
use crate::error::{Error, Result};
use crate::human;
use crate::ids;
use crate::locate::Locator;
use crate::registry::{BackupRecord, OffsiteCopy, RegistryFile};
use crate::removal;
use crate::session::Session;

/// What a pull registered.
#[derive(Debug)]
pub struct PullOutcome {
    /// The backups registered, each reported as it was.
    pub registered: Vec<BackupRecord>,
    /// The manifests found off-site and not registered, each with why (reported as warnings).
    pub skipped: Vec<String>,
    /// The storage's URL as configured.
    pub base_url: String,
}

/// Registers the backups (of `env`, else of every environment) found off-site and unknown here.
pub fn pull(session: &Session, env: Option<&str>) -> Result<PullOutcome> {
    if let Some(env) = env {
        session.env(env)?;
    }
    let bucket = open(session)?;
    pull_from(session, bucket.as_ref(), env)
}

/// [`pull`] from `storage`.
pub(super) fn pull_from(
    session: &Session,
    storage: &dyn Storage,
    env: Option<&str>,
) -> Result<PullOutcome> {
    let objects = storage.list()?;
    let known = session.store.load()?;
    // Backups being removed are not brought back.
    let tombstoned = removal::tombstoned(&session.store);
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    let listing = Listing::new(&objects, session.store.locator());
    for o in &objects {
        let Some((o_env, file)) = o.name.split_once('/') else {
            continue;
        };
        let Some(id) = file.strip_suffix(".manifest.json") else {
            continue;
        };
        if env.is_some_and(|e| e != o_env)
            || ids::validate_id(id).is_err()
            || known.find(id).is_some()
            || tombstoned.contains(id)
        {
            continue;
        }
        match listing.registrable(storage, o, o_env, id) {
            Ok(record) => found.push(record),
            Err(why) => skipped.push(why),
        }
    }
    // Registered under the lock, unless a backup of the same ID appeared meanwhile.
    let added = session
        .store
        .update(|reg| Ok(register(session, reg, found)))?;
    let events = session.events();
    for r in &added {
        events.ok(&format!(
            "Registered {} {} ({}) from {}",
            r.environment,
            r.id,
            human::size(r.size_bytes),
            storage.base_url()
        ));
        audit::log_event(
            session,
            "pull",
            Some(&r.environment),
            Some(&r.id),
            true,
            None,
        );
    }
    for s in &skipped {
        events.warn(&format!("not registered: {s}"));
    }
    Ok(PullOutcome {
        registered: added,
        skipped,
        base_url: storage.base_url(),
    })
}

/// Adds the backups `found` to `reg` (under its lock), but those registered or tombstoned
/// meanwhile; the ones added.
fn register(
    session: &Session,
    reg: &mut RegistryFile,
    found: Vec<BackupRecord>,
) -> Vec<BackupRecord> {
    let tombstoned: BTreeSet<String> = removal::tombstoned(&session.store);
    let mut added = Vec::new();
    for r in found {
        if reg.find(&r.id).is_none() && !tombstoned.contains(&r.id) {
            reg.backups.push(r.clone());
            added.push(r);
        }
    }
    reg.backups
        .sort_by(|a, b| a.timestamp.cmp(&b.timestamp).then(a.id.cmp(&b.id)));
    added
}

/// The objects off-site, by name, and where their backups would be here.
struct Listing<'a> {
    sizes: BTreeMap<&'a str, &'a Object>,
    locator: Locator,
}

impl<'a> Listing<'a> {
    fn new(objects: &'a [Object], locator: Locator) -> Listing<'a> {
        Listing {
            sizes: objects.iter().map(|o| (o.name.as_str(), o)).collect(),
            locator,
        }
    }

    /// The backup manifest `o` (of `env`, named for `id`) describes, ready to register; or
    /// why it is not registered.
    fn registrable(
        &self,
        storage: &dyn Storage,
        o: &Object,
        env: &str,
        id: &str,
    ) -> std::result::Result<BackupRecord, String> {
        let mut record = match read_manifest(storage, &o.name) {
            Ok(r) if r.id == id && r.environment == env => r,
            Ok(_) => return Err(format!("{}: the manifest names another backup", o.name)),
            Err(e) => return Err(format!("{}: {}", o.name, e.one_line())),
        };
        // Its data comes back into the environment's directory here, whatever the manifest
        // says its path was: the storage's text is data, not a place to write to.
        let name = std::path::Path::new(&record.file)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        record.file = format!("{env}/{name}");
        if let Err(e) = self
            .locator
            .locate(&record.id, &record.environment, &record.file)
        {
            return Err(format!("{}: {}", o.name, e.one_line()));
        }
        if let Some(bad) = record
            .files
            .iter()
            .find(|f| dirdump::check_name(&f.name).is_err())
        {
            return Err(format!(
                "{}: names a file `{}` outside its dump",
                o.name,
                ids::shorten(&bad.name)
            ));
        }
        // Every object of its data must be there, with the recorded sizes.
        let data = data_name(&record);
        if !self.complete(&record, &data) {
            return Err(format!("{}: its data is not complete off-site", record.id));
        }
        record.offsite = Some(OffsiteCopy::Uploaded {
            url: storage.url(&data),
            size_bytes: record.size_bytes,
            sha256: record.sha256.clone(),
            uploaded_at: o.last_modified,
        });
        Ok(record)
    }

    /// Whether every object of `record`'s data (named `data`) is listed, with its size.
    fn complete(&self, record: &BackupRecord, data: &str) -> bool {
        let sized =
            |name: &str, size: u64| self.sizes.get(name).is_some_and(|d| d.size_bytes == size);
        if record.files.is_empty() {
            sized(data, record.size_bytes)
        } else {
            record
                .files
                .iter()
                .all(|f| sized(&format!("{data}/{}", f.name), f.size_bytes))
        }
    }
}

/// The backup record stored as manifest `name`.
fn read_manifest(storage: &dyn Storage, name: &str) -> Result<BackupRecord> {
    let bytes = storage.get(name)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::verification(format!("{} is not a backup manifest", storage.url(name))).caused_by(e)
    })
}
