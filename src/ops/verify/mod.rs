//! Verifying backups: the checksum of the stored bytes, the structure of the data they decode
//! to, and with a deep check a trial load whose row counts are compared with the manifest. A
//! check never fails: what it finds is the verdict ([`Checked`]); the command prints it.

mod checksum;
mod drill;
mod path;
mod structure;

#[cfg(test)]
mod tests;

use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{Error, Kind, Remedy, Result};
use crate::format::Format;
use crate::fsutil;
use crate::pipeline::Decoder;
use crate::provider::{Source, StructureCheck};
use crate::registry::{BackupRecord, Status, Verification};
use crate::session::Session;

pub use checksum::checksum_ok;
pub use drill::{Drilled, drill, last_drills};
pub use path::{MANIFEST_SUFFIX, by_path, is_path};
pub use structure::compare_tables;

/// How much [`check`] checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// The SHA-256 only.
    Checksum,
    /// The SHA-256 and the structure (DESIGN.md §6).
    Structure,
    /// Also a trial restore, with row counts compared.
    Deep,
}

/// The verdict on one backup.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    pub id: String,
    pub environment: String,
    pub status: Status,
    pub verification: Verification,
    /// What failed, when the status is not valid or the check could not run.
    pub problem: Option<String>,
    /// False when the check could not run here (a missing tool, an unsupported provider): the
    /// backup's status is then left as it was.
    pub verified: bool,
    /// Why the check could not run, when it could not.
    #[serde(skip)]
    pub not_run: Option<Kind>,
    /// Removed by another run (a cleanup, a delete) while this one went through the backups:
    /// nothing to check, and nothing wrong.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
    /// What would settle the problem, when a command would: the command layer words it after
    /// the problem (`…; run …`).
    #[serde(skip)]
    pub remedy: Option<Remedy>,
}

impl Checked {
    fn advising(self, remedy: Remedy) -> Checked {
        Checked {
            remedy: Some(remedy),
            ..self
        }
    }
}

/// Which backups a verify run checks.
#[derive(Debug, Clone, Copy)]
pub enum Which<'a> {
    /// The one with this ID.
    Id(&'a str),
    /// Every backup of this environment (one no longer configured, too, while it has backups).
    Env(&'a str),
    /// Every backup.
    All,
}

/// The backups `which` names, newest first.
pub fn select(session: &Session, which: Which) -> Result<Vec<BackupRecord>> {
    let reg = session.store.load()?;
    Ok(match which {
        Which::Id(id) => {
            crate::ids::validate_id(id)?;
            vec![find(&reg, id)?.clone()]
        }
        Which::Env(env) => {
            let backups = reg.newest_first(Some(env));
            if !session.config.environments.contains_key(env) && backups.is_empty() {
                session.env(env)?;
            }
            backups.into_iter().cloned().collect()
        }
        Which::All => reg.newest_first(None).into_iter().cloned().collect(),
    })
}

/// Checks one backup: the file's SHA-256 against the registry, then the decoded data's structure,
/// and with `deep` its row counts against the manifest. Never fails: problems are the verdict.
pub fn check(session: &Session, record: &BackupRecord, depth: Depth) -> Checked {
    check_in(session, record, depth, None)
}

/// The verdicts one check can reach, all about one backup at one time.
struct Verdicts<'a> {
    record: &'a BackupRecord,
    now: DateTime<Utc>,
    depth: Depth,
}

impl Verdicts<'_> {
    fn verdict(
        &self,
        status: Status,
        integrity: String,
        readable: bool,
        problem: Option<String>,
    ) -> Checked {
        Checked {
            id: self.record.id.clone(),
            environment: self.record.environment.clone(),
            status,
            verification: Verification {
                integrity_check: integrity,
                file_readable: readable,
                verified_at: self.now,
                deep: self.depth == Depth::Deep,
                checksum_only: self.depth == Depth::Checksum,
            },
            problem,
            verified: true,
            not_run: None,
            removed: false,
            remedy: None,
        }
    }

    /// A check that could not run says nothing about the backup: its status stays as it was.
    fn not_run(&self, kind: Kind, problem: String) -> Checked {
        Checked {
            verified: false,
            not_run: Some(kind),
            ..self.verdict(self.record.status, "not run".into(), false, Some(problem))
        }
    }

    /// Removed by another run meanwhile: nothing to check.
    fn removed(&self) -> Checked {
        Checked {
            removed: true,
            verified: false,
            ..self.verdict(self.record.status, "not run".into(), false, None)
        }
    }
}

