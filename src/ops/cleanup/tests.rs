//! Cleanup and delete as library calls on the engine's test kit: backups of an SQLite database
//! taken a day apart, removed by the rules of [`crate::keep`], with no binary.

use chrono::Duration;

use super::*;
use crate::keep::{Policy, Reason};
use crate::ops::backup;
use crate::ops::testkit::{Project, at};
use crate::registry::BackupRecord;

/// A backup of `dev` taken `days` after [`at`], labelled `label` (asked for, not automatic).
fn backup_at(p: &Project, days: i64, label: &str) -> BackupRecord {
    let ctx = p.ctx(at() + Duration::days(days));
    let session = ctx.session().unwrap();
    let env = session.env("dev").unwrap();
    backup::take(&session, env, &backup::Request::automatic(env, label)).unwrap()
}

/// Three backups of `dev`, a day apart, oldest first.
fn three(p: &Project) -> Vec<BackupRecord> {
    vec![
        backup_at(p, 0, "one"),
        backup_at(p, 1, "two"),
        backup_at(p, 2, "three"),
    ]
}

fn keep_last(n: usize) -> Rule {
    Rule::Keep(Policy {
        last: n,
        ..Policy::default()
    })
}

fn request(rule: Rule) -> Request<'static> {
    Request {
        env: Some("dev"),
        rule,
    }
}

/// The IDs in the registry, as the registry file has them now.
fn registered(p: &Project) -> Vec<String> {
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let reg = session.store.load().unwrap();
    let mut ids: Vec<String> = reg
        .newest_first(None)
        .into_iter()
        .map(|b| b.id.clone())
        .collect();
    ids.sort();
    ids
}

#[test]
fn a_cleanup_removes_what_the_policy_says_and_keeps_the_rest() {
    let p = Project::new();
    let b = three(&p);
    let ctx = p.ctx(at() + Duration::days(3));
    let session = ctx.session().unwrap();

    let selection = select(&session, request(keep_last(1))).unwrap();
    let removed: Vec<&str> = selection.removed.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(removed, [b[1].id.as_str(), b[0].id.as_str()]);
    assert_eq!(selection.kept.len(), 1);
    assert_eq!(selection.kept[0].id, b[2].id);
    assert_eq!(
        reasons(&selection.kept[0]),
        "last 1, newest valid, restore latest"
    );

    let cleaned = remove(&session, request(keep_last(1)), &selection, Vec::new()).unwrap();
    assert!(cleaned.failure.is_none(), "{:?}", cleaned.failure);
    assert_eq!(cleaned.removed.len(), 2);
    assert_eq!(cleaned.freed_bytes, b[0].size_bytes + b[1].size_bytes);
    assert_eq!(registered(&p), [b[2].id.clone()]);
    // Their files are gone; the one kept still has its own.
    let files = p.written().join(" ");
    assert!(
        !files.contains(&b[0].id) && !files.contains(&b[1].id),
        "{files}"
    );
    assert!(files.contains(&b[2].id), "{files}");
    let cleanups = p
        .history()
        .iter()
        .filter(|h| h.starts_with("\"cleanup\" true"))
        .count();
    assert_eq!(cleanups, 2);
    let seen = p.seen();
    assert!(
        seen.contains(&format!(
            "ok: Removed dev {} ({})",
            b[0].id,
            crate::human::size(b[0].size_bytes)
        )),
        "{seen:#?}"
    );
}

#[test]
fn whatever_the_rule_the_newest_valid_backup_stays() {
    let p = Project::new();
    let b = three(&p);
    let ctx = p.ctx(at() + Duration::days(30));
    let session = ctx.session().unwrap();
    let everything = request(Rule::OlderThan(Duration::zero()));

    let selection = select(&session, everything).unwrap();
    assert_eq!(selection.removed.len(), 2);
    assert_eq!(selection.kept[0].id, b[2].id);
    assert_eq!(
        selection.kept[0].reasons,
        [Reason::NewestValid, Reason::RestoreLatest]
    );
    remove(&session, everything, &selection, Vec::new()).unwrap();
    assert_eq!(registered(&p), [b[2].id.clone()]);
}

#[test]
fn a_backup_the_confirmed_selection_did_not_name_is_not_removed() {
    let p = Project::new();
    let b = three(&p);
    let ctx = p.ctx(at() + Duration::days(5));
    let session = ctx.session().unwrap();
    let selection = select(&session, request(keep_last(1))).unwrap();
    assert_eq!(selection.removed.len(), 2);

    // A newer backup is taken between the confirmation and the removal: under the lock, the
    // rule would now remove the one that was the newest too, but it was not confirmed.
    let newest = backup_at(&p, 4, "four");
    let cleaned = remove(&session, request(keep_last(1)), &selection, Vec::new()).unwrap();
    assert_eq!(cleaned.removed.len(), 2);
    let third = cleaned.kept.iter().find(|k| k.id == b[2].id).unwrap();
    assert_eq!(third.reasons, [Reason::NotConfirmed]);
    let mut left = vec![b[2].id.clone(), newest.id.clone()];
    left.sort();
    assert_eq!(registered(&p), left);
}

#[test]
fn nothing_is_removed_when_the_selection_removes_nothing() {
    let p = Project::new();
    three(&p);
    let ctx = p.ctx(at() + Duration::days(3));
    let session = ctx.session().unwrap();
    let selection = select(&session, request(keep_last(3))).unwrap();
    assert!(selection.removed.is_empty());
    assert_eq!(selection.freed_bytes(), 0);
    assert!(left_behind(&[]).is_none());
    let e = left_behind(&["x: busy".to_string()]).unwrap();
    assert_eq!(e.message(), "some files could not be removed: x: busy");
    assert_eq!(
        e.hints(),
        [crate::error::Hint::Remedy(Remedy::CleanupLeftFiles)]
    );
}

#[test]
fn a_delete_refuses_the_last_valid_backup_unless_forced_then_removes_it() {
    let p = Project::new();
    let only = backup_at(&p, 0, "only");
    let ctx = p.ctx(at() + Duration::days(1));
    let session = ctx.session().unwrap();

    let e = prepare_delete(&session, &only.id, false).unwrap_err();
    assert_eq!(
        e.message(),
        format!("{} is the only valid backup of `dev`", only.id)
    );
    assert_eq!(registered(&p), std::slice::from_ref(&only.id));

    let record = prepare_delete(&session, &only.id, true).unwrap();
    let deleted = delete(&session, &record, true).unwrap();
    assert!(deleted.failure.is_none());
    assert_eq!(deleted.record.id, only.id);
    assert!(registered(&p).is_empty());
    assert!(
        !p.written().join(" ").contains(&only.id),
        "{:?}",
        p.written()
    );
    assert!(p.history().last().unwrap().starts_with("\"delete\" true"));
}
