//! A backup of a live SQLite database, in one of two ways.
//!
//! **Streamed** (WAL mode, nothing excluded, SQLite built with `sqlite_dbpage`): the pages are
//! read under one read transaction and handed to the sink as they are read, so they are
//! compressed and hashed on the way, with no copy on disk. A second connection, in a read
//! transaction on the same state, checks and counts the same pages meanwhile. Readers never block
//! writers in WAL mode: the application writes on while the backup runs.
//!
//! **Through a snapshot** (otherwise): SQLite's online backup API copies the database into a work
//! file a batch of pages at a time, letting writers in between batches, and the snapshot is
//! stored and checked. In rollback-journal mode a reader blocks writers, so streaming, which holds
//! its read for as long as compression takes, would stall the application; the snapshot is also
//! where excluded tables' rows are deleted.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, MAIN_DB, Rows, TransactionState};

use super::Sqlite;
use super::image::{inspect, integrity_check, open_image, quick_check};
use crate::error::{Cause, Error, Kind, Result};
use crate::fsutil::PartialFile;
use crate::pipeline::Written;
use crate::provider::{DumpOptions, Dumped, Inspection, Sink};

/// How long the streamed backup waits for the write lock it briefly takes to start its two reads
/// on one state; past it, the check runs before the pages are streamed, in the same read.
const PIN_WAIT: Duration = Duration::from_secs(2);

/// Every page of the main database, in order, as `sqlite_dbpage` gives them.
const PAGES: &str = "SELECT pgno, data FROM sqlite_dbpage";

/// Pages between two looks at Ctrl-C while streaming.
const PAGES_PER_INTERRUPT_CHECK: u32 = 1024;

pub(super) fn dump(
    db: &Sqlite,
    options: &DumpOptions<'_>,
    work_dir: &Path,
    sink: &mut Sink<'_>,
) -> Result<Dumped> {
    let src = db.open_live()?;
    if options.exclude_data.is_empty() && streamable(&src) {
        return streamed(db, src, options, sink);
    }
    through_snapshot(db, src, options, work_dir, sink)
}

/// Whether pages can be streamed from `conn`: it is in WAL mode and SQLite has `sqlite_dbpage`.
pub(super) fn streamable(conn: &Connection) -> bool {
    let wal = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))
        .is_ok_and(|mode| mode.eq_ignore_ascii_case("wal"));
    wal && conn.prepare(PAGES).is_ok()
}

/// Starts a read transaction on `conn`: it begins at its first read.
fn begin_read(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN")?;
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
}

/// Starts reads on `src` and `checker` that see one state of the database: both begin while
/// faber-db holds the write lock, so no commit falls between them. Nothing is written; the lock is
/// let go at once, and meanwhile the application's writers wait (those with no busy timeout get
/// `SQLITE_BUSY`, as they would beside any other writer). False when the lock could not be had —
/// the database is read-only to this user, or a write held it for [`PIN_WAIT`]: then only `src`
/// reads, and the check must run on it.
fn pin_one_state(db: &Sqlite, src: &Connection, checker: &Connection) -> Result<bool> {
    let lock = db.open_live()?;
    let locked = take_write_lock(&lock);
    // With the lock held the reads start at once or not at all: writers are waiting on it, for
    // no longer than PIN_WAIT in all.
    let wait = if locked {
        PIN_WAIT / 2
    } else {
        super::BUSY_TIMEOUT
    };
    let start = |conn: &Connection| {
        conn.busy_timeout(wait)?;
        begin_read(conn)?;
        conn.busy_timeout(super::BUSY_TIMEOUT)
    };
    let src_started = start(src);
    let pinned = locked && src_started.is_ok() && start(checker).is_ok();
    // Dropped, the connection lets go of the lock (its transaction rolled back).
    drop(lock);
    match src_started {
        Ok(()) => Ok(pinned),
        // Busy under the lock (a WAL being recovered, say): read without it, the check first.
        Err(_) if locked => {
            let _ = src.execute_batch("ROLLBACK");
            src.busy_timeout(super::BUSY_TIMEOUT)
                .and_then(|()| begin_read(src))
                .map_err(|e| db.cannot_open(e))?;
            Ok(false)
        }
        Err(e) => Err(db.cannot_open(e)),
    }
}

