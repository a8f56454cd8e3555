//! The hints `migrate` adds to the engine's refusals: they name the command that works, as this
//! run would spell it.

use crate::config::Environment;
use crate::error::Error;
use crate::ops::migrate::{Refused, Rehearsal};
use crate::session::Session;

/// The failure of a migrate's refused pre-flight, with a hint that names the command that works:
/// this one (`again`: its arguments) with `--terminate-connections` when other sessions would stop the automatic restore, a
/// cleanup when there is no room.
pub fn refused(session: &Session, env: &Environment, again: &[&str], refused: Refused) -> Error {
    let Refused { check, error: e } = refused;
    match check {
        "sessions" => {
            let mut again = again.to_vec();
            again.push("--terminate-connections");
            e.with_hint(format!(
                "let faber-db end them if the migration fails: `{}`, or set \
                 terminate_connections_on_rollback = true in [environments.{}] (the default) — \
                 or stop the application first; nothing was migrated",
                super::command_line(session, &again),
                env.name
            ))
        }
        "space" => e.with_hint(format!(
            "free some space there, or remove expired backups with `{}`; nothing was migrated",
            super::command_line(session, &["cleanup", &env.name, "--expired"])
        )),
        _ => e,
    }
}

/// The failure of a migration's rehearsal, with what to do next: the migration fixed and
/// rehearsed again without touching production (or, when a signal stopped it, run again).
pub fn rehearsal_failed(
    session: &Session,
    env: &Environment,
    error: Error,
    rehearsal: &Rehearsal,
) -> Error {
    let again = super::command_line(session, &["migrate", &env.name, "--rehearse", "--dry-run"]);
    if rehearsal.interrupted {
        return error.with_hint(format!(
            "the copy was dropped and backup {} is kept; run the migration again when ready",
            rehearsal.backup
        ));
    }
    let fix = match &rehearsal.failed_at {
        Some(f) => format!(
            "fix {}{}",
            f.file,
            f.line.map(|n| format!(" (line {n})")).unwrap_or_default()
        ),
        None => "fix the migration".to_string(),
    };
    error.with_hint(format!(
        "{fix}, then rehearse it again with `{again}`; the copy was dropped, and backup {} is kept",
        rehearsal.backup
    ))
}
