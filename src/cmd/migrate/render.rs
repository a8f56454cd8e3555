//! What `faber-db migrate` shows and reports: the migration state and the pending migrations,
//! the steps of a run, the hints that name the command that works after a refused pre-flight,
//! and what the run did.

use super::{DESTRUCTIVE_PHRASE, MigrateArgs};
use crate::Report;
use crate::cmd;
use crate::config::Environment;
use crate::migrations::MigrationState;
use crate::ops::migrate::{Outcome, Prepared, Ran, Refused, Rollback, Steps};
use crate::pending;
use crate::provider::{DatabaseUrl, Provider};
use crate::session::Session;
use crate::ui::{self, To, Ui};

/// The database connected to, the migrations applied, the pending ones and their destructive
/// statements, and the warnings of `prepared`; what is shown goes where `to` says.
pub(super) fn outlook(
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
    show_state(ui, "Applied", outlook.before.as_ref(), to);
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
    if prepared.backup_recommended {
        ui.warn(format!(
            "no pre-migration backup is taken, and safety.backup_enforcement.{} recommends one",
            env.name
        ));
    }
}

fn show_state(ui: &Ui, what: &str, state: Option<&MigrationState>, to: To) {
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
pub(super) fn steps(ui: &Ui, env: &Environment, steps: &Steps, to: To) {
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

/// The failure of a refused pre-flight, with a hint that names the command that works: this
/// one with `--terminate-connections` when other sessions would stop the automatic restore, a
/// cleanup when there is no room.
pub(super) fn refused(
    session: &Session,
    env: &Environment,
    args: &MigrateArgs,
    prepared: &Prepared,
    refused: Refused,
) -> crate::error::Error {
    let Refused { check, error: e } = refused;
    match check {
        "sessions" => {
            let mut again = vec!["migrate", env.name.as_str()];
            if args.no_backup {
                again.push("--no-backup");
            }
            if args.allow_destructive {
                again.push("--allow-destructive");
            }
            // Without it, the command named would be refused after the unfinished migrate.
            if prepared.resumed.is_some() && !prepared.nothing_to_do {
                again.push("--resume");
            }
            again.push("--terminate-connections");
            e.with_hint(format!(
                "let faber-db end them if the migration fails: `{}`, or set \
                 terminate_connections_on_rollback = true in [environments.{}] (the default) — \
                 or stop the application first; nothing was migrated",
                cmd::command_line(session, &again),
                env.name
            ))
        }
        "space" => e.with_hint(format!(
            "free some space there, or remove expired backups with `{}`; nothing was migrated",
            cmd::command_line(session, &["cleanup", &env.name, "--expired"])
        )),
        _ => e,
    }
}

/// The report of a run that went ahead: the backup to go back to, whether the migration
/// worked, and when it did not, whether the backup was restored and what to do.
pub(super) fn ran(
    session: &Session,
    ui: &Ui,
    env: &Environment,
    report: Report,
    ran: Ran,
) -> Report {
    // The entry itself, as `backup` and `rollback` report theirs.
    let mut report = report.with("backup", ran.backup.as_ref());
    let failed = match ran.outcome {
        Outcome::Migrated { after } => {
            ui.ok("Migration finished");
            show_state(ui, "Applied", after.as_ref(), To::Output);
            return report
                .with("migrated", true)
                .with("migrations_after", &after);
        }
        Outcome::Failed(failed) => failed,
    };
    report = report
        .with("migrated", false)
        .with("interrupted", failed.interrupted)
        .with("output_tail", &failed.output_tail);
    let mut error = failed.error;
    report = match failed.rollback {
        Rollback::NotTried => report.with("rolled_back", false),
        Rollback::Restored { matches, after } => {
            show_state(ui, "Restored to", after.as_ref(), To::Output);
            report
                .with("rolled_back", true)
                .with("rollback_matches", matches)
                .with("migrations_after", &after)
        }
        Rollback::Failed { backup, busy } => {
            let mut by_hand = vec!["rollback", env.name.as_str(), "--to", backup.as_str()];
            if busy {
                by_hand.push("--terminate-connections");
            }
            error = error.with_hint(format!(
                "the database may be half-migrated; restore it by hand: {}",
                cmd::command_line(session, &by_hand)
            ));
            report.with("rolled_back", false)
        }
    };
    report.failure = Some(error);
    report
}
