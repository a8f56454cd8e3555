//! The dump, through the streaming pipeline into the reserved `.partial` file (or by the dump tool
//! into the `.partial` directory), then read back from disk as `verify` would read it.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::reserve::Partial;
use crate::dirdump::{self, FileDigest};
use crate::error::{Error, Kind, Result};
use crate::format::Format;
use crate::fsutil::{self, PartialDir, PartialFile};
use crate::human;
use crate::pipeline::{self, Compression, Counted, Decoder};
use crate::progress;
use crate::provider::{
    self, DumpOptions, DumpTo, Dumped, Provider, ProviderKind, Source, TableProgress,
};
use crate::session::Session;

/// A key only this run knows (see `write.rs`): with it the read-back decrypts what was stored.
pub(super) type CheckKey = Vec<Box<dyn age::Identity + Send + Sync>>;

/// What the dump needs to know.
pub(super) struct Dump<'a> {
    pub db: &'a dyn Provider,
    pub format: Format,
    pub compression: Compression,
    pub recipients: Option<&'a [Box<dyn age::Recipient + Send>]>,
    pub check_key: &'a CheckKey,
    pub migrations_table: Option<&'a str>,
    /// Patterns of the tables whose rows are left out.
    pub exclude_data: &'a [String],
    /// The directory the backup is written into.
    pub env_dir: &'a Path,
    /// The database's size.
    pub db_size: u64,
    /// What the dump is expected to stream: the progress bar's total.
    pub dump_bytes: u64,
    /// Parallel jobs of a directory dump.
    pub jobs: Option<u32>,
    /// SQLite: the full integrity check on the snapshot, not the quick one.
    pub full_check: bool,
}

impl Dump<'_> {
    fn options<'a>(&'a self, tables: Option<&'a TableProgress>) -> DumpOptions<'a> {
        DumpOptions {
            format: self.format,
            migrations_table: self.migrations_table,
            exclude_data: self.exclude_data,
            full_check: self.full_check,
            tables,
        }
    }
}

/// What was stored, as the registry records it.
pub(super) struct Stored {
    pub sha256: String,
    pub size_bytes: u64,
    pub raw_bytes: u64,
    pub plaintext_sha256: Option<String>,
    /// The files of a directory dump (empty for a single file).
    pub files: Vec<FileDigest>,
}

/// Dumps into `partial` and reads what was stored back; says what was dumped.
pub(super) fn dump(session: &Session, d: &Dump<'_>, partial: &Partial) -> Result<(Dumped, Stored)> {
    match partial {
        Partial::File(file) => dump_to_file(session, d, file),
        Partial::Dir(dir) => dump_to_dir(session, d, dir),
    }
}

/// Where the dump tool may write its scratch files, with room checked for an SQLite snapshot
/// (asked again here: the database may have left WAL mode since the backup was planned for a
/// stream). The snapshot is the plain database: for an encrypted backup it is made in a private
/// directory away from the backups — made, and a killed run's snapshot swept from it, whether
/// or not this backup takes one — and beside the backups otherwise, where the stored copy needs
/// room too.
fn work_dir(session: &Session, d: &Dump<'_>) -> Result<PathBuf> {
    let sqlite = d.db.kind() == ProviderKind::Sqlite;
    let snapshot = sqlite && d.db.backup_copies_first(!d.exclude_data.is_empty());
    if sqlite && d.recipients.is_some() {
        let dir = fsutil::private_temp_dir(session.store.dir())?;
        if snapshot {
            fsutil::ensure_free_space(
                &dir,
                d.db_size.saturating_add(1 << 20),
                "for the decrypted snapshot of an encrypted backup",
                "set TMPDIR to a directory with room (not the backup directory)",
            )?;
        }
        return Ok(dir);
    }
    if snapshot {
        fsutil::ensure_free_space(
            d.env_dir,
            crate::plan::space_needed(d.format, d.compression, d.db_size, true),
            "for the backup and its working snapshot",
            crate::error::Remedy::MakeRoom { there: false },
        )?;
    }
    Ok(d.env_dir.to_path_buf())
}

/// A dump streamed through compression, encryption and hashing into `file`.
fn dump_to_file(session: &Session, d: &Dump<'_>, file: &PartialFile) -> Result<(Dumped, Stored)> {
    let work_dir = work_dir(session, d)?;
    let compression = d.compression;
    let bar = session.events().bar(d.dump_bytes, "dump");
    let label = format!("dump ({compression})");
    // What syncing and reading back the stored file found, done as soon as it is written: while
    // an SQLite check still runs, or the dump tool ends.
    let mut on_disk: Option<Result<()>> = None;
    // The table the stream is in, shown beside the bar.
    let tables = TableProgress::default();
    let dumped = d.db.dump(
        &d.options(bar.as_ref().map(|_| &tables)),
        &work_dir,
        DumpTo::Stream(&mut |source| {
            let mut source = progress::Reader::new(source, bar.as_ref())
                .showing_stored(file.file(), &label)
                .showing_tables(&tables);
            let written =
                pipeline::write_stream(&mut source, compression, d.recipients, file.file())?;
            on_disk = Some(sync_and_hash(d.format, file, &written));
            Ok(written)
        }),
    );
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let dumped = dumped?;
    let written = dumped
        .written
        .clone()
        .ok_or_else(|| Error::tool("the dump produced no stream"))?;
    on_disk.unwrap_or_else(|| Err(Error::tool("the dump produced no stream")))?;
    session.events().ok(&format!(
        "Dumped {} ({} → {} {})",
        d.db.database_name(),
        human::size(written.raw_bytes),
        human::size(written.size_bytes),
        compression
    ));
    let decrypt = written
        .plaintext_sha256
        .as_deref()
        .map(|sha| pipeline::Decrypt {
            identities: d.check_key,
            plaintext_sha256: Some(sha),
        });
    if !hashed_only(d.format) {
        read_back(d, file, &written, decrypt.as_ref())?;
    }
    let stored = Stored {
        sha256: written.sha256,
        size_bytes: written.size_bytes,
        raw_bytes: written.raw_bytes,
        plaintext_sha256: written.plaintext_sha256,
        files: Vec::new(),
    };
    Ok((dumped, stored))
}

