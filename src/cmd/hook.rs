//! `faber-db hook pre-tool-use`: Claude Code's `PreToolUse` hook on `Bash`. Reads the hook's
//! JSON on stdin and answers with a permission decision (docs/plugin.md, "The pre-migrate
//! hook"):
//! - a migration command: a `pre-migration` backup first (environments with
//!   `backup_before_migrate`), then `allow`; `ask` with the migrate plan for a protected
//!   environment (or `deny`, with `[hook] protected = "deny"`);
//! - `faber-db … --yes` changing a protected environment: `ask`, with the dry run's plan;
//! - destructive SQL sent to a protected environment's database: `ask`;
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

use crate::cli::{Cli, Command as Sub};
use crate::cmd::{self, migrate};
use crate::config::{self, Environment, HookProtected};
use crate::error::Error;
use crate::guard::{self, Invocation, redact, sql};
use crate::provider::DatabaseUrl;
use crate::registry::HookRecord;
use crate::session::{Ctx, DEFAULT_ENV_VARS, Session};
use crate::shell;
use crate::ui::{self, Ui};

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
        } else if let Some(config) = config_of(&dir) {
            // Commands the config names as migrations: its `migrate_command`s and patterns.
            if configured_migration(&config, inv) {
                migrations += 1;
                found.push((inv, dir, Found::Migration(shown_words(inv))));
            }
        }
    }
    // `allow` approves the whole line: only when every command in it is a migration seen to,
    // writing no file and run as no other user, and the whole line was read.
    let only_migrations = migrations == invocations.len()
        && invocations.iter().all(Invocation::approvable)
        && !shell::is_cut(line);
    if shell::is_cut(line) {
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

/// The config of the project `dir` is in, when it has one that can be read.
fn config_of(dir: &Path) -> Option<config::Config> {
    let root = config::find_root(dir);
    config::locate(&root, None).ok()?;
    config::load(&root, None).ok()
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
    let root = root
        .map(|r| dir.join(r))
        .unwrap_or_else(|| config::find_root(dir));
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

/// A migration: back up, then allow; ask (or deny) for a protected environment.
fn on_migration(
    line: &str,
    inv: &Invocation,
    dir: &Path,
    shown: &str,
    only_migrations: bool,
) -> Option<Answer> {
    let ctx = context(dir, None, None)?;
    let session = match ctx.session() {
        Ok(s) => s,
        Err(e) => {
            return Some(Answer::new(
                Decision::Ask,
                format!(
                    "faber-db: `{}` looks like a migration, but the faber-db config cannot be read, so no backup was taken: {}",
                    redact::command(shown, &[]),
                    e.one_line()
                ),
            ));
        }
    };
    if !session.config.hook.enabled {
        return None;
    }
    let shown = redact::command(shown, &secrets(&session));
    let matched = format!("migration: {shown}");
    let env = match which_env(&session, inv, dir) {
        Ok(Some((env, _why))) => env,
        Ok(None) => {
            let answer = Answer::new(
                Decision::None,
                format!(
                    "faber-db: `{shown}` migrates a database that is none of the configured environments; no backup was taken"
                ),
            );
            return Some(record(&session, line, None, None, &matched, answer));
        }
        Err(e) => {
            let answer = Answer::new(
                Decision::Ask,
                format!(
                    "faber-db: cannot tell which environment `{shown}` migrates ({}), so no backup was taken; approve only if that is fine",
                    e.one_line()
                ),
            );
            return Some(record(&session, line, None, None, &matched, answer));
        }
    };
    let env = match session.env(&env) {
        Ok(e) => e.clone(),
        Err(e) => {
            let answer = Answer::new(
                Decision::Ask,
                format!("faber-db: `{shown}`: {}", e.one_line()),
            );
            return Some(record(&session, line, None, None, &matched, answer));
        }
    };
    let name = &env.name;
    if env.protected && session.config.hook.protected == HookProtected::Deny {
        let answer = Answer::new(
            Decision::Deny,
            format!(
                "faber-db: `{shown}` migrates protected environment `{name}`; migrations of it run with /faber-db:migrate {name} (`faber-db migrate {name}`), which backs up, shows the plan and asks"
            ),
        );
        return Some(record(&session, line, Some(name), None, &matched, answer));
    }
    let (backup, plan) = match backup_and_plan(&session, &env, &shown) {
        Ok(r) => r,
        Err(e) => {
            let hint = e
                .hint()
                .map(|h| format!(" (hint: {h})"))
                .unwrap_or_default();
            let answer = Answer::new(
                Decision::Deny,
                format!(
                    "faber-db: the pre-migration backup of `{name}` failed, so `{shown}` must not run: {}{hint}",
                    e.one_line()
                ),
            );
            return Some(record(&session, line, Some(name), None, &matched, answer));
        }
    };
    let (taken, backup) = match &backup {
        Backed::Taken(id) => (
            format!(
                "faber-db took the pre-migration backup {id} of `{name}`; to undo the migration: faber-db restore {name} --from {id}"
            ),
            Some(id.clone()),
        ),
        Backed::Reused(id, age) => (
            format!(
                "faber-db counts {id}, taken {age} min ago with the migrations as they are now, as the pre-migration backup of `{name}` (a new one would take too long); writes since then are not in it; to undo the migration: faber-db restore {name} --from {id}"
            ),
            Some(id.clone()),
        ),
        Backed::None => (String::new(), None),
    };
    let answer = if env.protected {
        Answer::new(
            Decision::Ask,
            format!(
                "faber-db: `{shown}` migrates protected environment `{name}`.\n{}{plan}Approve only if this migration of `{name}` is intended.",
                if taken.is_empty() {
                    String::new()
                } else {
                    format!("{taken}.\n")
                }
            ),
        )
    } else if backup.is_some() && only_migrations {
        Answer::new(Decision::Allow, taken)
    } else {
        Answer::new(Decision::None, taken)
    };
    Some(record(
        &session,
        line,
        Some(name),
        backup.as_deref(),
        &matched,
        answer,
    ))
}

/// How long the hook may spend on a pre-migration backup (`FABER_HOOK_BACKUP_TIMEOUT`, in
/// seconds): under the 600 s Claude Code gives it (hooks/hooks.json), past which Claude Code
/// kills it and runs the migration without a backup.
const BACKUP_BUDGET: Duration = Duration::from_secs(540);
const BUDGET_VAR: &str = "FABER_HOOK_BACKUP_TIMEOUT";
/// A pre-migration backup this recent, of a database whose migrations have not changed since,
/// stands for one that would not fit in the budget.
const REUSE_WITHIN_MINUTES: i64 = 60;

/// The pre-migration backup behind a decision.
enum Backed {
    /// Taken now: its ID.
    Taken(String),
    /// Taken earlier (too big to take within the hook's time): its ID and age in minutes.
    Reused(String, i64),
    /// None wanted, or no database yet.
    None,
}

/// The pre-migration backup (when the environment wants one and its database exists) and, for
/// a protected environment, the plan in words. The backup runs as `faber-db backup` in a child
/// process, bounded in time: one that would not end before Claude Code gives up on the hook is
/// not started, one that runs over is stopped (it then removes what it wrote), and either is an
/// error — the migration must not run without it.
fn backup_and_plan(
    session: &Session,
    env: &Environment,
    shown: &str,
) -> crate::Result<(Backed, String)> {
    let started = Instant::now();
    let (_, db) = session.provider(env)?;
    let plan = if env.protected {
        plan_text(&migrate::plan(session, env, db.as_ref())?)
    } else {
        String::new()
    };
    if !env.backup_before_migrate || !db.exists()? {
        return Ok((Backed::None, plan));
    }
    let budget = std::env::var(BUDGET_VAR)
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(BACKUP_BUDGET, Duration::from_secs);
    // The plan is quick (it reads the database's size); its bound is the budget or 30 s.
    let dry = backup_child(
        session,
        env,
        &["--dry-run"],
        started + budget.max(Duration::from_secs(30)),
    )?;
    let expected =
        Duration::from_millis(dry["plan"]["estimate"]["duration_ms"].as_u64().unwrap_or(0));
    if started.elapsed() + expected > budget {
        if let Some(reused) = recent_pre_migration(session, env, db.as_ref())? {
            return Ok((reused, plan));
        }
        let name = &env.name;
        return Err(Error::aborted(format!(
            "the pre-migration backup of `{name}` would take about {}, longer than the hook may wait ({})",
            ui::duration_ms(expected.as_millis() as u64),
            ui::duration_ms(budget.as_millis() as u64),
        ))
        .with_hint(format!(
            "take it first, in the background: `faber-db backup {name} --reason pre-migration --label pre-migration`; \
             within {REUSE_WITHIN_MINUTES} minutes, and while no migration runs in between, the hook counts it as the \
             pre-migration backup. Or migrate with `faber-db migrate {name}`, which backs up first"
        )));
    }
    // `=`: a command starting with `-` stays the option's value.
    let before = format!("--before-command={shown}");
    let taken = backup_child(
        session,
        env,
        &[
            "--yes",
            "--reason",
            "pre-migration",
            "--label",
            "pre-migration",
            &before,
        ],
        started + budget,
    )?;
    let id = taken["backup"]["id"]
        .as_str()
        .ok_or_else(|| Error::tool("the pre-migration backup reported no ID"))?;
    Ok((Backed::Taken(id.to_string()), plan))
}

/// A valid `pre-migration` backup of `env` taken in the last hour, when the database's
/// migrations are still those it recorded: no migration ran since.
fn recent_pre_migration(
    session: &Session,
    env: &Environment,
    db: &dyn crate::provider::Provider,
) -> crate::Result<Option<Backed>> {
    let registry = session.store.load()?;
    let newest = registry
        .backups
        .iter()
        .filter(|b| {
            b.environment == env.name
                && b.reason.as_deref() == Some("pre-migration")
                && b.status == crate::registry::Status::Valid
        })
        .max_by_key(|b| b.timestamp);
    let Some(newest) = newest else {
        return Ok(None);
    };
    let age = (session.ctx.now - newest.timestamp).num_minutes();
    if !(0..=REUSE_WITHIN_MINUTES).contains(&age) {
        return Ok(None);
    }
    let now = db
        .inspect(env.migrations_table.as_deref(), false)?
        .migrations;
    Ok((now == newest.migrations).then(|| Backed::Reused(newest.id.clone(), age)))
}

/// Runs `faber-db --json backup ENV ARGS` for the project and returns its JSON report; past
/// `deadline` it is stopped (SIGTERM: it removes what it wrote) and that is the error.
fn backup_child(
    session: &Session,
    env: &Environment,
    args: &[&str],
    deadline: Instant,
) -> crate::Result<serde_json::Value> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::tool("cannot find the faber-db binary").caused_by(e))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--json")
        .arg("--root")
        .arg(&session.config.root)
        .arg("--config")
        .arg(&session.config.file)
        .arg("backup")
        .arg(&env.name)
        .args(args)
        .current_dir(&session.config.root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    crate::child::dies_with_us(&mut cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::tool("cannot start faber-db backup").caused_by(e))?;
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let mut overran = false;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) if !overran => {
                overran = true;
                // SAFETY: a signal to the child this function started and has not reaped.
                unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
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
    let out = reader.join().unwrap_or_default();
    if overran {
        return Err(Error::aborted(format!(
            "the pre-migration backup of `{}` took longer than the hook may wait, and was stopped",
            env.name
        ))
        .with_hint(format!(
            "take it first, in the background: `faber-db backup {} --reason pre-migration --label pre-migration`; then run the migration again",
            env.name
        )));
    }
    let doc: serde_json::Value = serde_json::from_str(&out)
        .map_err(|e| Error::tool("faber-db backup gave no report").caused_by(e))?;
    if doc["ok"] == true {
        return Ok(doc);
    }
    let error = &doc["error"];
    let mut e = Error::tool(
        error["message"]
            .as_str()
            .unwrap_or("the backup failed")
            .to_string(),
    );
    if let Some(h) = error["hint"].as_str() {
        e = e.with_hint(h.to_string());
    }
    Err(e)
}

fn plan_text(plan: &migrate::Plan) -> String {
    let mut out = String::new();
    if !plan.exists {
        out.push_str("Its database does not exist yet: every migration is pending.\n");
    }
    if let Some(m) = &plan.before {
        out.push_str(&format!(
            "Applied: {} migrations ({}), last {}.\n",
            m.applied_count,
            m.tool,
            m.last_migration.as_deref().unwrap_or("-")
        ));
    }
    if !plan.listable {
        out.push_str(
            "Pending migrations cannot be listed (no SQL migration files faber-db can read).\n",
        );
    } else if plan.todo.is_empty() {
        out.push_str("No pending migrations in the migration files.\n");
    } else {
        out.push_str(&format!("Pending: {}\n", plan.todo.len()));
        for p in &plan.todo {
            out.push_str(&format!("  {}\n", p.name));
            for d in &p.destructive {
                out.push_str(&format!(
                    "    DESTRUCTIVE {} ({} line {}): {}\n",
                    d.what, p.file, d.line, d.statement
                ));
            }
        }
    }
    out
}

/// The environment a migration command acts on: named or pointed at by the command (a
/// variable it sets, a database URL), else the one whose `migrate_command` it runs, else the
/// project's `.env` and `default_environment`. `Ok(None)`: a database that is no environment.
fn which_env(
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
        .find(|e| session.url(e).is_ok_and(|u| same_database(&u, &wanted)))
        .map(|e| e.name.clone())
}

/// Whether two URLs name the same database (users and passwords aside).
fn same_database(a: &DatabaseUrl, b: &DatabaseUrl) -> bool {
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

fn default_port(kind: crate::provider::ProviderKind) -> Option<u16> {
    match kind {
        crate::provider::ProviderKind::Postgres => Some(5432),
        crate::provider::ProviderKind::Mysql => Some(3306),
        crate::provider::ProviderKind::Sqlite => None,
    }
}

fn same_host(a: Option<&str>, b: Option<&str>) -> bool {
    let norm = |h: Option<&str>| match h.unwrap_or("") {
        "" | "localhost" | "127.0.0.1" | "[::1]" | "::1" => "localhost".to_string(),
        h if h.starts_with('/') => "localhost".to_string(),
        h => h.to_ascii_lowercase(),
    };
    norm(a) == norm(b)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// `faber-db … --yes` changing a protected environment: ask, with the dry run's plan.
fn on_faber(line: &str, inv: &Invocation, dir: &Path) -> Option<Answer> {
    let args = guard::faber_args(inv)?;
    let bypass = DEFAULT_YES_VARS.iter().any(|v| inv.var(v).is_some());
    if !guard::says_yes(args) && !bypass {
        return None;
    }
    let mut unknown = false;
    let expanded: Vec<String> = args
        .iter()
        .map(|w| {
            shell::expand(w, &|n| {
                inv.var(n)
                    .map(str::to_string)
                    .or_else(|| std::env::var(n).ok())
            })
            .unwrap_or_else(|| {
                unknown = true;
                shell::display(w)
            })
        })
        .collect();
    let cli = match Cli::try_parse_from(
        std::iter::once("faber-db".to_string()).chain(expanded.clone()),
    ) {
        Ok(cli) => cli,
        // Refused by the parser, it will not run; unless a value only running it would tell
        // hides what it is.
        Err(_) if !unknown => return None,
        Err(_) => {
            return Some(Answer::new(
                Decision::Ask,
                "faber-db: an agent gave --yes to a faber-db command whose arguments cannot be told before it runs; approve only if you know what it changes".to_string(),
            ));
        }
    };
    let ctx = context(dir, cli.global.config.clone(), cli.global.root.clone())?;
    let session = ctx.session_unchanged().ok()?;
    if !session.config.hook.enabled {
        return None;
    }
    let env_of = |given: &Option<String>| -> Option<String> {
        given.clone().or_else(|| {
            DEFAULT_ENV_VARS
                .iter()
                .find_map(|v| inv.var(v).map(str::to_string))
                .or_else(|| session.default_env().ok().map(|(n, _)| n))
        })
    };
    let protected = |name: &str| {
        session
            .config
            .environments
            .get(name)
            .is_none_or(|e| e.protected)
    };
    let (action, env, plan_args) = match &cli.command {
        Sub::Backup(a) if !a.list && !a.dry_run.dry_run => ("backup", env_of(&a.env), true),
        Sub::Restore(a) if !a.dry_run.dry_run => ("restore", env_of(&a.env), true),
        Sub::Rollback(a) if !a.dry_run.dry_run => ("rollback", env_of(&a.env), true),
        Sub::Migrate(a) if !a.dry_run.dry_run => ("migrate", env_of(&a.env), true),
        Sub::Cleanup(a) if !a.dry_run.dry_run => ("cleanup", a.env.clone(), true),
        Sub::Delete(a) => {
            let owner = session.store.load().ok().and_then(|r| {
                r.backups
                    .iter()
                    .find(|b| b.id == a.id)
                    .map(|b| b.environment.clone())
            });
            ("delete", owner, false)
        }
        _ => return None,
    };
    let at_stake = match (&cli.command, &env) {
        (Sub::Cleanup(_), None) => session.config.environments.values().any(|e| e.protected),
        (_, Some(name)) => protected(name),
        (_, None) => true,
    };
    if !at_stake {
        return None;
    }
    let target = env.as_deref().unwrap_or("(every environment)");
    let plan = if plan_args {
        dry_run(&expanded, inv, dir)
    } else {
        format!(
            "It removes backup {} for good.",
            args.last().map_or("", |a| a.as_str())
        )
    };
    let answer = Answer::new(
        Decision::Ask,
        format!(
            "faber-db: the agent gave --yes to `faber-db {action}` on protected environment `{target}`: only you can approve that. What it would do:\n{plan}"
        ),
    );
    Some(record(
        &session,
        line,
        env.as_deref(),
        None,
        "faber-db --yes",
        answer,
    ))
}

/// Variables that would answer faber-db's confirmations, were any honoured.
const DEFAULT_YES_VARS: [&str; 2] = ["FABER_YES", "FABER_DB_YES"];

/// The output of the command run again with `--dry-run` (changes nothing), shortened.
fn dry_run(args: &[String], inv: &Invocation, dir: &Path) -> String {
    let Ok(exe) = std::env::current_exe() else {
        return "(no plan: cannot find the faber-db binary)".to_string();
    };
    let mut cmd = Command::new(exe);
    cmd.args(
        args.iter()
            .filter(|a| !guard::says_yes(std::slice::from_ref(a))),
    )
    .arg("--dry-run")
    .current_dir(dir)
    .env("NO_COLOR", "1")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in &inv.vars {
        if let Some(v) = shell::expand(v, &|n| std::env::var(n).ok()) {
            cmd.env(k, v);
        }
    }
    crate::child::dies_with_us(&mut cmd);
    let Ok(mut child) = cmd.spawn() else {
        return "(no plan: the dry run did not start)".to_string();
    };
    let pump = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = r {
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
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() < DRY_RUN_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
        }
    }
    let text = format!(
        "{}{}",
        err.join().unwrap_or_default(),
        out.join().unwrap_or_default()
    );
    let text = text.trim();
    if text.chars().count() > MAX_PLAN {
        format!("{}…", text.chars().take(MAX_PLAN).collect::<String>())
    } else {
        text.to_string()
    }
}

/// Destructive SQL sent to a protected environment's database: ask.
fn on_sql(line: &str, inv: &Invocation, dir: &Path) -> Option<Answer> {
    let ctx = context(dir, None, None)?;
    let session = ctx.session_unchanged().ok()?;
    if !session.config.hook.enabled {
        return None;
    }
    let lookup = |name: &str| {
        inv.var(name)
            .or_else(|| session.vars.get(name))
            .map(str::to_string)
    };
    let call = sql::call(inv, &lookup)?;
    let findings = call.findings(dir);
    if findings.is_empty() && !call.unknown_sql {
        return None;
    }
    let protected: Vec<&Environment> = session
        .config
        .environments
        .values()
        .filter(|e| e.protected)
        .collect();
    let hit = protected
        .iter()
        .find(|e| session.url(e).is_ok_and(|u| target_is(&call, &u, dir)));
    let mut what = findings
        .iter()
        .map(|f| format!("  {} (line {}): {}", f.what, f.line, f.excerpt))
        .collect::<Vec<_>>()
        .join("\n");
    if call.unknown_sql {
        if !what.is_empty() {
            what.push('\n');
        }
        what.push_str("  SQL that cannot be told before it runs (a substitution, a variable with no known value, or another command's output)");
    }
    let (env, reason) = match hit {
        Some(e) => (
            Some(e.name.as_str()),
            format!(
                "faber-db: this sends destructive SQL to the database of protected environment `{}`:\n{what}\nNo backup is taken for it: `faber-db backup {}` first if unsure.",
                e.name, e.name
            ),
        ),
        None if call.target.unknown && !protected.is_empty() => (
            None,
            format!(
                "faber-db: this sends destructive SQL to a database that cannot be told before it runs (it may be a protected environment's):\n{what}"
            ),
        ),
        None => return None,
    };
    let answer = Answer::new(Decision::Ask, reason);
    Some(record(&session, line, env, None, "destructive SQL", answer))
}

/// Whether the client call connects to the database of `url`.
fn target_is(call: &sql::SqlCall, url: &DatabaseUrl, dir: &Path) -> bool {
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