/// Takes the write lock on `lock`, waiting up to [`PIN_WAIT`]; whether it has it. A connection
/// that may not write takes `BEGIN IMMEDIATE` as a mere read, without an error: the transaction's
/// state says which it got.
fn take_write_lock(lock: &Connection) -> bool {
    lock.busy_timeout(PIN_WAIT).is_ok()
        && lock.execute_batch("BEGIN IMMEDIATE").is_ok()
        && matches!(
            lock.transaction_state(Some(MAIN_DB)),
            Ok(TransactionState::Write)
        )
}

fn streamed(
    db: &Sqlite,
    src: Connection,
    options: &DumpOptions<'_>,
    sink: &mut Sink<'_>,
) -> Result<Dumped> {
    let checker = db.open_live()?;
    let migrations_table = options.migrations_table.map(str::to_string);
    let full_check = options.full_check;
    if !pin_one_state(db, &src, &checker)? {
        // One read for both: the check first, which also brings the pages into the OS's cache.
        drop(checker);
        let checked = check_and_count(&src, full_check, migrations_table.as_deref())?;
        let written = stream_pages(db, &src, sink)?;
        return Ok(dumped(written, checked));
    }
    let interrupt = checker.get_interrupt_handle();
    let checking = std::thread::spawn(move || {
        check_and_count(&checker, full_check, migrations_table.as_deref())
    });
    let (written, checked) = beside(
        checking,
        || interrupt.interrupt(),
        || stream_pages(db, &src, sink),
    )?;
    Ok(dumped(written, checked))
}

/// Stores the backup with `store` while `checking` runs on a thread of its own, and waits for
/// both. A failed store stops the check (`stop`): its verdict is no longer wanted. The store's
/// failure is said first; stored, a damaged database still refuses the backup.
fn beside(
    checking: std::thread::JoinHandle<Result<(String, Inspection)>>,
    stop: impl FnOnce(),
    store: impl FnOnce() -> Result<Written>,
) -> Result<(Written, (String, Inspection))> {
    let written = store();
    if written.is_err() {
        stop();
    }
    let checked = checking
        .join()
        .unwrap_or_else(|_| Err(Error::tool("the integrity check failed")));
    Ok((written?, checked?))
}

/// What the dump gives back: the bytes stored, and the check's verdict with the tables.
fn dumped(written: Written, (integrity_check, inspection): (String, Inspection)) -> Dumped {
    Dumped {
        inspection,
        written: Some(written),
        tool_version: super::version(),
        integrity_check,
    }
}

/// Streams every page of the database `src` reads, in order, into the sink.
fn stream_pages(db: &Sqlite, src: &Connection, sink: &mut Sink<'_>) -> Result<Written> {
    let unreadable = |e: rusqlite::Error| {
        Error::connection(format!("cannot read the pages of {}", db.path.display())).caused_by(e)
    };
    let page_count: u32 = src
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .map_err(unreadable)?;
    let mut stmt = src.prepare(PAGES).map_err(unreadable)?;
    let rows = stmt.query([]).map_err(unreadable)?;
    let mut pages = PageStream::new(src, rows, page_count);
    let written = sink(&mut pages);
    if let Some(cause) = pages.failed.take() {
        return Err(
            Error::connection(format!("cannot read the pages of {}", db.path.display()))
                .caused_by(cause),
        );
    }
    written.map_err(|e| Error::io(Kind::Tool, "cannot write the backup of", &db.path, e))
}

/// The pages of a database as one byte stream: its image, page 1 first.
struct PageStream<'s> {
    /// The connection whose read transaction the pages are read in: it is ended at the last
    /// page, so that the application's checkpoints are not held up while the file is synced.
    conn: &'s Connection,
    rows: Rows<'s>,
    /// The page being handed out, and how much of it has been.
    page: Vec<u8>,
    at: usize,
    /// The next page's number, and the number of pages the database has.
    next: u32,
    count: u32,
    paused: bool,
    /// Why reading stopped, when it was not the sink's doing.
    failed: Option<Cause>,
}

impl<'s> PageStream<'s> {
    fn new(conn: &'s Connection, rows: Rows<'s>, count: u32) -> Self {
        PageStream {
            conn,
            rows,
            page: Vec::new(),
            at: 0,
            next: 1,
            count,
            paused: false,
            failed: None,
        }
    }

    /// Keeps why reading failed; the error the sink is given.
    fn fail(&mut self, cause: Cause) -> io::Error {
        let e = io::Error::other(cause.as_str().to_string());
        self.failed = Some(cause);
        e
    }

