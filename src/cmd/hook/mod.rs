//! `faber-db hook pre-tool-use`: Claude Code's `PreToolUse` hook on `Bash`. Reads the hook's
//! JSON on stdin and answers with a permission decision (docs/plugin.md, "The pre-migrate
//! hook"):
//! - a migration command: a `pre-migration` backup first (environments with
//!   `backup_before_migrate`), then `allow`; `ask` with the migrate plan for a protected
//!   environment (or `deny`, with `[hook] protected = "deny"`);
//! - `faber-db … --yes` changing a protected environment: `ask`, with the dry run's plan;
//! - destructive SQL sent to a protected environment's database: `ask`; SQL of a kind the
//!   config's `safety.destructive_operations` forbids, sent to any environment's database (and
//!   migrations holding it): `deny`;
//! - anything else: no decision, no output.
//!
//! It never fails the agent's unrelated work: bad input is a warning and exit 0.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;
use serde_json::json;

use crate::cmd::cli::{Cli, Command as Sub};
use crate::cmd::{self, migrate};
use crate::config::{self, Environment, HookProtected};
use crate::error::Error;
use crate::guard::{self, Invocation, redact, sql};
use crate::provider::DatabaseUrl;
use crate::registry::HookRecord;
use crate::session::{Ctx, DEFAULT_ENV_VARS, Session};
use crate::shell;
use crate::ui::{self, Ui};

mod environment;
mod faber;
mod migration;
mod statements;

use environment::{server_is, target_is, which_env};
use faber::on_faber;
use migration::on_migration;
use statements::on_sql;

/// The most hook input read: a command longer than this is judged on its start.
const MAX_INPUT: u64 = 1 << 20;
/// How long the dry run shown as a plan may take.
const DRY_RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// The most of a dry run's output put in a reason.
const MAX_PLAN: usize = 4000;

#[derive(Debug, Args)]
pub struct HookArgs {
    #[command(subcommand)]
    pub event: HookEvent,
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum HookEvent {
    /// Decide on a Bash command Claude Code is about to run (the hook's JSON on stdin): back up
    /// before a migration, ask the human before a protected environment changes
    PreToolUse,
}

/// What Claude Code sends a `PreToolUse` hook (the fields used here).
#[derive(Debug, Deserialize)]
struct Input {
    tool_name: Option<String>,
    #[serde(default)]
    tool_input: serde_json::Value,
    cwd: Option<PathBuf>,
}

/// A permission decision, weakest first: the strongest of a line's wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Decision {
    /// No decision: Claude Code's own permission rules apply.
    None,
    Allow,
    Ask,
    Deny,
}

impl Decision {
    fn as_str(self) -> &'static str {
        match self {
            Decision::None => "none",
            Decision::Allow => "allow",
            Decision::Ask => "ask",
            Decision::Deny => "deny",
        }
    }
}

/// What the hook answers about one command of the line.
struct Answer {
    decision: Decision,
    reason: String,
}

impl Answer {
    fn new(decision: Decision, reason: impl Into<String>) -> Answer {
        Answer {
            decision,
            reason: reason.into(),
        }
    }
}

/// Runs the hook; returns the exit code (always 0: a decision is said on stdout).
pub fn main(args: HookArgs) -> u8 {
    match args.event {
        HookEvent::PreToolUse => pre_tool_use(),
    }
}

fn pre_tool_use() -> u8 {
    let mut text = String::new();
    if let Err(e) = std::io::stdin().take(MAX_INPUT).read_to_string(&mut text) {
        warn(&format!("cannot read the hook input: {e}"));
        return 0;
    }
    if text.len() as u64 >= MAX_INPUT && text.contains("\"Bash\"") {
        // Cut JSON is no JSON: the command cannot be judged, and may hide anything.
        answer(
            Decision::Ask,
            "faber-db: this command is too long to be checked for migrations and changes to protected databases; approve only if you know what it does",
        );
        return 0;
    }
    let input: Input = match serde_json::from_str(&text) {
        Ok(i) => i,
        Err(e) => {
            warn(&format!(
                "the hook input is not the JSON Claude Code sends ({e}); no decision"
            ));
            return 0;
        }
    };
    if input.tool_name.as_deref() != Some("Bash") {
        return 0;
    }
    let Some(command) = input.tool_input.get("command").and_then(|c| c.as_str()) else {
        warn("the hook input has no tool_input.command; no decision");
        return 0;
    };
    let cwd = input
        .cwd
        .filter(|c| c.is_absolute())
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("/"));
    let answers = decide(command, &cwd);
    let Some(strongest) = answers.iter().map(|a| a.decision).max() else {
        return 0;
    };
    let reason = answers
        .iter()
        .filter(|a| !a.reason.is_empty())
        .map(|a| a.reason.as_str())
        .collect::<Vec<_>>()
        .join("\n\n");
    answer(strongest, &reason);
    0
}

/// Says the decision on stdout (nothing for no decision and no reason).
fn answer(decision: Decision, reason: &str) {
    let out = match decision {
        Decision::None if reason.is_empty() => return,
        Decision::None => json!({ "systemMessage": reason }),
        d => json!({
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": d.as_str(),
                "permissionDecisionReason": reason,
            }
        }),
    };
    println!("{out}");
}

fn warn(what: &str) {
    eprintln!("warning: faber-db hook: {what}");
}

