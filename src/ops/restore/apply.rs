//! One restore under way, and its course: the method chosen once, the backup's file checked,
//! then swapped in (`swap.rs`) or loaded in place (`in_place.rs`).

use std::cell::Cell;
use std::time::Instant;

use super::{Request, Restored, checksum, in_place, preview, stage, swap};
use crate::audit;
use crate::config::Environment;
use crate::error::{Error, Result};
use crate::provider::Provider;
use crate::provider::method::RestoreMethod;
use crate::registry::{BackupRecord, Timing};
use crate::session::Session;

/// What every step of one restore needs.
pub(super) struct Run<'a, 's> {
    pub session: &'a Session<'s>,
    pub env: &'a Environment,
    pub db: &'a dyn Provider,
    pub record: &'a BackupRecord,
    pub request: &'a Request,
    pub started: Instant,
    /// The database has begun to change: a signal from here on no longer stops the run as
    /// though nothing happened.
    pub committing: Cell<bool>,
}

impl Run<'_, '_> {
    /// The restore, once asked for: see [`super::apply`].
    pub fn apply(&self) -> Result<Restored> {
        let failed = |e: &Error| self.log(false, Some(e.one_line()), None);
        // The method first, once: a role that can use none is told so before anything happens.
        let choice = match &self.request.method {
            Some(chosen) => chosen.clone(),
            None => preview::choose_method(self.db, self.request.in_place).inspect_err(failed)?,
        };
        self.session.events().detail(&format!(
            "Method: {} ({})",
            choice.method.as_str(),
            choice.why
        ));
        // Checksum, then stage and check: the safety backup is taken only when the restore is
        // ready to commit, and a restore that cannot happen changes nothing at all.
        let (staged, _held) = (|| {
            // Held from its checksum to the end of the restore: a cleanup or delete meanwhile
            // leaves it alone. In place, the live database is what the load changes: the
            // checksum comes first. Staged, the scratch is made while the file is hashed.
            if choice.method == RestoreMethod::InPlace {
                let held = checksum::fetched_and_checked(self.session, self.record)?;
                return Ok((None, held));
            }
            let (staged, held) = checksum::loaded(self.session, self.record, &mut |verdict| {
                stage::stage(
                    self.session,
                    self.env,
                    self.record,
                    self.db,
                    self.request.jobs,
                    verdict,
                )
            })?;
            Ok((Some(staged), held))
        })()
        .inspect_err(failed)?;
        match staged {
            Some(staged) => swap::commit(self, staged, choice),
            None => in_place::restore(self, choice),
        }
    }

    /// Writes the outcome of the restore to the audit log, with its time when `timing`.
    pub fn log(&self, ok: bool, detail: Option<String>, timing: Option<Timing>) {
        audit::log_timed_event(
            self.session,
            self.request.event,
            Some(&self.env.name),
            Some(&self.record.id),
            ok,
            detail,
            timing,
        );
    }

    /// Writes to the audit log that the database is about to change: a run killed from here on
    /// leaves this as the last word of the environment's history.
    pub fn log_started(&self, detail: Option<String>) {
        audit::log_event(
            self.session,
            super::commit_event(self.request.event),
            Some(&self.env.name),
            Some(&self.record.id),
            true,
            detail,
        );
    }

    /// The restore's own time, without the safety backup's (`safety_took`): what later plans
    /// estimate from.
    pub fn timing(&self, safety_took: std::time::Duration) -> Timing {
        Timing {
            duration_ms: crate::human::millis(self.started.elapsed().saturating_sub(safety_took)),
            bytes: self.record.raw_size_bytes,
        }
    }
}
