//! The SHA-256 of a backup's stored bytes against its entry: the whole check of
//! `verify --checksum-only`, and the check before any restore or upload.

use std::fs::File;
use std::path::Path;

use crate::dirdump;
use crate::error::{Error, Remedy};
use crate::format::Format;
use crate::pipeline;
use crate::registry::{BackupRecord, Status};
use crate::session::Session;

/// SHA-256 of a backup's file, compared with the registry: the check before any restore. On
/// failure, also the status the backup has shown to have: `missing` or `corrupt`, or none when
/// the file could not be read for another reason (which says nothing about the backup).
pub fn checksum_ok(
    session: &Session,
    record: &BackupRecord,
) -> std::result::Result<(), (Error, Option<Status>)> {
    let path = session.store.locate(record).map_err(|e| (e, None))?.data;
    checksum_at(session, record, &path)
}

/// [`checksum_ok`] of the backup's data at `path`.
pub(super) fn checksum_at(
    session: &Session,
    record: &BackupRecord,
    path: &Path,
) -> std::result::Result<(), (Error, Option<Status>)> {
    if record.format == Format::Directory {
        return directory_checksum(session, record, path);
    }
    let shown = session.ctx.show(path);
    let file = File::open(path).map_err(|e| {
        let status = (e.kind() == std::io::ErrorKind::NotFound).then_some(Status::Missing);
        let err = Error::verification(format!("backup file {shown} cannot be opened"))
            .caused_by(e)
            .with_hint(Remedy::PickAnotherBackup);
        (err, status)
    })?;
    let (sha, _) = pipeline::hash_file(file).map_err(|e| {
        (
            Error::verification(format!("backup file {shown} cannot be read")).caused_by(e),
            None,
        )
    })?;
    if sha == record.sha256 {
        Ok(())
    } else {
        let err = Error::verification(format!(
            "backup {} failed its checksum: the file changed since it was written",
            record.id
        ))
        .with_hint(Remedy::RestoreAnotherBackup {
            marked_corrupt: true,
        });
        Err((err, Some(Status::Corrupt)))
    }
}

/// [`checksum_ok`] for a directory dump: every recorded file's SHA-256 against the one recorded,
/// and the dump's checksum over them all. A changed or missing file makes it corrupt; a file
/// nobody recorded is reported and ignored (pg_restore reads only the files the dump names).
pub(super) fn directory_checksum(
    session: &Session,
    record: &BackupRecord,
    path: &Path,
) -> std::result::Result<(), (Error, Option<Status>)> {
    let shown = session.ctx.show(path);
    let unreadable = |e: std::io::Error, status: Option<Status>| {
        let what = if status == Some(Status::Missing) {
            format!("backup directory {shown} is missing")
        } else {
            format!("backup directory {shown} cannot be read")
        };
        let err = Error::verification(what)
            .caused_by(e)
            .with_hint(Remedy::PickAnotherBackup);
        (err, status)
    };
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            let e = std::io::Error::other("not a directory");
            return Err(unreadable(e, Some(Status::Corrupt)));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(unreadable(e, Some(Status::Missing)));
        }
        Err(e) => return Err(unreadable(e, None)),
    }
    let mut diffs = Vec::new();
    let found = if record.files.is_empty() {
        // An entry without its file list (rewritten by a faber-db that did not know it): the
        // checksum over the whole listing still decides.
        dirdump::digest_dir(path).map_err(|e| unreadable(e, Some(Status::Corrupt)))?
    } else {
        let mut found = Vec::new();
        for f in &record.files {
            match dirdump::digest_file(path, &f.name) {
                Ok(d) => found.push(d),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    diffs.push(format!("{} (a bad name in the record)", f.name));
                }
                Err(e) => return Err(unreadable(e, None)),
            }
        }
        diffs.extend(dirdump::differences(&record.files, &found));
        match dirdump::unrecorded_entries(path, &record.files) {
            Ok(extra) if !extra.is_empty() => session.events().warn(&format!(
                "{}: ignoring what the backup does not record in {shown}: {}",
                record.id,
                extra.join(", ")
            )),
            _ => {}
        }
        found
    };
    if diffs.is_empty() && dirdump::checksum(&found) != record.sha256 {
        diffs.push("the listing's checksum differs".to_string());
    }
    if diffs.is_empty() {
        return Ok(());
    }
    let shown_diffs = diffs.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    let more = if diffs.len() > 5 {
        format!(" and {} more", diffs.len() - 5)
    } else {
        String::new()
    };
    let err = Error::verification(format!(
        "backup {} failed its checksum: {shown_diffs}{more}",
        record.id
    ))
    .with_hint(Remedy::RestoreAnotherBackup {
        marked_corrupt: true,
    });
    Err((err, Some(Status::Corrupt)))
}
