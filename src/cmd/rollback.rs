//! `faber-db rollback ENV [--to ID | --to-migration NAME]`: undo a release by restoring the newest
//! valid `pre-migration` backup (or the one named), showing which migrations it undoes, and
//! checking the migration state afterwards.

use clap::{ArgGroup, Args};

use crate::Report;
use crate::cmd::cli::{DryRun, Wait};
use crate::config::Environment;
use crate::confirm::{self, Ask};
use crate::error::{Error, Result};
use crate::ids;
use crate::migrations::{MigrationState, describe, undone};
use crate::ops::restore;
use crate::registry::{BackupRecord, Status};
use crate::session::Session;
use crate::ui::To;

#[derive(Debug, Args)]
#[command(group = ArgGroup::new("target").args(["to", "to_migration"]))]
pub struct RollbackArgs {
    /// Environment to roll back [default: FABER_ENV, ENV_MODE or
    /// default_environment]
    pub env: Option<String>,

    /// Backup ID to roll back to (default: the newest valid pre-migration backup of ENV, else
    /// its newest valid backup)
    #[arg(long, value_name = "ID")]
    pub to: Option<String>,

    /// Roll back to the newest valid backup whose last applied migration is NAME
    #[arg(long, value_name = "NAME")]
    pub to_migration: Option<String>,

    /// End other sessions connected to the database instead of refusing (PostgreSQL, MySQL)
    #[arg(long)]
    pub terminate_connections: bool,

    /// Restore in place: drop the database's own objects and load the backup into it (one
    /// transaction on PostgreSQL), instead of swapping in a checked scratch copy. Chosen
    /// automatically when the role may not create databases
    #[arg(long)]
    pub in_place: bool,

    /// Restore even when the database is already as the backup left it (restored from it,
    /// nothing changed since), or has no migration the backup lacks
    #[arg(long)]
    pub force: bool,

    #[command(flatten)]
    pub wait: Wait,

    #[command(flatten)]
    pub dry_run: DryRun,
}

