//! The refusal of a rollback that would lose rows on a protected environment when its name cannot
//! be typed: it names the flag that accepts the loss, and the dry run that shows it.

use crate::config::Environment;
use crate::error::{Error, Hint};
use crate::human;
use crate::ops::rollback::Loss;
use crate::registry::BackupRecord;
use crate::session::Session;

/// The failure (exit 8) of a rollback of protected `env` to `record` that loses rows — or cannot
/// tell whether it does (`loss` is why) — with no terminal to type the name on. `again` is the
/// command run (its arguments), as the hints repeat it.
pub fn loses_rows(
    session: &Session,
    env: &Environment,
    record: &BackupRecord,
    loss: &Result<Loss, String>,
    again: &[&str],
) -> Error {
    let name = &env.name;
    let message = match loss {
        Ok(loss) => format!(
            "rolling back `{name}` loses {}{} written since the backup {} ({}); nothing was restored",
            if loss.approximate { "at least " } else { "" },
            human::count(loss.rows_total, "row"),
            record.id,
            record.timestamp.format("%Y-%m-%d %H:%M UTC"),
        ),
        Err(why) => format!(
            "rolling back `{name}` may lose rows written since the backup {}: they cannot be counted ({why}); nothing was restored",
            record.id
        ),
    };
    let mut dry_run = again.to_vec();
    dry_run.push("--dry-run");
    let mut accept = again.to_vec();
    accept.push("--accept-data-loss");
    Error::aborted(message).with_hints(&[
        Hint::Text(format!(
            "see what it loses with `{}`",
            super::command_line(session, &dry_run)
        )),
        Hint::Text(format!(
            "on a protected environment a rollback that loses data asks for the environment's name to be typed, even with --yes: run it at a terminal, or, if those rows may be lost, `{}`",
            super::command_line(session, &accept)
        )),
    ])
}
