//! The pre-migration backup the hook takes before an agent's migration runs: in a child
//! faber-db, bounded in time, or, when it would not fit in that time, a recent one that still
//! stands for it.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::config::Environment;
use crate::error::{Error, Remedy, Result};
use crate::ops::migrate::{self, Outlook};
use crate::provider::Provider;
use crate::registry::Status;
use crate::session::Session;

/// How long the hook may spend on a pre-migration backup (`FABER_HOOK_BACKUP_TIMEOUT`, in
/// seconds): under the 600 s Claude Code gives it (hooks/hooks.json), past which Claude Code
/// kills it and runs the migration without a backup.
const BACKUP_BUDGET: Duration = Duration::from_secs(540);
pub const BUDGET_VAR: &str = "FABER_HOOK_BACKUP_TIMEOUT";
/// A pre-migration backup this recent, of a database whose migrations have not changed since,
/// stands for one that would not fit in the budget.
pub const REUSE_WITHIN_MINUTES: i64 = 60;

/// The pre-migration backup behind a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backed {
    /// Taken now: its ID.
    Taken(String),
    /// Taken earlier (too big to take within the hook's time): its ID and age in minutes.
    Reused(String, i64),
    /// None wanted, or no database yet.
    None,
}

impl Backed {
    /// The ID of the backup, taken or counted.
    pub fn id(&self) -> Option<&str> {
        match self {
            Backed::Taken(id) | Backed::Reused(id, _) => Some(id),
            Backed::None => None,
        }
    }
}

/// Takes the pre-migration backup of `env` (its database `db`) for the migration `shown`, the
/// hook having started at `started`. It runs as a backup in a child faber-db, bounded in time:
/// one that would not end before Claude Code gives up on the hook is not started (a recent one
/// may stand for it), one that runs over is stopped (it then removes what it wrote), and either
/// is an error — the migration must not run without it.
pub fn pre_migration_backup(
    session: &Session,
    env: &Environment,
    db: &dyn Provider,
    shown: &str,
    started: Instant,
) -> crate::Result<Backed> {
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
        if let Some(reused) = recent_pre_migration(session, env, db)? {
            return Ok(reused);
        }
        return Err(Error::aborted(format!(
            "the pre-migration backup of `{}` would take about {}, longer than the hook may wait ({})",
            env.name,
            crate::human::duration_ms(crate::human::millis(expected)),
            crate::human::duration_ms(crate::human::millis(budget)),
        ))
        .with_hint(Remedy::BackUpAheadOrMigrate {
            env: env.name.clone(),
            within_minutes: REUSE_WITHIN_MINUTES,
        }));
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
    Ok(Backed::Taken(id.to_string()))
}

/// A valid `pre-migration` backup of `env` taken in the last hour, when the database's
/// migrations are still those it recorded: no migration ran since.
pub(super) fn recent_pre_migration(
    session: &Session,
    env: &Environment,
    db: &dyn Provider,
) -> crate::Result<Option<Backed>> {
    let registry = session.store.load()?;
    let newest = registry
        .backups
        .iter()
        .filter(|b| {
            b.environment == env.name
                && b.reason.as_deref() == Some("pre-migration")
                && b.status == Status::Valid
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

/// Runs this faber-db's backup of `env` with `args`, `--json`, for the project, and returns its
/// JSON report; past `deadline` it is stopped (SIGTERM: it removes what it wrote) and that is
/// the error.
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
        .current_dir(&session.config.root);
    // The hook's own safety backup, not the agent's `--yes`: Claude Code runs hooks in its
    // environment too, and faber-db would take the `--yes` for the agent's (`approval`).
    for var in crate::agent::AGENT_VARS {
        cmd.env_remove(var);
    }
    cmd.env_remove(crate::approval::APPROVAL_VAR);
    let run = crate::child::run_bounded(cmd, deadline)
        .map_err(|e| Error::tool("cannot start faber-db backup").caused_by(e))?;
    if run.overran {
        return Err(Error::aborted(format!(
            "the pre-migration backup of `{}` took longer than the hook may wait, and was stopped",
            env.name
        ))
        .with_hint(Remedy::BackUpAheadThenRetry {
            env: env.name.clone(),
        }));
    }
    let doc: serde_json::Value = serde_json::from_str(&run.stdout)
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

/// What [`prepare_migration`] found.
pub enum Planned {
    /// The backup behind the decision, and for a protected environment what is pending (the
    /// answer shows it).
    Go(Backed, Option<Outlook>),
    /// Pending migrations hold statements the config forbids: nothing was backed up.
    Blocked(Error),
}

/// The pre-migration backup (when the environment wants one, or the config's safety rules want
/// one for what is pending, and its database exists) and, for a protected environment, the plan
/// it found pending. Pending migrations holding statements the config forbids are `Blocked` first. The
/// backup is bounded in time ([`pre_migration_backup`]): one that cannot be taken in
/// time is an error — the migration must not run without it.
pub fn prepare_migration(session: &Session, env: &Environment, shown: &str) -> Result<Planned> {
    let started = Instant::now();
    let (_, db) = session.provider(env)?;
    let safety = &session.config.safety;
    let ruled = !safety.destructive.is_empty() || safety.backup_before_destructive_ops;
    let planned = if env.protected || ruled {
        Some(migrate::plan(session, env, db.as_ref())?)
    } else {
        None
    };
    if let Some(e) = planned
        .as_ref()
        .and_then(|p| migrate::blocked(session, &p.todo))
    {
        return Ok(Planned::Blocked(e));
    }
    let required = planned
        .as_ref()
        .and_then(|p| migrate::backup_required(session, env, &p.todo, p.listable));
    let plan = planned.filter(|_| env.protected);
    if !(env.backup_before_migrate || required.is_some()) || !db.exists()? {
        return Ok(Planned::Go(Backed::None, plan));
    }
    let backed = pre_migration_backup(session, env, db.as_ref(), shown, started)?;
    Ok(Planned::Go(backed, plan))
}
