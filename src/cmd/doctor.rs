//! `faber-db doctor [--repair]`: checks what faber-db depends on — each environment's URL
//! variable, connection and tools, the backup directory's free space — and whether the registry
//! and the files agree. `--repair` rebuilds `backups.json` from the manifests beside the backups
//! (keeping a malformed one as `backups.json.corrupt-<time>`) and marks entries whose files are
//! gone as `missing`.

use clap::Args;
use serde::Serialize;

use crate::Report;
use crate::error::{Error, Kind, Result};
use crate::ops::doctor::{self, Finding, Level};
use crate::session::Session;
use crate::ui::Ui;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Rebuild the registry from the manifests and mark entries whose files are gone as missing
    #[arg(long)]
    pub repair: bool,
}

pub fn run(session: &Session, ui: &Ui, args: DoctorArgs) -> Result<Report> {
    let exam = doctor::examine(session, args.repair, &mut |f| {
        let line = format!("{}: {}", f.check, detail(f));
        match f.level {
            Level::Ok => ui.ok(line),
            Level::Warning => ui.warn(line),
            Level::Problem => ui.fail(line),
        }
    })?;
    let mut report = Report::new()
        .with(
            "findings",
            exam.findings.iter().map(Shown::of).collect::<Vec<_>>(),
        )
        .with("repaired", exam.repaired);
    if exam.problems_left > 0 {
        report.failure = Some(
            Error::new(
                Kind::Verification,
                format!(
                    "doctor found {}{}",
                    crate::ui::count(exam.problems_left as u64, "problem"),
                    if exam.repaired {
                        " the repair does not fix"
                    } else {
                        ""
                    }
                ),
            )
            .with_hint(if exam.fixable > 0 && !exam.repaired {
                "`faber-db doctor --repair` rebuilds the registry from the manifests; the other problems are in the messages above"
            } else {
                "see the messages above"
            }),
        );
    }
    Ok(report)
}

/// A finding as shown: what was found, then what to do about it.
#[derive(Serialize)]
struct Shown<'a> {
    level: Level,
    check: &'a str,
    detail: String,
}

impl Shown<'_> {
    fn of(f: &Finding) -> Shown<'_> {
        Shown {
            level: f.level,
            check: &f.check,
            detail: detail(f),
        }
    }
}

/// A finding's detail, with what to do about it after a `; `.
fn detail(f: &Finding) -> String {
    match &f.remedy {
        Some(remedy) => format!("{}; {}", f.detail, crate::hints::words(remedy)),
        None => f.detail.clone(),
    }
}
