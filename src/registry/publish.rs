//! Registering a finished backup: manifest, registry entry (the commit point), then the data
//! under its final name, with the way back when a step fails.

use std::fs;
use std::path::Path;

use super::{BackupRecord, REGISTRY_VERSION, Store};
use crate::error::{Error, Remedy, Result};
use crate::fsutil;

impl Store {
    /// Registers a finished backup: its manifest, then its registry entry — the commit point —
    /// then its data under the final name (`persist`), all under the lock. A run killed after the
    /// commit leaves the data under its `.partial` name, and the next [`Store::sweep`] finishes
    /// the move; a `persist` that fails takes the entry and manifest back, and only once the
    /// entry is known to be gone does `discard` remove what `persist` may have moved.
    pub fn publish(
        &self,
        record: &BackupRecord,
        manifest: &Path,
        manifest_bytes: &[u8],
        persist: impl FnOnce() -> Result<()>,
        discard: impl FnOnce(),
    ) -> Result<()> {
        let _lock = self.lock()?;
        // The other entries are copied as the text they are, not parsed and written again: with
        // 10,000 of them this keeps the commit to a few milliseconds of work and one fsync.
        let text = self.read_text()?;
        let raw = self.entries(text.as_deref())?;
        // IDs are plain ASCII: a registered one appears quoted in the text.
        let quoted = format!("\"{}\"", record.id);
        if text.as_deref().is_some_and(|t| t.contains(&quoted))
            && self.has_id(text.as_deref(), &record.id)?
        {
            return Err(Error::tool(format!(
                "backup ID {} was registered by another run",
                record.id
            )));
        }
        let write = |bytes: &[u8]| fsutil::write_atomic(&self.registry_path(), bytes);
        fsutil::write_atomic(manifest, manifest_bytes)?;
        crate::testpoint::pause("backup:after-manifest");
        if let Err(e) = write(&registry_text(&raw, Some(record))) {
            // The write may have landed (a rename done, its directory sync failed): the
            // registry on disk decides.
            let landed = self.registered(&record.id) == Some(true);
            if !landed {
                let _ = fs::remove_file(manifest);
                return Err(e);
            }
        }
        crate::testpoint::pause("backup:after-commit");
        if let Err(e) = persist() {
            let taken_back = write(&registry_text(&raw, None)).is_ok()
                || self.registered(&record.id) == Some(false);
            if taken_back {
                let _ = fs::remove_file(manifest);
                discard();
                return Err(e);
            }
            // The entry stays: so must the data, wherever it is, for the next sweep or doctor.
            return Err(e.add_hint(Remedy::CheckRegistry));
        }
        Ok(())
    }
}

/// The registry's text with `entries` (each an entry's JSON text) and then `added`, laid out
/// exactly as `serde_json::to_vec_pretty` lays out a [`RegistryFile`](super::RegistryFile).
fn registry_text(entries: &[&str], added: Option<&BackupRecord>) -> Vec<u8> {
    const ITEM: &[u8] = b"\n    ";
    let mut out = Vec::with_capacity(entries.iter().map(|e| e.len() + 6).sum::<usize>() + 8192);
    out.extend_from_slice(
        format!("{{\n  \"version\": {REGISTRY_VERSION},\n  \"backups\": [").as_bytes(),
    );
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(ITEM);
        out.extend_from_slice(entry.as_bytes());
    }
    if let Some(record) = added {
        if !entries.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(ITEM);
        // Indented one level deeper than on its own; JSON strings hold no raw newlines.
        for byte in serde_json::to_vec_pretty(record).expect("records serialize") {
            out.push(byte);
            if byte == b'\n' {
                out.extend_from_slice(&ITEM[1..]);
            }
        }
    }
    if entries.is_empty() && added.is_none() {
        out.extend_from_slice(b"]\n}\n");
    } else {
        out.extend_from_slice(b"\n  ]\n}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RegistryFile;

    fn record(id: &str) -> BackupRecord {
        serde_json::from_value(serde_json::json!({
            "id": id, "environment": "dev", "database": "app", "provider": "sqlite",
            "timestamp": "2026-11-23T10:00:00Z", "label": null, "reason": "a \"quoted\"\nreason é",
            "file": format!("dev/{id}.sqlite3.zst"), "size_bytes": 10, "raw_size_bytes": 20,
            "format": "sqlite", "compression": "zstd", "compressed": true, "encrypted": false,
            "sha256": "00", "tool_version": "t", "migrations": {"tool": "sqlx", "table": "_sqlx_migrations",
            "applied_count": 2, "last_migration": "2_b", "migrations_list": ["1_a", "2_b"]},
            "tables": {"users": {"rows": 3}, "empty": {"rows": 0}}, "retention_days": null,
            "expires_at": null, "status": "valid", "verification": null, "host": null,
            "user": null, "git": {"commit": null, "branch": "main"}, "duration_ms": 5
        }))
        .unwrap()
    }

    /// The commit writes the registry by copying the other entries' text: the result must be
    /// byte for byte what serializing the whole registry gives, for 0, 1 and 2 entries before.
    #[test]
    fn spliced_registry_text_is_the_serialized_registry() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().to_path_buf());
        let pretty = |reg: &RegistryFile| {
            let mut bytes = serde_json::to_vec_pretty(reg).unwrap();
            bytes.push(b'\n');
            bytes
        };
        let mut reg = RegistryFile::default();
        for n in 0..3 {
            let text = String::from_utf8(pretty(&reg)).unwrap();
            let raw = store.entries(Some(&text)).unwrap();
            assert_eq!(registry_text(&raw, None), text.as_bytes());
            let added = record(&format!("backup-20261123-100000-{n}"));
            let spliced = registry_text(&raw, Some(&added));
            reg.backups.push(added);
            assert_eq!(
                String::from_utf8(spliced).unwrap(),
                String::from_utf8(pretty(&reg)).unwrap()
            );
            let parsed: Vec<BackupRecord> = raw
                .iter()
                .map(|r| serde_json::from_str(r).unwrap())
                .collect();
            assert_eq!(parsed, reg.backups[..n]);
            let ids = store.ids(Some(&text)).unwrap();
            assert_eq!(ids.len(), n);
            let views = store.views(Some(&text)).unwrap();
            assert!(
                views
                    .iter()
                    .enumerate()
                    .all(|(i, v)| v.index == i && v.id == ids[i])
            );
        }
    }
}
