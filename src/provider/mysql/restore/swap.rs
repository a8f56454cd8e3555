//! The swap: the loaded tables moved into the target and the target's own out, in one
//! `RENAME TABLE`, with the checks that must pass before it.

use super::super::objects::{self, Named, Object};
use super::super::{Mysql, ident, literal};
use super::ScratchDb;
use crate::error::{Cause, Error, Hint, Remedy, Result};
use crate::provider::CommitFailed;
use crate::scratch::Purpose;

/// Refuses a restore of `target` while tables of other databases have foreign keys to its tables:
/// `RENAME TABLE` would move those keys to the replaced tables, set aside and then dropped.
fn refuse_foreign_references(my: &Mysql, target: &str) -> Result<()> {
    let rows = my.query_in(
        None,
        &format!(
            "SELECT DISTINCT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) FROM information_schema.KEY_COLUMN_USAGE \
             WHERE REFERENCED_TABLE_SCHEMA = {t} AND TABLE_SCHEMA <> {t} ORDER BY 1",
            t = literal(target)
        ),
    )?;
    let tables: Vec<String> = rows
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect();
    if tables.is_empty() {
        return Ok(());
    }
    Err(Error::tool(format!(
        "tables of other databases have foreign keys to {target}'s tables: {}; a restore would move those keys to the replaced tables; nothing was restored",
        tables.join(", ")
    ))
    .with_hint("drop those foreign keys first (and make them again after the restore), or restore into another database"))
}

/// Checks, in the empty database `old`, that this user may make objects with every DEFINER the
/// target's views, triggers, routines and events have: a probe procedure for each, dropped at
/// once.
fn probe_definers(my: &Mysql, old: &str, target: &str) -> Result<()> {
    let t = literal(target);
    let sql = format!(
        "SELECT DISTINCT DEFINER FROM (\
         SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = {t} \
         UNION SELECT DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {t} \
         UNION SELECT DEFINER FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = {t} \
         UNION SELECT DEFINER FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {t}) d \
         WHERE DEFINER <> CURRENT_USER()"
    );
    let definers: Vec<String> = my
        .query_in(None, &sql)?
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect();
    for definer in definers {
        let Some((user, host)) = definer.rsplit_once('@') else {
            continue;
        };
        let quoted = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"));
        let probe = format!(
            "CREATE DEFINER = {}@{} PROCEDURE {}.`__faber_definer_probe`() BEGIN END; \
             DROP PROCEDURE {}.`__faber_definer_probe`",
            quoted(user),
            quoted(host),
            ident(old),
            ident(old)
        );
        my.query_in(None, &probe).map_err(|e| {
            Error::tool(format!(
                "views, triggers, routines or events of {target} have the DEFINER {definer}, which this user may not name: a restore could not set them aside with the replaced tables; nothing was restored"
            ))
            .caused_by(Cause::in_one_line(e))
            .with_hint("restore as a user with SET USER (or SUPER), or as that definer")
        })?;
    }
    Ok(())
}

/// How to finish a restore left incomplete, and where the tables it replaced are.
pub(super) fn finish_hint(old: Option<&str>) -> Hint {
    match old {
        Some(old) => Remedy::FinishRestore {
            kept_in: old.to_string(),
        }
        .into(),
        None => "restore again to finish".into(),
    }
}

/// The database that holds the target's replaced tables (when the target existed), the routines
/// and events of the target still to drop, and every view, trigger, routine and event the target
/// had, to set aside with its tables.
pub(super) type Swapped<'a> = (Option<ScratchDb<'a>>, Vec<Named>, Vec<Object>);

