//! `faber-db list [ENV]`: backups newest first, with totals.

use std::fmt::Write;

use clap::Args;
use serde_json::json;

use crate::Report;
use crate::error::Result;
use crate::offsite;
use crate::registry::{self, BackupRecord, EntryView, RemoteStatus, Status};
use crate::retention;
use crate::session::Session;
use crate::ui;

/// How many backups `list` shows without `--all`.
const DEFAULT_LIMIT: usize = 20;

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this environment's backups
    pub env: Option<String>,

    /// The same as ENV, as `verify --env` spells it
    #[arg(long = "env", value_name = "ENV", conflicts_with = "env")]
    pub env_option: Option<String>,

    /// Show every backup, not only the newest 20
    #[arg(long)]
    pub all: bool,

    /// List the off-site bucket itself, marking objects the registry does not know
    #[arg(long)]
    pub remote: bool,
}

pub fn run(session: &Session, mut args: ListArgs) -> Result<Report> {
    if args.env.is_none() {
        args.env = args.env_option.take();
    }
    if args.remote {
        return list_remote(session, &args);
    }
    // Entries are read as borrowed views: a registry of 10,000 backups lists in a few
    // milliseconds, and only the entries shown are read whole (for --json).
    let text = session.store.read_text()?;
    let mut backups: Vec<EntryView<'_>> = session
        .store
        .views(text.as_deref())?
        .into_iter()
        .filter(|b| args.env.as_deref().is_none_or(|e| b.environment == e))
        .collect();
    if let Some(env) = &args.env {
        // An environment no longer in the config may still have backups: list them, but name a
        // typo as such.
        if !session.config.environments.contains_key(env) && backups.is_empty() {
            session.env(env)?;
        }
    }
    backups.sort_by(|a, b| registry::newest_first((a.timestamp, &a.id), (b.timestamp, &b.id)));
    let total = backups.len();
    let total_bytes: u64 = backups.iter().map(|b| b.size_bytes).sum();
    let shown = if args.all {
        total
    } else {
        total.min(DEFAULT_LIMIT)
    };
    backups.truncate(shown);
    // The registry says what was last verified; a file that is gone is shown as missing now,
    // unless its off-site copy is there to be fetched.
    let mut local = Vec::with_capacity(backups.len());
    let locator = session.store.locator();
    for b in &mut backups {
        // An entry whose path is refused names nothing here (`doctor` says more).
        let here = locator
            .locate(&b.id, &b.environment, &b.file)
            .is_ok_and(|l| l.data.exists());
        if b.status != Status::Missing && !here && !b.is_remote() {
            b.status = Status::Missing;
        }
        local.push(here);
    }
    let with_where = session.config.offsite.is_some() || backups.iter().any(|b| b.remote.is_some());
    print_table(session, &backups, &local, args.env.is_none(), with_where);
    let ui = &session.ctx.ui;
    if total == 0 {
        ui.line(match &args.env {
            Some(env) => format!("No backups of {env} yet. Take one with: faber-db backup {env}"),
            None => "No backups yet. Take one with: faber-db backup <env>".to_string(),
        });
    } else {
        if shown < total {
            ui.line(ui.dim(format!(
                "… {} older backups not shown (use --all)",
                total - shown
            )));
        }
        ui.line(format!(
            "{}, {} in total",
            ui::count(total as u64, "backup"),
            ui::size(total_bytes)
        ));
    }
    let mut report = Report::new();
    if ui.json {
        let entries = session.store.entries(text.as_deref())?;
        let records = backups
            .iter()
            .map(|b| {
                let mut record: BackupRecord = serde_json::from_str(entries[b.index])
                    .map_err(|e| session.store.malformed(e))?;
                record.status = b.status;
                Ok(record)
            })
            .collect::<Result<Vec<BackupRecord>>>()?;
        report = report.with("backups", records);
    }
    Ok(report.with(
        "totals",
        json!({"count": total, "shown": shown, "size_bytes": total_bytes}),
    ))
}

