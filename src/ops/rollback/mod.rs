//! Rolling an environment back to one of its own backups: the backup chosen ([`pick`]: the one
//! named, the newest ending at a migration, or the newest valid `pre-migration` one), what the
//! rollback undoes ([`undo`]), whether the database is already as that backup left it
//! ([`already_restored`], `already.rs`), whether there is a release to undo at all
//! ([`check_undoes`]), and, after the restore engine ([`crate::ops::restore`]) has done its work,
//! whether the migration state is the backup's ([`state_differs`]). What it would lose — rows
//! written since, tables and columns made since, migrations undone — is [`would_lose`]
//! (`loss.rs`). The command shows the plan and the loss, and asks in between.

mod already;
mod loss;
mod pick;

#[cfg(test)]
mod tests;

use crate::config::Environment;
use crate::error::{Error, Remedy, Result};
use crate::migrations::{MigrationState, describe};
use crate::provider::Provider;
use crate::registry::BackupRecord;

pub use already::{Already, LastRestore, already_restored};
pub use loss::{Basis, ColumnAdded, Loss, TableLoss, table_loss, would_lose};
pub use pick::pick;

/// Which backup a rollback returns to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The newest valid pre-migration backup, else the newest valid one: a release undone.
    Newest,
    /// The backup with this ID (`--to`).
    Id(String),
    /// The newest valid backup whose last applied migration is this one (`--to-migration`).
    Migration(String),
}

impl Target {
    /// The backup `--to ID` or `--to-migration NAME` names (not both), else the newest.
    pub fn from_flags(id: Option<String>, migration: Option<String>) -> Target {
        match (id, migration) {
            (Some(id), _) => Target::Id(id),
            (None, Some(name)) => Target::Migration(name),
            (None, None) => Target::Newest,
        }
    }
}

/// What rolling back to a backup undoes.
#[derive(Debug, Clone)]
pub struct Undo {
    /// The database's migration state now (`None` without a database or a migration table).
    pub now: Option<MigrationState>,
    /// The migrations applied now that the backup does not have.
    pub undone: Vec<String>,
}

/// What returning `env`'s database to `record` undoes: its migration state now, and the
/// migrations the backup lacks.
pub fn undo(env: &Environment, db: &dyn Provider, record: &BackupRecord) -> Result<Undo> {
    let now = if db.exists()? {
        db.inspect(env.migrations_table.as_deref(), false)?
            .migrations
    } else {
        None
    };
    let undone = crate::migrations::undone(now.as_ref(), record.migrations.as_ref());
    Ok(Undo { now, undone })
}

/// Refuses the default pick when it undoes no release: the database has the migrations of the
/// backup and none it lacks, so only data written since would go — not this command's to drop.
/// A backup named (by ID or migration), or `force`, is restored all the same.
pub fn check_undoes(
    env: &Environment,
    target: &Target,
    force: bool,
    undo: &Undo,
    record: &BackupRecord,
) -> Result<()> {
    if *target == Target::Newest
        && !force
        && undo.now.is_some()
        && undo.undone.is_empty()
        && same_state(undo.now.as_ref(), record.migrations.as_ref())
    {
        return Err(Error::config(format!(
            "`{}` has the same migrations as its newest pre-migration backup {}: there is no migration to roll back",
            env.name, record.id
        ))
        .with_hint(Remedy::RollBackAnyway {
            env: env.name.clone(),
            id: record.id.clone(),
            since: record.timestamp,
        }));
    }
    Ok(())
}

/// After the rollback: the failure to report when the database's migration state (`after`) is
/// not the one `record` recorded; `None` when they match.
pub fn state_differs(after: Option<&MigrationState>, record: &BackupRecord) -> Option<Error> {
    if same_state(after, record.migrations.as_ref()) {
        return None;
    }
    Some(
        Error::verification(format!(
            "after the rollback the migration state is {}, but the backup recorded {}",
            describe(after),
            describe(record.migrations.as_ref())
        ))
        .with_hint("check the database; the safety backup holds what was replaced"),
    )
}

/// Whether two migration states have the same migrations applied.
pub fn same_state(a: Option<&MigrationState>, b: Option<&MigrationState>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            a.applied_count == b.applied_count && a.migrations_list == b.migrations_list
        }
        (None, None) => true,
        _ => false,
    }
}
