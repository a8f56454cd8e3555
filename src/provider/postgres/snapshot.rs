//! One `psql` session holding a REPEATABLE READ transaction whose snapshot `pg_dump` imports
//! (`--snapshot`), so that the row counts and migration state recorded with a backup describe
//! exactly the data in it, even while the application keeps writing.

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Stdio};
use std::thread::JoinHandle;

use super::{Postgres, Rows, first_error_line, parse_row};
use crate::error::{Error, Kind, Result};

/// Printed after each statement so the end of its output is known.
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
        let mut child = pg
            .psql_command(&tools.psql, &pg.conn.dbname)
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
            stderr: Some(drain(child.stderr.take().expect("stderr is piped"))),
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
        Ok(session)
    }

    /// Runs one statement in the session's transaction.
    pub fn query(&self, sql: &str) -> Result<Rows> {
        let mut io = self.io.borrow_mut();
        let sent = writeln!(
            io.stdin,
            "{}\n\\echo {END_MARKER}",
            sql.trim_end_matches(';').to_string() + ";"
        )
        .and_then(|()| io.stdin.flush());
        let mut rows = Vec::new();
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
            let text = line.trim_end_matches('\n');
            if text == END_MARKER {
                return Ok(rows);
            }
            if !text.is_empty() {
                rows.push(parse_row(text));
            }
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

fn drain(mut stderr: ChildStderr) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    })
}
