//! Work under way: files and directories written under a `.partial` name, locked for as long
//! as they are being written, and given their final name when done.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{create_new_private, sync_dir};

/// Suffix of files still being written. A `.partial` file that nobody holds a lock on is left
/// over from a killed run and may be removed.
pub const PARTIAL_SUFFIX: &str = ".partial";
/// What a backup into another directory (`backup --output-dir`) leaves in its environment's
/// directory while it runs, as `<id>.claim.partial`, locked: it holds the other directory's path,
/// claims the ID, and tells the sweep after a killed run where to look.
pub const CLAIM_SUFFIX: &str = ".claim";

/// Suffix of a backup's data being fetched from its off-site copy (`<file>.fetch.partial`): unlike
/// a backup's own `.partial`, one left by a killed run is never finished by a sweep, only removed —
/// its download may be incomplete.
pub const FETCH_SUFFIX: &str = ".fetch";

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

impl PartialFile {
    /// Syncs the data and gives the file the name `final_path`, which must not exist: a file
    /// found there (made meanwhile) is left alone and the call fails with `AlreadyExists`.
    pub fn persist_new(mut self, final_path: &Path) -> io::Result<()> {
        self.file.sync_all()?;
        fs::hard_link(&self.path, final_path)?;
        self.kept = true;
        let _ = fs::remove_file(&self.path);
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

/// The lock file inside a [`PartialDir`]: held for as long as the directory is being written.
pub(super) const DIR_LOCK: &str = ".faber-lock";
/// Where the dump tool writes inside a [`PartialDir`] (it wants an empty directory of its own).
pub(super) const DIR_CONTENT: &str = "data";

/// A directory being written under a `.partial` name (a directory-format dump), locked like a
/// [`PartialFile`]: it holds a locked `.faber-lock` file beside `data/`, the directory the dump
/// tool fills. [`PartialDir::persist`] moves `data/` to the final name; dropped without it, the
/// whole `.partial` directory is removed.
#[derive(Debug)]
pub struct PartialDir {
    path: PathBuf,
    _lock: File,
    kept: bool,
}

impl PartialDir {
    /// Creates `<final_path>.partial/` with its lock held. Like [`PartialFile::create`], it is
    /// built and locked under a private name first and then renamed into place, so that no sweep
    /// ever sees it unlocked.
    pub fn create(final_path: &Path) -> io::Result<PartialDir> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let path = partial_path(final_path);
        let dir = path.parent().unwrap_or(Path::new("."));
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let private = dir.join(format!(".faber-{}-{n}.new.d", std::process::id()));
        fs::DirBuilder::new().mode(0o700).create(&private)?;
        let placed = (|| {
            let lock = create_new_private(&private.join(DIR_LOCK))?;
            lock.lock()?;
            // A rename onto an existing empty directory would succeed: refuse that first.
            if fs::symlink_metadata(&path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists", path.display()),
                ));
            }
            fs::rename(&private, &path)?;
            Ok(lock)
        })();
        match placed {
            Ok(lock) => Ok(PartialDir {
                path,
                _lock: lock,
                kept: false,
            }),
            Err(e) => {
                let _ = fs::remove_dir_all(&private);
                Err(e)
            }
        }
    }

    /// The `.partial` directory itself.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The (not yet existing) directory the dump tool is to fill.
    pub fn content(&self) -> PathBuf {
        self.path.join(DIR_CONTENT)
    }

    /// Makes the content's files private (0600: the dump tool creates them by its umask) and
    /// syncs them and their directory, moves it to `final_path`, syncs the parent and removes
    /// the emptied `.partial` directory.
    pub fn persist(mut self, final_path: &Path) -> io::Result<()> {
        let content = self.content();
        fs::set_permissions(&content, fs::Permissions::from_mode(0o700))?;
        for entry in fs::read_dir(&content)? {
            let file = File::open(entry?.path())?;
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
            file.sync_all()?;
        }
        sync_dir(&content)?;
        fs::rename(&content, final_path)?;
        self.kept = true;
        if let Some(dir) = final_path.parent() {
            sync_dir(dir)?;
        }
        let _ = fs::remove_file(self.path.join(DIR_LOCK));
        let _ = fs::remove_dir(&self.path);
        Ok(())
    }
}

impl Drop for PartialDir {
    fn drop(&mut self) {
        // The lock file is closed (and the lock released) only after this, when the fields drop.
        if !self.kept {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

pub fn partial_path(final_path: &Path) -> PathBuf {
    with_suffix(final_path, PARTIAL_SUFFIX)
}

/// Where a backup's data is downloaded from its off-site copy (see [`FETCH_SUFFIX`]), as the
/// final name a [`PartialFile`] or [`PartialDir`] is given.
pub fn fetching_path(final_path: &Path) -> PathBuf {
    with_suffix(final_path, FETCH_SUFFIX)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}
