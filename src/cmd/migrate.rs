//! `faber-db migrate ENV`: the pre-migrate hook. The arguments made into a request, the pending
//! migrations and their destructive statements shown, the pre-flight, the protected
//! environment's phrase and name asked for, and the engine ([`crate::ops::migrate`]) called —
//! the `pre-migration` backup, the rehearsal on a scratch copy made from it (when asked: the
//! name is then asked for after the rehearsal's report), the environment's `migrate_command`,
//! and on failure that backup restored (exit 9) — and what it did reported (human or JSON).

mod rehearse;
mod render;

use clap::Args;

use crate::Report;
use crate::approval::{self, Change};
use crate::cmd::{self, cli::DryRun, cli::Wait};
use crate::config::Environment;
use crate::confirm::{self, Ask};
use crate::error::{Error, Result};
use crate::hints;
use crate::ops::migrate::{self, Prepared, Request, Unfinished};
use crate::registry::BackupRecord;
use crate::session::Session;
use crate::ui::{self, To, Ui};

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Environment to migrate [default: FABER_ENV, ENV_MODE or
    /// default_environment]
    pub env: Option<String>,

    /// Skip the pre-migration backup even when backup_before_migrate is set
    #[arg(long)]
    pub no_backup: bool,

    /// Run destructive migrations on a protected environment without typing the phrase
    #[arg(long)]
    pub allow_destructive: bool,

    /// If the migration fails, end other sessions on the database so that the pre-migration
    /// backup can be restored (PostgreSQL, MySQL)
    #[arg(long)]
    pub terminate_connections: bool,

    /// Rehearse first: run the migration against a scratch copy of the database, made from the
    /// pre-migration backup, and run it for real only if it passes (the default on protected
    /// environments; `rehearse` in the config). With --dry-run, only rehearse
    #[arg(long, conflicts_with_all = ["no_rehearse", "no_backup"])]
    pub rehearse: bool,

    /// Do not rehearse, even where the config says to
    #[arg(long)]
    pub no_rehearse: bool,

    /// Go on after a migrate that did not finish (killed, or failed with nothing restored): run
    /// the command on the database as that run left it, with that run's pre-migration backup
    /// as the one to go back to (no new backup of the half-migrated database is taken)
    #[arg(long)]
    pub resume: bool,

    #[command(flatten)]
    pub wait: Wait,

    #[command(flatten)]
    pub dry_run: DryRun,
}

pub fn run(session: &Session, ui: &Ui, args: MigrateArgs) -> Result<Report> {
    let env = session.env(crate::cmd::cli::env_name(&args.env))?;
    // Held until the run ends (its processes hold it too, through `request.lock_fd`).
    let (request, _lock) = request(session, env, &args)?;
    // A dry run reports the refusal the run would meet, after its plan.
    let (resumed, refusal) = unfinished(session, ui, env, &args)?;
    let (url, db) = session.provider(env)?;
    let mut prepared = migrate::prepare(session, env, db.as_ref(), &request, resumed)?;
    // A run that will ask shows its whole plan where the question is, just before it.
    let asking = !request.dry_run
        && prepared.command.is_some()
        && prepared.refused.is_none()
        && !prepared.nothing_to_do
        && confirm::will_ask(
            env,
            session.ctx.yes && (prepared.destructive == 0 || args.allow_destructive),
        );
    let to = if asking { To::Prompt } else { To::Output };
    ui::migrate::outlook(session, ui, env, &url, db.as_ref(), &prepared, to);
    let mut report = Report::new()
        .with("environment", &env.name)
        .with("pending", &prepared.outlook.todo)
        .with("migrations_before", &prepared.outlook.before);
    // Refused by the config: before any backup, question or command, with or without --yes,
    // --allow-destructive or --dry-run.
    if let Some(e) = prepared.refused.take() {
        report.failure = Some(e);
        return Ok(if request.dry_run {
            report.with("dry_run", true)
        } else {
            report.with("migrated", false)
        });
    }
    // Nothing to migrate: nothing runs, so nothing needs to be possible.
    let secrets = session.url(env).map(|u| u.secrets()).unwrap_or_default();
    let (preflight, refused) =
        migrate::preflight(session, env, db.as_ref(), &request, &prepared, &secrets)?;
    let failure =
        refused.map(|r| hints::migrate::refused(session, env, &again(env, &args, &prepared), r));
    report = report.with("preflight", &preflight);
    let steps = || migrate::steps(session, env, db.as_ref(), &request, &prepared);
    if request.dry_run {
        // The plan is shown all the same (when there is a command to plan); a dry run fails as
        // the run would, so that a pipeline's dry run catches it.
        let steps = match &prepared.command {
            Some(_) => Some(steps()?),
            None => None,
        };
        if let Some(steps) = &steps {
            ui::migrate::steps(ui, env, steps, to);
        }
        ui::restore::preflight(ui, &preflight);
        report.failure = refusal.or(failure);
        // A dry run rehearses only when asked to (`--rehearse`): the config's `rehearse` is
        // about runs, and a plain dry run stays a plan that takes nothing.
        let rehearse = prepared.rehearse && request.rehearse == Some(true);
        if rehearse && report.failure.is_none() && prepared.command.is_some() {
            report = rehearse::first(session, ui, env, &request, &prepared, None, To::Output)
                .unwrap_or_else(|failed| *failed)
                .into_report(report);
            ui.line("Dry run: the migration was only rehearsed; production was not touched.");
        } else {
            ui.line("Dry run: nothing was changed.");
        }
        return Ok(report.with("dry_run", true).with("plan", &steps));
    }
    if let Some(e) = failure {
        ui::restore::preflight(ui, &preflight);
        report.failure = Some(e);
        return Ok(report.with("migrated", false));
    }
    if prepared.command.is_none() {
        return Err(migrate::no_command(env));
    }
    if prepared.nothing_to_do {
        return Ok(report.with("migrated", false));
    }
    ui::restore::preflight_passed(ui, &preflight);
    if asking {
        ui::migrate::steps(ui, env, &steps()?, to);
    }
    let change = Change {
        action: "migrate",
        scope: Some(&env.name),
        backup: None,
    };
    if prepared.destructive > 0 {
        approval::gate(session, env, &change)?;
        confirm::confirm_phrase(
            env,
            &format!("{} destructive migrations", prepared.destructive),
            confirm::DESTRUCTIVE_PHRASE,
            args.allow_destructive,
        )?;
    }
    // A rehearsal's report is shown before the question: it is asked once the rehearsal passed.
    if !prepared.rehearse {
        approval::gate(session, env, &change)?;
        confirm::confirm(env, "migrate", Ask::TypeName, session.ctx.yes)?;
    }
    let begun = migrate::begin(session, env, &prepared)?;
    if prepared.rehearse {
        match rehearse::first(session, ui, env, &request, &prepared, begun.taken(), to) {
            Ok(passed) => report = passed.into_report(report),
            // Nothing to go back to: the database was not touched (the rehearsal's report
            // names the backup it was made from).
            Err(failed) => return Ok(failed.into_report(report).with("migrated", false)),
        }
        approval::gate(session, env, &change)?;
        confirm::confirm(env, "migrate", Ask::TypeName, session.ctx.yes)?;
    }
    let ran = migrate::apply(
        session,
        env,
        db.as_ref(),
        &request,
        &prepared,
        begun,
        &rehearse::output(ui),
    )?;
    Ok(render::ran(session, ui, env, report, ran))
}

