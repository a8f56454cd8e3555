//! `faber-db list [ENV]`: backups newest first, with totals, as [`crate::ops::list`] finds them.

use clap::Args;
use serde_json::json;

use crate::Report;
use crate::error::Result;
use crate::ops::list;
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
        return list_offsite(ui, session, &args);
    }
    let text = session.store.read_text()?;
    let limit = (!args.all).then_some(DEFAULT_LIMIT);
    let listing = list::backups(session, text.as_deref(), args.env.as_deref(), limit)?;
    let (backups, total, total_bytes) = (&listing.backups, listing.total, listing.total_bytes);
    let shown = backups.len();
    let with_where =
        session.config.offsite.is_some() || backups.iter().any(|b| b.offsite.is_some());
    ui::list::table(
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

/// `list --remote`: the bucket's objects below the prefix, each marked with the backup it
/// belongs to, or as unknown to the registry.
fn list_offsite(ui: &Ui, session: &Session, args: &ListArgs) -> Result<Report> {
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
