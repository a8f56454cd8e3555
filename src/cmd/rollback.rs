//! `faber-db rollback ENV [--to ID | --to-migration NAME]`: undo a release by restoring the newest
//! valid `pre-migration` backup (or the one named), showing which migrations it undoes, and
//! checking the migration state afterwards.

use clap::{ArgGroup, Args};

use crate::Report;
use crate::approval::{self, Change};
use crate::cmd::cli::{DryRun, Wait};
use crate::config::Environment;
use crate::confirm::{self, Ask};
use crate::error::Result;
use crate::hints;
use crate::migrations::describe;
use crate::ops::restore;
use crate::ops::rollback::{self, Target};
use crate::provider::Provider;
use crate::registry::BackupRecord;
use crate::session::Session;
use crate::ui::{self, To, Ui};

/// The reason of the safety backup a rollback takes of what it replaces.
const SAFETY: Option<&str> = Some("pre-rollback");

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

    /// Roll a protected environment back with `--yes` though it loses rows written since the
    /// backup; without it, the environment's name must be typed at a terminal
    #[arg(long)]
    pub accept_data_loss: bool,

    #[command(flatten)]
    pub wait: Wait,

    #[command(flatten)]
    pub dry_run: DryRun,
}

pub fn run(session: &Session, ui: &Ui, args: RollbackArgs) -> Result<Report> {
    let env = session.env(crate::cmd::cli::env_name(&args.env))?;
    let verb = "rollback";
    let _lock = super::claim_env(session, env, verb, verb, args.dry_run, args.wait)?;
    let target = Target::from_flags(args.to.clone(), args.to_migration.clone());
    let (record, chosen) = rollback::pick(session, env, &target)?;
    let (url, db) = session.provider(env)?;
    let db = db.as_ref();
    restore::check_kind(env, db, &record)?;
    let undo = rollback::undo(env, db, &record)?;
    let report = Report::new()
        .with("environment", &env.name)
        .with("backup", &record)
        .with("migrations_before", &undo.now)
        .with("undone", &undo.undone);
    // Already undone (migrate's own restore after a failed migration, or a rollback just done):
    // restoring again would only take another safety backup of the same data.
    if !args.force
        && let Some(last) = rollback::already_restored(session, env, db, &record)?
    {
        return Ok(already(
            ui,
            env,
            &record,
            &last,
            report,
            args.dry_run.dry_run,
        ));
    }
    rollback::check_undoes(env, &target, args.force, &undo, &record)?;
    let (loss, name_typed, report) = with_loss(session, env, db, (&record, &undo), &args, report);
    let what = format!(
        "{} ({}) back to {}",
        ui.bold(&env.name),
        url.redacted(),
        ui.bold(&record.id)
    );
    let title = format!("roll {what}");
    // The plan --dry-run shows, and a protected rollback shows before its question.
    let plan = restore::preview(session, env, db, &record, chosen, SAFETY, args.in_place)?;
    // The same command again, as a hint names it: the backup by its ID.
    let mut again = vec!["rollback", env.name.as_str(), "--to", record.id.as_str()];
    let flags = [(args.force, "--force"), (args.in_place, "--in-place")];
    again.extend(flags.into_iter().filter(|f| f.0).map(|f| f.1));
    let (preflight, refused) = restore::preflight(db, &record, &plan, args.terminate_connections)?;
    let failure = refused.map(|r| hints::restore::refused(session, env, &plan, r, &again));
    let mut report = report.with("preflight", &preflight);
    if args.dry_run.dry_run {
        ui::restore::plan(ui, &title, &plan, To::Output);
        ui::restore::loss(ui, &loss, To::Output);
        if name_typed {
            ui.line(
                "  --yes does not confirm it: it loses rows, so the name is asked for (--accept-data-loss accepts the loss)",
            );
        }
        ui::restore::preflight(ui, &preflight);
        ui.line("Dry run: nothing was changed.");
        // A dry run fails as the run would: a pipeline's dry run catches it.
        report.failure = failure;
        return Ok(report.with("dry_run", true).with("plan", &plan));
    }
    if let Some(failure) = failure {
        ui::restore::preflight(ui, &preflight);
        report.failure = Some(failure);
        return Ok(report.with("rolled_back", false));
    }
    ui.line(format!("Rolling {what}"));
    let yes = asked(session, env, name_typed, |to| {
        if to == To::Prompt {
            // What the answer replaces, and with what, is shown before the question.
            ui::restore::plan(ui, &title, &plan, To::Prompt);
        } else {
            ui.line(format!("  now:   {}", describe(undo.now.as_ref())));
            ui.line(format!("  after: {}", describe(record.migrations.as_ref())));
            if !undo.undone.is_empty() {
                ui.line(format!("  undoes: {}", undo.undone.join(", ")));
            }
        }
        ui::restore::loss(ui, &loss, to);
    })
    .ok_or_else(|| hints::rollback::loses_rows(session, env, &record, &loss, &again))?;
    ui::restore::preflight_passed(ui, &preflight);
    let change = Change {
        action: "rollback",
        scope: Some(&env.name),
        backup: Some(&record),
    };
    approval::gate(session, env, &change)?;
    confirm::confirm(env, "rollback", Ask::TypeName, yes)?;
    let request = restore::Request {
        event: "rollback",
        safety_reason: SAFETY,
        terminate_connections: args.terminate_connections,
        jobs: None,
        in_place: args.in_place,
        method: plan.choice(),
    };
    let restored = restore::apply(session, env, db, &record, &request)
        .map_err(|e| hints::restore::busy(session, e, &again))?;
    let after = &restored.inspection.migrations;
    let differs = rollback::state_differs(after.as_ref(), &record);
    let matches = differs.is_none();
    let mut report = report
        .with("method", restored.method.method)
        .with("method_why", &restored.method.why)
        .with("safety_backup", &restored.safety)
        .with("migrations_after", after)
        .with("migrations_match", matches)
        .with("row_count_differences", &restored.diffs);
    report.failure = restored.failure(env).or(differs);
    if matches {
        ui.ok(format!(
            "Migration state matches the backup: {}",
            describe(after.as_ref())
        ));
    }
    if let Some(s) = &restored.safety {
        ui.line(format!(
            "Undo with: faber-db restore {} --from {s}",
            env.name
        ));
    }
    Ok(report.with("rolled_back", true))
}

