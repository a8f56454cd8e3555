//! `faber-db verify ID | --env ENV | --all [--deep]`: checksum and structure of each backup, in
//! one pass over its file; `--deep` also loads the data and compares row counts with the manifest.

use std::fs::File;
use std::path::Path;

use clap::Args;
use serde::Serialize;

use crate::Report;
use crate::dirdump;
use crate::error::{Error, Kind, Result};
use crate::format::Format;
use crate::fsutil;
use crate::ids;
use crate::pipeline::{self, Decoder};
use crate::provider::{self, ProviderKind, Source, StructureCheck, Tables};
use crate::registry::{BackupRecord, Status, Verification};
use crate::session::Session;

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["id", "env", "all"]))]
pub struct VerifyArgs {
    /// Backup ID to verify, or the path of a backup file (or directory dump) to check against the
    /// manifest beside it, registered or not
    #[arg(value_name = "ID|PATH")]
    pub id: Option<String>,

    /// Verify every backup of this environment
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,

    /// Verify every backup in the registry
    #[arg(long)]
    pub all: bool,

    /// Also restore into a scratch database and compare per-table row counts with the manifest
    #[arg(long, conflicts_with = "checksum_only")]
    pub deep: bool,

    /// Only recompute each file's SHA-256 and compare it with the registry (at disk speed; the
    /// structure is not checked)
    #[arg(long)]
    pub checksum_only: bool,
}

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
}

pub fn run(session: &Session, args: VerifyArgs) -> Result<Report> {
    let depth = if args.deep {
        Depth::Deep
    } else if args.checksum_only {
        Depth::Checksum
    } else {
        Depth::Structure
    };
    if let Some(path) = args.id.as_deref().filter(|a| is_path(a)) {
        return run_path(session, Path::new(path), depth);
    }
    let reg = session.store.load()?;
    let selected: Vec<BackupRecord> = if let Some(id) = &args.id {
        ids::validate_id(id)?;
        vec![find(&reg, id)?.clone()]
    } else if let Some(env) = &args.env {
        if !session.config.environments.contains_key(env) && reg.newest_first(Some(env)).is_empty()
        {
            session.env(env)?;
        }
        reg.newest_first(Some(env)).into_iter().cloned().collect()
    } else {
        reg.newest_first(None).into_iter().cloned().collect()
    };
    let ui = &session.ctx.ui;
    if selected.is_empty() {
        ui.line("No backups to verify.");
    }
    let mut results = Vec::new();
    for record in &selected {
        let checked = check(session, record, depth);
        say(session, record, depth, &checked);
        results.push(checked);
        crate::testpoint::pause("verify:after-one");
    }
    record_results(session, &results)?;
    Ok(verdicts(session, results))
}

/// Prints the verdict on one backup.
fn say(session: &Session, record: &BackupRecord, depth: Depth, checked: &Checked) {
    let ui = &session.ctx.ui;
    match &checked.problem {
        None if checked.removed => ui.line(format!(
            "{} {}: removed by another run meanwhile; not checked",
            record.environment, record.id
        )),
        None if depth == Depth::Checksum => ui.ok(format!(
            "{} {}: checksum ok (structure not checked)",
            record.environment, record.id
        )),
        None => ui.ok(format!(
            "{} {}: checksum ok, integrity {}{}",
            record.environment,
            record.id,
            checked.verification.integrity_check,
            if depth == Depth::Deep {
                ", row counts match"
            } else {
                ""
            }
        )),
        Some(p) => {
            let verdict = if checked.verified {
                checked.status.as_str()
            } else {
                "not verified"
            };
            ui.fail(format!(
                "{} {}: {verdict} — {p}",
                record.environment, record.id
            ));
        }
    }
}

