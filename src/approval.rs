//! One-time approvals of a change to a protected environment (issue 24, docs/approvals.md).
//!
//! Run from an agent's shell, faber-db does not take `--yes` alone as the human's answer on a
//! protected environment: the agent typed it. The plugin's hook, when it asks the human about
//! such a command, issues an approval bound to exactly that command — its arguments, the
//! environment, the database, the backup a restore would load (ID and SHA-256) — and rewrites the
//! command to carry it (`FABER_APPROVAL=<id> faber-db …`), so what the human approves is the
//! command that carries it. faber-db takes it once: the first use claims it (a rename, which only
//! one process can win) and removes it, whether it matched or not; a replay, an expired one, or
//! one issued for another command is refused.
//!
//! The approval's ID is a path component read from the environment: data, not a promise. It is
//! 32 hex digits or refused; the file it names must be a regular file of this user's, not a link,
//! readable by nobody else, in a directory that is not a link.
//!
//! Whether a run is an agent's is [`crate::agent`]'s to say.
//!
//! This guards against accidents and over-eager agents, not against a hostile process of the
//! same user, which can write an approval of its own (docs/plugin.md says so).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Kind, Result};
use crate::fsutil;

/// The directory of the backup directory where approvals wait to be used.
pub const APPROVALS_DIR: &str = ".approvals";
/// The variable a command carries its approval in.
pub const APPROVAL_VAR: &str = "FABER_APPROVAL";
/// How long an approval waits for its command: long enough for the human to read the question.
pub const LIFETIME_MINUTES: i64 = 5;
const VERSION: u32 = 1;
/// No approval file is larger; a bigger one is not one faber-db wrote.
const MAX_BYTES: u64 = 64 * 1024;

/// What an approval allows: one command, on one database, loading one backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// faber-db's arguments as they will run (after the program name).
    pub args: Vec<String>,
    /// `restore`, `rollback`, `migrate`, `delete`, `cleanup`, `backup`.
    pub subcommand: String,
    /// The environment changed; `None`: every environment (`cleanup` without one).
    pub environment: Option<String>,
    /// SHA-256 of the database URL the environment resolves to, so that the same arguments
    /// with another URL in the environment are another command.
    pub database: Option<String>,
    /// The backup a restore or rollback would load.
    pub backup: Option<BackupRef>,
}

/// A backup by ID and content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRef {
    pub id: String,
    pub sha256: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    version: u32,
    id: String,
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    /// The Claude Code session the hook asked in, when it said.
    session: Option<String>,
    binding: Binding,
}

/// The approvals of one backup directory.
#[derive(Debug, Clone)]
pub struct Approvals {
    dir: PathBuf,
}

impl Approvals {
    pub fn new(backup_dir: &Path) -> Approvals {
        Approvals {
            dir: backup_dir.join(APPROVALS_DIR),
        }
    }

