//! `faber-db list [ENV]`: backups newest first, with totals.

use std::fmt::Write;

use clap::Args;
use serde_json::json;

use crate::Report;
use crate::error::Result;
use crate::registry::{self, BackupRecord, EntryView, Status};
use crate::retention;
use crate::session::Session;
use crate::ui;

/// How many backups `list` shows without `--all`.
const DEFAULT_LIMIT: usize = 20;

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this environment's backups
    pub env: Option<String>,

    /// Show every backup, not only the newest 20
    #[arg(long)]
    pub all: bool,
}

pub fn run(session: &Session, args: ListArgs) -> Result<Report> {
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
    // The registry says what was last verified; a file that is gone is shown as missing now.
    for b in &mut backups {
        if b.status != Status::Missing && !b.path(session.store.dir()).exists() {
            b.status = Status::Missing;
        }
    }
    print_table(session, &backups, args.env.is_none());
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
            "{total} backups, {} in total",
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

fn print_table(session: &Session, backups: &[EntryView<'_>], with_env: bool) {
    let ui = &session.ctx.ui;
    if backups.is_empty() {
        return;
    }
    let now = session.ctx.now;
    let rows: Vec<Vec<String>> = backups
        .iter()
        .map(|b| {
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
            row
        })
        .collect();
    let mut header = vec!["ID"];
    if with_env {
        header.push("ENV");
    }
    header.extend(["CREATED (UTC)", "SIZE", "MIGRATIONS", "RETENTION", "STATUS"]);
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