/// The report of a verify run: the verdicts, and the failure when any backup failed or could
/// not be checked.
fn verdicts(session: &Session, results: Vec<Checked>) -> Report {
    let ui = &session.ctx.ui;
    let failed: Vec<&Checked> = results
        .iter()
        .filter(|c| c.verified && c.status != Status::Valid)
        .collect();
    let not_run: Vec<&Checked> = results
        .iter()
        .filter(|c| !c.verified && !c.removed)
        .collect();
    let mut report = Report::new().with("results", &results);
    if let [only] = results.as_slice() {
        report = report.with("backup", only);
    }
    if !failed.is_empty() {
        let mut err = Error::verification(format!(
            "{} of {} backups failed verification",
            failed.len(),
            results.len()
        ));
        let (mismatched, bad): (Vec<&Checked>, Vec<&Checked>) =
            failed.iter().partition(|c| c.status == Status::Mismatch);
        // Which tables differ, per backup: what to look at before trusting its data.
        for c in &mismatched {
            err = err.caused_by(format!(
                "{} {}",
                c.id,
                c.problem.as_deref().unwrap_or("mismatch")
            ));
        }
        if !bad.is_empty() {
            err = err.with_hint("a corrupt backup cannot be restored; take a fresh backup, and check the disk it lived on");
        }
        if !mismatched.is_empty() {
            err = err.add_hint(MISMATCH_HINT);
        }
        report.failure = Some(err);
    } else if let Some(first) = not_run.first() {
        report.failure = Some(
            Error::new(
                first.not_run.unwrap_or(Kind::Config),
                format!(
                    "{} of {} could not be verified here",
                    not_run.len(),
                    crate::ui::count(results.len() as u64, "backup")
                ),
            )
            .with_hint(format!(
                "their status was left as it was; fix this and verify again: {}",
                first.problem.clone().unwrap_or_default()
            )),
        );
    } else if !results.is_empty() {
        ui.line(format!(
            "{} verified",
            crate::ui::count(results.len() as u64, "backup")
        ));
    }
    report
}

/// Whether `verify`'s argument names a file rather than a backup ID: IDs never hold a `/`, and a
/// name that exists here is taken as the file it names.
pub fn is_path(arg: &str) -> bool {
    arg.contains('/') || arg.ends_with(MANIFEST_SUFFIX) || Path::new(arg).exists()
}

const MANIFEST_SUFFIX: &str = ".manifest.json";

/// `verify PATH`: a backup file (or directory dump) checked against the manifest beside it, as
/// if registered there. Nothing is recorded: the registry may not know the file, and a copy on
/// another disk says nothing about the registered one.
fn run_path(session: &Session, path: &Path, depth: Depth) -> Result<Report> {
    let record = sidecar(session, path)?;
    if depth == Depth::Deep && record.provider != ProviderKind::Sqlite {
        // The trial restore would go to the server the manifest names: not for a loose file.
        return Err(Error::config(format!(
            "--deep loads a {} backup into a scratch database on its environment's server; \
             that is not done for a file given by path",
            record.provider.as_str()
        ))
        .with_hint(
            "verify it without --deep, or register it and run `faber-db verify ID --deep`",
        ));
    }
    let checked = check_at(session, &record, depth, Some(&scratch_dir(&record)));
    say(session, &record, depth, &checked);
    let report = verdicts(session, vec![checked]);
    Ok(report.with("path", record.file.as_str()))
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
            return Err(Error::config(format!("{shown} does not exist"))
                .with_hint("name a backup file, or a backup ID (see `faber-db list`)"));
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
    record.remote = None;
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

/// Whether backup `id` left the registry (or is on its way out) since this run read it.
pub fn removed_meanwhile(session: &Session, id: &str) -> bool {
    crate::removal::tombstoned(&session.store).contains(id)
        || session.store.load().is_ok_and(|reg| reg.find(id).is_none())
}

pub fn find<'a>(reg: &'a crate::registry::RegistryFile, id: &str) -> Result<&'a BackupRecord> {
    reg.find(id).ok_or_else(|| {
        Error::config(format!("no backup with ID `{id}`"))
            .with_hint("list the backups with `faber-db list`")
    })
}

/// Checks one backup: the file's SHA-256 against the registry, then the decoded data's structure,
/// and with `deep` its row counts against the manifest. Never fails: problems are the verdict.
pub fn check(session: &Session, record: &BackupRecord, depth: Depth) -> Checked {
    check_at(session, record, depth, None)
}

