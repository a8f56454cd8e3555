//! Renderings more than one command prints.

use crate::preflight::Preflight;
use crate::ui::Ui;

/// Prints the checks, one `✓`/`✗` line each, under `Pre-flight:`.
pub fn preflight(ui: &Ui, preflight: &Preflight) {
    ui.line("Pre-flight:");
    for c in &preflight.checks {
        let line = format!("{:<16} {}", c.name, c.detail);
        if c.ok {
            ui.ok(format!(" {line}"));
        } else {
            ui.fail(format!(" {line}"));
        }
    }
}

/// One `✓` line naming the checks that passed (a run that goes ahead says no more).
pub fn preflight_passed(ui: &Ui, preflight: &Preflight) {
    let names: Vec<&str> = preflight.checks.iter().map(|c| c.name).collect();
    ui.ok(format!("Pre-flight passed: {}", names.join(", ")));
    for c in &preflight.checks {
        if let Some(w) = &c.warning {
            ui.warn(format!("{}: {w}", c.name));
        }
    }
}
