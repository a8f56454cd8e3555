//! Running the database's own command-line tools: feeding them a dump, naming the scratch
//! databases they load into.

use std::io::Read;
use std::process::{Command, Stdio};

use super::Source;
use crate::error::{Error, Kind, Result};

/// Runs `cmd`, with `source` on its stdin when it is a stream (a path is already among the
/// command's arguments); the tool's exit code and stderr decide success.
pub fn feed(cmd: Command, source: Source<'_>, what: &str) -> Result<()> {
    run_fed(cmd, source, what, None).map(drop)
}

/// [`feed`], and the lines the tool printed on its stdout that `keep` keeps (the others are
/// read and dropped as they come: a tool may print a line per statement of a large dump).
pub fn feed_output(
    cmd: Command,
    source: Source<'_>,
    what: &str,
    keep: fn(&str) -> bool,
) -> Result<Vec<String>> {
    run_fed(cmd, source, what, Some(keep))
}

/// [`feed`], keeping the lines of the tool's stdout that `keep` keeps (with none, it goes
/// nowhere).
fn run_fed(
    mut cmd: Command,
    source: Source<'_>,
    what: &str,
    keep: Option<fn(&str) -> bool>,
) -> Result<Vec<String>> {
    let source: Option<&mut dyn Read> = match source {
        Source::Stream(s) => Some(s),
        Source::Path(p) => {
            cmd.arg(p);
            None
        }
    };
    let mut child = cmd
        .stdin(if source.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(if keep.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::new(Kind::ToolNotFound, format!("cannot run {what}")).caused_by(e))?;
    let stderr_reader = drain_stderr(&mut child);
    let stdout_reader = child
        .stdout
        .take()
        .zip(keep)
        .map(|(out, keep)| drain_lines(out, keep));
    let fed = match (source, child.stdin.take()) {
        (Some(source), Some(mut stdin)) => {
            crate::child::widen_pipe(&stdin);
            crate::pipeline::copy(source, &mut stdin)
                .and_then(|_| std::io::Write::flush(&mut stdin))
        }
        _ => Ok(()),
    };
    let status = crate::interrupt::wait_for(&mut child)
        .map_err(|e| Error::tool(format!("{what} did not finish")).caused_by(e))?;
    let stderr = stderr_reader.join().unwrap_or_default();
    let stdout = stdout_reader
        .and_then(|reader| reader.join().ok())
        .unwrap_or_default();
    if let Err(e) = fed {
        // A tool that stops reading closes the pipe: fine when it succeeded (it had all it
        // needed), and its own message says why when it failed.
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(Error::verification("the backup's data stream is unreadable").caused_by(e));
        }
    }
    if !status.success() {
        return Err(failure(what, &stderr));
    }
    Ok(stdout)
}

/// The failure of tool `what` (`psql`), with the lines of its `stderr` that say what went
/// wrong.
pub fn failure(what: &str, stderr: &str) -> Error {
    let mut err = Error::tool(format!("{what} failed"));
    let prefix = format!("{what}: ");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    // The lines that say what went wrong, when the tool marks them (MySQL's client prints
    // the failing statement first); else the first few. Each is cut short: a failing
    // statement can carry a whole table's rows.
    let marked: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains("ERROR") || l.contains("error:"))
        .collect();
    let chosen = if marked.is_empty() { lines } else { marked };
    for line in chosen.into_iter().take(5) {
        err = err.caused_by(shorten(
            line.trim_start_matches(prefix.as_str())
                .trim_start_matches("psql:")
                .trim(),
        ));
    }
    err
}

/// The target's name cut to 30 bytes at a character boundary: with the suffix, a scratch name
/// stays within PostgreSQL's 63-byte limit and is never truncated.
pub fn scratch_stem(target: &str) -> &str {
    let mut end = target.len().min(30);
    while !target.is_char_boundary(end) {
        end -= 1;
    }
    &target[..end]
}

/// Reads a tool's stderr to the end on a thread of its own, so that it can never fill its pipe
/// and block the tool; the text comes back when joined.
pub fn drain_stderr(child: &mut std::process::Child) -> std::thread::JoinHandle<String> {
    drain(child.stderr.take())
}

/// Reads `pipe` to the end on a thread of its own, line by line; the lines `keep` keeps come
/// back when joined, bytes that are not UTF-8 replaced.
fn drain_lines(
    pipe: impl Read + Send + 'static,
    keep: fn(&str) -> bool,
) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut reader = std::io::BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match std::io::BufRead::read_until(&mut reader, b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim_end_matches(['\n', '\r']);
                    if keep(text) {
                        kept.push(text.to_string());
                    }
                }
            }
        }
        kept
    })
}

/// Reads `pipe` (if any) to the end on a thread of its own; the text comes back when joined.
/// Bytes that are not UTF-8 are replaced, not a reason to stop reading: a tool whose pipe is
/// no longer read blocks.
fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// A line of a tool's output cut to 300 characters.
fn shorten(line: &str) -> String {
    if line.chars().count() > 300 {
        format!("{}…", line.chars().take(299).collect::<String>())
    } else {
        line.to_string()
    }
}

/// A random-enough hex suffix for a scratch database's name.
pub fn random_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{:x}",
        u64::try_from(nanos).unwrap_or(u64::MAX) ^ (u64::from(std::process::id()) << 32)
    )
}

/// Whether `name` can name a new database (`restore --into`): not empty, no control character,
/// and not over the server's limit — `too_long` says so, in the server's own terms, when it is —
/// and `exists` false (a database by that name is never touched).
pub fn check_new_database(
    name: &str,
    too_long: Option<String>,
    limit: &str,
    exists: bool,
) -> Result<()> {
    let bad = |why: &str| {
        Error::config(format!("--into: {why}")).with_hint(format!(
            "name a new database: up to {limit}, no control characters"
        ))
    };
    if name.is_empty() {
        return Err(bad("the name is empty"));
    }
    if name.chars().any(char::is_control) {
        return Err(bad("the name holds a control character"));
    }
    if let Some(why) = too_long {
        return Err(bad(&why));
    }
    if exists {
        return Err(Error::config(format!(
            "database {name} already exists on the server; a restore --into makes a new database and never replaces one"
        ))
        .with_hint("choose another name, or drop that database yourself if nothing needs it"));
    }
    Ok(())
}
