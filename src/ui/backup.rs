//! How a backup's preview (`backup --dry-run`, a protected backup's question) and the backup it
//! took look.

use std::path::PathBuf;

use crate::ops::backup::Preview;
use crate::pipeline::Compression;
use crate::registry::{BackupRecord, OffsiteCopy};
use crate::session::Session;
use crate::ui::{self, Ui};

/// Prints a backup's plan.
pub fn plan(ui: &Ui, session: &Session, plan: &Preview) {
    ui.line(format!(
        "Plan: back up {} of {}",
        ui.bold(&plan.database),
        ui.bold(&plan.environment)
    ));
    ui.line(format!(
        "  {} {}",
        ui.bold("Steps:     "),
        plan.steps.join(" → ")
    ));
    let what = match plan.compression {
        Compression::None => plan.format.to_string(),
        c => format!("{}, {c}", plan.format),
    };
    ui.line(format!(
        "  {} {} now; {what}{}",
        ui.bold("Database:  "),
        ui::size(plan.database_size_bytes),
        if plan.encrypted { ", encrypted" } else { "" }
    ));
    ui.line(format!(
        "  {} about {} in about {} ({})",
        ui.bold("Estimate:  "),
        ui::size(plan.estimate.size_bytes),
        ui::duration_ms(plan.estimate.duration_ms),
        plan.estimate.describe()
    ));
    ui.line(format!(
        "  {} {} ({} free, about {} needed{})",
        ui.bold("Location:  "),
        session.ctx.show(&plan.destination),
        ui::size(plan.free_bytes),
        ui::size(plan.space_needed_bytes),
        if plan.enough_space {
            ""
        } else {
            ": not enough"
        }
    ));
    if let Some(tools) = &plan.tools {
        ui.line(format!("  {} {tools}", ui.bold("Tools:     ")));
    }
    if !plan.exclude_table_data.is_empty() {
        let patterns = ui::printable(&plan.exclude_table_data.join(", ")).into_owned();
        ui.line(format!(
            "  {} the rows of {patterns} (schema kept)",
            ui.bold("Leave out: ")
        ));
    }
    ui.line(format!(
        "  {} {}",
        ui.bold("Confirm:   "),
        if plan.confirmation {
            format!("yes: `{}` is protected", plan.environment)
        } else {
            "no".to_string()
        }
    ));
}

pub fn summary(ui: &Ui, session: &Session, r: &BackupRecord, estimate: &crate::plan::Estimate) {
    let path: PathBuf = session
        .store
        .locate(r)
        .map_or_else(|_| PathBuf::from(&r.file), |l| l.data);
    ui.line("");
    ui.line(format!("  {} {}", ui.bold("Backup:    "), r.id));
    let size = if r.files.is_empty() {
        format!(
            "{} ({} before compression)",
            ui::size(r.size_bytes),
            ui::size(r.raw_size_bytes)
        )
    } else {
        format!(
            "{} in {} files ({} per file)",
            ui::size(r.size_bytes),
            r.files.len(),
            r.compression
        )
    };
    ui.line(format!("  {} {size}", ui.bold("Size:      ")));
    ui.line(format!(
        "  {} {} in {}; estimated {} in {} ({})",
        ui.bold("Actual:    "),
        ui::size(r.size_bytes),
        ui::duration_ms(r.duration_ms),
        ui::size(estimate.size_bytes),
        ui::duration_ms(estimate.duration_ms),
        estimate.describe()
    ));
    ui.line(format!(
        "  {} {}",
        ui.bold("Location:  "),
        session.ctx.show(&path)
    ));
    let tables: u64 = r.tables.values().map(|t| t.rows).sum();
    let about = if r.tables.values().any(|t| t.estimated) {
        "about "
    } else {
        ""
    };
    let excluded = r.tables.values().filter(|t| t.data_excluded).count();
    let excluded = if excluded > 0 {
        format!(" (rows of {excluded} left out)")
    } else {
        String::new()
    };
    ui.line(format!(
        "  {} {}, {about}{}{excluded}",
        ui.bold("Contents:  "),
        ui::count(r.tables.len() as u64, "table"),
        ui::count(tables, "row")
    ));
    if let Some(m) = &r.migrations {
        ui.line(format!(
            "  {} {} applied ({}), last {}",
            ui.bold("Migrations:"),
            m.applied_count,
            m.tool,
            m.last_migration.as_deref().unwrap_or("-")
        ));
    }
    let expiry = r.expires_at.map_or_else(
        || "kept forever".to_string(),
        |t| format!("until {}", t.format("%Y-%m-%d %H:%M UTC")),
    );
    ui.line(format!("  {} {expiry}", ui.bold("Retention: ")));
    match &r.offsite {
        Some(OffsiteCopy::Uploaded { url, .. }) => {
            ui.line(format!("  {} {url}", ui.bold("Off-site:  ")));
        }
        Some(OffsiteCopy::Failed { .. }) => {
            ui.line(format!("  {} upload failed", ui.bold("Off-site:  ")));
        }
        None => {}
    }
    ui.line("");
    ui.line(format!(
        "Restore with: faber-db restore {} --from {}",
        r.environment, r.id
    ));
}
