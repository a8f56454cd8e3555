//! Errors of faber-db, each of one kind that maps to one documented exit code (DESIGN.md §8).
//!
//! An [`Error`] says what went wrong (its message), why (its causes: error values kept as they
//! are, so `source()` walks down to the I/O or SQLite error underneath, or words), and what to
//! do ([`Hint`]s: words, or a [`Remedy`] the command layer words, since only it knows the command
//! names). Domain modules may have typed errors of their own (`thiserror` enums, such as
//! `config::LoadError`) that convert `From` into an `Error` of their kind.

mod cause;
mod hint;

use std::fmt;
use std::io;
use std::path::Path;

pub use cause::{Cause, IntoCause};
pub use hint::{Hint, Remedy};
/// The kinds of failure a user or a pipeline can tell apart by exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bad configuration or invalid input (exit 1).
    Config,
    /// Not enough free space at the destination (exit 2).
    DiskSpace,
    /// The database could not be reached or opened (exit 3).
    Connection,
    /// A required dump/restore tool is missing (exit 4).
    ToolNotFound,
    /// A backup failed its checksum or structure check (exit 5).
    Verification,
    /// The dump or restore itself failed (exit 6).
    Tool,
    /// Another run holds the lock (exit 7).
    Busy,
    /// A confirmation was declined or is required (exit 8).
    Aborted,
    /// A migration failed (exit 9).
    Migration,
}

impl Kind {
    pub fn exit_code(self) -> u8 {
        match self {
            Kind::Config => 1,
            Kind::DiskSpace => 2,
            Kind::Connection => 3,
            Kind::ToolNotFound => 4,
            Kind::Verification => 5,
            Kind::Tool => 6,
            Kind::Busy => 7,
            Kind::Aborted => 8,
            Kind::Migration => 9,
        }
    }

    /// The name used for this kind in `--json` output.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Config => "config",
            Kind::DiskSpace => "disk_space",
            Kind::Connection => "connection",
            Kind::ToolNotFound => "tool_not_found",
            Kind::Verification => "verification",
            Kind::Tool => "tool",
            Kind::Busy => "busy",
            Kind::Aborted => "aborted",
            Kind::Migration => "migration",
        }
    }
}

