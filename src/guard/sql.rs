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
/// The most SQL files read for one command (`\i` may include more).
const MAX_SQL_FILES: usize = 32;

/// A database client run by the line.
#[derive(Debug, Clone, Default)]
pub struct SqlCall {
    pub kind: Option<ProviderKind>,
    /// SQL given on the command line, in a heredoc or an `echo` piped in.
    pub texts: Vec<String>,
    /// Files it reads SQL from (`-f`, `< file`, `cat file |`), as written.
    pub files: Vec<String>,
    pub target: Target,
    /// Some of the SQL cannot be told before it runs (`-c "$(cat x)"`, `curl … | psql`).
    pub unknown_sql: bool,
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
    if super::admin::PROGRAMS.contains(&inv.program()) {
        return super::admin::call(inv, lookup);
    }
    let kind = match inv.program() {
        "psql" => ProviderKind::Postgres,
        "mysql" | "mariadb" => ProviderKind::Mysql,
        "sqlite3" | "sqlite" => ProviderKind::Sqlite,
        _ => return None,
    };
    // Words expanded where the variables are known; the others keep their markers, so that
    // each use can tell whether it is known.
    let words: Vec<String> = inv.words[1..]
        .iter()
        .map(|w| shell::expand(w, lookup).unwrap_or_else(|| w.clone()))
        .collect();
    let var = |name: &str| inv.var(name).map(str::to_string).or_else(|| lookup(name));
    let mut call = SqlCall {
        kind: Some(kind),
        ..SqlCall::default()
    };
    let known = |value: String, unknown: &mut bool| {
        if !shell::is_literal(&value) {
            *unknown = true;
        }
        shell::display(&value)
    };
    let (options, positional) = client_options(kind, &words);
    let (mut sql_unknown, mut target_unknown) = (false, false);
    for (name, value) in options {
        match (kind, name.as_str()) {
            (ProviderKind::Postgres, "c" | "command")
            | (ProviderKind::Mysql, "e" | "execute")
            | (ProviderKind::Sqlite, "cmd") => call.texts.push(known(value, &mut sql_unknown)),
            (ProviderKind::Postgres, "f" | "file") | (ProviderKind::Sqlite, "init") => {
                call.files.push(known(value, &mut sql_unknown));
            }
            (ProviderKind::Postgres, "d" | "dbname") | (ProviderKind::Mysql, "D" | "database") => {
                set_database(&mut call.target, known(value, &mut target_unknown));
            }
            (_, "h" | "host") => call.target.host = Some(known(value, &mut target_unknown)),
            (ProviderKind::Postgres, "p" | "port") | (ProviderKind::Mysql, "P" | "port") => {
                call.target.port = known(value, &mut target_unknown).parse().ok();
            }
            _ => {}
        }
    }
    let mut positional = positional.into_iter();
    match kind {
        ProviderKind::Sqlite => {
            call.target.file = positional.next().map(|f| known(f, &mut target_unknown));
            let texts: Vec<String> = positional.map(|t| known(t, &mut sql_unknown)).collect();
            call.texts.extend(texts);
        }
        _ => {
            if let Some(first) = positional.next()
                && call.target.database.is_none()
                && call.target.url.is_none()
            {
                set_database(&mut call.target, known(first, &mut target_unknown));
            }
        }
    }
    match &inv.stdin {
        Some(Stdin::Text(t)) => call.texts.push(t.clone()),
        Some(Stdin::File(f)) => {
            let f = shell::expand(f, lookup).unwrap_or_else(|| f.clone());
            call.files.push(known(f, &mut sql_unknown));
        }
        None => {}
    }
    if let Some(from) = &inv.piped_from {
        let args = from[1..].iter().filter(|w| !w.starts_with('-'));
        match from.first().map(|w| super::basename(w)) {
            Some("echo" | "printf") => {
                let text: Vec<String> = args.map(|w| known(w.clone(), &mut sql_unknown)).collect();
                call.texts.push(text.join(" "));
            }
            Some("cat") => {
                let files: Vec<String> = args.map(|w| known(w.clone(), &mut sql_unknown)).collect();
                call.files.extend(files);
            }
            // `curl … | psql`, `pg_dump … | psql`: SQL only running it would tell.
            _ => sql_unknown = true,
        }
    }
    call.target.unknown = target_unknown;
    call.unknown_sql = sql_unknown;
    // What the words left out, libpq and the MySQL client take from their variables.
    defaults_from_vars(kind, &mut call.target, &var);
    Some(call)
}

