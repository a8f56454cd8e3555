//! The backup made ready to go in: decoded (and decrypted) into the provider's staging area,
//! its SHA-256 checked once more as it streams; or, for parallel jobs, read by the restore tool
//! from disk.

use std::fs::File;
use std::path::Path;

use super::verdict::{Gated, Verdict};
use crate::config::Environment;
use crate::error::{Error, Kind, Result};
use crate::format::Format;
use crate::ops::verify;
use crate::pipeline::{Compression, Decoder, VerifiedDecoder};
use crate::provider::{Provider, Source, Staged};
use crate::registry::BackupRecord;
use crate::session::Session;

/// Prepares the target, then decodes the backup into the provider's staging area, checking its
/// SHA-256 once more as it streams. A directory dump, and an uncompressed custom archive
/// restored with several jobs, are read by the restore tool from disk, as just checked.
pub(super) fn stage<'a>(
    session: &Session,
    env: &Environment,
    record: &BackupRecord,
    db: &'a dyn Provider,
    jobs: Option<u32>,
    verdict: Option<&Verdict>,
) -> Result<Box<dyn Staged + 'a>> {
    for stale in db.prepare_restore(record.raw_size_bytes)? {
        session.events().warn(&format!(
            "removed {}, left by an interrupted restore",
            session.ctx.show(&stale)
        ));
    }
    let migrations_table = env.migrations_table.as_deref();
    load(session, env, record, jobs, verdict, &mut |source, jobs| {
        db.stage_restore(record.format, source, migrations_table, jobs)
    })
}

/// Hands the backup to `load` as it best reads it, with the number of jobs to use: a directory
/// dump, and an uncompressed custom archive restored with several jobs, from disk (checked again
/// once read); a compressed custom archive with several jobs decoded to a work file first; any
/// other as a stream whose SHA-256 is checked as it goes. With a `verdict` on the file still to
/// come, no tool reads a byte of it before the verdict is in and the file matched.
pub(super) fn load<T>(
    session: &Session,
    env: &Environment,
    record: &BackupRecord,
    jobs: Option<u32>,
    verdict: Option<&Verdict>,
    load: &mut dyn FnMut(Source<'_>, u32) -> Result<T>,
) -> Result<T> {
    let path = session.store.locate(record)?.data;
    let decryption = crate::crypt::Decryption::of(&session.config, &session.vars, record)?
        .map(std::sync::Arc::new);
    // pg_restore runs jobs in parallel only from a file it can seek in: a directory dump, or a
    // custom archive as it is or decoded to a work file first.
    let parallel = matches!(record.format, Format::Custom | Format::Directory);
    let explicit = jobs.is_some();
    let jobs = jobs.unwrap_or_else(default_jobs);
    let from_disk = record.format == Format::Directory
        || (parallel && record.compression == Compression::None && !record.encrypted && jobs > 1);
    // A tool given a path, and the work file, read (or decode) the whole file before anything
    // else: the verdict comes first. Only a stream waits for it at its first read.
    let verdict_in = || match verdict {
        Some(verdict) => verdict
            .require()
            .map_err(|e| Error::verification("the backup's data is unreadable").caused_by(e)),
        None => Ok(()),
    };
    if from_disk {
        verdict_in()?;
        let staged = load(Source::Path(&path), jobs)?;
        // The tool read the files after they were checked: check them again now that it is
        // done, so a backup changed or removed meanwhile is never put in place.
        verify::checksum_ok(session, record).map_err(|(e, _)| {
            e.add_hint("the backup changed while it was loaded; nothing was restored")
        })?;
        return Ok(staged);
    }
    if parallel && jobs > 1 {
        // Not a byte of a changed file is decompressed into the backup directory.
        verdict_in()?;
        match super::workfile::decode(session, env, record, decryption.as_deref()) {
            Ok(decoded) => {
                return load(Source::Path(decoded.path()), jobs);
            }
            // Jobs nobody asked for are not worth failing over: without room for the work
            // file, the archive loads in one stream.
            Err(e) if !explicit && e.kind() == Kind::DiskSpace => {
                session.events().detail(&format!(
                    "{}; loading the archive in one stream instead",
                    e.message()
                ));
            }
            Err(e) => return Err(e),
        }
    }
    if explicit && jobs > 1 {
        session.events().warn(&format!(
            "--jobs applies to custom and directory backups; loading this {} backup in one stream",
            record.format
        ));
    }
    // A stream goes to the tool as it is read: its first read waits for the verdict.
    let decoder = open_verified(&path, record, decryption.as_deref())?;
    let mut gated = Gated::new(decoder, verdict);
    let bar = session.events().bar(record.raw_size_bytes, "restore");
    let mut source = crate::progress::Reader::new(&mut gated, bar.as_ref());
    let staged = load(Source::Stream(&mut source), jobs);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    staged
}

/// The decoded data of the backup file at `path`, whose end is reported only if the whole
/// file hashed to the recorded SHA-256.
pub fn open_verified(
    path: &Path,
    record: &BackupRecord,
    decryption: Option<&crate::crypt::Decryption>,
) -> Result<VerifiedDecoder> {
    let file =
        File::open(path).map_err(|e| Error::io(Kind::Verification, "cannot open", path, e))?;
    let decrypt = decryption.map(|d| d.decrypt());
    let decoder = Decoder::new(file, record.compression, decrypt.as_ref())
        .map_err(|e| Error::verification("cannot decode the backup").caused_by(e))?;
    Ok(VerifiedDecoder::new(decoder, &record.sha256))
}

/// Restore jobs when none are asked for: one per core.
pub fn default_jobs() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get().min(64)).unwrap_or(64))
}
