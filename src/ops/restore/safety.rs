//! The safety backup of what a restore replaces: taken before the database is touched, or,
//! where the swap sets the replaced data aside (PostgreSQL, MySQL), of that data after the swap.

use super::apply::Run;
use crate::error::{Error, Remedy, Result};
use crate::ops::backup;
use crate::provider::Replaced;

/// Takes the safety backup of the current database, unless none is asked for. A database that
/// does not exist yet has nothing to save.
pub(super) fn before(run: &Run) -> Result<Option<String>> {
    let events = run.session.events();
    let Some(reason) = run.request.safety_reason else {
        events.warn("no safety backup taken (--no-safety-backup)");
        return Ok(None);
    };
    if !run.db.exists()? {
        events.warn(&format!(
            "no safety backup: database {} does not exist yet",
            run.db.database_name()
        ));
        return Ok(None);
    }
    let record = backup::take_automatic(run.session, run.env, reason).map_err(|e| {
        let msg = format!(
            "the safety backup failed, so nothing was restored: {}",
            e.message()
        );
        let mut err = Error::new(e.kind(), msg);
        for c in e.causes() {
            err = err.caused_by(c);
        }
        err.with_hint("fix the cause, or pass --no-safety-backup if the current data may be lost")
    })?;
    Ok(Some(record.id))
}

/// Takes the safety backup of the data the swap set aside, then drops that data; without a
/// safety backup, just drops it. A safety backup that fails leaves the data where it is, and
/// the error says where.
pub(super) fn of_replaced(run: &Run, replaced: Box<dyn Replaced>) -> Result<Option<String>> {
    let events = run.session.events();
    let Some(reason) = run.request.safety_reason else {
        if let Err(e) = replaced.discard() {
            events.warn(&e.one_line());
        }
        return Ok(None);
    };
    let where_ = replaced.describe();
    let record =
        backup::take_replaced(run.session, run.env, reason, replaced.as_ref()).map_err(|e| {
            let mut err = Error::new(
                e.kind(),
                format!(
                    "the {} is in place, but the safety backup of the data it replaced failed: {}",
                    run.request.event,
                    e.message()
                ),
            );
            for c in e.causes() {
                err = err.caused_by(c);
            }
            err.with_hint(Remedy::BackUpReplacedByHand {
                kept_in: where_.clone(),
            })
        })?;
    let dropped = replaced.discard();
    events.ok(&format!(
        "Safety backup {} holds the data as it was at the swap ({where_}, which no session could \
         reach{})",
        record.id,
        if dropped.is_ok() { ", now dropped" } else { "" }
    ));
    if let Err(e) = dropped {
        events.warn(&e.one_line());
    }
    Ok(Some(record.id))
}
