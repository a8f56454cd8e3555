//! The backup engine driven as library calls: a project in a temporary directory with an SQLite
//! database, a context whose clock is fixed and whose reports go to a [`Recorder`], and no binary.
//! `taken.rs` has the backups that work, `refused.rs` the ones that fail and what they leave.

mod refused;
mod taken;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::error::{Hint, Kind, Remedy};
use crate::events::Recorder;
use crate::provider::{DumpTo, Dumped, Inspection, Provider, ProviderKind, Source, Staged};
use crate::session::Ctx;

const CONFIG: &str = r#"
[defaults]
compression = "gzip"

[environments.dev]
url = "sqlite:db/dev.sqlite3"
retention = "30d"

[environments.production]
url = "sqlite:db/prod.sqlite3"
"#;

/// A project root of its own: the config, and `db/dev.sqlite3` with a table of three rows.
struct Project {
    dir: tempfile::TempDir,
    events: Arc<Recorder>,
}

impl Project {
    fn new() -> Project {
        Project::with_config(CONFIG)
    }

    fn with_config(config: &str) -> Project {
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

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The context of a run at `now`, reporting to this project's recorder.
    fn ctx(&self, now: DateTime<Utc>) -> Ctx {
        Ctx::for_tests(self.root().to_path_buf(), now, self.events.clone())
    }

    fn backups(&self) -> PathBuf {
        self.root().join(".fractary/plugins/faber-db/backups")
    }

    /// The registry file as it is on disk (empty when there is none).
    fn registry_text(&self) -> String {
        fs::read_to_string(self.backups().join("backups.json")).unwrap_or_default()
    }

    /// Every file name under the backup directory, relative to it.
    fn files(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.backups(), &self.backups(), &mut out);
        out.sort();
        out
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

    /// The backup directory's files besides the audit log.
    fn written(&self) -> Vec<String> {
        let mut files = self.files();
        files.retain(|f| f != "history.jsonl");
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
fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T10:20:30Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn request(env: &Environment) -> Request {
    Request {
        label: None,
        reason: Some("test".into()),
        ..Request::automatic(env, "unused")
    }
}

/// The SHA-256 and size of the file at `path`.
fn hashed(path: &Path) -> (String, u64) {
    crate::pipeline::hash_file(fs::File::open(path).unwrap()).unwrap()
}
