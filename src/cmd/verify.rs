//! `faber-db verify ID | --env ENV | --all [--deep]`: checksum and structure of each backup, in
//! one pass over its file; `--deep` also loads the data and compares row counts with the manifest.

use std::fs::File;

use clap::Args;
use serde::Serialize;

use crate::Report;
use crate::error::{Error, Kind, Result};
use crate::ids;
use crate::pipeline::{self, Decoder};
use crate::provider::{self, Tables};
use crate::registry::{BackupRecord, Status, Verification};
use crate::session::Session;

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["id", "env", "all"]))]
pub struct VerifyArgs {
    /// Backup ID to verify
    pub id: Option<String>,

    /// Verify every backup of this environment
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,

    /// Verify every backup in the registry
    #[arg(long)]
    pub all: bool,

    /// Also restore into a scratch database and compare per-table row counts with the manifest
    #[arg(long)]
    pub deep: bool,
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
}

pub fn run(session: &Session, args: VerifyArgs) -> Result<Report> {
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
        let checked = check(session, record, args.deep);
        match &checked.problem {
            None => ui.ok(format!(
                "{} {}: checksum ok, integrity {}{}",
                record.environment,
                record.id,
                checked.verification.integrity_check,
                if args.deep { ", row counts match" } else { "" }
            )),
            Some(p) => ui.fail(format!(
                "{} {}: {} — {p}",
                record.environment,
                record.id,
                checked.status.as_str()
            )),
        }
        results.push(checked);
    }
    record_results(session, &results)?;
    let failed = results
        .iter()
        .filter(|c| c.verified && c.status != Status::Valid)
        .count();
    let not_run: Vec<&Checked> = results.iter().filter(|c| !c.verified).collect();
    let mut report = Report::new().with("results", &results);
    if let [only] = results.as_slice() {
        report = report.with("backup", only);
    }
    if failed > 0 {
        report.failure = Some(
            Error::verification(format!("{failed} of {} backups failed verification", results.len()))
                .with_hint("a corrupt backup cannot be restored; take a fresh backup, and check the disk it lived on"),
        );
    } else if let Some(first) = not_run.first() {
        report.failure = Some(
            Error::new(
                first.not_run.unwrap_or(Kind::Config),
                format!(
                    "{} of {} backups could not be verified here",
                    not_run.len(),
                    results.len()
                ),
            )
            .with_hint(first.problem.clone().unwrap_or_default()),
        );
    } else if !results.is_empty() {
        ui.line(format!("{} backups verified", results.len()));
    }
    Ok(report)
}

pub fn find<'a>(reg: &'a crate::registry::RegistryFile, id: &str) -> Result<&'a BackupRecord> {
    reg.find(id).ok_or_else(|| {
        Error::config(format!("no backup with ID `{id}`"))
            .with_hint("list the backups with `faber-db list`")
    })
}

