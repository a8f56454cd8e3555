//! What an agent's shell command would do to a project's databases, told from its text alone:
//! the migrations it runs, the faber-db commands it gives, the SQL it sends. The pre-tool-use
//! hook decides on these; nothing here reads a config, connects, or runs anything.

pub mod redact;
pub mod sql;

use crate::shell::{self, Simple, Stdin};

/// One command the line would run, with the wrappers around it (`sudo`, `env`, `time`, …)
/// taken off, and what the line set up before it.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    /// Its words, the program first; variables and substitutions as [`shell`] markers.
    pub words: Vec<String>,
    /// Variables set for it: its own `NAME=value` prefix and `env NAME=value`, after those of
    /// earlier `export`s and bare assignments of the line (later ones win).
    pub vars: Vec<(String, String)>,
    pub stdin: Option<Stdin>,
    /// The words of the command whose output it reads (`echo … | psql`).
    pub piped_from: Option<Vec<String>>,
    /// The directory the line moved to before it (`cd api && …`), as written.
    pub dirs: Vec<String>,
    /// The simple command it came from, as written (for messages).
    pub text: String,
}

impl Invocation {
    /// The program's file name: `prisma` for `./node_modules/.bin/prisma`.
    pub fn program(&self) -> &str {
        self.words.first().map_or("", |w| basename(w))
    }

