//! What `faber-db migrate` shows and reports: the migration state and the pending migrations,
//! the steps of a run, the hints that name the command that works after a refused pre-flight,
//! and what the run did.

use super::MigrateArgs;
use crate::Report;
use crate::cmd;
use crate::config::Environment;
use crate::ops::migrate::{Outcome, Prepared, Ran, Refused, Rollback};
use crate::session::Session;
use crate::ui::{self, To, Ui};

/// The failure of a refused pre-flight, with a hint that names the command that works: this
/// one with `--terminate-connections` when other sessions would stop the automatic restore, a
/// cleanup when there is no room.
pub(super) fn refused(
    session: &Session,
    env: &Environment,
    args: &MigrateArgs,
    prepared: &Prepared,
    refused: Refused,
) -> crate::error::Error {
    let Refused { check, error: e } = refused;
    match check {
        "sessions" => {
            let mut again = vec!["migrate", env.name.as_str()];
            if args.no_backup {
                again.push("--no-backup");
            }
            if args.allow_destructive {
                again.push("--allow-destructive");
            }
            // Without it, the command named would be refused after the unfinished migrate.
            if prepared.resumed.is_some() && !prepared.nothing_to_do {
                again.push("--resume");
            }
            again.push("--terminate-connections");
            e.with_hint(format!(
                "let faber-db end them if the migration fails: `{}`, or set \
                 terminate_connections_on_rollback = true in [environments.{}] (the default) — \
                 or stop the application first; nothing was migrated",
                cmd::command_line(session, &again),
                env.name
            ))
        }
        "space" => e.with_hint(format!(
            "free some space there, or remove expired backups with `{}`; nothing was migrated",
            cmd::command_line(session, &["cleanup", &env.name, "--expired"])
        )),
        _ => e,
    }
}

/// The report of a run that went ahead: the backup to go back to, whether the migration
/// worked, and when it did not, whether the backup was restored and what to do.
pub(super) fn ran(
    session: &Session,
    ui: &Ui,
    env: &Environment,
    report: Report,
    ran: Ran,
) -> Report {
    // The entry itself, as `backup` and `rollback` report theirs.
    let mut report = report.with("backup", ran.backup.as_ref());
    let failed = match ran.outcome {
        Outcome::Migrated { after } => {
            ui.ok("Migration finished");
            ui::migrate::state(ui, "Applied", after.as_ref(), To::Output);
            return report
                .with("migrated", true)
                .with("migrations_after", &after);
        }
        Outcome::Failed(failed) => failed,
    };
    report = report
        .with("migrated", false)
        .with("interrupted", failed.interrupted)
        .with("output_tail", &failed.output_tail);
    let mut error = failed.error;
    report = match failed.rollback {
        Rollback::NotTried => report.with("rolled_back", false),
        Rollback::Restored { matches, after } => {
            ui::migrate::state(ui, "Restored to", after.as_ref(), To::Output);
            report
                .with("rolled_back", true)
                .with("rollback_matches", matches)
                .with("migrations_after", &after)
        }
        Rollback::Failed { backup, busy } => {
            let mut by_hand = vec!["rollback", env.name.as_str(), "--to", backup.as_str()];
            if busy {
                by_hand.push("--terminate-connections");
            }
            error = error.with_hint(format!(
                "the database may be half-migrated; restore it by hand: {}",
                cmd::command_line(session, &by_hand)
            ));
            report.with("rolled_back", false)
        }
    };
    report.failure = Some(error);
    report
}