/// Checks one backup: the file's SHA-256 against the registry, then the decoded data's structure,
/// and with `deep` its row counts against the manifest. Never fails: problems are the verdict.
pub fn check(session: &Session, record: &BackupRecord, deep: bool) -> Checked {
    let now = session.ctx.now;
    let path = record.path(session.store.dir());
    let verdict = |status, integrity: String, readable, problem: Option<String>| Checked {
        id: record.id.clone(),
        environment: record.environment.clone(),
        status,
        verification: Verification {
            integrity_check: integrity,
            file_readable: readable,
            verified_at: now,
            deep,
        },
        problem,
        verified: true,
        not_run: None,
    };
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return verdict(
                Status::Missing,
                "not run".into(),
                false,
                Some(format!("file {} is missing", session.ctx.show(&path))),
            );
        }
        Err(e) => {
            return verdict(
                Status::Corrupt,
                "not run".into(),
                false,
                Some(format!("cannot open: {e}")),
            );
        }
    };
    let work_dir = match session.store.env_dir(&record.environment) {
        Ok(d) => d,
        Err(e) => return verdict(Status::Corrupt, "not run".into(), true, Some(e.one_line())),
    };
    let mut decoder = match Decoder::new(file, record.compression) {
        Ok(d) => d,
        Err(e) => {
            return verdict(
                Status::Corrupt,
                "not run".into(),
                true,
                Some(format!("cannot decode: {e}")),
            );
        }
    };
    let structure = provider::check_structure(
        record.provider,
        record.format,
        &mut decoder,
        &work_dir,
        deep,
    );
    let stored = decoder.finish();
    match stored {
        Ok((sha, _)) if sha != record.sha256 => {
            let integrity = structure.map_or_else(|e| e.one_line(), |s| s.integrity_check);
            return verdict(
                Status::Corrupt,
                integrity,
                true,
                Some("checksum mismatch: the file changed since it was written".into()),
            );
        }
        Ok(_) => {}
        Err(e) => {
            return verdict(
                Status::Corrupt,
                "not run".into(),
                false,
                Some(format!("cannot read: {e}")),
            );
        }
    }
    let structure = match structure {
        Ok(s) => s,
        // Only a failure of the data itself says the backup is bad; anything else (a missing
        // tool, no scratch space, an unsupported provider) says nothing about it.
        Err(e) if !matches!(e.kind(), Kind::Verification | Kind::Tool) => {
            let mut c = verdict(record.status, "not run".into(), true, Some(e.one_line()));
            c.verified = false;
            c.not_run = Some(e.kind());
            return c;
        }
        Err(e) => return verdict(Status::Corrupt, e.one_line(), true, Some(e.one_line())),
    };
    if structure.integrity_check != "ok" {
        let p = format!("integrity check failed: {}", structure.integrity_check);
        return verdict(Status::Corrupt, structure.integrity_check, true, Some(p));
    }
    if let Some(tables) = &structure.tables {
        let diffs = compare_tables(&record.tables, tables);
        if !diffs.is_empty() {
            return verdict(
                Status::Corrupt,
                structure.integrity_check,
                true,
                Some(format!("row counts differ: {}", diffs.join(", "))),
            );
        }
    }
    verdict(Status::Valid, structure.integrity_check, true, None)
}

/// Differences between the row counts a manifest recorded and those found: `users 3 → 2`.
pub fn compare_tables(expected: &Tables, found: &Tables) -> Vec<String> {
    let mut diffs = Vec::new();
    for (name, e) in expected {
        match found.get(name) {
            None => diffs.push(format!("{name} missing")),
            Some(f) if f.rows != e.rows => diffs.push(format!("{name} {} → {}", e.rows, f.rows)),
            Some(_) => {}
        }
    }
    for name in found.keys().filter(|n| !expected.contains_key(*n)) {
        diffs.push(format!("{name} unexpected"));
    }
    diffs
}

/// Writes verdicts back to the registry and the manifests.
pub fn record_results(session: &Session, results: &[Checked]) -> Result<()> {
    if results.is_empty() {
        return Ok(());
    }
    let dir = session.store.dir().to_path_buf();
    session.store.update(|reg| {
        for c in results.iter().filter(|c| c.verified) {
            if let Some(b) = reg.backups.iter_mut().find(|b| b.id == c.id) {
                b.status = c.status;
                b.verification = Some(c.verification.clone());
                // The manifest mirrors the entry; a missing file has no manifest to update.
                if c.status != Status::Missing {
                    let manifest = b.manifest_path(&dir);
                    if manifest.exists() {
                        let mut bytes = serde_json::to_vec_pretty(&*b).expect("records serialize");
                        bytes.push(b'\n');
                        crate::fsutil::write_atomic(&manifest, &bytes)?;
                    }
                }
            }
        }
        Ok(())
    })
}

/// SHA-256 of a backup's file, compared with the registry: the check before any restore.
pub fn checksum_ok(session: &Session, record: &BackupRecord) -> Result<()> {
    let path = record.path(session.store.dir());
    let file = File::open(&path).map_err(|e| {
        Error::verification(format!(
            "backup file {} cannot be opened",
            session.ctx.show(&path)
        ))
        .caused_by(e)
    })?;
    let (sha, _) = pipeline::hash_file(file).map_err(|e| {
        Error::verification(format!(
            "backup file {} cannot be read",
            session.ctx.show(&path)
        ))
        .caused_by(e)
    })?;
    if sha == record.sha256 {
        Ok(())
    } else {
        Err(Error::verification(format!(
            "backup {} failed its checksum: the file changed since it was written",
            record.id
        ))
        .with_hint("it was marked corrupt; restore another backup (see `faber-db list`)"))
    }
}
