//! Where a rehearsed migration failed: the first pending migration the copy does not have after
//! the command, and — when the tool's output names a line (`psql:FILE:LINE:`, `near line N`,
//! `at line N`) — the statement of its file at that line.

use serde::Serialize;

use crate::migrations::MigrationState;
use crate::pending;
use crate::session::Session;

/// The migration a failed rehearsal stopped at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedAt {
    pub migration: String,
    /// Its file, relative to the project root.
    pub file: String,
    /// The line the tool's output names, if it names one.
    pub line: Option<usize>,
    /// The statement of the file at that line, whitespace folded.
    pub statement: Option<String>,
}

/// Where the migration failed: the first of the migration files in `dir` that `after` (the
/// copy's migration state after the command) does not list, with the statement at the line
/// `output` names. `None` when the files do not tell (no directory, nothing pending), or the
/// output names neither that migration nor a line.
pub(super) fn failed_at(
    session: &Session,
    dir: Option<&std::path::Path>,
    after: Option<&MigrationState>,
    output: &[String],
) -> Option<FailedAt> {
    let files = pending::files(dir?).ok()?;
    let first = pending::pending(&files, after).into_iter().next()?;
    let sql = std::fs::read_to_string(&first.path).ok()?;
    let file_name = first.path.file_name()?.to_string_lossy().into_owned();
    let line = output.iter().find_map(|l| line_named(l, &file_name));
    // Only what the output bears out: a command that failed before reaching any migration (not
    // found, no connection) failed at none.
    let mentioned = line.is_some()
        || output
            .iter()
            .any(|l| l.contains(&first.name) || l.contains(&file_name));
    if !mentioned {
        return None;
    }
    let statement = line.and_then(|n| statement_at(crate::sqlscan::up_section(&sql), n));
    Some(FailedAt {
        migration: first.name,
        file: session.ctx.show(&first.path),
        line,
        statement,
    })
}

/// The line of the input a tool's error message names: `psql:…/FILE:LINE: ERROR: …`, sqlite3's
/// `… error near line N: …`, the mysql client's `ERROR … at line N: …`.
fn line_named(message: &str, file_name: &str) -> Option<usize> {
    let digits = |s: &str| -> Option<usize> {
        let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        s[..end].parse().ok()
    };
    if let Some(at) = message.find(&format!("{file_name}:")) {
        let rest = &message[at + file_name.len() + 1..];
        if let Some(n) = digits(rest).filter(|_| rest.contains(':')) {
            return Some(n);
        }
    }
    let lower = message.to_ascii_lowercase();
    if !lower.contains("error") {
        return None;
    }
    ["near line ", "at line "]
        .iter()
        .find_map(|p| lower.find(p).and_then(|at| digits(&lower[at + p.len()..])))
}

/// The statement of `sql` that covers line `line` (1-based): statements end at a `;` outside
/// quotes and comments. Comment lines are left out and whitespace folded; a long one is cut.
fn statement_at(sql: &str, line: usize) -> Option<String> {
    const MAX: usize = 300;
    let mut start = 0;
    let mut start_line = 1;
    let mut current = 1;
    let mut quote: Option<char> = None;
    let mut chars = sql.char_indices().peekable();
    let mut found = None;
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            (_, '\n') => current += 1,
            (None, '\'' | '"' | '`') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '-') if chars.peek().is_some_and(|(_, n)| *n == '-') => {
                while chars.peek().is_some_and(|(_, n)| *n != '\n') {
                    chars.next();
                }
            }
            (None, ';') => {
                let text = &sql[start..=i];
                let first = start_line + leading_newlines(text);
                if (first..=current).contains(&line) {
                    found = Some(text);
                    break;
                }
                start = i + 1;
                start_line = current;
            }
            _ => {}
        }
    }
    if found.is_none() && start < sql.len() && line >= start_line {
        found = Some(&sql[start..]);
    }
    let folded = found?
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .flat_map(str::split_whitespace)
        .collect::<Vec<_>>()
        .join(" ");
    if folded.is_empty() {
        return None;
    }
    Some(if folded.chars().count() > MAX {
        format!("{}…", folded.chars().take(MAX).collect::<String>())
    } else {
        folded
    })
}

/// How many lines of `text` pass before its first character that is not whitespace.
fn leading_newlines(text: &str) -> usize {
    text.chars()
        .take_while(|c| c.is_whitespace())
        .filter(|c| *c == '\n')
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_a_tool_names_is_read_from_its_message() {
        let f = "002_unique.up.sql";
        assert_eq!(
            line_named(
                "psql:migrations/002_unique.up.sql:3: ERROR:  could not create unique index",
                f
            ),
            Some(3)
        );
        assert_eq!(
            line_named(
                "Runtime error near line 2: UNIQUE constraint failed: users.email (19)",
                f
            ),
            Some(2)
        );
        assert_eq!(
            line_named(
                "ERROR 1062 (23000) at line 4: Duplicate entry 'a' for key 'email'",
                f
            ),
            Some(4)
        );
        assert_eq!(line_named("applying migrations/002_unique.up.sql", f), None);
        assert_eq!(line_named("read 12 lines at line 3", f), None);
    }

    #[test]
    fn the_statement_covering_a_line_is_found() {
        let sql = "-- adds a; constraint\nALTER TABLE users\n  ADD COLUMN note text;\n\nINSERT INTO users (note) VALUES ('a;b');\nALTER TABLE users ADD CONSTRAINT u UNIQUE (email);";
        assert_eq!(
            statement_at(sql, 3).as_deref(),
            Some("ALTER TABLE users ADD COLUMN note text;")
        );
        assert_eq!(
            statement_at(sql, 5).as_deref(),
            Some("INSERT INTO users (note) VALUES ('a;b');")
        );
        assert_eq!(
            statement_at(sql, 6).as_deref(),
            Some("ALTER TABLE users ADD CONSTRAINT u UNIQUE (email);")
        );
        assert_eq!(statement_at("SELECT 1", 1).as_deref(), Some("SELECT 1"));
        assert_eq!(statement_at("SELECT 1;", 9), None);
    }
}
