//! Progress bars with bytes and throughput, on a terminal only (DESIGN.md §9).

use std::fs::File;
use std::io::{self, IsTerminal, Read};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar over `total` bytes, or nothing when `shown` is false (JSON or quiet output) or stderr
/// is not a terminal.
pub fn bar(shown: bool, total: u64, what: &str) -> Option<ProgressBar> {
    if !shown || !io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}, {elapsed} (eta {eta})",
    )
    .map_or_else(
        |_| ProgressStyle::default_bar(),
        |s| s.progress_chars("=> "),
    );
    bar.set_style(style);
    bar.set_message(what.to_string());
    Some(bar)
}

/// Counts the bytes read through it onto a bar, and fails once faber-db was interrupted.
pub struct Reader<'a, R: ?Sized> {
    inner: &'a mut R,
    bar: Option<&'a ProgressBar>,
    /// The file the stream is stored in, whose size the bar's message shows.
    stored: Option<(&'a File, &'a str)>,
    read: u64,
    shown_at: u64,
}

/// How often (in bytes read) the stored size is looked up.
const STORED_EVERY: u64 = 8 << 20;

impl<'a, R: Read + ?Sized> Reader<'a, R> {
    pub fn new(inner: &'a mut R, bar: Option<&'a ProgressBar>) -> Self {
        Reader {
            inner,
            bar,
            stored: None,
            read: 0,
            shown_at: 0,
        }
    }

    /// Also shows, as the bar's message, `<label> → <size> <compression>` of the file being
    /// written (its size on disk, looked up every few MiB).
    pub fn showing_stored(mut self, file: &'a File, label: &'a str) -> Self {
        self.stored = Some((file, label));
        self
    }

    fn show_stored(&mut self, bar: &ProgressBar) {
        let Some((file, label)) = self.stored else {
            return;
        };
        if self.read - self.shown_at < STORED_EVERY {
            return;
        }
        self.shown_at = self.read;
        if let Ok(m) = file.metadata() {
            bar.set_message(format!("{label} → {}", crate::human::size(m.len())));
        }
    }
}

impl<R: Read + ?Sized> Read for Reader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = loop {
            crate::interrupt::check()?;
            match self.inner.read(buf) {
                // A read cut short by a signal: go on, unless it was the interrupt.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other?,
            }
        };
        self.read += n as u64;
        if let Some(bar) = self.bar {
            bar.inc(n as u64);
            self.show_stored(bar);
        }
        Ok(n)
    }
}
