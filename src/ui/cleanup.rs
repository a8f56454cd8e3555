//! How `cleanup` shows what it keeps and what it removes.

use crate::keep::{Removal, Selection};
use crate::ops::cleanup::reasons;
use crate::ui::{self, Ui};

/// The dry run: every backup considered, newest first within each environment, kept with its
/// reasons or to be removed with its size.
pub fn selection(ui: &Ui, plan: &Selection) {
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
            if let Some(url) = &r.offsite_url {
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
            ui::count(len(&plan.kept), "backup")
        ));
    } else {
        ui.line(format!(
            "Dry run: {} would be removed, {} freed; {} kept",
            ui::count(len(&plan.removed), "backup"),
            ui::size(plan.freed_bytes()),
            plan.kept.len()
        ));
    }
}

/// What a cleanup of protected `env` would remove, shown before it is confirmed.
pub fn removals(ui: &Ui, plan: &Selection, env: &str, now: chrono::DateTime<chrono::Utc>) {
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

/// How many of `items` there are, to count them.
pub fn len<T>(items: &[T]) -> u64 {
    u64::try_from(items.len()).unwrap_or(u64::MAX)
}
