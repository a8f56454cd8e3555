//! What a run will do, decided before anything is asked or done: the pending migrations against
//! the config's rules, whether the pre-migration backup is taken, and the [`Steps`] shown.

use super::{Prepared, Request, Steps, backup_required, blocked, plan};
use crate::config::{Enforcement, Environment};
use crate::error::{Error, Result};
use crate::ops::backup;
use crate::provider::Provider;
use crate::registry::BackupRecord;
use crate::session::Session;

/// Reads what is pending for `env` and decides what a run asked for by `request` will do;
/// `resumed`, the backup of the migrate that did not finish, when the run goes on from it.
/// Changes nothing.
pub fn prepare(
    session: &Session,
    env: &Environment,
    db: &dyn Provider,
    request: &Request,
    resumed: Option<BackupRecord>,
) -> Result<Prepared> {
    let outlook = plan(session, env, db)?;
    let todo = &outlook.todo;
    let destructive = todo.iter().filter(|p| !p.destructive.is_empty()).count();
    let nothing_to_do = outlook.listable && todo.is_empty();
    // The config's safety rules: statements it forbids stop the run before anything is done,
    // and statements it wants backed up take the backup whatever backup_before_migrate says.
    let required = backup_required(session, env, todo, outlook.listable);
    let rules_unchecked = !outlook.listable
        && session
            .config
            .safety
            .destructive
            .values()
            .any(|r| !r.allowed);
    let refused = blocked(session, todo).or_else(|| {
        required
            .as_ref()
            .filter(|_| request.no_backup && outlook.exists && !nothing_to_do)
            .map(|why| {
                Error::config(format!(
                    "--no-backup is refused: {why} wants a pre-migration backup of `{}`",
                    env.name
                ))
                .with_hint(format!(
                    "run it without --no-backup (the rule is in {})",
                    session.ctx.show(&session.config.file)
                ))
            })
    });
    let take_backup =
        (env.backup_before_migrate || required.is_some()) && !request.no_backup && outlook.exists;
    let backup_recommended = !take_backup
        && outlook.exists
        && !nothing_to_do
        && env.backup_enforcement == Enforcement::Recommended;
    let wanted = request.rehearse.unwrap_or(env.rehearse);
    let no_rehearsal = if !wanted || nothing_to_do {
        None
    } else if !outlook.exists {
        Some("the database does not exist yet: there is nothing to copy".to_string())
    } else if request.no_backup {
        Some("--no-backup: a rehearsal runs on a copy made from a backup".to_string())
    } else if env.encrypt
        && request.rehearse.is_none()
        && !crate::crypt::identity_given(&session.config, &session.vars)
    {
        // A pipeline that holds only the recipients could then never migrate: the config's
        // rehearsal gives way, `--rehearse` does not (and fails saying what is missing).
        Some(
            "its backups are encrypted and no age identity is given (FABER_AGE_IDENTITY, age_identity_file) to load one into the copy"
                .to_string(),
        )
    } else {
        None
    };
    let rehearse = wanted && !nothing_to_do && no_rehearsal.is_none();
    Ok(Prepared {
        rehearse,
        no_rehearsal,
        resumed,
        destructive,
        command: env.migrate_command.clone(),
        nothing_to_do,
        backup_required: required,
        refused,
        take_backup,
        rules_unchecked,
        backup_recommended,
        outlook,
    })
}

/// The [`Steps`] of migrating `env` as `prepared`, its backup estimated when one is taken (none
/// when the run goes on from a migrate that did not finish).
pub fn steps(
    session: &Session,
    env: &Environment,
    db: &dyn Provider,
    request: &Request,
    prepared: &Prepared,
) -> Result<Steps> {
    let resumed = prepared.resumed.as_ref().map(|b| b.id.as_str());
    let required = prepared.backup_required.as_deref();
    let secrets = session.url(env).map(|u| u.secrets()).unwrap_or_default();
    let command = env.migrate_command.as_deref().unwrap_or_default();
    let restore_on_failure = (prepared.take_backup || resumed.is_some()) && env.rollback_on_failure;
    let take_backup = prepared.take_backup && resumed.is_none();
    let no_backup = if let Some(id) = resumed {
        Some(format!(
            "none (--resume): {id}, taken before the migrate that did not finish, stays the backup to go back to"
        ))
    } else if take_backup {
        None
    } else if request.no_backup {
        Some("none (--no-backup)".to_string())
    } else if env.backup_before_migrate || required.is_some() {
        Some("none: the database does not exist yet".to_string())
    } else {
        Some("none: backup_before_migrate is off".to_string())
    };
    Ok(Steps {
        backup: take_backup
            .then(|| backup::estimate(session, env, db))
            .transpose()?,
        no_backup,
        backup_required_by: required.map(str::to_string),
        command: crate::provider::blank_out(command, &secrets),
        rehearse: prepared.rehearse,
        restore_on_failure,
        phrase: env.protected && prepared.destructive > 0 && !request.allow_destructive,
        confirmation: env.protected && !session.ctx.yes,
    })
}
