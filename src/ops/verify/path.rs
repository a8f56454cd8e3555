//! `verify PATH`: a backup file (or directory dump) checked against the manifest beside it, as
//! if registered there.

use std::path::Path;

use crate::error::{Error, Kind, Remedy, Result};
use crate::provider::ProviderKind;
use crate::registry::BackupRecord;
use crate::session::Session;

use super::{Checked, Depth};

/// Whether `verify`'s argument names a file rather than a backup ID: IDs never hold a `/`, and a
/// name that exists here is taken as the file it names.
pub fn is_path(arg: &str) -> bool {
    arg.contains('/') || arg.ends_with(MANIFEST_SUFFIX) || Path::new(arg).exists()
}

/// How a manifest's file name ends.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";

/// Checks the backup at `path` against the manifest beside it; returns its entry (as read from
/// that manifest, `file` the data's absolute path) and the verdict. Nothing is recorded: the
/// registry may not know the file, and a copy on another disk says nothing about the
/// registered one.
pub fn by_path(session: &Session, path: &Path, depth: Depth) -> Result<(BackupRecord, Checked)> {
    let record = sidecar(session, path)?;
    if depth == Depth::Deep && record.provider != ProviderKind::Sqlite {
        // The trial restore would go to the server the manifest names: not for a loose file.
        return Err(Error::config(format!(
            "--deep loads a {} backup into a scratch database on its environment's server; \
             that is not done for a file given by path",
            record.provider.as_str()
        ))
        .with_hint(Remedy::VerifyByIdDeep));
    }
    let checked = super::check_in(session, &record, depth, Some(&scratch_dir(&record)));
    Ok((record, checked))
}

/// The entry of the backup at `path` (its data, or its manifest), read from the manifest beside
/// it, with `file` set to the data's absolute path and no off-site copy to fetch.
fn sidecar(session: &Session, path: &Path) -> Result<BackupRecord> {
    let shown = path.display();
    let path = std::path::absolute(path)
        .map_err(|e| Error::config(format!("{shown} cannot be resolved")).caused_by(e))?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let read = |manifest: &Path| -> Result<BackupRecord> {
        let text = std::fs::read_to_string(manifest)
            .map_err(|e| Error::io(Kind::Config, "cannot read", manifest, e))?;
        serde_json::from_str(&text).map_err(|e| {
            Error::config(format!(
                "{} is not a faber-db manifest",
                session.ctx.show(manifest)
            ))
            .caused_by(e)
            .with_hint("verifying a file needs the manifest faber-db wrote beside it")
        })
    };
    let data_name = |r: &BackupRecord| {
        Path::new(&r.file)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
    };
    let mut record = if name.ends_with(MANIFEST_SUFFIX) {
        let record = read(&path)?;
        let data = data_name(&record).unwrap_or_default();
        BackupRecord {
            file: dir.join(data).to_string_lossy().into_owned(),
            ..record
        }
    } else {
        if std::fs::symlink_metadata(&path).is_err() {
            return Err(
                Error::config(format!("{shown} does not exist")).with_hint(Remedy::NameBackup)
            );
        }
        // The ID is the name up to one of its dots (labels may hold dots): the longest such
        // prefix whose manifest lies beside the file and names it.
        let found = name
            .match_indices('.')
            .map(|(i, _)| &name[..i])
            .rev()
            .map(|id| dir.join(format!("{id}{MANIFEST_SUFFIX}")))
            .filter(|m| m.is_file())
            .map(|m| read(&m))
            .find(|r| {
                !r.as_ref()
                    .is_ok_and(|r| data_name(r).as_deref() != Some(&name))
            });
        let Some(record) = found else {
            return Err(Error::config(format!("no manifest beside {shown}"))
                .with_hint("verifying a file needs its manifest (<ID>.manifest.json) in the same directory: copy both"));
        };
        BackupRecord {
            file: path.to_string_lossy().into_owned(),
            ..record?
        }
    };
    record.offsite = None;
    Ok(record)
}

/// Where a check by path decodes what it must: beside the file if that directory can be
/// written, else the system's temporary directory.
fn scratch_dir(record: &BackupRecord) -> std::path::PathBuf {
    let beside = Path::new(&record.file)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let writable = std::ffi::CString::new(beside.as_os_str().as_encoded_bytes())
        // SAFETY: a NUL-terminated path that lives across the call; access() only reads it.
        .is_ok_and(|c| unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0);
    if writable {
        beside
    } else {
        std::env::temp_dir()
    }
}
