//! `faber-db list [ENV]`: backups newest first, with totals.

use clap::Args;
use serde_json::json;

use crate::Report;
use crate::error::Result;
use crate::registry::{BackupRecord, Status};
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
    let reg = session.store.load()?;
    if let Some(env) = &args.env {
        // An environment no longer in the config may still have backups: list them, but name a
        // typo as such.
        if !session.config.environments.contains_key(env) && reg.newest_first(Some(env)).is_empty()
        {
            session.env(env)?;
        }
    }
    let mut backups: Vec<BackupRecord> = reg
        .newest_first(args.env.as_deref())
        .into_iter()
        .cloned()
        .collect();
    // The registry says what was last verified; a file that is gone is shown as missing now.
    for b in &mut backups {
        if b.status != Status::Missing && !b.path(session.store.dir()).exists() {
            b.status = Status::Missing;
        }
    }
    let total = backups.len();
    let total_bytes: u64 = backups.iter().map(|b| b.size_bytes).sum();
    let shown = if args.all {
        total
    } else {
        total.min(DEFAULT_LIMIT)
    };
    print_table(session, &backups[..shown], args.env.is_none());
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
    Ok(Report::new().with("backups", &backups[..shown]).with(
        "totals",
        json!({"count": total, "shown": shown, "size_bytes": total_bytes}),
    ))
}

fn print_table(session: &Session, backups: &[BackupRecord], with_env: bool) {
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
            let mut row = vec![b.id.clone()];
            if with_env {
                row.push(b.environment.clone());
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
    let fmt_row = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    ui.line(ui.bold(fmt_row(header.iter().map(|h| h.to_string()).collect())));
    for row in rows {
        ui.line(fmt_row(row));
    }
}
