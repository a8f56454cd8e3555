//! One module per subcommand, each owning its arguments and its `run`.

pub mod backup;
pub mod cleanup;
pub mod cli;
pub mod completions;
pub mod delete;
pub mod diff;
pub mod doctor;
pub mod hook;
pub mod init;
pub mod list;
pub mod migrate;
pub mod offsite;
pub mod restore;
pub mod rollback;
pub mod status;
pub mod verify;

use crate::Report;
use crate::cmd::cli::Command;
use crate::error::Result;
use crate::session::{Ctx, Session};
use crate::ui::Ui;

pub fn dispatch(ctx: &Ctx, ui: &Ui, command: Command) -> Result<Report> {
    let command = match command {
        Command::Init(args) => return init::run(ctx, ui, args),
        Command::Completions(args) => return completions::run(ui, args),
        // Answered by `lib::run` before any context is made.
        Command::Hook(_) => unreachable!("the hook runs on its own"),
        other => other,
    };
    let session = match &command {
        Command::Verify(args) if args.id.as_deref().is_some_and(verify::is_path) => {
            ctx.session_anywhere()?
        }
        c if c.is_dry_run() => ctx.session_unchanged()?,
        _ => ctx.session()?,
    };
    let mut command = command;
    resolve_env(&mut command, &session, ui)?;
    let started = std::time::Instant::now();
    let name = command.name();
    let env = command.environment().map(str::to_string);
    let result = match command {
        Command::Init(_) | Command::Completions(_) | Command::Hook(_) => {
            unreachable!("handled above")
        }
        Command::Backup(args) => backup::run(&session, ui, args),
        Command::List(args) => list::run(&session, ui, args),
        Command::Verify(args) => verify::run(&session, ui, args),
        Command::Restore(args) => restore::run(&session, ui, args),
        Command::Cleanup(args) => cleanup::run(&session, ui, args),
        Command::Delete(args) => delete::run(&session, ui, args),
        Command::Push(args) => offsite::push(&session, ui, args),
        Command::Pull(args) => offsite::pull(&session, ui, args),
        Command::Status(args) => status::run(&session, ui, args),
        Command::Migrate(args) => migrate::run(&session, ui, args),
        Command::Rollback(args) => rollback::run(&session, ui, args),
        Command::Diff(args) => diff::run(&session, ui, args),
        Command::Doctor(args) => doctor::run(&session, ui, args),
    };
    if env.is_some() {
        crate::notify::after(&session, name, env.as_deref(), &result, started.elapsed());
    }
    result
}

/// Fills in the environment of a command whose ENV was left out, from FABER_ENV, ENV_MODE or
/// the config's `default_environment`, and says which was chosen.
fn resolve_env(command: &mut Command, session: &Session, ui: &Ui) -> Result<()> {
    let slot = match command {
        Command::Backup(a) => &mut a.env,
        Command::Restore(a) => &mut a.env,
        Command::Rollback(a) => &mut a.env,
        Command::Migrate(a) => &mut a.env,
        _ => return Ok(()),
    };
    if slot.is_none() {
        let (name, source) = session.default_env()?;
        ui.line(format!("Environment: {name} (from {source})"));
        *slot = Some(name);
    }
    Ok(())
}

/// Before a restore, rollback or migrate of `env` decides anything: fails at once (exit 8) if it
/// will need an answer no terminal can give, then takes the environment's lock — so that, with
/// `--wait`, what to restore or migrate is chosen on the state the other run left. Nothing for
/// a dry run.
pub fn claim_env(
    session: &Session,
    env: &crate::config::Environment,
    action: &str,
    what: &str,
    dry_run: crate::cmd::cli::DryRun,
    wait: crate::cmd::cli::Wait,
) -> Result<Option<crate::registry::RegistryLock>> {
    if dry_run.dry_run {
        return Ok(None);
    }
    crate::confirm::can_ask(env, action, session.ctx.yes)?;
    let lock = session.store.env_lock(&env.name, what, wait.wait)?;
    // A migration that did not finish is said before anything else is done to the environment.
    if let Some(i) = crate::unfinished::interrupted(&session.store, &env.name)
        && i.event == "migrate"
    {
        session
            .events()
            .warn(&crate::hints::unfinished_migrate(&env.name, &i));
    }
    Ok(Some(lock))
}
