//! `faber-db status [ENV]`: per environment, the database, whether it answers, its migration
//! state and its backups.

use clap::Args;
use serde::Serialize;

use crate::Report;
use crate::config::{Environment, UrlSource};
use crate::error::Result;
use crate::migrations::MigrationState;
use crate::registry::Status;
use crate::retention;
use crate::session::Session;
use crate::ui;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this environment
    pub env: Option<String>,
}

#[derive(Debug, Serialize)]
struct EnvStatus {
    environment: String,
    provider: Option<String>,
    url: Option<String>,
    url_problem: Option<String>,
    protected: bool,
    reachable: bool,
    server_version: Option<String>,
    problem: Option<String>,
    migrations: Option<MigrationState>,
    newest_backup: Option<String>,
    newest_backup_at: Option<chrono::DateTime<chrono::Utc>>,
    newest_backup_age_secs: Option<i64>,
    backups_count: usize,
    valid_backups: usize,
    /// Backups whose row counts differ from their manifests (`mismatch`): kept until looked at.
    mismatch_backups: usize,
    total_size_bytes: u64,
    retention: String,
    /// The configured `max_backup_age`, in seconds.
    max_backup_age_secs: Option<u64>,
    /// Age of the newest valid backup, in seconds.
    newest_valid_backup_age_secs: Option<i64>,
    /// No valid backup younger than `max_backup_age`.
    backup_overdue: bool,
    /// A restore or rollback that started changing the database and never reported back, or a
    /// migrate that did not finish and was not undone.
    interrupted: Option<Interrupted>,
}

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

pub fn run(session: &Session, args: StatusArgs) -> Result<Report> {
    let envs: Vec<&Environment> = match &args.env {
        Some(name) => vec![session.env(name)?],
        None => session.config.environments.values().collect(),
    };
    let reg = session.store.load()?;
    let mut out = Vec::new();
    for env in envs {
        let backups = reg.newest_first(Some(&env.name));
        let newest = backups.first();
        let mut s = EnvStatus {
            environment: env.name.clone(),
            provider: None,
            url: None,
            url_problem: None,
            protected: env.protected,
            reachable: false,
            server_version: None,
            problem: None,
            migrations: None,
            newest_backup: newest.map(|b| b.id.clone()),
            newest_backup_at: newest.map(|b| b.timestamp),
            newest_backup_age_secs: newest.map(|b| (session.ctx.now - b.timestamp).num_seconds()),
            backups_count: backups.len(),
            valid_backups: backups.iter().filter(|b| b.status == Status::Valid).count(),
            mismatch_backups: backups
                .iter()
                .filter(|b| b.status == Status::Mismatch)
                .count(),
            total_size_bytes: backups.iter().map(|b| b.size_bytes).sum(),
            retention: env.retention.to_string(),
            max_backup_age_secs: env.max_backup_age.map(|d| d.as_secs()),
            newest_valid_backup_age_secs: None,
            backup_overdue: false,
            interrupted: interrupted(session, &env.name),
        };
        let newest_valid = backups.iter().find(|b| b.status == Status::Valid);
        s.newest_valid_backup_age_secs =
            newest_valid.map(|b| (session.ctx.now - b.timestamp).num_seconds());
        if let Some(max) = env.max_backup_age {
            s.backup_overdue = s
                .newest_valid_backup_age_secs
                .is_none_or(|age| age > max.as_secs() as i64);
        }
        match session.provider(env) {
            Err(e) => s.url_problem = Some(e.one_line()),
            Ok((url, db)) => {
                s.provider = Some(db.kind().as_str().to_string());
                s.url = Some(url.redacted());
                match db
                    .check_connection()
                    .and_then(|v| Ok((v, db.inspect(env.migrations_table.as_deref(), false)?)))
                {
                    Ok((version, inspection)) => {
                        s.reachable = true;
                        s.server_version = Some(version);
                        s.migrations = inspection.migrations;
                    }
                    Err(e) => s.problem = Some(e.one_line()),
                }
            }
        }
        print(session, env, &s);
        out.push(s);
    }
    Ok(Report::new().with("environments", &out))
}

