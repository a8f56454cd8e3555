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
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(signal, handler);
        }
    }
}
