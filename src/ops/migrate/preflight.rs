//! The pre-flight of a migration: a command to run, and — when the migration restores a backup
//! on failure — everything that restore needs, checked now: the automatic restore must not be
//! the first time anyone finds out it cannot happen.

use super::{Prepared, Request, no_command};
use crate::config::Environment;
use crate::error::{Error, Hint, Kind, Result};
use crate::ops::backup;
use crate::preflight::{Needs, Preflight, Sessions, Writes};
use crate::provider::{Provider, ProviderKind};
use crate::session::Session;

/// The check that stopped a migration before it began, and why; for `sessions` and `space` the
/// command adds the hint that names what to run instead.
#[derive(Debug)]
pub struct Refused {
    /// The failed check's name: `connection`, `sessions`, `space`, …
    pub check: &'static str,
    pub error: Error,
}

/// The pre-flight of migrating `env`'s database `db` as `prepared`: the backup taken first (none
/// when the run goes on from a migrate that did not finish, or has nothing to do) and the
/// restore on failure. `secrets` are blanked out of the command shown. Its failure, if any.
pub fn preflight(
    session: &Session,
    env: &Environment,
    db: &dyn Provider,
    request: &Request,
    prepared: &Prepared,
    secrets: &[String],
) -> Result<(Preflight, Option<Refused>)> {
    let resuming = prepared.resumed.is_some() && !prepared.nothing_to_do;
    let take_backup = prepared.take_backup && !prepared.nothing_to_do && prepared.resumed.is_none();
    let restores = (take_backup || resuming) && env.rollback_on_failure;
    let mut writes = Vec::new();
    let mut db_size = 0;
    if take_backup || restores {
        let format = backup::resolve_format(None, env, db)?;
        let compression = backup::resolve_compression(None, format, env);
        db_size = db.size_estimate()?;
        let copied_first = db.backup_copies_first(!env.exclude_table_data.is_empty());
        let bytes = crate::plan::space_needed(format, compression, db_size, copied_first);
        let dir = session.store.dir().join(&env.name);
        if take_backup {
            writes.push(Writes {
                what: "the pre-migration backup".into(),
                dir: dir.clone(),
                bytes,
            });
        }
        if restores {
            // The restore after a failed migration takes its own safety backup of the
            // half-migrated database, about as large.
            writes.push(Writes {
                what: "the pre-rollback safety backup".into(),
                dir,
                bytes,
            });
        }
    }
    let sessions = if !restores {
        Sessions::Ignore
    } else if request.terminate_connections {
        Sessions::End {
            because: "--terminate-connections, if the migration fails".into(),
        }
    } else if env.terminate_connections_on_rollback {
        Sessions::End {
            because: "terminate_connections_on_rollback, if the migration fails".into(),
        }
    } else {
        Sessions::Refuse
    };
    let needs = Needs {
        // The automatic restore chooses its method as a restore does: a role that can use none
        // is found out now, not after a failed migration.
        method: (restores && db.kind() != ProviderKind::Sqlite)
            .then(|| crate::provider::method::shown(db.restore_privileges(), false)),
        migrate_command: Some(match env.migrate_command.as_deref() {
            Some(c) => Ok(crate::provider::blank_out(c, secrets)),
            None => Err(no_command(env)),
        }),
        // A resumed run's restore takes a pre-rollback backup first.
        backs_up: take_backup || restores,
        restore_tools: restores,
        writes,
        staging: restores.then_some(db_size),
        sessions,
    };
    let mut preflight = crate::preflight::run(db, needs)?;
    let refused = preflight.take_failure().map(|(check, e)| Refused {
        check,
        error: match check {
            "sessions" => Error::new(
                Kind::Busy,
                format!(
                    "{}: with terminate_connections_on_rollback = false, the pre-migration backup \
                     could not be restored if the migration failed",
                    e.message().trim_end_matches("; nothing was changed")
                ),
            ),
            "privileges" => unrestorable(env, &e),
            _ => e,
        },
    });
    Ok((preflight, refused))
}

/// The failure of a role that could restore the pre-migration backup by no method: the
/// method's failure, its advice, and the way out of the automatic restore.
fn unrestorable(env: &Environment, e: &Error) -> Error {
    let mut hints = e.hints().to_vec();
    // The method's advice says nothing was changed; the last words here say what.
    if let Some(Hint::Text(last)) = hints.last_mut() {
        *last = last.trim_end_matches("; nothing was changed").to_string();
    }
    Error::new(
        e.kind(),
        format!(
            "the pre-migration backup could not be restored if the migration failed: {}",
            e.message()
        ),
    )
    .with_hints(&hints)
    .add_hint(format!(
        "or set rollback_on_failure = false in [environments.{}]; nothing was migrated",
        env.name
    ))
}