/// Moves the loaded tables of `scratch` into `target` and the target's own out to a database of
/// their own, all in one `RENAME TABLE`, after dropping the target's views and triggers (a view
/// may have the name of a table coming in; a table with triggers cannot move). A swap that
/// fails leaves the target as it was, those views and triggers made again — or says that it is
/// incomplete.
pub(super) fn swap_in<'a>(
    my: &'a Mysql,
    scratch: &str,
    loaded: &[String],
    target: &str,
    existed: bool,
) -> Result<Swapped<'a>, CommitFailed> {
    refuse_foreign_references(my, target)?;
    // Read before they are dropped: to make them again if the swap fails, and to set them aside
    // with the replaced tables.
    let replaced = objects::read(my, target)?;
    let (in_the_way, leftover): (Vec<Object>, Vec<Object>) = replaced
        .iter()
        .cloned()
        .partition(|o| matches!(o.named.kind, "VIEW" | "TRIGGER"));
    let leftover: Vec<Named> = leftover.into_iter().map(|o| o.named).collect();
    let old_tables = my.tables_of(target)?;
    let new_tables = my.tables_of(scratch)?;
    // The scratch database must hold what was loaded and checked: one that lost tables since
    // (dropped by hand, or by a run that took it for its own) would empty the target.
    if new_tables != loaded {
        return Err(Error::tool(format!(
            "the database the backup was loaded into, {scratch}, no longer holds the tables it was loaded with; nothing was restored"
        ))
        .with_hint("restore again")
        .into());
    }
    let old = if existed {
        let old = ScratchDb::create(my, Purpose::Replaced)?;
        // Every DEFINER of the replaced objects must be one this user may name, or they could
        // not be set aside after the swap: found out now, while nothing has changed.
        probe_definers(my, &old.name, target)?;
        // Their definitions are kept on disk before any is dropped.
        if let Some(claim) = &old.claim {
            claim.attach(&objects::create_script(&replaced)).map_err(|e| {
                Error::tool("cannot keep the definitions of the views, triggers, routines and events to be replaced")
                    .caused_by(e)
            })?;
        }
        Some(old)
    } else {
        None
    };
    let mut moves: Vec<String> = Vec::new();
    if let Some(old) = &old {
        moves.extend(old_tables.iter().map(|t| {
            format!(
                "{}.{} TO {}.{}",
                ident(target),
                ident(t),
                ident(&old.name),
                ident(t)
            )
        }));
    }
    moves.extend(new_tables.iter().map(|t| {
        format!(
            "{}.{} TO {}.{}",
            ident(scratch),
            ident(t),
            ident(target),
            ident(t)
        )
    }));
    // A session that holds a table of the target without showing in the process list (another
    // user's, one using no database) would block the swap for a day: 30 s, then exit 7.
    let mut script = format!(
        "SET SESSION lock_wait_timeout = 30;\n{}",
        objects::drop_script(target, in_the_way.iter().map(|o| &o.named))
    );
    if !moves.is_empty() {
        script.push_str(&format!("RENAME TABLE {};\n", moves.join(", ")));
    }
    let Err(e) = my.run_script(None, script.as_bytes()) else {
        return Ok((old, leftover, replaced));
    };
    // The tables moved all at once or not at all: only the views and triggers dropped before
    // may be gone.
    let moved = match (new_tables.is_empty(), old_tables.is_empty()) {
        (false, _) => my.tables_of(scratch).map(|t| t.is_empty()),
        (true, false) => my.tables_of(target).map(|t| t.is_empty()),
        (true, true) => Ok(false),
    };
    let undone = match moved {
        // The failure was in the report of the swap, not in the swap.
        Ok(true) => return Ok((old, leftover, replaced)),
        Ok(false) => objects::present(my, target).and_then(|present| {
            let gone: Vec<Object> = in_the_way
                .into_iter()
                .filter(|o| !present.contains(&o.named))
                .collect();
            my.run_script(Some(target), &objects::create_script(&gone))
        }),
        Err(e) => Err(e),
    };
    match undone {
        Ok(()) => Err(Error::new(
            e.kind(),
            format!("the tables of {target} could not be swapped; nothing was restored"),
        )
        .with_hints(e.hints())
        .or_hint("fix the cause and restore again")
        .caused_by(Cause::in_one_line(e))
        .into()),
        Err(undo) => {
            let kept = old.map(ScratchDb::keep);
            Err(CommitFailed::incomplete(
                Error::new(
                    e.kind(),
                    format!("swapping the tables of {target} failed, and its views and triggers could not all be made again; the database is incomplete"),
                )
                .caused_by(Cause::in_one_line(e))
                .caused_by(Cause::in_one_line(undo))
                .with_hint(finish_hint(kept.as_deref())),
            ))
        }
    }
}
