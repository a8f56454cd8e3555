//! The pre-flight of `restore`, `rollback` and `migrate`: what can be known before anything
//! changes — the connection, other sessions on the target, free space for the backups the run
//! writes and for the staging copy, the tools and their versions, a `migrate_command` to run —
//! checked before the confirmation, the safety backup or the scratch load. A run whose
//! pre-flight fails stops there, with the exit code of the first failing check; `--dry-run`
//! shows every check, `doctor` the sessions and tools.
//!
//! This module knows neither commands nor flags: the command layer says what the run needs
//! ([`Needs`]) and adds the hint that names the command that works.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Kind, Result};
use crate::human;
use crate::provider::{OtherSession, Provider};

/// One check: its name, whether it passed, and what it found.
#[derive(Debug, Serialize)]
pub struct Check {
    /// `connection`, `privileges`, `migrate_command`, `tools`, `space`, `sessions`.
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
    /// What a check that passed could not tell, said as a warning before the run goes ahead
    /// (also at the end of its detail).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// Why it failed, of the kind whose exit code the run ends with (the report's `error`).
    #[serde(skip)]
    failure: Option<Error>,
}

impl Check {
    fn passed(name: &'static str, detail: String) -> Check {
        Check {
            name,
            ok: true,
            detail,
            warning: None,
            failure: None,
        }
    }

    /// A failed check, its detail the failure's message.
    fn failed(name: &'static str, failure: Error) -> Check {
        Check::failed_as(name, failure.one_line(), failure)
    }

    fn failed_as(name: &'static str, detail: String, failure: Error) -> Check {
        Check {
            name,
            ok: false,
            detail,
            warning: None,
            failure: Some(failure),
        }
    }

    /// The kind of failure, when it failed.
    pub fn failure_kind(&self) -> Option<Kind> {
        self.failure.as_ref().map(Error::kind)
    }
}

/// Every check of a run's pre-flight, in the order they ran.
#[derive(Debug, Serialize)]
pub struct Preflight {
    /// Every check passed.
    pub ok: bool,
    pub checks: Vec<Check>,
    /// The other sessions found on the target, when they were looked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<Vec<OtherSession>>,
}

impl Preflight {
    /// The first failing check's error (the run's exit code), taken out of it; the check keeps
    /// its detail.
    pub fn take_failure(&mut self) -> Option<(&'static str, Error)> {
        self.checks
            .iter_mut()
            .find_map(|c| c.failure.take().map(|e| (c.name, e)))
    }

    /// The check named `name`, if it ran.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }
}

/// What other sessions on the target mean to the run.
#[derive(Debug, Clone)]
pub enum Sessions {
    /// Nothing will restore the database (a `migrate` without an automatic restore): not
    /// looked at.
    Ignore,
    /// Any other session stops the run (exit 7): the restore's swap would refuse at its end.
    Refuse,
    /// Other sessions are ended at the swap; `because` says what asked for that.
    End { because: String },
}

/// A backup the run writes, and where.
#[derive(Debug, Clone)]
pub struct Writes {
    /// What it is, as said to a person: `the pre-restore safety backup`.
    pub what: String,
    /// The directory it goes into (it may not exist yet).
    pub dir: PathBuf,
    /// The room asked for before it starts ([`crate::plan::space_needed`]).
    pub bytes: u64,
}

/// What the run about to start needs, as the command layer knows it.
pub struct Needs {
    /// For `migrate`: the command it runs, or why there is none (exit 1).
    pub migrate_command: Option<Result<String>>,
    /// When a restore runs (or may run): the restore method the role's privileges allow, as
    /// said to a person, or why none is possible (exit 6, the hint naming the grant).
    pub method: Option<Result<String>>,
    /// A backup of the database is taken (a safety or pre-migration backup): the database must
    /// open, and its dump tool be there.
    pub backs_up: bool,
    /// A restore runs, or may run (`migrate`'s automatic one): its restore tools.
    pub restore_tools: bool,
    /// The backups the run writes.
    pub writes: Vec<Writes>,
    /// The size of the dump a restore loads, when one does: where the staging copy is on this
    /// machine (SQLite), its room is checked with the backups'.
    pub staging: Option<u64>,
    pub sessions: Sessions,
}