    /// The value the line gives variable `name`, if it sets one.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The commands `line` would run, in order, `sh -c` and `eval` strings included.
pub fn invocations(line: &str) -> Vec<Invocation> {
    let mut out = Vec::new();
    let mut context = Context::default();
    collect(&shell::parse(line), 0, &mut context, &mut out);
    out
}

#[derive(Default, Clone)]
struct Context {
    vars: Vec<(String, String)>,
    dirs: Vec<String>,
}

fn collect(simples: &[Simple], depth: usize, context: &mut Context, out: &mut Vec<Invocation>) {
    let mut previous: Option<Vec<String>> = None;
    for simple in simples {
        let (vars, words) = unwrap(simple);
        let piped_from = if simple.piped { previous.take() } else { None };
        previous = Some(words.clone());
        let Some(first) = words.first() else {
            context.vars.extend(vars);
            continue;
        };
        match basename(first) {
            "cd" | "pushd" => {
                match words.get(1).map(|w| shell::display(w)) {
                    Some(dir) if dir.starts_with('/') || dir.starts_with('~') => {
                        context.dirs = vec![dir];
                    }
                    Some(dir) if dir != "-" => context.dirs.push(dir),
                    _ => context.dirs.clear(),
                }
                continue;
            }
            "export" | "declare" | "typeset" | "local" | "readonly" => {
                for w in &words[1..] {
                    if let Some((k, v)) = w.split_once('=') {
                        context.vars.push((k.to_string(), v.to_string()));
                    }
                }
                continue;
            }
            "sh" | "bash" | "zsh" | "dash" | "ksh" => {
                if let Some(i) = words.iter().position(|w| is_dash_c(w))
                    && let Some(script) = words.get(i + 1)
                {
                    let mut inner = context.clone();
                    inner.vars.extend(vars);
                    collect(
                        &shell::parse_at(script, depth + 1),
                        depth + 1,
                        &mut inner,
                        out,
                    );
                    continue;
                }
            }
            "eval" => {
                let script = words[1..].join(" ");
                let mut inner = context.clone();
                inner.vars.extend(vars);
                collect(
                    &shell::parse_at(&script, depth + 1),
                    depth + 1,
                    &mut inner,
                    out,
                );
                continue;
            }
            _ => {}
        }
        let mut all_vars = context.vars.clone();
        all_vars.extend(vars);
        out.push(Invocation {
            text: simple_text(simple),
            words,
            vars: all_vars,
            stdin: simple.stdin.clone(),
            piped_from,
            dirs: context.dirs.clone(),
        });
    }
}

/// `-c`, or a cluster of short options ending in it (`-lc`, `-ec`).
fn is_dash_c(w: &str) -> bool {
    w.len() >= 2
        && w.starts_with('-')
        && !w.starts_with("--")
        && w.ends_with('c')
        && w[1..].chars().all(|c| c.is_ascii_alphabetic())
}

fn simple_text(s: &Simple) -> String {
    s.assigns
        .iter()
        .map(|(k, v)| format!("{k}={}", shell::display(v)))
        .chain(s.words.iter().map(|w| shell::display(w)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The last path component of a word: `prisma` of `node_modules/.bin/prisma`.
pub fn basename(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// Takes the shell keywords and the wrappers that run another command (`sudo`, `env`, `time`,
/// `nohup`, `timeout 60`, `xargs`) off a simple command: its variables and the real words.
fn unwrap(simple: &Simple) -> (Vec<(String, String)>, Vec<String>) {
    let mut vars = simple.assigns.clone();
    let mut words: &[String] = &simple.words;
    while let Some(first) = words.first() {
        let rest = &words[1..];
        words = match basename(first) {
            "if" | "then" | "else" | "elif" | "do" | "while" | "until" | "!" | "{" | "}" | "("
            | "time" | "command" | "builtin" | "exec" | "nohup" | "unbuffer" => rest,
            "stdbuf" => skip_options(rest, &["-i", "-o", "-e"]),
            "sudo" | "doas" => skip_options(rest, &["-u", "-g", "-C", "-h", "-p", "-U", "-D"]),
            "nice" | "ionice" => skip_options(rest, &["-n", "-c"]),
            "timeout" => {
                let rest = skip_options(rest, &["-s", "-k", "--signal", "--kill-after"]);
                rest.get(1..).unwrap_or_default()
            }
            "xargs" => skip_options(rest, &["-I", "-n", "-L", "-P", "-d", "-E", "-s", "-a"]),
            "env" => {
                let mut rest = skip_options(rest, &["-u", "-C", "-S", "--unset", "--chdir"]);
                while let Some((k, v)) = rest.first().and_then(|w| as_assignment(w)) {
                    vars.push((k, v));
                    rest = &rest[1..];
                }
                rest
            }
            _ => break,
        };
    }
    (vars, words.to_vec())
}

/// `NAME=value` as a word (after `env`, or in `rake db:migrate RAILS_ENV=production`).
pub fn as_assignment(word: &str) -> Option<(String, String)> {
    let (k, v) = word.split_once('=')?;
    let valid = k
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then(|| (k.to_string(), v.to_string()))
}

/// Words after the leading options, where `with_value` options take the next word.
fn skip_options<'a>(words: &'a [String], with_value: &[&str]) -> &'a [String] {
    let mut i = 0;
    while let Some(w) = words.get(i) {
        if w == "--" {
            return &words[i + 1..];
        }
        if !w.starts_with('-') || w == "-" {
            break;
        }
        i += if with_value.contains(&w.as_str()) {
            2
        } else {
            1
        };
    }
    words.get(i..).unwrap_or_default()
}

/// The words of the tool an invocation runs, with the runners in front taken off: `npx`,
/// `bunx`, `pnpm exec`, `yarn dlx`, `bundle exec`, `poetry run`, `python -m`, `cargo sqlx`, ….
/// Package-script runners (`npm run x`) stay: their script is what they run.
pub fn tool_words(words: &[String]) -> &[String] {
    let mut words = words;
    loop {
        let Some(first) = words.first() else {
            return words;
        };
        let second = words.get(1).map(String::as_str);
        words = match (basename(first), second) {
            ("npx" | "bunx" | "pnpx", _) => {
                skip_options(&words[1..], &["-p", "--package", "-c", "--call"])
            }
            ("pnpm" | "yarn" | "npm" | "bun", Some("exec" | "dlx" | "x")) => {
                skip_options(&words[2..], &[])
            }
            ("pnpm" | "yarn" | "bun", Some(tool)) if is_known_tool(tool) => &words[1..],
            ("bundle", Some("exec"))
            | ("poetry" | "uv" | "pipenv" | "pdm" | "hatch" | "rye", Some("run")) => {
                skip_options(&words[2..], &[])
            }
            ("dotenv" | "dotenvx", _) => {
                let rest = &words[1..];
                match rest.iter().position(|w| w == "--") {
                    Some(i) => &rest[i + 1..],
                    None => skip_options(rest, &["-e", "-f", "-v"]),
                }
            }
            ("cargo", Some("sqlx")) => &words[1..],
            ("python" | "python3" | "py", Some("-m")) => &words[2..],
            _ => return words,
        };
    }
}

fn is_known_tool(name: &str) -> bool {
    matches!(
        name,
        "prisma" | "knex" | "sequelize" | "typeorm" | "drizzle-kit" | "dbmate" | "flyway"
    )
}

/// A migration command the hook knows by itself: the tool's name (`prisma migrate deploy`).
pub fn builtin_migration(inv: &Invocation) -> Option<String> {
    let words = tool_words(&inv.words);
    let program = basename(words.first()?);
    let args: Vec<&str> = words[1..]
        .iter()
        .map(String::as_str)
        .filter(|w| !w.starts_with('-'))
        .collect();
    let first = args.first().copied();
    let second = args.get(1).copied();
    let found = match program {
        "prisma" => matches!(
            (first, second),
            (Some("migrate"), Some("deploy" | "dev" | "reset")) | (Some("db"), Some("push"))
        ),
        "sqlx" => matches!((first, second), (Some("migrate"), Some("run" | "revert"))),
        "diesel" => matches!(
            (first, second),
            (Some("migration"), Some("run" | "redo" | "revert"))
                | (Some("database"), Some("reset"))
        ),
        "rails" | "rake" => args.iter().any(|a| {
            a.starts_with("db:migrate")
                || matches!(
                    *a,
                    "db:rollback" | "db:reset" | "db:drop" | "db:schema:load" | "db:setup"
                )
        }),
        "alembic" => alembic_verb(&words[1..]).is_some_and(|v| v == "upgrade" || v == "downgrade"),
        "manage.py" | "django-admin" => first == Some("migrate"),
        "python" | "python3" => {
            first.is_some_and(|f| basename(f) == "manage.py") && second == Some("migrate")
        }
        "knex" => args.iter().any(|a| {
            matches!(
                *a,
                "migrate:latest" | "migrate:up" | "migrate:down" | "migrate:rollback"
            )
        }),
        "flyway" => args
            .iter()
            .any(|a| matches!(*a, "migrate" | "clean" | "undo")),
        "dbmate" => skip_options(
            &words[1..],
            &[
                "--url",
                "-u",
                "--env",
                "-e",
                "--env-file",
                "--migrations-dir",
                "-d",
                "--schema-file",
                "-s",
                "--migrations-table",
            ],
        )
        .first()
        .is_some_and(|f| matches!(f.as_str(), "up" | "migrate" | "rollback" | "down" | "drop")),
        "migrate" => golang_migrate_verb(&words[1..]).is_some(),
        "npm" | "pnpm" | "yarn" | "bun" => package_script(words).is_some_and(is_migrate_script),
        _ => false,
    };
    found.then(|| {
        words
            .iter()
            .map(|w| shell::display(w))
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// `alembic [-c FILE] [-n NAME] [-x ARG] upgrade head`: its verb.
fn alembic_verb(args: &[String]) -> Option<&str> {
    skip_options(args, &["-c", "--config", "-n", "--name", "-x"])
        .first()
        .map(String::as_str)
}

/// golang-migrate's `migrate -path DIR -database URL up [N]`: its verb, when it changes the
/// database.
fn golang_migrate_verb(args: &[String]) -> Option<&str> {
    let with_value = [
        "-path",
        "--path",
        "-database",
        "--database",
        "-source",
        "--source",
        "-lock-timeout",
        "--lock-timeout",
        "-prefetch",
        "--prefetch",
    ];
    skip_options(args, &with_value)
        .first()
        .map(String::as_str)
        .filter(|v| matches!(*v, "up" | "down" | "goto" | "drop"))
}

/// The package script `npm run x` / `pnpm x` / `yarn x` / `bun run x` runs.
fn package_script(words: &[String]) -> Option<&str> {
    let program = basename(words.first()?);
    let rest: Vec<&str> = words[1..]
        .iter()
        .map(String::as_str)
        .filter(|w| !w.starts_with('-'))
        .collect();
    match (program, rest.first().copied()) {
        (_, Some("run" | "run-script")) => rest.get(1).copied(),
        ("pnpm" | "yarn", Some(script)) => Some(script),
        _ => None,
    }
}

fn is_migrate_script(script: &str) -> bool {
    script.starts_with("migrate") || script.contains(":migrate") || script.contains("migrate:")
}

/// Whether `inv` runs `pattern`: a command whose words start with the pattern's words, where a
/// word ending in `*` matches any word starting with what comes before it, and `*` any word.
/// Wrappers are taken off both (`npx`, `env`, …); the programs are compared by file name.
pub fn matches_pattern(inv: &Invocation, pattern: &str) -> bool {
    starts_with(inv, pattern, true)
}

/// Whether `inv` runs the configured `migrate_command` (its first command that is not a `cd`).
pub fn matches_command(inv: &Invocation, configured: &str) -> bool {
    starts_with(inv, configured, false)
}

fn starts_with(inv: &Invocation, pattern: &str, globs: bool) -> bool {
    let Some(pattern) = invocations(pattern)
        .into_iter()
        .find(|p| !p.words.is_empty())
    else {
        return false;
    };
    let want = tool_words(&pattern.words);
    let have = tool_words(&inv.words);
    !want.is_empty()
        && have.len() >= want.len()
        && want.iter().zip(have).enumerate().all(|(i, (w, h))| {
            let (w, h) = (shell::display(w), shell::display(h));
            match w.strip_suffix('*') {
                Some("") if globs => true,
                Some(prefix) if globs => h.starts_with(prefix),
                _ if i == 0 => basename(&w) == basename(&h),
                _ => w == h,
            }
        })
}

/// Whether an invocation is `faber-db …`: its arguments.
pub fn faber_args(inv: &Invocation) -> Option<&[String]> {
    (inv.program() == "faber-db").then(|| &inv.words[1..])
}

/// Whether faber-db arguments answer its confirmations: `--yes`, `-y`, or `-y` in a cluster of
/// short options (`-qy`).
pub fn says_yes(args: &[String]) -> bool {
    args.iter().any(|a| {
        a == "--yes"
            || a.starts_with("--yes=")
            || (a.starts_with('-')
                && !a.starts_with("--")
                && a[1..].chars().all(|c| c.is_ascii_alphabetic())
                && a.contains('y'))
    })
}

#[cfg(test)]
mod tests;