/// [`check`], with decoding done in `work_dir` (a check by path) instead of the backup's
/// environment directory, and nothing fetched from off-site.
fn check_at(
    session: &Session,
    record: &BackupRecord,
    depth: Depth,
    work_dir: Option<&Path>,
) -> Checked {
    let now = session.ctx.now;
    let deep = depth == Depth::Deep;
    let verdict = |status, integrity: String, readable, problem: Option<String>| Checked {
        id: record.id.clone(),
        environment: record.environment.clone(),
        status,
        verification: Verification {
            integrity_check: integrity,
            file_readable: readable,
            verified_at: now,
            deep,
            checksum_only: depth == Depth::Checksum,
        },
        problem,
        verified: true,
        not_run: None,
        removed: false,
    };
    // A check that could not run says nothing about the backup: its status stays as it was.
    let not_run = |kind: Kind, problem: String| Checked {
        verified: false,
        not_run: Some(kind),
        ..verdict(record.status, "not run".into(), false, Some(problem))
    };
    // A file gone from here is fetched from its off-site copy, then checked like any other.
    let fetched = match work_dir {
        Some(_) => Ok(false),
        None => crate::cmd::remote::fetch_if_missing(session, record),
    };
    let removed = || Checked {
        removed: true,
        verified: false,
        ..verdict(record.status, "not run".into(), false, None)
    };
    match fetched {
        Ok(_) => {}
        // The object was gone off-site because a cleanup or delete removed the backup.
        Err(_) if removed_meanwhile(session, &record.id) => return removed(),
        Err(e) if e.kind() == Kind::Verification => {
            return verdict(Status::Missing, "not run".into(), false, Some(e.one_line()));
        }
        Err(e) => return not_run(e.kind(), e.one_line()),
    }
    // A registered backup's file is where the registry says, if that is a place of this
    // project's; a file checked by path is where the user said.
    let path = match work_dir {
        Some(_) => std::path::PathBuf::from(&record.file),
        None => match session.store.locate(record) {
            Ok(l) => l.data,
            Err(e) => return not_run(e.kind(), e.one_line()),
        },
    };
    // Held while it is checked, so that a cleanup or delete leaves it alone meanwhile; gone
    // already, it may have been removed since this run read the registry.
    let held = match work_dir {
        Some(_) => None,
        None => match crate::removal::hold(&path) {
            Ok(h) => h,
            Err(e) => return not_run(e.kind(), e.one_line()),
        },
    };
    if work_dir.is_none() && held.is_none() && removed_meanwhile(session, &record.id) {
        return removed();
    }
    if depth == Depth::Checksum {
        return match checksum_at(session, record, &path) {
            // The bytes are the ones written, but an earlier full check found the data in them
            // bad: only a full check may clear that.
            Ok(()) if record.status == Status::Corrupt => verdict(
                Status::Corrupt,
                "not checked".into(),
                true,
                Some(
                    "the checksum matches, but an earlier full check found the data corrupt; \
                     run `faber-db verify` without --checksum-only to check it again"
                        .into(),
                ),
            ),
            Ok(()) if record.status == Status::Mismatch => verdict(
                Status::Mismatch,
                "not checked".into(),
                true,
                Some(still_mismatched("the checksum matches")),
            ),
            Ok(()) => verdict(Status::Valid, "not checked".into(), true, None),
            Err((e, Some(status))) => verdict(
                status,
                "not checked".into(),
                status != Status::Missing,
                Some(e.one_line()),
            ),
            Err((e, None)) => not_run(Kind::Verification, e.one_line()),
        };
    }
    // Decrypted data is decoded in a private directory, never beside the backups.
    let work_dir = match work_dir {
        _ if record.encrypted => crate::fsutil::private_temp_dir(session.store.dir()),
        Some(d) => Ok(d.to_path_buf()),
        None => session.store.env_dir(&record.environment),
    };
    let work_dir = match work_dir {
        Ok(d) => d,
        Err(e) => return not_run(e.kind(), e.one_line()),
    };
    let structure = if record.format == Format::Directory {
        // The files' digests first: pg_restore then reads what was just checked.
        match directory_checksum(session, record, &path) {
            Ok(()) => structure(session, record, Source::Path(&path), &work_dir, deep),
            Err((e, Some(status))) => {
                return verdict(
                    status,
                    "not run".into(),
                    status != Status::Missing,
                    Some(e.message().to_string()),
                );
            }
            Err((e, None)) => return not_run(Kind::Verification, e.one_line()),
        }
    } else {
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let problem = format!("file {} is missing", session.ctx.show(&path));
                return verdict(Status::Missing, "not run".into(), false, Some(problem));
            }
            Err(e) => {
                return not_run(
                    Kind::Verification,
                    format!("cannot open {}: {e}", session.ctx.show(&path)),
                );
            }
        };
        let decryption = match crate::crypt::Decryption::of(&session.config, &session.vars, record)
        {
            Ok(d) => d,
            Err(e) => return not_run(e.kind(), e.one_line()),
        };
        let decrypt = decryption.as_ref().map(|d| d.decrypt());
        let mut decoder = match Decoder::new(file, record.compression, decrypt.as_ref()) {
            Ok(d) => d,
            // A header that does not open may be a wrong key or a damaged file: the file's
            // hash tells which.
            Err(e) => {
                return match checksum_at(session, record, &path) {
                    Err((c, Some(status))) => {
                        verdict(status, "not run".into(), true, Some(c.one_line()))
                    }
                    _ => not_run(Kind::Verification, format!("cannot decode: {e}")),
                };
            }
        };
        let structure = structure(
            session,
            record,
            Source::Stream(&mut decoder),
            &work_dir,
            deep,
        );
        match decoder.finish() {
            Ok((sha, _)) if sha != record.sha256 => {
                let integrity = structure.map_or_else(|e| e.one_line(), |s| s.integrity_check);
                let problem =
                    "checksum mismatch: the file changed since it was written".to_string();
                return verdict(Status::Corrupt, integrity, true, Some(problem));
            }
            Ok(_) => {}
            Err(e) => {
                return not_run(
                    Kind::Verification,
                    format!("cannot read {}: {e}", session.ctx.show(&path)),
                );
            }
        }
        structure
    };
    // The stored bytes are the ones written. Only a failure of the data itself now says the
    // backup is bad; anything else (no scratch space, a missing tool, a load the server refused)
    // says nothing about it.
    let structure = match structure {
        Ok(s) => s,
        Err(e) if e.kind() == Kind::Verification => {
            return verdict(Status::Corrupt, e.one_line(), true, Some(e.one_line()));
        }
        Err(e) => return not_run(e.kind(), e.one_line()),
    };
    if structure.integrity_check != "ok" {
        let p = format!("integrity check failed: {}", structure.integrity_check);
        return verdict(Status::Corrupt, structure.integrity_check, true, Some(p));
    }
    match &structure.tables {
        Some(tables) => {
            // The data is sound and loads; its counts are not what the manifest says. That
            // is a question about the manifest or the data, not damage: `mismatch`.
            let diffs = compare_tables(record.provider, &record.tables, tables);
            if !diffs.is_empty() {
                let problem = format!("row counts differ from the manifest: {}", diffs.join(", "));
                return verdict(
                    Status::Mismatch,
                    structure.integrity_check,
                    true,
                    Some(problem),
                );
            }
        }
        // Only a deep check compares counts, so only a deep check may clear a mismatch.
        None if record.status == Status::Mismatch => {
            return verdict(
                Status::Mismatch,
                structure.integrity_check,
                true,
                Some(still_mismatched("the data is sound")),
            );
        }
        None => {}
    }
    verdict(Status::Valid, structure.integrity_check, true, None)
}

