//! `faber-db diff ID [--env ENV]`: what changed since a backup — per-table row counts, tables
//! added and removed, migrations applied since — by comparing its manifest with the live
//! database.

use clap::Args;
use serde::Serialize;

use crate::Report;
use crate::cmd::verify;
use crate::error::Result;
use crate::ids;
use crate::ops::restore;
use crate::provider;
use crate::session::Session;

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Backup ID to compare with
    pub id: String,

    /// Environment whose live database to compare (default: the backup's)
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,
}

#[derive(Debug, Serialize)]
struct TableDiff {
    table: String,
    backup_rows: Option<u64>,
    live_rows: Option<u64>,
    /// Live minus backup, when both are known.
    delta: Option<i64>,
    /// `added`, `removed`, `changed` or `same`.
    change: &'static str,
    /// Either count is the planner's estimate.
    estimated: bool,
}

#[expect(clippy::too_many_lines, reason = "issue 19: to split along its steps")]
pub fn run(session: &Session, args: DiffArgs) -> Result<Report> {
    let ui = &session.ctx.ui;
    ids::validate_id(&args.id)?;
    let reg = session.store.load()?;
    let record = verify::find(&reg, &args.id)?.clone();
    let env = session.env(args.env.as_deref().unwrap_or(&record.environment))?;
    let (url, db) = session.provider(env)?;
    restore::check_kind(env, db.as_ref(), &record)?;
    db.check_connection()?;
    let live = db.inspect(env.migrations_table.as_deref(), true)?;
    // Tables as the manifest names them, also when an earlier faber-db wrote it.
    let live_tables = provider::as_named_in(record.provider, &record.tables, &live.tables);

    let mut names: Vec<&String> = record.tables.keys().chain(live_tables.keys()).collect();
    names.sort();
    names.dedup();
    let tables: Vec<TableDiff> = names
        .into_iter()
        .map(|name| {
            let before = record.tables.get(name);
            let now = live_tables.get(name);
            let delta = match (before, now) {
                (Some(b), Some(n)) => Some(n.rows.cast_signed() - b.rows.cast_signed()),
                _ => None,
            };
            TableDiff {
                table: name.clone(),
                backup_rows: before.map(|t| t.rows),
                live_rows: now.map(|t| t.rows),
                delta,
                change: match (before, now, delta) {
                    (None, Some(_), _) => "added",
                    (Some(_), None, _) => "removed",
                    (_, _, Some(0)) => "same",
                    _ => "changed",
                },
                estimated: before.is_some_and(|t| t.estimated) || now.is_some_and(|t| t.estimated),
            }
        })
        .collect();
    let backup_list = record
        .migrations
        .as_ref()
        .map(|m| m.migrations_list.clone())
        .unwrap_or_default();
    let live_list = live
        .migrations
        .as_ref()
        .map(|m| m.migrations_list.clone())
        .unwrap_or_default();
    let applied_since: Vec<&String> = live_list
        .iter()
        .filter(|m| !backup_list.contains(m))
        .collect();
    let missing: Vec<&String> = backup_list
        .iter()
        .filter(|m| !live_list.contains(m))
        .collect();

    ui.line(format!(
        "{} ({}) now, against backup {} of {}",
        ui.bold(&env.name),
        url.redacted(),
        ui.bold(&record.id),
        record.timestamp.format("%Y-%m-%d %H:%M UTC")
    ));
    let width = tables
        .iter()
        .map(|t| t.table.len())
        .max()
        .unwrap_or(5)
        .max(5);
    ui.line(format!(
        "  {:<width$}  {:>10}  {:>10}  {:>8}",
        "TABLE", "BACKUP", "NOW", "DELTA"
    ));
    let count = |n: Option<u64>, est: bool| match n {
        Some(n) if est => format!("~{n}"),
        Some(n) => n.to_string(),
        None => "-".into(),
    };
    for t in &tables {
        let delta = match (t.change, t.delta) {
            ("added", _) => "added".to_string(),
            ("removed", _) => "removed".to_string(),
            (_, Some(d)) if d > 0 => format!("+{d}"),
            (_, Some(d)) => d.to_string(),
            _ => String::new(),
        };
        ui.line(format!(
            "  {:<width$}  {:>10}  {:>10}  {:>8}",
            t.table,
            count(t.backup_rows, t.estimated),
            count(t.live_rows, t.estimated),
            delta
        ));
    }
    if !applied_since.is_empty() {
        ui.line(format!(
            "Migrations applied since: {}",
            applied_since
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !missing.is_empty() {
        ui.line(format!(
            "Migrations in the backup but not applied now: {}",
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if applied_since.is_empty() && missing.is_empty() {
        ui.line("Migrations: the same as in the backup");
    }
    Ok(Report::new()
        .with("backup", &record.id)
        .with("environment", &env.name)
        .with("tables", &tables)
        .with("migrations_applied_since", &applied_since)
        .with("migrations_missing", &missing)
        .with("migrations_backup", &record.migrations)
        .with("migrations_live", &live.migrations))
}
