//! What the off-site engine needs of a place that keeps objects: store a file, stream one back,
//! read a small one whole, delete, list. Objects are named below the configured prefix
//! (`dev/backup-….sql.zst`), or from the storage's root when the name starts with `/` (an
//! object put there under an earlier prefix).

use std::fs::File;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::error::Result;

/// A place off-site copies are kept: the S3-compatible bucket of `[storage.offsite]`
/// ([`super::Bucket`]), or a local directory ([`super::Directory`]).
///
/// An object that is not there is an error of kind `Verification` ("the off-site object …
/// does not exist"): the engine reads that as a verdict on the copy. Any other failure (the
/// network, the credentials, the local disk) is of another kind.
pub trait Storage {
    /// The storage as configured (`s3://bucket/prefix`): what messages name.
    fn base_url(&self) -> String;

    /// Where its credentials come from, said without a secret (`profile ci of …`); `None` for
    /// a storage that needs none.
    fn credentials(&self) -> Option<String> {
        None
    }

    /// Where every object URL of this storage starts, before the object's key from the root
    /// (`s3://bucket/`).
    fn root_url(&self) -> String;

    /// The prefix names are below, without leading or trailing `/`; empty for none.
    fn prefix(&self) -> &str;

    /// The URL of object `name` (`s3://bucket/prefix/name`).
    fn url(&self, name: &str) -> String;

    /// Stores the file at `path` as object `name`, streamed; what was read and stored. The
    /// bytes are hashed as they are read, so that the SHA-256 is the one of what was sent.
    fn put_file(&self, name: &str, path: &Path) -> Result<Stored>;

    /// Streams object `name` into `file` (at `path`, for messages); the SHA-256 of what was
    /// written.
    fn get_file(&self, name: &str, file: &File, path: &Path) -> Result<String>;

    /// The whole of object `name` (a manifest).
    fn get(&self, name: &str) -> Result<Vec<u8>>;

    /// Removes object `name`; one already gone is not an error.
    fn delete(&self, name: &str) -> Result<()>;

    /// Every object below the prefix, names relative to it, sorted.
    fn list(&self) -> Result<Vec<Object>>;

    /// Removes objects `names`, in order, up to the first failure.
    fn delete_all(&self, names: &[String]) -> Result<()> {
        names.iter().try_for_each(|name| self.delete(name))
    }
}

/// What storing a file stored.
#[derive(Debug, Clone)]
pub struct Stored {
    pub size_bytes: u64,
    pub sha256: String,
}

/// One object of the storage, as `list --remote` shows it.
#[derive(Debug, Clone)]
pub struct Object {
    /// The key below the configured prefix (`dev/backup-….sql.zst`).
    pub name: String,
    pub size_bytes: u64,
    pub last_modified: DateTime<Utc>,
}
