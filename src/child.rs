//! Child processes (pg_dump, pg_restore, psql, …) that never outlive faber-db: a dump tool left
//! running after faber-db was killed would keep loading the server and writing into a `.partial`
//! directory the next run sweeps away.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A database tool as faber-db runs it: in a process group of its own, so that Ctrl-C at the
/// terminal reaches faber-db alone (which stops the tool itself, at a point it chooses — never
/// halfway through swapping a database in), and ended when faber-db dies.
pub fn tool(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    dies_with_us(cmd)
}

/// Lets the child inherit `fd` (every other descriptor stays close-on-exec): a lock held through
/// it then lasts as long as the child and whatever it starts, even if faber-db dies first.
pub fn inherit_fd(cmd: &mut Command, fd: std::os::fd::RawFd) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: fcntl is async-signal-safe; the descriptor is open in the parent.
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// Makes the child receive SIGTERM when the thread that spawns it ends (Linux): spawn from a
/// thread that lives as long as the child is needed — the main thread, in faber-db.
pub fn dies_with_us(cmd: &mut Command) -> &mut Command {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let parent = std::process::id().cast_signed();
        // SAFETY: between fork and exec the closure makes only async-signal-safe calls (prctl,
        // getppid) and allocates nothing but the error on failure.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // faber-db may have died before the signal was armed.
                if libc::getppid() != parent {
                    return Err(std::io::Error::other("faber-db exited"));
                }
                Ok(())
            });
        }
    }
    cmd
}

/// Widens a pipe to a tool to 1 MiB (Linux; the default is 64 KiB), so that the tool and
/// faber-db wake each other sixteen times less often on a stream of gigabytes. Best effort: a
/// system that refuses keeps its default.
pub fn widen_pipe(pipe: &impl std::os::fd::AsRawFd) {
    #[cfg(target_os = "linux")]
    // SAFETY: F_SETPIPE_SZ on a descriptor this process owns; it only changes the capacity.
    unsafe {
        libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = pipe;
}

/// What a bounded run of a child gave. Not `Debug`: its output may hold a secret.
pub struct Bounded {
    pub stdout: String,
    pub stderr: String,
    /// It ran past its deadline and was stopped.
    pub overran: bool,
    /// It ended by itself with exit code 0.
    pub success: bool,
}

/// Runs `cmd` (no stdin, output captured; it dies with us) until `deadline`. Past it, the child
/// gets SIGTERM — a faber-db run then stops and removes what it wrote — and SIGKILL 30 s later.
pub fn run_bounded(cmd: Command, deadline: Instant) -> std::io::Result<Bounded> {
    run_bounded_with_grace(cmd, deadline, Duration::from_secs(30), false)
}

/// [`run_bounded`] for a command that may start others (a script, a CLI): it runs in a process
/// group of its own, and past `deadline` the whole group gets SIGTERM, then SIGKILL after
/// `grace` — so that a grandchild holding its output open cannot keep the caller waiting.
pub fn run_bounded_group(
    mut cmd: Command,
    deadline: Instant,
    grace: Duration,
) -> std::io::Result<Bounded> {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    run_bounded_with_grace(cmd, deadline, grace, true)
}

/// Output read on a thread of its own: what has come so far, and word when the stream ended.
struct Pumped {
    text: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    ended: std::sync::mpsc::Receiver<()>,
}

impl Pumped {
    /// Everything, once the stream has ended or `until` has passed.
    fn take(self, until: Instant) -> String {
        let _ = self
            .ended
            .recv_timeout(until.saturating_duration_since(Instant::now()));
        let bytes = self.text.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

fn pump(stream: Option<Box<dyn Read + Send>>) -> Pumped {
    let (tx, ended) = std::sync::mpsc::channel();
    let text = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let into = text.clone();
    std::thread::spawn(move || {
        if let Some(mut r) = stream {
            let mut buf = [0u8; 8192];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut text) = into.lock() {
                    text.extend_from_slice(&buf[..n]);
                }
            }
        }
        let _ = tx.send(());
    });
    Pumped { text, ended }
}

/// How long the output is waited for once the child has ended: a process it left behind may
/// hold the pipe open, and is not waited for.
const OUTPUT_AFTER_EXIT: Duration = Duration::from_secs(2);

fn run_bounded_with_grace(
    mut cmd: Command,
    deadline: Instant,
    grace: Duration,
    group: bool,
) -> std::io::Result<Bounded> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    dies_with_us(&mut cmd);
    let mut child = cmd.spawn()?;
    let out = pump(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = pump(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let pid = child.id().cast_signed();
    // SAFETY: signals to the child this function started (or to its own process group), not
    // yet reaped.
    let signal = |sig: libc::c_int| unsafe {
        libc::kill(if group { -pid } else { pid }, sig);
    };
    let mut overran = false;
    let mut success = false;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                success = status.success() && !overran;
                break;
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) if !overran => {
                overran = true;
                signal(libc::SIGTERM);
            }
            Ok(None) if Instant::now() < deadline + grace => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                signal(libc::SIGKILL);
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
        }
    }
    if group && overran {
        signal(libc::SIGKILL);
    }
    let until = Instant::now() + OUTPUT_AFTER_EXIT;
    Ok(Bounded {
        stdout: out.take(until),
        stderr: err.take(until),
        overran,
        success,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script);
        cmd
    }

    #[test]
    fn a_child_within_its_deadline_gives_its_output() {
        let run = run_bounded(
            sh("echo out; echo err >&2"),
            Instant::now() + Duration::from_secs(30),
        )
        .unwrap();
        assert_eq!(run.stdout, "out\n");
        assert_eq!(run.stderr, "err\n");
        assert!(!run.overran);
    }

    #[test]
    fn a_child_past_its_deadline_is_stopped() {
        let started = Instant::now();
        let run = run_bounded(
            sh("echo started; exec sleep 30"),
            started + Duration::from_millis(200),
        )
        .unwrap();
        assert!(run.overran);
        assert_eq!(run.stdout, "started\n");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_child_deaf_to_sigterm_is_killed_after_the_grace() {
        let started = Instant::now();
        let run = run_bounded_with_grace(
            sh("trap '' TERM; echo started; while :; do sleep 0.05; done"),
            started + Duration::from_millis(200),
            Duration::from_millis(300),
            false,
        )
        .unwrap();
        assert!(run.overran);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_group_past_its_deadline_is_stopped_with_what_it_started() {
        // The script's `sleep` holds the output pipe open: without the group, the caller would
        // wait for it after the script itself was stopped.
        let started = Instant::now();
        let run = run_bounded_group(
            sh("sleep 30; echo never"),
            started + Duration::from_millis(200),
            Duration::from_millis(300),
        )
        .unwrap();
        assert!(run.overran && !run.success);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        // A child that ends and leaves one behind holding the pipe: its output is not waited
        // for past a short while.
        let started = Instant::now();
        let run = run_bounded(
            sh("(sleep 30 &); echo done"),
            started + Duration::from_secs(20),
        )
        .unwrap();
        assert!(run.success && !run.overran);
        assert_eq!(run.stdout, "done\n");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }
}