    /// Loads the next page; false at the end.
    fn load(&mut self) -> io::Result<bool> {
        if self.next.is_multiple_of(PAGES_PER_INTERRUPT_CHECK) {
            crate::interrupt::check()?;
        }
        let row = match self.rows.next() {
            Ok(Some(row)) => row,
            Ok(None) if self.next == self.count + 1 => {
                // Every page is read: the read transaction is no longer needed.
                let _ = self.conn.execute_batch("COMMIT");
                return Ok(false);
            }
            Ok(None) => {
                let e = format!(
                    "the database has {} pages; {} were read",
                    self.count,
                    self.next - 1
                );
                return Err(self.fail(Cause::text(e)));
            }
            Err(e) => return Err(self.fail(Cause::of(e))),
        };
        let read = row
            .get::<_, u32>(0)
            .and_then(|pgno| Ok((pgno, row.get_ref(1)?.as_blob()?)));
        match read {
            Ok((pgno, data)) if pgno == self.next && self.next <= self.count => {
                self.page.clear();
                self.page.extend_from_slice(data);
            }
            Ok((pgno, _)) => {
                let e = format!(
                    "SQLite gave page {pgno} where page {} of {} was due",
                    self.next, self.count
                );
                return Err(self.fail(Cause::text(e)));
            }
            Err(e) => return Err(self.fail(Cause::of(e))),
        }
        self.next += 1;
        self.at = 0;
        Ok(true)
    }
}

impl Read for PageStream<'_> {
    /// Fills `out` with as many pages as fit, so that a read is rarely smaller than `out`.
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < out.len() {
            if self.at == self.page.len() && !self.load()? {
                break;
            }
            let n = (self.page.len() - self.at).min(out.len() - filled);
            out[filled..filled + n].copy_from_slice(&self.page[self.at..self.at + n]);
            self.at += n;
            filled += n;
        }
        if !self.paused && filled > 0 {
            // Part of the backup is written: where a test stops a backup half way.
            self.paused = true;
            crate::testpoint::pause("backup:during-dump");
        }
        Ok(filled)
    }
}

/// Copies the live database into a snapshot in `work_dir` with the online backup API, then stores
/// the snapshot while it is checked and counted on a thread of its own.
fn through_snapshot(
    db: &Sqlite,
    src: Connection,
    options: &DumpOptions<'_>,
    work_dir: &Path,
    sink: &mut Sink<'_>,
) -> Result<Dumped> {
    let snapshot_path = work_dir.join(format!("snapshot-{}.sqlite3", std::process::id()));
    let snapshot = PartialFile::create(&snapshot_path)
        .map_err(|e| Error::io(Kind::Tool, "cannot create", &snapshot_path, e))?;
    db.snapshot_into(&src, snapshot.path())?;
    crate::testpoint::pause("backup:during-dump");
    drop(src);
    let excluded = super::exclude::clear_rows(snapshot.path(), options.exclude_data)?;

    // The check and the row counts read the snapshot on a thread of their own while it is
    // compressed: both are full passes, neither waits for the other.
    let checked_path = snapshot.path().to_path_buf();
    let migrations_table = options.migrations_table.map(str::to_string);
    let full_check = options.full_check;
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let checking = std::thread::spawn(move || -> Result<(String, Inspection)> {
        let image = open_image(&checked_path)?;
        let _ = handle_tx.send(image.get_interrupt_handle());
        check_and_count(&image, full_check, migrations_table.as_deref())
    });
    let stop = || {
        if let Ok(handle) = handle_rx.recv() {
            handle.interrupt();
        }
    };
    let (written, (integrity_check, mut inspection)) = beside(checking, stop, || {
        File::open(snapshot.path())
            .map_err(|e| Error::io(Kind::Tool, "cannot read", snapshot.path(), e))
            .and_then(|mut file| {
                sink(&mut file)
                    .map_err(|e| Error::io(Kind::Tool, "cannot write the backup of", &db.path, e))
            })
    })?;
    crate::provider::exclude::mark(&mut inspection.tables, &excluded);
    Ok(dumped(written, (integrity_check, inspection)))
}

