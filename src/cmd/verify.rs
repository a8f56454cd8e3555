//! `faber-db verify ID | --env ENV | --all [--deep]`: checksum and structure of each backup, in
//! one pass over its file; `--deep` also loads the data and compares row counts with the manifest.

use std::path::Path;

use clap::Args;

use crate::Report;
use crate::error::{Error, Kind, Result};
use crate::ops::verify::{Which, select};
use crate::registry::Status;
use crate::session::Session;
use crate::ui::{self, Ui};

pub use crate::ops::verify::is_path;
use crate::ops::verify::{Checked, Depth, check, record_results};

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

    /// A restore drill, for cron: load the backup a restore would pick now (`--from latest`) of
    /// the environment (or of each, with --all) into a scratch database, compare its row counts
    /// with the manifest, and record the result (`last_drill`; `status` shows its age)
    #[arg(long, conflicts_with_all = ["id", "checksum_only"])]
    pub drill: bool,

    /// Only recompute each file's SHA-256 and compare it with the registry (at disk speed; the
    /// structure is not checked)
    #[arg(long)]
    pub checksum_only: bool,
}

pub fn run(session: &Session, ui: &Ui, args: VerifyArgs) -> Result<Report> {
    let depth = if args.deep {
        Depth::Deep
    } else if args.checksum_only {
        Depth::Checksum
    } else {
        Depth::Structure
    };
    if args.drill {
        return drill(session, ui, args.env.as_deref());
    }
    if let Some(path) = args.id.as_deref().filter(|a| is_path(a)) {
        return run_path(session, ui, Path::new(path), depth);
    }
    let which = match (&args.id, &args.env) {
        (Some(id), _) => Which::Id(id),
        (None, Some(env)) => Which::Env(env),
        (None, None) => Which::All,
    };
    let selected = select(session, which)?;
    if selected.is_empty() {
        ui.line("No backups to verify.");
    }
    let mut results = Vec::new();
    for record in &selected {
        let checked = worded(check(session, record, depth));
        ui::verify::verdict(ui, record, depth, &checked);
        results.push(checked);
        crate::testpoint::pause("verify:after-one");
    }
    record_results(session, &results)?;
    Ok(verdicts(ui, results))
}

/// `verify --drill [--env ENV | --all]`: each environment's drill, said, notified and reported;
/// the run fails when any drill did.
fn drill(session: &Session, ui: &Ui, env: Option<&str>) -> Result<Report> {
    let envs: Vec<&crate::config::Environment> = match env {
        Some(name) => vec![session.env(name)?],
        None => session.config.environments.values().collect(),
    };
    let mut drills = Vec::new();
    for env in envs {
        let started = std::time::Instant::now();
        let mut drilled = crate::ops::verify::drill(session, env)?;
        if let Some(checked) = drilled.checked.take() {
            let checked = worded(checked);
            if let Some(record) = &drilled.backup {
                ui::verify::verdict(ui, record, Depth::Deep, &checked);
            }
        }
        ui::verify::drill(ui, &drilled);
        // Each environment's outcome goes to the targets that asked for it.
        let mut one = Report::new().with("drill", &drilled.drill);
        if let Some(b) = &drilled.backup {
            one = one.with("backup", b);
        }
        one.failure = drill_failure(&[&drilled]);
        crate::notify::after(
            session,
            "drill",
            Some(&env.name),
            &Ok(one),
            started.elapsed(),
        );
        drills.push(drilled);
    }
    let mut report = Report::new().with("drills", &drills);
    report.failure = drill_failure(&drills.iter().collect::<Vec<_>>());
    Ok(report)
}

/// The failure of the drills that failed, if any.
fn drill_failure(drills: &[&crate::ops::verify::Drilled]) -> Option<Error> {
    let failed: Vec<&&crate::ops::verify::Drilled> =
        drills.iter().filter(|d| !d.drill.ok).collect();
    let first = failed.first()?;
    let mut err = Error::verification(format!(
        "the restore drill of {} failed",
        failed
            .iter()
            .map(|d| format!("`{}`", d.environment))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    for d in &failed {
        err = err.caused_by(format!(
            "{}: {}",
            d.environment,
            d.drill.problem.as_deref().unwrap_or("failed")
        ));
    }
    Some(err.with_hint(if first.backup.is_some() {
        "the backup a restore would pick now cannot be restored as it is: take a fresh backup, and look into this one (`faber-db verify ID --deep`)".to_string()
    } else {
        format!("take a backup of it (`faber-db backup {}`)", first.environment)
    }))
}

/// The verdict with its remedy, if any, worded after the problem.
fn worded(mut checked: Checked) -> Checked {
    if let (Some(problem), Some(remedy)) = (&mut checked.problem, checked.remedy.take()) {
        *problem = format!("{problem}; {}", crate::hints::words(&remedy));
    }
    checked
}

/// The report of a verify run: the verdicts, and the failure when any backup failed or could
/// not be checked.
fn verdicts(ui: &Ui, results: Vec<Checked>) -> Report {
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

/// `verify PATH`: a backup file (or directory dump) checked against the manifest beside it, as
/// if registered there; nothing is recorded.
fn run_path(session: &Session, ui: &Ui, path: &Path, depth: Depth) -> Result<Report> {
    let (record, checked) = crate::ops::verify::by_path(session, path, depth)?;
    let checked = worded(checked);
    ui::verify::verdict(ui, &record, depth, &checked);
    let report = verdicts(ui, vec![checked]);
    Ok(report.with("path", record.file.as_str()))
}

/// What to do about backups whose row counts differ from their manifests.
const MISMATCH_HINT: &str = "a mismatch backup's data may not be what its manifest says: \
    `restore --from latest` passes it by and cleanup keeps it; restore it by ID only after \
    checking it, or delete it; `faber-db verify ID --deep` clears it once the counts agree";
