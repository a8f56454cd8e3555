//! SQL sent straight to a database with `psql`, `mysql`/`mariadb` or `sqlite3`: where it goes
//! and what it says, from the command's words, its heredoc, the file it reads, or the `echo`
//! piped into it.

use std::path::Path;

use super::Invocation;
use crate::provider::ProviderKind;
use crate::shell::{self, Stdin};
use crate::sqlscan::{self, Dialect, Finding};

/// The largest SQL file read to judge what it does.
const MAX_SQL_FILE: u64 = 8 << 20;

/// A database client run by the line.
#[derive(Debug, Clone, Default)]
pub struct SqlCall {
    pub kind: Option<ProviderKind>,
    /// SQL given on the command line, in a heredoc or an `echo` piped in.
    pub texts: Vec<String>,
    /// Files it reads SQL from (`-f`, `< file`, `cat file |`), as written.
    pub files: Vec<String>,
    pub target: Target,
}

/// Where a client connects, as far as its words and the variables known tell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// A URL given whole (`psql postgres://…`, `mysql` has none).
    pub url: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub database: Option<String>,
    /// The SQLite file (`sqlite3 FILE`).
    pub file: Option<String>,
    /// Some of it could not be told (a variable with no known value, a `$(…)`).
    pub unknown: bool,
}

