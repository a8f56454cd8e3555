//! Removing backups: which ones a cleanup removes ([`select`], by the pure rules of
//! [`crate::keep`]), then, once the command has asked what it must, removing them ([`remove`],
//! `remove.rs`: chosen again under the registry lock, only what was confirmed); and removing one
//! backup by ID ([`prepare_delete`], [`delete`], `delete.rs`). Each goes through
//! [`crate::removal`], so that a kill or a full disk midway loses nothing and leaves nothing
//! behind.

mod delete;
mod remove;

#[cfg(test)]
mod tests;

use crate::error::{Error, Remedy, Result};
use crate::keep::{self, Kept, Removal, Rule, Selection};
use crate::session::Session;

pub use delete::{Deleted, delete, prepare_delete};
pub use remove::remove;

/// Which backups a cleanup removes.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Only this environment's backups (every environment's when `None`).
    pub env: Option<&'a str>,
    pub rule: Rule,
}

/// What a cleanup did.
#[derive(Debug, Default)]
pub struct Cleaned {
    /// The backups it kept, with why: by the rule, or left by the removal.
    pub kept: Vec<Kept>,
    /// The backups it removed.
    pub removed: Vec<Removal>,
    /// The bytes the removed backups whose files all went took.
    pub freed_bytes: u64,
    /// Files or off-site copies left behind, or a backup whose removal was refused.
    pub failure: Option<Error>,
}

/// What a cleanup by `request` would keep and remove now: what a dry run shows and a protected
/// environment's confirmation names.
pub fn select(session: &Session, request: Request<'_>) -> Result<Selection> {
    if let Some(env) = request.env {
        session.env(env)?;
    }
    let reg = session.store.load()?;
    Ok(keep::select(
        &reg,
        request.env,
        request.rule,
        session.ctx.now,
    ))
}

/// Removes the off-site copies earlier removals could not take (a cron job's cleanup is what
/// finishes them); what could not be removed this time either.
pub fn finish_pending(session: &Session) -> Vec<String> {
    crate::offsite::finish_pending_removals(session)
}

/// The failure to report when removed backups left files or off-site copies behind.
pub fn left_behind(problems: &[String]) -> Option<Error> {
    (!problems.is_empty()).then(|| {
        Error::config(format!(
            "some files could not be removed: {}",
            problems.join("; ")
        ))
        .with_hint(Remedy::CleanupLeftFiles)
    })
}

/// A backup the selection would have removed, kept for `reason`.
fn kept_for(r: &Removal, reason: keep::Reason) -> Kept {
    Kept {
        id: r.id.clone(),
        environment: r.environment.clone(),
        timestamp: r.timestamp,
        size_bytes: r.size_bytes,
        status: r.status,
        reasons: vec![reason],
    }
}

/// Why a backup is kept, as a list: `last 1, newest valid`.
pub fn reasons(k: &Kept) -> String {
    k.reasons
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
