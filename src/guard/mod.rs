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
    /// The files its output redirections write, as written (`> out.log`).
    pub writes: Vec<String>,
    /// It runs as another user (`sudo`, `doas`).
    pub elevated: bool,
}

impl Invocation {
    /// The program's file name: `prisma` for `./node_modules/.bin/prisma`.
    pub fn program(&self) -> &str {
        self.words.first().map_or("", |w| basename(w))
    }

    /// Whether approving the line may cover this command: it writes no file (but
    /// `/dev/null`-like ones) and runs as no other user.
    pub fn approvable(&self) -> bool {
        !self.elevated
            && self
                .writes
                .iter()
                .all(|w| matches!(w.as_str(), "/dev/null" | "/dev/stdout" | "/dev/stderr"))
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
    let mut previous: Option<(Vec<String>, Option<Stdin>)> = None;
    for simple in simples {
        let Unwrapped {
            vars,
            words,
            ran,
            elevated,
        } = unwrap(simple);
        let piped_from = if simple.piped { previous.take() } else { None };
        previous = Some((words.clone(), simple.stdin.clone()));
        let invocation =
            |words: Vec<String>, piped_from: Option<Vec<String>>, context: &Context| {
                let mut all_vars = context.vars.clone();
                all_vars.extend(vars.clone());
                Invocation {
                    text: simple_text(simple),
                    words,
                    vars: all_vars,
                    stdin: simple.stdin.clone(),
                    piped_from,
                    dirs: context.dirs.clone(),
                    writes: simple.writes.clone(),
                    elevated,
                }
            };
        let Some(first) = words.first() else {
            // Only wrappers (`sudo -i`, `env -S …`) or redirections (`> FILE`): it runs or
            // writes what cannot be told.
            if ran || !simple.writes.is_empty() {
                out.push(invocation(simple.words.clone(), None, context));
            } else {
                context.vars.extend(vars);
            }
            continue;
        };
        // What it runs is not seen: a script too deeply nested.
        let too_deep = depth >= shell::MAX_DEPTH;
        // The command itself counts too when it writes files or runs as another user.
        let plain = simple.writes.is_empty() && !elevated;
        match basename(first) {
            "cd" | "pushd" => {
                match skip_options(&words[1..], &[])
                    .first()
                    .map(|w| shell::display(w))
                {
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
            "sh" | "bash" | "zsh" | "dash" | "ksh" if !too_deep => {
                let script = match shell_reads(&words[1..]) {
                    ShellReads::Script(script) => Some(script.clone()),
                    // `bash <<EOF`, `bash <<< '…'`, `echo '…' | bash`, `cat <<EOF | sh`.
                    ShellReads::Stdin => match (&simple.stdin, &piped_from) {
                        (Some(Stdin::Text(text)), _) => Some(text.clone()),
                        (None, Some((from, from_stdin))) => match from.first().map(|w| basename(w))
                        {
                            Some("echo" | "printf") => Some(
                                from[1..]
                                    .iter()
                                    .filter(|w| !w.starts_with('-'))
                                    .cloned()
                                    .collect::<Vec<_>>()
                                    .join(" "),
                            ),
                            Some("cat") if from.len() == 1 => match from_stdin {
                                Some(Stdin::Text(text)) => Some(text.clone()),
                                _ => None,
                            },
                            _ => None,
                        },
                        _ => None,
                    },
                    ShellReads::File => None,
                };
                if let Some(script) = script {
                    follow(&script, depth, context, &vars, out);
                    if plain {
                        continue;
                    }
                }
            }
            "eval" if !too_deep => {
                follow(&words[1..].join(" "), depth, context, &vars, out);
                if plain {
                    continue;
                }
            }
            _ => {}
        }
        out.push(invocation(words, piped_from.map(|(from, _)| from), context));
    }
}

/// The commands of a script a command runs (`sh -c`, `eval`, a heredoc fed to a shell), one
/// level deeper, with the command's variables set.
fn follow(
    script: &str,
    depth: usize,
    context: &Context,
    vars: &[(String, String)],
    out: &mut Vec<Invocation>,
) {
    let mut inner = context.clone();
    inner.vars.extend(vars.iter().cloned());
    collect(
        &shell::parse_at(script, depth + 1),
        depth + 1,
        &mut inner,
        out,
    );
}

/// What a shell run with these arguments reads its commands from.
enum ShellReads<'a> {
    /// `-c SCRIPT` (`-c` alone or in a cluster: `-lc`, `-ce`, `-c -e`).
    Script(&'a String),
    /// No script file: standard input (`bash`, `bash -s`, `sh -`).
    Stdin,
    /// A script file.
    File,
}

fn shell_reads(args: &[String]) -> ShellReads<'_> {
    let (mut dash_c, mut dash_s) = (false, false);
    let mut i = 0;
    while let Some(w) = args.get(i) {
        i += 1;
        if w == "--" || w == "-" {
            break;
        }
        if let Some(long) = w.strip_prefix("--") {
            if matches!(long, "rcfile" | "init-file") {
                i += 1;
            }
            continue;
        }
        match w.strip_prefix(['-', '+']).filter(|b| !b.is_empty()) {
            Some(body) => {
                dash_c |= w.starts_with('-') && body.contains('c');
                dash_s |= body.contains('s');
                // `-o pipefail`, `+O extglob`: the option's name follows.
                if body.contains(['o', 'O']) {
                    i += 1;
                }
            }
            None => {
                i -= 1;
                break;
            }
        }
    }
    match args.get(i) {
        Some(script) if dash_c => ShellReads::Script(script),
        None if dash_c => ShellReads::File,
        _ if dash_s => ShellReads::Stdin,
        None => ShellReads::Stdin,
        Some(_) => ShellReads::File,
    }
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

/// A simple command with its wrappers taken off.
struct Unwrapped {
    vars: Vec<(String, String)>,
    words: Vec<String>,
    /// A wrapper that runs a command was taken off (`sudo`, `env`, `nohup`…, not `{` or `if`).
    ran: bool,
    /// One of them runs it as another user.
    elevated: bool,
}

/// Takes the shell keywords and the wrappers that run another command (`sudo`, `env`, `time`,
/// `nohup`, `timeout 60`, `xargs`) off a simple command: its variables and the real words.
fn unwrap(simple: &Simple) -> Unwrapped {
    let mut vars = simple.assigns.clone();
    let mut words: Vec<String> = simple.words.clone();
    let (mut ran, mut elevated) = (false, false);
    while let Some(first) = words.first() {
        let rest = &words[1..];
        let program = basename(first);
        let next: Vec<String> = match program {
            "if" | "then" | "else" | "elif" | "do" | "while" | "until" | "!" | "{" | "}" | "(" => {
                rest.to_vec()
            }
            "builtin" | "unbuffer" => rest.to_vec(),
            "time" => skip_options(rest, &["-f", "-o", "--format", "--output"]).to_vec(),
            "command" | "nohup" => skip_options(rest, &[]).to_vec(),
            "exec" => skip_options(rest, &["-a"]).to_vec(),
            "stdbuf" => skip_options(rest, &["-i", "-o", "-e"]).to_vec(),
            "sudo" | "doas" => {
                elevated = true;
                skip_options(rest, &["-u", "-g", "-C", "-h", "-p", "-U", "-D"]).to_vec()
            }
            "nice" | "ionice" => skip_options(rest, &["-n", "-c"]).to_vec(),
            "timeout" => {
                let rest = skip_options(rest, &["-s", "-k", "--signal", "--kill-after"]);
                rest.get(1..).unwrap_or_default().to_vec()
            }
            "xargs" => {
                skip_options(rest, &["-I", "-n", "-L", "-P", "-d", "-E", "-s", "-a"]).to_vec()
            }
            "env" => {
                let (split, rest) = env_options(rest);
                let mut next = Vec::new();
                // `env -S 'A=1 cmd args'`: the string is split into more arguments.
                if let Some(split) = split
                    && let Some(first) = shell::parse(&split).into_iter().next()
                {
                    vars.extend(first.assigns);
                    next.extend(first.words);
                }
                next.extend(rest.iter().cloned());
                let mut next = next.as_slice();
                while let Some((k, v)) = next.first().and_then(|w| as_assignment(w)) {
                    vars.push((k, v));
                    next = &next[1..];
                }
                next.to_vec()
            }
            _ => break,
        };
        if !matches!(
            program,
            "if" | "then" | "else" | "elif" | "do" | "while" | "until" | "!" | "{" | "}" | "("
        ) {
            ran = true;
        }
        words = next;
    }
    Unwrapped {
        vars,
        words,
        ran,
        elevated,
    }
}

/// `env`'s options: the string of `-S`/`--split-string`, if any, and the words after them.
fn env_options(words: &[String]) -> (Option<String>, &[String]) {
    let mut split = None;
    let mut i = 0;
    while let Some(w) = words.get(i) {
        i += 1;
        if w == "--" {
            break;
        }
        if !w.starts_with('-') || w == "-" {
            i -= 1;
            break;
        }
        if let Some(long) = w.strip_prefix("--") {
            match long.split_once('=') {
                Some(("split-string", s)) => split = Some(s.to_string()),
                Some(_) => {}
                None if matches!(long, "split-string" | "unset" | "chdir") => {
                    if long == "split-string" {
                        split = words.get(i).cloned();
                    }
                    i += 1;
                }
                None => {}
            }
            continue;
        }
        // A cluster of short options: `-S` and `-u`/`-C` take the rest or the next word.
        let body = &w[1..];
        if let Some(at) = body.find(['S', 'u', 'C']) {
            let value = &body[at + 1..];
            let value = if value.is_empty() {
                i += 1;
                words.get(i - 1).cloned()
            } else {
                Some(value.to_string())
            };
            if body[at..].starts_with('S') {
                split = value;
            }
        }
    }
    (split, words.get(i..).unwrap_or_default())
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

/// The dotenv files the runners in front of the tool load (`dotenv -e .env.production --`,
/// `dotenvx run -f FILE --`, `node --env-file=FILE`), as written.
pub fn env_files(words: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for (at, word) in words.iter().enumerate() {
        let flags: &[&str] = match basename(word) {
            "dotenv" => &["-e"],
            "dotenvx" => &["-f", "--env-file"],
            "node" | "bun" | "deno" => &["--env-file"],
            _ => continue,
        };
        let mut i = at + 1;
        while let Some(w) = words.get(i) {
            if w == "--" {
                break;
            }
            if flags.contains(&w.as_str()) {
                out.extend(words.get(i + 1).cloned());
                i += 1;
            } else if let Some((flag, file)) = w.split_once('=')
                && flags.contains(&flag)
            {
                out.push(file.to_string());
            }
            i += 1;
        }
    }
    out
}

/// The value of option `names` (`--env production`, `--env=production`) among `words`.
pub fn option_value<'a>(words: &'a [String], names: &[&str]) -> Option<&'a str> {
    words.iter().enumerate().find_map(|(i, w)| {
        if names.contains(&w.as_str()) {
            return words.get(i + 1).map(String::as_str);
        }
        let (name, value) = w.split_once('=')?;
        names.contains(&name).then_some(value)
    })
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
            (a.starts_with("db:migrate") && !is_read_only_task(a))
                || matches!(
                    *a,
                    "db:rollback" | "db:reset" | "db:drop" | "db:schema:load" | "db:setup"
                )
        }),
        "alembic" => alembic_verb(&words[1..]).is_some_and(|v| v == "upgrade" || v == "downgrade"),
        "manage.py" | "django-admin" => first == Some("migrate") && !django_dry(words),
        "python" | "python3" => {
            first.is_some_and(|f| basename(f) == "manage.py")
                && second == Some("migrate")
                && !django_dry(words)
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
    (script.starts_with("migrate") || script.contains(":migrate") || script.contains("migrate:"))
        && !is_read_only_task(script)
}

/// A migration task that only reads or writes files: `migrate:status`, `db:migrate:status`,
/// `migrate:create`, `migrate-make`…
fn is_read_only_task(task: &str) -> bool {
    let last = task.rsplit([':', '-', '_']).next().unwrap_or(task);
    matches!(
        last,
        "status"
            | "info"
            | "list"
            | "ls"
            | "check"
            | "diff"
            | "validate"
            | "plan"
            | "help"
            | "create"
            | "make"
            | "new"
            | "generate"
            | "gen"
    )
}

/// `manage.py migrate --plan` / `--check`: shows, changes nothing.
fn django_dry(words: &[String]) -> bool {
    words.iter().any(|w| w == "--plan" || w == "--check")
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