    /// Records an approval of `binding` for [`LIFETIME_MINUTES`] from `now`, asked in Claude Code
    /// session `session`, and returns its ID. Approvals that expired are removed on the way.
    pub fn issue(
        &self,
        binding: Binding,
        session: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<String> {
        fsutil::create_private_dir(&self.dir)?;
        self.check_dir()?;
        self.sweep(now);
        let id = crate::scratch::random_token()?;
        let record = Record {
            version: VERSION,
            id: id.clone(),
            issued_at: now,
            expires_at: now + Duration::minutes(LIFETIME_MINUTES),
            session: session.map(str::to_string),
            binding,
        };
        let path = self.path_of(&id);
        let failed = |e| Error::io(Kind::Config, "cannot record an approval in", &path, e);
        let mut file = fsutil::create_new_private(&path).map_err(failed)?;
        let mut bytes = serde_json::to_vec_pretty(&record).expect("an approval serializes");
        bytes.push(b'\n');
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .map_err(failed)?;
        Ok(id)
    }

    /// Takes approval `id` for the command `wanted` describes, run in Claude Code session
    /// `session`: once. It is claimed and removed before it is read, so that a second use,
    /// however close, finds nothing; then it must be faber-db's, unexpired, and issued for
    /// exactly `wanted`. Every refusal is exit 8.
    pub fn consume(
        &self,
        id: &str,
        wanted: &Binding,
        session: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        if !is_id(id) {
            return Err(refused(format!(
                "{APPROVAL_VAR} is not an approval faber-db issued"
            )));
        }
        self.check_dir()
            .map_err(|e| refused(e.message().to_string()))?;
        let record = self.claim(id)?;
        if record.id != id || record.version != VERSION {
            return Err(refused(format!("approval {id} is not one faber-db wrote")));
        }
        if now >= record.expires_at || record.issued_at > now + Duration::minutes(1) {
            return Err(refused(format!(
                "approval {id} expired at {} (it lasts {LIFETIME_MINUTES} minutes)",
                record.expires_at.format("%H:%M:%S UTC")
            )));
        }
        // Given in a session, taken in that session only (a run that says none is not in it).
        if let Some(theirs) = record.session.as_deref()
            && session != Some(theirs)
        {
            return Err(refused(format!(
                "approval {id} was given in another Claude Code session"
            )));
        }
        if let Some(why) = differs(&record.binding, wanted) {
            return Err(refused(format!(
                "approval {id} was given for `faber-db {}`, not for this command: {why}",
                record.binding.args.join(" ")
            )));
        }
        Ok(())
    }

    /// Removes approval `id`, if it is one and is there: it will not be used.
    pub fn withdraw(&self, id: &str) {
        if is_id(id) && self.check_dir().is_ok() {
            let _ = fs::remove_file(self.path_of(id));
        }
    }

    fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// The directory is faber-db's own: a real directory (not a link), this user's, that no one
    /// else may write to.
    fn check_dir(&self) -> Result<()> {
        let meta = fs::symlink_metadata(&self.dir)
            .map_err(|e| Error::io(Kind::Config, "cannot read", &self.dir, e))?;
        let mine = meta.uid() == current_uid();
        if !meta.is_dir() || !mine || meta.mode() & 0o022 != 0 {
            return Err(Error::config(format!(
                "{} is not a private directory of this user's (a link, or writable by others)",
                self.dir.display()
            )));
        }
        Ok(())
    }

    /// Moves the approval aside under a name of this run's (only one rename can take it), reads
    /// it without following links, and removes it.
    fn claim(&self, id: &str) -> Result<Record> {
        let from = self.path_of(id);
        let token = crate::scratch::random_token()?;
        let claimed = self.dir.join(format!("{id}.claimed-{token}"));
        if let Err(e) = fs::rename(&from, &claimed) {
            return Err(if e.kind() == io::ErrorKind::NotFound {
                refused(format!(
                    "approval {id} was used already, or expired and was removed, or was never issued"
                ))
            } else {
                Error::io(Kind::Aborted, "cannot take the approval", &from, e)
            });
        }
        let read = read_private(&claimed);
        let _ = fs::remove_file(&claimed);
        read.map_err(|why| refused(format!("approval {id} cannot be used: {why}")))
    }

    /// Removes approvals that expired (and claims a run left behind), best effort.
    fn sweep(&self, now: DateTime<Utc>) {
        let Ok(read) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in read.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let stale = if name.contains(".claimed-") {
                entry
                    .metadata()
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .is_some_and(|t| DateTime::<Utc>::from(t) + Duration::hours(1) < now)
            } else {
                read_private(&path).is_ok_and(|r| r.expires_at <= now)
            };
            if stale {
                let _ = fs::remove_file(&path);
            }
        }
    }
}

/// The Claude Code session of this run, when it is an agent's.
fn session_of_run() -> Option<String> {
    std::env::var(crate::agent::SESSION_VAR)
        .ok()
        .filter(|s| !s.is_empty())
}

/// Set once this run has taken its approval: one approval covers one run, however many of its
/// steps ask (a migrate's destructive phrase, then its confirmation).
static TAKEN: std::sync::OnceLock<()> = std::sync::OnceLock::new();

/// What a protected change is, for the approval it needs from an agent's shell.
pub struct Change<'a> {
    /// `restore`, `rollback`, `migrate`, `delete`, `cleanup`, `backup`.
    pub action: &'a str,
    /// The environment the command names (`None`: every environment, `cleanup` without one).
    pub scope: Option<&'a str>,
    /// The backup it loads.
    pub backup: Option<&'a crate::registry::BackupRecord>,
}

/// Whether a confirmation on `env` is an approval's to give: a protected environment, from an
/// agent's shell. There no answer counts but an approval: not `--yes`, not a terminal's (the
/// Bash tool has none, so a terminal there is one the agent made: `script`, a pty).
pub fn must_approve(env: &crate::config::Environment) -> bool {
    env.protected && crate::agent::in_agent_shell()
}

/// Before a change of protected `env` from an agent's shell: takes the approval the command
/// carries in [`APPROVAL_VAR`], which must have been issued for exactly this command (exit 8
/// otherwise). Anywhere else, nothing.
pub fn gate(
    session: &crate::session::Session,
    env: &crate::config::Environment,
    change: &Change<'_>,
) -> Result<()> {
    if !must_approve(env) || TAKEN.get().is_some() {
        return Ok(());
    }
    let Some(id) = carried() else {
        return Err(unapproved(&env.name, change.action));
    };
    let wanted = Binding {
        args: std::env::args_os()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        subcommand: change.action.to_string(),
        environment: change.scope.map(str::to_string),
        database: change.scope.and_then(|_| database_of(session, env)),
        backup: change.backup.map(|b| BackupRef {
            id: b.id.clone(),
            sha256: b.sha256.clone(),
        }),
    };
    // `FABER_NOW` (a test's clock) can move time forward, never back past an expiry.
    let now = session.ctx.now.max(Utc::now());
    Approvals::new(session.store.dir()).consume(&id, &wanted, session_of_run().as_deref(), now)?;
    let _ = TAKEN.set(());
    Ok(())
}