/// How far a check got before it reached its verdict.
type Step<T> = std::result::Result<T, Box<Checked>>;

/// [`check`], with decoding done in `work_dir` (a check by path) instead of the backup's
/// environment directory, and nothing fetched from off-site.
fn check_in(
    session: &Session,
    record: &BackupRecord,
    depth: Depth,
    work_dir: Option<&Path>,
) -> Checked {
    let v = Verdicts {
        record,
        now: session.ctx.now,
        depth,
    };
    let (path, _held) = match reach(session, &v, work_dir) {
        Ok(found) => found,
        Err(verdict) => return *verdict,
    };
    if depth == Depth::Checksum {
        return checksum_verdict(session, &v, &path);
    }
    // Decrypted data is decoded in a private directory, never beside the backups.
    let work_dir = match work_dir {
        _ if record.encrypted => fsutil::private_temp_dir(session.store.dir()),
        Some(d) => Ok(d.to_path_buf()),
        None => session.store.env_dir(&record.environment),
    };
    let work_dir = match work_dir {
        Ok(d) => d,
        Err(e) => return v.not_run(e.kind(), e.one_line()),
    };
    let structure = if record.format == Format::Directory {
        directory_structure(session, &v, &path, &work_dir)
    } else {
        file_structure(session, &v, &path, &work_dir)
    };
    match structure {
        Ok(structure) => structure_verdict(&v, structure),
        Err(verdict) => *verdict,
    }
}

/// The backup's data, fetched from its off-site copy when it is gone from here, and held so
/// that a cleanup or delete leaves it alone while it is checked.
fn reach(
    session: &Session,
    v: &Verdicts,
    work_dir: Option<&Path>,
) -> Step<(PathBuf, Option<crate::removal::Held>)> {
    let record = v.record;
    // A file gone from here is fetched from its off-site copy, then checked like any other.
    let fetched = match work_dir {
        Some(_) => Ok(false),
        None => crate::offsite::fetch_if_missing(session, record),
    };
    match fetched {
        Ok(_) => {}
        // The object was gone off-site because a cleanup or delete removed the backup.
        Err(_) if removed_meanwhile(session, &record.id) => return Err(Box::new(v.removed())),
        Err(e) if e.kind() == Kind::Verification => {
            let missing = v.verdict(Status::Missing, "not run".into(), false, Some(e.one_line()));
            return Err(Box::new(missing));
        }
        Err(e) => return Err(Box::new(v.not_run(e.kind(), e.one_line()))),
    }
    // A registered backup's file is where the registry says, if that is a place of this
    // project's; a file checked by path is where the user said.
    let path = match work_dir {
        Some(_) => PathBuf::from(&record.file),
        None => {
            session
                .store
                .locate(record)
                .map_err(|e| Box::new(v.not_run(e.kind(), e.one_line())))?
                .data
        }
    };
    // Held while it is checked; gone already, it may have been removed since this run read
    // the registry.
    let held = match work_dir {
        Some(_) => None,
        None => {
            crate::removal::hold(&path).map_err(|e| Box::new(v.not_run(e.kind(), e.one_line())))?
        }
    };
    if work_dir.is_none() && held.is_none() && removed_meanwhile(session, &record.id) {
        return Err(Box::new(v.removed()));
    }
    Ok((path, held))
}

