//! Errors of faber-db, each of one kind that maps to one documented exit code (DESIGN.md §8).

use std::fmt;
use std::io;
use std::path::Path;

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

/// A failure with what went wrong, optional causes, and what to do about it.
#[derive(Debug, Clone)]
pub struct Error {
    kind: Kind,
    message: String,
    causes: Vec<String>,
    hint: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            causes: Vec::new(),
            hint: None,
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
        let disk_full = err.raw_os_error() == Some(28) || err.kind() == io::ErrorKind::StorageFull;
        let kind = if disk_full { Kind::DiskSpace } else { kind };
        let mut e = Error::new(kind, format!("{what} {}", path.display())).caused_by(err);
        if disk_full {
            e = e.with_hint(
                "free some space on that filesystem; for the backup directory, `faber-db cleanup --expired` may help",
            );
        }
        e
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds advice after any hint the error already has.
    pub fn add_hint(mut self, more: impl Into<String>) -> Self {
        let more = more.into();
        self.hint = Some(match self.hint.take() {
            Some(h) => format!("{h}\n{more}"),
            None => more,
        });
        self
    }

    pub fn caused_by(mut self, cause: impl fmt::Display) -> Self {
        self.causes.push(cause.to_string());
        self
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn causes(&self) -> &[String] {
        &self.causes
    }

    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    pub fn exit_code(&self) -> u8 {
        self.kind.exit_code()
    }

    /// The message with its causes on one line, for reports that keep going past a failure.
    pub fn one_line(&self) -> String {
        let mut s = self.message.clone();
        for c in &self.causes {
            s.push_str(": ");
            s.push_str(c);
        }
        s
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
