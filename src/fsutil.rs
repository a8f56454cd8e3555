//! Crash-safe file handling: private modes, atomic replacement, and locked `.partial` files.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Kind, Result};

/// Suffix of files still being written. A `.partial` file that nobody holds a lock on is left
/// over from a killed run and may be removed.
pub const PARTIAL_SUFFIX: &str = ".partial";
/// What a backup into another directory (`backup --output-dir`) leaves in its environment's
/// directory while it runs, as `<id>.claim.partial`, locked: it holds the other directory's path,
/// claims the ID, and tells the sweep after a killed run where to look.
pub const CLAIM_SUFFIX: &str = ".claim";
/// How the names of faber-db's own work files begin: backups, SQLite snapshots, verify scratch.
pub const WORK_FILE_PREFIXES: [&str; 4] = ["backup-", "snapshot-", "verify-", "restore-"];

/// `path` as it is on disk: its nearest existing ancestor with `..` and symbolic links resolved,
/// and the rest (not there yet) as given. To tell whether one path lies inside another.
pub fn resolved(path: &Path) -> PathBuf {
    path.ancestors()
        .find_map(|a| {
            let rest = path.strip_prefix(a).ok()?;
            Some(a.canonicalize().ok()?.join(rest))
        })
        .unwrap_or_else(|| path.to_path_buf())
}

/// A directory of this user's own under the system's temporary directory (`$TMPDIR`, else
/// `/tmp`): `faber-db-<uid>`, mode 0700. Work files holding decrypted data go there, never beside
/// the encrypted backups, where a tool syncing the backup directory elsewhere could copy them.
/// Refused unless it is a real directory owned by this user and closed to others; work files
/// that killed runs left in it are removed.
pub fn private_temp_dir(backup_dir: &Path) -> Result<PathBuf> {
    // SAFETY: getuid() cannot fail and touches no memory.
    let uid = unsafe { libc::getuid() };
    // A relative or empty TMPDIR would put it under the current directory: /tmp then.
    let base = Some(std::env::temp_dir())
        .filter(|t| t.is_absolute())
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    if resolved(&base).starts_with(resolved(backup_dir)) {
        return Err(Error::config(format!(
            "TMPDIR {} is inside the backup directory, where decrypted work files must not go",
            base.display()
        ))
        .with_hint("set TMPDIR to a directory outside the backup directory"));
    }
    // Anyone may write to the parent: only with the sticky bit, so that no one else can swap
    // our directory for theirs.
    if let Ok(m) = fs::metadata(&base)
        && m.mode() & 0o002 != 0
        && m.mode() & 0o1000 == 0
    {
        return Err(Error::config(format!(
            "TMPDIR {} can be written by anyone and has no sticky bit",
            base.display()
        ))
        .with_hint("set TMPDIR to a directory of your own"));
    }
    let dir = base.join(format!("faber-db-{uid}"));
    match fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io(Kind::Config, "cannot create directory", &dir, e)),
    }
    let meta =
        fs::symlink_metadata(&dir).map_err(|e| Error::io(Kind::Config, "cannot read", &dir, e))?;
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o077 != 0 {
        return Err(Error::config(format!(
            "{} is not a private directory of this user (mode 0700, owned by uid {uid})",
            dir.display()
        ))
        .with_hint("remove it, or set TMPDIR to a directory of your own"));
    }
    remove_stale_partials_in(&dir, &|_| false, None);
    Ok(dir)
}

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

/// The lock file inside a [`PartialDir`]: held for as long as the directory is being written.
const DIR_LOCK: &str = ".faber-lock";
/// Where the dump tool writes inside a [`PartialDir`] (it wants an empty directory of its own).
const DIR_CONTENT: &str = "data";

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

/// Suffix of a backup's data being fetched from its off-site copy (`<file>.fetch.partial`): unlike
/// a backup's own `.partial`, one left by a killed run is never finished by a sweep, only removed —
/// its download may be incomplete.
pub const FETCH_SUFFIX: &str = ".fetch";

/// Removes the `.partial` file or directory at `path` if no run holds it. `true` when nothing is
/// left there.
pub fn remove_if_stale(path: &Path) -> bool {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => true,
        Err(_) => false,
        Ok(m) if m.is_dir() => remove_stale_partial_dir(path),
        Ok(_) => {
            File::open(path).is_ok_and(|f| f.try_lock().is_ok()) && fs::remove_file(path).is_ok()
        }
    }
}

