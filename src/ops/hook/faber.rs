//! A faber-db command the agent gives with its confirmations answered: its arguments as they
//! will run, the environment it acts on, whether a protected one is at stake, and what it would
//! do, told by running it again as a dry run.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::guard::{self, Invocation};
use crate::session::{DEFAULT_ENV_VARS, Session};
use crate::shell;

/// How long the dry run shown as a plan may take.
const DRY_RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// The most of a dry run's output put in a reason.
const MAX_PLAN: usize = 4000;
/// Variables that would answer faber-db's confirmations, were any honoured.
const DEFAULT_YES_VARS: [&str; 2] = ["FABER_YES", "FABER_DB_YES"];

/// Whether the command, whose faber-db arguments are `args`, answers faber-db's confirmations:
/// `--yes` (or `-y`), or a variable that would.
pub fn says_yes(inv: &Invocation, args: &[String]) -> bool {
    guard::says_yes(args) || DEFAULT_YES_VARS.iter().any(|v| inv.var(v).is_some())
}

/// The arguments as they will run, the variables expanded (the command's, then the hook's
/// own), and whether some could not be told before it runs (kept as written).
pub fn expanded(inv: &Invocation, args: &[String]) -> (Vec<String>, bool) {
    let mut unknown = false;
    let expanded = args
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
    (expanded, unknown)
}

/// The environment a command acts on: the one `given`, else one a variable the command sets
/// names, else the project's default.
pub fn env_of(session: &Session, inv: &Invocation, given: Option<&str>) -> Option<String> {
    given.map(str::to_string).or_else(|| {
        DEFAULT_ENV_VARS
            .iter()
            .find_map(|v| inv.var(v).map(str::to_string))
            .or_else(|| session.default_env().ok().map(|(n, _)| n))
    })
}

/// The environment backup `id` is of, when the registry has it.
pub fn owner_of(session: &Session, id: &str) -> Option<String> {
    session
        .store
        .load()
        .ok()
        .and_then(|r| r.find(id).map(|b| b.environment.clone()))
}

/// Whether a change to `env` puts a protected environment at stake: one that is protected, or
/// not known (a change to every environment, `None`, when `every` and any is protected).
pub fn at_stake(session: &Session, env: Option<&str>, every: bool) -> bool {
    let environments = &session.config.environments;
    match env {
        None if every => environments.values().any(|e| e.protected),
        Some(name) => environments.get(name).is_none_or(|e| e.protected),
        None => true,
    }
}

/// The variables the command sets, their values expanded from the hook's environment; those
/// only running it would tell are left out.
pub fn command_vars(inv: &Invocation) -> impl Iterator<Item = (&str, String)> {
    inv.vars
        .iter()
        .filter_map(|(k, v)| shell::expand(v, &|n| std::env::var(n).ok()).map(|v| (k.as_str(), v)))
}

/// Why a dry run gave no plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoPlan {
    /// This binary cannot be found.
    NoBinary,
    /// It did not start.
    DidNotStart,
}

/// The output of the command (its expanded `args`, the variables `inv` sets, in `dir`) run
/// again with `--dry-run` and without its `--yes` (it changes nothing), shortened.
pub fn dry_run(args: &[String], inv: &Invocation, dir: &Path) -> Result<String, NoPlan> {
    let exe = std::env::current_exe().map_err(|_| NoPlan::NoBinary)?;
    let mut cmd = Command::new(exe);
    cmd.args(
        args.iter()
            .filter(|a| !guard::says_yes(std::slice::from_ref(a))),
    )
    .arg("--dry-run")
    .current_dir(dir)
    .env("NO_COLOR", "1");
    cmd.envs(command_vars(inv));
    let run = crate::child::run_bounded(cmd, Instant::now() + DRY_RUN_TIMEOUT)
        .map_err(|_| NoPlan::DidNotStart)?;
    let text = format!("{}{}", run.stderr, run.stdout);
    let text = text.trim();
    Ok(if text.chars().count() > MAX_PLAN {
        format!("{}…", text.chars().take(MAX_PLAN).collect::<String>())
    } else {
        text.to_string()
    })
}
