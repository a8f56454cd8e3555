//! `faber-db backup ENV`: the arguments made into a request, the plan shown and confirmed, the
//! engine ([`crate::ops::backup`]) called, and the backup it took shown (human, quiet or JSON).

use std::path::PathBuf;

use clap::Args;

use crate::Report;
use crate::cmd::list;
use crate::confirm::{self, Ask};
use crate::error::Result;
use crate::format::Format;
use crate::ids;
use crate::ops::backup::{self, Preview, Request};
use crate::pipeline::Compression;
use crate::plan;
use crate::registry::{BackupRecord, Remote};
use crate::retention::Retention;
use crate::session::Session;
use crate::ui;
use crate::ui::Ui;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Environment to back up (dev, staging, production, …) [default: FABER_ENV, ENV_MODE or
    /// default_environment]
    pub env: Option<String>,

    /// Label appended to the backup ID ([A-Za-z0-9._-], at most 64 characters)
    #[arg(long)]
    pub label: Option<String>,

    /// Why the backup was taken, recorded in the registry (same characters as a label)
    #[arg(long)]
    pub reason: Option<String>,

    /// How long to keep this backup (30d, 12h, 2weeks, 90 = days, or "forever"); default: the
    /// environment's
    #[arg(long, value_name = "DUR")]
    pub retention: Option<Retention>,

    /// Dump format of server databases: sql | custom | directory (PostgreSQL). SQLite backups
    /// are always database images; leave it out for SQLite
    #[arg(long, value_name = "F")]
    pub format: Option<Format>,

    /// Compression: none | gzip | zstd (of the stream; of each file for directory dumps)
    #[arg(long, value_name = "C")]
    pub compression: Option<Compression>,

    /// Parallel dump jobs (PostgreSQL directory format; ignored elsewhere)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: Option<u32>,

    /// Put this backup's files in DIR instead of the configured backup directory (created 0700
    /// if absent); the registry records where they are
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    /// List the environment's backups instead (same as `faber-db list ENV`)
    #[arg(long)]
    pub list: bool,

    /// The command this backup is taken before, recorded in its entry: the Claude Code hook's
    /// pre-migration backups
    #[arg(long, value_name = "CMD", hide = true)]
    pub before_command: Option<String>,

    #[command(flatten)]
    pub dry_run: crate::cmd::cli::DryRun,
}

pub fn run(session: &Session, ui: &Ui, args: BackupArgs) -> Result<Report> {
    if args.list {
        return list::run(
            session,
            ui,
            list::ListArgs {
                env: args.env,
                env_option: None,
                all: false,
                remote: false,
            },
        );
    }
    for (what, value) in [("label", &args.label), ("reason", &args.reason)] {
        if let Some(v) = value {
            ids::validate_label(what, v)?;
        }
    }
    let env = session.env(crate::cmd::cli::env_name(&args.env))?;
    let output_dir = match args.output_dir.as_deref() {
        Some(d) => backup::output_dir(session, env, d)?,
        None => None,
    };
    let request = Request {
        label: args.label,
        reason: args.reason,
        retention: args.retention.unwrap_or(env.retention),
        format: args.format,
        compression: args.compression,
        jobs: args.jobs,
        output_dir,
        command: args.before_command,
    };
    if args.dry_run.dry_run {
        let plan = backup::preview(session, env, &request)?;
        print_plan(ui, session, &plan);
        ui.line("Dry run: nothing was written.");
        let mut report = Report::new().with("dry_run", true).with("plan", &plan);
        report.failure = plan.space_shortfall();
        return Ok(report);
    }
    // Without a terminal to ask on, a protected backup stops before it connects.
    confirm::can_ask(env, "backup", session.ctx.yes)?;
    let prepared = backup::prepare(session, env, &request)?;
    if prepared.preview.confirmation {
        print_plan(ui, session, &prepared.preview);
    }
    confirm::confirm(env, "backup", Ask::YesNo, session.ctx.yes)?;
    let estimate = prepared.preview.estimate.clone();
    let mut record = backup::write(session, env, &request, prepared)?;
    let copied = if env.offsite {
        crate::offsite::after_backup(session, &mut record)
    } else {
        Ok(())
    };
    print_summary(ui, session, &record, &estimate);
    ui.quiet_result(&record.id);
    // The backup is registered either way: the report names it, and the failure sets the exit.
    let mut report = Report::new()
        .with("backup", &record)
        .with("estimate", &estimate);
    report.failure = copied.err();
    Ok(report)
}

