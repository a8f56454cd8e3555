//! Cleaning up after runs that were killed: unfinished data, claims and manifests left behind.

use std::fs::{self, File};
use std::path::PathBuf;

use super::{BackupRecord, RegistryFile, Store};
use crate::fsutil;
use crate::locate::Locator;

impl Store {
    /// Cleans up after runs that were killed: `.partial` files and directories nobody holds are
    /// removed — or, when their backup's entry was already written, moved to their final name —
    /// and manifests left without an entry and without data are removed. Under the registry lock,
    /// so no publish is midway; skipped when the registry cannot be read (see `doctor`), since
    /// deciding what is debris needs it.
    pub fn sweep(&self) -> Vec<fsutil::Swept> {
        // Nothing to sweep where nothing was ever written (and nothing to write there now).
        if !self.dir.is_dir() {
            return Vec::new();
        }
        // Every run starts here: without leftovers (the usual case), neither the lock nor the
        // registry is needed. A manifest left without entry comes with its `.partial` data.
        if !fsutil::has_leftovers(&self.dir) {
            return Vec::new();
        }
        let Ok(_lock) = self.lock() else {
            return Vec::new();
        };
        let Ok(reg) = self.load() else {
            return Vec::new();
        };
        // Entries whose `file` is refused name nothing here: their partials are not finished.
        let locator = self.locator();
        let registered: std::collections::BTreeSet<PathBuf> = reg
            .backups
            .iter()
            .filter_map(|b| locator.locate(&b.id, &b.environment, &b.file).ok())
            .map(|l| l.data)
            .collect();
        let mut swept = self.sweep_claims(&reg, &registered, &locator);
        swept.extend(fsutil::remove_stale_partials(&self.dir, &|p| {
            registered.contains(p)
        }));
        swept.extend(self.remove_orphan_manifests(&reg));
        swept
    }

    /// What killed backups into other directories left there: for each claim nobody holds, the
    /// backup's `.partial` data in the directory it names is finished (when registered) or removed,
    /// and its manifest removed when it has neither entry nor data; then the claim goes.
    fn sweep_claims(
        &self,
        reg: &RegistryFile,
        registered: &std::collections::BTreeSet<PathBuf>,
        locator: &Locator,
    ) -> Vec<fsutil::Swept> {
        let claim_end = format!("{}{}", fsutil::CLAIM_SUFFIX, fsutil::PARTIAL_SUFFIX);
        let mut out = Vec::new();
        for (name, path) in self.env_files() {
            let Some(id) = name.strip_suffix(&claim_end) else {
                continue;
            };
            let Ok(mut claim) = File::open(&path) else {
                continue;
            };
            if claim.try_lock().is_err() {
                continue;
            }
            let mut dir = Vec::new();
            if std::io::Read::read_to_end(&mut claim, &mut dir).is_ok() && !dir.is_empty() {
                use std::os::unix::ffi::OsStrExt;
                let dir = PathBuf::from(std::ffi::OsStr::from_bytes(&dir));
                // The claim's text is data: only a directory this project recorded for the
                // backup is looked into.
                if !locator.is_recorded_dir(id, &dir) {
                    let _ = fs::remove_file(&path);
                    continue;
                }
                out.extend(fsutil::remove_stale_partials_of(&dir, id, &|p| {
                    registered.contains(p)
                }));
                let manifest = dir.join(format!("{id}.manifest.json"));
                let has_data = fsutil::file_names(&dir)
                    .iter()
                    .any(|n| n.starts_with(&format!("{id}.")) && !n.ends_with(".manifest.json"));
                if reg.find(id).is_none() && !has_data && fs::remove_file(&manifest).is_ok() {
                    out.push(fsutil::Swept {
                        path: manifest,
                        finished: false,
                    });
                }
            }
            let _ = fs::remove_file(&path);
        }
        out
    }

    /// Manifests whose backup has no entry and no data: a publish killed between writing the
    /// manifest and the entry.
    fn remove_orphan_manifests(&self, reg: &RegistryFile) -> Vec<fsutil::Swept> {
        let mut out = Vec::new();
        let locator = self.locator();
        for (name, path) in self.env_files() {
            let Some(id) = name.strip_suffix(".manifest.json") else {
                continue;
            };
            if reg.find(id).is_some() {
                continue;
            }
            let record = fs::read_to_string(&path)
                .ok()
                .and_then(|t| serde_json::from_str::<BackupRecord>(&t).ok());
            // Data without an entry stays (doctor reports it): never delete a backup. Nor a
            // manifest that does not speak for the data beside it (refused, or a stray copy).
            let has_data =
                record.is_none_or(|r| match locator.locate(&r.id, &r.environment, &r.file) {
                    Ok(l) => l.manifest != path || fs::symlink_metadata(&l.data).is_ok(),
                    Err(_) => true,
                });
            if !has_data && fs::remove_file(&path).is_ok() {
                out.push(fsutil::Swept {
                    path,
                    finished: false,
                });
            }
        }
        out
    }
}
