//! Object names of a backup off-site. They mirror the backup directory: `ENV/FILE` for the
//! data, `ENV/ID.manifest.json` for its manifest, and `ENV/DIR/NAME` for each file of a
//! directory dump — all below the storage's prefix.

use std::path::Path;

use super::storage::Storage;
use crate::registry::{BackupRecord, OffsiteCopy};

/// The object name of a backup's data: `ENV/FILE`.
pub fn data_name(record: &BackupRecord) -> String {
    let file = Path::new(&record.file)
        .file_name()
        .map_or_else(|| record.file.clone(), |f| f.to_string_lossy().into_owned());
    format!("{}/{file}", record.environment)
}

/// The object name of a backup's manifest: `ENV/ID.manifest.json`.
pub fn manifest_name(record: &BackupRecord) -> String {
    format!("{}/{}.manifest.json", record.environment, record.id)
}

/// Every object a backup has off-site, where an upload puts them now.
pub fn object_names(record: &BackupRecord) -> Vec<String> {
    names_at(record, data_name(record))
}

/// A backup's objects when its data is named `data`: the data (each file of a directory dump
/// below it), then the manifest beside it.
pub(super) fn names_at(record: &BackupRecord, data: String) -> Vec<String> {
    let dir = data.rsplit_once('/').map_or("", |(d, _)| d);
    let manifest = format!("{dir}/{}.manifest.json", record.id);
    let mut names: Vec<String> = if record.files.is_empty() {
        vec![data]
    } else {
        record
            .files
            .iter()
            .map(|f| format!("{data}/{}", f.name))
            .collect()
    };
    names.push(manifest);
    names
}

/// The name (below the prefix, or `/`-rooted when the prefix changed since) of a backup's
/// data in `storage`: where its registry entry says it was put, when in this storage; else
/// where an upload puts it now.
pub(super) fn recorded_name(storage: &dyn Storage, record: &BackupRecord) -> String {
    let recorded = match &record.offsite {
        Some(OffsiteCopy::Uploaded { url, .. } | OffsiteCopy::Failed { url, .. }) => Some(url),
        None => None,
    };
    let in_storage = storage.root_url();
    let prefix = if storage.prefix().is_empty() {
        String::new()
    } else {
        format!("{}/", storage.prefix())
    };
    // The URL in the entry is data too: it counts only when it names this backup's own
    // object (`…/<ENV>/<ID>.<extension>`), under whatever prefix it was uploaded, never
    // another object of the storage.
    let own = data_name(record);
    recorded
        .and_then(|url| url.strip_prefix(&in_storage))
        .filter(|key| *key == own || key.ends_with(&format!("/{own}")))
        .map_or_else(
            || data_name(record),
            |key| match key.strip_prefix(&prefix) {
                Some(name) if !prefix.is_empty() => name.to_string(),
                _ if prefix.is_empty() => key.to_string(),
                _ => format!("/{key}"),
            },
        )
}
