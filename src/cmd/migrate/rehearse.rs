//! The rehearsal before a migration runs for real (or instead of it, with `--dry-run`): asked of
//! the engine, shown, and carried whole in the report.

use crate::Report;
use crate::config::Environment;
use crate::error::{Error, Result};
use crate::hints;
use crate::ops::migrate::{self, Prepared, Rehearsal, Request};
use crate::registry::BackupRecord;
use crate::session::Session;
use crate::ui::{self, To, Ui};

/// A rehearsal, as the report carries it: what it found (none when it could not run), and the
/// run's failure when it did not pass.
pub(super) struct Rehearsed {
    rehearsal: Option<Rehearsal>,
    failure: Option<Error>,
}

impl Rehearsed {
    /// `report` with the rehearsal in it, failed when the rehearsal failed.
    pub(super) fn into_report(self, report: Report) -> Report {
        let mut report = report.with("rehearsal", &self.rehearsal);
        if let Some(e) = self.failure {
            report.failure = Some(e);
        }
        report
    }
}

/// Rehearses the migration `prepared` of `env` on a copy of `taken` (the run's pre-migration
/// backup; `None`: a `pre-rehearsal` one is taken) and shows what it found where `to` says.
/// `Err` when it failed or could not run: the real migration must not follow.
pub(super) fn first(
    session: &Session,
    ui: &Ui,
    env: &Environment,
    request: &Request,
    prepared: &Prepared,
    taken: Option<&BackupRecord>,
    to: To,
) -> std::result::Result<Rehearsed, Box<Rehearsed>> {
    let found: Result<Rehearsal> =
        migrate::rehearse(session, env, request, prepared, taken, &output(ui));
    let rehearsal = match found {
        Ok(r) => r,
        Err(e) => {
            return Err(Box::new(Rehearsed {
                rehearsal: None,
                failure: Some(e),
            }));
        }
    };
    ui::rehearsal::rehearsal(ui, &rehearsal, to);
    match rehearsal.error(env) {
        None => Ok(Rehearsed {
            rehearsal: Some(rehearsal),
            failure: None,
        }),
        Some(e) => {
            let failure = hints::migrate::rehearsal_failed(session, env, e, &rehearsal);
            Err(Box::new(Rehearsed {
                rehearsal: Some(rehearsal),
                failure: Some(failure),
            }))
        }
    }
}

/// Where the migrate command's output goes: stderr, line by line (stdout stays clean for
/// `--json`), unless `--quiet`.
pub(super) fn output(ui: &Ui) -> impl Fn(&str) + Sync + use<> {
    let quiet = ui.quiet;
    move |line: &str| {
        if !quiet {
            eprintln!("  | {line}");
        }
    }
}