/// Removes a backup's data: its file, or the directory of a directory-format dump (only a
/// directory named like one: `backup-….dir`). "Already gone" is success.
pub fn remove_backup_data(path: &Path) -> io::Result<bool> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => {
            let named_like_a_dump = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("backup-") && n.ends_with(".dir"));
            if !named_like_a_dump {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} is a directory, not a backup", path.display()),
                ));
            }
            fs::remove_dir_all(path)?;
            Ok(true)
        }
        Ok(_) => remove_if_exists(path),
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

/// Removes `.partial` files and directories under `dir` (one level of subdirectories deep) that no running
/// process holds a lock on. Returns the paths removed.
///
/// A backup killed after its registry entry was written but before its data got its final name
/// is finished instead: `registered(final_path)` says whether that is the case.
pub fn remove_stale_partials(dir: &Path, registered: &dyn Fn(&Path) -> bool) -> Vec<Swept> {
    let mut swept = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return swept;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            swept.extend(remove_stale_partials_in(&path, registered, None));
        }
    }
    swept.extend(remove_stale_partials_in(dir, registered, None));
    swept
}

/// Whether `dir` or its subdirectories hold anything a sweep could take: a `.partial` work file
/// or directory, or a private work name. A directory listing, nothing read.
pub fn has_leftovers(dir: &Path) -> bool {
    let names = |d: &Path| -> Vec<String> {
        fs::read_dir(d)
            .map(|e| {
                e.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let leftover = |name: &str| {
        is_private_work_name(name)
            || (name.ends_with(PARTIAL_SUFFIX)
                && WORK_FILE_PREFIXES.iter().any(|p| name.starts_with(p)))
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if leftover(&name) {
            return true;
        }
        if entry.file_type().is_ok_and(|t| t.is_dir())
            && names(&entry.path()).iter().any(|n| leftover(n))
        {
            return true;
        }
    }
    false
}

/// What a sweep did with one leftover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swept {
    pub path: PathBuf,
    /// Moved to its final name (its backup was registered), rather than removed.
    pub finished: bool,
}

/// `path` without its `.partial` suffix.
fn final_of(path: &Path) -> PathBuf {
    let s = path.to_string_lossy();
    PathBuf::from(s.strip_suffix(PARTIAL_SUFFIX).unwrap_or(&s).to_string())
}

/// [`remove_stale_partials`] in a directory faber-db does not own (`backup --output-dir`), of
/// backup `id` only: its `<id>.….partial` file or directory, nothing else there.
pub fn remove_stale_partials_of(
    dir: &Path,
    id: &str,
    registered: &dyn Fn(&Path) -> bool,
) -> Vec<Swept> {
    remove_stale_partials_in(dir, registered, Some(id))
}

/// The names of the entries of `dir` (none if it cannot be read).
pub fn file_names(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The sweep of one directory; with `only`, of that backup ID's `.partial` entries alone.
fn remove_stale_partials_in(
    dir: &Path,
    registered: &dyn Fn(&Path) -> bool,
    only: Option<&str>,
) -> Vec<Swept> {
    let mut removed = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return removed;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let gone = |path: PathBuf| Swept {
            path,
            finished: false,
        };
        if let Some(id) = only
            && !name
                .strip_prefix(id)
                .is_some_and(|rest| rest.starts_with('.'))
        {
            continue;
        }
        if only.is_none() && is_private_work_name(&name) {
            if remove_old_private(&entry) {
                removed.push(gone(path));
            }
            continue;
        }
        // Only names faber-db gives its own work files: never a user's file that happens to end
        // in `.partial`.
        let is_partial = name.ends_with(PARTIAL_SUFFIX)
            && WORK_FILE_PREFIXES.iter().any(|p| name.starts_with(p));
        if !is_partial {
            continue;
        }
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            if let Some(finished) = sweep_partial_dir(&path, registered) {
                removed.push(Swept { path, finished });
            }
            continue;
        }
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let Ok(f) = File::open(&path) else { continue };
        // Removed only if nobody holds it, and the name still names the file that was checked.
        if f.try_lock().is_err() || !same_file(&f, &path) {
            continue;
        }
        let final_path = final_of(&path);
        if registered(&final_path) && !final_path.exists() {
            if f.sync_all().is_ok() && fs::rename(&path, &final_path).is_ok() {
                let _ = sync_dir(dir);
                removed.push(Swept {
                    path: final_path,
                    finished: true,
                });
            }
            continue;
        }
        if fs::remove_file(&path).is_ok() {
            removed.push(gone(path));
        }
    }
    removed
}

/// How old a private work name must be before a sweep removes it: such names live for
/// milliseconds, so one this old was left by a killed run.
const PRIVATE_STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(600);

/// The names faber-db uses for a moment before a file gets its real name: `.faber-<pid>-<n>.new`
/// ([`PartialFile`]), `.faber-<pid>-<n>.new.d` ([`PartialDir`]) and `.<name>.<pid>.tmp`
/// ([`write_atomic`]).
fn is_private_work_name(name: &str) -> bool {
    let numbered = |middle: &str| {
        middle
            .split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
    };
    if let Some(rest) = name.strip_prefix(".faber-") {
        let middle = rest
            .strip_suffix(".new.d")
            .or_else(|| rest.strip_suffix(".new"));
        return middle.is_some_and(numbered);
    }
    name.starts_with('.')
        && name
            .strip_suffix(".tmp")
            .and_then(|stem| stem.rsplit_once('.'))
            .is_some_and(|(_, pid)| numbered(pid))
}

/// Removes a private work file or directory once it is old and nobody holds it.
fn remove_old_private(entry: &fs::DirEntry) -> bool {
    let old = entry
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > PRIVATE_STALE_AFTER);
    if !old {
        return false;
    }
    let path = entry.path();
    match entry.file_type() {
        Ok(t) if t.is_dir() => remove_stale_partial_dir(&path),
        Ok(t) if t.is_file() => {
            File::open(&path).is_ok_and(|f| f.try_lock().is_ok()) && fs::remove_file(&path).is_ok()
        }
        _ => false,
    }
}

