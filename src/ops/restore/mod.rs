//! Restoring a backup into an environment's database: the backup chosen ([`choose`]), what would
//! be done shown ([`preview`], [`preflight`]), and then, once the command has asked what it must,
//! done ([`apply`]): the backup fetched if missing and its checksum checked (`checksum.rs`), the
//! safety backup taken (`safety.rs`), the backup staged and swapped in (`stage.rs`, `swap.rs`)
//! or loaded in place (`in_place.rs`), and the result compared with the manifest
//! (`compare.rs`). `restore`, `rollback` and `migrate` (after a failed migration) all restore
//! through here.

mod apply;
mod checksum;
mod choose;
mod compare;
mod in_place;
mod into;
mod preflight;
mod preview;
mod safety;
mod stage;
mod swap;
mod tables;
mod verdict;
mod workfile;

#[cfg(test)]
mod tests;

use crate::config::Environment;
use crate::error::{Error, Hint, Remedy, Result};
use crate::provider::method::MethodChoice;
use crate::provider::{Inspection, Provider};
use crate::registry::BackupRecord;
use crate::session::Session;

pub use choose::{check_kind, choose, warn_mismatch};
pub use into::{Made, into, target_name};
pub use preflight::{Refused, preflight};
pub use preview::{Preview, SafetyPlan, preview};
pub use stage::{default_jobs, open_verified};
pub use tables::{Put, put_back, select};

/// How [`apply`] goes about a restore.
#[derive(Debug, Clone)]
pub struct Request {
    /// The audit event: `restore`, `rollback`.
    pub event: &'static str,
    /// The reason of the safety backup to take first, or `None` for none.
    pub safety_reason: Option<&'static str>,
    pub terminate_connections: bool,
    /// Parallel restore jobs; `None` for one per core where the format allows.
    pub jobs: Option<u32>,
    /// Restore in place even when a swap is possible (`--in-place`).
    pub in_place: bool,
    /// The method the preview chose, when there was one: not read from the server again.
    pub method: Option<MethodChoice>,
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    /// The safety backup taken of what was replaced.
    pub safety: Option<String>,
    /// The database as it is now.
    pub inspection: Inspection,
    /// Row counts that differ from the backup's manifest.
    pub diffs: Vec<String>,
    /// The backup was marked `mismatch` and named all the same: its counts were known to differ.
    pub mismatch_known: bool,
    /// How the database's content was replaced.
    pub method: MethodChoice,
    /// Tables of other roles an in-place restore kept (not the backup's, not compared).
    pub kept: Vec<String>,
}

impl Restored {
    /// The failure to report when the restored data differs from the manifest (unless the
    /// backup was known to, and named anyway).
    pub fn failure(&self, env: &Environment) -> Option<Error> {
        differs(
            "the restored database differs",
            &self.diffs,
            self.mismatch_known,
            || match &self.safety {
                Some(s) => Hint::from(Remedy::UndoRestore {
                    env: env.name.clone(),
                    safety: s.clone(),
                }),
                None => Hint::from("the data was replaced; check it before relying on it"),
            },
        )
    }
}

/// The failure of a restore whose result differs from the manifest by `diffs` (`what` says
/// which, with its verb: `the restored tables differ`), with
/// `hint` — none when it does not, or when the backup was known to differ and named anyway.
fn differs(
    what: &str,
    diffs: &[String],
    mismatch_known: bool,
    hint: impl FnOnce() -> Hint,
) -> Option<Error> {
    if diffs.is_empty() || mismatch_known {
        return None;
    }
    Some(
        Error::verification(format!("{what} from the manifest: {}", diffs.join(", ")))
            .with_hint(hint()),
    )
}

/// Restores `record` into `env`'s database: checksum, stage and check, safety backup, commit,
/// then the row counts compared with the manifest. Confirmation is the caller's.
pub fn apply(
    session: &Session,
    env: &Environment,
    db: &dyn Provider,
    record: &BackupRecord,
    request: &Request,
) -> Result<Restored> {
    let _signals = crate::interrupt::guard();
    let run = apply::Run {
        session,
        env,
        db,
        record,
        request,
        started: std::time::Instant::now(),
        committing: std::cell::Cell::new(false),
    };
    run.apply().map_err(|e| {
        if crate::interrupt::happened() && !run.committing.get() {
            Error::aborted(format!(
                "interrupted: the {} was stopped before it changed the database",
                request.event
            ))
            .caused_by(e.one_line())
            .with_hint("run it again when ready")
        } else {
            e
        }
    })
}

/// The audit event written just before a restore or rollback changes the database.
pub fn commit_event(event: &'static str) -> &'static str {
    match event {
        "rollback" => "rollback-started",
        "restore-tables" => "restore-tables-started",
        _ => "restore-started",
    }
}

/// What the audit log says of a restore whose safety backup comes after the swap, when the swap
/// begins (and `status` repeats if the run is killed).
pub const REPLACED_SET_ASIDE: &str =
    "the data it replaces is set aside at the swap for its safety backup (see `faber-db doctor`)";
