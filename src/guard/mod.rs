//! What an agent's shell command would do to a project's databases, told from its text alone:
//! the migrations it runs, the faber-db commands it gives, the SQL it sends. The pre-tool-use
//! hook decides on these; nothing here reads a config, connects, or runs anything.
//!
//! A line is read into [`Invocation`]s (`line`), each with the wrappers and runners around its
//! tool taken off (`wrappers`); `migration` tells the migrations among them, `sql` the SQL they
//! send, `target` whether that reaches a given database, `redact` blanks the secrets out of a
//! command before it is shown or kept.

pub mod admin;
pub mod files;
mod line;
mod migration;
pub mod redact;
pub mod sql;
mod target;
mod wrappers;

pub use line::invocations;
pub use migration::{builtin_migration, matches_command, matches_pattern};
pub use target::{same_database, server_is, target_is};
pub use wrappers::{as_assignment, env_files, option_value, tool_words};

use std::path::{Path, PathBuf};

use crate::shell::{self, Stdin};

/// One command the line would run, with the wrappers around it (`sudo`, `env`, `time`, …)
/// taken off, and what the line set up before it.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    /// Its words, the program first; variables and substitutions as [`shell`](crate::shell) markers.
    pub words: Vec<String>,
    /// Variables set for it: its own `NAME=value` prefix and `env NAME=value`, after those of
    /// earlier `export`s and bare assignments of the line (later ones win).
    pub vars: Vec<(String, String)>,
    pub stdin: Option<Stdin>,
    /// The words of the command whose output it reads (`echo … | psql`).
    pub piped_from: Option<Vec<String>>,
    /// The directory the line moved to before it (`cd api && …`), as written.
    pub dirs: Vec<String>,
    /// The simple command it came from, as written (for messages).
    pub text: String,
    /// The files its output redirections write, as written (`> out.log`).
    pub writes: Vec<String>,
    /// It runs as another user (`sudo`, `doas`).
    pub elevated: bool,
    /// A wrapper adds arguments to its words (`xargs`).
    pub more_args: bool,
}

impl Invocation {
    /// The program's file name: `prisma` for `./node_modules/.bin/prisma`.
    pub fn program(&self) -> &str {
        self.words.first().map_or("", |w| basename(w))
    }

    /// Whether approving the line may cover this command: it writes no file (but
    /// `/dev/null`-like ones) and runs as no other user.
    pub fn approvable(&self) -> bool {
        !self.elevated
            && self
                .writes
                .iter()
                .all(|w| matches!(w.as_str(), "/dev/null" | "/dev/stdout" | "/dev/stderr"))
    }

    /// The value the line gives variable `name`, if it sets one.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The directory it runs in: `cwd`, moved by the line's `cd`s.
    pub fn dir(&self, cwd: &Path) -> PathBuf {
        let mut dir = cwd.to_path_buf();
        for d in &self.dirs {
            match d.strip_prefix("~/") {
                Some(rest) => {
                    if let Some(home) = std::env::var_os("HOME") {
                        dir = Path::new(&home).join(rest);
                    }
                }
                None => dir = dir.join(d),
            }
        }
        dir
    }

    /// Its words as a shell would show them.
    pub fn shown(&self) -> String {
        self.words
            .iter()
            .map(|w| shell::display(w))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The last path component of a word: `prisma` of `node_modules/.bin/prisma`.
pub fn basename(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// Whether an invocation is `faber-db …`: its arguments.
pub fn faber_args(inv: &Invocation) -> Option<&[String]> {
    (inv.program() == "faber-db").then(|| &inv.words[1..])
}

/// Whether faber-db arguments answer its confirmations: `--yes`, `-y`, or `-y` in a cluster of
/// short options (`-qy`).
pub fn says_yes(args: &[String]) -> bool {
    args.iter().any(|a| {
        a == "--yes"
            || a.starts_with("--yes=")
            || (a.starts_with('-')
                && !a.starts_with("--")
                && a[1..].chars().all(|c| c.is_ascii_alphabetic())
                && a.contains('y'))
    })
}

#[cfg(test)]
mod tests;
