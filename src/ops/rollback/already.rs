//! Whether an environment's database is already as a backup left it: restored from it (by a
//! restore, a rollback or a failed migrate's automatic restore), nothing changed since.

use super::same_state;
use crate::config::Environment;
use crate::error::Result;
use crate::migrations::describe;
use crate::provider::Provider;
use crate::registry::BackupRecord;
use crate::session::Session;

/// Events of the audit log that never change an environment's database. Any other event of the
/// environment (`migrate`, a `restore` or `rollback` that failed or was cut short, a Claude Code
/// `hook` decision on an agent's command, one this version does not know) may have.
const LEAVES_DATABASE: [&str; 10] = [
    "backup",
    "push",
    "fetch",
    "pull",
    "cleanup",
    "delete",
    "repair",
    "notify",
    "restore-into",
    "drill",
];

/// The last restore of a backup into an environment, as [`already_restored`] reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LastRestore {
    /// The backup restored.
    pub backup: String,
    /// What restored it: `migrate` (its automatic restore after a failed migration),
    /// `rollback` or `restore`.
    pub by: &'static str,
    /// When it finished.
    pub at: chrono::DateTime<chrono::Utc>,
}

impl LastRestore {
    /// What restored it, for people: `by a rollback`.
    pub fn describe(&self) -> &'static str {
        match self.by {
            "migrate" => "by the failed migrate's automatic restore",
            "rollback" => "by a rollback",
            _ => "by a restore",
        }
    }
}

/// Whether the database is as a backup left it.
#[derive(Debug)]
pub enum Already {
    /// The database is as the backup left it: restored from it, nothing changed since.
    Yes(LastRestore),
    /// It was restored from the backup, and has changed since (what differs).
    Changed(LastRestore, Vec<String>),
    No,
}

/// The last restore of `record` into `env` when the database is still as it left it (see
/// [`check`]); warns, and says `None`, when the database was restored from it and has changed
/// since.
pub fn already_restored(
    session: &Session,
    env: &Environment,
    db: &dyn Provider,
    record: &BackupRecord,
) -> Result<Option<LastRestore>> {
    Ok(match check(session, env, db, record)? {
        Already::Yes(last) => Some(last),
        Already::Changed(last, diffs) => {
            session.events().warn(&format!(
                "`{}` was restored from {} at {}, but has changed since ({}): rolling back to it again",
                env.name,
                record.id,
                last.at.format("%Y-%m-%d %H:%M:%S UTC"),
                diffs.join(", ")
            ));
            None
        }
        Already::No => None,
    })
}

/// Whether `env`'s database is already as `record` left it: the last event of the audit log
/// that may have changed the database is a successful restore or rollback of `record` into
/// `env` (migrate's automatic restore is one), and the live database has the backup's
/// migration state, tables and row counts (the counts of tables estimated on either side not
/// compared).
pub fn check(
    session: &Session,
    env: &Environment,
    db: &dyn Provider,
    record: &BackupRecord,
) -> Result<Already> {
    let history = session.store.history(&env.name);
    let Some(last) = history.iter().rev().find(|e| {
        !e["event"]
            .as_str()
            .is_some_and(|name| LEAVES_DATABASE.contains(&name))
    }) else {
        return Ok(Already::No);
    };
    let by = match last["event"].as_str() {
        Some("rollback") => "rollback",
        Some("restore") => "restore",
        _ => return Ok(Already::No),
    };
    if last["ok"] != true || last["id"] != record.id.as_str() {
        return Ok(Already::No);
    }
    let Ok(at) = serde_json::from_value(last["time"].clone()) else {
        return Ok(Already::No);
    };
    // A rollback in the run of a failed migrate is that migrate's automatic restore.
    let by = if by == "rollback"
        && last["run"].is_string()
        && history
            .iter()
            .any(|e| e["event"] == "migrate" && e["run"] == last["run"])
    {
        "migrate"
    } else {
        by
    };
    let last = LastRestore {
        backup: record.id.clone(),
        by,
        at,
    };
    if !db.exists()? {
        return Ok(Already::Changed(
            last,
            vec!["the database does not exist".to_string()],
        ));
    }
    let live = db.inspect(env.migrations_table.as_deref(), true)?;
    let mut diffs = Vec::new();
    if !same_state(live.migrations.as_ref(), record.migrations.as_ref()) {
        diffs.push(format!(
            "migrations: {}",
            describe(live.migrations.as_ref())
        ));
    }
    diffs.extend(crate::ops::verify::compare_tables(
        record.provider,
        &record.tables,
        &live.tables,
    ));
    Ok(if diffs.is_empty() {
        Already::Yes(last)
    } else {
        Already::Changed(last, diffs)
    })
}
