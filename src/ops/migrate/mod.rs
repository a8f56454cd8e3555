//! Migrating an environment's database: what is pending read from the migration files and the
//! database ([`plan`], `outlook.rs`) and held against the config's safety rules ([`blocked`],
//! [`backup_required`], `rules.rs`); what a run would do worked out ([`prepare`], [`steps`]) and
//! checked ([`preflight`]), going on from a migrate that did not finish when asked
//! ([`unfinished`]); and then, once the command has asked what it must, done: the pre-migration
//! backup taken ([`begin`]), the migration rehearsed on a copy of the database when asked
//! ([`rehearse`]), and the environment's `migrate_command` run, bounded and stoppable
//! (`command.rs`), and on failure that backup restored through [`crate::ops::restore`]
//! ([`apply`]).

mod apply;
mod command;
mod failed_at;
mod outlook;
mod preflight;
mod prepare;
mod rehearse;
mod rules;
mod unfinished;

#[cfg(test)]
mod tests;

use serde::Serialize;

use crate::config::Environment;
use crate::error::Error;
use crate::migrations::MigrationState;
use crate::registry::BackupRecord;

pub use apply::{Begun, apply, begin};
pub use failed_at::FailedAt;
pub use outlook::plan;
pub use preflight::{Refused, preflight};
pub use prepare::{prepare, steps};
pub use rehearse::{Rehearsal, RowChange, rehearse};
pub use rules::{backup_required, blocked};
pub use unfinished::unfinished;

/// How a migration is asked for: what `faber-db migrate`'s options say.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Take no pre-migration backup, even when `backup_before_migrate` is set.
    pub no_backup: bool,
    /// Destructive migrations run on a protected environment without the typed phrase.
    pub allow_destructive: bool,
    /// If the migration fails, other sessions are ended so that the backup can be restored.
    pub terminate_connections: bool,
    /// Go on after a migrate that did not finish.
    pub resume: bool,
    /// Nothing is changed: the run is planned and checked only (and, with a rehearsal,
    /// rehearsed: its backup is taken and kept).
    pub dry_run: bool,
    /// `--rehearse` (`Some(true)`) or `--no-rehearse`; `None`: the environment's `rehearse`.
    pub rehearse: Option<bool>,
    /// The environment's lock, which the migration's processes hold too.
    pub lock_fd: Option<std::os::fd::RawFd>,
}

/// A pending migration, as reported.
#[derive(Debug, Serialize)]
pub struct Pending {
    pub name: String,
    pub file: String,
    pub destructive: Vec<Destructive>,
}

#[derive(Debug, Serialize)]
pub struct Destructive {
    pub what: &'static str,
    /// Its key in `safety.destructive_operations`: `drop_table`, `truncate`, …
    pub kind: &'static str,
    pub line: usize,
    pub statement: String,
    /// Why it may not run, when `safety.destructive_operations` forbids its kind.
    pub blocked: Option<String>,
    /// The key that requires a backup before it runs, if one does.
    pub backup_required: Option<String>,
}

/// The migration state of an environment and what is pending for it, read before anything is
/// done.
#[derive(Debug)]
pub struct Outlook {
    /// The database exists (a first deploy may create it: then every migration is pending).
    pub exists: bool,
    /// The server's version, when it exists.
    pub version: Option<String>,
    pub before: Option<MigrationState>,
    /// Where the migration files are.
    pub dir: Option<std::path::PathBuf>,
    pub todo: Vec<Pending>,
    /// Pending migrations can be told (SQL files of a tool whose table lists them).
    pub listable: bool,
}