/// The verdict of a checksum-only check.
fn checksum_verdict(session: &Session, v: &Verdicts, path: &Path) -> Checked {
    let record = v.record;
    match checksum::checksum_at(session, record, path) {
        // The bytes are the ones written, but an earlier full check found the data in them
        // bad: only a full check may clear that.
        Ok(()) if record.status == Status::Corrupt => v
            .verdict(
                Status::Corrupt,
                "not checked".into(),
                true,
                Some(
                    "the checksum matches, but an earlier full check found the data corrupt".into(),
                ),
            )
            .advising(Remedy::VerifyFully),
        Ok(()) if record.status == Status::Mismatch => v
            .verdict(
                Status::Mismatch,
                "not checked".into(),
                true,
                Some(still_mismatched("the checksum matches")),
            )
            .advising(Remedy::VerifyDeepAgain),
        Ok(()) => v.verdict(Status::Valid, "not checked".into(), true, None),
        Err((e, Some(status))) => v.verdict(
            status,
            "not checked".into(),
            status != Status::Missing,
            Some(e.one_line()),
        ),
        Err((e, None)) => v.not_run(Kind::Verification, e.one_line()),
    }
}

/// The structure of a directory dump, once its files' digests match: pg_restore then reads
/// what was just checked.
fn directory_structure(
    session: &Session,
    v: &Verdicts,
    path: &Path,
    work_dir: &Path,
) -> Step<Result<StructureCheck>> {
    let record = v.record;
    match checksum::directory_checksum(session, record, path) {
        Ok(()) => Ok(structure::structure(
            session,
            record,
            Source::Path(path),
            work_dir,
            v.depth == Depth::Deep,
        )),
        Err((e, Some(status))) => Err(Box::new(v.verdict(
            status,
            "not run".into(),
            status != Status::Missing,
            Some(e.message().to_string()),
        ))),
        Err((e, None)) => Err(Box::new(v.not_run(Kind::Verification, e.one_line()))),
    }
}

/// The structure of a backup file, decoded (and decrypted) as it streams, and its SHA-256
/// taken on the way.
fn file_structure(
    session: &Session,
    v: &Verdicts,
    path: &Path,
    work_dir: &Path,
) -> Step<Result<StructureCheck>> {
    let record = v.record;
    let shown = session.ctx.show(path);
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let problem = format!("file {shown} is missing");
            let missing = v.verdict(Status::Missing, "not run".into(), false, Some(problem));
            return Err(Box::new(missing));
        }
        Err(e) => {
            let problem = format!("cannot open {shown}: {e}");
            return Err(Box::new(v.not_run(Kind::Verification, problem)));
        }
    };
    let decryption = crate::crypt::Decryption::of(&session.config, &session.vars, record)
        .map_err(|e| Box::new(v.not_run(e.kind(), e.one_line())))?;
    let decrypt = decryption.as_ref().map(|d| d.decrypt());
    let mut decoder = match Decoder::new(file, record.compression, decrypt.as_ref()) {
        Ok(d) => d,
        // A header that does not open may be a wrong key or a damaged file: the file's hash
        // tells which.
        Err(e) => {
            return Err(Box::new(
                match checksum::checksum_at(session, record, path) {
                    Err((c, Some(status))) => {
                        v.verdict(status, "not run".into(), true, Some(c.one_line()))
                    }
                    _ => v.not_run(Kind::Verification, format!("cannot decode: {e}")),
                },
            ));
        }
    };
    let structure = structure::structure(
        session,
        record,
        Source::Stream(&mut decoder),
        work_dir,
        v.depth == Depth::Deep,
    );
    match decoder.finish() {
        Ok((sha, _)) if sha != record.sha256 => {
            let integrity = structure.map_or_else(|e| e.one_line(), |s| s.integrity_check);
            let problem = "checksum mismatch: the file changed since it was written".to_string();
            Err(Box::new(v.verdict(
                Status::Corrupt,
                integrity,
                true,
                Some(problem),
            )))
        }
        Ok(_) => Ok(structure),
        Err(e) => Err(Box::new(
            v.not_run(Kind::Verification, format!("cannot read {shown}: {e}")),
        )),
    }
}

