//! Human and JSON output. Human lines go to stdout (warnings and errors to stderr), styled only
//! on a terminal; `--json` prints exactly one document on stdout and nothing else there.
//!
//! The submodules say how the engine's results look: one per kind of result, called by the
//! commands (`cmd/`) that print them.

pub mod backup;
pub mod cleanup;
pub mod diff;
pub mod list;
pub mod migrate;
pub mod rehearsal;
pub mod restore;
pub mod schema;
pub mod status;
pub mod verify;

use std::io::{IsTerminal, Write};

use console::Style;
use indicatif::ProgressBar;
use serde_json::{Map, Value};

use crate::error::{Error, Remedy};
use crate::events::Events;
pub use crate::human::{age, count, duration_ms, size};

/// Where a plan is printed: with the human output on stdout (a dry run), or on stderr just
/// before a confirmation prompt — where the prompt is, in every mode, never in `--json`'s way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum To {
    Output,
    Prompt,
}

#[derive(Debug, Clone)]
pub struct Ui {
    pub json: bool,
    pub quiet: bool,
    pub verbose: bool,
}

impl Ui {
    pub fn new(json: bool, quiet: bool, verbose: bool, no_color: bool) -> Ui {
        let color = !no_color
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::io::stdout().is_terminal();
        console::set_colors_enabled(color);
        console::set_colors_enabled_stderr(color && std::io::stderr().is_terminal());
        Ui {
            json,
            quiet,
            verbose,
        }
    }

    fn human(&self) -> bool {
        !self.json && !self.quiet
    }

    /// Writes to stdout; a closed pipe is not an error worth reporting.
    #[allow(clippy::unused_self, reason = "output goes through the Ui")]
    fn out(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
    }

    /// A line of human output.
    pub fn line(&self, text: impl AsRef<str>) {
        if self.human() {
            self.out(text.as_ref());
        }
    }

    /// What a `--quiet` run prints on stdout: the one thing a script wants from it (the ID of
    /// the backup taken). Nothing without `--quiet` (the human output says it) or with `--json`.
    pub fn quiet_result(&self, text: impl AsRef<str>) {
        if self.quiet && !self.json {
            self.out(text.as_ref());
        }
    }

    /// `✓ text`: a step that worked.
    pub fn ok(&self, text: impl AsRef<str>) {
        self.line(format!(
            "{} {}",
            Style::new().green().apply_to("✓"),
            text.as_ref()
        ));
    }

    /// `✗ text`: an item that failed while the command goes on.
    pub fn fail(&self, text: impl AsRef<str>) {
        self.line(format!(
            "{} {}",
            Style::new().red().apply_to("✗"),
            text.as_ref()
        ));
    }

    /// A detail shown with `--verbose`.
    pub fn detail(&self, text: impl AsRef<str>) {
        if self.verbose {
            self.line(format!("  {}", Style::new().dim().apply_to(text.as_ref())));
        }
    }

    /// `warning: text` on stderr, shown in every mode: `--quiet` keeps errors and warnings.
    pub fn warn(&self, text: impl AsRef<str>) {
        eprintln!(
            "{} {}",
            Style::new()
                .yellow()
                .bold()
                .for_stderr()
                .apply_to("warning:"),
            text.as_ref()
        );
    }

    /// A line on stderr in every mode: what a confirmation prompt is about to be asked for,
    /// shown where the prompt is, and never in the way of `--json`'s document.
    pub fn note(&self, text: impl AsRef<str>) {
        eprintln!("{}", text.as_ref());
    }

    /// A line of a plan, where `to` says.
    pub fn say(&self, to: To, text: impl AsRef<str>) {
        match to {
            To::Output => self.line(text),
            To::Prompt => self.note(text),
        }
    }

    pub fn bold(&self, text: impl std::fmt::Display) -> String {
        Style::new().bold().apply_to(text).to_string()
    }

    pub fn dim(&self, text: impl std::fmt::Display) -> String {
        Style::new().dim().apply_to(text).to_string()
    }

    /// Prints the single JSON document of a run.
    pub fn print_json(&self, doc: &Value) {
        let text = serde_json::to_string_pretty(doc).expect("JSON values serialize");
        self.out(&text);
    }

    /// Prints an error: `error: …`, `caused by: …` lines and `hint: …`, to stderr.
    pub fn print_error(&self, err: &Error) {
        let red = Style::new().red().bold().for_stderr();
        eprintln!("{} {}", red.apply_to("error:"), err.message());
        for cause in err.causes() {
            eprintln!("  caused by: {cause}");
        }
        for hint in crate::hints::text(err).iter().flat_map(|h| h.lines()) {
            eprintln!(
                "{} {hint}",
                Style::new().cyan().for_stderr().apply_to("hint:")
            );
        }
    }
}

impl Events for Ui {
    fn ok(&self, text: &str) {
        Ui::ok(self, text);
    }

    fn fail(&self, text: &str) {
        Ui::fail(self, text);
    }

    fn line(&self, text: &str) {
        Ui::line(self, text);
    }

    fn detail(&self, text: &str) {
        Ui::detail(self, text);
    }

    fn advise(&self, remedy: &Remedy) {
        Ui::detail(self, crate::hints::words(remedy));
    }

    fn warn(&self, text: &str) {
        Ui::warn(self, text);
    }

    fn bar(&self, total: u64, what: &str) -> Option<ProgressBar> {
        crate::progress::bar(!self.json && !self.quiet, total, what)
    }
}

/// The JSON form of an error (DESIGN.md §9).
pub fn error_json(err: &Error) -> Value {
    let mut e = Map::new();
    e.insert("code".into(), err.exit_code().into());
    e.insert("kind".into(), err.kind().name().into());
    e.insert("message".into(), err.one_line().into());
    e.insert(
        "hint".into(),
        crate::hints::text(err).map_or(Value::Null, Into::into),
    );
    Value::Object(e)
}

/// `text` — a name or a definition read from a database — as it may be printed: each control
/// character (an escape sequence, a carriage return, a newline) written as its escape, so that
/// nothing a database holds can move the cursor or rewrite what a question shows.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}
