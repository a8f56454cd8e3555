//! A migration run, once the command has asked what it must: the pre-migration backup (or the
//! resumed run's), the command run with its start and end in the audit log, and on failure the
//! backup restored.

use super::command::{Target, run_command};
use super::{Failure, Outcome, Prepared, Ran, Request, Rollback, no_command};
use crate::audit::{log_event, log_interrupted_event};
use crate::config::Environment;
use crate::error::{Error, Kind, Remedy, Result};
use crate::ops::{backup, restore};
use crate::provider::{Provider, blank_out};
use crate::registry::BackupRecord;
use crate::session::Session;

/// A migration run under way: signals are caught from here on, and the backup to go back to is
/// there.
pub struct Begun {
    _signals: crate::interrupt::Guard,
    /// The backup to go back to: the pre-migration backup taken now, or the resumed run's.
    pub backup: Option<BackupRecord>,
    /// `backup` was taken by this run (not the resumed run's).
    fresh: bool,
}

impl Begun {
    /// The pre-migration backup this run took, if it took one (what a rehearsal loads).
    pub fn taken(&self) -> Option<&BackupRecord> {
        self.backup.as_ref().filter(|_| self.fresh)
    }
}

/// Begins the migration `prepared` of `env`: from here, SIGTERM, SIGINT or SIGHUP (a CI cancel,
/// an agent's timeout, a closed terminal) stops what runs and is reported, and a second one ends
/// faber-db at once; then takes the pre-migration backup, or goes on with the resumed run's. An
/// error when the backup failed.
pub fn begin(session: &Session, env: &Environment, prepared: &Prepared) -> Result<Begun> {
    let signals = crate::interrupt::guard();
    let (backup, fresh) = if let Some(earlier) = &prepared.resumed {
        session.events().ok(&format!(
            "Resuming: {}, taken before the migrate that did not finish, stays the backup to go back to",
            earlier.id
        ));
        (Some(earlier.clone()), false)
    } else if prepared.take_backup {
        let taken = backup::take_automatic(session, env, "pre-migration").map_err(|e| {
            e.add_hint("the migration did not run: the pre-migration backup failed")
        })?;
        (Some(taken), true)
    } else {
        (None, false)
    };
    Ok(Begun {
        _signals: signals,
        backup,
        fresh,
    })
}

/// Runs the migration `prepared` for `env`'s database `db`, [`begin`]un: runs the
/// `migrate_command` (each line of its output to `on_output`), and if it fails or a signal stops
/// it, restores the backup when `rollback_on_failure` says so. Confirmation is the caller's. An
/// error when nothing ran (a signal came first); a failed migration is an [`Outcome::Failed`].
pub fn apply(
    session: &Session,
    env: &Environment,
    db: &dyn Provider,
    request: &Request,
    prepared: &Prepared,
    begun: Begun,
    on_output: &(dyn Fn(&str) + Sync),
) -> Result<Ran> {
    let command = prepared.command.as_deref().ok_or_else(|| no_command(env))?;
    let Begun {
        _signals, backup, ..
    } = begun;
    if crate::interrupt::happened() {
        return Err(Error::aborted("interrupted: the migration did not run")
            .with_hint("run it again when ready"));
    }
    let secrets = session.url(env).map(|u| u.secrets()).unwrap_or_default();
    let shown = blank_out(command, &secrets);
    session.events().line(&format!("Running: {shown}"));
    // Said before the command runs: a faber-db killed from here on leaves this as the last word
    // of the environment's history, and `status` reports the migration as unfinished.
    log_event(
        session,
        "migrate-started",
        Some(&env.name),
        backup.as_ref().map(|b| b.id.as_str()),
        true,
        Some(shown),
    );
    let outcome = Target::own(session, env)
        .and_then(|target| run_command(session, command, &target, request.lock_fd, on_output));
    let id = backup.as_ref().map(|b| b.id.as_str());
    let (what, output_tail) = match outcome {
        Ok(_) => {
            log_event(session, "migrate", Some(&env.name), id, true, None);
            let after = if db.exists()? {
                db.inspect(env.migrations_table.as_deref(), false)?
                    .migrations
            } else {
                None
            };
            let outcome = Outcome::Migrated { after };
            return Ok(Ran { backup, outcome });
        }
        Err(failed) => (blank_out(&failed.what, &secrets), failed.tail),
    };
    // Stopped by a signal, not failed on its own.
    let interrupted = crate::interrupt::happened();
    if interrupted {
        log_interrupted_event(session, "migrate", Some(&env.name), id, Some(what.clone()));
    } else {
        log_event(
            session,
            "migrate",
            Some(&env.name),
            id,
            false,
            Some(what.clone()),
        );
    }
    let failed = Failed {
        interrupted,
        what,
        output_tail,
    };
    let failure = failed.restore(session, env, db, request, backup.as_ref());
    Ok(Ran {
        backup,
        outcome: Outcome::Failed(failure),
    })
}