/// The verdict once the stored bytes are known to be the ones written. Only a failure of the
/// data itself now says the backup is bad; anything else (no scratch space, a missing tool, a
/// load the server refused) says nothing about it.
fn structure_verdict(v: &Verdicts, structure: Result<StructureCheck>) -> Checked {
    let record = v.record;
    let structure = match structure {
        Ok(s) => s,
        Err(e) if e.kind() == Kind::Verification => {
            return v.verdict(Status::Corrupt, e.one_line(), true, Some(e.one_line()));
        }
        Err(e) => return v.not_run(e.kind(), e.one_line()),
    };
    if structure.integrity_check != "ok" {
        let p = format!("integrity check failed: {}", structure.integrity_check);
        return v.verdict(Status::Corrupt, structure.integrity_check, true, Some(p));
    }
    match &structure.tables {
        Some(tables) => {
            // The data is sound and loads; its counts are not what the manifest says. That
            // is a question about the manifest or the data, not damage: `mismatch`.
            let diffs = compare_tables(record.provider, &record.tables, tables);
            if !diffs.is_empty() {
                let problem = format!("row counts differ from the manifest: {}", diffs.join(", "));
                return v.verdict(
                    Status::Mismatch,
                    structure.integrity_check,
                    true,
                    Some(problem),
                );
            }
        }
        // Only a deep check compares counts, so only a deep check may clear a mismatch.
        None if record.status == Status::Mismatch => {
            return v
                .verdict(
                    Status::Mismatch,
                    structure.integrity_check,
                    true,
                    Some(still_mismatched("the data is sound")),
                )
                .advising(Remedy::VerifyDeepAgain);
        }
        None => {}
    }
    v.verdict(Status::Valid, structure.integrity_check, true, None)
}

/// The verdict on a `mismatch` backup that a check without row counts found otherwise sound
/// (`found`: what that check found).
fn still_mismatched(found: &str) -> String {
    format!("{found}, but an earlier deep check found row counts that differ from the manifest")
}

/// Whether backup `id` left the registry (or is on its way out) since this run read it.
pub fn removed_meanwhile(session: &Session, id: &str) -> bool {
    crate::removal::tombstoned(&session.store).contains(id)
        || session.store.load().is_ok_and(|reg| reg.find(id).is_none())
}

/// The backup `id` in the registry `reg`.
pub fn find<'a>(reg: &'a crate::registry::RegistryFile, id: &str) -> Result<&'a BackupRecord> {
    reg.find(id).ok_or_else(|| {
        Error::config(format!("no backup with ID `{id}`")).with_hint(Remedy::ListBackups)
    })
}

/// Writes verdicts back to the registry and the manifests.
pub fn record_results(session: &Session, results: &[Checked]) -> Result<()> {
    if results.is_empty() {
        return Ok(());
    }
    record_with(session, results, None).map(|_| ())
}

/// [`record_results`]; with `also`, applied to every checked entry too — verified or not — in
/// the same update of the registry and of its manifest. The entries as recorded.
pub(super) fn record_with(
    session: &Session,
    results: &[Checked],
    also: Option<&dyn Fn(&mut BackupRecord)>,
) -> Result<Vec<BackupRecord>> {
    let locator = session.store.locator();
    session.store.update(|reg| {
        let mut recorded = Vec::new();
        for c in results.iter().filter(|c| c.verified || also.is_some()) {
            let Some(b) = reg.backups.iter_mut().find(|b| b.id == c.id) else {
                continue;
            };
            if c.verified {
                b.status = c.status;
                b.verification = Some(c.verification.clone());
            }
            if let Some(also) = also {
                also(b);
            }
            // The manifest mirrors the entry; a missing file has no manifest to update.
            let located = locator.locate(&b.id, &b.environment, &b.file);
            if let Ok(l) = located
                && b.status != Status::Missing
                && l.manifest.exists()
            {
                crate::registry::write_manifest_at(&l.manifest, b)?;
            }
            recorded.push(b.clone());
        }
        Ok(recorded)
    })
}
