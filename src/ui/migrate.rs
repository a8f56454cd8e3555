//! How a migrate's outlook (the migration state, the pending migrations with their destructive
//! statements, the pre-migration backup) and its steps look.

use crate::config::Environment;
use crate::confirm::DESTRUCTIVE_PHRASE;
use crate::migrations::MigrationState;
use crate::ops::migrate::{Outlook, Prepared, Steps};
use crate::pending;
use crate::provider::{DatabaseUrl, Provider};
use crate::session::Session;
use crate::ui::{self, To, Ui};

/// The database connected to, the migrations applied, the pending ones and their destructive
/// statements, and the warnings of `prepared`; what is shown goes where `to` says.
pub fn outlook(
    session: &Session,
    ui: &Ui,
    env: &Environment,
    url: &DatabaseUrl,
    db: &dyn Provider,
    prepared: &Prepared,
    to: To,
) {
    let outlook = &prepared.outlook;
    match &outlook.version {
        Some(version) => ui.ok(format!("Connected to {} ({version})", url.redacted())),
        None => ui.warn(format!(
            "database {} does not exist yet: no backup, every migration is pending",
            db.database_name()
        )),
    }
    if prepared.rules_unchecked {
        ui.warn(
            "the pending migrations cannot be read, so safety.destructive_operations cannot be checked against them",
        );
    }
    state(ui, "Applied", outlook.before.as_ref(), to);
    match &outlook.dir {
        None => ui.warn(format!(
            "no migrations directory (set migrations.directory, or use one of {}): pending migrations cannot be listed",
            pending::DEFAULT_DIRS.join(", ")
        )),
        Some(d) if !outlook.listable => ui.warn(format!(
            "no SQL migration files faber-db can read in {}: pending migrations cannot be listed, the command runs",
            session.ctx.show(d)
        )),
        Some(d) if outlook.todo.is_empty() => ui.ok(format!(
            "No pending migrations in {}",
            session.ctx.show(d)
        )),
        Some(d) => {
            ui.say(
                to,
                format!("{} pending in {}:", outlook.todo.len(), session.ctx.show(d)),
            );
            for p in &outlook.todo {
                ui.say(to, format!("  {}", p.name));
                for f in &p.destructive {
                    ui.warn(format!(
                        "{} line {}: {} — {}{}",
                        p.file,
                        f.line,
                        f.what,
                        f.statement,
                        match &f.blocked {
                            Some(why) => format!(" (not allowed: {why})"),
                            None => String::new(),
                        }
                    ));
                }
            }
        }
    }
    if let Some(why) = &prepared.no_rehearsal {
        ui.warn(format!("the migration is not rehearsed: {why}"));
    }
    if prepared.backup_recommended {
        ui.warn(format!(
            "no pre-migration backup is taken, and safety.backup_enforcement.{} recommends one",
            env.name
        ));
    }
}

pub fn state(ui: &Ui, what: &str, state: Option<&MigrationState>, to: To) {
    match state {
        Some(m) => ui.say(
            to,
            format!(
                "{what}: {} migrations ({}), last {}",
                m.applied_count,
                m.tool,
                m.last_migration.as_deref().unwrap_or("-")
            ),
        ),
        None => ui.say(to, format!("{what}: no migration table")),
    }
}

/// Prints the [`Steps`] of a migration under `Plan: migrate ENV`, where `to` says.
pub fn steps(ui: &Ui, env: &Environment, steps: &Steps, to: To) {
    ui.say(to, format!("Plan: migrate {}", ui.bold(&env.name)));
    let backup = match (&steps.backup, &steps.no_backup) {
        (Some(e), _) => format!(
            "a pre-migration backup first: about {} in about {} ({}){}",
            ui::size(e.size_bytes),
            ui::duration_ms(e.duration_ms),
            e.describe(),
            match &steps.backup_required_by {
                Some(by) => format!("; required by {by}"),
                None => String::new(),
            }
        ),
        (None, Some(why)) => why.clone(),
        (None, None) => "none".to_string(),
    };
    ui.say(to, format!("  {} {backup}", ui.bold("Backup:    ")));
    ui.say(
        to,
        format!("  {} {}", ui.bold("Command:   "), steps.command),
    );
    if steps.rehearse {
        ui.say(
            to,
            format!(
                "  {} first, on a scratch copy of the database made from that backup; the real run follows only if it passes",
                ui.bold("Rehearse:  ")
            ),
        );
    }
    ui.say(
        to,
        format!(
            "  {} {}",
            ui.bold("On failure:"),
            if steps.restore_on_failure {
                "the pre-migration backup is restored (rollback_on_failure)"
            } else {
                "the database is left as the command leaves it"
            }
        ),
    );
    let confirm = match (steps.phrase, steps.confirmation) {
        (true, true) => format!(
            "yes: the environment is protected; {DESTRUCTIVE_PHRASE} is asked for, then its name"
        ),
        (true, false) => {
            format!("yes: the environment is protected; {DESTRUCTIVE_PHRASE} is asked for")
        }
        (false, true) => "yes: the environment is protected; its name is asked for".to_string(),
        (false, false) => "no".to_string(),
    };
    ui.say(to, format!("  {} {confirm}", ui.bold("Confirm:   ")));
}

/// What is pending, in the words of the hook's answer on a protected environment: the applied
/// state, each pending migration and its destructive statements.
pub fn outlook_text(plan: &Outlook) -> String {
    let mut out = String::new();
    if !plan.exists {
        out.push_str("Its database does not exist yet: every migration is pending.\n");
    }
    if let Some(m) = &plan.before {
        out.push_str(&format!(
            "Applied: {} migrations ({}), last {}.\n",
            m.applied_count,
            m.tool,
            m.last_migration.as_deref().unwrap_or("-")
        ));
    }
    if !plan.listable {
        out.push_str(
            "Pending migrations cannot be listed (no SQL migration files faber-db can read).\n",
        );
    } else if plan.todo.is_empty() {
        out.push_str("No pending migrations in the migration files.\n");
    } else {
        out.push_str(&format!("Pending: {}\n", plan.todo.len()));
        for p in &plan.todo {
            out.push_str(&format!("  {}\n", p.name));
            for d in &p.destructive {
                out.push_str(&format!(
                    "    DESTRUCTIVE {} ({} line {}): {}\n",
                    d.what, p.file, d.line, d.statement
                ));
            }
        }
    }
    out
}