/// The request `args` make, with the environment's lock held for it: taken by a run, and by a
/// dry run that rehearses (it takes a backup and loads it).
fn request(
    session: &Session,
    env: &Environment,
    args: &MigrateArgs,
) -> Result<(Request, Option<crate::registry::RegistryLock>)> {
    let rehearse = args
        .rehearse
        .then_some(true)
        .or(args.no_rehearse.then_some(false));
    let mut lock = cmd::claim_env(
        session,
        env,
        "migrate",
        "migration",
        args.dry_run,
        args.wait,
    )?;
    if args.dry_run.dry_run && args.rehearse {
        lock = Some(
            session
                .store
                .env_lock(&env.name, "rehearsal", args.wait.wait)?,
        );
    }
    let request = Request {
        no_backup: args.no_backup,
        allow_destructive: args.allow_destructive,
        terminate_connections: args.terminate_connections,
        resume: args.resume,
        dry_run: args.dry_run.dry_run,
        rehearse,
        lock_fd: lock.as_ref().map(|l| l.raw_fd()),
    };
    Ok((request, lock))
}

/// The pre-migration backup of an earlier migrate of `env` that did not finish, when `--resume`
/// goes on from it. Without `--resume`, such a migrate stops the run (a dry run gets that
/// refusal back to report; the run's is an error), with a hint naming the two ways on.
fn unfinished(
    session: &Session,
    ui: &Ui,
    env: &Environment,
    args: &MigrateArgs,
) -> Result<(Option<BackupRecord>, Option<Error>)> {
    match migrate::unfinished(session, env, args.resume)? {
        Unfinished::None => Ok((None, None)),
        Unfinished::Resume(record) => Ok((Some(*record), None)),
        Unfinished::NotUndone(not_undone) => {
            let migrate::NotUndone {
                refusal,
                backup: id,
                interrupted,
            } = *not_undone;
            let refusal = refusal.with_hint(format!(
                "`{}` restores the backup taken before it; or `{}` runs the migration on the database as it is, with {id} still the backup to go back to",
                hints::command_line(session, &["rollback", &env.name, "--to", &id]),
                hints::command_line(session, &["migrate", &env.name, "--resume"]),
            ));
            if args.dry_run.dry_run {
                ui.warn(crate::hints::unfinished_migrate(&env.name, &interrupted));
                return Ok((None, Some(refusal)));
            }
            Err(refusal)
        }
    }
}

/// This migrate's arguments, as a hint repeats them.
fn again<'a>(env: &'a Environment, args: &MigrateArgs, prepared: &Prepared) -> Vec<&'a str> {
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
    again
}
