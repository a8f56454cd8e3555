//! Off-site copies kept in a local directory: each object a file at its key below the root
//! (a mounted disk, say). No config names it yet; the engine's tests run against it.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::storage::{Object, Storage, Stored};
use crate::error::{Error, Kind, Result};
use crate::fsutil::{self, PartialFile};

/// Files are copied this much at a time.
const COPY_SIZE: usize = 1 << 20;

/// A directory that keeps objects as files: object `dev/x` below prefix `p` is `ROOT/p/dev/x`.
#[derive(Debug, Clone)]
pub struct Directory {
    root: PathBuf,
    prefix: String,
}

impl Directory {
    /// The objects below `prefix` (`/`-separated, without leading or trailing `/`; may be
    /// empty) in the directory `root`, which must be absolute.
    pub fn new(root: impl Into<PathBuf>, prefix: &str) -> Directory {
        Directory {
            root: root.into(),
            prefix: prefix.trim_matches('/').to_string(),
        }
    }

    /// The key of `name` from the root: `/`-rooted names as they are, others below the prefix.
    fn key(&self, name: &str) -> String {
        if let Some(full) = name.strip_prefix('/') {
            full.to_string()
        } else if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    /// The file of object `name`; a name that would lead out of the root is refused.
    fn path(&self, name: &str) -> Result<PathBuf> {
        let key = self.key(name);
        if key
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(Error::config(format!(
                "`{}` is not an off-site object name",
                crate::ids::shorten(name)
            )));
        }
        Ok(self.root.join(key))
    }

    /// The error for object `name`'s file at `path`: a missing object is a verdict on the copy.
    fn failed(&self, what: &'static str, name: &str, path: &Path, e: io::Error) -> Error {
        if e.kind() == io::ErrorKind::NotFound {
            Error::verification(format!(
                "the off-site object {} does not exist",
                self.url(name)
            ))
            .with_hint("it was removed from the off-site directory; use another backup")
        } else {
            Error::io(Kind::Tool, what, path, e)
        }
    }
}

impl Storage for Directory {
    fn base_url(&self) -> String {
        let root = self.root_url();
        if self.prefix.is_empty() {
            root.trim_end_matches('/').to_string()
        } else {
            format!("{root}{}", self.prefix)
        }
    }

    fn root_url(&self) -> String {
        format!("file://{}/", self.root.display())
    }

    fn prefix(&self) -> &str {
        &self.prefix
    }

    fn url(&self, name: &str) -> String {
        format!("{}{}", self.root_url(), self.key(name))
    }

    fn put_file(&self, name: &str, path: &Path) -> Result<Stored> {
        let target = self.path(name)?;
        if let Some(parent) = target.parent() {
            fsutil::create_private_dir(parent)?;
        }
        let mut source =
            File::open(path).map_err(|e| Error::io(Kind::Tool, "cannot read", path, e))?;
        let partial = PartialFile::create(&target)
            .map_err(|e| Error::io(Kind::Tool, "cannot create", &target, e))?;
        let (size_bytes, sha256) =
            copy_hashed(&mut source, partial.file()).map_err(|e| match e {
                Copy::Read(e) => Error::io(Kind::Tool, "cannot read", path, e),
                Copy::Write(e) => Error::io(Kind::Tool, "cannot write", partial.path(), e),
            })?;
        partial
            .persist(&target)
            .map_err(|e| Error::io(Kind::Tool, "cannot write", &target, e))?;
        Ok(Stored { size_bytes, sha256 })
    }

    fn get_file(&self, name: &str, file: &File, path: &Path) -> Result<String> {
        let source = self.path(name)?;
        let mut from =
            File::open(&source).map_err(|e| self.failed("cannot read", name, &source, e))?;
        let (_, sha256) = copy_hashed(&mut from, file).map_err(|e| match e {
            Copy::Read(e) => Error::io(Kind::Tool, "cannot read", &source, e),
            Copy::Write(e) => Error::io(Kind::Tool, "cannot write", path, e),
        })?;
        Ok(sha256)
    }

    fn get(&self, name: &str) -> Result<Vec<u8>> {
        let path = self.path(name)?;
        fs::read(&path).map_err(|e| self.failed("cannot read", name, &path, e))
    }

    fn delete(&self, name: &str) -> Result<()> {
        let path = self.path(name)?;
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(Error::io(Kind::Tool, "cannot remove", &path, e))
            }
            _ => Ok(()),
        }
    }

    fn list(&self) -> Result<Vec<Object>> {
        let below = if self.prefix.is_empty() {
            self.root.clone()
        } else {
            self.root.join(&self.prefix)
        };
        let mut objects = Vec::new();
        walk(&below, "", &mut objects)?;
        objects.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(objects)
    }
}

/// The files below `dir` as objects named `NAME/…`, but those still being written.
fn walk(dir: &Path, name: &str, out: &mut Vec<Object>) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(Kind::Tool, "cannot read", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(Kind::Tool, "cannot read", dir, e))?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let child = if name.is_empty() {
            file_name.clone()
        } else {
            format!("{name}/{file_name}")
        };
        let path = entry.path();
        let meta = fs::symlink_metadata(&path)
            .map_err(|e| Error::io(Kind::Tool, "cannot read", &path, e))?;
        if meta.is_dir() {
            walk(&path, &child, out)?;
        } else if meta.is_file() && !in_progress(&file_name) {
            out.push(Object {
                name: child,
                size_bytes: meta.len(),
                last_modified: meta.modified().map_or_else(|_| Utc::now(), DateTime::from),
            });
        }
    }
    Ok(())
}

/// Whether a file below the root is an object still being written (`….partial`, or the
/// private name it is created under).
fn in_progress(file_name: &str) -> bool {
    file_name.starts_with('.') || file_name.ends_with(".partial")
}

/// Which side of a copy failed.
enum Copy {
    Read(io::Error),
    Write(io::Error),
}

/// Copies `from` into `to`, hashing as it goes; the bytes copied and their SHA-256.
fn copy_hashed(from: &mut File, mut to: &File) -> std::result::Result<(u64, String), Copy> {
    let mut hasher = Sha256::new();
    let mut copied = 0u64;
    let mut buf = vec![0u8; COPY_SIZE];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Copy::Read(e)),
        };
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n]).map_err(Copy::Write)?;
        copied += n as u64;
    }
    Ok((copied, hex::encode(hasher.finalize())))
}
