//! The backup engine driven as library calls on the test kit's project (`ops::testkit`): an SQLite
//! database, a context whose clock is fixed and whose reports go to a recorder, and no binary.
//! `taken.rs` has the backups that work, `refused.rs` the ones that fail and what they leave.

mod refused;
mod taken;

use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::Duration;

use super::*;
use crate::error::{Hint, Kind, Remedy};
pub(super) use crate::ops::testkit::{CONFIG, Project, Twist, Twisted, at};
use crate::provider::{DumpTo, Dumped, Provider, ProviderKind};

/// A backup as `faber-db backup` asks for one (SQLite: the quick check).
fn request(env: &Environment) -> Request {
    Request {
        label: None,
        reason: Some("test".into()),
        full_check: false,
        ..Request::automatic(env, "unused")
    }
}

/// The SHA-256 and size of the file at `path`.
fn hashed(path: &Path) -> (String, u64) {
    crate::pipeline::hash_file(fs::File::open(path).unwrap()).unwrap()
}