/// Prints a backup's plan.
fn print_plan(ui: &Ui, session: &Session, plan: &Preview) {
    ui.line(format!(
        "Plan: back up {} of {}",
        ui.bold(&plan.database),
        ui.bold(&plan.environment)
    ));
    ui.line(format!(
        "  {} {}",
        ui.bold("Steps:     "),
        plan.steps.join(" → ")
    ));
    let what = match plan.compression {
        Compression::None => plan.format.to_string(),
        c => format!("{}, {c}", plan.format),
    };
    ui.line(format!(
        "  {} {} now; {what}{}",
        ui.bold("Database:  "),
        ui::size(plan.database_size_bytes),
        if plan.encrypted { ", encrypted" } else { "" }
    ));
    ui.line(format!(
        "  {} about {} in about {} ({})",
        ui.bold("Estimate:  "),
        ui::size(plan.estimate.size_bytes),
        ui::duration_ms(plan.estimate.duration_ms),
        plan.estimate.describe()
    ));
    ui.line(format!(
        "  {} {} ({} free, about {} needed{})",
        ui.bold("Location:  "),
        session.ctx.show(&plan.destination),
        ui::size(plan.free_bytes),
        ui::size(plan.space_needed_bytes),
        if plan.enough_space {
            ""
        } else {
            ": not enough"
        }
    ));
    if let Some(tools) = &plan.tools {
        ui.line(format!("  {} {tools}", ui.bold("Tools:     ")));
    }
    ui.line(format!(
        "  {} {}",
        ui.bold("Confirm:   "),
        if plan.confirmation {
            format!("yes: `{}` is protected", plan.environment)
        } else {
            "no".to_string()
        }
    ));
}

fn print_summary(ui: &Ui, session: &Session, r: &BackupRecord, estimate: &plan::Estimate) {
    let path: PathBuf = session
        .store
        .locate(r)
        .map_or_else(|_| PathBuf::from(&r.file), |l| l.data);
    ui.line("");
    ui.line(format!("  {} {}", ui.bold("Backup:    "), r.id));
    let size = if r.files.is_empty() {
        format!(
            "{} ({} before compression)",
            ui::size(r.size_bytes),
            ui::size(r.raw_size_bytes)
        )
    } else {
        format!(
            "{} in {} files ({} per file)",
            ui::size(r.size_bytes),
            r.files.len(),
            r.compression
        )
    };
    ui.line(format!("  {} {size}", ui.bold("Size:      ")));
    ui.line(format!(
        "  {} {} in {}; estimated {} in {} ({})",
        ui.bold("Actual:    "),
        ui::size(r.size_bytes),
        ui::duration_ms(r.duration_ms),
        ui::size(estimate.size_bytes),
        ui::duration_ms(estimate.duration_ms),
        estimate.describe()
    ));
    ui.line(format!(
        "  {} {}",
        ui.bold("Location:  "),
        session.ctx.show(&path)
    ));
    let tables: u64 = r.tables.values().map(|t| t.rows).sum();
    let about = if r.tables.values().any(|t| t.estimated) {
        "about "
    } else {
        ""
    };
    ui.line(format!(
        "  {} {}, {about}{}",
        ui.bold("Contents:  "),
        ui::count(r.tables.len() as u64, "table"),
        ui::count(tables, "row")
    ));
    if let Some(m) = &r.migrations {
        ui.line(format!(
            "  {} {} applied ({}), last {}",
            ui.bold("Migrations:"),
            m.applied_count,
            m.tool,
            m.last_migration.as_deref().unwrap_or("-")
        ));
    }
    let expiry = r.expires_at.map_or_else(
        || "kept forever".to_string(),
        |t| format!("until {}", t.format("%Y-%m-%d %H:%M UTC")),
    );
    ui.line(format!("  {} {expiry}", ui.bold("Retention: ")));
    match &r.remote {
        Some(Remote::Uploaded { url, .. }) => {
            ui.line(format!("  {} {url}", ui.bold("Off-site:  ")));
        }
        Some(Remote::Failed { .. }) => {
            ui.line(format!("  {} upload failed", ui.bold("Off-site:  ")));
        }
        None => {}
    }
    ui.line("");
    ui.line(format!(
        "Restore with: faber-db restore {} --from {}",
        r.environment, r.id
    ));
}