/// What to do about backups whose row counts differ from their manifests.
const MISMATCH_HINT: &str = "a mismatch backup's data may not be what its manifest says: \
    `restore --from latest` passes it by and cleanup keeps it; restore it by ID only after \
    checking it, or delete it; `faber-db verify ID --deep` clears it once the counts agree";

/// The verdict on a `mismatch` backup that a check without row counts found otherwise sound
/// (`found`: what that check found).
fn still_mismatched(found: &str) -> String {
    format!(
        "{found}, but an earlier deep check found row counts that differ from the manifest; \
         run `faber-db verify --deep` to compare them again"
    )
}

/// The structure check of one backup. A deep check of a server database's backup loads it into a
/// scratch database on the server of the backup's environment.
fn structure(
    session: &Session,
    record: &BackupRecord,
    source: Source<'_>,
    work_dir: &std::path::Path,
    deep: bool,
) -> Result<StructureCheck> {
    if !deep || record.provider == ProviderKind::Sqlite {
        return provider::check_structure(record.provider, record.format, source, work_dir, deep);
    }
    let env = session.env(&record.environment)?;
    let (_, own) = session.provider(env)?;
    if own.kind() != record.provider {
        return Err(Error::config(format!(
            "environment `{}` is no longer a {} database; the deep check needs one",
            env.name,
            record.provider.as_str()
        )));
    }
    // The scratch database goes to the server `verify_url_env` names, else to the environment's
    // own — when its role may create databases there.
    let db = match session.scratch_server(env, &own.database_name())? {
        Some(server) => server,
        None => {
            let privileges = own.restore_privileges()?;
            if !privileges.create_database {
                return Err(Error::config(format!(
                    "a deep check loads the backup into a scratch database, and {} may not create databases on the server of `{}` (a deep check needs verify_url_env set in [environments.{}])",
                    privileges.role, env.name, env.name
                ))
                .with_hint(format!(
                    "set verify_url_env = \"VAR\" in [environments.{}], VAR holding the URL of a server where faber-db may create scratch databases (a role with CREATEDB)",
                    env.name
                )));
            }
            own
        }
    };
    // What killed runs left on this server goes first (only what the ledger proves ours).
    let swept = db.sweep_scratch(true)?;
    for name in swept.dropped {
        session.ctx.ui.warn(format!(
            "dropped database {name}, left by an interrupted run"
        ));
    }
    for (name, why) in swept.failed {
        session.ctx.ui.warn(format!(
            "database {name}, left by an interrupted run, could not be dropped: {why}"
        ));
    }
    let (integrity_check, tables) = db.deep_check(record.format, source, 1)?;
    Ok(StructureCheck {
        integrity_check,
        tables: Some(tables),
    })
}

