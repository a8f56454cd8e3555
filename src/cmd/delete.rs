//! `faber-db delete ID`: removes one backup — file, manifest, registry entry, off-site copy —
//! through [`crate::removal`], so that a kill or a full disk midway loses nothing and leaves
//! nothing behind.

use clap::Args;

use crate::Report;
use crate::cmd::{self, verify};
use crate::confirm::{self, Ask};
use crate::error::{Error, Result};
use crate::ids;
use crate::registry::{BackupRecord, RegistryFile};
use crate::removal;
use crate::session::Session;
use crate::ui;

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Backup ID to remove
    pub id: String,

    /// Allow removing the last valid backup of an environment
    #[arg(long)]
    pub force: bool,
}

pub fn run(session: &Session, args: DeleteArgs) -> Result<Report> {
    ids::validate_id(&args.id)?;
    let reg = session.store.load()?;
    let record = verify::find(&reg, &args.id)?.clone();
    // An entry naming a file where faber-db keeps no backups is refused before anything is
    // asked: nothing of it is touched.
    session.store.locate(&record)?;
    // Checked before asking, and again under the lock: two deletes at once must not remove both
    // of the last two valid backups.
    guard_last_valid(&reg, &record, args.force)?;
    if let Some(env) = session.config.environments.get(&record.environment) {
        if env.protected && !session.ctx.yes {
            session.ctx.ui.note(format!(
                "delete will remove this backup of `{}`:\n  {}",
                record.environment,
                crate::keep::Removal::of(&record).describe(session.ctx.now)
            ));
        }
        confirm::confirm(env, "delete", Ask::TypeName, session.ctx.yes)?;
    }
    let mut problems = crate::offsite::finish_pending_removals(session);
    let outcome = removal::remove(&session.store, |reg| {
        let current = verify::find(reg, &record.id)?.clone();
        guard_last_valid(reg, &current, args.force)?;
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
    cmd::log_event(
        session,
        "delete",
        Some(&record.environment),
        Some(&record.id),
        problems.is_empty(),
        None,
    );
    let ui = &session.ctx.ui;
    ui.ok(format!(
        "Deleted {} ({}, {})",
        record.id,
        record.environment,
        ui::size(record.size_bytes)
    ));
    let mut report = Report::new().with("deleted", &record);
    if !problems.is_empty() {
        report.failure = Some(
            Error::config(format!(
                "the entry is gone but not everything of it could be removed: {}",
                problems.join("; ")
            ))
            .with_hint(
                "its tombstone remains: the next faber-db run tries again (`faber-db doctor` shows \
                 what is left)",
            ),
        );
    }
    Ok(report)
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
