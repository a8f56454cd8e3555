//! What `doctor` reads on disk besides the registry: the manifests, data nobody names, and the
//! registry rebuilt from them (`--repair`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Kind, Result};
use crate::fsutil;
use crate::registry::{BackupRecord, RegistryFile, Status};
use crate::removal;
use crate::session::Session;

/// The manifests in the environment directories, and those of the backups written elsewhere
/// (`backup --output-dir`) as recorded, each if it describes the data beside it.
pub(super) fn read_manifests(session: &Session) -> BTreeMap<String, BackupRecord> {
    let locator = session.store.locator();
    let tombstoned = removal::tombstoned(&session.store);
    let elsewhere = session
        .store
        .other_manifests()
        .into_iter()
        .filter_map(|path| {
            let name = path.file_name()?.to_string_lossy().into_owned();
            Some((name, path))
        });
    session
        .store
        .env_files()
        .into_iter()
        .chain(elsewhere)
        .filter(|(name, _)| name.ends_with(".manifest.json"))
        .filter_map(|(_, path)| {
            let text = fs::read_to_string(&path).ok()?;
            let record = serde_json::from_str::<BackupRecord>(&text).ok()?;
            // A manifest speaks for the data beside it, not for a copy of it elsewhere, and only
            // where this project keeps backups; a backup being removed is not brought back.
            let located = locator
                .locate(&record.id, &record.environment, &record.file)
                .ok()?;
            (fsutil::resolved(&located.manifest) == fsutil::resolved(&path)
                && !tombstoned.contains(&record.id))
            .then_some(record)
        })
        .map(|r| (r.id.clone(), r))
        .collect()
}

/// Backup data in the environment directories that no entry or manifest names.
pub(super) fn orphan_data(
    session: &Session,
    entries: &[BackupRecord],
    manifests: &BTreeMap<String, BackupRecord>,
) -> Vec<PathBuf> {
    // Compared as they are on disk: an entry may name the directory through another spelling
    // (a linked backup directory).
    let locator = session.store.locator();
    let named: BTreeSet<PathBuf> = entries
        .iter()
        .chain(manifests.values())
        .filter_map(|b| locator.locate(&b.id, &b.environment, &b.file).ok())
        .map(|l| fsutil::resolved(&l.data))
        .collect();
    let mut out: Vec<PathBuf> = session
        .store
        .env_files()
        .into_iter()
        .filter(|(name, path)| {
            name.starts_with("backup-")
                && !name.ends_with(".manifest.json")
                && !name.ends_with(fsutil::PARTIAL_SUFFIX)
                && !named.contains(&fsutil::resolved(path))
        })
        .map(|(_, path)| path)
        .collect();
    out.sort();
    out
}

/// Rebuilds the registry: the entries it still holds (unless it is malformed) and every
/// manifest's, each marked `missing` when its data is gone. A malformed registry is kept aside.
/// Everything is read again under the lock: a backup published or deleted meanwhile counts.
pub(super) fn repair(session: &Session, dir: &Path, registry_broken: bool) -> Result<RegistryFile> {
    let _lock = session.store.lock()?;
    let manifests = read_manifests(session);
    let entries = if registry_broken {
        Vec::new()
    } else {
        session.store.load()?.backups
    };
    let path = session.store.registry_path();
    if registry_broken && path.exists() {
        let aside = dir.join(format!(
            "{}.corrupt-{}",
            crate::registry::REGISTRY_FILE,
            session.ctx.now.format("%Y%m%d-%H%M%S")
        ));
        fs::rename(&path, &aside)
            .map_err(|e| Error::io(Kind::Config, "cannot move aside", &path, e))?;
        session.events().warn(&format!(
            "the malformed registry was kept as {}",
            session.ctx.show(&aside)
        ));
    }
    let locator = session.store.locator();
    // An entry counts over its manifest, unless it names a file where faber-db keeps no
    // backups: then the manifest beside the backup's own data (if any) says where it is.
    let mut by_id: BTreeMap<String, BackupRecord> = manifests;
    for b in entries {
        if by_id.contains_key(&b.id) && locator.locate(&b.id, &b.environment, &b.file).is_err() {
            continue;
        }
        by_id.insert(b.id.clone(), b);
    }
    let mut reg = RegistryFile::default();
    for (_, mut b) in by_id {
        let located = match locator.locate(&b.id, &b.environment, &b.file) {
            Ok(l) => l,
            Err(e) => {
                // Not a backup of this project's as it stands: out of the registry, its files
                // (wherever they are) untouched.
                session.events().warn(&format!(
                    "took {} out of the registry: {}",
                    b.id,
                    e.message()
                ));
                continue;
            }
        };
        if fs::symlink_metadata(&located.data).is_err() {
            b.status = Status::Missing;
        } else if !located.manifest.exists() {
            // The manifest beside the data is written again from the entry.
            crate::registry::write_manifest_at(&located.manifest, &b)?;
        }
        reg.backups.push(b);
    }
    reg.backups
        .sort_by(|a, b| a.timestamp.cmp(&b.timestamp).then(a.id.cmp(&b.id)));
    let mut bytes = serde_json::to_vec_pretty(&reg).expect("the registry serializes");
    bytes.push(b'\n');
    fsutil::write_atomic(&path, &bytes)?;
    crate::audit::log_event(
        session,
        "repair",
        None,
        None,
        true,
        Some(format!("{} entries", reg.backups.len())),
    );
    Ok(reg)
}

/// The version of a registry written by a newer faber-db, if that is what `path` holds.
pub(super) fn newer_registry(path: &Path) -> Option<u64> {
    let text = fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["version"]
        .as_u64()
        .filter(|&n| n > u64::from(crate::registry::REGISTRY_VERSION))
}

/// The nearest existing ancestor of `dir` (the backup directory may not exist yet).
pub(super) fn existing_ancestor(dir: &Path) -> &Path {
    dir.ancestors()
        .find(|d| d.exists())
        .unwrap_or(Path::new("/"))
}
