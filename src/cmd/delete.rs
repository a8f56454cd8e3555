//! `faber-db delete ID`: removes one backup — registry entry, then file and manifest.

use clap::Args;

use crate::Report;
use crate::cmd::{self, verify};
use crate::confirm::{self, Ask};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::ids;
use crate::registry::{BackupRecord, RegistryFile};
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
    // Checked before asking, and again under the lock: two deletes at once must not remove both
    // of the last two valid backups.
    guard_last_valid(&reg, &record, args.force)?;
    if let Some(env) = session.config.environments.get(&record.environment) {
        confirm::confirm(env, "delete", Ask::TypeName, session.ctx.yes)?;
    }
    let dir = session.store.dir().to_path_buf();
    session.store.update(|reg| {
        let current = verify::find(reg, &record.id)?.clone();
        guard_last_valid(reg, &current, args.force)?;
        reg.backups.retain(|b| b.id != record.id);
        Ok(())
    })?;
    let mut problems = Vec::new();
    for path in [record.path(&dir), record.manifest_path(&dir)] {
        if let Err(e) = fsutil::remove_backup_data(&path) {
            problems.push(format!("{}: {e}", session.ctx.show(&path)));
        }
    }
    problems.extend(cmd::remote::remove_remote_copies(
        session,
        std::slice::from_ref(&record),
    ));
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
                "the entry is gone but some files could not be removed: {}",
                problems.join("; ")
            ))
            .with_hint("remove them by hand"),
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
