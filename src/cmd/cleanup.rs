//! `faber-db cleanup [ENV] --expired | --older-than DUR | --keep-last N --keep-daily N
//! --keep-weekly N --keep-monthly N [--keep-automatic N] [--dry-run]`: removes backups, never the newest valid one of an
//! environment, never one kept forever and never a `mismatch` one. Which ones go is [`crate::keep::select`].

use std::collections::BTreeSet;

use clap::Args;

use crate::Report;
use crate::cmd;
use crate::cmd::cli::DryRun;
use crate::confirm::{self, Ask};
use crate::error::{Error, Result};
use crate::keep::{self, Automatic, Kept, Policy, Removal, Rule, Selection};
use crate::removal;
use crate::retention;
use crate::session::Session;
use crate::ui;

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

pub fn run(session: &Session, args: CleanupArgs) -> Result<Report> {
    let ui = &session.ctx.ui;
    let rule = args.rule()?;
    if let Some(env) = &args.env {
        session.env(env)?;
    }
    let reg = session.store.load()?;
    let planned = keep::select(&reg, args.env.as_deref(), rule, session.ctx.now);

    if args.dry_run.dry_run {
        show_plan(ui, &planned);
        return Ok(report(
            true,
            &planned.kept,
            &planned.removed,
            planned.freed_bytes(),
        ));
    }
    // Off-site copies that earlier removals could not take go first (a cron job's cleanup is
    // what finishes them).
    let mut problems = crate::offsite::finish_pending_removals(session);
    if planned.removed.is_empty() {
        ui.line("Nothing to clean up.");
        let mut report = report(false, &planned.kept, &[], 0);
        report.failure = left_behind(&problems);
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
                show_removals(ui, &planned, name, session.ctx.now);
            }
            confirm::confirm(env, "cleanup", Ask::TypeName, session.ctx.yes)?;
        }
    }

    crate::testpoint::pause("cleanup:before-lock");
    // The selection is made again under the lock, so that what changed meanwhile is judged too:
    // a backup that became the newest valid one stays. What is removed is what both plans
    // remove — never a backup the confirmed plan did not name.
    let confirmed: BTreeSet<&str> = planned.removed.iter().map(|r| r.id.as_str()).collect();
    let mut kept: Vec<Kept> = Vec::new();
    let outcome = removal::remove(&session.store, |reg| {
        let mut plan = keep::select(reg, args.env.as_deref(), rule, session.ctx.now);
        let (chosen, unconfirmed): (Vec<_>, Vec<_>) = std::mem::take(&mut plan.removed)
            .into_iter()
            .partition(|r| confirmed.contains(r.id.as_str()));
        plan.kept.extend(
            unconfirmed
                .iter()
                .map(|r| kept_for(r, keep::Reason::NotConfirmed)),
        );
        kept = plan.kept;
        Ok(chosen.into_iter().map(|r| r.id).collect())
    })?;
    // Backups the removal left alone: read by another run (kept for the next cleanup), or with
    // a refused path or no tombstone (a failure: doctor tells more).
    let mut refused = Vec::new();
    for (b, why, e) in outcome.kept {
        let reason = match why {
            removal::KeptWhy::InUse => keep::Reason::InUse,
            removal::KeptWhy::PathRefused => keep::Reason::PathRefused,
            removal::KeptWhy::Unavailable => keep::Reason::Unavailable,
        };
        if why == removal::KeptWhy::InUse {
            ui.warn(format!("kept {} {}: {}", b.environment, b.id, e.one_line()));
        } else {
            ui.fail(format!("kept {} {}: {}", b.environment, b.id, e.one_line()));
            refused.push(e);
        }
        kept.push(kept_for(&Removal::of(&b), reason));
    }
    for k in &kept {
        ui.detail(format!("kept {} {} ({})", k.environment, k.id, reasons(k)));
    }

    let mut freed = 0;
    let mut done = Vec::new();
    let mut offsite = Vec::new();
    for r in outcome.removed {
        let b = &r.record;
        let left: Vec<&String> = outcome
            .problems
            .iter()
            .filter(|(id, _)| *id == b.id)
            .map(|(_, p)| p)
            .collect();
        let ok = left.is_empty();
        if ok {
            freed += b.size_bytes;
            ui.ok(format!(
                "Removed {} {} ({})",
                b.environment,
                b.id,
                ui::size(b.size_bytes)
            ));
        } else {
            ui.fail(format!(
                "Removed {} {} from the registry, but not all its files",
                b.environment, b.id
            ));
            problems.extend(left.into_iter().cloned());
        }
        cmd::log_event(
            session,
            "cleanup",
            Some(&b.environment),
            Some(&b.id),
            ok,
            None,
        );
        done.push(Removal::of(b));
        offsite.extend(r.offsite);
    }
    // Off-site copies go last: a failure leaves the backup's tombstone, and the next cleanup or
    // delete tries again.
    problems.extend(crate::offsite::remove_copies(session, offsite));
    let removed = done.len();
    ui.line(format!(
        "{} removed, {} freed",
        ui::count(removed as u64, "backup"),
        ui::size(freed)
    ));
    let mut report = report(false, &kept, &done, freed);
    report.failure = left_behind(&problems).or_else(|| refused.into_iter().next());
    Ok(report)
}

