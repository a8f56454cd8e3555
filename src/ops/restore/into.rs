//! `restore ENV --into NAME`: the whole backup loaded into a new database on the environment's
//! server (SQLite: a new file), beside the environment's own, which is left alone. Nothing is
//! replaced, so no safety backup is taken; a database or file that exists by that name is never
//! touched.

use std::time::Instant;

use super::verdict::Verdict;
use super::{checksum, stage};
use crate::audit;
use crate::config::Environment;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::ops::verify;
use sha2::{Digest, Sha256};

use crate::provider::{GlobalsApplied, Inspection, Provider, ProviderKind};
use crate::registry::{BackupRecord, Status, Timing};
use crate::session::Session;

/// What a restore `--into` made.
#[derive(Debug)]
pub struct Made {
    /// The new database's name (SQLite: the new file's absolute path).
    pub name: String,
    /// What it holds, counted.
    pub inspection: Inspection,
    /// Row counts that differ from the backup's manifest.
    pub diffs: Vec<String>,
    /// The backup was marked `mismatch`: its counts were known to differ.
    pub mismatch_known: bool,
    /// The roles and tablespaces made first (`--with-globals`).
    pub globals: Option<GlobalsApplied>,
}

impl Made {
    /// The failure to report when the new database differs from the manifest (unless the
    /// backup was known to, and named anyway): it is left as it is. `shown` is its name as the
    /// output writes it.
    pub fn failure(&self, shown: &str) -> Option<Error> {
        super::differs(
            "the new database differs",
            &self.diffs,
            self.mismatch_known,
            || format!("{shown} was left as it is, for you to look into or drop").into(),
        )
    }
}

/// The name `--into` gives, as the new database will have it: an SQLite path made absolute
/// (from the current directory, as a path argument is), and never one inside faber-db's own
/// backup directory.
pub fn target_name(session: &Session, db: &dyn Provider, name: &str) -> Result<String> {
    if db.kind() != ProviderKind::Sqlite {
        return Ok(name.to_string());
    }
    let path = std::path::absolute(name).map_err(|e| {
        Error::config(format!("--into {name} cannot be resolved as a path")).caused_by(e)
    })?;
    if name.contains(['?', '#']) {
        return Err(Error::config(format!(
            "--into {name}: an SQLite URL ends at `?` or `#`, so the new file could not be named by one"
        ))
        .with_hint("name a path without `?` or `#`"));
    }
    let store = fsutil::resolved(session.store.dir());
    if fsutil::resolved(&path).starts_with(&store) {
        return Err(Error::config(format!(
            "--into {} is inside the backup directory, which holds faber-db's own files only",
            path.display()
        ))
        .with_hint("name a file outside the backup directory"));
    }
    path.to_str().map(str::to_string).ok_or_else(|| {
        Error::config(format!("--into {} is not UTF-8", path.display()))
            .with_hint("name a path in UTF-8")
    })
}

/// Loads `record` into `name` (see [`target_name`]) on `db`'s server — its checksum checked first,
/// or while the new database is made (see `checksum::loaded`) — then compares the new
/// database's row counts with the manifest.
pub fn into(
    session: &Session,
    env: &Environment,
    db: &dyn Provider,
    record: &BackupRecord,
    name: &str,
    jobs: Option<u32>,
    with_globals: bool,
) -> Result<Made> {
    let _signals = crate::interrupt::guard();
    let started = Instant::now();
    let mut globals = None;
    let loaded = (|| {
        let migrations_table = env.migrations_table.as_deref();
        let mut load = |verdict: Option<&Verdict>| {
            stage::load(session, env, record, jobs, verdict, &mut |source, jobs| {
                db.restore_into(name, record.format, source, migrations_table, jobs)
            })
        };
        if with_globals {
            // Roles are made on the server before the load: only from a backup known good.
            let _held = checksum::fetched_and_checked(session, record)?;
            globals = Some(apply_globals(session, db, record)?);
            return load(None);
        }
        // The new database is made while the file is hashed; nothing is loaded into it before
        // the file matched, and it is dropped if it did not.
        checksum::loaded(session, record, &mut load).map(|(inspection, _held)| inspection)
    })();
    let log = |ok: bool, detail: String, timing: Option<Timing>| {
        audit::log_timed_event(
            session,
            "restore-into",
            Some(&env.name),
            Some(&record.id),
            ok,
            Some(detail),
            timing,
        );
    };
    let inspection = match loaded {
        Ok(i) => i,
        Err(e) => {
            log(false, format!("into {name}: {}", e.one_line()), None);
            // A signal stops the load; what the tool then says is not about the backup.
            if crate::interrupt::happened() {
                return Err(Error::aborted(format!(
                    "interrupted: the restore into {name} was stopped, and {name} was not made"
                ))
                .caused_by(e.one_line())
                .with_hint("run it again when ready"));
            }
            return Err(e);
        }
    };
    let diffs = verify::compare_tables(record.provider, &record.tables, &inspection.tables);
    log(
        true,
        format!("into {name}"),
        Some(Timing {
            duration_ms: crate::human::millis(started.elapsed()),
            bytes: record.raw_size_bytes,
        }),
    );
    Ok(Made {
        name: name.to_string(),
        inspection,
        diffs,
        mismatch_known: record.status == Status::Mismatch,
        globals,
    })
}

/// Makes the roles and tablespaces `record`'s manifest keeps (`include_globals`) that `db`'s
/// server lacks, once their SHA-256 is checked (decrypted first when sealed).
fn apply_globals(
    session: &Session,
    db: &dyn Provider,
    record: &BackupRecord,
) -> Result<GlobalsApplied> {
    let manifest = session.store.locate(record)?.manifest;
    let Some(globals) = crate::registry::recorded_at(&manifest).globals else {
        return Err(Error::config(format!(
            "backup {} keeps no roles or tablespaces (include_globals was off when it was taken)",
            record.id
        ))
        .with_hint("restore without --with-globals, making the roles it needs by hand first"));
    };
    let script = if globals.sealed {
        crate::crypt::unseal(&session.config, &session.vars, &globals.script)?
    } else {
        globals.script.into_bytes()
    };
    if hex::encode(Sha256::digest(&script)) != globals.sha256 {
        return Err(Error::verification(format!(
            "the roles and tablespaces in the manifest of {} do not match their SHA-256; nothing was made",
            record.id
        ))
        .with_hint("the manifest was changed since the backup was taken; restore without --with-globals"));
    }
    let script = String::from_utf8(script)
        .map_err(|_| Error::verification("the backup's roles are not UTF-8"))?;
    let applied = db.apply_globals(&script)?;
    session.events().ok(&format!(
        "Roles and tablespaces: made {}; the server's own kept: {}",
        if applied.made.is_empty() {
            "none".to_string()
        } else {
            applied.made.join(", ")
        },
        if applied.kept.is_empty() {
            "none".to_string()
        } else {
            applied.kept.join(", ")
        }
    ));
    Ok(applied)
}
