//! Progress bars with bytes and throughput, on a terminal only (DESIGN.md §9).

use std::fs::File;
use std::io::{self, IsTerminal, Read};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::provider::{TableNow, TableProgress};

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
    /// The table the dump is in, which the bar's message shows after the size.
    tables: Option<&'a TableProgress>,
    /// The number of the table last shown.
    table_shown: usize,
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
            tables: None,
            table_shown: 0,
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

    /// Also shows the table the dump is in, its number and rows: `table 3 events: 120000 rows`.
    pub fn showing_tables(mut self, tables: &'a TableProgress) -> Self {
        self.tables = Some(tables);
        self
    }

    fn show_stored(&mut self, bar: &ProgressBar) {
        let Some((file, label)) = self.stored else {
            return;
        };
        let table = self.tables.and_then(TableProgress::now);
        let moved_on = table.as_ref().is_some_and(|t| t.number != self.table_shown);
        if self.read - self.shown_at < STORED_EVERY && !moved_on {
            return;
        }
        self.shown_at = self.read;
        if let Some(t) = &table {
            self.table_shown = t.number;
        }
        if let Ok(m) = file.metadata() {
            bar.set_message(message(label, m.len(), table.as_ref()));
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

/// The bar's message: `<label> → <stored size>`, then the table the dump is in.
fn message(label: &str, stored: u64, table: Option<&TableNow>) -> String {
    let mut text = format!("{label} → {}", crate::human::size(stored));
    if let Some(t) = table {
        text.push_str(&format!(
            ", table {} {}: {}",
            t.number,
            t.name,
            crate::human::count(t.rows, "row")
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_table_its_number_and_rows() {
        assert_eq!(message("dump (zstd)", 2048, None), "dump (zstd) → 2.0 KiB");
        let t = TableNow {
            number: 3,
            name: "billing.events".into(),
            rows: 1,
        };
        assert_eq!(
            message("dump (zstd)", 2048, Some(&t)),
            "dump (zstd) → 2.0 KiB, table 3 billing.events: 1 row"
        );
    }
}