#[expect(clippy::too_many_lines, reason = "issue 19: to split along its steps")]
pub fn run(session: &Session, args: RollbackArgs) -> Result<Report> {
    let ui = &session.ctx.ui;
    let env = session.env(crate::cmd::cli::env_name(&args.env))?;
    let _lock = crate::cmd::claim_env(
        session,
        env,
        "rollback",
        "rollback",
        args.dry_run,
        args.wait,
    )?;
    let (record, chosen) = pick(session, env, &args)?;
    let (url, db) = session.provider(env)?;
    restore::check_kind(env, db.as_ref(), &record)?;
    let now = if db.exists()? {
        db.inspect(env.migrations_table.as_deref(), false)?
            .migrations
    } else {
        None
    };
    let undone = undone(now.as_ref(), record.migrations.as_ref());
    // Already undone (migrate's own restore after a failed migration, or a rollback just done):
    // restoring again would only take another safety backup of the same data.
    if !args.force {
        match already_restored(session, env, db.as_ref(), &record)? {
            Already::No => {}
            Already::Changed(last, diffs) => ui.warn(format!(
                "`{}` was restored from {} at {}, but has changed since ({}): rolling back to it again",
                env.name,
                record.id,
                last.at.format("%Y-%m-%d %H:%M:%S UTC"),
                diffs.join(", ")
            )),
            Already::Yes(last) => {
                ui.ok(format!(
                    "Nothing to roll back: `{}` was already restored from {} at {} ({}), and its migrations and row counts still match that backup",
                    env.name,
                    record.id,
                    last.at.format("%Y-%m-%d %H:%M:%S UTC"),
                    last.describe()
                ));
                ui.line(format!(
                    "To restore it again anyway: faber-db rollback {} --to {} --force",
                    env.name, record.id
                ));
                let report = Report::new()
                    .with("environment", &env.name)
                    .with("backup", &record)
                    .with("migrations_before", &now)
                    .with("undone", &undone)
                    .with("already_restored", &last)
                    .with("rolled_back", false);
                return Ok(if args.dry_run.dry_run {
                    report.with("dry_run", true)
                } else {
                    report
                });
            }
        }
    }
    // The default pick undoes a release. When the database has no migration the backup lacks,
    // there is no release to undo — only data written since, which is not this command's to drop.
    if args.to.is_none()
        && args.to_migration.is_none()
        && !args.force
        && now.is_some()
        && undone.is_empty()
        && same_state(now.as_ref(), record.migrations.as_ref())
    {
        return Err(Error::config(format!(
            "`{}` has the same migrations as its newest pre-migration backup {}: there is no migration to roll back",
            env.name, record.id
        ))
        .with_hint(format!(
            "to return to that backup anyway, losing what was written since {}, name it: faber-db rollback {} --to {}",
            record.timestamp.format("%Y-%m-%d %H:%M UTC"),
            env.name,
            record.id
        )));
    }
    let report = Report::new()
        .with("environment", &env.name)
        .with("backup", &record)
        .with("migrations_before", &now)
        .with("undone", &undone);
    let title = format!(
        "roll {} ({}) back to {}",
        ui.bold(&env.name),
        url.redacted(),
        ui.bold(&record.id)
    );
    // The plan --dry-run shows, and a protected rollback shows before its question.
    let plan = restore::preview(
        session,
        env,
        db.as_ref(),
        &record,
        chosen,
        Some("pre-rollback"),
        args.in_place,
    )?;
    // The same command again, as a hint names it: the backup by its ID.
    let mut again = vec!["rollback", env.name.as_str(), "--to", record.id.as_str()];
    if args.force {
        again.push("--force");
    }
    if args.in_place {
        again.push("--in-place");
    }
    let (preflight, refused) =
        restore::preflight(db.as_ref(), &record, &plan, args.terminate_connections)?;
    let failure = refused.map(|r| super::show::restore_refused(session, env, &plan, r, &again));
    let report = report.with("preflight", &preflight);
    if args.dry_run.dry_run {
        super::show::restore_plan(session, &title, &plan, To::Output);
        super::show::preflight(ui, &preflight);
        ui.line("Dry run: nothing was changed.");
        let mut report = report.with("dry_run", true).with("plan", &plan);
        // A dry run fails as the run would: a pipeline's dry run catches it.
        report.failure = failure;
        return Ok(report);
    }
    if let Some(failure) = failure {
        super::show::preflight(ui, &preflight);
        let mut report = report.with("rolled_back", false);
        report.failure = Some(failure);
        return Ok(report);
    }
    ui.line(format!(
        "Rolling {} ({}) back to {}",
        ui.bold(&env.name),
        url.redacted(),
        ui.bold(&record.id)
    ));
    if confirm::will_ask(env, session.ctx.yes) {
        // What the answer replaces, and with what, is shown before the question.
        super::show::restore_plan(session, &title, &plan, To::Prompt);
    } else {
        ui.line(format!("  now:   {}", describe(now.as_ref())));
        ui.line(format!("  after: {}", describe(record.migrations.as_ref())));
        if !undone.is_empty() {
            ui.line(format!("  undoes: {}", undone.join(", ")));
        }
    }
    super::show::preflight_passed(ui, &preflight);
    confirm::confirm(env, "rollback", Ask::TypeName, session.ctx.yes)?;
    let restored = restore::apply(
        session,
        env,
        db.as_ref(),
        &record,
        &restore::Request {
            event: "rollback",
            safety_reason: Some("pre-rollback"),
            terminate_connections: args.terminate_connections,
            jobs: None,
            in_place: args.in_place,
            method: plan.choice(),
        },
    )
    .map_err(|e| super::show::busy_hint(session, e, &again))?;
    let after = &restored.inspection.migrations;
    let matches = same_state(after.as_ref(), record.migrations.as_ref());
    let mut report = report
        .with("method", restored.method.method)
        .with("method_why", &restored.method.why)
        .with("safety_backup", &restored.safety)
        .with("migrations_after", after)
        .with("migrations_match", matches)
        .with("row_count_differences", &restored.diffs);
    report.failure = restored.failure(env);
    if matches {
        ui.ok(format!(
            "Migration state matches the backup: {}",
            describe(after.as_ref())
        ));
    } else if report.failure.is_none() {
        report.failure = Some(
            Error::verification(format!(
                "after the rollback the migration state is {}, but the backup recorded {}",
                describe(after.as_ref()),
                describe(record.migrations.as_ref())
            ))
            .with_hint("check the database; the safety backup holds what was replaced"),
        );
    }
    if let Some(s) = &restored.safety {
        ui.line(format!(
            "Undo with: faber-db restore {} --from {s}",
            env.name
        ));
    }
    Ok(report.with("rolled_back", true))
}