/// The approval this run carries in [`APPROVAL_VAR`], when it carries one.
fn carried() -> Option<String> {
    std::env::var(APPROVAL_VAR).ok().filter(|v| !v.is_empty())
}

/// The database `env` resolves to, as an approval names it: the file's canonical path, or the
/// URL without its password.
pub fn database_of(
    session: &crate::session::Session,
    env: &crate::config::Environment,
) -> Option<String> {
    Some(match session.url(env).ok()? {
        crate::provider::DatabaseUrl::Sqlite(path) => {
            let path = fsutil::resolved(&path);
            format!("sqlite:{}", path.display())
        }
        url @ crate::provider::DatabaseUrl::Server { .. } => url.redacted(),
    })
}

/// Fails at once (exit 8) when a change of protected `env` from an agent's shell carries no
/// approval, or something that is not one: before anything is taken or touched. Whether the one
/// it carries fits is told by [`gate`], once what the command changes is known.
pub fn can_go_on(env: &crate::config::Environment, action: &str) -> Result<()> {
    if !must_approve(env) {
        return Ok(());
    }
    match carried() {
        None => Err(unapproved(&env.name, action)),
        Some(id) if !is_id(&id) => Err(refused(format!(
            "{APPROVAL_VAR} is not an approval faber-db issued"
        ))),
        Some(_) => Ok(()),
    }
}

/// Whether this run may change protected `env` without asking: everywhere but in an agent's
/// shell, and there once this run took its approval ([`gate`]). A confirmation asks this, so
/// that a path that forgot the gate refuses rather than goes on.
pub fn approved(env: &crate::config::Environment, action: &str) -> Result<()> {
    if must_approve(env) && TAKEN.get().is_none() {
        return Err(unapproved(&env.name, action));
    }
    Ok(())
}

fn unapproved(env: &str, action: &str) -> Error {
    Error::aborted(format!(
        "{action} of protected environment `{env}` from an agent's shell needs the user's approval; --yes alone is the agent's word, not theirs"
    ))
    .with_hint(format!(
        "ask the user to approve it: run the same command again (or /faber-db:{}) and the faber-db plugin's hook asks them in Claude Code's prompt; if they approve, it runs with a one-time approval (FABER_APPROVAL). Without the hook, they run it in their own terminal",
        command_of(action)
    ))
}

/// The slash command of an action.
fn command_of(action: &str) -> &str {
    match action {
        "cleanup" => "cleanup-backups",
        "delete" => "delete-backup",
        other => other,
    }
}

/// Whether `id` has the form of an approval ID: 32 lowercase hex digits, nothing else.
fn is_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The record at `path`, read only if it is a regular file (not a link) of this user's that no
/// one else can read or write.
fn read_private(path: &Path) -> std::result::Result<Record, String> {
    let mut file: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("it cannot be opened ({e}); a link is never followed"))?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() || meta.uid() != current_uid() || meta.mode() & 0o077 != 0 {
        return Err("it is not a private file of this user's".into());
    }
    if meta.len() > MAX_BYTES {
        return Err("it is larger than any approval faber-db writes".into());
    }
    let mut text = String::new();
    Read::by_ref(&mut file)
        .take(MAX_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| format!("it is not an approval ({e})"))
}

/// What in `wanted` is not what `given` approved, first difference only.
fn differs(given: &Binding, wanted: &Binding) -> Option<String> {
    if given.subcommand != wanted.subcommand || given.args != wanted.args {
        return Some(format!("this is `faber-db {}`", wanted.args.join(" ")));
    }
    if given.environment != wanted.environment {
        return Some(format!(
            "it changes `{}`",
            wanted.environment.as_deref().unwrap_or("every environment")
        ));
    }
    if given.database != wanted.database {
        return Some("the environment's database URL is another".into());
    }
    if given.backup != wanted.backup {
        return Some(match &wanted.backup {
            Some(b) if given.backup.as_ref().is_some_and(|g| g.id == b.id) => {
                format!("backup {} changed since", b.id)
            }
            Some(b) => format!("it would load backup {}", b.id),
            None => "it loads no backup".into(),
        });
    }
    None
}

fn refused(what: String) -> Error {
    Error::aborted(what).with_hint(
        "ask the user: run the command again without FABER_APPROVAL and let the plugin's hook ask them, or have them run it in their own terminal",
    )
}

fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
#[path = "approval_tests.rs"]
mod tests;