/// The failure to report when removed backups left files or off-site copies behind.
fn left_behind(problems: &[String]) -> Option<Error> {
    (!problems.is_empty()).then(|| {
        Error::config(format!(
            "some files could not be removed: {}",
            problems.join("; ")
        ))
        .with_hint(
            "they are no longer in the registry, and their tombstones remain: the next cleanup \
             or delete tries again (`faber-db doctor` shows what is left)",
        )
    })
}

/// The dry run: every backup considered, newest first within each environment, kept with its
/// reasons or to be removed with its size.
fn show_plan(ui: &ui::Ui, plan: &Selection) {
    let mut lines: Vec<(&str, chrono::DateTime<chrono::Utc>, &str, String)> = plan
        .kept
        .iter()
        .map(|k| {
            let text = format!("keep         {} {} ({})", k.environment, k.id, reasons(k));
            (k.environment.as_str(), k.timestamp, k.id.as_str(), text)
        })
        .chain(plan.removed.iter().map(|r| {
            let mut text = format!(
                "would remove {} {} ({})",
                r.environment,
                r.id,
                ui::size(r.size_bytes)
            );
            if let Some(url) = &r.remote_url {
                text.push_str(&format!(" and its off-site copy {url}"));
            }
            (r.environment.as_str(), r.timestamp, r.id.as_str(), text)
        }))
        .collect();
    lines.sort_by(|a, b| {
        a.0.cmp(b.0)
            .then_with(|| crate::registry::newest_first((a.1, a.2), (b.1, b.2)))
    });
    for (.., text) in lines {
        ui.line(text);
    }
    if plan.removed.is_empty() {
        ui.line(format!(
            "Nothing to clean up: {} kept.",
            ui::count(plan.kept.len() as u64, "backup")
        ));
    } else {
        ui.line(format!(
            "Dry run: {} would be removed, {} freed; {} kept",
            ui::count(plan.removed.len() as u64, "backup"),
            ui::size(plan.freed_bytes()),
            plan.kept.len()
        ));
    }
}

/// What a cleanup of protected `env` would remove, shown before it is confirmed.
fn show_removals(ui: &ui::Ui, plan: &Selection, env: &str, now: chrono::DateTime<chrono::Utc>) {
    let removals: Vec<&Removal> = plan
        .removed
        .iter()
        .filter(|r| r.environment == env)
        .collect();
    let bytes: u64 = removals.iter().map(|r| r.size_bytes).sum();
    let kept = plan.kept.iter().filter(|k| k.environment == env).count();
    let n = removals.len();
    ui.note(format!(
        "cleanup of `{env}` will remove {n} backup{} ({}) and keep {kept}:",
        if n == 1 { "" } else { "s" },
        ui::size(bytes)
    ));
    for r in removals {
        ui.note(format!("  {}", r.describe(now)));
    }
}

/// A backup the plan would have removed, kept for `reason`.
fn kept_for(r: &Removal, reason: keep::Reason) -> Kept {
    Kept {
        id: r.id.clone(),
        environment: r.environment.clone(),
        timestamp: r.timestamp,
        size_bytes: r.size_bytes,
        status: r.status,
        reasons: vec![reason],
    }
}

fn reasons(k: &Kept) -> String {
    k.reasons
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn report(dry_run: bool, kept: &[Kept], removed: &[Removal], freed: u64) -> Report {
    Report::new()
        .with("dry_run", dry_run)
        .with("kept", kept)
        .with("removed", removed)
        .with("freed_bytes", freed)
}