/// Runs the pre-flight of a run on `db` that needs `needs`. Fails at once (exit 3) when the
/// database's server cannot be reached; a database to back up that does not open is a failed
/// `connection` check, the only one then. Every other failure is a failed check in the result.
pub fn run(db: &dyn Provider, needs: Needs) -> Result<Preflight> {
    let mut checks = Vec::new();
    let exists = db.exists()?;
    let opened = exists.then(|| db.check_connection());
    checks.push(match opened {
        None => Check::passed(
            "connection",
            format!(
                "database {} does not exist yet: nothing to save or to end",
                db.database_name()
            ),
        ),
        Some(Ok(version)) => Check::passed("connection", version),
        // A database backed up first must open, and nothing else can be checked then; one
        // replaced without being saved (a damaged SQLite file, with --no-safety-backup) need
        // not.
        Some(Err(e)) if needs.backs_up => {
            return Ok(Preflight {
                ok: false,
                checks: vec![Check::failed("connection", e)],
                sessions: None,
            });
        }
        Some(Err(e)) => Check::passed(
            "connection",
            format!(
                "database {} does not open ({}); it is replaced without being saved",
                db.database_name(),
                e.one_line()
            ),
        ),
    });

    // Privileges for the restore method (a swap needs CREATEDB or its MySQL equivalent; a
    // restore in place, ownership of the target's objects): chosen by the caller, which read
    // them from the server (`Provider::restore_privileges`).
    if let Some(method) = needs.method {
        checks.push(match method {
            Ok(shown) => Check::passed("privileges", shown),
            Err(e) => Check::failed("privileges", e),
        });
    }

    if let Some(command) = needs.migrate_command {
        checks.push(match command {
            Ok(shown) => Check::passed("migrate_command", shown),
            Err(e) => Check::failed("migrate_command", e),
        });
    }

    if let Some(check) = tools(db, needs.backs_up && exists, needs.restore_tools) {
        checks.push(check);
    }

    let mut writes: Vec<Writes> = if exists { needs.writes } else { Vec::new() };
    if let Some((dir, bytes)) = needs.staging.and_then(|raw| db.staging_need(raw)) {
        writes.push(Writes {
            what: "the restore's staging copy".to_string(),
            dir,
            bytes,
        });
    }
    if !writes.is_empty() {
        checks.push(space(&writes));
    }

    let mut found = None;
    if exists && !matches!(needs.sessions, Sessions::Ignore) {
        match db.other_sessions() {
            Ok(None) => {}
            Ok(Some(others)) => {
                // A role that sees only some sessions must not say none is connected.
                let unseen = db.sessions_unseen().ok().flatten();
                let mut check = sessions(db, &others, &needs.sessions, unseen.is_some());
                if let Some(unseen) = unseen {
                    check.detail = format!("{}; {unseen}", check.detail);
                    check.warning = Some(unseen);
                }
                checks.push(check);
                found = Some(others);
            }
            Err(e) => checks.push(Check::failed("sessions", e)),
        }
    }

    Ok(Preflight {
        ok: checks.iter().all(|c| c.ok),
        checks,
        sessions: found,
    })
}

/// The tools the run uses, with their versions; `None` when it runs none (SQLite).
fn tools(db: &dyn Provider, dump: bool, restore: bool) -> Option<Check> {
    let mut found = Vec::new();
    if dump {
        match db.tools_report() {
            Ok(Some(text)) => found.push(format!("dump: {text}")),
            Ok(None) => {}
            Err(e) => return Some(Check::failed("tools", e)),
        }
    }
    if restore {
        match db.restore_tools_report() {
            Ok(Some(text)) => found.push(format!("restore: {text}")),
            Ok(None) => {}
            Err(e) => return Some(Check::failed("tools", e)),
        }
    }
    (!found.is_empty()).then(|| Check::passed("tools", found.join("; ")))
}

/// Free space for `writes`, added up per filesystem: a backup and a staging copy on the same
/// disk need room for both.
fn space(writes: &[Writes]) -> Check {
    // By device, each with the directory checked and what goes there.
    let mut by_device: BTreeMap<u64, (PathBuf, Vec<&Writes>)> = BTreeMap::new();
    for w in writes {
        let Some(existing) = w.dir.ancestors().find(|d| d.is_dir()) else {
            continue;
        };
        let device = std::fs::metadata(existing).map_or(0, |m| m.dev());
        by_device
            .entry(device)
            .or_insert_with(|| (w.dir.clone(), Vec::new()))
            .1
            .push(w);
    }
    let mut details = Vec::new();
    for (dir, group) in by_device.values() {
        let needed: u64 = group.iter().map(|w| w.bytes).sum();
        let what = group
            .iter()
            .map(|w| w.what.as_str())
            .collect::<Vec<_>>()
            .join(" and ");
        let free = match free_space(dir) {
            Ok(free) => free,
            Err(e) => return Check::failed("space", e),
        };
        if free < needed {
            return Check::failed(
                "space",
                Error::new(
                    Kind::DiskSpace,
                    format!(
                        "not enough free space in {} for {what}: {} free, about {} needed",
                        dir.display(),
                        human::size(free),
                        human::size(needed)
                    ),
                ),
            );
        }
        details.push(format!(
            "{} free in {}; about {} needed for {what}",
            human::size(free),
            dir.display(),
            human::size(needed)
        ));
    }
    Check::passed("space", details.join("; "))
}

/// The free space of the filesystem `dir` is (or will be) on.
fn free_space(dir: &Path) -> Result<u64> {
    let existing = dir.ancestors().find(|d| d.is_dir()).unwrap_or(dir);
    fs4::available_space(existing)
        .map_err(|e| Error::io(Kind::Config, "cannot read free space of", dir, e))
}

/// The sessions check of `others`, found on `db`'s database; `partial` when they are only those
/// the role may see.
fn sessions(db: &dyn Provider, others: &[OtherSession], policy: &Sessions, partial: bool) -> Check {
    let target = db.database_name();
    if others.is_empty() {
        return Check::passed(
            "sessions",
            if partial {
                format!("no other session of this user is connected to {target}")
            } else {
                format!("no other session is connected to {target}")
            },
        );
    }
    let found = format!(
        "{} connected to {target}: {}",
        human::count(others.len() as u64, "other session"),
        crate::provider::describe_sessions(others)
    );
    match policy {
        Sessions::End { because } => Check::passed(
            "sessions",
            format!("{found}; they will be ended at the swap ({because})"),
        ),
        _ => Check::failed_as(
            "sessions",
            found.clone(),
            Error::new(Kind::Busy, format!("{found}; nothing was changed")),
        ),
    }
}
