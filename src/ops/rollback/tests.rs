//! The rollback engine's steps as library calls on the engine's test kit: an SQLite project in a
//! temporary directory, backups taken by the backup engine, a fixed clock, no binary.

use chrono::Duration;

use super::*;
use crate::error::Hint;
use crate::ops::backup;
use crate::ops::testkit::{Project, at};
use crate::session::Session;

fn sql(p: &Project, sql: &str) {
    rusqlite::Connection::open(p.root().join("db/dev.sqlite3"))
        .unwrap()
        .execute_batch(sql)
        .unwrap();
}

/// A backup of `dev` taken `minutes` after [`at`], labelled and reasoned `reason`.
fn backup_at(p: &Project, minutes: i64, reason: &str) -> BackupRecord {
    let ctx = p.ctx(at() + Duration::minutes(minutes));
    let session = ctx.session().unwrap();
    let env = session.env("dev").unwrap();
    backup::take(&session, env, &backup::Request::automatic(env, reason)).unwrap()
}

/// `f` run in a session an hour after [`at`], on `dev`.
fn later<T>(p: &Project, f: impl FnOnce(&Session, &Environment) -> T) -> T {
    let ctx = p.ctx(at() + Duration::hours(1));
    let session = ctx.session().unwrap();
    let env = session.env("dev").unwrap();
    f(&session, env)
}

/// A migration table as Rails and dbmate keep it, with `versions` applied.
fn migrated(p: &Project, versions: &[&str]) {
    sql(
        p,
        "CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY);",
    );
    for v in versions {
        sql(p, &format!("INSERT INTO schema_migrations VALUES ('{v}');"));
    }
}

#[test]
fn the_default_pick_is_the_newest_pre_migration_backup_not_a_newer_one() {
    let p = Project::new();
    let before = backup_at(&p, 0, "pre-migration");
    let newer = backup_at(&p, 10, "release");
    assert!(newer.timestamp > before.timestamp);

    let (record, why) = later(&p, |s, env| pick(s, env, &Target::Newest)).unwrap();
    assert_eq!(record.id, before.id);
    assert_eq!(why, "the newest valid pre-migration backup");

    // Named, the newer one is what it returns to.
    let named = Target::from_flags(Some(newer.id.clone()), None);
    let (record, why) = later(&p, |s, env| pick(s, env, &named)).unwrap();
    assert_eq!(record.id, newer.id);
    assert_eq!(why, "named with --to");
}

#[test]
fn without_a_pre_migration_backup_the_pick_is_the_newest_that_is_not_a_safety_backup() {
    let p = Project::new();
    let release = backup_at(&p, 0, "release");
    backup_at(&p, 10, "pre-rollback");

    let (record, why) = later(&p, |s, env| pick(s, env, &Target::Newest)).unwrap();
    assert_eq!(record.id, release.id);
    assert_eq!(
        why,
        "the newest valid backup (there is no pre-migration backup)"
    );
}

#[test]
fn with_no_backup_the_rollback_is_refused_and_points_at_migrate() {
    let p = Project::new();
    let e = later(&p, |s, env| pick(s, env, &Target::Newest)).unwrap_err();
    assert_eq!(
        e.message(),
        "environment `dev` has no valid backup to roll back to"
    );
    assert_eq!(
        e.hints(),
        [Hint::Remedy(Remedy::MigrateTakesBackup {
            env: "dev".into()
        })]
    );
    assert!(p.written().is_empty(), "nothing written: {:?}", p.written());
}

#[test]
fn to_migration_picks_the_backup_ending_there_or_says_where_to_look() {
    let p = Project::new();
    migrated(&p, &["001", "002"]);
    let at_two = backup_at(&p, 0, "pre-migration");
    migrated(&p, &["003"]);
    backup_at(&p, 10, "release");

    let target = Target::from_flags(None, Some("002".into()));
    let (record, why) = later(&p, |s, env| pick(s, env, &target)).unwrap();
    assert_eq!(record.id, at_two.id);
    assert_eq!(why, "--to-migration: the newest valid backup ending at 002");

    let target = Target::Migration("009".into());
    let e = later(&p, |s, env| pick(s, env, &target)).unwrap_err();
    assert_eq!(
        e.message(),
        "no valid backup of `dev` ends at migration 009"
    );
    assert_eq!(
        e.hints(),
        [Hint::Remedy(Remedy::ListMigrations { env: "dev".into() })]
    );
}

