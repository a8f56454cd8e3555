//! Restores that work, and what a dry run says one would do.

use super::*;

#[test]
fn a_restore_brings_the_data_back_after_a_safety_backup_of_what_it_replaced() {
    let p = Restoring::new();
    let record = p.record.clone();
    let restored = restore(&p, &request(Some("pre-restore"))).unwrap();

    assert_eq!(p.notes(), ["a", "b", "c"]);
    assert_eq!(restored.method.method, RestoreMethod::Swap);
    assert!(restored.diffs.is_empty(), "{:?}", restored.diffs);
    assert_eq!(restored.inspection.tables["notes"].rows, 3);
    let ctx = p.later();
    let session = ctx.session().unwrap();
    assert!(restored.failure(session.env("dev").unwrap()).is_none());

    // The safety backup holds the five rows the restore replaced, and is registered as such.
    let safety = restored.safety.clone().unwrap();
    assert_eq!(safety, "backup-20260301-112030-pre-restore");
    let reg = session.store.load().unwrap();
    let taken = reg.find(&safety).unwrap();
    assert_eq!(taken.reason.as_deref(), Some("pre-restore"));
    assert_eq!(taken.tables["notes"].rows, 5);
    assert!(taken.is_automatic());

    // The history says the restore began after its safety backup, and how it ended.
    assert_eq!(
        p.history()[1..],
        [
            format!("\"backup\" true \"{safety}\" \"pre-restore\""),
            format!(
                "\"restore-started\" true \"{}\" \"safety backup {safety}\"",
                record.id
            ),
            format!("\"restore\" true \"{}\" null", record.id),
        ]
    );
    let seen = p.seen();
    let at = |text: &str| seen.iter().position(|s| s == text);
    let checked = at(&format!("ok: Checksum of {} verified", record.id)).unwrap();
    let staged = at(&format!("ok: Staged and checked {}", record.id)).unwrap();
    let done = at("ok: Restored 1 table, 3 rows; row counts match the manifest").unwrap();
    assert!(checked < staged && staged < done, "{seen:#?}");
    assert!(seen[0].starts_with("detail: Method: swap ("), "{seen:#?}");
    assert!(p.warnings().is_empty(), "{seen:#?}");
    assert_eq!(p.db_files(), ["dev.sqlite3"], "no staging file left");
}

#[test]
fn without_a_safety_backup_the_restore_says_so_and_takes_none() {
    let p = Restoring::new();
    let record = p.record.clone();
    let restored = restore(&p, &request(None)).unwrap();

    assert_eq!(p.notes(), ["a", "b", "c"]);
    assert_eq!(restored.safety, None);
    assert_eq!(
        p.warnings(),
        ["no safety backup taken (--no-safety-backup)"]
    );
    let ctx = p.later();
    let session = ctx.session().unwrap();
    assert_eq!(session.store.load().unwrap().backups.len(), 1);
    assert_eq!(
        p.history()[1..],
        [
            format!("\"restore-started\" true \"{}\" null", record.id),
            format!("\"restore\" true \"{}\" null", record.id),
        ]
    );
    // Differences from the manifest would be undone with nothing: the hint says so.
    let differs = Restored {
        diffs: vec!["notes: 3 → 4 rows".into()],
        ..restored
    };
    let failure = differs.failure(session.env("dev").unwrap()).unwrap();
    assert_eq!(
        failure.hints(),
        [crate::error::Hint::from(
            "the data was replaced; check it before relying on it"
        )]
    );
}

#[test]
fn a_dry_run_previews_the_restore_and_changes_nothing() {
    let p = Restoring::new();
    let record = p.record.clone();
    let registry = p.registry_text();
    let ctx = p.later();
    let session = ctx.session_unchanged().unwrap();
    let env = session.env("dev").unwrap();
    let (chosen, why) = choose(&session, env, "latest").unwrap();
    assert_eq!(chosen.id, record.id);
    assert_eq!(
        why,
        "--from latest: the newest restorable backup of `dev` not taken by a restore or rollback"
    );
    let (_, db) = session.provider(env).unwrap();
    check_kind(env, db.as_ref(), &chosen).unwrap();
    let preview = preview(
        &session,
        env,
        db.as_ref(),
        &chosen,
        why,
        Some("pre-restore"),
        false,
    )
    .unwrap();

    assert_eq!(preview.backup, record.id);
    assert_eq!(preview.backup_environment, "dev");
    assert_eq!(preview.backup_taken_at, at());
    assert_eq!(preview.backup_age_secs, 3600);
    assert_eq!(preview.backup_size_bytes, record.size_bytes);
    assert!(!preview.backup_automatic);
    assert_eq!(preview.database, "dev.sqlite3");
    assert!(preview.database_exists);
    assert_eq!(preview.method, Some(RestoreMethod::Swap));
    assert!(preview.undone.is_empty());
    assert!(!preview.confirmation);
    let safety = preview.safety_backup.as_ref().unwrap();
    assert_eq!(safety.reason, "pre-restore");
    assert_eq!(safety.dir, p.backups().join("dev"));
    assert!(!safety.after_swap, "SQLite's is taken before the swap");
    assert!(safety.space_needed_bytes > 0);
    assert_eq!(
        preview.duration_ms,
        preview.load.duration_ms + safety.estimate.duration_ms
    );
    let method = preview.choice().unwrap();
    assert_eq!(method.method, RestoreMethod::Swap);

    let (preflight, refused) = preflight(db.as_ref(), &chosen, &preview, false).unwrap();
    assert!(refused.is_none(), "{refused:?}");
    assert!(preflight.ok, "{preflight:?}");

    // Nothing was written, restored or logged.
    assert_eq!(p.notes(), ["a", "b", "c", "d", "e"]);
    assert_eq!(p.registry_text(), registry);
    assert_eq!(p.history().len(), 1, "the backup's own event only");
}
