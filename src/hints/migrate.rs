//! The hints `migrate` adds to the engine's refusals: they name the command that works, as this
//! run would spell it.

use crate::config::Environment;
use crate::error::Error;
use crate::ops::migrate::Refused;
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
