//! The work file of a parallel restore: a compressed (or encrypted) custom archive decoded into
//! a file pg_restore can seek in, mended for its jobs on the way (src/pgarchive).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::stage::open_verified;
use crate::config::Environment;
use crate::crypt::Decryption;
use crate::error::{Error, Kind, Result};
use crate::fsutil::PartialFile;
use crate::pgarchive::{self, Damaged};
use crate::registry::BackupRecord;
use crate::session::Session;

/// Decodes a compressed custom archive into a locked work file beside the environment's
/// backups, so that pg_restore can run jobs in parallel from it. The stored file's SHA-256 is
/// checked as it is read: a file that changed fails before anything is loaded. The work file
/// is removed when the returned value is dropped (and by the next run's sweep if killed).
pub(super) fn decode(
    session: &Session,
    env: &Environment,
    record: &BackupRecord,
    decryption: Option<&Decryption>,
) -> Result<PartialFile> {
    // Decrypted data goes to a private directory, never beside the backups.
    let dir = if record.encrypted {
        crate::fsutil::private_temp_dir(session.store.dir())?
    } else {
        session.store.env_dir(&env.name)?
    };
    crate::fsutil::ensure_free_space(
        &dir,
        record.raw_size_bytes.saturating_add(1 << 20),
        "to decode the archive for a parallel restore",
        "free some space, or pass --jobs 1 to load it in one stream",
    )?;
    let work = dir.join(format!("restore-{}-{}.dump", record.id, std::process::id()));
    let partial =
        PartialFile::create(&work).map_err(|e| Error::io(Kind::Tool, "cannot create", &work, e))?;
    let stored = session.store.locate(record)?.data;
    crate::testpoint::pause("restore:before-work-file");
    let mut decoded = decode_into(session, record, &stored, decryption, partial.file(), true)?;
    if let Err(Decoding::Unmendable(damage)) = &decoded {
        // The checksum matched: the archive is the one written. pg_restore is its judge, from
        // an unmended copy.
        session.events().warn(&format!(
            "backup {}: {damage}; decoding it as it is for pg_restore",
            record.id
        ));
        let mut file = partial.file();
        let restarted = file.set_len(0).and_then(|()| file.seek(SeekFrom::Start(0)));
        decoded = match restarted {
            Ok(_) => decode_into(session, record, &stored, decryption, partial.file(), false)?,
            Err(e) => Err(Decoding::Write(e)),
        };
    }
    decoded.map_err(|failure| match failure {
        Decoding::Read(e) | Decoding::Write(e) if crate::interrupt::happened() => {
            Error::aborted("interrupted while the backup was decoded").caused_by(e)
        }
        Decoding::Read(e) if e.kind() == io::ErrorKind::InvalidData => {
            Error::verification(format!(
                "backup {} cannot be decoded or failed its checksum",
                record.id
            ))
            .caused_by(e)
            .with_hint("it changed since it was checked; nothing was restored")
        }
        Decoding::Read(e) => Error::verification(format!("backup {} cannot be decoded", record.id))
            .caused_by(e)
            .with_hint("the stored file is damaged; nothing was restored"),
        Decoding::Write(e) => Error::io(Kind::Tool, "cannot decode the backup into", &work, e),
        Decoding::Unmendable(_) => unreachable!("decoded again without mending"),
    })?;
    Ok(partial)
}

/// How decoding into the work file failed.
enum Decoding {
    /// Reading the stored backup: it does not decode, or does not hash to its SHA-256.
    Read(io::Error),
    /// Writing the work file.
    Write(io::Error),
    /// The archive is the one checked, but its data is not laid out as pg_dump writes it.
    Unmendable(Damaged),
}

/// Decodes the backup at `stored` into `out` (empty), mended when `mend`; the outer error is
/// one of opening the backup.
fn decode_into(
    session: &Session,
    record: &BackupRecord,
    stored: &Path,
    decryption: Option<&Decryption>,
    out: &File,
    mend: bool,
) -> Result<std::result::Result<(), Decoding>> {
    let mut decoder = open_verified(stored, record, decryption)?;
    let bar = session.events().bar(record.raw_size_bytes, "decode");
    let mut source = ReadSide {
        inner: crate::progress::Reader::new(&mut decoder, bar.as_ref()),
        failed: false,
    };
    let copied = if mend {
        pgarchive::copy_for_restore(&mut source, out).map(drop)
    } else {
        let mut writer = io::BufWriter::with_capacity(crate::pipeline::BUF_SIZE, out);
        crate::pipeline::copy(&mut source, &mut writer).and_then(|_| writer.flush())
    };
    let decoded = match copied {
        Ok(()) => Ok(()),
        Err(e) if source.failed => Err(Decoding::Read(e)),
        Err(e) => match pgarchive::damaged(&e) {
            // Found before the end: only the end says whether the file is the one checked.
            Some(damage) => match crate::pipeline::copy(&mut source, &mut io::sink()) {
                Ok(_) => Err(Decoding::Unmendable(damage.clone())),
                Err(e) => Err(Decoding::Read(e)),
            },
            None => Err(Decoding::Write(e)),
        },
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(decoded)
}

/// A reader that remembers whether reading failed, to tell the stored backup's failures from
/// the work file's.
struct ReadSide<R> {
    inner: R,
    failed: bool,
}

impl<R: Read> Read for ReadSide<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf);
        self.failed |= read.is_err();
        read
    }
}
