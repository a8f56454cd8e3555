//! Off-site copies of backups (`[storage.offsite]`): the engine that copies backups there
//! ([`push()`], [`after_backup`]), registers the ones found only there ([`pull()`]), brings
//! their data back ([`fetch_if_missing`], [`refetch_damaged`]) and removes the copies of
//! backups removed here ([`remove_copies`]) — written against the [`Storage`] trait, which
//! [`Bucket`] implements (an S3-compatible bucket or an Azure Blob container), and a local
//! [`Directory`] too.
//!
//! Object names mirror the backup directory: `PREFIX/ENV/FILE` for the data file,
//! `PREFIX/ENV/ID.manifest.json` for its manifest, and `PREFIX/ENV/DIR/NAME` for each file of
//! a directory dump.
//!
//! Nothing here prints: progress and warnings go through [`Session::events`], results come
//! back as values for the command that asked.

mod aws_config;
mod aws_sso;
mod azure;
mod bucket;
mod credentials;
mod directory;
mod fetch;
mod names;
mod pull;
mod push;
mod removals;
mod s3;
mod storage;

pub use bucket::Bucket;
pub use directory::Directory;
pub use fetch::{FetchOutcome, fetch_if_missing, fetch_missing, refetch_damaged};
pub use names::{data_name, manifest_name, object_names};
pub use pull::{PullOutcome, pull};
pub use push::{Failed, PushOutcome, PushRequest, Pushed, after_backup, push};
pub use removals::{finish_pending_removals, remove_copies, remove_copy};
pub use storage::{Object, Storage, Stored};

use crate::config::{Backend, Offsite};
use crate::error::{Error, Result};
use crate::session::Session;

/// The `[storage.offsite]` config, or the error that says how to add it.
pub fn configured<'a>(session: &'a Session) -> Result<&'a Offsite> {
    session.config.offsite.as_ref().ok_or_else(|| {
        Error::config("no off-site storage is configured").with_hint(
            "add [storage.offsite] with url = \"s3://bucket/prefix\" to the config \
             (see docs/configuration.md)",
        )
    })
}

/// The configured storage, with the session's credentials. Nothing is sent yet.
pub fn open(session: &Session) -> Result<Box<dyn Storage>> {
    configured(session).and_then(|config| open_config(config, &session.vars))
}

/// The storage `config` names: the bucket or container, with credentials from `vars`, or the
/// directory, which must exist — a mount point's own directory is not created, so that an
/// unmounted share is an error, not a copy on the local disk.
pub fn open_config(config: &Offsite, vars: &crate::vars::Vars) -> Result<Box<dyn Storage>> {
    let Backend::Directory(dir) = &config.backend else {
        return Ok(Box::new(Bucket::open(config, vars)?));
    };
    if !dir.is_dir() {
        return Err(Error::config(format!(
            "the off-site directory {} does not exist",
            dir.display()
        ))
        .with_hint("mount the share it is on (or create the directory), then run again"));
    }
    Ok(Box::new(Directory::new(dir.clone(), "")))
}

#[cfg(test)]
mod tests;