/// SQLite's check of what `conn` reads — `quick_check` (pages and records) unless the full one is
/// asked for, which also matches indexes against their tables, as `verify` and a restore do —
/// then its tables counted. The verdict to record, and the tables.
fn check_and_count(
    conn: &Connection,
    full_check: bool,
    migrations_table: Option<&str>,
) -> Result<(String, Inspection)> {
    let (checked, name) = if full_check {
        (integrity_check(conn), "integrity check")
    } else {
        (quick_check(conn), "quick check")
    };
    // A page too damaged to read fails the check itself ("malformed"): the same verdict.
    let verdict = checked.unwrap_or_else(|e| {
        e.causes()
            .last()
            .map_or_else(|| e.one_line(), |c| c.as_str().to_string())
    });
    if verdict != "ok" {
        return Err(
            Error::verification(format!("the database failed SQLite's {name}: {verdict}"))
                .with_hint(
                    "the live database is damaged; repair it before relying on a backup of it",
                ),
        );
    }
    let inspection =
        inspect(conn, migrations_table, true).map_err(|e| Error::tool(e.one_line()))?;
    let recorded = if full_check {
        verdict
    } else {
        crate::provider::QUICK_CHECK_PASSED.to_string()
    };
    Ok((recorded, inspection))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database(dir: &Path, mode: &str) -> Connection {
        let conn = Connection::open(dir.join("db.sqlite3")).unwrap();
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = {mode}; CREATE TABLE t (x);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
             INSERT INTO t SELECT randomblob(100) FROM n;"
        ))
        .unwrap();
        conn
    }

    /// `.cargo/config.toml` builds the bundled SQLite with `sqlite_dbpage`; without it every
    /// backup would quietly take the slower way, through a snapshot.
    #[test]
    fn the_bundled_sqlite_streams_pages_in_wal_mode_only() {
        let dir = tempfile::tempdir().unwrap();
        let wal = database(dir.path(), "WAL");
        assert!(streamable(&wal));
        let other = tempfile::tempdir().unwrap();
        assert!(!streamable(&database(other.path(), "DELETE")));
    }

    #[test]
    fn the_page_stream_is_the_database_image_in_any_read_size() {
        let dir = tempfile::tempdir().unwrap();
        let conn = database(dir.path(), "DELETE");
        let file = std::fs::read(dir.path().join("db.sqlite3")).unwrap();
        for size in [1, 1000, 4096, 5000, 1 << 20] {
            let mut stmt = conn.prepare(PAGES).unwrap();
            let count: u32 = conn
                .query_row("PRAGMA page_count", [], |r| r.get(0))
                .unwrap();
            let mut pages = PageStream::new(&conn, stmt.query([]).unwrap(), count);
            let mut out = Vec::new();
            let mut buf = vec![0u8; size];
            loop {
                let n = pages.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..n]);
            }
            assert!(out == file, "read size {size}");
        }
    }

    #[test]
    fn a_page_count_that_does_not_match_the_pages_read_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let conn = database(dir.path(), "DELETE");
        let count: u32 = conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        for claimed in [count - 1, count + 1] {
            let mut stmt = conn.prepare(PAGES).unwrap();
            let mut pages = PageStream::new(&conn, stmt.query([]).unwrap(), claimed);
            let err = io::copy(&mut pages, &mut io::sink()).unwrap_err();
            assert!(err.to_string().contains("page"), "{claimed}: {err}");
            assert!(pages.failed.is_some(), "a read failure, not the sink's");
        }
    }

    #[test]
    fn the_read_ends_with_the_last_page() {
        let dir = tempfile::tempdir().unwrap();
        let conn = database(dir.path(), "WAL");
        begin_read(&conn).unwrap();
        let count: u32 = conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        let mut stmt = conn.prepare(PAGES).unwrap();
        let mut pages = PageStream::new(&conn, stmt.query([]).unwrap(), count);
        assert!(!conn.is_autocommit());
        io::copy(&mut pages, &mut io::sink()).unwrap();
        assert!(conn.is_autocommit(), "the read transaction is over");
    }

    /// A connection that may not write takes `BEGIN IMMEDIATE` as a read, without an error: that
    /// is no lock, and the two reads must not be taken for one state.
    #[test]
    fn a_read_only_connection_does_not_count_as_holding_the_write_lock() {
        let dir = tempfile::tempdir().unwrap();
        drop(database(dir.path(), "WAL"));
        let path = dir.path().join("db.sqlite3");
        let read_only =
            Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        assert!(read_only.execute_batch("BEGIN IMMEDIATE").is_ok());
        read_only.execute_batch("ROLLBACK").unwrap();
        assert!(!take_write_lock(&read_only));
        let writable = Connection::open(&path).unwrap();
        assert!(take_write_lock(&writable));
    }
}
