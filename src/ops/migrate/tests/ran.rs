//! Runs of the migrate command: one that works, one that fails and is undone with the
//! pre-migration backup, one that fails with nothing restored and what the next run makes of
//! it.

use super::*;
use crate::error::{Hint, Kind, Remedy};

/// Applies `002_drop_notes` as a migration tool would, saying so on stdout.
const APPLIES: &str = "echo applying 002; sqlite3 db/dev.sqlite3 \
     \"DROP TABLE notes; INSERT INTO schema_migrations VALUES ('002');\"";

/// Drops the table, then fails as a migration tool whose second statement failed does.
const FAILS: &str =
    "sqlite3 db/dev.sqlite3 'DROP TABLE notes'; echo 'no such column: x' >&2; exit 3";

#[test]
fn a_migration_that_works_is_backed_up_first_and_its_state_recorded() {
    let p = Migrating::new(APPLIES, "");
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let (prepared, ran, output) = migrate(&session, &request()).unwrap();

    assert!(prepared.take_backup);
    assert_eq!(output, ["applying 002"]);
    let Outcome::Migrated { after } = ran.outcome else {
        panic!("{:?}", ran.outcome);
    };
    let after = after.unwrap();
    assert_eq!(after.applied_count, 2);
    assert_eq!(after.last_migration.as_deref(), Some("002"));
    assert_eq!(p.tables(), ["schema_migrations"]);

    // The pre-migration backup holds the table the migration dropped.
    let backup = ran.backup.unwrap();
    assert_eq!(backup.reason.as_deref(), Some("pre-migration"));
    assert_eq!(backup.tables["notes"].rows, 3);
    assert_eq!(
        p.history(),
        [
            format!("\"backup\" true \"{}\" \"pre-migration\"", backup.id),
            format!(
                "\"migrate-started\" true \"{}\" {}",
                backup.id,
                serde_json::to_string(APPLIES).unwrap()
            ),
            format!("\"migrate\" true \"{}\" null", backup.id),
        ]
    );
    assert!(
        p.seen().contains(&format!("line: Running: {APPLIES}")),
        "{:#?}",
        p.seen()
    );
}

#[test]
fn a_failed_migration_is_undone_with_the_pre_migration_backup() {
    let p = Migrating::new(FAILS, "rollback_on_failure = true");
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let (_, ran, output) = migrate(&session, &request()).unwrap();

    assert_eq!(output, ["no such column: x"]);
    let backup = ran.backup.unwrap();
    let Outcome::Failed(failure) = ran.outcome else {
        panic!("{:?}", ran.outcome);
    };
    assert!(!failure.interrupted);
    assert_eq!(failure.output_tail, ["no such column: x"]);
    assert_eq!(failure.error.kind(), Kind::Migration);
    assert_eq!(
        failure.error.message(),
        format!("the migration failed: `{FAILS}` exited with 3")
    );
    let Rollback::Restored { matches, after } = failure.rollback else {
        panic!("{:?}", failure.rollback);
    };
    assert!(matches);
    assert_eq!(after.unwrap().applied_count, 1);
    // The dropped table is back, with its rows.
    assert_eq!(p.tables(), ["notes", "schema_migrations"]);
    let safety = "backup-20260301-102030-pre-rollback";
    assert_eq!(
        failure.error.hints(),
        [Hint::Text(format!(
            "the pre-migration backup {} was restored and matches it; the failed attempt is kept as {safety}",
            backup.id
        ))]
    );
    assert!(
        p.warnings()
            .contains(&format!("restoring the pre-migration backup {}", backup.id)),
        "{:#?}",
        p.seen()
    );
    let events: Vec<String> = p
        .history()
        .iter()
        .map(|h| h.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        events,
        [
            "\"backup\" true",
            "\"migrate-started\" true",
            "\"migrate\" false",
            "\"backup\" true",
            "\"rollback-started\" true",
            "\"rollback\" true",
        ]
    );
}

#[test]
fn a_failure_left_as_it_is_says_so_and_stops_the_next_run_unless_resumed() {
    let p = Migrating::new(FAILS, "rollback_on_failure = false");
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let (_, ran, _) = migrate(&session, &request()).unwrap();

    let backup = ran.backup.unwrap();
    let Outcome::Failed(failure) = ran.outcome else {
        panic!("{:?}", ran.outcome);
    };
    assert!(matches!(failure.rollback, Rollback::NotTried));
    assert_eq!(
        failure.error.hints(),
        [Hint::Remedy(Remedy::RestoreIfNeeded)]
    );
    assert_eq!(p.tables(), ["schema_migrations"], "left as it failed");

    // The next run is refused: a new backup would be of the half-migrated database.
    let ctx = p.ctx(at() + chrono::Duration::minutes(5));
    let session = ctx.session().unwrap();
    let env = session.env("dev").unwrap();
    let Unfinished::NotUndone(not_undone) = unfinished(&session, env, false).unwrap() else {
        panic!("not refused");
    };
    let NotUndone {
        refusal,
        backup: id,
        interrupted,
    } = *not_undone;
    assert_eq!(id, backup.id);
    assert_eq!(interrupted.outcome, Some("failed"));
    assert_eq!(refusal.kind(), Kind::Aborted);
    assert!(
        refusal.message().starts_with(
            "the last migrate of `dev` (failed at 2026-03-01 10:20:30 UTC) was not undone"
        ),
        "{}",
        refusal.message()
    );

    // With --resume, it goes on from there, with the same backup to go back to and no new one.
    let Unfinished::Resume(record) = unfinished(&session, env, true).unwrap() else {
        panic!("not resumed");
    };
    assert_eq!(record.id, backup.id);
    let (_, db) = session.provider(env).unwrap();
    let resume = Request {
        resume: true,
        ..request()
    };
    let prepared = prepare(&session, env, db.as_ref(), &resume, Some(*record)).unwrap();
    let steps = steps(&session, env, db.as_ref(), &resume, &prepared).unwrap();
    assert!(steps.backup.is_none());
    assert_eq!(
        steps.no_backup.unwrap(),
        format!(
            "none (--resume): {}, taken before the migrate that did not finish, stays the backup to go back to",
            backup.id
        )
    );
    assert!(!steps.restore_on_failure, "rollback_on_failure is off");
}

#[test]
fn without_a_command_the_preflight_refuses() {
    let p = Project::new();
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let env = session.env("dev").unwrap();
    let (_, db) = session.provider(env).unwrap();
    let prepared = prepare(&session, env, db.as_ref(), &request(), None).unwrap();
    assert_eq!(prepared.command, None);
    let (_, refused) = preflight(&session, env, db.as_ref(), &request(), &prepared, &[]).unwrap();
    let refused = refused.unwrap();
    assert_eq!(refused.check, "migrate_command");
    assert_eq!(
        refused.error.message(),
        "environment `dev` has no migrate_command to run"
    );
    assert!(p.written().is_empty(), "{:?}", p.written());
}
