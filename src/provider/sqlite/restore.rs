//! Restoring an SQLite database: the backup is decoded into a staging file beside the database and
//! checked (before the safety backup is taken), then copied into the live database in one
//! transaction with SQLite's backup API, so open connections see the restored data and a crash
//! leaves the old content. Only a missing file, or one SQLite cannot read as a database, is
//! replaced by renaming the staging file over it. A database reached through a symbolic link is
//! restored where the link leads; the link stays.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::image::{copy_into, integrity_check, open_image};
use super::{BUSY_TIMEOUT, Sqlite};
use crate::error::{Error, Kind, Result};
use crate::format::Format;
use crate::fsutil::{self, PartialFile};
use crate::provider::{CommitFailed, CommitOptions, Committed, Staged};
use crate::scratch::{Purpose, Released};

/// Side files SQLite keeps beside a database.
const SIDE_FILES: [&str; 3] = ["-wal", "-shm", "-journal"];

impl Sqlite {
    /// The file a restore writes: the database's path with symbolic links followed, so that a URL
    /// naming a link restores the database the link leads to (and stages beside it), never the
    /// link itself.
    pub(super) fn restore_target(&self) -> Result<PathBuf> {
        fsutil::follow_links(&self.path)
            .map_err(|e| Error::io(Kind::Connection, "cannot follow the link", &self.path, e))
    }
}

/// How the ledger names the database a staging file is for.
fn server_of(target: &Path) -> String {
    format!("sqlite:{}", target.display())
}

/// Removes the staging files killed restores of this database left — those the project's ledger
/// records, whose runs are dead; never any other file beside the database, whatever its name —
/// refuses while another restore of it runs, and checks there is room for the staging file and
/// the transaction that copies it.
pub(super) fn prepare(db: &Sqlite, raw_size: u64) -> Result<Vec<PathBuf>> {
    let target = db.restore_target()?;
    let dir = target.parent().unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(
            Error::connection(format!("directory {} does not exist", dir.display()))
                .with_hint("create it, or check the environment's URL"),
        );
    }
    let server = server_of(&target);
    let mut removed = Vec::new();
    if let Some(ledger) = &db.ledger {
        if ledger
            .all()
            .iter()
            .any(|(entry, alive)| *alive && entry.server == server)
        {
            return Err(Error::new(
                Kind::Busy,
                format!("another restore of {} is running", target.display()),
            )
            .with_hint("wait for it to finish"));
        }
        for claim in ledger.dead(&server) {
            let staged = PathBuf::from(&claim.entry().name);
            // The record names a file beside this database, of faber-db's own naming.
            let ours = staged.parent() == Some(dir)
                && staged
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(is_staging_name);
            if !ours {
                continue;
            }
            let mut all_gone = true;
            for path in std::iter::once(staged.clone())
                .chain(SIDE_FILES.iter().map(|s| side_file(&staged, s)))
            {
                match fsutil::remove_if_exists(&path) {
                    Ok(true) => removed.push(path),
                    Ok(false) => {}
                    Err(_) => all_gone = false,
                }
            }
            if all_gone {
                claim.release();
            }
        }
    }
    fsutil::ensure_free_space(
        dir,
        staging_bytes(raw_size),
        "to restore",
        "the restore stages the backup beside the database and copies it in one transaction; free some space there",
    )?;
    Ok(removed)
}

/// What a restore of a `raw_size`-byte image takes beside the database: the staging file, and
/// the transaction that copies it in.
fn staging_bytes(raw_size: u64) -> u64 {
    raw_size.saturating_mul(2)
}

/// Where a restore stages the image (the database's directory) and the room it takes there.
pub(super) fn staging_need(db: &Sqlite, raw_size: u64) -> Option<(PathBuf, u64)> {
    let target = db.restore_target().ok()?;
    let dir = target.parent().unwrap_or(Path::new(".")).to_path_buf();
    Some((dir, staging_bytes(raw_size)))
}

/// The names of staging files: `.<database>.faber-restore-<random>.partial`.
fn is_staging_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(".faber-restore-") && name.ends_with(".partial")
}

