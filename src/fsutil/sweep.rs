//! The sweep: what runs that were killed left behind — `.partial` work nobody holds, private
//! work names — removed, or finished when its backup was registered.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::partial::{DIR_CONTENT, DIR_LOCK};
use super::{PARTIAL_SUFFIX, same_file, sync_dir};

/// How the names of faber-db's own work files begin: backups, SQLite snapshots, verify scratch.
pub const WORK_FILE_PREFIXES: [&str; 4] = ["backup-", "snapshot-", "verify-", "restore-"];

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

/// The sweep of one directory; with `only`, of that backup ID's `.partial` entries alone.
pub(super) fn remove_stale_partials_in(
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
/// ([`PartialFile`](super::PartialFile)), `.faber-<pid>-<n>.new.d`
/// ([`PartialDir`](super::PartialDir)) and `.<name>.<pid>.tmp`
/// ([`write_atomic`](super::write_atomic)).
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

/// A [`PartialDir`](super::PartialDir) nobody holds: its content is moved to the final name when its backup was
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

/// Removes a [`PartialDir`](super::PartialDir) nobody holds. One without its lock file is debris
/// too: the lock file is there from before the directory gets its name until after its content
/// has moved out.
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

#[cfg(test)]
mod tests {
    use super::super::{PartialDir, create_private_dir, partial_path};
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

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }
}
