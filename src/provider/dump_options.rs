//! What a dump is asked for besides where it goes: the format, the migrations table to read,
//! the tables whose rows are left out, and how thoroughly an SQLite snapshot is checked.

use std::io::{self, Read};
use std::sync::Mutex;

use crate::format::Format;

/// The options of [`super::Provider::dump`].
#[derive(Debug, Clone, Copy)]
pub struct DumpOptions<'a> {
    pub format: Format,
    pub migrations_table: Option<&'a str>,
    /// Patterns of the tables whose rows are left out (see [`super::exclude`]); their schema is
    /// kept, and the returned counts mark them.
    pub exclude_data: &'a [String],
    /// SQLite: `PRAGMA integrity_check` on the snapshot instead of `quick_check`
    /// (`--full-check`, `sqlite_full_check`). Server databases' dumps ignore it.
    pub full_check: bool,
    /// Where a dump that reads its tables one after another in its stream (PostgreSQL's COPY
    /// blocks, MySQL's INSERTs) says which one it is in, for a progress display.
    pub tables: Option<&'a TableProgress>,
}

/// The table a dump's stream is in: updated as the stream goes by, read by whoever shows
/// progress. A lock taken once per read of the stream.
#[derive(Debug, Default)]
pub struct TableProgress {
    now: Mutex<Option<TableNow>>,
}

/// The table being read: its place among the tables read so far (from 1), name and rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNow {
    pub number: usize,
    pub name: String,
    pub rows: u64,
}

impl TableProgress {
    /// The stream moved on to table `name`, with `rows` of it read so far.
    pub fn at(&self, name: &str, rows: u64) {
        let Ok(mut now) = self.now.lock() else {
            return;
        };
        match now.as_mut() {
            Some(t) if t.name == name => t.rows = rows,
            _ => {
                let number = now.as_ref().map_or(1, |t| t.number + 1);
                *now = Some(TableNow {
                    number,
                    name: name.to_string(),
                    rows,
                });
            }
        }
    }

    pub fn now(&self) -> Option<TableNow> {
        self.now.lock().ok().and_then(|now| now.clone())
    }
}

/// What a dump records in `verification.integrity_check` when its SQLite snapshot passed
/// `PRAGMA quick_check` rather than the full `integrity_check` ("ok").
pub const QUICK_CHECK_PASSED: &str = "quick";

/// A dump stream that knows which table's rows it is reading: the table as the manifest names
/// it, and its rows read so far.
pub(crate) trait InTable {
    fn in_table(&self) -> Option<(String, u64)>;
}

/// A counted dump stream that says, after each read, which table it is in.
pub(crate) struct Watched<'w, R> {
    pub inner: R,
    watch: Option<&'w TableProgress>,
}

impl<'w, R> Watched<'w, R> {
    pub fn new(inner: R, watch: Option<&'w TableProgress>) -> Self {
        Watched { inner, watch }
    }
}

impl<R: Read + InTable> Read for Watched<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(watch) = self.watch
            && let Some((name, rows)) = self.inner.in_table()
        {
            watch.at(&name, rows);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_numbered_in_the_order_the_stream_reaches_them() {
        let progress = TableProgress::default();
        assert_eq!(progress.now(), None);
        progress.at("accounts", 0);
        progress.at("accounts", 500);
        assert_eq!(
            progress.now(),
            Some(TableNow {
                number: 1,
                name: "accounts".into(),
                rows: 500
            })
        );
        progress.at("billing.events", 7);
        let now = progress.now().unwrap();
        assert_eq!(
            (now.number, now.name.as_str(), now.rows),
            (2, "billing.events", 7)
        );
    }
}