/// The backup to roll back to, and why it was chosen.
fn pick(
    session: &Session,
    env: &Environment,
    args: &RollbackArgs,
) -> Result<(BackupRecord, String)> {
    let reg = session.store.load()?;
    let valid: Vec<&BackupRecord> = reg
        .newest_first(Some(&env.name))
        .into_iter()
        .filter(|b| b.is_restorable())
        .collect();
    if let Some(id) = &args.to {
        ids::validate_id(id)?;
        let record = crate::cmd::verify::find(&reg, id)?;
        if record.environment != env.name {
            return Err(Error::config(format!(
                "backup {id} is a backup of `{}`, not of `{}`",
                record.environment, env.name
            ))
            .with_hint(format!(
                "a rollback returns an environment to one of its own backups; to copy another environment's data, use `faber-db restore {} --from {id}`",
                env.name
            )));
        }
        match record.status {
            Status::Valid => {}
            // Never picked on its own: named, it is rolled back to with a warning.
            Status::Mismatch => restore::warn_mismatch(session, record),
            s => {
                return Err(Error::verification(format!(
                    "backup {id} is marked {}; it will not be restored",
                    s.as_str()
                ))
                .with_hint("check it with `faber-db verify` or pick another backup"));
            }
        }
        return Ok((record.clone(), "named with --to".to_string()));
    }
    let is_safety = |b: &BackupRecord| {
        b.reason
            .as_deref()
            .is_some_and(|r| crate::registry::UNDO_REASONS.contains(&r))
    };
    if let Some(name) = &args.to_migration {
        // Never a safety backup: after a failed migration that was restored, the `pre-rollback`
        // one holds the broken state with the same last migration.
        return valid
            .into_iter()
            .filter(|b| !is_safety(b))
            .find(|b| {
                b.migrations
                    .as_ref()
                    .and_then(|m| m.last_migration.as_deref())
                    == Some(name.as_str())
            })
            .map(|b| {
                let why = format!("--to-migration: the newest valid backup ending at {name}");
                (b.clone(), why)
            })
            .ok_or_else(|| {
                Error::config(format!(
                    "no valid backup of `{}` ends at migration {name}",
                    env.name
                ))
                .with_hint(format!(
                    "see the migrations of each backup with `faber-db list {}`",
                    env.name
                ))
            });
    }
    let pre_migration = reg
        .newest_pre_migration(&env.name)
        .map(|b| (b, "the newest valid pre-migration backup"));
    pre_migration
        .or_else(|| {
            let newest = valid.iter().find(|b| !is_safety(b))?;
            Some((*newest, "the newest valid backup (there is no pre-migration backup)"))
        })
        .map(|(b, why)| (b.clone(), why.to_string()))
        .ok_or_else(|| {
            Error::config(format!(
                "environment `{}` has no valid backup to roll back to",
                env.name
            ))
            .with_hint(format!(
                "`faber-db migrate {}` takes a pre-migration backup when backup_before_migrate is set",
                env.name
            ))
        })
}

/// Events of the audit log that never change an environment's database. Any other event of the
/// environment (`migrate`, a `restore` or `rollback` that failed or was cut short, a Claude Code
/// `hook` decision on an agent's command, one this version does not know) may have.
const LEAVES_DATABASE: [&str; 8] = [
    "backup", "push", "fetch", "pull", "cleanup", "delete", "repair", "notify",
];

/// The last restore of a backup into an environment, as `already_restored` reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LastRestore {
    /// The backup restored.
    pub backup: String,
    /// What restored it: `migrate` (its automatic restore after a failed migration),
    /// `rollback` or `restore`.
    pub by: &'static str,
    /// When it finished.
    pub at: chrono::DateTime<chrono::Utc>,
}

impl LastRestore {
    fn describe(&self) -> &'static str {
        match self.by {
            "migrate" => "by the failed migrate's automatic restore",
            "rollback" => "by a rollback",
            _ => "by a restore",
        }
    }
}

enum Already {
    /// The database is as `record` left it: restored from it, nothing changed since.
    Yes(LastRestore),
    /// It was restored from `record`, and has changed since (what differs).
    Changed(LastRestore, Vec<String>),
    No,
}

/// Whether `env`'s database is already as `record` left it: the last event of the audit log
/// that may have changed the database is a successful restore or rollback of `record` into
/// `env` (migrate's automatic restore is one), and the live database has the backup's
/// migration state, tables and row counts (the counts of tables estimated on either side not
/// compared).
fn already_restored(
    session: &Session,
    env: &Environment,
    db: &dyn crate::provider::Provider,
    record: &BackupRecord,
) -> Result<Already> {
    let history = session.store.history(&env.name);
    let Some(last) = history.iter().rev().find(|e| {
        !e["event"]
            .as_str()
            .is_some_and(|name| LEAVES_DATABASE.contains(&name))
    }) else {
        return Ok(Already::No);
    };
    let by = match last["event"].as_str() {
        Some("rollback") => "rollback",
        Some("restore") => "restore",
        _ => return Ok(Already::No),
    };
    if last["ok"] != true || last["id"] != record.id.as_str() {
        return Ok(Already::No);
    }
    let Ok(at) = serde_json::from_value(last["time"].clone()) else {
        return Ok(Already::No);
    };
    // A rollback in the run of a failed migrate is that migrate's automatic restore.
    let by = if by == "rollback"
        && last["run"].is_string()
        && history
            .iter()
            .any(|e| e["event"] == "migrate" && e["run"] == last["run"])
    {
        "migrate"
    } else {
        by
    };
    let last = LastRestore {
        backup: record.id.clone(),
        by,
        at,
    };
    if !db.exists()? {
        return Ok(Already::Changed(
            last,
            vec!["the database does not exist".to_string()],
        ));
    }
    let live = db.inspect(env.migrations_table.as_deref(), true)?;
    let mut diffs = Vec::new();
    if !same_state(live.migrations.as_ref(), record.migrations.as_ref()) {
        diffs.push(format!(
            "migrations: {}",
            describe(live.migrations.as_ref())
        ));
    }
    diffs.extend(crate::cmd::verify::compare_tables(
        record.provider,
        &record.tables,
        &live.tables,
    ));
    Ok(if diffs.is_empty() {
        Already::Yes(last)
    } else {
        Already::Changed(last, diffs)
    })
}

fn same_state(a: Option<&MigrationState>, b: Option<&MigrationState>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            a.applied_count == b.applied_count && a.migrations_list == b.migrations_list
        }
        (None, None) => true,
        _ => false,
    }
}
