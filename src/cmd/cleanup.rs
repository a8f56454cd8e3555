//! `faber-db cleanup [ENV] --expired | --older-than DUR | --keep-last N --keep-daily N
//! --keep-weekly N --keep-monthly N [--keep-automatic N] [--dry-run]`: removes backups, never the newest valid one of an
//! environment, never one kept forever and never a `mismatch` one. Which ones go is [`crate::keep::select`];
//! [`crate::ops::cleanup`] removes them.

use std::collections::BTreeSet;

use clap::Args;

use crate::Report;
use crate::approval::{self, Change};
use crate::cmd::cli::DryRun;
use crate::confirm::{self, Ask};
use crate::error::{Error, Result};
use crate::keep::{Automatic, Kept, Policy, Removal, Rule};
use crate::ops::cleanup::{self};
use crate::retention;
use crate::session::Session;
use crate::ui;
use crate::ui::Ui;

#[derive(Debug, Args)]
#[command(
    group = clap::ArgGroup::new("rule")
        .required(true)
        .multiple(true)
        .args(["expired", "older_than", "keep_last", "keep_daily", "keep_weekly", "keep_monthly", "keep_automatic"]),
    group = clap::ArgGroup::new("asked")
        .multiple(true)
        .args(["keep_last", "keep_daily", "keep_weekly", "keep_monthly"]),
    after_help = "The --keep-* flags combine: a backup any of them keeps stays, the rest go. \
        --keep-last, --keep-daily, --keep-weekly and --keep-monthly count the backups someone \
        asked for (labelled, or with a reason of their own); the safety backups faber-db takes \
        itself (pre-restore, pre-migration, pre-rollback) are kept by --keep-automatic N, the \
        newest N, or without it those of the last 7 days. \
        --expired and --older-than are rules of their own. Whatever the rule, the newest valid \
        backup of each environment, the one `restore --from latest` picks, the one a plain \
        `rollback` picks, backups kept forever and `mismatch` backups (see `verify --deep`) stay."
)]
pub struct CleanupArgs {
    /// Only this environment's backups
    pub env: Option<String>,

    /// Remove backups past their retention
    #[arg(long, conflicts_with_all = ["older_than", "keep_last", "keep_daily", "keep_weekly", "keep_monthly", "keep_automatic"])]
    pub expired: bool,

    /// Remove backups older than this (30d, 12h, 2weeks)
    #[arg(long, value_name = "DUR", value_parser = retention::parse_duration,
          conflicts_with_all = ["keep_last", "keep_daily", "keep_weekly", "keep_monthly", "keep_automatic"])]
    pub older_than: Option<std::time::Duration>,

    /// Keep the newest N backups of each environment that someone asked for (automatic safety
    /// backups are not counted: see --keep-automatic)
    #[arg(long, value_name = "N")]
    pub keep_last: Option<usize>,

    /// Keep the newest valid backup of each of the last N days (UTC) that have one
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<usize>,

    /// Keep the newest valid backup of each of the last N ISO weeks that have one
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<usize>,

    /// Keep the newest valid backup of each of the last N calendar months that have one
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<usize>,

    /// Keep the newest N automatic safety backups (pre-restore, pre-migration, pre-rollback) of
    /// each environment; default: those taken in the last 7 days
    #[arg(long, value_name = "N", requires = "asked")]
    pub keep_automatic: Option<usize>,

    #[command(flatten)]
    pub dry_run: DryRun,
}

impl CleanupArgs {
    /// The one rule the flags give (clap has checked there is exactly one).
    fn rule(&self) -> Result<Rule> {
        if self.expired {
            return Ok(Rule::Expired);
        }
        if let Some(d) = self.older_than {
            let age = chrono::Duration::from_std(d).map_err(|_| {
                Error::config("--older-than is too long").with_hint("use a duration such as 90d")
            })?;
            return Ok(Rule::OlderThan(age));
        }
        Ok(Rule::Keep(Policy {
            last: self.keep_last.unwrap_or(0),
            daily: self.keep_daily.unwrap_or(0),
            weekly: self.keep_weekly.unwrap_or(0),
            monthly: self.keep_monthly.unwrap_or(0),
            automatic: self
                .keep_automatic
                .map_or(Automatic::DEFAULT, Automatic::Last),
        }))
    }
}

pub fn run(session: &Session, ui: &Ui, args: CleanupArgs) -> Result<Report> {
    let request = cleanup::Request {
        env: args.env.as_deref(),
        rule: args.rule()?,
    };
    let planned = cleanup::select(session, request)?;

    if args.dry_run.dry_run {
        ui::cleanup::selection(ui, &planned);
        return Ok(report(
            true,
            &planned.kept,
            &planned.removed,
            planned.freed_bytes(),
        ));
    }
    // Off-site copies that earlier removals could not take go first (a cron job's cleanup is
    // what finishes them).
    let problems = cleanup::finish_pending(session);
    if planned.removed.is_empty() {
        ui.line("Nothing to clean up.");
        let mut report = report(false, &planned.kept, &[], 0);
        report.failure = cleanup::left_behind(&problems);
        return Ok(report);
    }

    // Protected environments are confirmed once each, by name, before anything is removed.
    let envs: BTreeSet<&str> = planned
        .removed
        .iter()
        .map(|r| r.environment.as_str())
        .collect();
    // Each prompt is preceded by its plan: what the answer removes.
    for name in envs {
        if let Some(env) = session.config.environments.get(name) {
            if env.protected && !session.ctx.yes {
                ui::cleanup::removals(ui, &planned, name, session.ctx.now);
            }
            let change = Change {
                action: "cleanup",
                scope: args.env.as_deref(),
                backup: None,
            };
            approval::gate(session, env, &change)?;
            confirm::confirm(env, "cleanup", Ask::TypeName, session.ctx.yes)?;
        }
    }

    let cleaned = cleanup::remove(session, request, &planned, problems)?;
    ui.line(format!(
        "{} removed, {} freed",
        ui::count(ui::cleanup::len(&cleaned.removed), "backup"),
        ui::size(cleaned.freed_bytes)
    ));
    let mut report = report(false, &cleaned.kept, &cleaned.removed, cleaned.freed_bytes);
    report.failure = cleaned.failure;
    Ok(report)
}

fn report(dry_run: bool, kept: &[Kept], removed: &[Removal], freed: u64) -> Report {
    Report::new()
        .with("dry_run", dry_run)
        .with("kept", kept)
        .with("removed", removed)
        .with("freed_bytes", freed)
}