#[test]
fn a_default_rollback_that_undoes_no_migration_is_refused_unless_named_or_forced() {
    let p = Project::new();
    migrated(&p, &["001", "002"]);
    let record = backup_at(&p, 0, "pre-migration");
    sql(&p, "INSERT INTO notes (body) VALUES ('written since');");

    let undo = later(&p, |s, env| {
        let (_, db) = s.provider(env).unwrap();
        super::undo(env, db.as_ref(), &record)
    })
    .unwrap();
    assert!(undo.undone.is_empty());
    assert_eq!(undo.now.as_ref().unwrap().applied_count, 2);

    let refused = later(&p, |_, env| {
        check_undoes(env, &Target::Newest, false, &undo, &record)
    })
    .unwrap_err();
    assert_eq!(
        refused.message(),
        format!(
            "`dev` has the same migrations as its newest pre-migration backup {}: there is no migration to roll back",
            record.id
        )
    );
    assert_eq!(
        refused.hints(),
        [Hint::Remedy(Remedy::RollBackAnyway {
            env: "dev".into(),
            id: record.id.clone(),
            since: record.timestamp,
        })]
    );
    later(&p, |_, env| {
        check_undoes(env, &Target::Newest, true, &undo, &record).unwrap();
        check_undoes(env, &Target::Id(record.id.clone()), false, &undo, &record).unwrap();
    });

    // A migration applied since is what a rollback undoes.
    migrated(&p, &["003"]);
    let undo = later(&p, |s, env| {
        let (_, db) = s.provider(env).unwrap();
        super::undo(env, db.as_ref(), &record)
    })
    .unwrap();
    assert_eq!(undo.undone, ["003"]);
    later(&p, |_, env| {
        check_undoes(env, &Target::Newest, false, &undo, &record)
    })
    .unwrap();
}

#[test]
fn a_database_just_rolled_back_is_already_restored_until_it_changes() {
    let p = Project::new();
    let record = backup_at(&p, 0, "pre-migration");
    sql(&p, "INSERT INTO notes (body) VALUES ('d');");

    // Not restored from it yet: nothing to say.
    let before = later(&p, |s, env| {
        let (_, db) = s.provider(env).unwrap();
        already_restored(s, env, db.as_ref(), &record)
    });
    assert!(before.unwrap().is_none());

    later(&p, |s, env| {
        let (_, db) = s.provider(env).unwrap();
        let request = crate::ops::restore::Request {
            event: "rollback",
            safety_reason: Some("pre-rollback"),
            terminate_connections: false,
            jobs: None,
            in_place: false,
            method: None,
        };
        let restored = crate::ops::restore::apply(s, env, db.as_ref(), &record, &request).unwrap();
        assert!(state_differs(restored.inspection.migrations.as_ref(), &record).is_none());
    });
    let last = later(&p, |s, env| {
        let (_, db) = s.provider(env).unwrap();
        already_restored(s, env, db.as_ref(), &record)
    })
    .unwrap()
    .expect("restored from it, nothing changed since");
    assert_eq!(last.backup, record.id);
    assert_eq!(last.by, "rollback");
    assert_eq!(last.describe(), "by a rollback");

    // A row written since: no longer as the backup left it, and said so.
    sql(&p, "INSERT INTO notes (body) VALUES ('e');");
    let after = later(&p, |s, env| {
        let (_, db) = s.provider(env).unwrap();
        already_restored(s, env, db.as_ref(), &record)
    });
    assert!(after.unwrap().is_none());
    let warnings: Vec<String> = p
        .seen()
        .into_iter()
        .filter(|s| s.starts_with("warn: "))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with(&format!("warn: `dev` was restored from {} at ", record.id))
            && warnings[0]
                .ends_with("but has changed since (notes 3 → 4): rolling back to it again"),
        "{warnings:?}"
    );
}

#[test]
fn after_the_rollback_a_migration_state_other_than_the_backups_fails_it() {
    let p = Project::new();
    migrated(&p, &["001"]);
    let record = backup_at(&p, 0, "pre-migration");
    assert!(state_differs(record.migrations.as_ref(), &record).is_none());

    let e = state_differs(None, &record).expect("no migration table is not the backup's state");
    assert_eq!(
        e.message(),
        "after the rollback the migration state is no migration table, but the backup recorded 1 migrations applied, last 001"
    );
    assert!(same_state(None, None));
    assert!(!same_state(record.migrations.as_ref(), None));
}
