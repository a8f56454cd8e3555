//! The hints `restore` and `rollback` add to the engine's refusals: they name the command that
//! works, as this run would spell it.

use crate::config::Environment;
use crate::error::{Error, Kind};
use crate::ops::restore::{Preview, Refused};
use crate::session::Session;

/// The failure of a restore's or rollback's pre-flight, with a hint that names the command that
/// works. `again` is the command run (its arguments, without `--terminate-connections`), as a
/// hint repeats it.
pub fn refused(
    session: &Session,
    env: &Environment,
    preview: &Preview,
    refused: Refused,
    again: &[&str],
) -> Error {
    let Refused { check, error: e } = refused;
    match check {
        // The database to save does not open: as the safety backup would have failed.
        "connection" => e.with_hint(if again.first() == Some(&"restore") {
            "fix the cause, or pass --no-safety-backup if the current data may be lost"
        } else {
            "fix the cause: the database must open for its safety backup"
        }),
        "sessions" => {
            let mut with_end = again.to_vec();
            with_end.push("--terminate-connections");
            e.with_hint(format!(
                "end them and go ahead with `{}` — or stop the application and run this again",
                super::command_line(session, &with_end)
            ))
        }
        "space" => e.with_hint(format!(
            "free some space there, or remove expired backups with `{}`{}",
            super::command_line(session, &["cleanup", &env.name, "--expired"]),
            if again.first() == Some(&"restore") && preview.safety_backup.is_some() {
                "; --no-safety-backup skips the safety backup if the current data may be lost"
            } else {
                ""
            }
        )),
        _ => e,
    }
}

/// `e`, when other sessions stopped the restore at its swap (they connected after the
/// pre-flight), with a hint naming the command that ends them: `again` and
/// `--terminate-connections`.
pub fn busy(session: &Session, e: Error, again: &[&str]) -> Error {
    if e.kind() != Kind::Busy || !e.message().contains("connected to") {
        return e;
    }
    let mut with_end = again.to_vec();
    with_end.push("--terminate-connections");
    let hint = format!(
        "end them and restore with `{}` — or stop the application and run this again",
        super::command_line(session, &with_end)
    );
    // What the restore itself added (where the safety backup is) stays.
    let kept: Vec<String> = super::text(&e)
        .map(|h| {
            h.lines()
                .filter(|l| l.contains("safety backup"))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let hint = std::iter::once(hint)
        .chain(kept)
        .collect::<Vec<_>>()
        .join("\n");
    e.with_hint(hint)
}
