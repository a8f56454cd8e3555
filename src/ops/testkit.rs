//! What the engine's unit tests share: a project in a temporary directory with an SQLite database
//! (`db/dev.sqlite3`, a table of three rows), a context whose clock is fixed and whose reports go
//! to a [`Recorder`], and ways to look at what an operation left on disk. No binary is spawned.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::events::Recorder;
use crate::format::Format;
use crate::provider::{
    DumpOptions, DumpTo, Dumped, Inspection, Provider, ProviderKind, Source, Staged,
};
use crate::session::Ctx;

/// Two environments: `dev` (its database is there) and `production` (its database is not).
pub const CONFIG: &str = r#"
[defaults]
compression = "gzip"

[environments.dev]
url = "sqlite:db/dev.sqlite3"
retention = "30d"

[environments.production]
url = "sqlite:db/prod.sqlite3"
"#;

/// A project root of its own: the config, and `db/dev.sqlite3` with a table of three rows.
pub struct Project {
    dir: tempfile::TempDir,
    events: Arc<Recorder>,
}

impl Project {
    pub fn new() -> Project {
        Project::with_config(CONFIG)
    }

    pub fn with_config(config: &str) -> Project {
        let dir = tempfile::Builder::new()
            .prefix("faber-ops-")
            .tempdir()
            .unwrap();
        let conf = dir.path().join(".fractary/plugins/faber-db/config.toml");
        fs::create_dir_all(conf.parent().unwrap()).unwrap();
        fs::write(&conf, config).unwrap();
        fs::create_dir_all(dir.path().join("db")).unwrap();
        rusqlite::Connection::open(dir.path().join("db/dev.sqlite3"))
            .unwrap()
            .execute_batch(
                "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
                 INSERT INTO notes (body) VALUES ('a'), ('b'), ('c');",
            )
            .unwrap();
        Project {
            dir,
            events: Arc::new(Recorder::new()),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The context of a run at `now`, reporting to this project's recorder.
    pub fn ctx(&self, now: DateTime<Utc>) -> Ctx {
        Ctx::for_tests(self.root().to_path_buf(), now, self.events.clone())
    }

    pub fn backups(&self) -> PathBuf {
        self.root().join(".fractary/plugins/faber-db/backups")
    }

    /// The registry file as it is on disk (empty when there is none).
    pub fn registry_text(&self) -> String {
        fs::read_to_string(self.backups().join("backups.json")).unwrap_or_default()
    }

    /// Every file name under the backup directory, relative to it.
    pub fn files(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.backups(), &self.backups(), &mut out);
        out.sort();
        out
    }

    /// The audit log's events, as `event ok id detail` lines.
    pub fn history(&self) -> Vec<String> {
        fs::read_to_string(self.backups().join("history.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let e: serde_json::Value = serde_json::from_str(l).unwrap();
                format!("{} {} {} {}", e["event"], e["ok"], e["id"], e["detail"])
            })
            .collect()
    }

    /// The backup directory's files besides the audit log.
    pub fn written(&self) -> Vec<String> {
        let mut files = self.files();
        files.retain(|f| f != "history.jsonl");
        files
    }

    /// What was reported, colour codes taken out.
    pub fn seen(&self) -> Vec<String> {
        self.events
            .seen()
            .iter()
            .map(|s| console::strip_ansi_codes(s).into_owned())
            .collect()
    }
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(base, &path, out);
        }
        out.push(path.strip_prefix(base).unwrap().display().to_string());
    }
}

/// The fixed time the tests run at.
pub fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T10:20:30Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// Takes a backup of `env` the way other operations take theirs.
pub fn backed_up(session: &crate::session::Session, env: &str) -> crate::registry::BackupRecord {
    let env = session.env(env).unwrap();
    crate::ops::backup::take(
        session,
        env,
        &crate::ops::backup::Request::automatic(env, "test"),
    )
    .unwrap()
}

/// What a test changes in a database's answers: each step answers as the database `db` does,
/// unless the test's hook says otherwise (a dump that dies midway, a write during a restore).
pub trait Twist {
    fn schema(&self, db: &dyn Provider) -> Result<crate::schema::Schema> {
        db.schema()
    }

    fn dump(
        &self,
        db: &dyn Provider,
        options: &DumpOptions<'_>,
        work_dir: &Path,
        to: DumpTo<'_, '_>,
    ) -> Result<Dumped> {
        db.dump(options, work_dir, to)
    }

    fn stage_restore<'a>(
        &'a self,
        db: &'a dyn Provider,
        format: Format,
        source: Source<'_>,
        table: Option<&str>,
        jobs: u32,
    ) -> Result<Box<dyn Staged + 'a>> {
        db.stage_restore(format, source, table, jobs)
    }
}

/// The database `db`, with the steps `twist` changes.
pub struct Twisted<T> {
    pub db: Box<dyn Provider>,
    pub twist: T,
}

impl<T: Twist> Provider for Twisted<T> {
    fn kind(&self) -> ProviderKind {
        self.db.kind()
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self.db.as_any()
    }
    fn database_name(&self) -> String {
        self.db.database_name()
    }
    fn formats(&self) -> &'static [Format] {
        self.db.formats()
    }
    fn exists(&self) -> Result<bool> {
        self.db.exists()
    }
    fn check_connection(&self) -> Result<String> {
        self.db.check_connection()
    }
    fn size_estimate(&self) -> Result<u64> {
        self.db.size_estimate()
    }
    fn inspect(&self, table: Option<&str>, count_rows: bool) -> Result<Inspection> {
        self.db.inspect(table, count_rows)
    }
    fn schema(&self) -> Result<crate::schema::Schema> {
        self.twist.schema(self.db.as_ref())
    }
    fn dump(
        &self,
        options: &DumpOptions<'_>,
        work_dir: &Path,
        to: DumpTo<'_, '_>,
    ) -> Result<Dumped> {
        self.twist.dump(self.db.as_ref(), options, work_dir, to)
    }
    fn prepare_restore(&self, raw_size: u64) -> Result<Vec<PathBuf>> {
        self.db.prepare_restore(raw_size)
    }
    fn stage_restore<'a>(
        &'a self,
        format: Format,
        source: Source<'_>,
        table: Option<&str>,
        jobs: u32,
    ) -> Result<Box<dyn Staged + 'a>> {
        self.twist
            .stage_restore(self.db.as_ref(), format, source, table, jobs)
    }
}