/// A [`PartialDir`] nobody holds: its content is moved to the final name when its backup was
/// registered (`Some(true)`), else it is removed (`Some(false)`); `None` when it is in use.
fn sweep_partial_dir(path: &Path, registered: &dyn Fn(&Path) -> bool) -> Option<bool> {
    let lock = match File::open(path.join(DIR_LOCK)) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(_) => return None,
    };
    if lock.as_ref().is_some_and(|f| f.try_lock().is_err()) {
        return None;
    }
    let final_path = final_of(path);
    let content = path.join(DIR_CONTENT);
    if registered(&final_path) && !final_path.exists() && content.is_dir() {
        let moved = (|| -> io::Result<()> {
            fs::set_permissions(&content, fs::Permissions::from_mode(0o700))?;
            for entry in fs::read_dir(&content)? {
                let file = File::open(entry?.path())?;
                file.set_permissions(fs::Permissions::from_mode(0o600))?;
                file.sync_all()?;
            }
            fs::rename(&content, &final_path)?;
            if let Some(dir) = final_path.parent() {
                sync_dir(dir)?;
            }
            Ok(())
        })();
        if moved.is_ok() {
            let _ = fs::remove_dir_all(path);
            return Some(true);
        }
        return None;
    }
    fs::remove_dir_all(path).is_ok().then_some(false)
}

/// Removes a [`PartialDir`] nobody holds. One without its lock file is debris too: the lock file
/// is there from before the directory gets its name until after its content has moved out.
fn remove_stale_partial_dir(path: &Path) -> bool {
    let lock = match File::open(path.join(DIR_LOCK)) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(_) => return false,
    };
    if lock.as_ref().is_some_and(|f| f.try_lock().is_err()) {
        return false;
    }
    fs::remove_dir_all(path).is_ok()
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

/// `path` with every symbolic link along it followed, its target allowed not to exist yet (a
/// dangling link gives where it points). Fails on a loop of links.
pub fn follow_links(path: &Path) -> io::Result<PathBuf> {
    let mut current = std::path::absolute(path)?;
    for _ in 0..40 {
        let parent = current.parent().map(resolved).unwrap_or_default();
        let Some(name) = current.file_name() else {
            return Ok(current);
        };
        let here = parent.join(name);
        match fs::symlink_metadata(&here) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = fs::read_link(&here)?;
                current = if to.is_absolute() {
                    to
                } else {
                    parent.join(to)
                };
            }
            _ => return Ok(here),
        }
    }
    Err(io::Error::other(format!(
        "{}: too many levels of symbolic links",
        path.display()
    )))
}

/// Whether `path` (not followed if a link) names the file `f` has open.
pub fn same_file(f: &File, path: &Path) -> bool {
    let (Ok(held), Ok(named)) = (f.metadata(), fs::symlink_metadata(path)) else {
        return false;
    };
    held.ino() == named.ino() && held.dev() == named.dev()
}

