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
//! It never fails the agent's unrelated work: bad input is a warning and exit 0. What a command
//! is, which environment it acts on and what it calls for are decided by `ops::hook`; this module
//! reads the input, and words and prints the answer.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;
use serde_json::json;

use crate::cmd::cli::{Cli, Command as Sub};
use crate::config::{self, Environment, HookProtected};
use crate::guard::{self, Invocation, redact};
use crate::ops::hook::{self as engine, Decision, Heard, What};
use crate::session::{Ctx, Session};
use crate::ui::Ui;

mod faber;
mod files;
mod migration;
mod statements;

use faber::on_faber;
use migration::on_migration;
use statements::on_sql;

/// The most hook input read: a command longer than this is judged on its start.
const MAX_INPUT: u64 = 1 << 20;

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
    /// The Claude Code session asking: an approval given in it is taken in it only.
    session_id: Option<String>,
    /// Whether an `ask` reaches a human: not in `bypassPermissions`, `auto` or `dontAsk`.
    permission_mode: Option<String>,
}

/// Where the hook's question goes: the Claude Code session, and whether a human sees it (only
/// then is an approval issued with it).
struct Asking<'a> {
    session: Option<&'a str>,
    human: bool,
}

/// What the hook answers about one command of the line.
struct Answer {
    decision: Decision,
    reason: String,
    /// The approval issued with an `ask` for a faber-db command (`crate::approval`): the
    /// command is rewritten to carry it.
    approval: Option<faber::Issued>,
}

impl Answer {
    fn new(decision: Decision, reason: impl Into<String>) -> Answer {
        Answer {
            decision,
            reason: reason.into(),
            approval: None,
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
    let edits = ["\"Edit\"", "\"Write\"", "\"MultiEdit\""];
    if text.len() as u64 >= MAX_INPUT
        && (text.contains("\"Bash\"") || edits.iter().any(|t| text.contains(t)))
    {
        // Cut JSON is no JSON: the command cannot be judged, and may hide anything.
        answer(
            Decision::Ask,
            "faber-db: this command is too long to be checked for migrations and changes to protected databases; approve only if you know what it does",
            None,
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
    let tool = input.tool_name.as_deref().unwrap_or_default();
    if matches!(tool, "Edit" | "Write" | "MultiEdit") {
        let cwd = input
            .cwd
            .clone()
            .filter(|c| c.is_absolute())
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("/"));
        if let Some(a) = files::on_edit(tool, &input.tool_input, &cwd) {
            answer(a.decision, &a.reason, None);
        }
        return 0;
    }
    if tool != "Bash" {
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
    let asking = Asking {
        session: input.session_id.as_deref(),
        human: matches!(
            input.permission_mode.as_deref(),
            Some("default" | "acceptEdits" | "plan")
        ),
    };
    let answers = decide(command, &cwd, &asking);
    let Some(strongest) = answers.iter().map(|a| a.decision).max() else {
        return 0;
    };
    let reason = answers
        .iter()
        .filter(|a| !a.reason.is_empty())
        .map(|a| a.reason.as_str())
        .collect::<Vec<_>>()
        .join("\n\n");
    let updated = faber::carrying_approval(&answers, strongest, command, &input.tool_input);
    answer(strongest, &reason, updated);
    0
}

/// Says the decision on stdout (nothing for no decision and no reason), with the tool input
/// the human is asked about instead of the agent's, when there is one.
fn answer(decision: Decision, reason: &str, updated: Option<serde_json::Value>) {
    let out = match decision {
        Decision::None if reason.is_empty() => return,
        Decision::None => json!({ "systemMessage": reason }),
        d => {
            let mut out = json!({
                "hookEventName": "PreToolUse",
                "permissionDecision": d.as_str(),
                "permissionDecisionReason": reason,
            });
            if let Some(input) = updated {
                out["updatedInput"] = input;
            }
            json!({ "hookSpecificOutput": out })
        }
    };
    println!("{out}");
}

fn warn(what: &str) {
    eprintln!("warning: faber-db hook: {what}");
}

/// What the line's commands call for, one answer for each that concerns a database.
fn decide(line: &str, cwd: &Path, asking: &Asking<'_>) -> Vec<Answer> {
    let invocations = guard::invocations(line);
    let scan = engine::scan(line, &invocations, cwd);
    let mut answers = Vec::new();
    if scan.cut {
        answers.push(Answer::new(
            Decision::Ask,
            "faber-db: this command is too long to be checked whole for migrations and changes to protected databases; approve only if you know what it does",
        ));
    }
    for inv in &invocations {
        answers.extend(files::on_files(line, inv, &inv.dir(cwd)));
    }
    for found in scan.found {
        let (inv, dir) = (found.inv, &found.dir);
        let answer = match found.what {
            What::Migration(shown) => on_migration(line, inv, dir, &shown, scan.only_migrations),
            What::Faber => on_faber(line, inv, dir, asking),
            What::Sql => on_sql(line, inv, dir),
        };
        answers.extend(answer);
    }
    answers
}

/// The project context for an invocation in `dir` (quiet: the hook's stdout is its answer,
/// and its stderr only a log).
fn context(dir: &Path, config: Option<PathBuf>, root: Option<PathBuf>) -> Option<Ctx> {
    let root = root.map_or_else(|| config::find_root(dir), |r| dir.join(r));
    config::locate(&root, config.as_deref()).ok()?;
    let mut ctx = Ctx::at(root, config, Arc::new(Ui::new(false, true, false, true))).ok()?;
    // A `.env` faber-db cannot read does not turn the guard off.
    ctx.lenient_vars = true;
    Some(ctx)
}

/// Writes the decision to the history and returns it, secrets blanked out of its reason.
fn record(
    session: &Session,
    line: &str,
    env: Option<&str>,
    backup: Option<&str>,
    matched: &str,
    answer: Answer,
) -> Answer {
    let heard = Heard {
        line,
        env,
        backup,
        matched,
    };
    let reason = engine::record(session, heard, answer.decision, &answer.reason);
    Answer { reason, ..answer }
}
