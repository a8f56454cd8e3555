//! What did not finish in an environment, read from its history: a restore or rollback that
//! began changing the database and never reported back, or a migrate whose command did not
//! finish and whose pre-migration backup was not restored. `status` reports it; the next
//! restore, rollback or migrate, and the plugin's hook, act on it.

use serde::Serialize;

use crate::error::Remedy;
use crate::registry::Store;

#[derive(Debug, Serialize)]
pub struct Interrupted {
    /// `restore`, `rollback` or `migrate`.
    pub event: String,
    /// The backup being restored; for a migrate, its pre-migration backup.
    pub backup: Option<String>,
    /// When it started.
    pub at: Option<String>,
    pub detail: Option<String>,
    /// For a migrate: `interrupted` (killed, or stopped by a signal) or `failed` (and its
    /// automatic restore did not happen).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<&'static str>,
}

/// What did not finish in `env`: the later of an unfinished restore or rollback and an unfinished
/// migrate.
pub fn interrupted(store: &Store, env: &str) -> Option<Interrupted> {
    let events = store.history(env);
    let restore = unfinished_restore(&events);
    let migrate = unfinished_migrate(&events);
    match (restore, migrate) {
        (Some((a, r)), Some((b, m))) => Some(if a > b { r } else { m }),
        (r, m) => r.or(m).map(|(_, i)| i),
    }
}

fn text(e: &serde_json::Value, k: &str) -> Option<String> {
    e[k].as_str().map(str::to_string)
}

/// The restore or rollback that began changing the database and did not finish: its
/// `*-started` event has no outcome from the same run (the run was killed), or an outcome that
/// says the database was left incomplete — and no restore or rollback has succeeded since.
fn unfinished_restore(events: &[serde_json::Value]) -> Option<(usize, Interrupted)> {
    let (at, started) = events.iter().enumerate().rev().find(|(_, e)| {
        matches!(
            e["event"].as_str(),
            Some("restore-started" | "rollback-started" | "restore-tables-started")
        )
    })?;
    // A whole restore or rollback finishes anything; a table restore only a table restore.
    let tables = started["event"] == "restore-tables-started";
    let is_outcome = |e: &serde_json::Value| match e["event"].as_str() {
        Some("restore" | "rollback") => true,
        Some("restore-tables") => tables,
        _ => false,
    };
    let later = &events[at + 1..];
    if later.iter().any(|e| is_outcome(e) && e["ok"] == true) {
        return None;
    }
    let run = &started["run"];
    let outcome = later
        .iter()
        .find(|e| is_outcome(e) && !run.is_null() && &e["run"] == run);
    if let Some(outcome) = outcome {
        let incomplete = outcome["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("incomplete"));
        if !incomplete {
            return None;
        }
    }
    let event = started["event"].as_str()?.strip_suffix("-started")?;
    Some((
        at,
        Interrupted {
            event: event.to_string(),
            backup: text(started, "id"),
            at: text(started, "time"),
            detail: text(started, "detail"),
            outcome: None,
        },
    ))
}

/// The migrate whose command began and did not finish, with nothing restored since: its
/// `migrate-started` event has no outcome from the same run (faber-db was killed), or a failed
/// one (a failed or interrupted command) with no restore of the run's own begun — and no
/// migrate, restore or rollback of the environment has succeeded since.
fn unfinished_migrate(events: &[serde_json::Value]) -> Option<(usize, Interrupted)> {
    let (at, started) = events
        .iter()
        .enumerate()
        .rev()
        .find(|(_, e)| e["event"] == "migrate-started")?;
    let later = &events[at + 1..];
    let cleared = |e: &serde_json::Value| {
        matches!(
            e["event"].as_str(),
            Some("migrate" | "restore" | "rollback")
        ) && e["ok"] == true
    };
    if later.iter().any(cleared) {
        return None;
    }
    let run = &started["run"];
    let same = |e: &serde_json::Value| !run.is_null() && &e["run"] == run;
    // Its automatic restore began changing the database: that restore is what is reported.
    if later
        .iter()
        .any(|e| same(e) && e["event"] == "rollback-started")
    {
        return None;
    }
    let outcome = later.iter().find(|e| same(e) && e["event"] == "migrate");
    let (outcome, detail) = match outcome {
        None => ("interrupted", None),
        Some(o) if o["interrupted"] == true => ("interrupted", text(o, "detail")),
        Some(o) => ("failed", text(o, "detail")),
    };
    Some((
        at,
        Interrupted {
            event: "migrate".to_string(),
            backup: text(started, "id"),
            at: text(started, "time"),
            detail,
            outcome: Some(outcome),
        },
    ))
}

/// What `status` (and the next command on the environment) says happened in an unfinished
/// migrate; [`remedy`] is what to do about it.
pub fn summary(env: &str, i: &Interrupted) -> String {
    format!(
        "{env}: migrate {} at {}{}, database may be half-migrated",
        i.outcome.unwrap_or("interrupted"),
        when(i),
        i.detail
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default()
    )
}

/// What to do about an unfinished migrate: roll back to the backup taken before it, or, without
/// one, check the database or restore an older backup.
pub fn remedy(env: &str, i: &Interrupted) -> Remedy {
    match &i.backup {
        Some(id) => Remedy::RollBackTo {
            env: env.to_string(),
            id: id.clone(),
        },
        None => Remedy::RestoreOlder {
            env: env.to_string(),
        },
    }
}

/// When it started, to the second, as said to a person (the history keeps nanoseconds).
pub fn when(i: &Interrupted) -> String {
    match i.at.as_deref() {
        Some(at) => chrono::DateTime::parse_from_rfc3339(at).map_or_else(
            |_| at.to_string(),
            |t| {
                t.with_timezone(&chrono::Utc)
                    .format("%Y-%m-%d %H:%M:%S UTC")
                    .to_string()
            },
        ),
        None => "?".to_string(),
    }
}