/// A failure with what went wrong, its causes, and what to do about it.
#[derive(Debug, Clone)]
pub struct Error {
    kind: Kind,
    message: String,
    causes: Vec<Cause>,
    hints: Vec<Hint>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            causes: Vec::new(),
            hints: Vec::new(),
        }
    }

    pub fn config(message: impl Into<String>) -> Self {
        Self::new(Kind::Config, message)
    }

    pub fn connection(message: impl Into<String>) -> Self {
        Self::new(Kind::Connection, message)
    }

    pub fn verification(message: impl Into<String>) -> Self {
        Self::new(Kind::Verification, message)
    }

    pub fn tool(message: impl Into<String>) -> Self {
        Self::new(Kind::Tool, message)
    }

    pub fn aborted(message: impl Into<String>) -> Self {
        Self::new(Kind::Aborted, message)
    }

    /// An I/O failure on `path`. A full disk is reported as such (exit 2); anything else is
    /// attributed to `kind`.
    pub fn io(kind: Kind, what: impl fmt::Display, path: &Path, err: io::Error) -> Self {
        // ENOSPC, or EDQUOT: the user's quota is the disk that filled.
        let disk_full = matches!(err.raw_os_error(), Some(28 | 122))
            || matches!(
                err.kind(),
                io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
            );
        let kind = if disk_full { Kind::DiskSpace } else { kind };
        let e = Error::new(kind, format!("{what} {}", path.display())).caused_by(err);
        if disk_full {
            e.with_hint(Remedy::DiskFull)
        } else {
            e
        }
    }

    /// `hint` in place of any advice the error has.
    pub fn with_hint(mut self, hint: impl Into<Hint>) -> Self {
        self.hints = vec![hint.into()];
        self
    }

    /// `hints` (another error's) in place of any advice the error has.
    pub fn with_hints(mut self, hints: &[Hint]) -> Self {
        self.hints = hints.to_vec();
        self
    }

    /// Adds advice after any hint the error already has.
    pub fn add_hint(mut self, more: impl Into<Hint>) -> Self {
        self.hints.push(more.into());
        self
    }

    /// `hint`, when the error has no advice yet.
    pub fn or_hint(self, hint: impl Into<Hint>) -> Self {
        if self.hints.is_empty() {
            self.with_hint(hint)
        } else {
            self
        }
    }

    /// Adds a cause after any the error already has: an error value, kept as it is and shown by
    /// its `Display` (for an `Error`, its message), or words.
    pub fn caused_by(mut self, cause: impl IntoCause) -> Self {
        self.causes.push(cause.into_cause());
        self
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The causes, one `caused by:` line each.
    pub fn causes(&self) -> &[Cause] {
        &self.causes
    }

    /// The advice, in the order it was added: one `hint:` line (or more) each.
    pub fn hints(&self) -> &[Hint] {
        &self.hints
    }

    pub fn exit_code(&self) -> u8 {
        self.kind.exit_code()
    }

    /// The message with its causes on one line, for reports that keep going past a failure.
    pub fn one_line(&self) -> String {
        let mut s = self.message.clone();
        for c in &self.causes {
            s.push_str(": ");
            s.push_str(c.as_str());
        }
        s
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The source is the first cause: its error value (which goes on with its own source), or its
/// words. Further causes are siblings (a tool's other output lines, an undo that failed too):
/// [`Error::causes`] has them all.
impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.causes.first().map(Cause::as_source)
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    fn not_found() -> io::Error {
        io::Error::new(io::ErrorKind::NotFound, "no such file")
    }

    /// The `caused by:` lines, as printed.
    fn shown(e: &Error) -> Vec<&str> {
        e.causes().iter().map(Cause::as_str).collect()
    }

    #[test]
    fn an_error_value_is_kept_as_the_source() {
        let e = Error::config("cannot read x").caused_by(not_found());
        assert_eq!(shown(&e), ["no such file"]);
        let source = e.source().expect("a source");
        let io = source
            .downcast_ref::<io::Error>()
            .expect("the io::Error itself");
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
        assert_eq!(
            e.causes()[0].downcast_ref::<io::Error>().unwrap().kind(),
            io::ErrorKind::NotFound
        );
        // Cloning shares the value.
        let copy = e.clone();
        assert!(copy.source().unwrap().is::<io::Error>());
    }

    #[test]
    fn an_error_as_a_cause_shows_its_message_and_keeps_its_chain() {
        let inner = Error::tool("pg_dump failed")
            .caused_by(not_found())
            .with_hint("fix it");
        let outer = Error::new(Kind::Busy, "the backup failed").caused_by(inner);
        // As before: the inner error's message only, not its causes or hints.
        assert_eq!(shown(&outer), ["pg_dump failed"]);
        assert_eq!(outer.one_line(), "the backup failed: pg_dump failed");
        assert!(outer.hints().is_empty());
        // The chain goes on below it.
        let chain: Vec<String> = std::iter::successors(outer.source(), |e| (*e).source())
            .map(ToString::to_string)
            .collect();
        assert_eq!(chain, ["pg_dump failed", "no such file"]);
        let inner = outer.source().unwrap().downcast_ref::<Error>().unwrap();
        assert_eq!(inner.kind(), Kind::Tool);
    }

    #[test]
    fn an_error_in_one_line_shows_its_causes_and_keeps_the_value() {
        let inner = Error::tool("psql failed").caused_by("ERROR: no");
        let outer = Error::tool("the swap failed").caused_by(Cause::in_one_line(inner));
        assert_eq!(shown(&outer), ["psql failed: ERROR: no"]);
        let inner = outer.causes()[0].downcast_ref::<Error>().unwrap();
        assert_eq!(inner.message(), "psql failed");
        assert_eq!(inner.source().unwrap().to_string(), "ERROR: no");
    }

    #[test]
    fn words_are_a_cause_without_a_source_below() {
        let e = Error::tool("mysqldump failed")
            .caused_by(format!("exit {}", 2))
            .caused_by("Access denied");
        assert_eq!(shown(&e), ["exit 2", "Access denied"]);
        assert_eq!(e.one_line(), "mysqldump failed: exit 2: Access denied");
        let source = e.source().unwrap();
        assert_eq!(source.to_string(), "exit 2");
        assert!(source.source().is_none());
        assert!(e.causes()[1].value().is_none());
    }

    #[test]
    fn causes_copied_from_another_error_keep_their_values() {
        let first = Error::config("a").caused_by(not_found()).caused_by("b");
        let copied = first
            .causes()
            .iter()
            .fold(Error::config("c"), |e, c| e.caused_by(c));
        assert_eq!(shown(&copied), ["no such file", "b"]);
        assert!(copied.source().unwrap().is::<io::Error>());
    }

    #[test]
    fn without_causes_there_is_no_source() {
        assert!(Error::config("bad").source().is_none());
    }

    #[test]
    fn a_full_disk_is_its_own_kind_with_its_remedy() {
        let full = io::Error::from_raw_os_error(28);
        let e = Error::io(Kind::Tool, "cannot write", Path::new("/b/x"), full);
        assert_eq!(e.kind(), Kind::DiskSpace);
        assert_eq!(e.message(), "cannot write /b/x");
        assert_eq!(e.hints(), [Hint::Remedy(Remedy::DiskFull)]);
        assert_eq!(
            e.source()
                .unwrap()
                .downcast_ref::<io::Error>()
                .unwrap()
                .raw_os_error(),
            Some(28)
        );
        // Over the user's quota (EDQUOT) is a full disk too.
        let quota = io::Error::from_raw_os_error(122);
        let e = Error::io(Kind::Tool, "cannot write", Path::new("/b/x"), quota);
        assert_eq!(e.kind(), Kind::DiskSpace);
        let other = Error::io(Kind::Tool, "cannot write", Path::new("/b/x"), not_found());
        assert_eq!(other.kind(), Kind::Tool);
        assert!(other.hints().is_empty());
    }

    #[test]
    fn hints_keep_their_order() {
        let e = Error::config("x")
            .with_hint("first")
            .add_hint(Remedy::ListBackups)
            .add_hint("last");
        assert_eq!(
            e.hints(),
            [
                Hint::from("first"),
                Hint::Remedy(Remedy::ListBackups),
                Hint::from("last")
            ]
        );
        assert_eq!(e.clone().with_hint("only").hints(), [Hint::from("only")]);
        assert_eq!(e.clone().or_hint("unused").hints(), e.hints());
        let bare = Error::config("y").with_hints(e.hints());
        assert_eq!(bare.hints(), e.hints());
        assert_eq!(
            Error::config("z").or_hint("fallback").hints(),
            [Hint::from("fallback")]
        );
    }
}