/// The client an invocation runs, if it is one, with its variables expanded by `lookup`.
pub fn call(inv: &Invocation, lookup: &dyn Fn(&str) -> Option<String>) -> Option<SqlCall> {
    let kind = match inv.program() {
        "psql" => ProviderKind::Postgres,
        "mysql" | "mariadb" => ProviderKind::Mysql,
        "sqlite3" | "sqlite" => ProviderKind::Sqlite,
        _ => return None,
    };
    let mut unknown = false;
    let words: Vec<String> = inv.words[1..]
        .iter()
        .map(|w| {
            shell::expand(w, lookup).unwrap_or_else(|| {
                unknown = true;
                shell::display(w)
            })
        })
        .collect();
    let var = |name: &str| inv.var(name).map(str::to_string).or_else(|| lookup(name));
    let mut call = SqlCall {
        kind: Some(kind),
        ..SqlCall::default()
    };
    call.target.unknown = unknown;
    let (options, positional) = match kind {
        ProviderKind::Postgres => split(
            &words,
            "cdfhpUvoPTFRL",
            &[
                "command", "dbname", "file", "host", "port", "username", "set", "variable",
                "output", "pset", "log-file",
            ],
        ),
        ProviderKind::Mysql => split(
            &words,
            "eDhPuS",
            &["execute", "database", "host", "port", "user", "socket"],
        ),
        ProviderKind::Sqlite => split(
            &words,
            "",
            &["cmd", "init", "separator", "newline", "nullvalue"],
        ),
    };
    for (name, value) in options {
        match (kind, name.as_str()) {
            (ProviderKind::Postgres, "c" | "command")
            | (ProviderKind::Mysql, "e" | "execute")
            | (ProviderKind::Sqlite, "cmd") => call.texts.push(value),
            (ProviderKind::Postgres, "f" | "file") | (ProviderKind::Sqlite, "init") => {
                call.files.push(value)
            }
            (ProviderKind::Postgres, "d" | "dbname") | (ProviderKind::Mysql, "D" | "database") => {
                set_database(&mut call.target, value)
            }
            (_, "h" | "host") => call.target.host = Some(value),
            (ProviderKind::Postgres, "p" | "port") | (ProviderKind::Mysql, "P" | "port") => {
                call.target.port = value.parse().ok()
            }
            _ => {}
        }
    }
    let mut positional = positional.into_iter();
    match kind {
        ProviderKind::Sqlite => {
            call.target.file = positional.next();
            call.texts.extend(positional);
        }
        _ => {
            if let Some(first) = positional.next()
                && call.target.database.is_none()
                && call.target.url.is_none()
            {
                set_database(&mut call.target, first);
            }
        }
    }
    match &inv.stdin {
        Some(Stdin::Text(t)) => call.texts.push(t.clone()),
        Some(Stdin::File(f)) => call
            .files
            .push(shell::expand(f, lookup).unwrap_or_else(|| shell::display(f))),
        None => {}
    }
    if let Some(from) = &inv.piped_from {
        match from.first().map(|w| super::basename(w)) {
            Some("echo" | "printf") => call.texts.push(
                from[1..]
                    .iter()
                    .filter(|w| !w.starts_with('-'))
                    .map(|w| shell::display(w))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            Some("cat") => call.files.extend(
                from[1..]
                    .iter()
                    .filter(|w| !w.starts_with('-'))
                    .map(|w| shell::display(w)),
            ),
            _ => {}
        }
    }
    // What the words left out, libpq and the MySQL client take from their variables.
    if kind == ProviderKind::Postgres {
        if call.target.url.is_none() {
            call.target.host = call.target.host.take().or_else(|| var("PGHOST"));
            call.target.port = call
                .target
                .port
                .or_else(|| var("PGPORT").and_then(|p| p.parse().ok()));
            call.target.database = call
                .target
                .database
                .take()
                .or_else(|| var("PGDATABASE"))
                .or_else(|| var("PGUSER"))
                .or_else(|| var("USER"));
        }
    } else if kind == ProviderKind::Mysql {
        call.target.host = call.target.host.take().or_else(|| var("MYSQL_HOST"));
        call.target.port = call
            .target
            .port
            .or_else(|| var("MYSQL_TCP_PORT").and_then(|p| p.parse().ok()));
    }
    Some(call)
}

/// A database argument: a URL, a libpq `key=value` string, or a name.
fn set_database(target: &mut Target, value: String) {
    if value.contains("://") {
        target.url = Some(value);
    } else if value.contains('=') {
        for pair in value.split_whitespace() {
            match pair.split_once('=') {
                Some(("host", h)) => target.host = Some(h.to_string()),
                Some(("port", p)) => target.port = p.parse().ok(),
                Some(("dbname", d)) => target.database = Some(d.to_string()),
                _ => {}
            }
        }
    } else {
        target.database = Some(value);
    }
}

/// Options (name, value) and positional words. `short` lists the one-letter options taking a
/// value (attached, `-hdb`, or next, `-h db`); `long` the long ones (`--host=db`, `--host db`).
/// A MySQL password is never a value here (`-pSECRET` is attached only, and skipped).
fn split(words: &[String], short: &str, long: &[&str]) -> (Vec<(String, String)>, Vec<String>) {
    let mut options = Vec::new();
    let mut positional = Vec::new();
    let mut i = 0;
    while let Some(w) = words.get(i) {
        i += 1;
        if w == "--" {
            positional.extend(words[i..].iter().cloned());
            break;
        }
        if let Some(body) = w.strip_prefix("--") {
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            if long.contains(&name) {
                let value = value.or_else(|| {
                    i += 1;
                    words.get(i - 1).cloned()
                });
                options.push((name.to_string(), value.unwrap_or_default()));
            }
            continue;
        }
        // sqlite3 spells its long options with one dash.
        if let Some(body) = w.strip_prefix('-')
            && long.contains(&body)
            && short.is_empty()
        {
            i += 1;
            options.push((
                body.to_string(),
                words.get(i - 1).cloned().unwrap_or_default(),
            ));
            continue;
        }
        if let Some(body) = w.strip_prefix('-').filter(|b| !b.is_empty()) {
            for (at, c) in body.char_indices() {
                if short.contains(c) {
                    let rest = &body[at + c.len_utf8()..];
                    let value = if rest.is_empty() {
                        i += 1;
                        words.get(i - 1).cloned().unwrap_or_default()
                    } else {
                        rest.to_string()
                    };
                    options.push((c.to_string(), value));
                    break;
                }
                if c == 'p' && !short.contains('p') {
                    // mysql -pSECRET: the rest is the password.
                    break;
                }
            }
            continue;
        }
        positional.push(w.clone());
    }
    (options, positional)
}

impl SqlCall {
    /// The destructive statements in the SQL it sends: texts and files (read from `dir`, the
    /// directory the command runs in). A file that cannot be read is said as one finding.
    pub fn findings(&self, dir: &Path) -> Vec<Finding> {
        let dialect = match self.kind {
            Some(ProviderKind::Postgres) => Dialect::Postgres,
            Some(ProviderKind::Mysql) => Dialect::Mysql,
            _ => Dialect::Sqlite,
        };
        let mut out = Vec::new();
        for text in &self.texts {
            out.extend(sqlscan::destructive(text, dialect));
        }
        for file in &self.files {
            let path = dir.join(file);
            let text = std::fs::metadata(&path)
                .ok()
                .filter(|m| m.is_file() && m.len() <= MAX_SQL_FILE)
                .and_then(|_| std::fs::read_to_string(&path).ok());
            if let Some(text) = text {
                out.extend(sqlscan::destructive(&text, dialect));
            }
        }
        out
    }
}
