//! Taking a backup: dump, compress, encrypt and checksum in one pass, read the file back, register
//! it. In two steps, so that a command can show the plan and ask in between:
//! [`prepare`] checks everything and plans (`prepare.rs`); [`write`] reserves the ID, dumps, reads
//! back and publishes (`write.rs`, `reserve.rs`, `dump.rs`). [`take`] is both at once, for the
//! backups other operations take.

mod dump;
mod globals;
mod output;
mod prepare;
mod reserve;
mod write;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use crate::config::Environment;
use crate::error::{Error, Remedy, Result};
use crate::format::Format;
use crate::pipeline::Compression;
use crate::registry::BackupRecord;
use crate::retention::Retention;
use crate::session::Session;

pub use output::output_dir;
pub use prepare::{Prepared, Preview, estimate, resolve_compression, resolve_format};
pub use write::write;

/// What to back up and how, after validation.
#[derive(Debug, Clone)]
pub struct Request {
    pub label: Option<String>,
    pub reason: Option<String>,
    pub retention: Retention,
    pub format: Option<Format>,
    /// Compression; `None` picks the environment's for SQL dumps, none for custom archives
    /// (pg_dump compresses them itself) and gzip for the files of directory dumps.
    pub compression: Option<Compression>,
    /// Parallel dump jobs of directory dumps.
    pub jobs: Option<u32>,
    /// Where the files go instead of the environment's directory (absolute).
    pub output_dir: Option<PathBuf>,
    /// The command the backup is taken before (the hook's pre-migration backups).
    pub command: Option<String>,
    /// Patterns of tables whose rows are left out, besides the environment's
    /// `exclude_table_data` (`--exclude-table-data`).
    pub exclude_table_data: Vec<String>,
    /// SQLite: the full `PRAGMA integrity_check` on the snapshot (`--full-check`), besides an
    /// environment's `sqlite_full_check`.
    pub full_check: bool,
}

impl Request {
    /// A backup taken by faber-db itself before a risky step: labelled and reasoned alike, and
    /// checked as fully as the restore that may need it will check it (SQLite: the full
    /// `integrity_check`) — else a database with a broken index would give a pre-migration
    /// backup registered valid that the rollback then refuses, with the migration half done.
    pub fn automatic(env: &Environment, reason: &str) -> Request {
        Request {
            label: Some(reason.to_string()),
            reason: Some(reason.to_string()),
            retention: env.retention,
            format: None,
            compression: None,
            jobs: None,
            output_dir: None,
            command: None,
            exclude_table_data: Vec::new(),
            full_check: true,
        }
    }
}

/// What a backup would do, for a dry run: every check is made and nothing is written, logged or
/// refused for want of space (the plan says whether it fits).
pub fn preview(session: &Session, env: &Environment, request: &Request) -> Result<Preview> {
    Ok(prepare::prepare(session, env, request)?.preview)
}

/// Checks and plans a backup of `env` before anything is written, failing (exit 2) when the
/// destination has too little room. A failure is written to the audit log. Then [`write`].
pub fn prepare(session: &Session, env: &Environment, request: &Request) -> Result<Prepared> {
    logged(session, env, || prepare_to_write(session, env, request))
}

/// Takes one backup of `env` and registers it: [`prepare`], then [`write`]. On failure nothing is
/// registered and no partial file stays behind.
pub fn take(session: &Session, env: &Environment, request: &Request) -> Result<BackupRecord> {
    let prepared = prepare(session, env, request)?;
    write(session, env, request, prepared)
}

/// A backup faber-db takes before a risky step (a restore's safety backup, a pre-migration
/// backup). It is not copied off-site here: an upload would hold the restore or the release for
/// as long as it takes, and the local copy is what the step needs. `faber-db push` copies it.
pub fn take_automatic(session: &Session, env: &Environment, reason: &str) -> Result<BackupRecord> {
    let record = take(session, env, &Request::automatic(env, reason))?;
    if env.offsite {
        session.events().advise(&Remedy::StaysLocal {
            id: record.id.clone(),
        });
    }
    Ok(record)
}

/// Checks that a safety backup of `env` (reason `reason`) could be taken now — connection,
/// tools, keys, free space — without taking it: for a restore that takes it after its swap.
pub fn check_automatic(session: &Session, env: &Environment, reason: &str) -> Result<()> {
    prepare_to_write(session, env, &Request::automatic(env, reason)).map(|_| ())
}

/// The safety backup (reason `reason`) of the data a restore of `env` set aside at its swap:
/// taken from `replaced`, and recorded as a backup of `env`'s database as it was just before.
pub fn take_replaced(
    session: &Session,
    env: &Environment,
    reason: &str,
    replaced: &dyn crate::provider::Replaced,
) -> Result<BackupRecord> {
    let request = Request::automatic(env, reason);
    let prepared = logged(session, env, || {
        prepare::fits(prepare::prepare_from(
            session,
            env,
            &request,
            replaced.provider(),
            format!("{} (set aside at the swap)", replaced.describe()),
        )?)
    })?;
    write(session, env, &request, prepared)
}

/// [`prepare::prepare`], failing (exit 2) when the destination has too little room: before
/// anything is asked or written.
fn prepare_to_write(session: &Session, env: &Environment, request: &Request) -> Result<Prepared> {
    prepare::fits(prepare::prepare(session, env, request)?)
}

/// Runs `step` of a backup of `env`: a failure is said as an interruption when Ctrl-C caused
/// it, and written to the audit log.
fn logged<T>(session: &Session, env: &Environment, step: impl FnOnce() -> Result<T>) -> Result<T> {
    let _signals = crate::interrupt::guard();
    let result = step().map_err(interrupted);
    if let Err(e) = &result {
        crate::audit::log_event(
            session,
            "backup",
            Some(&env.name),
            None,
            false,
            Some(e.one_line()),
        );
    }
    result
}

/// A failure caused by Ctrl-C or SIGTERM, said as such (exit 8).
pub fn interrupted(e: Error) -> Error {
    if !crate::interrupt::happened() {
        return e;
    }
    Error::aborted("interrupted: the backup was stopped; nothing was registered")
        .caused_by(e.one_line())
        .with_hint("its partial file was removed; run it again when ready")
}
