//! What `faber-db migrate` shows and reports: the migration state and the pending migrations,
//! and what the run did.

use crate::Report;
use crate::config::Environment;
use crate::hints;
use crate::ops::migrate::{Outcome, Ran, Rollback};
use crate::session::Session;
use crate::ui::{self, To, Ui};

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
                hints::command_line(session, &by_hand)
            ));
            report.with("rolled_back", false)
        }
    };
    report.failure = Some(error);
    report
}
