//! Ctrl-C, SIGTERM and SIGHUP during a backup, a restore or a migration: instead of dying wherever it is, faber-db
//! notes the signal, the stream it is moving fails at the next read (a blocked read is cut short:
//! the handlers are installed without SA_RESTART), a tool it waits for is stopped, and the usual
//! failure path removes the partial file and reports "interrupted" (exit 8). A second signal
//! takes its default course at once — also after [`acknowledge`], which lets a migration cut short
//! go on to restore its pre-migration backup.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// A signal came and was dealt with (see [`acknowledge`]): the next one is not waited on.
static ACKNOWLEDGED: AtomicBool = AtomicBool::new(false);
/// The first signal that came.
static SIGNAL: AtomicI32 = AtomicI32::new(0);
/// How many [`Guard`]s are alive: the handlers are installed by the first and put back by the
/// last, so that a prompt outside them still ends on Ctrl-C as usual.
static GUARDS: AtomicUsize = AtomicUsize::new(0);
/// The dispositions found before the first guard, put back by the last.
static PREVIOUS: Mutex<Vec<(libc::c_int, libc::sigaction)>> = Mutex::new(Vec::new());

/// A terminal closed (SIGHUP) is a cancel like the others: a CI runner or an agent's shell that
/// goes away must not leave a migration or a restore half-done.
const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Catches SIGINT, SIGTERM and SIGHUP while it lives.
pub struct Guard(());

/// Starts catching SIGINT, SIGTERM and SIGHUP.
pub fn guard() -> Guard {
    if GUARDS.fetch_add(1, Ordering::SeqCst) == 0 {
        let saved = install(on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t);
        *PREVIOUS.lock().unwrap_or_else(|e| e.into_inner()) = saved;
    }
    Guard(())
}

impl Drop for Guard {
    fn drop(&mut self) {
        if GUARDS.fetch_sub(1, Ordering::SeqCst) == 1 {
            restore(&PREVIOUS.lock().unwrap_or_else(|e| e.into_inner()));
        }
    }
}

/// Whether a signal came while a guard was alive.
pub fn happened() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// The name of the signal that came (`SIGTERM`), if one did.
pub fn signal_name() -> Option<&'static str> {
    match SIGNAL.load(Ordering::SeqCst) {
        libc::SIGINT => Some("SIGINT"),
        libc::SIGTERM => Some("SIGTERM"),
        libc::SIGHUP => Some("SIGHUP"),
        0 => None,
        _ => Some("a signal"),
    }
}

/// Marks the signal that came as dealt with: the work that follows (a migration's automatic
/// restore) runs as if none had come, and a second signal ends faber-db at once.
pub fn acknowledge() {
    ACKNOWLEDGED.store(true, Ordering::SeqCst);
    INTERRUPTED.store(false, Ordering::SeqCst);
}

/// Fails once a signal came: called by the readers of the streams faber-db moves.
pub fn check() -> std::io::Result<()> {
    if happened() {
        Err(std::io::Error::other("interrupted"))
    } else {
        Ok(())
    }
}

/// Set while a database is being changed (a restore's commit): a signal then waits for the end.
static HELD: AtomicBool = AtomicBool::new(false);

/// While it lives, tools are not stopped by a signal: what they do is finished first.
pub struct Hold(());

pub fn hold() -> Hold {
    HELD.store(true, Ordering::SeqCst);
    Hold(())
}

impl Drop for Hold {
    fn drop(&mut self) {
        HELD.store(false, Ordering::SeqCst);
    }
}

/// Waits for a tool, stopping it (and the processes it started: its process group) once a
/// signal came — unless a [`Hold`] is in force.
pub fn wait_for(child: &mut std::process::Child) -> std::io::Result<std::process::ExitStatus> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if happened() && !HELD.load(Ordering::SeqCst) {
            // SAFETY: kill is a plain system call; the group is the tool's own (child::tool).
            unsafe {
                libc::kill(-child.id().cast_signed(), libc::SIGKILL);
            }
            let _ = child.kill();
            return child.wait();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

extern "C" fn on_signal(signal: libc::c_int) {
    // The second signal is not waited on: it does what it would have done.
    let _ = SIGNAL.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
    if INTERRUPTED.swap(true, Ordering::SeqCst) || ACKNOWLEDGED.load(Ordering::SeqCst) {
        // SAFETY: signal and raise are async-signal-safe.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
    }
}

/// Installs `handler` for SIGINT, SIGTERM and SIGHUP, without SA_RESTART; returns what was there.
fn install(handler: libc::sighandler_t) -> Vec<(libc::c_int, libc::sigaction)> {
    let mut previous = Vec::new();
    for signal in SIGNALS {
        // SAFETY: sigaction with a zeroed, filled-in struct; the handlers installed here only
        // make async-signal-safe calls.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler;
            action.sa_flags = 0;
            libc::sigemptyset(&raw mut action.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, &raw const action, &raw mut old) == 0 {
                previous.push((signal, old));
            }
        }
    }
    previous
}

fn restore(previous: &[(libc::c_int, libc::sigaction)]) {
    for (signal, old) in previous {
        // SAFETY: puts back a disposition sigaction itself returned.
        unsafe {
            libc::sigaction(*signal, old, std::ptr::null_mut());
        }
    }
}

/// The terminal's settings before a prompt, for the signal handler to put back.
static mut PROMPT_TERMIOS: libc::termios = unsafe { std::mem::zeroed() };
static HAVE_PROMPT_TERMIOS: AtomicBool = AtomicBool::new(false);

/// While it lives (around a confirmation prompt), Ctrl-C, SIGTERM or SIGHUP puts the terminal back as it
/// was — echo on, cursor shown — says "interrupted" and exits 8, instead of dying with the
/// prompt's terminal settings still in force.
pub struct PromptGuard(Vec<(libc::c_int, libc::sigaction)>);

pub fn prompt_guard() -> PromptGuard {
    // SAFETY: tcgetattr writes the struct the pointer points to; nothing else uses it before
    // the handler is installed below.
    unsafe {
        let saved = libc::tcgetattr(0, &raw mut PROMPT_TERMIOS) == 0;
        HAVE_PROMPT_TERMIOS.store(saved, Ordering::SeqCst);
    }
    PromptGuard(install(
        on_prompt_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
    ))
}

impl Drop for PromptGuard {
    fn drop(&mut self) {
        restore(&self.0);
    }
}

extern "C" fn on_prompt_signal(_: libc::c_int) {
    const MESSAGE: &[u8] = b"\x1b[?25h\nerror: interrupted; nothing was changed\n";
    // SAFETY: tcsetattr, write and _exit are async-signal-safe; the termios was saved before
    // this handler was installed.
    unsafe {
        if HAVE_PROMPT_TERMIOS.load(Ordering::SeqCst) {
            libc::tcsetattr(0, libc::TCSANOW, &raw const PROMPT_TERMIOS);
        }
        libc::write(2, MESSAGE.as_ptr().cast(), MESSAGE.len());
        libc::_exit(8);
    }
}