/// What a migration run will do, decided from its [`Outlook`], the request and the config
/// before anything is asked or done.
#[derive(Debug)]
pub struct Prepared {
    pub outlook: Outlook,
    /// The backup of the migrate that did not finish, when this run goes on from it.
    pub resumed: Option<BackupRecord>,
    /// How many pending migrations hold destructive statements.
    pub destructive: usize,
    /// The environment's `migrate_command`, if it has one.
    pub command: Option<String>,
    /// The pending migrations are known, and there are none.
    pub nothing_to_do: bool,
    /// The config's rule that requires the pre-migration backup, when one does.
    pub backup_required: Option<String>,
    /// The config refuses the run: statements it forbids, or `--no-backup` where it wants one.
    pub refused: Option<Error>,
    /// The pre-migration backup is taken (when a run is not resumed).
    pub take_backup: bool,
    /// The pending migrations cannot be read, and the config forbids some statements.
    pub rules_unchecked: bool,
    /// No backup is taken, though `safety.backup_enforcement` recommends one.
    pub backup_recommended: bool,
    /// The migration is rehearsed on a copy of the database before it runs.
    pub rehearse: bool,
    /// Why a rehearsal that was asked for is not done (nothing to copy, `--no-backup`).
    pub no_rehearsal: Option<String>,
}

/// What a migration run will do once the pending migrations are known, as `--dry-run` and the
/// question on a protected environment show it.
#[derive(Debug, Serialize)]
pub struct Steps {
    /// The pre-migration backup taken first: its expected size and duration; none when
    /// `no_backup` says why.
    pub backup: Option<crate::plan::Estimate>,
    pub no_backup: Option<String>,
    /// The config's rule that makes the backup required, when one does.
    pub backup_required_by: Option<String>,
    /// The command run (secrets of the URL blanked out).
    pub command: String,
    /// The command is rehearsed first on a copy of the database, made from the backup.
    pub rehearse: bool,
    /// The pre-migration backup is restored if the command fails.
    pub restore_on_failure: bool,
    /// The typed phrase asked for before destructive migrations run.
    pub phrase: bool,
    /// The environment's name asked for before the migration runs.
    pub confirmation: bool,
}

/// What a migration run did.
#[derive(Debug)]
pub struct Ran {
    /// The backup to go back to: taken before the command, or the resumed run's.
    pub backup: Option<BackupRecord>,
    pub outcome: Outcome,
}

/// How the migrate command ended.
#[derive(Debug)]
pub enum Outcome {
    /// It succeeded; the migration table as it is now.
    Migrated { after: Option<MigrationState> },
    /// It failed or was stopped.
    Failed(Failure),
}

/// A migrate command that failed or was stopped by a signal, and what was done about it.
#[derive(Debug)]
pub struct Failure {
    /// Stopped by a signal, not failed on its own.
    pub interrupted: bool,
    /// The command's last lines of output.
    pub output_tail: Vec<String>,
    /// The run's failure (exit 9, or 8 when interrupted), with what to do — except after a
    /// [`Rollback::Failed`], whose hint (the rollback to run by hand) is the command's.
    pub error: Error,
    pub rollback: Rollback,
}

/// The automatic restore after a failed migration.
#[derive(Debug)]
pub enum Rollback {
    /// Not tried: no backup, or `rollback_on_failure` is off.
    NotTried,
    /// The pre-migration backup was restored.
    Restored {
        /// The database matches the backup's migration state and row counts.
        matches: bool,
        /// The migration table as it is now.
        after: Option<MigrationState>,
    },
    /// Restoring `backup` failed; `busy` when other sessions stopped it.
    Failed { backup: String, busy: bool },
}

/// A migrate that did not finish before this one.
#[derive(Debug)]
pub enum Unfinished {
    /// None in the way.
    None,
    /// `--resume`: this run goes on from it, with its pre-migration backup to go back to.
    Resume(Box<BackupRecord>),
    /// It was not undone, and `--resume` was not given.
    NotUndone(Box<NotUndone>),
}

/// The refusal of a run after a migrate that was not undone: the error (its hint, naming what
/// to run, is the command's), the backup taken before it, and what the history says of it.
#[derive(Debug)]
pub struct NotUndone {
    pub refusal: Error,
    pub backup: String,
    pub interrupted: crate::unfinished::Interrupted,
}

/// The error of a migrate of `env`, which has no command to run.
pub fn no_command(env: &Environment) -> Error {
    Error::config(format!(
        "environment `{}` has no migrate_command to run",
        env.name
    ))
    .with_hint(format!(
        "set environments.{}.migrate_command (e.g. \"npx prisma migrate deploy\")",
        env.name
    ))
}