/// What did not finish in `env`: the later of an unfinished restore or rollback and an unfinished
/// migrate.
pub fn interrupted(session: &Session, env: &str) -> Option<Interrupted> {
    let events = session.store.history(env);
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
    let is_outcome =
        |e: &serde_json::Value| matches!(e["event"].as_str(), Some("restore" | "rollback"));
    let (at, started) = events.iter().enumerate().rev().find(|(_, e)| {
        matches!(
            e["event"].as_str(),
            Some("restore-started" | "rollback-started")
        )
    })?;
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

/// What `status` (and the next command on the environment) says about an unfinished migrate.
pub fn describe(env: &str, i: &Interrupted) -> String {
    let what = format!(
        "{env}: migrate {} at {}{}, database may be half-migrated",
        i.outcome.unwrap_or("interrupted"),
        i.at.as_deref().unwrap_or("?"),
        i.detail
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default()
    );
    match &i.backup {
        Some(id) => format!(
            "{what}; `faber-db rollback {env} --to {id}` restores {id}, the backup taken before it"
        ),
        None => format!(
            "{what}; no pre-migration backup was taken: check it, or restore an older backup (`faber-db list {env}`)"
        ),
    }
}

use crate::ui::age;

fn print(session: &Session, env: &Environment, s: &EnvStatus) {
    let ui = &session.ctx.ui;
    let marker = if s.protected { " [protected]" } else { "" };
    ui.line(format!("{}{marker}", ui.bold(&s.environment)));
    match (&s.url, &s.url_problem) {
        (Some(url), _) => ui.line(format!(
            "  database:   {url} ({})",
            s.provider.as_deref().unwrap_or("?")
        )),
        (None, Some(p)) => {
            let var = match &env.url {
                UrlSource::Var(v) => format!(" (variable {v})"),
                UrlSource::Inline(_) => String::new(),
            };
            ui.line(format!("  database:   not configured{var}: {p}"));
        }
        (None, None) => {}
    }
    if s.url.is_some() {
        if s.reachable {
            ui.line(format!(
                "  reachable:  yes ({})",
                s.server_version.as_deref().unwrap_or("")
            ));
        } else {
            ui.line(format!(
                "  reachable:  no — {}",
                s.problem.as_deref().unwrap_or("")
            ));
        }
    }
    if let Some(m) = &s.migrations {
        ui.line(format!(
            "  migrations: {} applied ({}), last {}",
            m.applied_count,
            m.tool,
            m.last_migration.as_deref().unwrap_or("-")
        ));
    } else if s.reachable {
        ui.line("  migrations: no known migration table");
    }
    match (&s.newest_backup, s.newest_backup_at) {
        (Some(id), Some(at)) => ui.line(format!(
            "  backups:    {} ({} valid,{} {}), newest {id}, {} ago",
            s.backups_count,
            s.valid_backups,
            if s.mismatch_backups > 0 {
                format!(" {} mismatch,", s.mismatch_backups)
            } else {
                String::new()
            },
            ui::size(s.total_size_bytes),
            retention::short(session.ctx.now - at)
        )),
        _ => ui.line(format!(
            "  backups:    none yet — faber-db backup {}",
            s.environment
        )),
    }
    ui.line(format!("  retention:  {}", s.retention));
    if let Some(i) = s.interrupted.as_ref().filter(|i| i.event == "migrate") {
        ui.warn(describe(&s.environment, i));
    } else if let Some(i) = &s.interrupted {
        let backup = i.backup.as_deref().unwrap_or("?");
        ui.warn(format!(
            "{}: a {} from {backup} did not finish{} while it changed the database — restore again to finish it: faber-db restore {} --from {backup}{}",
            s.environment,
            i.event,
            i.at.as_deref().map(|t| format!(" (started {t})")).unwrap_or_default(),
            s.environment,
            i.detail
                .as_deref()
                .map(|d| if d.starts_with("safety backup ") {
                    format!(" ({d} holds the data from before)")
                } else {
                    format!(" ({d})")
                })
                .unwrap_or_default()
        ));
    }
    if s.backup_overdue {
        let max = s.max_backup_age_secs.unwrap_or(0);
        let max = age(max);
        match s.newest_valid_backup_age_secs {
            Some(a) => ui.warn(format!(
                "{}: the newest valid backup is {} old > {max} (max_backup_age)",
                s.environment,
                age(a.max(0) as u64)
            )),
            None => ui.warn(format!(
                "{}: no valid backup, and max_backup_age is {max}",
                s.environment
            )),
        }
    }
}
