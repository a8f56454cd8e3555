//! Removing one backup by ID: file, manifest, registry entry, off-site copy.

use crate::error::{Error, Remedy, Result};
use crate::ids;
use crate::registry::{BackupRecord, RegistryFile};
use crate::removal;
use crate::session::Session;

/// What a delete did.
#[derive(Debug)]
pub struct Deleted {
    /// The backup removed, as its entry was when it went.
    pub record: BackupRecord,
    /// Files or an off-site copy of it left behind (its tombstone keeps them for the next run).
    pub failure: Option<Error>,
}

/// The backup `id`, if it may be removed: an entry naming a file where faber-db keeps no
/// backups is refused before anything is asked (nothing of it is touched), and so is the last
/// valid backup of an environment unless `force`.
pub fn prepare_delete(session: &Session, id: &str, force: bool) -> Result<BackupRecord> {
    ids::validate_id(id)?;
    let reg = session.store.load()?;
    let record = crate::ops::verify::find(&reg, id)?.clone();
    session.store.locate(&record)?;
    // Checked before asking, and again under the lock: two deletes at once must not remove both
    // of the last two valid backups.
    guard_last_valid(&reg, &record, force)?;
    Ok(record)
}

/// Removes `record` (what [`prepare_delete`] gave, once confirmed), finishing first the off-site
/// removals earlier runs left.
pub fn delete(session: &Session, record: &BackupRecord, force: bool) -> Result<Deleted> {
    let mut problems = crate::offsite::finish_pending_removals(session);
    let outcome = removal::remove(&session.store, |reg| {
        let current = crate::ops::verify::find(reg, &record.id)?.clone();
        guard_last_valid(reg, &current, force)?;
        Ok(vec![current.id])
    })?;
    if let Some((_, _, e)) = outcome.kept.into_iter().next() {
        return Err(e);
    }
    let Some(removed) = outcome.removed.into_iter().next() else {
        return Err(Error::config(format!(
            "{} was removed by another run",
            record.id
        )));
    };
    problems.extend(outcome.problems.into_iter().map(|(_, p)| p));
    problems.extend(crate::offsite::remove_copy(session, removed.offsite));
    let record = removed.record;
    crate::audit::log_event(
        session,
        "delete",
        Some(&record.environment),
        Some(&record.id),
        problems.is_empty(),
        None,
    );
    let failure = (!problems.is_empty()).then(|| {
        Error::config(format!(
            "the entry is gone but not everything of it could be removed: {}",
            problems.join("; ")
        ))
        .with_hint(Remedy::DeleteLeftFiles)
    });
    Ok(Deleted { record, failure })
}

fn guard_last_valid(reg: &RegistryFile, record: &BackupRecord, force: bool) -> Result<()> {
    let valid_in_env = reg
        .newest_first(Some(&record.environment))
        .iter()
        .filter(|b| b.is_restorable())
        .count();
    let last_valid = record.is_restorable() && valid_in_env == 1;
    if last_valid && !force {
        return Err(Error::config(format!(
            "{} is the only valid backup of `{}`",
            record.id, record.environment
        ))
        .with_hint("take another backup first, or pass --force to remove it anyway"));
    }
    Ok(())
}