/// Decodes the backup into the staging file and checks it; nothing is changed yet.
pub(super) fn stage<'a>(
    db: &'a Sqlite,
    format: Format,
    source: &mut dyn Read,
    migrations_table: Option<&str>,
) -> Result<Box<dyn Staged + 'a>> {
    if format != Format::Sqlite {
        return Err(Error::config(format!(
            "a {format} backup cannot be restored into SQLite"
        )));
    }
    let target = db.restore_target()?;
    // A name of its own, recorded before it is created: the application's directory is not
    // faber-db's, and only a file the ledger records is ever removed from it.
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = target.with_file_name(format!(
        ".{name}.faber-restore-{}",
        crate::provider::tool::random_suffix()
    ));
    // Released when the staging file goes: removed (declared after it, so dropped first) if
    // this fails, or become the database.
    let claim = match &db.ledger {
        Some(ledger) => Some(Released(ledger.claim(
            &server_of(&target),
            Purpose::Restore,
            &fsutil::partial_path(&staging).to_string_lossy(),
        )?)),
        None => None,
    };
    let file = PartialFile::create(&staging).map_err(|e| {
        Error::io(
            Kind::Tool,
            "cannot stage the restore at",
            &fsutil::partial_path(&staging),
            e,
        )
    })?;
    copy_into(source, file.file(), file.path(), Kind::Tool)?;
    let image = open_image(file.path())?;
    let check = integrity_check(&image)?;
    if check != "ok" {
        return Err(Error::verification(format!(
            "the backup's data failed SQLite's integrity check: {check}"
        )));
    }
    // The live database is watched from now on, before its safety backup is taken: a write
    // committed after this would be in neither the safety backup nor the restored data, so
    // the commit refuses if one came.
    let live = match open_for_restore(db, &target)? {
        Some(conn) => {
            let version = data_version(&conn).map_err(|e| db.cannot_open(e))?;
            Some((conn, version))
        }
        None => None,
    };
    Ok(Box::new(StagedSqlite {
        db,
        target,
        file,
        live,
        _claim: claim,
        migrations_table: migrations_table.map(str::to_string),
    }))
}

/// SQLite's count of the changes other connections committed to the database: it differs
/// between two reads on one connection when anyone else wrote in between.
fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA data_version", [], |r| r.get(0))
}

struct StagedSqlite<'a> {
    db: &'a Sqlite,
    /// The database file itself (links followed), staged beside.
    target: PathBuf,
    file: PartialFile,
    /// The live database, opened when the restore was staged, with its data version then.
    live: Option<(Connection, i64)>,
    /// The staging file's record in the ledger, released with it (the file goes with its
    /// `PartialFile`, or becomes the database).
    _claim: Option<Released>,
    migrations_table: Option<String>,
}

impl Staged for StagedSqlite<'_> {
    fn commit(self: Box<Self>, _options: &CommitOptions) -> Result<Committed, CommitFailed> {
        let db = self.db;
        // The URL must still lead where the restore was staged (and its safety backup taken):
        // a link switched meanwhile stops it, before anything is written.
        if db.restore_target()? != self.target {
            return Err(Error::tool(format!(
                "{} no longer leads to {}, where the restore was staged; nothing was restored",
                db.path.display(),
                self.target.display()
            ))
            .with_hint("the link changed during the restore; check it, then restore again")
            .into());
        }
        // A write committed since the restore was staged is in neither the safety backup
        // (taken after that) nor what is about to be copied in: the restore stops instead.
        let written = || {
            Error::new(
                Kind::Busy,
                format!(
                    "{} was written to while the restore was staged and its safety backup taken; nothing was restored",
                    self.target.display()
                ),
            )
            .with_hint("stop the application that writes to it, then restore again")
        };
        match (self.live, open_for_restore(db, &self.target)?) {
            (Some((live, before)), Some(_)) => {
                let now = data_version(&live).map_err(|e| db.cannot_open(e))?;
                if now != before {
                    return Err(written().into());
                }
                let image = match_live(self.file.path(), &live)?;
                copy_database(&image, live)?;
            }
            (None, None) => replace_file(&self.target, self.file)?,
            // It came to be, or became readable, meanwhile: someone else is at work on it.
            _ => return Err(written().into()),
        }
        // The URL must open what was restored: a link changed meanwhile would leave the
        // application on another file than the one written.
        if db.restore_target()? != self.target {
            return Err(Error::tool(format!(
                "{} no longer leads to {}, which was restored",
                db.path.display(),
                self.target.display()
            ))
            .with_hint("the link changed during the restore; check it, then restore again")
            .into());
        }
        // What the database holds now, read back from it.
        Ok(Committed {
            inspection: db.inspect_counted(self.migrations_table.as_deref())?,
            replaced: None,
            kept: Vec::new(),
        })
    }
}

