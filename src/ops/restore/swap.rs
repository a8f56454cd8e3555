//! The swap: a checked, staged copy put in the database's place in one step. The safety backup
//! comes first, or, where the swap sets the replaced data aside, after it, of that data.

use super::apply::Run;
use super::{REPLACED_SET_ASIDE, Restored, compare, safety};
use crate::error::{Error, Result};
use crate::ops::backup;
use crate::provider::method::MethodChoice;
use crate::provider::{CommitOptions, Staged};

/// Puts `staged` in place of the database (`choice` said how), with its safety backup, and
/// compares the result with the manifest.
pub(super) fn commit(
    run: &Run,
    staged: Box<dyn Staged + '_>,
    choice: MethodChoice,
) -> Result<Restored> {
    let (session, env, record, request) = (run.session, run.env, run.record, run.request);
    session
        .events()
        .ok(&format!("Staged and checked {}", record.id));
    // Where the swap sets the replaced data aside (PostgreSQL, MySQL), the safety backup is taken
    // of that, after the swap: no write made before it can be missing from it. What it needs is
    // checked now — connection, tools, keys, room — so that it fails for no reason known in
    // advance. Elsewhere (SQLite) it is taken now, before the database is touched.
    let after_swap = match request.safety_reason {
        Some(reason) if run.db.sets_replaced_aside() && run.db.exists()? => {
            backup::check_automatic(session, env, reason).map_err(|e| {
                e.add_hint(
                    "nothing was restored: the safety backup taken after the swap could not be",
                )
            })?;
            true
        }
        _ => false,
    };
    let safety_started = std::time::Instant::now();
    let safety = if after_swap {
        None
    } else {
        safety::before(run)?
    };
    let safety_took = safety_started.elapsed();
    // The last moment to stop without changing anything: a signal during the safety backup
    // stops the restore here, even if the backup itself finished.
    crate::interrupt::check().map_err(|e| Error::aborted("interrupted").caused_by(e))?;
    run.committing.set(true);
    // Said before the database is touched: a run killed from here on leaves this as the last
    // word of the environment's history, and `status` reports the restore as interrupted.
    run.log_started(match (&safety, after_swap) {
        (Some(s), _) => Some(format!("safety backup {s}")),
        (None, true) => Some(REPLACED_SET_ASIDE.to_string()),
        (None, false) => None,
    });
    crate::testpoint::pause("restore:before-commit");
    // A signal from here on is noted and waits: the database is never left half-changed.
    let held = crate::interrupt::hold();
    let result = staged.commit(&CommitOptions {
        terminate_connections: request.terminate_connections,
    });
    drop(held);
    // A commit that failed after it began to change the database (MySQL's, making views,
    // triggers, routines and events again after its tables moved) left it incomplete: said so,
    // `status` keeps reporting it until a restore succeeds.
    let timing = result.is_ok().then(|| run.timing(safety_took));
    let committed = match result {
        Ok(c) => c,
        Err(f) => {
            run.log(
                false,
                Some(if f.incomplete {
                    format!("incomplete: {}", f.error.one_line())
                } else {
                    f.error.one_line()
                }),
                None,
            );
            return Err(match &safety {
                Some(s) => f.error.add_hint(format!(
                    "safety backup {s} holds the database as it was before this {}",
                    request.event
                )),
                None => f.error,
            });
        }
    };
    let inspection = committed.inspection;
    // The outcome is logged once the data the swap set aside is safe: until then, `status`
    // says where it is.
    let safety = match committed.replaced {
        Some(replaced) => match safety::of_replaced(run, replaced) {
            Ok(s) => s,
            Err(e) => {
                run.log(true, Some(e.one_line()), timing);
                return Err(e);
            }
        },
        None => safety,
    };
    run.log(true, None, timing);
    Ok(compare::compared(
        session, record, inspection, safety, choice,
    ))
}
