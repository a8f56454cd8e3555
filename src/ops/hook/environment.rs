//! Which environment a migration command acts on: the one it names or points at, the one whose
//! `migrate_command` it runs, or the project's default.

use std::path::Path;

use crate::guard::{self, Invocation};
use crate::provider::DatabaseUrl;
use crate::session::{DEFAULT_ENV_VARS, Session};
use crate::shell;

/// The environment a migration command acts on: named or pointed at by the command (a
/// variable it sets, a database URL), else the one whose `migrate_command` it runs, else the
/// project's `.env` and `default_environment`. `Ok(None)`: a database that is no environment.
pub fn which_env(
    session: &Session,
    inv: &Invocation,
    dir: &Path,
) -> crate::Result<Option<(String, &'static str)>> {
    // What the command sets: its own variables, then the dotenv files its runner loads.
    let mut from_files = Vec::new();
    for file in guard::env_files(&inv.words) {
        let path = dir.join(shell::display(&file));
        match crate::vars::read_file(&path) {
            Ok(vars) => from_files.extend(vars),
            Err(e) => {
                return Err(crate::Error::config(format!(
                    "cannot read {}, the dotenv file it loads: {e}",
                    path.display()
                )));
            }
        }
    }
    let set = |name: &str| -> Option<String> {
        inv.var(name).map(str::to_string).or_else(|| {
            from_files
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    };
    let lookup = |name: &str| {
        set(name)
            .filter(|v| shell::is_literal(v))
            .or_else(|| session.vars.get(name).map(str::to_string))
    };
    // A variable the command sets, its value expanded: `DATABASE_URL=$PROD_DATABASE_URL`.
    let value_of = |name: &str| -> crate::Result<Option<String>> {
        let Some(raw) = set(name) else {
            return Ok(None);
        };
        shell::expand(&raw, &|n| {
            if n == name {
                session.vars.get(n).map(str::to_string)
            } else {
                lookup(n)
            }
        })
        .map(Some)
        .ok_or_else(|| {
            crate::Error::config(format!(
                "it sets {name}={}, which cannot be told before it runs",
                shell::display(&raw)
            ))
        })
    };
    for var in DEFAULT_ENV_VARS {
        if let Some(name) = value_of(var)? {
            return Ok(Some((name, "named by the command")));
        }
    }
    let tool = guard::tool_words(&inv.words);
    let program = tool.first().map_or("", |p| guard::basename(p));
    // dbmate --env VAR: the variable holding the URL.
    let dbmate_var = (program == "dbmate")
        .then(|| guard::option_value(tool, &["--env", "-e"]))
        .flatten();
    let urls: Vec<String> = value_of("DATABASE_URL")?
        .into_iter()
        .chain(dbmate_var.and_then(&lookup))
        .chain(inv.words.iter().filter_map(|w| {
            let w = shell::expand(w, &lookup)?;
            let w = w.split_once('=').map_or(w.as_str(), |(_, v)| v).to_string();
            let w = w.strip_prefix("jdbc:").unwrap_or(&w).to_string();
            (w.contains("://") || w.starts_with("sqlite:")).then_some(w)
        }))
        .collect();
    if let Some(url) = urls.first() {
        return Ok(env_by_url(session, url, dir).map(|e| (e, "its database URL")));
    }
    let named = |value: &str| {
        session
            .config
            .environments
            .keys()
            .find(|n| **n == value || (value == "production" && *n == "prod"))
            .cloned()
    };
    for var in ["RAILS_ENV", "RACK_ENV", "APP_ENV", "NODE_ENV", "MIX_ENV"] {
        let value = value_of(var)?.or_else(|| {
            inv.words
                .iter()
                .filter_map(|w| guard::as_assignment(w))
                .find(|(k, _)| k == var)
                .map(|(_, v)| v)
        });
        if let Some(n) = value.as_deref().and_then(named) {
            return Ok(Some((n, "named by the command")));
        }
    }
    // `knex migrate:latest --env production`, `rails db:migrate -e production`.
    let mut flags = vec!["--env", "--environment"];
    if matches!(program, "rails" | "rake") {
        flags.push("-e");
    }
    if program != "dbmate"
        && let Some(n) = guard::option_value(tool, &flags).and_then(named)
    {
        return Ok(Some((n, "named by the command")));
    }
    let running: Vec<&String> = session
        .config
        .environments
        .iter()
        .filter(|(_, e)| {
            e.migrate_command
                .as_deref()
                .is_some_and(|c| guard::matches_command(inv, c))
        })
        .map(|(n, _)| n)
        .collect();
    if let [only] = running.as_slice() {
        return Ok(Some(((*only).clone(), "its migrate_command")));
    }
    if let Some(url) = session.vars.get("DATABASE_URL") {
        return Ok(env_by_url(session, url, &session.config.root).map(|e| (e, ".env")));
    }
    session
        .default_env()
        .map(|(name, _)| Some((name, "the default environment")))
}

/// The environment whose database `raw` (a URL, relative paths from `dir`) is.
fn env_by_url(session: &Session, raw: &str, dir: &Path) -> Option<String> {
    let wanted = DatabaseUrl::parse(raw, dir).ok()?;
    session
        .config
        .environments
        .values()
        .find(|e| {
            session
                .url(e)
                .is_ok_and(|u| guard::same_database(&u, &wanted))
        })
        .map(|e| e.name.clone())
}