/// What the line's commands call for, one answer for each that concerns a database.
fn decide(line: &str, cwd: &Path) -> Vec<Answer> {
    let invocations = guard::invocations(line);
    let mut answers = Vec::new();
    let mut migrations = 0;
    let mut found = Vec::new();
    // Each project's config is read once, however many of the line's commands run in it.
    let mut configs: Vec<(PathBuf, Option<config::Config>)> = Vec::new();
    for inv in &invocations {
        let dir = dir_of(cwd, inv);
        if let Some(shown) = guard::builtin_migration(inv) {
            migrations += 1;
            found.push((inv, dir, Found::Migration(shown)));
        } else if guard::faber_args(inv).is_some() {
            found.push((inv, dir, Found::Faber));
        } else if matches!(
            inv.program(),
            "psql" | "mysql" | "mariadb" | "sqlite3" | "sqlite"
        ) {
            found.push((inv, dir, Found::Sql));
        } else {
            let root = config::find_root(&dir);
            let at = if let Some(at) = configs.iter().position(|(r, _)| *r == root) {
                at
            } else {
                let config = config_of(&root);
                configs.push((root, config));
                configs.len() - 1
            };
            // Commands the config names as migrations: its `migrate_command`s and patterns.
            if configs[at]
                .1
                .as_ref()
                .is_some_and(|config| configured_migration(config, inv))
            {
                migrations += 1;
                found.push((inv, dir, Found::Migration(shown_words(inv))));
            }
        }
    }
    // `allow` approves the whole line: only when every command in it is a migration seen to,
    // writing no file and run as no other user, and the whole line was read.
    let cut = shell::is_cut(line);
    let only_migrations =
        migrations == invocations.len() && invocations.iter().all(Invocation::approvable) && !cut;
    if cut {
        answers.push(Answer::new(
            Decision::Ask,
            "faber-db: this command is too long to be checked whole for migrations and changes to protected databases; approve only if you know what it does",
        ));
    }
    for (inv, dir, what) in found {
        let answer = match what {
            Found::Migration(shown) => on_migration(line, inv, &dir, &shown, only_migrations),
            Found::Faber => on_faber(line, inv, &dir),
            Found::Sql => on_sql(line, inv, &dir),
        };
        answers.extend(answer);
    }
    answers
}

enum Found {
    Migration(String),
    Faber,
    Sql,
}

/// The directory an invocation runs in: the hook's `cwd`, moved by the line's `cd`s.
fn dir_of(cwd: &Path, inv: &Invocation) -> PathBuf {
    let mut dir = cwd.to_path_buf();
    for d in &inv.dirs {
        match d.strip_prefix("~/") {
            Some(rest) => {
                if let Some(home) = std::env::var_os("HOME") {
                    dir = Path::new(&home).join(rest);
                }
            }
            None => dir = dir.join(d),
        }
    }
    dir
}

/// The config of the project at `root`, when it has one that can be read.
fn config_of(root: &Path) -> Option<config::Config> {
    config::locate(root, None).ok()?;
    config::load(root, None).ok()
}

fn configured_migration(config: &config::Config, inv: &Invocation) -> bool {
    config.hook.enabled
        && (config
            .environments
            .values()
            .filter_map(|e| e.migrate_command.as_deref())
            .any(|c| guard::matches_command(inv, c))
            || config
                .hook
                .migrate_patterns
                .iter()
                .any(|p| guard::matches_pattern(inv, p)))
}

fn shown_words(inv: &Invocation) -> String {
    inv.words
        .iter()
        .map(|w| shell::display(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The project context for an invocation in `dir` (quiet: the hook's stdout is its answer,
/// and its stderr only a log).
fn context(dir: &Path, config: Option<PathBuf>, root: Option<PathBuf>) -> Option<Ctx> {
    let root = root.map_or_else(|| config::find_root(dir), |r| dir.join(r));
    config::locate(&root, config.as_deref()).ok()?;
    Ctx::at(root, config, Ui::new(false, true, false, true)).ok()
}

/// The secrets of every environment's URL, to blank out of what is written down.
fn secrets(session: &Session) -> Vec<String> {
    session
        .config
        .environments
        .values()
        .filter_map(|e| session.url(e).ok())
        .flat_map(|u| u.secrets())
        .collect()
}

/// Writes the decision to the history and returns it.
fn record(
    session: &Session,
    line: &str,
    env: Option<&str>,
    backup: Option<&str>,
    matched: &str,
    answer: Answer,
) -> Answer {
    let known = secrets(session);
    let answer = Answer {
        reason: redact::command(&answer.reason, &known),
        ..answer
    };
    cmd::log_hook_event(
        session,
        env,
        backup,
        HookRecord {
            decision: answer.decision.as_str(),
            matched: matched.to_string(),
            command: redact::command(line, &known),
            reason: answer.reason.clone(),
        },
    );
    answer
}

/// What a bounded run of a child gave.
struct Bounded {
    stdout: String,
    stderr: String,
    /// It ran past its deadline and was stopped.
    overran: bool,
}

/// Runs `cmd` (no stdin, output captured; it dies with the hook) until `deadline`. Past it, the
/// child gets SIGTERM — a faber-db run then stops and removes what it wrote — and SIGKILL 30 s
/// later.
fn run_bounded(mut cmd: Command, deadline: Instant) -> std::io::Result<Bounded> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    crate::child::dies_with_us(&mut cmd);
    let mut child = cmd.spawn()?;
    let pump = |stream: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = stream {
                let _ = r.read_to_string(&mut s);
            }
            s
        })
    };
    let out = pump(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = pump(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let mut overran = false;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) if !overran => {
                overran = true;
                // SAFETY: a signal to the child this function started and has not reaped.
                unsafe { libc::kill(child.id().cast_signed(), libc::SIGTERM) };
            }
            Ok(None) if Instant::now() < deadline + Duration::from_secs(30) => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
        }
    }
    Ok(Bounded {
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        overran,
    })
}