/// The live database at `target` opened for writing, or `None` when there is no database to
/// write into: the file is missing, or SQLite cannot read it as a database (not one, or damaged
/// beyond opening).
fn open_for_restore(db: &Sqlite, target: &Path) -> Result<Option<Connection>> {
    if !target.exists() {
        return Ok(None);
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(target, flags).map_err(|e| db.cannot_open(e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| db.cannot_open(e))?;
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(())) {
        Ok(()) => Ok(Some(conn)),
        Err(e)
            if matches!(
                e.sqlite_error_code(),
                Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(db.cannot_open(e)),
    }
}

/// Opens the staged copy for the copy into `live`, first giving it the live database's page size
/// when the live one is in WAL mode (where SQLite cannot copy across page sizes), and a rollback
/// header so the live database keeps its own journal mode.
fn match_live(staged: &Path, live: &Connection) -> Result<Connection> {
    let pragma = |conn: &Connection, name: &str| -> rusqlite::Result<String> {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| {
            r.get::<_, rusqlite::types::Value>(0)
        })
        .map(|v| match v {
            rusqlite::types::Value::Integer(n) => n.to_string(),
            rusqlite::types::Value::Text(t) => t,
            _ => String::new(),
        })
    };
    let failed = |e: rusqlite::Error| {
        Error::tool("cannot prepare the staged copy for the restore").caused_by(e)
    };
    let live_mode = pragma(live, "journal_mode").map_err(failed)?;
    let live_page = pragma(live, "page_size").map_err(failed)?;
    let conn = Connection::open_with_flags(
        staged,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(failed)?;
    conn.pragma_update(None, "journal_mode", "DELETE")
        .map_err(failed)?;
    if live_mode.eq_ignore_ascii_case("wal")
        && pragma(&conn, "page_size").map_err(failed)? != live_page
    {
        conn.pragma_update(None, "page_size", &live_page)
            .map_err(failed)?;
        conn.execute_batch("VACUUM").map_err(failed)?;
    }
    Ok(conn)
}

/// Copies a whole database into `live` with the backup API in one step: one write transaction,
/// so a crash leaves the old content and no reader ever sees a mix.
fn copy_database(image: &Connection, mut live: Connection) -> Result<()> {
    let failed = |e: rusqlite::Error| {
        let kind = if e.sqlite_error_code() == Some(ErrorCode::DiskFull) {
            Kind::DiskSpace
        } else {
            Kind::Tool
        };
        Error::new(
            kind,
            "copying the backup into the database failed; the database is unchanged",
        )
        .caused_by(e)
        .with_hint(if kind == Kind::DiskSpace {
            "free space where the database lives: the copy needs room for its journal"
        } else {
            "the staged backup was fine; check the database file and its directory"
        })
    };
    let backup = Backup::new(image, &mut live).map_err(failed)?;
    let started = Instant::now();
    loop {
        match backup.step(-1).map_err(failed)? {
            StepResult::Done => return Ok(()),
            StepResult::More => {}
            _ if started.elapsed() > BUSY_TIMEOUT => {
                return Err(Error::new(
                    Kind::Busy,
                    "the database stayed locked by another connection; nothing was restored",
                )
                .with_hint("stop the application that writes to it, then restore again"));
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Puts the staged file in place of a missing or unreadable database. Side files of the old one
/// go first: a write-ahead log or journal left beside it must never be applied to the new file.
fn replace_file(target: &Path, staged: PartialFile) -> Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    for suffix in SIDE_FILES {
        let side = side_file(target, suffix);
        fsutil::remove_if_exists(&side)
            .map_err(|e| Error::io(Kind::Tool, "cannot remove", &side, e))?;
    }
    fsutil::sync_dir(dir).map_err(|e| Error::io(Kind::Tool, "cannot sync", dir, e))?;
    if let Ok(meta) = fs::metadata(target) {
        // The restored file keeps the mode the application's database had.
        let _ = fs::set_permissions(
            staged.path(),
            fs::Permissions::from_mode(meta.permissions().mode()),
        );
    }
    staged
        .persist(target)
        .map_err(|e| Error::io(Kind::Tool, "cannot replace", target, e))
}

fn side_file(path: &Path, suffix: &str) -> PathBuf {
    let mut side = path.as_os_str().to_owned();
    side.push(suffix);
    PathBuf::from(side)
}
