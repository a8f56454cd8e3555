//! `faber-db cleanup [ENV] --expired | --older-than DUR | --keep-last N [--dry-run]`: removes
//! backups, never the newest valid one of an environment and never one kept forever.

use std::collections::{BTreeMap, BTreeSet};

use clap::Args;
use serde::Serialize;

use crate::Report;
use crate::cli::DryRun;
use crate::cmd;
use crate::confirm::{self, Ask};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::registry::{BackupRecord, RegistryFile, Status};
use crate::retention;
use crate::session::Session;
use crate::ui;

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("rule").required(true).args(["expired", "older_than", "keep_last"]))]
pub struct CleanupArgs {
    /// Only this environment's backups
    pub env: Option<String>,

    /// Remove backups past their retention
    #[arg(long)]
    pub expired: bool,

    /// Remove backups older than this (30d, 12h, 2weeks)
    #[arg(long, value_name = "DUR", value_parser = retention::parse_duration)]
    pub older_than: Option<std::time::Duration>,

    /// Keep the newest N backups of each environment, remove the rest
    #[arg(long, value_name = "N")]
    pub keep_last: Option<usize>,

    #[command(flatten)]
    pub dry_run: DryRun,
}

#[derive(Debug, Clone, Copy)]
enum Rule {
    Expired,
    OlderThan(chrono::Duration),
    KeepLast(usize),
}

#[derive(Debug, Clone, Serialize)]
struct Removal {
    id: String,
    environment: String,
    size_bytes: u64,
    status: Status,
}

pub fn run(session: &Session, args: CleanupArgs) -> Result<Report> {
    let ui = &session.ctx.ui;
    let rule = if args.expired {
        Rule::Expired
    } else if let Some(d) = args.older_than {
        Rule::OlderThan(
            chrono::Duration::from_std(d).map_err(|_| Error::config("--older-than is too long"))?,
        )
    } else {
        Rule::KeepLast(args.keep_last.expect("clap requires one rule"))
    };
    if let Some(env) = &args.env {
        session.env(env)?;
    }
    let reg = session.store.load()?;
    let planned = select(&reg, args.env.as_deref(), rule, session.ctx.now);
    let dry = args.dry_run.dry_run;

    if planned.is_empty() {
        ui.line("Nothing to clean up.");
        return Ok(Report::new()
            .with("dry_run", dry)
            .with("removed", Vec::<Removal>::new())
            .with("freed_bytes", 0));
    }
    if dry {
        for r in &planned {
            ui.line(format!(
                "would remove {} {} ({})",
                r.environment,
                r.id,
                ui::size(r.size_bytes)
            ));
        }
        let freed: u64 = planned.iter().map(|r| r.size_bytes).sum();
        ui.line(format!(
            "Dry run: {} backups, {} would be freed",
            planned.len(),
            ui::size(freed)
        ));
        return Ok(Report::new()
            .with("dry_run", true)
            .with("removed", &planned)
            .with("freed_bytes", freed));
    }

    // Protected environments are confirmed once each, by name, before anything is removed.
    let envs: BTreeSet<&str> = planned.iter().map(|r| r.environment.as_str()).collect();
    for name in envs {
        if let Some(env) = session.config.environments.get(name) {
            confirm::confirm(env, "cleanup", Ask::TypeName, session.ctx.yes)?;
        }
    }

    // The selection is made again under the lock, so a backup registered meanwhile is judged too.
    let dir = session.store.dir().to_path_buf();
    let removed: Vec<BackupRecord> = session.store.update(|reg| {
        let chosen: BTreeSet<String> = select(reg, args.env.as_deref(), rule, session.ctx.now)
            .into_iter()
            .map(|r| r.id)
            .collect();
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut reg.backups)
            .into_iter()
            .partition(|b| chosen.contains(&b.id));
        reg.backups = kept;
        Ok(gone)
    })?;

    // Files go after the entries, so the registry never names a file that is gone.
    let mut failures = Vec::new();
    let mut freed = 0;
    let mut done = Vec::new();
    for b in &removed {
        let mut ok = true;
        for path in [b.path(&dir), b.manifest_path(&dir)] {
            if let Err(e) = fsutil::remove_backup_data(&path) {
                ok = false;
                failures.push(format!("{}: {e}", session.ctx.show(&path)));
            }
        }
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
        }
        cmd::log_event(
            session,
            "cleanup",
            Some(&b.environment),
            Some(&b.id),
            ok,
            None,
        );
        done.push(removal(b));
    }
    ui.line(format!(
        "{} backups removed, {} freed",
        removed.len(),
        ui::size(freed)
    ));
    let mut report = Report::new()
        .with("dry_run", false)
        .with("removed", &done)
        .with("freed_bytes", freed);
    if !failures.is_empty() {
        report.failure = Some(
            Error::config(format!(
                "some files could not be removed: {}",
                failures.join("; ")
            ))
            .with_hint("remove them by hand; they are no longer in the registry"),
        );
    }
    Ok(report)
}

fn removal(b: &BackupRecord) -> Removal {
    Removal {
        id: b.id.clone(),
        environment: b.environment.clone(),
        size_bytes: b.size_bytes,
        status: b.status,
    }
}

/// The backups `rule` removes. Never the newest valid backup of an environment, never a backup
/// kept forever.
fn select(
    reg: &RegistryFile,
    env: Option<&str>,
    rule: Rule,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Removal> {
    let mut by_env: BTreeMap<&str, Vec<&BackupRecord>> = BTreeMap::new();
    for b in reg.newest_first(env) {
        by_env.entry(b.environment.as_str()).or_default().push(b);
    }
    let mut out = Vec::new();
    for (name, backups) in by_env {
        // The floor: the newest valid backup, and the one `restore --from latest` would pick
        // (they differ when the newest is a pre-restore safety backup).
        let floor =
            [reg.newest_valid(name), reg.newest_restorable(name)].map(|b| b.map(|b| b.id.as_str()));
        for (position, b) in backups.iter().enumerate() {
            let wanted = match rule {
                Rule::Expired => b.is_expired(now),
                Rule::OlderThan(age) => now
                    .checked_sub_signed(age)
                    .is_some_and(|cut| b.timestamp < cut),
                Rule::KeepLast(n) => position >= n,
            };
            if wanted && !b.is_forever() && !floor.contains(&Some(b.id.as_str())) {
                out.push(removal(b));
            }
        }
    }
    out
}