/// A migrate command that failed, before anything is done about it.
struct Failed {
    interrupted: bool,
    /// What failed, secrets blanked out.
    what: String,
    output_tail: Vec<String>,
}

impl Failed {
    /// The run's failure, after restoring `backup` when there is one and `rollback_on_failure`
    /// says so.
    fn restore(
        self,
        session: &Session,
        env: &Environment,
        db: &dyn Provider,
        request: &Request,
        backup: Option<&BackupRecord>,
    ) -> Failure {
        let Failed {
            interrupted,
            what,
            output_tail,
        } = self;
        let signal = crate::interrupt::signal_name().unwrap_or("a signal");
        let error = if interrupted {
            // The signal is dealt with: the restore below runs, and a second signal ends it at
            // once.
            crate::interrupt::acknowledge();
            Error::aborted(format!(
                "interrupted by {signal}: the migration was stopped part-way ({what})"
            ))
        } else {
            Error::new(Kind::Migration, format!("the migration failed: {what}"))
        };
        let failure = |error, rollback| Failure {
            interrupted,
            output_tail: output_tail.clone(),
            error,
            rollback,
        };
        crate::testpoint::pause("migrate:before-restore");
        let Some(backup) = backup.filter(|_| env.rollback_on_failure) else {
            let error = match (interrupted, backup) {
                (true, Some(b)) => error.with_hint(Remedy::RollBackHalfMigrated {
                    env: env.name.clone(),
                    id: b.id.clone(),
                }),
                (true, None) => error.with_hint(
                    "the database may be half-migrated, and no pre-migration backup was taken: check it before running the migration again",
                ),
                (false, _) => error.with_hint(Remedy::RestoreIfNeeded),
            };
            return failure(error, Rollback::NotTried);
        };
        session
            .events()
            .warn(&format!("restoring the pre-migration backup {}", backup.id));
        let restored = restore::apply(
            session,
            env,
            db,
            backup,
            &restore::Request {
                event: "rollback",
                safety_reason: Some("pre-rollback"),
                // Sessions still connected would stop the restore and leave the database
                // half-migrated: ended, unless the config says not to (and then the pre-flight
                // refused to start while any were connected).
                terminate_connections: request.terminate_connections
                    || env.terminate_connections_on_rollback,
                // The method the role allows: in place when it may not create databases.
                in_place: false,
                method: None,
                jobs: None,
            },
        );
        match restored {
            Ok(r) => {
                let matches = r.inspection.migrations == backup.migrations && r.diffs.is_empty();
                let error = error.with_hint(format!(
                    "the pre-migration backup {} was restored{}; the {} attempt is kept as {}{}",
                    backup.id,
                    if matches {
                        " and matches it"
                    } else {
                        ", but the database differs from it — check it"
                    },
                    if interrupted { "interrupted" } else { "failed" },
                    r.safety.as_deref().unwrap_or("(no safety backup)"),
                    if interrupted {
                        "; run the migration again when ready"
                    } else {
                        ""
                    }
                ));
                let after = r.inspection.migrations;
                failure(error, Rollback::Restored { matches, after })
            }
            Err(e) => {
                let (kind, how) = if interrupted {
                    (Kind::Aborted, format!("was interrupted by {signal}"))
                } else {
                    (Kind::Migration, "failed".to_string())
                };
                let error = Error::new(
                    kind,
                    format!(
                        "the migration {how} ({what}), and restoring the pre-migration backup failed: {}",
                        e.message()
                    ),
                );
                let rollback = Rollback::Failed {
                    backup: backup.id.clone(),
                    busy: e.kind() == Kind::Busy,
                };
                failure(error, rollback)
            }
        }
    }
}
