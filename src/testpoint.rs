//! Places where the test suite can stop a run, to kill it there and check what a crash at that
//! point leaves behind. Only in debug builds (the ones `cargo test` runs): a release build has
//! none.

/// With `FABER_TEST_PAUSE_AT=<name>`, the first time the run gets here: writes the file
/// `FABER_TEST_PAUSE_MARKER` names and waits a minute (for the test to kill it), or until the test
/// removes that file (to let it go on).
/// Does nothing otherwise, and nothing in release builds.
pub fn pause(name: &str) {
    // Once a run: a point inside a loop stops it the first time it is reached.
    #[cfg(debug_assertions)]
    static PAUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    #[cfg(debug_assertions)]
    if std::env::var("FABER_TEST_PAUSE_AT").is_ok_and(|v| v == name)
        && !PAUSED.swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        if let Ok(marker) = std::env::var("FABER_TEST_PAUSE_MARKER") {
            let _ = std::fs::write(marker, name);
        }
        // A signal (see interrupt) ends the wait, as it would end real work.
        let started = std::time::Instant::now();
        let marker = std::env::var_os("FABER_TEST_PAUSE_MARKER");
        let released = || {
            marker
                .as_ref()
                .is_some_and(|m| !std::path::Path::new(m).exists())
        };
        while started.elapsed() < std::time::Duration::from_secs(60)
            && !crate::interrupt::happened()
            && !released()
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}

/// Reads through to `inner`, stopping at test point `name` once, before its second read: a run
/// paused there has handed the first part of a stream on and is in the middle of loading it.
pub struct PauseMidway<R> {
    inner: R,
    name: &'static str,
    reads: u32,
}

impl<R> PauseMidway<R> {
    pub fn new(inner: R, name: &'static str) -> PauseMidway<R> {
        PauseMidway {
            inner,
            name,
            reads: 0,
        }
    }
}

impl<R: std::io::Read> std::io::Read for PauseMidway<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.reads == 1 {
            pause(self.name);
        }
        self.reads = self.reads.saturating_add(1);
        self.inner.read(buf)
    }
}
