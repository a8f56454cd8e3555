//! How the engine tells the person running it what it is doing, without printing: a small trait
//! the command layer implements with its `Ui` (human lines, `--verbose` details, warnings on
//! stderr, progress bars on a terminal), and unit tests implement with a [`Recorder`].

use std::sync::Mutex;

use indicatif::ProgressBar;

use crate::error::Remedy;

/// What an operation reports while it works. Nothing here is the operation's result: that is
/// its return value.
pub trait Events: Send + Sync {
    /// A step that worked (`✓ Dumped 12 tables`).
    fn ok(&self, text: &str);
    /// An item that failed while the operation goes on (`✗ backup-…: …`); the operation's
    /// result says it failed too.
    fn fail(&self, text: &str);
    /// A line of human output that is not a step (`Restoring into app_dev …`).
    fn line(&self, text: &str);
    /// A detail shown with `--verbose`.
    fn detail(&self, text: &str);
    /// A `--verbose` detail that names a command: the command layer words it.
    fn advise(&self, remedy: &Remedy);
    /// Something the user should know that does not fail the operation; shown in every mode.
    fn warn(&self, text: &str);
    /// A progress bar over `total` bytes of `what`, where one can be drawn.
    fn bar(&self, total: u64, what: &str) -> Option<ProgressBar>;
}

/// What an operation reported, kept in order, for tests: each entry is `ok: …`, `fail: …`,
/// `line: …`, `detail: …`, `advice: …` (the remedy, debug-printed) or `warn: …`.
#[derive(Debug, Default)]
pub struct Recorder {
    seen: Mutex<Vec<String>>,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// Everything reported so far.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The warnings reported so far.
    pub fn warnings(&self) -> Vec<String> {
        self.seen()
            .into_iter()
            .filter_map(|s| s.strip_prefix("warn: ").map(str::to_string))
            .collect()
    }

    fn push(&self, kind: &str, text: &str) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("{kind}: {text}"));
    }
}

impl Events for Recorder {
    fn ok(&self, text: &str) {
        self.push("ok", text);
    }

    fn fail(&self, text: &str) {
        self.push("fail", text);
    }

    fn line(&self, text: &str) {
        self.push("line", text);
    }

    fn detail(&self, text: &str) {
        self.push("detail", text);
    }

    fn advise(&self, remedy: &Remedy) {
        self.push("advice", &format!("{remedy:?}"));
    }

    fn warn(&self, text: &str) {
        self.push("warn", text);
    }

    fn bar(&self, _total: u64, _what: &str) -> Option<ProgressBar> {
        None
    }
}
