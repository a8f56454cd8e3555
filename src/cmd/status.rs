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
use crate::unfinished::{Interrupted, interrupted};

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
            interrupted: interrupted(&session.store, &env.name),
        };
        let newest_valid = backups.iter().find(|b| b.status == Status::Valid);
        s.newest_valid_backup_age_secs =
            newest_valid.map(|b| (session.ctx.now - b.timestamp).num_seconds());
        if let Some(max) = env.max_backup_age {
            s.backup_overdue = s
                .newest_valid_backup_age_secs
                .is_none_or(|age| age > i64::try_from(max.as_secs()).unwrap_or(i64::MAX));
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
        ui.warn(crate::hints::unfinished_migrate(&s.environment, i));
    } else if let Some(i) = &s.interrupted {
        let backup = i.backup.as_deref().unwrap_or("?");
        ui.warn(format!(
            "{}: a {} from {backup} did not finish{} while it changed the database — restore again to finish it: faber-db restore {} --from {backup}{}",
            s.environment,
            i.event,
            i.at
                .as_ref()
                .map(|_| format!(" (started {})", crate::unfinished::when(i)))
                .unwrap_or_default(),
            s.environment,
            i.detail
                .as_deref()
                .map(|d| match d.strip_prefix("in place; ").unwrap_or(d) {
                    s if s.starts_with("safety backup ") => {
                        format!(" ({s} holds the data from before)")
                    }
                    _ => format!(" ({d})"),
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
                age(a.max(0).cast_unsigned())
            )),
            None => ui.warn(format!(
                "{}: no valid backup, and max_backup_age is {max}",
                s.environment
            )),
        }
    }
}
