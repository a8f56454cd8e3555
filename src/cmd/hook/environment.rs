//! Which environment a command acts on, and whether two spellings name the same database.

use super::{DEFAULT_ENV_VARS, DatabaseUrl, Invocation, Path, Session, guard, shell, sql};

/// The environment a migration command acts on: named or pointed at by the command (a
/// variable it sets, a database URL), else the one whose `migrate_command` it runs, else the
/// project's `.env` and `default_environment`. `Ok(None)`: a database that is no environment.
pub(super) fn which_env(
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
pub(super) fn env_by_url(session: &Session, raw: &str, dir: &Path) -> Option<String> {
    let wanted = DatabaseUrl::parse(raw, dir).ok()?;
    session
        .config
        .environments
        .values()
        .find(|e| session.url(e).is_ok_and(|u| same_database(&u, &wanted)))
        .map(|e| e.name.clone())
}

/// Whether two URLs name the same database (users and passwords aside).
pub(super) fn same_database(a: &DatabaseUrl, b: &DatabaseUrl) -> bool {
    match (a, b) {
        (DatabaseUrl::Sqlite(x), DatabaseUrl::Sqlite(y)) => same_file(x, y),
        (DatabaseUrl::Server { kind: k1, url: u1 }, DatabaseUrl::Server { kind: k2, url: u2 }) => {
            k1 == k2
                && same_host(u1.host_str(), u2.host_str())
                && u1.port_or_known_default().or(default_port(*k1))
                    == u2.port_or_known_default().or(default_port(*k2))
                && u1.path().trim_matches('/') == u2.path().trim_matches('/')
        }
        _ => false,
    }
}

pub(super) fn default_port(kind: crate::provider::ProviderKind) -> Option<u16> {
    match kind {
        crate::provider::ProviderKind::Postgres => Some(5432),
        crate::provider::ProviderKind::Mysql => Some(3306),
        crate::provider::ProviderKind::Sqlite => None,
    }
}

pub(super) fn same_host(a: Option<&str>, b: Option<&str>) -> bool {
    let norm = |h: Option<&str>| match h.unwrap_or("") {
        "" | "localhost" | "127.0.0.1" | "[::1]" | "::1" => "localhost".to_string(),
        h if h.starts_with('/') => "localhost".to_string(),
        h => h.to_ascii_lowercase(),
    };
    norm(a) == norm(b)
}

pub(super) fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Whether the client call connects to the database of `url`.
pub(super) fn target_is(call: &sql::SqlCall, url: &DatabaseUrl, dir: &Path) -> bool {
    let target = &call.target;
    if let Some(raw) = &target.url {
        return DatabaseUrl::parse(raw, dir).is_ok_and(|t| same_database(&t, url));
    }
    match url {
        DatabaseUrl::Sqlite(path) => target
            .file
            .as_deref()
            .is_some_and(|f| same_file(&dir.join(f), path)),
        DatabaseUrl::Server { kind, url } => {
            Some(*kind) == call.kind
                && same_host(target.host.as_deref(), url.host_str())
                && target.port.or(default_port(*kind)) == url.port().or(default_port(*kind))
                && match target.database.as_deref() {
                    Some(d) => d == url.path().trim_matches('/'),
                    // mysql with no database reaches any of the server's: `DROP TABLE db.t`,
                    // `USE db`.
                    None => *kind == crate::provider::ProviderKind::Mysql,
                }
        }
    }
}

/// Whether the client call connects to the server of `url` (whichever of its databases): where
/// a `DROP DATABASE` reaches every database, the one connected to being the one it cannot drop.
pub(super) fn server_is(call: &sql::SqlCall, url: &DatabaseUrl, dir: &Path) -> bool {
    let DatabaseUrl::Server { kind, url } = url else {
        return false;
    };
    let target = &call.target;
    if let Some(raw) = &target.url {
        return match DatabaseUrl::parse(raw, dir) {
            Ok(DatabaseUrl::Server { kind: k, url: u }) => {
                k == *kind
                    && same_host(u.host_str(), url.host_str())
                    && u.port_or_known_default().or(default_port(k))
                        == url.port_or_known_default().or(default_port(*kind))
            }
            _ => false,
        };
    }
    Some(*kind) == call.kind
        && same_host(target.host.as_deref(), url.host_str())
        && target.port.or(default_port(*kind)) == url.port().or(default_port(*kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_without_a_database_reaches_every_database_of_its_server() {
        let prod = DatabaseUrl::parse("mysql://root@127.0.0.1:3306/shop", Path::new("/")).unwrap();
        let none = |_: &str| None;
        let target = |line: &str| {
            let inv = guard::invocations(line).remove(0);
            target_is(&sql::call(&inv, &none).unwrap(), &prod, Path::new("/"))
        };
        assert!(target("mysql -h127.0.0.1 -uroot -e 'DROP TABLE shop.t'"));
        assert!(target("mysql -h localhost shop -e 'DROP TABLE t'"));
        assert!(!target("mysql -h127.0.0.1 other -e 'DROP TABLE t'"));
        assert!(!target("mysql -h db.internal -e 'DROP TABLE shop.t'"));
    }
}
