//! The locks: the registry's, held while it changes, and one per environment, held by a
//! restore, rollback or migrate of its database.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{REGISTRY_FILE, Store};
use crate::error::{Error, Hint, Kind, Remedy, Result};
use crate::fsutil;

/// How long a registry change waits for another run's change to finish.
const LOCK_WAIT: Duration = Duration::from_secs(60);

/// Why a lock file could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it, and went on holding it for as long as this one would wait.
    #[error("{} is held by another process", .0.display())]
    Held(PathBuf),
    /// The lock file (or its directory) could not be opened or made.
    #[error("cannot open the lock file {}", .path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The operating system refused the lock itself.
    #[error("cannot lock {}", .path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The lock file's directory could not be made.
    #[error(transparent)]
    Dir(Error),
}

impl From<LockError> for Error {
    /// A lock that could not be taken for a reason other than another run holding it: a
    /// configuration error (exit 1) naming the file, with the system's error as its cause. The
    /// callers say what a held lock means.
    fn from(e: LockError) -> Error {
        match e {
            LockError::Held(path) => Error::new(
                Kind::Busy,
                format!("another faber-db run holds {}", path.display()),
            ),
            LockError::Open { path, source } => {
                Error::io(Kind::Config, "cannot open the lock file", &path, source)
            }
            LockError::Lock { path, source } => {
                Error::io(Kind::Config, "cannot lock", &path, source)
            }
            LockError::Dir(e) => e,
        }
    }
}

/// Opens and exclusively locks `path`, waiting up to `wait`.
fn lock_file(path: &Path, wait: Duration) -> std::result::Result<File, LockError> {
    if let Some(dir) = path.parent() {
        fsutil::create_private_dir(dir).map_err(LockError::Dir)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| LockError::Open {
            path: path.to_path_buf(),
            source,
        })?;
    let started = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(fs::TryLockError::WouldBlock) if started.elapsed() < wait => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(fs::TryLockError::WouldBlock) => return Err(LockError::Held(path.to_path_buf())),
            Err(fs::TryLockError::Error(source)) => {
                return Err(LockError::Lock {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
}

/// Held while the registry may be changed; released on drop (and by the OS if the process dies).
pub struct RegistryLock {
    file: File,
}

impl RegistryLock {
    /// The locked file's descriptor, for a child that is to hold the lock as long as it lives.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.file)
    }
}

impl Store {
    /// Takes the exclusive registry lock, waiting for another run's change to finish.
    pub fn lock(&self) -> Result<RegistryLock> {
        let path = self.dir.join(format!("{REGISTRY_FILE}.lock"));
        let file = lock_file(&path, LOCK_WAIT).map_err(|e| match e {
            LockError::Held(_) => {
                Error::new(Kind::Busy, "another faber-db run holds the registry lock").with_hint(
                    format!("wait for it to finish; the lock is {}", path.display()),
                )
            }
            e => e.into(),
        })?;
        Ok(RegistryLock { file })
    }

    /// Takes the lock of `env`'s database for a restore, rollback or migrate: one at a time per
    /// environment. Without `wait`, a second one fails at once (exit 7); with it, it waits that
    /// long. The lock is the operating system's: it dies with the process holding it.
    pub fn env_lock(&self, env: &str, what: &str, wait: Option<Duration>) -> Result<RegistryLock> {
        let path = self.dir.join(format!("{env}.lock"));
        let file = lock_file(&path, wait.unwrap_or(Duration::ZERO)).map_err(|e| match e {
            LockError::Held(_) => Error::new(
                Kind::Busy,
                format!("another restore, rollback or migrate of `{env}` is running; the {what} did not start"),
            )
            .with_hint(busy_hint(&path)),
            e => e.into(),
        })?;
        Ok(RegistryLock { file })
    }
}

/// What to do about an environment's lock held by another process: wait — or, when what holds it
/// is not faber-db (a migration tool a killed faber-db left running: its processes inherit the
/// lock), which processes those are.
fn busy_hint(lock: &Path) -> Hint {
    let strangers: Vec<(u32, String)> = holders(lock)
        .into_iter()
        .filter(|(_, name)| name != "faber-db")
        .collect();
    if strangers.is_empty() {
        return "wait for it to finish, or pass --wait 10m to wait for it".into();
    }
    Remedy::StopStrayMigration { holders: strangers }.into()
}

/// The processes other than this one that hold `path` open, with their program names (never
/// their arguments: a migration tool's may hold a password). Linux, best effort: processes of
/// other users are not seen.
fn holders(path: &Path) -> Vec<(u32, String)> {
    let Ok(target) = fs::canonicalize(path) else {
        return Vec::new();
    };
    let me = std::process::id();
    let Ok(procs) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for proc in procs.flatten() {
        let Some(pid) = proc
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = fs::read_dir(proc.path().join("fd")) else {
            continue;
        };
        if fds
            .flatten()
            .any(|fd| fs::read_link(fd.path()).is_ok_and(|l| l == target))
        {
            let name = fs::read_to_string(proc.path().join("comm"))
                .map_or_else(|_| "?".to_string(), |n| n.trim().to_string());
            out.push((pid, name));
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn a_held_lock_is_held_and_a_lock_file_that_cannot_open_keeps_its_cause() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev.lock");
        let held = lock_file(&path, Duration::ZERO).unwrap();
        match lock_file(&path, Duration::from_millis(50)) {
            Err(LockError::Held(p)) => assert_eq!(p, path),
            other => panic!("expected Held, got {other:?}"),
        }
        drop(held);
        assert!(lock_file(&path, Duration::ZERO).is_ok(), "released on drop");

        // A directory where the lock file should be: it cannot be opened for writing.
        let blocked = dir.path().join("prod.lock");
        fs::create_dir(&blocked).unwrap();
        let e = lock_file(&blocked, Duration::ZERO).unwrap_err();
        assert!(matches!(e, LockError::Open { .. }), "{e:?}");
        let source = e.source().expect("the system's error is kept");
        assert!(source.downcast_ref::<io::Error>().is_some());
        let err = Error::from(e);
        assert_eq!(err.kind(), Kind::Config);
        assert!(
            err.message().starts_with("cannot open the lock file "),
            "{err:?}"
        );
        assert!(
            err.source().is_some(),
            "the cause survives into the command's error"
        );
    }
}
