//! The in-place method (see [`crate::provider::method`]): the safety backup first, then the
//! database's own objects replaced by the backup's. On PostgreSQL that is one transaction, and a
//! failure changes nothing; elsewhere a failure midway restores the safety backup the same way.

use super::apply::Run;
use super::stage::open_verified;
use super::{Restored, compare, safety};
use crate::error::{Error, Remedy, Result};
use crate::format::Format;
use crate::human;
use crate::ops::verify;
use crate::provider::method::MethodChoice;
use crate::provider::{CommitFailed, Committed, InPlace, Source, Tables};
use crate::registry::{BackupRecord, Status};

/// Restores the run's backup in place (`choice` said why), with its safety backup first, and
/// compares the result with the manifest.
pub(super) fn restore(run: &Run, choice: MethodChoice) -> Result<Restored> {
    let (session, db, record) = (run.session, run.db, run.record);
    let events = session.events();
    for stale in db
        .prepare_restore(record.raw_size_bytes)
        .inspect_err(|e| run.log(false, Some(e.one_line()), None))?
    {
        events.warn(&format!(
            "removed {}, left by an interrupted restore",
            session.ctx.show(&stale)
        ));
    }
    // Nothing is set aside in place: the safety backup is of the database as it is now, before
    // anything changes. Other sessions go first (or stop the restore, before any backup): a
    // write made after the backup began and before the load would be in neither.
    crate::testpoint::pause("restore:in-place-before-safety");
    db.clear_sessions(run.request.terminate_connections)
        .inspect_err(|e| run.log(false, Some(e.one_line()), None))?;
    let safety_started = std::time::Instant::now();
    let safety = safety::before(run)?;
    let safety_took = safety_started.elapsed();
    crate::interrupt::check().map_err(|e| Error::aborted("interrupted").caused_by(e))?;
    let atomic = db.in_place_is_atomic();
    // A load in one transaction changes nothing until it commits: a signal before then stops
    // it with the database as it was. Elsewhere the database changes from the first drop on.
    if !atomic {
        run.committing.set(true);
    }
    run.log_started(Some(match &safety {
        Some(s) => format!("in place; safety backup {s}"),
        None => "in place".to_string(),
    }));
    crate::testpoint::pause("restore:before-commit");
    let expected = (record.status != Status::Mismatch).then_some(&record.tables);
    let held = (!atomic).then(crate::interrupt::hold);
    let result = load(run, record, expected);
    drop(held);
    let committed = match result {
        Ok(c) => c,
        Err(f) => return Err(failed(run, safety.as_deref(), f)),
    };
    run.log(
        true,
        Some("in place".to_string()),
        Some(run.timing(safety_took)),
    );
    events.ok(&format!("Restored {} in place", record.id));
    if !committed.kept.is_empty() {
        events.warn(&format!(
            "kept {} of other roles, which the backup does not hold and an in-place restore does not drop: {}",
            human::count(committed.kept.len() as u64, "table"),
            committed.kept.join(", ")
        ));
    }
    let mut restored = compare::compared(session, record, committed.inspection, safety, choice);
    restored.kept = committed.kept;
    Ok(restored)
}

/// The error to report when the load failed (`f`), having put the safety backup back where the
/// database was left incomplete; written to the audit log.
fn failed(run: &Run, safety: Option<&str>, f: CommitFailed) -> Error {
    // Left incomplete (MySQL's load failed midway with nothing put back): the error and the
    // history say so — `status` reports it until a restore succeeds.
    let (error, incomplete) = match (safety, f.incomplete) {
        (Some(s), true) => put_back_safety(run, s, f.error),
        (Some(s), false) => (
            f.error.add_hint(format!(
                "safety backup {s} holds the database as it was before this {}",
                run.request.event
            )),
            false,
        ),
        (None, true) => (
            f.error.add_hint(Remedy::RestoreInPlaceToFinish {
                env: run.env.name.clone(),
                id: run.record.id.clone(),
            }),
            true,
        ),
        (None, false) => (f.error, false),
    };
    let detail = if incomplete {
        format!("incomplete: {}", error.one_line())
    } else {
        error.one_line()
    };
    run.log(false, Some(detail), None);
    error
}

/// After an in-place restore failed midway (`error`), restores the safety backup `safety` in
/// place; returns the error to report, saying how that went, and whether the database is still
/// incomplete (the safety backup could not be put back either).
fn put_back_safety(run: &Run, safety: &str, error: Error) -> (Error, bool) {
    let events = run.session.events();
    let event = run.request.event;
    events.warn(&format!(
        "the {event} failed midway ({}); restoring safety backup {safety} in place",
        error.one_line()
    ));
    let put_back = run.session.store.load().and_then(|reg| {
        let record = verify::find(&reg, safety)?.clone();
        load(run, &record, None).map_err(|f| f.error)
    });
    let with_causes = |message: String| {
        error
            .causes()
            .iter()
            .fold(Error::new(error.kind(), message), |e, c| e.caused_by(c))
    };
    match put_back {
        Ok(_) => {
            events.ok(&format!(
                "Safety backup {safety} restored: the database is as it was"
            ));
            let error = with_causes(format!(
                "{}; safety backup {safety} was restored in place, so the database is as it was before this {event}",
                error.message(),
            ))
            .with_hints(error.hints())
            .or_hint("fix the cause and restore again");
            (error, false)
        }
        Err(again) => {
            let error = with_causes(error.message().to_string())
                .caused_by(format!(
                    "restoring safety backup {safety} failed too: {}",
                    again.one_line()
                ))
                .with_hint(Remedy::RestoreSafetyInPlace {
                    env: run.env.name.clone(),
                    safety: safety.to_string(),
                });
            (error, true)
        }
    }
}

/// Loads `record` into the run's database in place, from its file as checked (decoded and
/// decrypted as it streams, its SHA-256 checked once more).
fn load(
    run: &Run,
    record: &BackupRecord,
    expected: Option<&Tables>,
) -> Result<Committed, CommitFailed> {
    let session = run.session;
    let path = session.store.locate(record)?.data;
    let how = InPlace {
        terminate_connections: run.request.terminate_connections,
        expected,
    };
    let migrations_table = run.env.migrations_table.as_deref();
    if record.format == Format::Directory {
        return run
            .db
            .restore_in_place(record.format, Source::Path(&path), migrations_table, &how);
    }
    let decryption = crate::crypt::Decryption::of(&session.config, &session.vars, record)?;
    let mut decoder = open_verified(&path, record, decryption.as_ref())?;
    let bar = session.events().bar(record.raw_size_bytes, "restore");
    let mut source = crate::progress::Reader::new(&mut decoder, bar.as_ref());
    let result = run.db.restore_in_place(
        record.format,
        Source::Stream(&mut source),
        migrations_table,
        &how,
    );
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    result
}
