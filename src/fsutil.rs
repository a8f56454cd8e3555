//! Crash-safe file handling: private modes, atomic replacement, and locked `.partial` files.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Kind, Result};

/// Suffix of files still being written. A `.partial` file that nobody holds a lock on is left
/// over from a killed run and may be removed.
pub const PARTIAL_SUFFIX: &str = ".partial";
/// How the names of faber-db's own work files begin: backups, SQLite snapshots, verify scratch.
pub const WORK_FILE_PREFIXES: [&str; 3] = ["backup-", "snapshot-", "verify-"];

/// Creates `dir` and its missing parents with mode 0700.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(Kind::Config, "cannot create directory", dir, e))
}

/// Opens `path` for writing, creating it with mode 0600 and failing if it exists.
pub fn create_new_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .read(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Flushes a directory entry change (create, rename, unlink) to disk.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `bytes` to `path` atomically: a private temporary sibling, fsync, rename, fsync of the
/// directory. Readers see the old content or the new, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| -> io::Result<()> {
        let _ = fs::remove_file(&tmp);
        let mut f = create_new_private(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(Kind::Config, "cannot write", path, e)
    })
}

/// A file being written under a `.partial` name, locked for as long as this value lives so that
/// no other run mistakes it for debris. Dropped without [`PartialFile::persist`], it is removed.
#[derive(Debug)]
pub struct PartialFile {
    path: PathBuf,
    file: File,
    kept: bool,
}

impl PartialFile {
    /// Creates `<final_path>.partial` exclusively and locks it. Fails if it already exists.
    ///
    /// The file appears under its `.partial` name already locked: it is created and locked under
    /// a private name first, then hard-linked into place (which fails if the name exists). A
    /// sweep by another run can therefore never see it unlocked and take it for debris.
    pub fn create(final_path: &Path) -> io::Result<PartialFile> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let path = partial_path(final_path);
        let dir = path.parent().unwrap_or(Path::new("."));
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let private = dir.join(format!(".faber-{}-{n}.new", std::process::id()));
        let file = create_new_private(&private)?;
        let placed = file.lock().and_then(|()| fs::hard_link(&private, &path));
        let _ = fs::remove_file(&private);
        placed?;
        Ok(PartialFile {
            path,
            file,
            kept: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// Syncs the data and renames the file to `final_path`, then syncs the directory.
    pub fn persist(mut self, final_path: &Path) -> io::Result<()> {
        self.file.sync_all()?;
        fs::rename(&self.path, final_path)?;
        self.kept = true;
        if let Some(dir) = final_path.parent() {
            sync_dir(dir)?;
        }
        Ok(())
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.kept {
            let _ = fs::remove_file(&self.path);
        }
    }
}

pub fn partial_path(final_path: &Path) -> PathBuf {
    let mut s = final_path.as_os_str().to_owned();
    s.push(PARTIAL_SUFFIX);
    PathBuf::from(s)
}

/// Removes `.partial` files under `dir` (one level of subdirectories deep) that no running
/// process holds a lock on. Returns the paths removed.
pub fn remove_stale_partials(dir: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return removed;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            removed.extend(remove_stale_partials_in(&path));
        }
    }
    removed.extend(remove_stale_partials_in(dir));
    removed
}

fn remove_stale_partials_in(dir: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return removed;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        // Only names faber-db gives its own work files: never a user's file that happens to end
        // in `.partial`.
        let is_partial = entry.file_name().to_str().is_some_and(|n| {
            n.ends_with(PARTIAL_SUFFIX) && WORK_FILE_PREFIXES.iter().any(|p| n.starts_with(p))
        });
        if !is_partial || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let Ok(f) = File::open(&path) else { continue };
        // Removed only if nobody holds it, and the name still names the file that was checked.
        let same_file = |f: &File| {
            let (Ok(held), Ok(named)) = (f.metadata(), fs::metadata(&path)) else {
                return false;
            };
            held.ino() == named.ino() && held.dev() == named.dev()
        };
        if f.try_lock().is_ok() && same_file(&f) && fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

/// Fails with exit 2 unless `dir`'s filesystem has `needed` bytes free; `what` says what for,
/// `hint` what to do.
pub fn ensure_free_space(dir: &Path, needed: u64, what: &str, hint: &str) -> Result<()> {
    let free = fs4::available_space(dir)
        .map_err(|e| Error::io(Kind::Config, "cannot read free space of", dir, e))?;
    if free < needed {
        return Err(Error::new(
            Kind::DiskSpace,
            format!(
                "not enough free space in {} {what}: {} free, about {} needed",
                dir.display(),
                crate::ui::size(free),
                crate::ui::size(needed)
            ),
        )
        .with_hint(hint));
    }
    Ok(())
}

/// Removes a file, treating "already gone" as success.
pub fn remove_if_exists(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}
