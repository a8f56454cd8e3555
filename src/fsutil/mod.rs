//! Crash-safe file handling: private modes, atomic replacement, and locked `.partial` files.
//!
//! The `.partial` files and directories of work under way are in `partial`; the sweep that
//! removes (or finishes) what killed runs left behind is in `sweep`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Hint, Kind, Result};

mod partial;
mod sweep;

pub use partial::{
    CLAIM_SUFFIX, FETCH_SUFFIX, PARTIAL_SUFFIX, PartialDir, PartialFile, fetching_path,
    partial_path,
};
pub use sweep::{
    Swept, WORK_FILE_PREFIXES, has_leftovers, remove_if_stale, remove_stale_partials,
    remove_stale_partials_of,
};

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
    sweep::remove_stale_partials_in(&dir, &|_| false, None);
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

/// Fails with exit 2 unless `dir`'s filesystem has `needed` bytes free; `what` says what for,
/// `hint` what to do.
pub fn ensure_free_space(dir: &Path, needed: u64, what: &str, hint: impl Into<Hint>) -> Result<()> {
    let free = fs4::available_space(dir)
        .map_err(|e| Error::io(Kind::Config, "cannot read free space of", dir, e))?;
    if free < needed {
        return Err(Error::new(
            Kind::DiskSpace,
            format!(
                "not enough free space in {} {what}: {} free, about {} needed",
                dir.display(),
                crate::human::size(free),
                crate::human::size(needed)
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
}
