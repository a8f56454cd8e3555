//! How `status` shows one environment.

use crate::config::{Environment, UrlSource};
use crate::ops::status::EnvStatus;
use crate::retention;
use crate::session::Session;
use crate::ui::{self, Ui, age};

pub fn environment(ui: &Ui, session: &Session, env: &Environment, s: &EnvStatus) {
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
    drills(ui, s);
    if let Some(i) = s.interrupted.as_ref().filter(|i| i.event == "migrate") {
        ui.warn(crate::hints::unfinished_migrate(&s.environment, i));
    } else if let Some(i) = s
        .interrupted
        .as_ref()
        .filter(|i| i.event == "restore-tables")
    {
        unfinished_tables(ui, s, i);
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

/// The restore drills: when one last passed, whether the newest failed, whether one is overdue.
fn drills(ui: &Ui, s: &EnvStatus) {
    let good = s
        .last_good_drill_age_secs
        .map(|a| format!("last passed {} ago", age(a.max(0).cast_unsigned())));
    match (&s.last_drill, good) {
        (None, _) if s.max_drill_age_secs.is_none() => {}
        (None, _) => ui.line(format!(
            "  drills:     none yet — faber-db verify --drill --env {}",
            s.environment
        )),
        (Some(d), good) if !d.ok => ui.warn(format!(
            "{}: the last restore drill failed: {}{}",
            s.environment,
            d.problem.as_deref().unwrap_or("?"),
            good.map(|g| format!(" ({g})")).unwrap_or_default()
        )),
        (Some(_), good) => ui.line(format!(
            "  drills:     {}",
            good.unwrap_or_else(|| "none passed".to_string())
        )),
    }
    if s.drill_overdue {
        let max = age(s.max_drill_age_secs.unwrap_or(0));
        ui.warn(match s.last_good_drill_age_secs {
            Some(a) => format!(
                "{}: the last restore drill that passed is {} old > {max} (max_drill_age)",
                s.environment,
                age(a.max(0).cast_unsigned())
            ),
            None => format!(
                "{}: no restore drill has passed, and max_drill_age is {max}",
                s.environment
            ),
        });
    }
}

/// A table restore that did not finish while it changed the database (MySQL): the tables it was
/// putting back, named in its detail (`tables a, b; safety backup S`), and how to finish it.
fn unfinished_tables(ui: &Ui, s: &EnvStatus, i: &crate::unfinished::Interrupted) {
    // `tables a, b; safety backup S`: the tables are named in the detail.
    let detail = i.detail.as_deref().unwrap_or("");
    let (tables, safety) = detail.split_once("; ").unwrap_or((detail, ""));
    let again = tables
        .strip_prefix("tables ")
        .unwrap_or(tables)
        .split(", ")
        .map(|t| format!("--table {}", ui::printable(t)))
        .collect::<Vec<_>>()
        .join(" ");
    ui.warn(format!(
        "{}: a table restore from {} did not finish while it changed the database ({}) — put the tables back to finish it: faber-db restore {} --from {} {again}{}",
        s.environment,
        i.backup.as_deref().unwrap_or("?"),
        ui::printable(tables),
        s.environment,
        i.backup.as_deref().unwrap_or("?"),
        if safety.is_empty() {
            String::new()
        } else {
            format!(" ({safety} holds them as they were)")
        }
    ));
}
