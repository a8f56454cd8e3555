//! The environment's `migrate_command`, run bounded and stoppable: `sh -c` in the project root
//! with `DATABASE_URL` set (for a rehearsal, to the scratch copy's URL, with every variable that
//! reaches the environment's database), in a process group of its own that a signal stops as a
//! whole.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::Environment;
use crate::session::Session;

/// How many of the command's last output lines a failure report keeps.
const TAIL_LINES: usize = 20;

/// How long the migrate command's processes have after SIGTERM before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Where the migrate command is pointed, and what of its output is never shown.
pub(super) struct Target {
    /// Every variable of the child's environment to set: `DATABASE_URL`, and for a rehearsal
    /// every variable that reaches the environment's database. Values carry passwords.
    pub vars: Vec<(String, String)>,
    /// Variables of faber-db's environment the child must not inherit (for a rehearsal, those
    /// by which a client could pick the environment's own database over the copy).
    pub unset: Vec<&'static str>,
    /// Secrets blanked out of the output.
    pub secrets: Vec<String>,
}

impl Target {
    /// The environment's own database, as a migration runs against it: `DATABASE_URL` set to its
    /// URL; the other variables as they are.
    pub(super) fn own(session: &Session, env: &Environment) -> Result<Target, CommandFailed> {
        let url = session
            .raw_url(env)
            .map_err(|e| CommandFailed::before(e.one_line()))?;
        Ok(Target {
            vars: vec![("DATABASE_URL".to_string(), url)],
            unset: Vec::new(),
            secrets: session.url(env).map(|u| u.secrets()).unwrap_or_default(),
        })
    }
}

/// A migrate command that failed: what failed (secrets blanked out), its last lines of output,
/// and its exit code when it exited on its own.
#[derive(Debug)]
pub(super) struct CommandFailed {
    pub what: String,
    pub tail: Vec<String>,
    pub code: Option<i32>,
}

impl CommandFailed {
    fn before(what: String) -> CommandFailed {
        CommandFailed {
            what,
            tail: Vec::new(),
            code: None,
        }
    }
}

/// Runs `command` with `sh -c` in the project root, with the variables of `target` set (the
/// rest of the environment as faber-db's). Each line of its output (the secrets blanked out)
/// goes to `on_output` as it comes; the last lines are kept for the report.
pub(super) fn run_command(
    session: &Session,
    command: &str,
    target: &Target,
    lock_fd: Option<std::os::fd::RawFd>,
    on_output: &(dyn Fn(&str) + Sync),
) -> Result<Vec<String>, CommandFailed> {
    // The command's output is shown and kept, but never a URL's password.
    let secrets = &target.secrets;
    let mut cmd = Command::new("sh");
    // A process group of its own: Ctrl-C at the terminal reaches faber-db alone, which stops the
    // whole group — the tool and whatever it started — itself.
    crate::child::tool(&mut cmd);
    // The migration's processes hold the environment's lock too: a restore cannot start while a
    // migration tool left running by a killed faber-db still writes.
    if let Some(fd) = lock_fd {
        crate::child::inherit_fd(&mut cmd, fd);
    }
    cmd.arg("-c").arg(command).current_dir(&session.config.root);
    for var in &target.unset {
        cmd.env_remove(var);
    }
    for (var, value) in &target.vars {
        cmd.env(var, value);
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return Err(CommandFailed::before(format!("cannot run sh: {e}"))),
    };
    let tail = Mutex::new(Vec::new());
    let pump = |stream: Box<dyn Read + Send>| {
        for line in BufReader::new(stream).lines().map_while(|l| l.ok()) {
            let line = crate::provider::blank_out(&line, secrets);
            on_output(&line);
            let mut t = tail.lock().expect("not poisoned");
            t.push(line);
            if t.len() > TAIL_LINES {
                t.remove(0);
            }
        }
    };
    let stdout: Box<dyn Read + Send> = Box::new(child.stdout.take().expect("piped"));
    let stderr: Box<dyn Read + Send> = Box::new(child.stderr.take().expect("piped"));
    let status = std::thread::scope(|s| {
        let out = s.spawn(|| pump(stdout));
        let err = s.spawn(|| pump(stderr));
        let status = wait_stopping(&mut child);
        let _ = out.join();
        let _ = err.join();
        status
    });
    let tail = tail.into_inner().expect("not poisoned");
    let (what, code) = match status {
        Ok(s) if s.success() => return Ok(tail),
        Ok(_) if crate::interrupt::happened() => (
            format!(
                "`{command}` was stopped on {}",
                crate::interrupt::signal_name().unwrap_or("a signal")
            ),
            None,
        ),
        Ok(s) => match s.code() {
            Some(code) => (format!("`{command}` exited with {code}"), Some(code)),
            None => (format!("`{command}` was killed"), None),
        },
        Err(e) => (format!("`{command}` did not finish: {e}"), None),
    };
    Err(CommandFailed { what, tail, code })
}

/// Waits for the migrate command. Once a signal came, stops its process group: SIGTERM (a
/// migration tool may end its transaction cleanly), then SIGKILL for whatever is left after
/// [`STOP_GRACE`] — so that no process of it writes to the database while the backup is
/// restored.
fn wait_stopping(child: &mut std::process::Child) -> std::io::Result<std::process::ExitStatus> {
    let group = child.id().cast_signed();
    // SAFETY: kill is a plain system call; the group is the command's own (child::tool).
    let signal_group = |sig| unsafe { libc::kill(-group, sig) == 0 };
    loop {
        if let Some(status) = child.try_wait()? {
            if !crate::interrupt::happened() {
                return Ok(status);
            }
            // Stopped, or ended just as the signal came: what it started goes too.
            signal_group(libc::SIGKILL);
            return Ok(status);
        }
        if crate::interrupt::happened() {
            signal_group(libc::SIGTERM);
            let started = Instant::now();
            let mut status = None;
            // Until the whole group is gone (the leader reaped, no member left), or the grace ends.
            while started.elapsed() < STOP_GRACE {
                if status.is_none() {
                    status = child.try_wait()?;
                }
                if status.is_some() && !signal_group(0) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            signal_group(libc::SIGKILL);
            return match status {
                Some(s) => Ok(s),
                None => child.wait(),
            };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