/// Removes a file, treating "already gone" as success.
pub fn remove_if_exists(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_dirs_are_swept_only_when_nobody_holds_them() {
        let root = tempfile::tempdir().unwrap();
        let env = root.path().join("dev");
        create_private_dir(&env).unwrap();
        let final_path = env.join("backup-1.dir");
        let partial = PartialDir::create(&final_path).unwrap();
        fs::create_dir(partial.content()).unwrap();
        fs::write(partial.content().join("toc.dat"), b"toc").unwrap();
        // Held by a live writer: left alone.
        assert!(remove_stale_partials(root.path(), &|_| false).is_empty());
        assert!(partial.path().is_dir());
        // Left by a killed writer (the lock released, the directory still there): removed.
        let killed = env.join("backup-2.dir.partial");
        fs::create_dir_all(killed.join(DIR_CONTENT)).unwrap();
        File::create(killed.join(DIR_LOCK)).unwrap();
        let bare = env.join("backup-3.dir.partial");
        fs::create_dir(&bare).unwrap();
        let mut removed: Vec<PathBuf> = remove_stale_partials(root.path(), &|_| false)
            .into_iter()
            .map(|s| s.path)
            .collect();
        removed.sort();
        assert_eq!(removed, [killed, bare]);
        // A user's directory that merely ends in `.partial` is never touched.
        let users = env.join("photos.partial");
        fs::create_dir(&users).unwrap();
        assert!(remove_stale_partials(root.path(), &|_| false).is_empty());

        partial.persist(&final_path).unwrap();
        assert_eq!(fs::read(final_path.join("toc.dat")).unwrap(), b"toc");
        assert_eq!(mode(&final_path.join("toc.dat")), 0o600);
        assert!(!partial_path(&final_path).exists());
        // Dropped unpersisted: gone.
        let other = env.join("backup-4.dir");
        let partial = PartialDir::create(&other).unwrap();
        let path = partial.path().to_path_buf();
        drop(partial);
        assert!(!path.exists());
    }

    #[test]
    fn old_private_work_names_are_swept_and_nothing_else() {
        for name in [
            ".faber-12-0.new",
            ".faber-12-3.new.d",
            ".backups.json.4242.tmp",
        ] {
            assert!(is_private_work_name(name), "{name}");
        }
        for name in [
            ".faber-x.new",
            ".faber-12-0.newer",
            "notes.tmp",
            ".env.tmp",
            "backups.json",
        ] {
            assert!(!is_private_work_name(name), "{name}");
        }
        let root = tempfile::tempdir().unwrap();
        let env = root.path().join("dev");
        create_private_dir(&env).unwrap();
        let fresh = env.join(".faber-1-0.new");
        let old = env.join(".backup-1.manifest.json.77.tmp");
        let old_dir = env.join(".faber-1-1.new.d");
        fs::write(&fresh, b"").unwrap();
        fs::write(&old, b"").unwrap();
        fs::create_dir(&old_dir).unwrap();
        let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for p in [&old, &old_dir] {
            File::open(p).unwrap().set_modified(long_ago).unwrap();
        }
        let mut removed: Vec<PathBuf> = remove_stale_partials(root.path(), &|_| false)
            .into_iter()
            .map(|s| s.path)
            .collect();
        removed.sort();
        assert_eq!(removed, [old, old_dir]);
        assert!(fresh.exists(), "a fresh one may belong to a running backup");
    }

    #[test]
    fn links_are_followed_to_where_they_lead_and_loops_fail() {
        let root = tempfile::tempdir().unwrap();
        let real = root.path().join("data/real.db");
        fs::create_dir_all(real.parent().unwrap()).unwrap();
        fs::create_dir(root.path().join("db")).unwrap();
        std::os::unix::fs::symlink("../data/real.db", root.path().join("db/app.db")).unwrap();
        std::os::unix::fs::symlink("app.db", root.path().join("db/alias.db")).unwrap();
        let canon = root.path().canonicalize().unwrap();
        // Dangling (the database does not exist yet) and then existing: the same answer.
        for _ in 0..2 {
            assert_eq!(
                follow_links(&root.path().join("db/alias.db")).unwrap(),
                canon.join("data/real.db")
            );
            fs::write(&real, b"x").unwrap();
        }
        std::os::unix::fs::symlink("loop-b", root.path().join("loop-a")).unwrap();
        std::os::unix::fs::symlink("loop-a", root.path().join("loop-b")).unwrap();
        assert!(follow_links(&root.path().join("loop-a")).is_err());
    }

    #[test]
    fn only_directories_named_like_dumps_are_removed_as_backup_data() {
        let root = tempfile::tempdir().unwrap();
        let dump = root.path().join("backup-1.dir");
        fs::create_dir(&dump).unwrap();
        fs::write(dump.join("toc.dat"), b"x").unwrap();
        assert!(remove_backup_data(&dump).unwrap());
        assert!(!dump.exists());
        assert!(!remove_backup_data(&dump).unwrap());
        let other = root.path().join("src");
        fs::create_dir(&other).unwrap();
        assert!(remove_backup_data(&other).is_err());
        assert!(other.exists());
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }
}
