//! The append-only audit log, `history.jsonl`: one JSON event a line.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{GitState, Store};
use crate::error::{Error, Kind, Result};
use crate::fsutil;

pub const HISTORY_FILE: &str = "history.jsonl";

impl Store {
    /// The audit log's events about `env`, oldest first, as JSON (unreadable lines skipped).
    pub fn history(&self, env: &str) -> Vec<serde_json::Value> {
        let Ok(text) = fs::read_to_string(self.dir.join(HISTORY_FILE)) else {
            return Vec::new();
        };
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["environment"] == env)
            .collect()
    }

    /// Appends one event to the audit log. A failure here is reported, never fatal.
    pub fn append_history(&self, event: &HistoryEvent) -> Result<()> {
        fsutil::create_private_dir(&self.dir)?;
        let path = self.dir.join(HISTORY_FILE);
        let mut line = serde_json::to_vec(event).expect("events serialize");
        line.push(b'\n');
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io(Kind::Config, "cannot open", &path, e))?;
        // One write per event: appends of a line this size do not interleave.
        f.write_all(&line)
            .map_err(|e| Error::io(Kind::Config, "cannot append to", &path, e))
    }
}

/// One line of `history.jsonl`.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEvent {
    pub time: DateTime<Utc>,
    pub event: &'static str,
    pub environment: Option<String>,
    pub id: Option<String>,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub user: Option<String>,
    pub host: Option<String>,
    /// The project's git commit and branch at the time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git: Option<GitState>,
    /// The run that wrote it (see `Ctx::run_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// How long the work took, and on how many bytes: a restore's load of the backup's data,
    /// from which later restores of the environment are estimated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timing: Option<Timing>,
    /// What the Claude Code hook decided on an agent's command (`hook` events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook: Option<HookRecord>,
    /// A signal stopped the work (a `migrate` cut short by SIGTERM, SIGINT or SIGHUP).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

/// A decision of the Claude Code hook: on what, and what it answered.
#[derive(Debug, Clone, Serialize)]
pub struct HookRecord {
    /// `allow`, `ask`, `deny`, or `none` (no decision: Claude Code's own rules apply).
    pub decision: &'static str,
    /// What it saw: `migration`, `faber-db --yes`, `destructive SQL`.
    pub matched: String,
    /// The agent's command, secrets blanked out.
    pub command: String,
    /// Why, as told to Claude Code.
    pub reason: String,
}

/// The time a piece of work took and the bytes it moved.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Timing {
    pub duration_ms: u64,
    pub bytes: u64,
}
