//! What the engine's unit tests share: a project in a temporary directory with an SQLite database
//! (`db/dev.sqlite3`, a table of three rows), a context whose clock is fixed and whose reports go
//! to a [`Recorder`], and ways to look at what an operation left on disk. No binary is spawned.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::events::Recorder;
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