/// Where a backup lives: here, off-site, both, or nowhere.
fn location(here: bool, remote: Option<RemoteStatus>) -> &'static str {
    match (here, remote) {
        (true, Some(RemoteStatus::Uploaded)) => "both",
        (true, Some(RemoteStatus::Failed)) => "local (upload failed)",
        (true, None) => "local",
        (false, Some(RemoteStatus::Uploaded)) => "remote",
        (false, _) => "-",
    }
}

fn print_table(
    session: &Session,
    backups: &[EntryView<'_>],
    local: &[bool],
    with_env: bool,
    with_where: bool,
) {
    let ui = &session.ctx.ui;
    if backups.is_empty() {
        return;
    }
    let now = session.ctx.now;
    let rows: Vec<Vec<String>> = backups
        .iter()
        .zip(local)
        .map(|(b, &here)| {
            let migrations = b.migrations.as_ref().map_or_else(
                || "-".to_string(),
                |m| {
                    format!(
                        "{} / {}",
                        m.applied_count,
                        m.last_migration.as_deref().unwrap_or("-")
                    )
                },
            );
            let left = match b.expires_at {
                None => "forever".to_string(),
                Some(at) if at <= now => "expired".to_string(),
                Some(at) => retention::short(at - now),
            };
            let mut row = vec![b.id.to_string()];
            if with_env {
                row.push(b.environment.to_string());
            }
            row.extend([
                b.timestamp.format("%Y-%m-%d %H:%M").to_string(),
                ui::size(b.size_bytes),
                migrations,
                left,
                b.status.as_str().to_string(),
            ]);
            if with_where {
                row.push(location(here, b.remote.as_ref().map(|r| r.status)).to_string());
            }
            row
        })
        .collect();
    let mut header = vec!["ID"];
    if with_env {
        header.push("ENV");
    }
    header.extend(["CREATED (UTC)", "SIZE", "MIGRATIONS", "RETENTION", "STATUS"]);
    if with_where {
        header.push("WHERE");
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let fmt_row = |out: &mut String, cells: &[String]| {
        let start = out.len();
        for (c, w) in cells.iter().zip(&widths) {
            let _ = write!(out, "{c:<w$}  ");
        }
        out.truncate(out.trim_end().len().max(start));
    };
    let mut head = String::new();
    fmt_row(
        &mut head,
        &header.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
    );
    // One write for the whole table, not one per row.
    let mut table = ui.bold(head);
    for row in &rows {
        table.push('\n');
        fmt_row(&mut table, row);
    }
    ui.line(table);
}

/// `list --remote`: the bucket's objects below the prefix, each marked with the backup it
/// belongs to, or as unknown to the registry.
fn list_remote(session: &Session, args: &ListArgs) -> Result<Report> {
    let ui = &session.ctx.ui;
    let bucket = offsite::open(session)?;
    let reg = session.store.load()?;
    let mut known = std::collections::HashMap::new();
    for b in &reg.backups {
        for name in offsite::object_names(b) {
            known.insert(name, b.id.as_str());
        }
    }
    let objects: Vec<_> = bucket
        .list()?
        .into_iter()
        .filter(|o| {
            args.env
                .as_deref()
                .is_none_or(|e| o.name.split('/').next() == Some(e))
        })
        .collect();
    let mut rows = Vec::new();
    let mut unknown = 0;
    for o in &objects {
        let owner = known.get(&o.name).copied();
        if owner.is_none() {
            unknown += 1;
        }
        rows.push(json!({
            "name": o.name,
            "url": bucket.url(&o.name),
            "size_bytes": o.size_bytes,
            "last_modified": o.last_modified,
            "backup": owner,
        }));
        ui.line(format!(
            "{:<60}  {:>10}  {}",
            o.name,
            ui::size(o.size_bytes),
            owner.unwrap_or("not in the registry")
        ));
    }
    let total: u64 = objects.iter().map(|o| o.size_bytes).sum();
    ui.line(format!(
        "{} objects, {} in {}{}",
        objects.len(),
        ui::size(total),
        bucket.base_url(),
        if unknown > 0 {
            format!("; {unknown} not in the registry")
        } else {
            String::new()
        }
    ));
    Ok(Report::new()
        .with("objects", rows)
        .with("unknown", unknown)
        .with("url", bucket.base_url()))
}
