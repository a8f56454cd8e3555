//! Restore drills (`verify --drill`, meant for cron): an integrity hash is not a recovery test,
//! so the backup a restore would pick now (`--from latest`) is loaded into a scratch database
//! and its row counts compared with the manifest — a deep check of that one backup. The result
//! is kept on the entry (`last_drill`) and in the history (`drill`), where `status` and `list`
//! read when each environment was last proven restorable.

use std::time::Instant;

use serde::Serialize;

use super::{Checked, Depth, check, record_with};
use crate::audit;
use crate::config::Environment;
use crate::error::Result;
use crate::ops::restore;
use crate::registry::{BackupRecord, Drill, Status, Timing};
use crate::session::Session;

/// One environment's drill.
#[derive(Debug, Serialize)]
pub struct Drilled {
    pub environment: String,
    /// The backup drilled; `None` when the environment has none to restore.
    pub backup: Option<BackupRecord>,
    /// The deep check it was, when there was a backup.
    #[serde(skip)]
    pub checked: Option<Checked>,
    pub drill: Drill,
}

/// Drills `env`: its restorable backup loaded and counted, the outcome recorded. A drill that
/// fails is an outcome, not an error; only a registry that cannot be written is.
pub fn drill(session: &Session, env: &Environment) -> Result<Drilled> {
    let started = Instant::now();
    let at = session.ctx.now;
    let record = match restore::choose(session, env, "latest") {
        Ok((record, _)) => record,
        Err(e) => {
            let drill = Drill {
                at,
                ok: false,
                duration_ms: crate::human::millis(started.elapsed()),
                problem: Some(e.one_line()),
            };
            log(session, env, None, &drill);
            return Ok(Drilled {
                environment: env.name.clone(),
                backup: None,
                checked: None,
                drill,
            });
        }
    };
    let checked = check(session, &record, Depth::Deep);
    let ok = checked.verified && checked.status == Status::Valid;
    let problem = (!ok).then(|| {
        checked
            .problem
            .clone()
            .unwrap_or_else(|| format!("the backup is {}", checked.status.as_str()))
    });
    let drill = Drill {
        at,
        ok,
        duration_ms: crate::human::millis(started.elapsed()),
        problem,
    };
    // The check's verdict and the drill, in one update of the entry and its manifest.
    let recorded = record_with(
        session,
        std::slice::from_ref(&checked),
        Some(&|b: &mut BackupRecord| b.last_drill = Some(drill.clone())),
    )?;
    log(session, env, Some(&record), &drill);
    let backup = recorded.into_iter().next().or(Some(record));
    Ok(Drilled {
        environment: env.name.clone(),
        backup,
        checked: Some(checked),
        drill,
    })
}

fn log(session: &Session, env: &Environment, record: Option<&BackupRecord>, drill: &Drill) {
    audit::log_timed_event(
        session,
        "drill",
        Some(&env.name),
        record.map(|r| r.id.as_str()),
        drill.ok,
        drill.problem.clone(),
        Some(Timing {
            duration_ms: drill.duration_ms,
            bytes: record.map_or(0, |r| r.raw_size_bytes),
        }),
    );
}

/// The newest drill of any of `backups` (an environment's), and the newest that passed.
pub fn last_drills(backups: &[&BackupRecord]) -> (Option<Drill>, Option<Drill>) {
    let drills = backups.iter().filter_map(|b| b.last_drill.as_ref());
    let newest = drills.clone().max_by_key(|d| d.at).cloned();
    let passed = drills.filter(|d| d.ok).max_by_key(|d| d.at).cloned();
    (newest, passed)
}
