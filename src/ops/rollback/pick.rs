//! Choosing the backup a rollback returns to.

use super::Target;
use crate::config::Environment;
use crate::error::{Error, Remedy, Result};
use crate::ids;
use crate::ops::restore;
use crate::registry::{BackupRecord, Status};
use crate::session::Session;

/// The backup to roll `env` back to, and why it was chosen: the one `target` names, else the
/// newest valid pre-migration backup, else the newest valid backup that is not a safety backup.
pub fn pick(
    session: &Session,
    env: &Environment,
    target: &Target,
) -> Result<(BackupRecord, String)> {
    let reg = session.store.load()?;
    let valid: Vec<&BackupRecord> = reg
        .newest_first(Some(&env.name))
        .into_iter()
        .filter(|b| b.is_restorable())
        .collect();
    let is_safety = |b: &BackupRecord| {
        b.reason
            .as_deref()
            .is_some_and(|r| crate::registry::UNDO_REASONS.contains(&r))
    };
    match target {
        Target::Id(id) => {
            ids::validate_id(id)?;
            let record = crate::ops::verify::find(&reg, id)?;
            named(session, env, record)?;
            Ok((record.clone(), "named with --to".to_string()))
        }
        // Never a safety backup: after a failed migration that was restored, the `pre-rollback`
        // one holds the broken state with the same last migration.
        Target::Migration(name) => valid
            .into_iter()
            .filter(|b| !is_safety(b))
            .find(|b| {
                b.migrations
                    .as_ref()
                    .and_then(|m| m.last_migration.as_deref())
                    == Some(name.as_str())
            })
            .map(|b| {
                let why = format!("--to-migration: the newest valid backup ending at {name}");
                (b.clone(), why)
            })
            .ok_or_else(|| {
                Error::config(format!(
                    "no valid backup of `{}` ends at migration {name}",
                    env.name
                ))
                .with_hint(Remedy::ListMigrations {
                    env: env.name.clone(),
                })
            }),
        Target::Newest => reg
            .newest_pre_migration(&env.name)
            .map(|b| (b, "the newest valid pre-migration backup"))
            .or_else(|| {
                let newest = valid.iter().find(|b| !is_safety(b))?;
                Some((
                    *newest,
                    "the newest valid backup (there is no pre-migration backup)",
                ))
            })
            .map(|(b, why)| (b.clone(), why.to_string()))
            .ok_or_else(|| {
                Error::config(format!(
                    "environment `{}` has no valid backup to roll back to",
                    env.name
                ))
                .with_hint(Remedy::MigrateTakesBackup {
                    env: env.name.clone(),
                })
            }),
    }
}

/// Checks a backup named by ID: one of `env`'s own, and restorable (a `mismatch` one with a
/// warning: it is never picked on its own).
fn named(session: &Session, env: &Environment, record: &BackupRecord) -> Result<()> {
    let id = &record.id;
    if record.environment != env.name {
        return Err(Error::config(format!(
            "backup {id} is a backup of `{}`, not of `{}`",
            record.environment, env.name
        ))
        .with_hint(Remedy::RestoreOtherEnvironment {
            env: env.name.clone(),
            id: id.clone(),
        }));
    }
    match record.status {
        Status::Valid => Ok(()),
        Status::Mismatch => {
            restore::warn_mismatch(session, record);
            Ok(())
        }
        s => Err(Error::verification(format!(
            "backup {id} is marked {}; it will not be restored",
            s.as_str()
        ))
        .with_hint(Remedy::CheckOrPickAnother)),
    }
}
