//! The engine of Claude Code's pre-tool-use hook: which of an agent's commands concern a
//! project's databases, which environment each acts on, what SQL sent to one calls for, the
//! pre-migration backup taken before a migration runs, what a faber-db command given `--yes`
//! puts at stake and would do, and the history record of each decision.
//! The command layer (`cmd/hook`) reads the hook's input, words the answers and prints them.

mod backup;
mod environment;
mod faber;
pub mod guarded;
mod sql;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use backup::{
    BUDGET_VAR, Backed, Planned, REUSE_WITHIN_MINUTES, pre_migration_backup, prepare_migration,
};
pub use environment::which_env;
pub use faber::{NoPlan, at_stake, command_vars, dry_run, env_of, expanded, owner_of, says_yes};
pub use sql::{Reached, Sent, Verdict, judge_sql, sql_sent};

use crate::config::{self, Config};
use crate::guard::{self, Invocation, redact};
use crate::registry::HookRecord;
use crate::session::Session;
use crate::shell;

/// A permission decision, weakest first: the strongest of a line's wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Decision {
    /// No decision: Claude Code's own permission rules apply.
    None,
    Allow,
    Ask,
    Deny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::None => "none",
            Decision::Allow => "allow",
            Decision::Ask => "ask",
            Decision::Deny => "deny",
        }
    }
}

/// What one command of a line is, to the hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    /// A migration: a tool's own migrate command, or one the config names; its words as shown.
    Migration(String),
    /// faber-db itself.
    Faber,
    /// A database client (`psql`, `mysql`, `sqlite3`).
    Sql,
}

/// A command of the line that concerns a database, and the directory it runs in.
#[derive(Debug)]
pub struct Found<'a> {
    pub inv: &'a Invocation,
    pub dir: PathBuf,
    pub what: What,
}

/// What a line's commands are.
#[derive(Debug)]
pub struct Scan<'a> {
    /// Its commands that concern a database, in order.
    pub found: Vec<Found<'a>>,
    /// Every command of the line is a migration seen to, writing no file and run as no other
    /// user, and the whole line was read: approving it approves nothing else.
    pub only_migrations: bool,
    /// The line was too long to be read whole.
    pub cut: bool,
}

/// The commands of `line` (read into `invocations`) that concern a database, the hook run in
/// `cwd`.
pub fn scan<'a>(line: &str, invocations: &'a [Invocation], cwd: &Path) -> Scan<'a> {
    let mut migrations = 0;
    let mut found = Vec::new();
    // Each project's config is read once, however many of the line's commands run in it.
    let mut configs: Vec<(PathBuf, Option<Config>)> = Vec::new();
    for inv in invocations {
        let dir = inv.dir(cwd);
        let what = if let Some(shown) = guard::builtin_migration(inv) {
            What::Migration(shown)
        } else if guard::faber_args(inv).is_some() {
            What::Faber
        } else if matches!(
            inv.program(),
            "psql"
                | "mysql"
                | "mariadb"
                | "sqlite3"
                | "sqlite"
                | "dropdb"
                | "pg_restore"
                | "mysqladmin"
                | "mariadb-admin"
        ) {
            What::Sql
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
            if !configs[at]
                .1
                .as_ref()
                .is_some_and(|config| configured_migration(config, inv))
            {
                continue;
            }
            What::Migration(inv.shown())
        };
        if matches!(what, What::Migration(_)) {
            migrations += 1;
        }
        found.push(Found { inv, dir, what });
    }
    let cut = shell::is_cut(line);
    let only_migrations =
        migrations == invocations.len() && invocations.iter().all(Invocation::approvable) && !cut;
    Scan {
        found,
        only_migrations,
        cut,
    }
}

/// The config of the project at `root`, when it has one that can be read.
fn config_of(root: &Path) -> Option<Config> {
    config::locate(root, None).ok()?;
    config::load(root, None).ok()
}

/// Whether the config names the command a migration: an environment's `migrate_command`, or
/// one of the hook's `migrate_patterns` (with the hook on).
fn configured_migration(config: &Config, inv: &Invocation) -> bool {
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

/// The secrets of every environment's URL, to blank out of what is shown or written down.
pub fn secrets(session: &Session) -> Vec<String> {
    session
        .config
        .environments
        .values()
        .filter_map(|e| session.url(e).ok())
        .flat_map(|u| u.secrets())
        .collect()
}

/// What the hook decided on a command, for the history.
#[derive(Debug, Clone, Copy)]
pub struct Heard<'a> {
    /// The agent's whole command line.
    pub line: &'a str,
    /// The environment it acts on, when told.
    pub env: Option<&'a str>,
    /// The backup taken (or counted) before it.
    pub backup: Option<&'a str>,
    /// What the hook saw in it: `migration: …`, `destructive SQL`, …
    pub matched: &'a str,
}

/// Writes the decision and its reason to the history, the secrets of every environment's URL
/// blanked out of the reason and the command; returns the reason as written.
pub fn record(session: &Session, heard: Heard<'_>, decision: Decision, reason: &str) -> String {
    let known = secrets(session);
    let reason = redact::command(reason, &known);
    crate::audit::log_hook_event(
        session,
        heard.env,
        heard.backup,
        HookRecord {
            decision: decision.as_str(),
            matched: heard.matched.to_string(),
            command: redact::command(heard.line, &known),
            reason: reason.clone(),
        },
    );
    reason
}
