//! The restore engine driven as library calls, on the engine's test kit (an SQLite database in
//! a temporary directory, a fixed clock, a recorder for the events) with one backup taken, and
//! no binary. `restored.rs` has the restores that work and what a dry run would do; `refused.rs`
//! the ones that fail and what they leave.

mod refused;
mod restored;

use std::fs;
use std::ops::Deref;
use std::path::PathBuf;

use chrono::Duration;

use super::*;
use crate::ops::testkit::{self, Project, at};
use crate::provider::method::RestoreMethod;
use crate::session::Ctx;

/// A project ([`testkit::Project`]) with a backup of its three rows taken at [`at`], and two
/// rows written since.
struct Restoring {
    project: Project,
    /// The backup.
    record: BackupRecord,
    /// How many events the backup reported: [`Restoring::seen`] starts after them.
    reported: usize,
}

impl Deref for Restoring {
    type Target = Project;

    fn deref(&self) -> &Project {
        &self.project
    }
}

impl Restoring {
    fn new() -> Restoring {
        let project = Project::new();
        let ctx = project.ctx(at());
        let session = ctx.session().unwrap();
        let record = testkit::backed_up(&session, "dev");
        let reported = project.seen().len();
        let p = Restoring {
            project,
            record,
            reported,
        };
        p.sql("INSERT INTO notes (body) VALUES ('d'), ('e');");
        p
    }

    /// The context of a run an hour after the backup.
    fn later(&self) -> Ctx {
        self.ctx(at() + Duration::hours(1))
    }

    fn database(&self) -> PathBuf {
        self.root().join("db/dev.sqlite3")
    }

    fn sql(&self, sql: &str) {
        rusqlite::Connection::open(self.database())
            .unwrap()
            .execute_batch(sql)
            .unwrap();
    }

    /// The bodies of the notes in the database, in order.
    fn notes(&self) -> Vec<String> {
        let conn = rusqlite::Connection::open(self.database()).unwrap();
        let mut stmt = conn.prepare("SELECT body FROM notes ORDER BY id").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// The files in `db/`, where the database is staged beside itself.
    fn db_files(&self) -> Vec<String> {
        let mut files: Vec<String> = fs::read_dir(self.root().join("db"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        files
    }

    /// What was reported since the backup, colour codes taken out.
    fn seen(&self) -> Vec<String> {
        self.project.seen()[self.reported..].to_vec()
    }

    /// The warnings reported since the backup.
    fn warnings(&self) -> Vec<String> {
        self.seen()
            .iter()
            .filter_map(|s| s.strip_prefix("warn: ").map(str::to_string))
            .collect()
    }
}

/// A restore as `faber-db restore dev` asks for it, with a safety backup unless `safety` is
/// `None`.
fn request(safety: Option<&'static str>) -> Request {
    Request {
        event: "restore",
        safety_reason: safety,
        terminate_connections: false,
        jobs: None,
        in_place: false,
        method: None,
    }
}

/// Restores the backup into `dev` as a run an hour after it, with `request`.
fn restore(p: &Restoring, request: &Request) -> Result<Restored> {
    let ctx = p.later();
    let session = ctx.session().unwrap();
    let env = session.env("dev").unwrap();
    let (_, db) = session.provider(env).unwrap();
    apply(&session, env, db.as_ref(), &p.record, request)
}
