//! One module per subcommand, each owning its arguments and its `run`.

pub mod backup;
pub mod cleanup;
pub mod completions;
pub mod delete;
pub mod diff;
pub mod doctor;
pub mod hook;
pub mod init;
pub mod list;
pub mod migrate;
pub mod remote;
pub mod restore;
pub mod rollback;
pub mod status;
pub mod verify;

use crate::Report;
use crate::cli::Command;
use crate::error::Result;
use crate::registry::{GitState, HistoryEvent};
use crate::session::{Ctx, Session};

pub fn dispatch(ctx: &Ctx, command: Command) -> Result<Report> {
    let command = match command {
        Command::Init(args) => return init::run(ctx, args),
        Command::Completions(args) => return completions::run(ctx, args),
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
    command.resolve_env(&session)?;
    let started = std::time::Instant::now();
    let name = command.name();
    let env = command.environment().map(str::to_string);
    let result = match command {
        Command::Init(_) | Command::Completions(_) | Command::Hook(_) => {
            unreachable!("handled above")
        }
        Command::Backup(args) => backup::run(&session, args),
        Command::List(args) => list::run(&session, args),
        Command::Verify(args) => verify::run(&session, args),
        Command::Restore(args) => restore::run(&session, args),
        Command::Cleanup(args) => cleanup::run(&session, args),
        Command::Delete(args) => delete::run(&session, args),
        Command::Push(args) => remote::push(&session, args),
        Command::Pull(args) => remote::pull(&session, args),
        Command::Status(args) => status::run(&session, args),
        Command::Migrate(args) => migrate::run(&session, args),
        Command::Rollback(args) => rollback::run(&session, args),
        Command::Diff(args) => diff::run(&session, args),
        Command::Doctor(args) => doctor::run(&session, args),
    };
    if env.is_some() {
        crate::notify::after(&session, name, env.as_deref(), &result, started.elapsed());
    }
    result
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
    dry_run: crate::cli::DryRun,
    wait: crate::cli::Wait,
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
            .ctx
            .ui
            .warn(crate::unfinished::describe(&env.name, &i));
    }
    Ok(Some(lock))
}

/// Appends an audit event; a failure to log is a warning, never a failed command.
pub fn log_event(
    session: &Session,
    event: &'static str,
    env: Option<&str>,
    id: Option<&str>,
    ok: bool,
    detail: Option<String>,
) {
    log_timed_event(session, event, env, id, ok, detail, None);
}

/// [`log_event`] with the time the work took and the bytes it moved.
pub fn log_timed_event(
    session: &Session,
    event: &'static str,
    env: Option<&str>,
    id: Option<&str>,
    ok: bool,
    detail: Option<String>,
    timing: Option<crate::registry::Timing>,
) {
    let mut e = new_event(session, event, env, id, ok, detail);
    e.timing = timing;
    append(session, &e);
}

/// [`log_event`] of work a signal stopped: marked `interrupted`.
pub fn log_interrupted_event(
    session: &Session,
    event: &'static str,
    env: Option<&str>,
    id: Option<&str>,
    detail: Option<String>,
) {
    let mut e = new_event(session, event, env, id, false, detail);
    e.interrupted = true;
    append(session, &e);
}

/// Appends the event of a Claude Code hook decision.
pub fn log_hook_event(
    session: &Session,
    env: Option<&str>,
    id: Option<&str>,
    hook: crate::registry::HookRecord,
) {
    let mut e = new_event(session, "hook", env, id, true, None);
    e.hook = Some(hook);
    append(session, &e);
}

fn new_event(
    session: &Session,
    event: &'static str,
    env: Option<&str>,
    id: Option<&str>,
    ok: bool,
    detail: Option<String>,
) -> HistoryEvent {
    HistoryEvent {
        time: session.ctx.now,
        event,
        environment: env.map(str::to_string),
        id: id.map(str::to_string),
        ok,
        detail,
        user: user(),
        host: host(),
        git: git_state(&session.config.root),
        run: Some(session.ctx.run_id.clone()),
        timing: None,
        hook: None,
        interrupted: false,
    }
}

fn append(session: &Session, e: &HistoryEvent) {
    if let Err(err) = session.store.append_history(e) {
        session
            .ctx
            .ui
            .warn(format!("could not write the audit log: {}", err.one_line()));
    }
}

/// This machine's name, as recorded with backups and events.
pub fn host() -> Option<String> {
    gethostname::gethostname().into_string().ok()
}

/// The user running faber-db, as recorded with backups and events.
pub fn user() -> Option<String> {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
}

/// The project's git commit and branch, read from `.git` without running git.
pub fn git_state(root: &std::path::Path) -> Option<GitState> {
    let git = root.join(".git");
    let head = std::fs::read_to_string(git.join("HEAD")).ok()?;
    let head = head.trim();
    let Some(reference) = head.strip_prefix("ref: ") else {
        return Some(GitState {
            commit: Some(head.to_string()),
            branch: None,
        });
    };
    let branch = reference.strip_prefix("refs/heads/").map(str::to_string);
    let commit = std::fs::read_to_string(git.join(reference))
        .ok()
        .map(|s| s.trim().to_string())
        .or_else(|| {
            let packed = std::fs::read_to_string(git.join("packed-refs")).ok()?;
            packed
                .lines()
                .find_map(|l| l.strip_suffix(reference).map(|c| c.trim().to_string()))
        });
    Some(GitState { commit, branch })
}

/// `faber-db ARGS` as the user would run it again, with this run's `--config` and `--yes`: the
/// command a hint names. Each argument is quoted for a POSIX shell where it needs it.
pub fn command_line(session: &Session, args: &[&str]) -> String {
    let mut words = vec!["faber-db".to_string()];
    if let Some(config) = &session.ctx.config_path {
        words.push("--config".into());
        words.push(shell_word(&config.to_string_lossy()));
    }
    if session.ctx.yes {
        words.push("--yes".into());
    }
    words.extend(args.iter().map(|a| shell_word(a)));
    words.join(" ")
}

/// `word` as a POSIX shell reads it back: as it is when that is safe, else in single quotes.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
