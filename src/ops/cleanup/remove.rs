//! A cleanup's removals, once confirmed.

use std::collections::BTreeSet;

use super::{Cleaned, Request, kept_for, left_behind, reasons};
use crate::error::Result;
use crate::keep::{self, Kept, Removal, Selection};
use crate::removal::{self, KeptWhy};
use crate::session::Session;

/// Removes what `confirmed` (the selection shown and confirmed) removes and a selection made
/// again under the registry lock removes too — so that what changed meanwhile is judged too (a
/// backup that became the newest valid one stays), and never a backup the confirmed selection
/// did not name. Each backup is reported as it goes; `problems` are what [`super::finish_pending`]
/// left, reported with the rest.
pub fn remove(
    session: &Session,
    request: Request<'_>,
    confirmed: &Selection,
    mut problems: Vec<String>,
) -> Result<Cleaned> {
    let events = session.events();
    crate::testpoint::pause("cleanup:before-lock");
    let confirmed: BTreeSet<&str> = confirmed.removed.iter().map(|r| r.id.as_str()).collect();
    let mut kept: Vec<Kept> = Vec::new();
    let outcome = removal::remove(&session.store, |reg| {
        let mut selection = keep::select(reg, request.env, request.rule, session.ctx.now);
        let (chosen, unconfirmed): (Vec<_>, Vec<_>) = std::mem::take(&mut selection.removed)
            .into_iter()
            .partition(|r| confirmed.contains(r.id.as_str()));
        selection.kept.extend(
            unconfirmed
                .iter()
                .map(|r| kept_for(r, keep::Reason::NotConfirmed)),
        );
        kept = selection.kept;
        Ok(chosen.into_iter().map(|r| r.id).collect())
    })?;
    // Backups the removal left alone: read by another run (kept for the next cleanup), or with
    // a refused path or no tombstone (a failure: doctor tells more).
    let mut refused = Vec::new();
    for (b, why, e) in outcome.kept {
        let reason = match why {
            KeptWhy::InUse => keep::Reason::InUse,
            KeptWhy::PathRefused => keep::Reason::PathRefused,
            KeptWhy::Unavailable => keep::Reason::Unavailable,
        };
        let text = format!("kept {} {}: {}", b.environment, b.id, e.one_line());
        if why == KeptWhy::InUse {
            events.warn(&text);
        } else {
            events.fail(&text);
            refused.push(e);
        }
        kept.push(kept_for(&Removal::of(&b), reason));
    }
    for k in &kept {
        events.detail(&format!("kept {} {} ({})", k.environment, k.id, reasons(k)));
    }

    let mut freed = 0;
    let mut done = Vec::new();
    let mut offsite = Vec::new();
    for r in outcome.removed {
        let b = &r.record;
        let left: Vec<&String> = outcome
            .problems
            .iter()
            .filter(|(id, _)| *id == b.id)
            .map(|(_, p)| p)
            .collect();
        let ok = left.is_empty();
        if ok {
            freed += b.size_bytes;
            events.ok(&format!(
                "Removed {} {} ({})",
                b.environment,
                b.id,
                crate::human::size(b.size_bytes)
            ));
        } else {
            events.fail(&format!(
                "Removed {} {} from the registry, but not all its files",
                b.environment, b.id
            ));
            problems.extend(left.into_iter().cloned());
        }
        crate::audit::log_event(
            session,
            "cleanup",
            Some(&b.environment),
            Some(&b.id),
            ok,
            None,
        );
        done.push(Removal::of(b));
        offsite.extend(r.offsite);
    }
    // Off-site copies go last: a failure leaves the backup's tombstone, and the next cleanup or
    // delete tries again.
    problems.extend(crate::offsite::remove_copies(session, offsite));
    Ok(Cleaned {
        kept,
        removed: done,
        freed_bytes: freed,
        failure: left_behind(&problems).or_else(|| refused.into_iter().next()),
    })
}