/// Shows the plan and the loss (through `show`, before the question when one is asked) and says
/// whether `--yes` answers for the confirmation: not when the name must be typed (`name_typed`:
/// on a protected environment, a rollback that loses rows, or cannot tell, without
/// `--accept-data-loss`) — then it is asked at a terminal, and without one the rollback is refused
/// (`None`).
fn asked(
    session: &Session,
    env: &Environment,
    name_typed: bool,
    show: impl FnOnce(To),
) -> Option<bool> {
    let yes = session.ctx.yes && !name_typed;
    if confirm::will_ask(env, yes) {
        show(To::Prompt);
    } else {
        show(To::Output);
        if name_typed {
            return None;
        }
    }
    Some(yes)
}

/// The report of a rollback with nothing to do: `env` was restored from `record` (`last`) and has
/// not changed since.
fn already(
    ui: &Ui,
    env: &Environment,
    record: &BackupRecord,
    last: &rollback::LastRestore,
    report: Report,
    dry_run: bool,
) -> Report {
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
    let mut report = report.with("already_restored", last);
    report = report.with("rolled_back", false);
    if dry_run {
        report = report.with("dry_run", true);
    }
    report
}

/// What rolling back to `record` loses (a count that fails is said, and on a protected
/// environment asks as a loss would), whether the environment's name must then be typed even
/// with `--yes`, and `report` with both.
fn with_loss(
    session: &Session,
    env: &Environment,
    db: &dyn Provider,
    (record, undo): (&BackupRecord, &rollback::Undo),
    args: &RollbackArgs,
    report: Report,
) -> (std::result::Result<rollback::Loss, String>, bool, Report) {
    let loss = rollback::would_lose(session, env, db, record, undo).map_err(|e| e.one_line());
    let loses = loss.as_ref().map_or(true, |l| l.rows_total > 0);
    let name_typed = env.protected && loses && !args.accept_data_loss;
    let report = match &loss {
        Ok(loss) => report.with("would_lose", loss),
        Err(why) => report
            .with("would_lose", serde_json::Value::Null)
            .with("would_lose_unknown", why),
    };
    let report = report.with("loss_needs_typed_name", name_typed);
    (loss, name_typed, report)
}
