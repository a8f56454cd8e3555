//! `faber-db list [ENV]`: backups newest first, with totals, as [`crate::ops::list`] finds them.

use std::fmt::Write;

use clap::Args;
use serde_json::json;

use crate::Report;
use crate::error::Result;
use crate::ops::list;
use crate::registry::{EntryView, RemoteStatus};
use crate::retention;
use crate::session::Session;
use crate::ui;
use crate::ui::Ui;

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

pub fn run(session: &Session, ui: &Ui, mut args: ListArgs) -> Result<Report> {
    if args.env.is_none() {
        args.env = args.env_option.take();
    }
    if args.remote {
        return list_remote(ui, session, &args);
    }
    let text = session.store.read_text()?;
    let limit = (!args.all).then_some(DEFAULT_LIMIT);
    let listing = list::backups(session, text.as_deref(), args.env.as_deref(), limit)?;
    let (backups, total, total_bytes) = (&listing.backups, listing.total, listing.total_bytes);
    let shown = backups.len();
    let with_where = session.config.offsite.is_some() || backups.iter().any(|b| b.remote.is_some());
    print_table(
        ui,
        session,
        backups,
        &listing.here,
        args.env.is_none(),
        with_where,
    );
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
        let records = list::records(session, text.as_deref(), &listing)?;
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
    ui: &Ui,
    session: &Session,
    backups: &[EntryView<'_>],
    local: &[bool],
    with_env: bool,
    with_where: bool,
) {
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
fn list_remote(ui: &Ui, session: &Session, args: &ListArgs) -> Result<Report> {
    let (objects, base_url) = list::offsite_objects(session, args.env.as_deref())?;
    let mut rows = Vec::new();
    let mut unknown = 0;
    for o in &objects {
        let owner = o.backup.as_deref();
        if owner.is_none() {
            unknown += 1;
        }
        rows.push(json!({
            "name": o.name,
            "url": o.url,
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
        base_url,
        if unknown > 0 {
            format!("; {unknown} not in the registry")
        } else {
            String::new()
        }
    ));
    Ok(Report::new()
        .with("objects", rows)
        .with("unknown", unknown)
        .with("url", base_url))
}
