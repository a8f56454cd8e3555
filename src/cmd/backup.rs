//! `faber-db backup ENV`: the arguments made into a request, the plan shown and confirmed, the
//! engine ([`crate::ops::backup`]) called, and the backup it took shown (human, quiet or JSON).

use std::path::PathBuf;

use clap::Args;

use crate::Report;
use crate::approval::{self, Change};
use crate::cmd::list;
use crate::confirm::{self, Ask};
use crate::error::Result;
use crate::format::Format;
use crate::ids;
use crate::ops::backup::{self, Request};
use crate::pipeline::Compression;
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

    /// Leave out the rows of the tables PATTERN names, keeping their schema; repeatable, added
    /// to the environment's exclude_table_data. `*` stands for any run of characters
    /// (sessions*); a name without it names that table alone
    #[arg(long, value_name = "PATTERN")]
    pub exclude_table_data: Vec<String>,

    /// SQLite: run the full `PRAGMA integrity_check` on the snapshot (indexes against their
    /// tables too) instead of `quick_check`; the default for environments with
    /// sqlite_full_check = true
    #[arg(long)]
    pub full_check: bool,

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
        exclude_table_data: args.exclude_table_data,
        full_check: args.full_check,
    };
    if args.dry_run.dry_run {
        let plan = backup::preview(session, env, &request)?;
        ui::backup::plan(ui, session, &plan);
        ui.line("Dry run: nothing was written.");
        let mut report = Report::new().with("dry_run", true).with("plan", &plan);
        report.failure = plan.space_shortfall();
        return Ok(report);
    }
    // Without a terminal to ask on, a protected backup stops before it connects.
    confirm::can_ask(env, "backup", session.ctx.yes)?;
    let prepared = backup::prepare(session, env, &request)?;
    if prepared.preview.confirmation {
        ui::backup::plan(ui, session, &prepared.preview);
    }
    let change = Change {
        action: "backup",
        scope: Some(&env.name),
        backup: None,
    };
    approval::gate(session, env, &change)?;
    confirm::confirm(env, "backup", Ask::YesNo, session.ctx.yes)?;
    let estimate = prepared.preview.estimate.clone();
    let mut record = backup::write(session, env, &request, prepared)?;
    let copied = if env.offsite {
        crate::offsite::after_backup(session, &mut record)
    } else {
        Ok(())
    };
    ui::backup::summary(ui, session, &record, &estimate);
    ui.quiet_result(&record.id);
    // The backup is registered either way: the report names it, and the failure sets the exit.
    let mut report = Report::new()
        .with("backup", &record)
        .with("estimate", &estimate);
    report.failure = copied.err();
    Ok(report)
}