/// A client's options (name, value) and positional words, by the options each client has.
fn client_options(kind: ProviderKind, words: &[String]) -> (Vec<(String, String)>, Vec<String>) {
    match kind {
        ProviderKind::Postgres => split(
            words,
            "cdfhpUvoPTFRL",
            &[
                "command",
                "dbname",
                "file",
                "host",
                "port",
                "username",
                "set",
                "variable",
                "output",
                "pset",
                "log-file",
                "field-separator",
                "record-separator",
                "table-attr",
            ],
        ),
        ProviderKind::Mysql => split(
            words,
            "eDhPuS",
            &[
                "execute",
                "database",
                "host",
                "port",
                "user",
                "socket",
                "protocol",
                "default-character-set",
                "init-command",
                "delimiter",
                "connect-timeout",
                "pager",
                "tee",
                "ssl-mode",
                "ssl-ca",
                "ssl-cert",
                "ssl-key",
                "plugin-dir",
                "default-auth",
                "character-sets-dir",
                "bind-address",
            ],
        ),
        ProviderKind::Sqlite => split(
            words,
            "",
            &["cmd", "init", "separator", "newline", "nullvalue"],
        ),
    }
}

/// What libpq (`PGHOST`, `PGPORT`, `PGDATABASE`, …) and the MySQL client (`MYSQL_HOST`,
/// `MYSQL_TCP_PORT`) take from their variables where the words left it out.
pub(super) fn defaults_from_vars(
    kind: ProviderKind,
    target: &mut Target,
    var: &dyn Fn(&str) -> Option<String>,
) {
    if kind == ProviderKind::Postgres {
        if target.url.is_none() {
            target.host = target.host.take().or_else(|| var("PGHOST"));
            target.port = target
                .port
                .or_else(|| var("PGPORT").and_then(|p| p.parse().ok()));
            target.database = target
                .database
                .take()
                .or_else(|| var("PGDATABASE"))
                .or_else(|| var("PGUSER"))
                .or_else(|| var("USER"));
        }
    } else if kind == ProviderKind::Mysql {
        target.host = target.host.take().or_else(|| var("MYSQL_HOST"));
        target.port = target
            .port
            .or_else(|| var("MYSQL_TCP_PORT").and_then(|p| p.parse().ok()));
    }
}

/// The files a client's meta-commands read in SQL text: psql's `\i FILE` (`\ir`, `\include`,
/// `\include_relative`), sqlite3's `.read FILE`.
fn included(text: &str) -> Vec<String> {
    text.lines()
        .flat_map(|line| line.split("\\\\"))
        .filter_map(|line| {
            let line = line.trim_start().trim_start_matches('\\');
            let mut words = line.split_whitespace();
            match words.next()? {
                "i" | "ir" | "include" | "include_relative" | ".read" => words
                    .next()
                    .map(|f| f.trim_matches(['\'', '"']).to_string()),
                _ => None,
            }
        })
        .collect()
}

/// A database argument: a URL, a libpq `key=value` string, or a name.
pub(super) fn set_database(target: &mut Target, value: String) {
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
pub(super) fn split(
    words: &[String],
    short: &str,
    long: &[&str],
) -> (Vec<(String, String)>, Vec<String>) {
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
        let mut files = self.files.clone();
        for text in &self.texts {
            out.extend(sqlscan::destructive(text, dialect));
            files.extend(included(text));
        }
        // The files read, and those they include, up to a bound.
        let mut read = 0;
        while let Some(file) = files.pop()
            && read < MAX_SQL_FILES
        {
            read += 1;
            let path = dir.join(file);
            let text = std::fs::metadata(&path)
                .ok()
                .filter(|m| m.is_file() && m.len() <= MAX_SQL_FILE)
                .and_then(|_| std::fs::read_to_string(&path).ok());
            if let Some(text) = text {
                out.extend(sqlscan::destructive(&text, dialect));
                files.extend(included(&text));
            }
        }
        out
    }
}
