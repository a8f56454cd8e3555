//! The restore engine driven as library calls: a project in a temporary directory with an SQLite
//! database and one backup of it, a context whose clock is fixed and whose reports go to a
//! [`Recorder`], and no binary. `restored.rs` has the restores that work and what a dry run
//! would do; `refused.rs` the ones that fail and what they leave.

mod refused;
mod restored;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::events::Recorder;
use crate::ops::backup;
use crate::provider::method::RestoreMethod;
use crate::session::Ctx;

const CONFIG: &str = r#"
[defaults]
compression = "gzip"

[environments.dev]
url = "sqlite:db/dev.sqlite3"
retention = "30d"
"#;

/// A project root of its own: the config, and `db/dev.sqlite3` with a table of three rows.
struct Project {
    dir: tempfile::TempDir,
    events: Arc<Recorder>,
}

impl Project {
    fn new() -> Project {
        let dir = tempfile::Builder::new()
            .prefix("faber-restore-")
            .tempdir()
            .unwrap();
        let conf = dir.path().join(".fractary/plugins/faber-db/config.toml");
        fs::create_dir_all(conf.parent().unwrap()).unwrap();
        fs::write(&conf, CONFIG).unwrap();
        fs::create_dir_all(dir.path().join("db")).unwrap();
        let p = Project {
            dir,
            events: Arc::new(Recorder::new()),
        };
        p.sql(
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
             INSERT INTO notes (body) VALUES ('a'), ('b'), ('c');",
        );
        p
    }

    /// The project with a backup of its three rows taken at [`at`], and two rows written since:
    /// the backup's record. What the backup reported is left out of [`Project::seen`].
    fn with_backup() -> (Project, BackupRecord) {
        let mut p = Project::new();
        let ctx = p.ctx(at());
        let session = ctx.session().unwrap();
        let env = session.env("dev").unwrap();
        let request = backup::Request {
            label: None,
            reason: None,
            ..backup::Request::automatic(env, "unused")
        };
        let record = backup::take(&session, env, &request).unwrap();
        p.sql("INSERT INTO notes (body) VALUES ('d'), ('e');");
        drop(session);
        p.events = Arc::new(Recorder::new());
        (p, record)
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The context of a run an hour after the backup, reporting to this project's recorder.
    fn later(&self) -> Ctx {
        self.ctx(at() + Duration::hours(1))
    }

    fn ctx(&self, now: DateTime<Utc>) -> Ctx {
        Ctx::for_tests(self.root().to_path_buf(), now, self.events.clone())
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

    fn backups(&self) -> PathBuf {
        self.root().join(".fractary/plugins/faber-db/backups")
    }

    /// The registry file as it is on disk.
    fn registry_text(&self) -> String {
        fs::read_to_string(self.backups().join("backups.json")).unwrap_or_default()
    }

    /// The audit log's events, as `event ok id detail` lines.
    fn history(&self) -> Vec<String> {
        fs::read_to_string(self.backups().join("history.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let e: serde_json::Value = serde_json::from_str(l).unwrap();
                format!("{} {} {} {}", e["event"], e["ok"], e["id"], e["detail"])
            })
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

    /// What was reported, colour codes taken out.
    fn seen(&self) -> Vec<String> {
        self.events
            .seen()
            .iter()
            .map(|s| console::strip_ansi_codes(s).into_owned())
            .collect()
    }
}

/// The fixed time the backup is taken at.
fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T10:20:30Z")
        .unwrap()
        .with_timezone(&Utc)
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

/// Restores `record` into `dev` as a run an hour after the backup, with `request`.
fn restore(p: &Project, record: &BackupRecord, request: &Request) -> Result<Restored> {
    let ctx = p.later();
    let session = ctx.session().unwrap();
    let env = session.env("dev").unwrap();
    let (_, db) = session.provider(env).unwrap();
    apply(&session, env, db.as_ref(), record, request)
}
