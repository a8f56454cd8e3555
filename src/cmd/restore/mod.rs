//! `faber-db restore ENV --from ID|latest`: the arguments made into a request, the preview and
//! pre-flight shown, the protected environment's name asked for, the engine
//! ([`crate::ops::restore`]) called — checksum first, safety backup of the target, restore, then
//! row counts compared with the manifest — and what it did reported (human or JSON).

use clap::Args;
use serde_json::json;

use crate::Report;
use crate::approval::{self, Change};
use crate::cmd::cli::{DryRun, Wait};
use crate::confirm::{self, Ask};
use crate::error::Result;
use crate::hints;
use crate::ops::restore::{self, Request};
use crate::session::Session;
use crate::ui::{self, To, Ui};

mod partial;

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Environment whose database is replaced [default: FABER_ENV, ENV_MODE or
    /// default_environment]
    pub env: Option<String>,

    /// Backup ID to restore, or `latest`: the newest valid backup of ENV that is not a
    /// pre-restore safety backup
    #[arg(long, value_name = "ID|latest", default_value = "latest")]
    pub from: String,

    /// Skip the safety backup of the current database (not recommended)
    #[arg(long)]
    pub no_safety_backup: bool,

    /// End other sessions connected to the target database instead of refusing (PostgreSQL)
    #[arg(long)]
    pub terminate_connections: bool,

    /// Restore in place: drop the database's own objects and load the backup into it (one
    /// transaction on PostgreSQL), instead of swapping in a checked scratch copy. Chosen
    /// automatically when the role may not create databases
    #[arg(long)]
    pub in_place: bool,

    /// Put back only this table of the backup, leaving the others as they are (repeatable).
    /// PostgreSQL: `schema.table`, or `table` in `public`
    #[arg(long = "table", value_name = "TABLE", conflicts_with_all = ["in_place", "terminate_connections"])]
    pub tables: Vec<String>,

    /// Put back every table of this schema (PostgreSQL; repeatable)
    #[arg(long = "schema", value_name = "SCHEMA", conflicts_with_all = ["in_place", "terminate_connections"])]
    pub schemas: Vec<String>,

    /// Restore the whole backup into NAME, a new database on the environment's server (SQLite:
    /// a new file), and leave the environment's database alone
    #[arg(
        long,
        value_name = "NAME",
        conflicts_with_all = ["tables", "schemas", "in_place", "no_safety_backup", "terminate_connections"]
    )]
    pub into: Option<String>,

    /// With --into: first make the roles and tablespaces the backup keeps (`include_globals`)
    /// that the server lacks — for a new server (PostgreSQL)
    #[arg(long, requires = "into")]
    pub with_globals: bool,

    /// Parallel restore jobs (PostgreSQL custom and directory backups; pg_restore --jobs)
    /// [default: one per core]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: Option<u32>,

    #[command(flatten)]
    pub wait: Wait,

    #[command(flatten)]
    pub dry_run: DryRun,
}

pub fn run(session: &Session, ui: &Ui, args: RestoreArgs) -> Result<Report> {
    let env = session.env(crate::cmd::cli::env_name(&args.env))?;
    let _lock = super::claim_env(session, env, "restore", "restore", args.dry_run, args.wait)?;
    let (record, chosen) = restore::choose(session, env, &args.from)?;
    if record.environment != env.name {
        ui.warn(format!(
            "restoring a backup of `{}` into `{}`",
            record.environment, env.name
        ));
    }
    let (url, db) = session.provider(env)?;
    restore::check_kind(env, db.as_ref(), &record)?;
    if let Some(name) = &args.into {
        return partial::into(session, ui, env, &record, db.as_ref(), name, &args);
    }
    if !args.tables.is_empty() || !args.schemas.is_empty() {
        return partial::tables(session, ui, env, &record, (&url, db.as_ref()), &args);
    }
    let safety_reason = (!args.no_safety_backup).then_some("pre-restore");
    let title = format!(
        "restore {} into {} ({})",
        ui.bold(&record.id),
        ui.bold(&env.name),
        url.redacted()
    );
    let preview = restore::preview(
        session,
        env,
        db.as_ref(),
        &record,
        chosen,
        safety_reason,
        args.in_place,
    )?;
    // The same command again, as a hint names it: the backup by its ID (`latest` may be
    // another one by then), and the options that change what it does.
    let jobs = args.jobs.map(|j| j.to_string());
    let mut again = vec!["restore", env.name.as_str(), "--from", record.id.as_str()];
    if args.no_safety_backup {
        again.push("--no-safety-backup");
    }
    if args.in_place {
        again.push("--in-place");
    }
    if let Some(jobs) = &jobs {
        again.extend(["--jobs", jobs.as_str()]);
    }
    let (preflight, refused) =
        restore::preflight(db.as_ref(), &record, &preview, args.terminate_connections)?;
    let failure = refused.map(|r| hints::restore::refused(session, env, &preview, r, &again));
    if args.dry_run.dry_run {
        ui::restore::plan(ui, &title, &preview, To::Output);
        ui::restore::preflight(ui, &preflight);
        ui.line("Dry run: nothing was changed.");
        let mut report = Report::new()
            .with("dry_run", true)
            .with("backup", &record)
            .with("plan", &preview)
            .with("preflight", &preflight);
        // A dry run fails as the run would: a pipeline's dry run catches it.
        report.failure = failure;
        return Ok(report);
    }
    if let Some(failure) = failure {
        ui::restore::preflight(ui, &preflight);
        let mut report = Report::new()
            .with("backup", &record)
            .with("environment", &env.name)
            .with("preflight", &preflight)
            .with("restored", false);
        report.failure = Some(failure);
        return Ok(report);
    }
    ui.line(format!(
        "Restoring {} into {} ({})",
        ui.bold(&record.id),
        ui.bold(&env.name),
        url.redacted()
    ));
    ui::restore::preflight_passed(ui, &preflight);
    // What the answer replaces, and with what, is shown before the question.
    if confirm::will_ask(env, session.ctx.yes) {
        ui::restore::plan(ui, &title, &preview, To::Prompt);
    }
    let change = Change {
        action: "restore",
        scope: Some(&env.name),
        backup: Some(&record),
    };
    approval::gate(session, env, &change)?;
    confirm::confirm(env, "restore", Ask::TypeName, session.ctx.yes)?;
    let restored = restore::apply(
        session,
        env,
        db.as_ref(),
        &record,
        &Request {
            event: "restore",
            safety_reason,
            terminate_connections: args.terminate_connections,
            jobs: args.jobs,
            in_place: args.in_place,
            method: preview.choice(),
        },
    )
    .map_err(|e| hints::restore::busy(session, e, &again))?;
    let mut report = Report::new()
        .with("backup", &record)
        .with("environment", &env.name)
        .with("method", restored.method.method)
        .with("method_why", &restored.method.why)
        .with("kept_tables", &restored.kept)
        .with("preflight", &preflight)
        .with("safety_backup", &restored.safety)
        .with("tables", &restored.inspection.tables)
        .with("migrations", &restored.inspection.migrations)
        .with("row_count_differences", &restored.diffs);
    report.failure = restored.failure(env);
    if let Some(s) = &restored.safety {
        ui.line(format!(
            "Undo with: faber-db restore {} --from {s}",
            env.name
        ));
    }
    Ok(report.with("restored", json!(true)))
}
