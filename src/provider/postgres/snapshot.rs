//! One `psql` session holding a REPEATABLE READ transaction whose snapshot `pg_dump` imports
//! (`--snapshot`), so that the row counts and migration state recorded with a backup describe
//! exactly the data in it, even while the application keeps writing.

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::thread::JoinHandle;

use super::{Postgres, Rows, first_error_line, parse_output};
use crate::error::{Error, Kind, Result};

/// Printed on a line of its own after each statement so the end of its output is known. The
/// output itself may span lines (a value may hold a newline): everything before the marker is.
const END_MARKER: &str = "__faber_db_end_of_result__";

pub(super) struct SnapshotSession {
    io: RefCell<Pipes>,
    /// The exported snapshot, for `pg_dump --snapshot`.
    pub id: String,
}

struct Pipes {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// What psql prints on stderr, drained by a thread so it can never fill its pipe.
    stderr: Option<JoinHandle<String>>,
}

impl SnapshotSession {
    pub fn open(pg: &Postgres) -> Result<SnapshotSession> {
        let tools = pg.tools()?;
        // A failing statement (a migration table of another layout than the one tried) must
        // not end the transaction whose snapshot pg_dump imports: each statement gets an
        // implicit savepoint (ON_ERROR_ROLLBACK), psql goes on after an error, and every
        // statement's outcome is read back through psql's ERROR variable.
        let mut child = pg
            .psql_command(&tools.psql, &pg.conn.dbname)
            .args(["-v", "ON_ERROR_STOP=0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                Error::new(
                    Kind::ToolNotFound,
                    format!("cannot run {}", tools.psql.display()),
                )
                .caused_by(e)
            })?;
        let pipes = Pipes {
            stdin: child.stdin.take().expect("stdin is piped"),
            stdout: BufReader::new(child.stdout.take().expect("stdout is piped")),
            stderr: Some(crate::provider::tool::drain_stderr(&mut child)),
            child,
        };
        let mut session = SnapshotSession {
            io: RefCell::new(pipes),
            id: String::new(),
        };
        let rows = session.query(
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SELECT pg_export_snapshot();",
        )?;
        session.id = rows
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten())
            .ok_or_else(|| Error::tool("PostgreSQL exported no snapshot"))?;
        // Only now: a snapshot cannot be exported from inside the savepoints this sets up.
        session.query("\\set ON_ERROR_ROLLBACK on")?;
        Ok(session)
    }

    /// Runs one statement in the session's transaction.
    pub fn query(&self, sql: &str) -> Result<Rows> {
        let mut io = self.io.borrow_mut();
        let sent = writeln!(
            io.stdin,
            "{}\n\\echo {END_MARKER} :ERROR :LAST_ERROR_MESSAGE",
            // A psql meta-command (`\\set …`) takes no semicolon: it would become its value.
            if sql.starts_with('\\') {
                sql.to_string()
            } else {
                sql.trim_end_matches(';').to_string() + ";"
            }
        )
        .and_then(|()| io.stdin.flush());
        let mut output = String::new();
        let mut line = String::new();
        loop {
            line.clear();
            let read = if sent.is_ok() {
                io.stdout.read_line(&mut line)
            } else {
                Ok(0)
            };
            match read {
                Ok(0) | Err(_) => {
                    // psql stopped (ON_ERROR_STOP): its stderr says why.
                    let _ = io.child.wait();
                    let text = io
                        .stderr
                        .take()
                        .and_then(|h| h.join().ok())
                        .unwrap_or_default();
                    let message = first_error_line(&text)
                        .unwrap_or("psql stopped")
                        .to_string();
                    return Err(
                        Error::tool("a query in the backup's snapshot failed").caused_by(message)
                    );
                }
                Ok(_) => {}
            }
            if let Some(status) = line.trim_end_matches('\n').strip_prefix(END_MARKER) {
                // `true <message>` after a failed statement; a psql older than 11 prints the
                // variables' names, and then only a stopped psql tells of a failure.
                return match status.trim_start().strip_prefix("true") {
                    Some(message) => Err(Error::tool("a query in the backup's snapshot failed")
                        .caused_by(message.trim().to_string())),
                    None => Ok(parse_output(&output)),
                };
            }
            output.push_str(&line);
        }
    }

    /// Ends the transaction (its snapshot is no longer needed) and the session.
    pub fn close(self) {
        let mut io = self.io.into_inner();
        let _ = writeln!(io.stdin, "COMMIT;\n\\q");
        drop(io.stdin);
        let _ = io.child.wait();
    }
}
