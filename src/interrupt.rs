//! Ctrl-C and SIGTERM during a backup or a restore: instead of dying wherever it is, faber-db
//! notes the signal, the stream it is moving fails at the next read, and the usual failure path
//! stops the dump tool, removes the partial file and reports "interrupted" (exit 8).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// How many [`Guard`]s are alive: the handlers are installed by the first and removed by the
/// last, so that a prompt outside them still ends on Ctrl-C as usual.
static GUARDS: AtomicUsize = AtomicUsize::new(0);

/// Catches SIGINT and SIGTERM while it lives.
pub struct Guard(());

/// Starts catching SIGINT and SIGTERM.
pub fn guard() -> Guard {
    if GUARDS.fetch_add(1, Ordering::SeqCst) == 0 {
        set_handlers(true);
    }
    Guard(())
}

impl Drop for Guard {
    fn drop(&mut self) {
        if GUARDS.fetch_sub(1, Ordering::SeqCst) == 1 {
            set_handlers(false);
        }
    }
}

/// Whether a signal came while a guard was alive.
pub fn happened() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Fails once a signal came: called by the readers of the streams faber-db moves.
pub fn check() -> std::io::Result<()> {
    if happened() {
        Err(std::io::Error::other("interrupted"))
    } else {
        Ok(())
    }
}

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn set_handlers(catch: bool) {
    let handler = if catch {
        on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t
    } else {
        libc::SIG_DFL
    };
    install(handler);
}

/// The terminal's settings before a prompt, for the signal handler to put back.
static mut PROMPT_TERMIOS: libc::termios = unsafe { std::mem::zeroed() };
static HAVE_PROMPT_TERMIOS: AtomicBool = AtomicBool::new(false);

/// While it lives (around a confirmation prompt), Ctrl-C or SIGTERM puts the terminal back as it
/// was — echo on, cursor shown — says "interrupted" and exits 8, instead of dying with the
/// prompt's terminal settings still in force.
pub struct PromptGuard(());

pub fn prompt_guard() -> PromptGuard {
    // SAFETY: tcgetattr writes the struct the pointer points to; nothing else uses it before
    // the handler is installed below.
    unsafe {
        let saved = libc::tcgetattr(0, &raw mut PROMPT_TERMIOS) == 0;
        HAVE_PROMPT_TERMIOS.store(saved, Ordering::SeqCst);
    }
    install(on_prompt_signal as extern "C" fn(libc::c_int) as libc::sighandler_t);
    PromptGuard(())
}

impl Drop for PromptGuard {
    fn drop(&mut self) {
        set_handlers(GUARDS.load(Ordering::SeqCst) > 0);
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

fn install(handler: libc::sighandler_t) {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handlers installed here only make async-signal-safe calls.
        unsafe {
            libc::signal(signal, handler);
        }
    }
}
