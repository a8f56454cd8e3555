//! What runs a command without being it: the wrappers (`sudo`, `env`, `time`, …) and the
//! runners in front of a tool (`npx`, `bundle exec`, `python -m`, …), taken off.

use super::basename;
use crate::shell::{self, Simple};

/// A simple command with its wrappers taken off.
pub(super) struct Unwrapped {
    pub(super) vars: Vec<(String, String)>,
    pub(super) words: Vec<String>,
    /// A wrapper that runs a command was taken off (`sudo`, `env`, `nohup`…, not `{` or `if`).
    pub(super) ran: bool,
    /// One of them runs it as another user.
    pub(super) elevated: bool,
    /// One of them adds arguments of its own (`xargs`): the words are not all it will get.
    pub(super) more_args: bool,
}

/// Takes the shell keywords and the wrappers that run another command (`sudo`, `env`, `time`,
/// `nohup`, `timeout 60`, `xargs`) off a simple command: its variables and the real words.
pub(super) fn unwrap(simple: &Simple) -> Unwrapped {
    let mut vars = simple.assigns.clone();
    let mut words: Vec<String> = simple.words.clone();
    let (mut ran, mut elevated, mut more_args) = (false, false, false);
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
                more_args = true;
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
        more_args,
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
pub(super) fn skip_options<'a>(words: &'a [String], with_value: &[&str]) -> &'a [String] {
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
