//! The audit log's events: what was done, to which environment and backup, by whom, from which
//! commit, in which run. Writing one never fails a command: a failure is a warning.

use crate::registry::{GitState, HistoryEvent, HookRecord, Timing};
use crate::session::Session;

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
    timing: Option<Timing>,
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
pub fn log_hook_event(session: &Session, env: Option<&str>, id: Option<&str>, hook: HookRecord) {
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
        session.events().warn(&format!(
            "could not write the audit log: {}",
            err.one_line()
        ));
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