/// Differences between the row counts a manifest recorded and those found in a `kind` database:
/// `users 3 → 2`. A count that either side only estimated is not compared; the table must be
/// there all the same. Names are shown as JSON strings when they need it (a newline, a quote).
pub fn compare_tables(kind: ProviderKind, expected: &Tables, found: &Tables) -> Vec<String> {
    let found = &provider::as_named_in(kind, expected, found);
    let name = |n: &str| {
        if n.chars().any(|c| c.is_control() || c == '"' || c == ' ') {
            serde_json::to_string(n).unwrap_or_else(|_| n.to_string())
        } else {
            n.to_string()
        }
    };
    let mut diffs = Vec::new();
    for (n, e) in expected {
        match found.get(n) {
            None => diffs.push(format!("{} missing", name(n))),
            Some(f) if e.estimated || f.estimated => {}
            Some(f) if f.rows != e.rows => {
                diffs.push(format!("{} {} → {}", name(n), e.rows, f.rows));
            }
            Some(_) => {}
        }
    }
    for n in found.keys().filter(|n| !expected.contains_key(*n)) {
        diffs.push(format!("{} unexpected", name(n)));
    }
    diffs
}

/// Writes verdicts back to the registry and the manifests.
pub fn record_results(session: &Session, results: &[Checked]) -> Result<()> {
    if results.is_empty() {
        return Ok(());
    }
    let locator = session.store.locator();
    session.store.update(|reg| {
        for c in results.iter().filter(|c| c.verified) {
            if let Some(b) = reg.backups.iter_mut().find(|b| b.id == c.id) {
                b.status = c.status;
                b.verification = Some(c.verification.clone());
                // The manifest mirrors the entry; a missing file has no manifest to update.
                let located = locator.locate(&b.id, &b.environment, &b.file);
                if let Ok(l) = located
                    && c.status != Status::Missing
                    && l.manifest.exists()
                {
                    fsutil::write_atomic(&l.manifest, &b.manifest_bytes())?;
                }
            }
        }
        Ok(())
    })
}

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
fn checksum_at(
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
            .with_hint("pick another backup (see `faber-db list`), or check the backup directory");
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
        .with_hint("it was marked corrupt; restore another backup (see `faber-db list`)");
        Err((err, Some(Status::Corrupt)))
    }
}

/// [`checksum_ok`] for a directory dump: every recorded file's SHA-256 against the one recorded,
/// and the dump's checksum over them all. A changed or missing file makes it corrupt; a file
/// nobody recorded is reported and ignored (pg_restore reads only the files the dump names).
fn directory_checksum(
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
            .with_hint("pick another backup (see `faber-db list`), or check the backup directory");
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
            Ok(extra) if !extra.is_empty() => session.ctx.ui.warn(format!(
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
    .with_hint("it was marked corrupt; restore another backup (see `faber-db list`)");
    Err((err, Some(Status::Corrupt)))
}
