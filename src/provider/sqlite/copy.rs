//! A backup loaded into a scratch file for a migration's rehearsal. The file is made in the
//! ledger's own directory (`<backup dir>/.scratch`), where nothing but faber-db's own files is
//! kept, under a name of faber-db's making, and recorded in the ledger before it is created: it
//! is removed, with the side files SQLite keeps beside it, when the copy goes, and a killed run's
//! by the next rehearsal's sweep.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::Sqlite;
use super::image::copy_into;
use crate::error::{Error, Kind, Result};
use crate::format::Format;
use crate::fsutil;
use crate::provider::{Provider, ScratchCopy, Source};
use crate::scratch::{Claim, Ledger, Purpose, Sweep};

/// Side files SQLite keeps beside a database.
const SIDE_FILES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// How the ledger names the place rehearsal copies are made: the ledger's directory.
fn server_of(ledger: &Ledger) -> String {
    format!("sqlite-rehearse:{}", ledger.dir().display())
}

/// Whether `path` is a rehearsal copy of faber-db's making in the ledger's directory.
fn is_copy(ledger: &Ledger, path: &Path) -> bool {
    path.parent() == Some(ledger.dir())
        && path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("rehearse-") && n.ends_with(".sqlite3"))
}

/// Removes `path` and its side files; true when all are gone.
fn remove_all(path: &Path) -> bool {
    let mut all_gone = true;
    for file in std::iter::once(path.to_path_buf()).chain(SIDE_FILES.iter().map(|s| {
        let mut side = path.as_os_str().to_owned();
        side.push(s);
        PathBuf::from(side)
    })) {
        if fsutil::remove_if_exists(&file).is_err() {
            all_gone = false;
        }
    }
    all_gone
}

/// Removes the rehearsal copies killed runs left: those the ledger records, whose runs are dead,
/// and that are files of faber-db's naming in the ledger's directory. Nothing else is touched.
/// Without `drop`, only the records of copies that are gone are forgotten.
pub(super) fn sweep(db: &Sqlite, drop: bool) -> Sweep {
    let mut swept = Sweep::default();
    let Some(ledger) = &db.ledger else {
        return swept;
    };
    for claim in ledger.dead(&server_of(ledger)) {
        let path = PathBuf::from(&claim.entry().name);
        if !is_copy(ledger, &path) {
            continue;
        }
        let existed = path.exists();
        if existed && !drop {
            continue;
        }
        if remove_all(&path) {
            if existed {
                swept.dropped.push(path.display().to_string());
            }
            claim.release();
        } else {
            swept
                .failed
                .push((path.display().to_string(), "cannot remove it".into()));
        }
    }
    swept
}

/// Decodes the backup into a new copy in the ledger's directory.
pub(super) fn scratch_copy(
    db: &Sqlite,
    format: Format,
    source: Source<'_>,
) -> Result<Box<dyn ScratchCopy>> {
    if format != Format::Sqlite {
        return Err(Error::config(format!(
            "a {format} backup cannot be loaded into SQLite"
        )));
    }
    let ledger = Ledger::required(db.ledger.as_ref())?;
    let path = ledger.dir().join(format!(
        "rehearse-{}.sqlite3",
        crate::provider::tool::random_suffix()
    ));
    // Recorded before it is created (the claim makes the directory).
    let claim = ledger.claim(
        &server_of(ledger),
        Purpose::Rehearse,
        &path.to_string_lossy(),
    )?;
    let file = fsutil::create_new_private(&path)
        .map_err(|e| Error::io(Kind::Tool, "cannot create the rehearsal's copy", &path, e));
    let file = match file {
        Ok(f) => f,
        Err(e) => {
            claim.release();
            return Err(e);
        }
    };
    // From here the copy removes itself however this ends.
    let copy = SqliteCopy {
        name: path.to_string_lossy().into_owned(),
        at: Sqlite::new(path.clone()),
        path,
        claim: Some(claim),
    };
    match source {
        Source::Stream(stream) => load(stream, &file, &copy.path)?,
        Source::Path(from) => {
            let mut input = File::open(from)
                .map_err(|e| Error::io(Kind::Verification, "cannot open", from, e))?;
            load(&mut input, &file, &copy.path)?;
        }
    }
    drop(file);
    Ok(Box::new(copy))
}

fn load(source: &mut dyn Read, file: &File, path: &Path) -> Result<()> {
    copy_into(source, file, path, Kind::Tool)?;
    file.sync_all()
        .map_err(|e| Error::io(Kind::Tool, "cannot write", path, e))
}

struct SqliteCopy {
    name: String,
    path: PathBuf,
    at: Sqlite,
    claim: Option<Claim>,
}

impl ScratchCopy for SqliteCopy {
    fn name(&self) -> &str {
        &self.name
    }

    fn provider(&self) -> &dyn Provider {
        &self.at
    }
}

impl Drop for SqliteCopy {
    fn drop(&mut self) {
        // Not all gone: the record stays, for the next run's sweep.
        if remove_all(&self.path)
            && let Some(claim) = self.claim.take()
        {
            claim.release();
        }
    }
}
