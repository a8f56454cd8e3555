//! A migrate of the environment that did not finish (killed, or failed with nothing restored):
//! `--resume` goes on from it; without `--resume` it stops the run, as a new pre-migration backup
//! would be of the half-migrated database and would become the one to go back to.

use super::{NotUndone, Unfinished};
use crate::config::Environment;
use crate::error::{Error, Remedy, Result};
use crate::session::Session;

/// The migrate of `env` that did not finish, if one stands in the way, and what this run does
/// about it: goes on from it (`resume`, its pre-migration backup still the one to go back to),
/// or is refused.
pub fn unfinished(session: &Session, env: &Environment, resume: bool) -> Result<Unfinished> {
    let Some(i) =
        crate::unfinished::interrupted(&session.store, &env.name).filter(|i| i.event == "migrate")
    else {
        if resume {
            session
                .events()
                .warn("--resume: no unfinished migrate to go on from; migrating as usual");
        }
        return Ok(Unfinished::None);
    };
    // Without a backup taken before it, there is none a new one could displace: the run goes on
    // (the command has said what did not finish).
    let Some(id) = i.backup.clone() else {
        return Ok(Unfinished::None);
    };
    if !resume {
        let refusal = Error::aborted(format!(
            "the last migrate of `{}` ({} at {}) was not undone: the database may be half-migrated",
            env.name,
            i.outcome.unwrap_or("interrupted"),
            crate::unfinished::when(&i)
        ));
        return Ok(Unfinished::NotUndone(Box::new(NotUndone {
            refusal,
            backup: id,
            interrupted: i,
        })));
    }
    let reg = session.store.load()?;
    match reg.find(&id) {
        Some(record) if record.is_restorable() => Ok(Unfinished::Resume(Box::new(record.clone()))),
        _ => Err(Error::verification(format!(
            "{id}, the backup taken before the migrate that did not finish, is gone or not valid; nothing was run"
        ))
        .with_hint(Remedy::VerifyOrRestoreAnother {
            id,
            env: env.name.clone(),
        })),
    }
}
