//! Restores that fail: what is said, what is marked, and that the database is left as it was.

use std::path::Path;

use super::*;
use crate::error::{Hint, Kind};
use crate::format::Format;
use crate::ops::testkit::{Twist, Twisted};
use crate::provider::{
    CommitFailed, CommitOptions, Committed, Provider, ProviderKind, Source, Staged,
};
use crate::registry::Status;

/// The status the registry gives backup `id` now.
fn status(p: &Restoring, id: &str) -> Status {
    let ctx = p.later();
    let session = ctx.session().unwrap();
    session.store.load().unwrap().find(id).unwrap().status
}

#[test]
fn a_backup_that_fails_its_checksum_is_marked_corrupt_and_not_restored() {
    let p = Restoring::new();
    let record = p.record.clone();
    let file = p.backups().join(&record.file);
    let mut bytes = fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&file, bytes).unwrap();

    let err = restore(&p, &request(Some("pre-restore"))).unwrap_err();
    assert_eq!(err.kind(), Kind::Verification, "{}", err.one_line());
    assert_eq!(status(&p, &record.id), Status::Corrupt);
    assert_eq!(p.notes(), ["a", "b", "c", "d", "e"], "untouched");
    // Refused before the safety backup: nothing else was taken, and nothing began.
    let ctx = p.later();
    let session = ctx.session().unwrap();
    assert_eq!(session.store.load().unwrap().backups.len(), 1);
    assert_eq!(
        p.history()[1..],
        [format!(
            "\"restore\" false \"{}\" \"{}\"",
            record.id,
            err.one_line()
        )]
    );
    assert!(
        p.seen().iter().all(|s| !s.starts_with("ok: ")),
        "{:?}",
        p.seen()
    );

    // Marked corrupt, it is not chosen again, by name or as the latest.
    let env = session.env("dev").unwrap();
    let named = choose(&session, env, &record.id).unwrap_err();
    assert_eq!(
        named.one_line(),
        format!(
            "backup {} is marked corrupt; it will not be restored",
            record.id
        )
    );
    let latest = choose(&session, env, "latest").unwrap_err();
    assert_eq!(
        latest.one_line(),
        "environment `dev` has no valid backup to restore"
    );
}

#[test]
fn a_backup_whose_file_is_gone_is_marked_missing_and_not_restored() {
    let p = Restoring::new();
    let record = p.record.clone();
    fs::remove_file(p.backups().join(&record.file)).unwrap();

    let err = restore(&p, &request(Some("pre-restore"))).unwrap_err();
    assert_eq!(err.kind(), Kind::Verification, "{}", err.one_line());
    assert_eq!(status(&p, &record.id), Status::Missing);
    assert_eq!(p.notes(), ["a", "b", "c", "d", "e"], "untouched");
    assert_eq!(p.history().len(), 2);
    assert!(
        p.history()[1].starts_with(&format!("\"restore\" false \"{}\" ", record.id)),
        "{:?}",
        p.history()
    );
}

/// The SQLite database, whose staged restore finds, when it commits, that the application wrote
/// to the database after the restore was staged and its safety backup taken.
struct WrittenMeanwhile {
    path: PathBuf,
}

struct WrittenStaged<'a> {
    staged: Box<dyn Staged + 'a>,
    path: &'a Path,
}

impl Staged for WrittenStaged<'_> {
    fn commit(self: Box<Self>, options: &CommitOptions) -> Result<Committed, CommitFailed> {
        rusqlite::Connection::open(self.path)
            .unwrap()
            .execute_batch("INSERT INTO notes (body) VALUES ('written meanwhile')")
            .unwrap();
        self.staged.commit(options)
    }
}

impl Twist for WrittenMeanwhile {
    fn stage_restore<'a>(
        &'a self,
        db: &'a dyn Provider,
        format: Format,
        source: Source<'_>,
        table: Option<&str>,
        jobs: u32,
    ) -> Result<Box<dyn Staged + 'a>> {
        Ok(Box::new(WrittenStaged {
            staged: db.stage_restore(format, source, table, jobs)?,
            path: &self.path,
        }))
    }
}

#[test]
fn a_restore_that_fails_at_its_swap_leaves_the_database_as_it_was() {
    let p = Restoring::new();
    let record = p.record.clone();
    let ctx = p.later();
    let session = ctx.session().unwrap();
    let env = session.env("dev").unwrap();
    let db = Twisted {
        db: session.provider(env).unwrap().1,
        twist: WrittenMeanwhile { path: p.database() },
    };
    let err = apply(&session, env, &db, &record, &request(Some("pre-restore"))).unwrap_err();

    assert_eq!(err.kind(), Kind::Busy, "{}", err.one_line());
    assert!(
        err.message().ends_with("nothing was restored"),
        "{}",
        err.message()
    );
    let safety = "backup-20260301-112030-pre-restore";
    assert_eq!(
        err.hints().last(),
        Some(&Hint::from(format!(
            "safety backup {safety} holds the database as it was before this restore"
        )))
    );
    // The database is as the application left it, and nothing of the restore is left beside it.
    assert_eq!(p.notes(), ["a", "b", "c", "d", "e", "written meanwhile"]);
    assert_eq!(p.db_files(), ["dev.sqlite3"]);
    assert_eq!(
        session.store.load().unwrap().find(safety).unwrap().tables["notes"].rows,
        5
    );
    assert_eq!(
        p.history()[2..],
        [
            format!(
                "\"restore-started\" true \"{}\" \"safety backup {safety}\"",
                record.id
            ),
            format!("\"restore\" false \"{}\" \"{}\"", record.id, err.one_line()),
        ]
    );
}

#[test]
fn a_backup_of_another_kind_of_database_is_refused() {
    let p = Restoring::new();
    let mut record = p.record.clone();
    let ctx = p.later();
    let session = ctx.session().unwrap();
    let env = session.env("dev").unwrap();
    let (_, db) = session.provider(env).unwrap();
    record.provider = ProviderKind::Postgres;
    let err = check_kind(env, db.as_ref(), &record).unwrap_err();
    assert_eq!(
        err.one_line(),
        format!(
            "backup {} is a postgres backup; environment `dev` is a sqlite database",
            record.id
        )
    );
    assert_eq!(err.kind(), Kind::Config);
}
