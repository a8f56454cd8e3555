//! How `list` shows the backups: one table, one write.

use std::fmt::Write;

use crate::registry::{EntryView, OffsiteStatus};
use crate::retention;
use crate::session::Session;
use crate::ui::{self, Ui};

/// Where a backup lives: here, off-site, both, or nowhere.
fn location(here: bool, offsite: Option<OffsiteStatus>) -> &'static str {
    match (here, offsite) {
        (true, Some(OffsiteStatus::Uploaded)) => "both",
        (true, Some(OffsiteStatus::Failed)) => "local (upload failed)",
        (true, None) => "local",
        (false, Some(OffsiteStatus::Uploaded)) => "remote",
        (false, _) => "-",
    }
}

pub fn table(
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
                b.proven().map_or_else(
                    || "-".to_string(),
                    |at| format!("{} ago", retention::short(now - at)),
                ),
            ]);
            if with_where {
                row.push(location(here, b.offsite.as_ref().map(|r| r.status)).to_string());
            }
            row
        })
        .collect();
    let mut header = vec!["ID"];
    if with_env {
        header.push("ENV");
    }
    header.extend([
        "CREATED (UTC)",
        "SIZE",
        "MIGRATIONS",
        "RETENTION",
        "STATUS",
        "PROVEN",
    ]);
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
