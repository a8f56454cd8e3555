//! Human and JSON output. Human lines go to stdout (warnings and errors to stderr), styled only
//! on a terminal; `--json` prints exactly one document on stdout and nothing else there.

use std::io::{IsTerminal, Write};

use console::Style;
use serde_json::{Map, Value};

use crate::error::Error;

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
        for hint in err.hint().into_iter().flat_map(str::lines) {
            eprintln!(
                "{} {hint}",
                Style::new().cyan().for_stderr().apply_to("hint:")
            );
        }
    }
}

/// The JSON form of an error (DESIGN.md §9).
pub fn error_json(err: &Error) -> Value {
    let mut e = Map::new();
    e.insert("code".into(), err.exit_code().into());
    e.insert("kind".into(), err.kind().name().into());
    e.insert("message".into(), err.one_line().into());
    e.insert("hint".into(), err.hint().map_or(Value::Null, Into::into));
    Value::Object(e)
}

/// A count and its noun, plural but for one: `1 backup`, `2 backups`, `0 tables`.
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Human-readable byte sizes: `912 B`, `1.4 KiB`, `3.2 MiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// An age precise enough to compare with a limit: hours below three days (`26h`), else days.
pub fn age(secs: u64) -> String {
    match secs {
        s if s >= 3 * 86_400 => format!("{}d", s / 86_400),
        s if s >= 3_600 => format!("{}h", s / 3_600),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Human-readable durations: `80 ms`, `4.2 s`, `12 s`, `4 min 12 s`, `2 h 05 min`.
pub fn duration_ms(ms: u64) -> String {
    let secs = ms / 1000;
    match secs {
        0 if ms < 1000 => format!("{ms} ms"),
        0..10 => format!("{:.1} s", ms as f64 / 1000.0),
        10..60 => format!("{secs} s"),
        60..3600 => format!("{} min {:02} s", secs / 60, secs % 60),
        _ => format!("{} h {:02} min", secs / 3600, secs % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_of_one_are_singular() {
        assert_eq!(count(1u64, "backup"), "1 backup");
        assert_eq!(count(0u64, "backup"), "0 backups");
        assert_eq!(count(2u32, "table"), "2 tables");
    }
}