/// A directory dump written by the dump tool into `dir`, each file compressed.
fn dump_to_dir(session: &Session, d: &Dump<'_>, dir: &PartialDir) -> Result<(Dumped, Stored)> {
    let content = dir.content();
    let dumped = d.db.dump(
        &d.options(None),
        d.env_dir,
        DumpTo::Directory {
            path: &content,
            jobs: d.jobs.unwrap_or(1),
            compression: d.compression,
        },
    )?;
    // The files are hashed as they lie on disk, then checked as verify checks them.
    let files = dirdump::digest_dir(&content)
        .map_err(|e| Error::verification("the dump directory cannot be read back").caused_by(e))?;
    let size = dirdump::total_size(&files);
    session.events().ok(&format!(
        "Dumped {} ({} files, {}, {} per file)",
        d.db.database_name(),
        files.len(),
        human::size(size),
        d.compression
    ));
    structure_ok(d.db.kind(), d.format, Source::Path(&content), d.env_dir)?;
    let stored = Stored {
        sha256: dirdump::checksum(&files),
        size_bytes: size,
        raw_bytes: size,
        plaintext_sha256: None,
        files,
    };
    Ok((dumped, stored))
}

/// Fails unless a server database's dump passes the structure check `verify` uses.
fn structure_ok(
    kind: ProviderKind,
    format: Format,
    source: Source<'_>,
    work_dir: &Path,
) -> Result<()> {
    let structure = provider::check_structure(kind, format, source, work_dir, false)?;
    if structure.integrity_check != "ok" {
        return Err(Error::verification(format!(
            "the dump failed its structure check: {}",
            structure.integrity_check
        )));
    }
    Ok(())
}

/// Whether reading a stored `format` back only hashes it: the stream was decoded as it was written
/// (content checksum and length), and its structure checked on the raw stream (the dump's
/// trailer, SQLite's check), so what is left is that the disk holds the bytes written. Hashing
/// them is over 1 GB/s, where decoding them all again cost a second per GB after the dump.
fn hashed_only(format: Format) -> bool {
    matches!(format, Format::Sql | Format::Sqlite)
}

/// Syncs the stored file and, for a format read back by its hash alone, hashes it as it lies on
/// disk meanwhile: it must be the bytes written.
fn sync_and_hash(format: Format, file: &PartialFile, written: &pipeline::Written) -> Result<()> {
    let synced = |r: std::io::Result<()>| {
        r.map_err(|e| Error::io(Kind::Tool, "cannot write", file.path(), e))
    };
    if !hashed_only(format) {
        return synced(file.file().sync_all());
    }
    let reread = File::open(file.path())
        .map_err(|e| Error::io(Kind::Tool, "cannot reopen", file.path(), e))?;
    let (sync, hashed) = std::thread::scope(|s| {
        let sync = s.spawn(|| file.file().sync_all());
        let hashed = pipeline::hash_file(reread);
        let sync = sync
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the sync failed")));
        (sync, hashed)
    });
    synced(sync)?;
    let (sha, size) = hashed
        .map_err(|e| Error::verification("the backup file cannot be read back").caused_by(e))?;
    if sha != written.sha256 || size != written.size_bytes {
        return Err(Error::verification(
            "the backup file read back differs from what was written",
        ));
    }
    Ok(())
}

/// Reads an archive back: it must decode to what was written and pass the structure check
/// `verify` uses.
fn read_back(
    d: &Dump<'_>,
    file: &PartialFile,
    written: &pipeline::Written,
    decrypt: Option<&pipeline::Decrypt<'_>>,
) -> Result<()> {
    let reread = File::open(file.path())
        .map_err(|e| Error::io(Kind::Tool, "cannot reopen", file.path(), e))?;
    let unreadable =
        |e: std::io::Error| Error::verification("the backup file cannot be read back").caused_by(e);
    let differs = || Error::verification("the backup file read back differs from what was written");
    let mut decoder = Decoder::new(reread, d.compression, decrypt).map_err(unreadable)?;
    let mut counted = Counted::new(&mut decoder);
    structure_ok(
        d.db.kind(),
        d.format,
        Source::Stream(&mut counted),
        d.env_dir,
    )?;
    pipeline::copy(&mut counted, &mut std::io::sink()).map_err(unreadable)?;
    let decoded = counted.count();
    let (sha, _) = decoder.finish().map_err(unreadable)?;
    if sha != written.sha256 || decoded != written.raw_bytes {
        return Err(differs());
    }
    Ok(())
}
