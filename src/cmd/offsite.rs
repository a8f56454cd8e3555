//! `faber-db push [ID | --env ENV]` (copy backups without an off-site copy) and `faber-db pull
//! [--env ENV] [--fetch]` (register backups known only off-site, and fetch their data): the
//! arguments, the request made of them, and what the off-site engine ([`crate::offsite`])
//! did, said.

use clap::Args;
use serde::Serialize;

use crate::Report;
use crate::error::{Error, Kind, Result};
use crate::offsite::{self, PushRequest};
use crate::ops::verify;
use crate::registry::{BackupRecord, OffsiteCopy};
use crate::session::Session;
use crate::ui::Ui;

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The backup to copy off-site (again, if it has a copy already)
    pub id: Option<String>,

    /// Every backup of this environment without an off-site copy (default: of every
    /// environment with `offsite` on)
    #[arg(long, value_name = "ENV", conflicts_with = "id")]
    pub env: Option<String>,
}

/// A pushed backup in `--json`.
#[derive(Debug, Serialize)]
struct Pushed<'a> {
    id: &'a str,
    environment: &'a str,
    #[serde(rename = "remote")]
    offsite: &'a OffsiteCopy,
}

/// `faber-db push`: one backup, or every valid one still without an off-site copy (never
/// uploaded, or its upload failed).
pub fn push(session: &Session, ui: &Ui, args: PushArgs) -> Result<Report> {
    let request = PushRequest {
        id: args.id,
        env: args.env,
    };
    let check = |b: &BackupRecord| verify::checksum_ok(session, b).map_err(|(e, _)| e);
    let outcome = offsite::push(session, &request, &check)?;
    if outcome.pushed.is_empty() && outcome.failed.is_empty() {
        // Without --env, only environments with `offsite` on are looked at: say so, or a
        // development environment's backups seem copied when they are not.
        ui.line(&match &request.env {
            Some(env) => {
                format!("Nothing to push: every valid backup of {env} has its off-site copy.")
            }
            None => {
                "Nothing to push: every valid backup of the environments with offsite on has its \
                     off-site copy (`faber-db push --env ENV` copies another environment's)."
                    .to_string()
            }
        });
        return Ok(Report::new().with("pushed", Vec::<Pushed>::new()));
    }
    let pushed: Vec<Pushed> = outcome
        .pushed
        .iter()
        .map(|p| Pushed {
            id: &p.id,
            environment: &p.environment,
            offsite: &p.offsite,
        })
        .collect();
    let failed: Vec<&str> = outcome.failed.iter().map(|f| f.id.as_str()).collect();
    let mut report = Report::new()
        .with("pushed", &pushed)
        .with("failed", &failed);
    if !failed.is_empty() {
        report.failure = Some(
            Error::new(
                Kind::Tool,
                format!(
                    "{} of {} uploads failed",
                    failed.len(),
                    failed.len() + pushed.len()
                ),
            )
            .with_hint(
                "the lines above say why: a backup whose file no longer matches its SHA-256 is not \
                 sent (`faber-db verify` marks it); the others can be pushed again when the \
                 storage is reachable",
            ),
        );
    }
    Ok(report)
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Only this environment's backups
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,

    /// Also download the data of every backup that is off-site but not here (checked against its
    /// SHA-256), instead of leaving it for the restore or verify that needs it
    #[arg(long)]
    pub fetch: bool,
}

/// `faber-db pull [--env ENV]`: registers the backups found off-site that the registry does not
/// know — after the local disk or the registry is lost — from the manifests stored beside their
/// data. Nothing is downloaded but the manifests: a backup's data is fetched, and checked, when a
/// restore or verify needs it (or now, with `--fetch`).
pub fn pull(session: &Session, ui: &Ui, args: PullArgs) -> Result<Report> {
    let outcome = offsite::pull(session, args.env.as_deref())?;
    let later = if args.fetch {
        ""
    } else {
        "; their data is fetched when a restore or verify needs it"
    };
    ui.line(format!(
        "{} backups registered from {}{later}",
        outcome.registered.len(),
        outcome.base_url
    ));
    let ids: Vec<&str> = outcome.registered.iter().map(|r| r.id.as_str()).collect();
    let mut report = Report::new()
        .with("registered", ids)
        .with("skipped", &outcome.skipped);
    if args.fetch {
        let (fetched, failure) = fetch_missing(ui, session, args.env.as_deref())?;
        report = report.with("fetched", fetched);
        report.failure = failure;
    }
    Ok(report)
}

/// `pull --fetch`: the data of every backup (of `env`) that has an off-site copy and is not
/// here, fetched; the first failure is the report's.
fn fetch_missing(
    ui: &Ui,
    session: &Session,
    env: Option<&str>,
) -> Result<(Vec<String>, Option<Error>)> {
    let outcome = offsite::fetch_missing(session, env)?;
    ui.line(format!(
        "{} backups fetched{}",
        outcome.fetched.len(),
        if outcome.failed.is_empty() {
            String::new()
        } else {
            format!(", {} failed", outcome.failed.len())
        }
    ));
    let failure = outcome.failed.into_iter().next().map(|first| {
        Error::new(
            first.kind(),
            format!("not every backup could be fetched: {}", first.message()),
        )
        .with_hint("the others are here; see the lines above, and `faber-db list`")
    });
    Ok((outcome.fetched, failure))
}
