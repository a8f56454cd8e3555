//! `faber-db restore ENV --from ID|latest`: checksum first, safety backup of the target, restore,
//! then row counts compared with the manifest.

use std::fs::File;
use std::path::Path;

use chrono::{DateTime, Utc};
use clap::Args;
use serde::Serialize;
use serde_json::json;

use crate::Report;
use crate::cmd::cli::{DryRun, Wait};
use crate::cmd::{self, verify};
use crate::config::Environment;
use crate::confirm::{self, Ask};
use crate::error::{Error, Kind, Result};
use crate::format::Format;
use crate::ids;
use crate::migrations::{MigrationState, describe};
use crate::ops::backup;
use crate::pipeline::{Compression, Decoder, VerifiedDecoder};
use crate::plan;
use crate::provider::method::{self, MethodChoice, RestoreMethod};
use crate::provider::{
    CommitFailed, CommitOptions, Committed, InPlace, Inspection, Provider, Source, Staged,
};
use crate::registry::{BackupRecord, Status};
use crate::session::Session;
use crate::ui::{self, To};

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Environment whose database is replaced [default: FABER_ENV, ENV_MODE or
    /// default_environment]
    pub env: Option<String>,

    /// Backup ID to restore, or `latest`: the newest valid backup of ENV that is not a
    /// pre-restore safety backup
    #[arg(long, value_name = "ID|latest", default_value = "latest")]
    pub from: String,

    /// Skip the safety backup of the current database (not recommended)
    #[arg(long)]
    pub no_safety_backup: bool,

    /// End other sessions connected to the target database instead of refusing (PostgreSQL)
    #[arg(long)]
    pub terminate_connections: bool,

    /// Restore in place: drop the database's own objects and load the backup into it (one
    /// transaction on PostgreSQL), instead of swapping in a checked scratch copy. Chosen
    /// automatically when the role may not create databases
    #[arg(long)]
    pub in_place: bool,

    /// Parallel restore jobs (PostgreSQL custom and directory backups; pg_restore --jobs)
    /// [default: one per core]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: Option<u32>,

    #[command(flatten)]
    pub wait: Wait,

    #[command(flatten)]
    pub dry_run: DryRun,
}

pub fn run(session: &Session, args: RestoreArgs) -> Result<Report> {
    let ui = &session.ctx.ui;
    let env = session.env(crate::cmd::cli::env_name(&args.env))?;
    let _lock = cmd::claim_env(session, env, "restore", "restore", args.dry_run, args.wait)?;
    let (record, chosen) = choose(session, env, &args.from)?;
    if record.environment != env.name {
        ui.warn(format!(
            "restoring a backup of `{}` into `{}`",
            record.environment, env.name
        ));
    }
    let (url, db) = session.provider(env)?;
    check_kind(env, db.as_ref(), &record)?;
    let safety_reason = (!args.no_safety_backup).then_some("pre-restore");
    let title = format!(
        "restore {} into {} ({})",
        ui.bold(&record.id),
        ui.bold(&env.name),
        url.redacted()
    );
    let plan = plan(
        session,
        env,
        db.as_ref(),
        &record,
        chosen,
        safety_reason,
        args.in_place,
    )?;
    // The same command again, as a hint names it: the backup by its ID (`latest` may be
    // another one by then), and the options that change what it does.
    let jobs = args.jobs.map(|j| j.to_string());
    let mut again = vec!["restore", env.name.as_str(), "--from", record.id.as_str()];
    if args.no_safety_backup {
        again.push("--no-safety-backup");
    }
    if args.in_place {
        again.push("--in-place");
    }
    if let Some(jobs) = &jobs {
        again.extend(["--jobs", jobs.as_str()]);
    }
    let (preflight, failure) = preflight(
        session,
        env,
        db.as_ref(),
        &record,
        &plan,
        args.terminate_connections,
        &again,
    )?;
    if args.dry_run.dry_run {
        print_plan(session, &title, &plan, To::Output);
        super::show::preflight(ui, &preflight);
        ui.line("Dry run: nothing was changed.");
        let mut report = Report::new()
            .with("dry_run", true)
            .with("backup", &record)
            .with("plan", &plan)
            .with("preflight", &preflight);
        // A dry run fails as the run would: a pipeline's dry run catches it.
        report.failure = failure;
        return Ok(report);
    }
    if let Some(failure) = failure {
        super::show::preflight(ui, &preflight);
        let mut report = Report::new()
            .with("backup", &record)
            .with("environment", &env.name)
            .with("preflight", &preflight)
            .with("restored", false);
        report.failure = Some(failure);
        return Ok(report);
    }
    ui.line(format!(
        "Restoring {} into {} ({})",
        ui.bold(&record.id),
        ui.bold(&env.name),
        url.redacted()
    ));
    super::show::preflight_passed(ui, &preflight);
    // What the answer replaces, and with what, is shown before the question.
    if confirm::will_ask(env, session.ctx.yes) {
        print_plan(session, &title, &plan, To::Prompt);
    }
    confirm::confirm(env, "restore", Ask::TypeName, session.ctx.yes)?;
    let restored = apply(
        session,
        env,
        db.as_ref(),
        &record,
        &Options {
            event: "restore",
            safety_reason,
            terminate_connections: args.terminate_connections,
            jobs: args.jobs,
            in_place: args.in_place,
            method: plan.choice(),
        },
    )
    .map_err(|e| busy_hint(session, e, &again))?;
    let mut report = Report::new()
        .with("backup", &record)
        .with("environment", &env.name)
        .with("method", restored.method.method)
        .with("method_why", &restored.method.why)
        .with("kept_tables", &restored.kept)
        .with("preflight", &preflight)
        .with("safety_backup", &restored.safety)
        .with("tables", &restored.inspection.tables)
        .with("migrations", &restored.inspection.migrations)
        .with("row_count_differences", &restored.diffs);
    report.failure = restored.failure(env);
    if let Some(s) = &restored.safety {
        ui.line(format!(
            "Undo with: faber-db restore {} --from {s}",
            env.name
        ));
    }
    Ok(report.with("restored", json!(true)))
}

/// What a restore or rollback will do and is expected to take, as `--dry-run` shows it.
#[derive(Debug, Serialize)]
pub struct Plan {
    pub backup: String,
    /// Why this backup was chosen.
    pub chosen: String,
    pub backup_environment: String,
    pub backup_taken_at: DateTime<Utc>,
    /// How old the backup is, in seconds.
    pub backup_age_secs: u64,
    /// The backup's stored size.
    pub backup_size_bytes: u64,
    pub backup_label: Option<String>,
    pub backup_reason: Option<String>,
    /// A safety backup faber-db took itself (pre-restore, pre-migration, pre-rollback).
    pub backup_automatic: bool,
    pub backup_migrations: Option<MigrationState>,
    /// The live database's migration state (none when it has no migration table or does not
    /// exist).
    pub live_migrations: Option<MigrationState>,
    /// The migrations the live database has and the backup lacks: what the restore undoes.
    pub undone: Vec<String>,
    /// The database replaced (or created, when it does not exist).
    pub database: String,
    pub database_exists: bool,
    /// How the database's content is replaced: `swap` or `in-place`; `null` when the role can
    /// use neither (the pre-flight's `privileges` check fails then).
    pub method: Option<RestoreMethod>,
    /// Why that method: asked for, or what the role may do; or why neither is possible.
    pub method_why: String,
    /// Why no method is possible, with the hint naming the grant: the `privileges` check's
    /// failure.
    #[serde(skip)]
    pub method_failure: Option<Error>,
    /// The safety backup taken before the database is replaced, if one is.
    pub safety_backup: Option<SafetyPlan>,
    /// The load of the backup itself.
    pub load: plan::Estimate,
    /// The whole run: safety backup and load.
    pub duration_ms: u64,
    /// Whether the environment's name is asked for before anything changes.
    pub confirmation: bool,
}

impl Plan {
    /// The restore method the plan chose, for the run to use as it is; `None` when none is
    /// possible.
    pub fn choice(&self) -> Option<MethodChoice> {
        self.method.map(|method| MethodChoice {
            method,
            why: self.method_why.clone(),
        })
    }
}

/// The safety backup a restore would take.
#[derive(Debug, Serialize)]
pub struct SafetyPlan {
    pub reason: &'static str,
    pub estimate: plan::Estimate,
    /// Where it goes, and the free space it asks for there before it starts (what the
    /// pre-flight checks).
    pub dir: std::path::PathBuf,
    pub space_needed_bytes: u64,
    /// Taken after the swap, of the data it sets aside (PostgreSQL, MySQL, restoring by swap);
    /// else before the database is touched.
    pub after_swap: bool,
}

/// The plan of restoring `record` into `env`'s database `db`, with a safety backup of reason
/// `safety` (if the database exists), in place if `in_place` (else by the method the role
/// allows). Reads the live database; changes nothing. Fails, as the restore would, when the
/// role can use no restore method.
pub fn plan(
    session: &Session,
    env: &Environment,
    db: &dyn Provider,
    record: &BackupRecord,
    chosen: String,
    safety: Option<&'static str>,
    in_place: bool,
) -> Result<Plan> {
    // A role that can use no method is the pre-flight's to report (a failed `privileges`
    // check): the plan is shown all the same.
    let (method, method_why, method_failure) = match choose_method(db, in_place) {
        Ok(c) => (Some(c.method), c.why, None),
        Err(e) if e.kind() == Kind::Tool => (None, e.message().to_string(), Some(e)),
        Err(e) => return Err(e),
    };
    let exists = db.exists()?;
    // A database that does not open (a damaged SQLite file) has no state to show: the
    // pre-flight says whether the restore can go ahead.
    let live = if exists {
        db.inspect(env.migrations_table.as_deref(), false)
            .ok()
            .and_then(|i| i.migrations)
    } else {
        None
    };
    let safety_backup = match safety {
        Some(reason) if exists => {
            let format = backup::resolve_format(None, env, db)?;
            let compression = backup::resolve_compression(None, format, env);
            let text = session.store.read_text()?;
            let history: Vec<plan::Sample> = session.store.entries_as(text.as_deref())?;
            let db_size = db.size_estimate()?;
            let estimate = plan::backup(&history, &env.name, format, compression, db_size);
            Some(SafetyPlan {
                reason,
                estimate,
                dir: session.store.dir().join(&env.name),
                space_needed_bytes: plan::space_needed(format, compression, db_size),
                after_swap: method == Some(RestoreMethod::Swap) && db.sets_replaced_aside(),
            })
        }
        _ => None,
    };
    let load = plan::restore(record, &session.store.history(&env.name));
    let duration_ms =
        load.duration_ms + safety_backup.as_ref().map_or(0, |s| s.estimate.duration_ms);
    Ok(Plan {
        backup: record.id.clone(),
        chosen,
        backup_environment: record.environment.clone(),
        backup_taken_at: record.timestamp,
        backup_age_secs: (session.ctx.now - record.timestamp)
            .num_seconds()
            .max(0)
            .unsigned_abs(),
        backup_size_bytes: record.size_bytes,
        backup_label: record.label.clone(),
        backup_reason: record.reason.clone(),
        backup_automatic: record.is_automatic(),
        backup_migrations: record.migrations.clone(),
        undone: crate::migrations::undone(live.as_ref(), record.migrations.as_ref()),
        live_migrations: live,
        database: db.database_name(),
        database_exists: exists,
        method,
        method_why,
        method_failure,
        safety_backup,
        load,
        duration_ms,
        confirmation: env.protected && !session.ctx.yes,
    })
}

/// The pre-flight of restoring `record` into `env`'s database `db` as `plan` says, ending other
/// sessions at the swap when `terminate`; and its failure, if any, with a hint that names the
/// command that works. `again` is the command run (its arguments, without
/// `--terminate-connections`), as a hint repeats it.
pub fn preflight(
    session: &Session,
    env: &Environment,
    db: &dyn Provider,
    record: &BackupRecord,
    plan: &Plan,
    terminate: bool,
    again: &[&str],
) -> Result<(crate::preflight::Preflight, Option<Error>)> {
    use crate::preflight::{Needs, Sessions, Writes};
    let safety = plan.safety_backup.as_ref();
    let needs = Needs {
        migrate_command: None,
        // A file database has no privileges to speak of.
        method: (db.kind() != crate::provider::ProviderKind::Sqlite).then(|| {
            match (&plan.method_failure, plan.method) {
                (Some(e), _) => Err(e.clone()),
                (None, Some(m)) => Ok(format!("{}: {}", m.as_str(), plan.method_why)),
                (None, None) => Ok(plan.method_why.clone()),
            }
        }),
        backs_up: safety.is_some(),
        restore_tools: true,
        writes: safety
            .map(|s| Writes {
                what: format!("the {} safety backup", s.reason),
                dir: s.dir.clone(),
                bytes: s.space_needed_bytes,
            })
            .into_iter()
            .collect(),
        staging: Some(record.raw_size_bytes),
        sessions: if terminate {
            Sessions::End {
                because: "--terminate-connections".into(),
            }
        } else {
            Sessions::Refuse
        },
    };
    let mut preflight = crate::preflight::run(db, needs)?;
    let failure = preflight.take_failure().map(|(check, e)| match check {
        // The database to save does not open: as the safety backup would have failed.
        "connection" => {
            let mut err = Error::new(
                e.kind(),
                format!(
                    "the safety backup failed its pre-flight, so nothing was restored: {}",
                    e.message()
                ),
            );
            for c in e.causes() {
                err = err.caused_by(c);
            }
            err.with_hint(if again.first() == Some(&"restore") {
                "fix the cause, or pass --no-safety-backup if the current data may be lost"
            } else {
                "fix the cause: the database must open for its safety backup"
            })
        }
        "sessions" => {
            let mut with_end = again.to_vec();
            with_end.push("--terminate-connections");
            e.with_hint(format!(
                "end them and go ahead with `{}` — or stop the application and run this again",
                cmd::command_line(session, &with_end)
            ))
        }
        "space" => e.with_hint(format!(
            "free some space there, or remove expired backups with `{}`{}",
            cmd::command_line(session, &["cleanup", &env.name, "--expired"]),
            if again.first() == Some(&"restore") && safety.is_some() {
                "; --no-safety-backup skips the safety backup if the current data may be lost"
            } else {
                ""
            }
        )),
        _ => e,
    });
    Ok((preflight, failure))
}

/// `e`, when other sessions stopped the restore at its swap (they connected after the
/// pre-flight), with a hint naming the command that ends them: `again` and
/// `--terminate-connections`.
pub fn busy_hint(session: &Session, e: Error, again: &[&str]) -> Error {
    if e.kind() != Kind::Busy || !e.message().contains("connected to") {
        return e;
    }
    let mut with_end = again.to_vec();
    with_end.push("--terminate-connections");
    let hint = format!(
        "end them and restore with `{}` — or stop the application and run this again",
        cmd::command_line(session, &with_end)
    );
    // What the restore itself added (where the safety backup is) stays.
    let kept: Vec<String> = crate::hints::text(&e)
        .map(|h| {
            h.lines()
                .filter(|l| l.contains("safety backup"))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let hint = std::iter::once(hint)
        .chain(kept)
        .collect::<Vec<_>>()
        .join("\n");
    e.with_hint(hint)
}

/// Prints a restore's or rollback's plan under `Plan: {title}`, where `to` says: with the
/// output (a dry run), or before the confirmation prompt.
pub fn print_plan(session: &Session, title: &str, plan: &Plan, to: To) {
    let ui = &session.ctx.ui;
    ui.say(to, format!("Plan: {title}"));
    let mut about = vec![
        ui::size(plan.backup_size_bytes),
        format!(
            "taken {} ({} old)",
            plan.backup_taken_at.format("%Y-%m-%d %H:%M UTC"),
            ui::age(plan.backup_age_secs)
        ),
    ];
    if let Some(label) = &plan.backup_label {
        about.push(format!("label {label}"));
    }
    if let Some(reason) = &plan.backup_reason {
        about.push(format!(
            "reason {reason}{}",
            if plan.backup_automatic {
                " (automatic)"
            } else {
                ""
            }
        ));
    }
    ui.say(
        to,
        format!(
            "  {} {} of `{}`, {} ({})",
            ui.bold("Backup:    "),
            plan.backup,
            plan.backup_environment,
            about.join(", "),
            plan.chosen
        ),
    );
    ui.say(
        to,
        format!(
            "  {} backup: {}; now: {}",
            ui.bold("Migrations:"),
            describe(plan.backup_migrations.as_ref()),
            if plan.database_exists {
                describe(plan.live_migrations.as_ref())
            } else {
                "the database does not exist".to_string()
            }
        ),
    );
    if !plan.undone.is_empty() {
        ui.say(
            to,
            format!("  {} {}", ui.bold("Undoes:    "), plan.undone.join(", ")),
        );
    }
    ui.say(
        to,
        format!(
            "  {} {}",
            ui.bold("Replaces:  "),
            if plan.database_exists {
                format!(
                    "everything in database {} now, with the backup's data",
                    plan.database
                )
            } else {
                format!(
                    "nothing: database {} is created from the backup",
                    plan.database
                )
            }
        ),
    );
    ui.say(
        to,
        format!(
            "  {} {}: {}",
            ui.bold("Method:    "),
            plan.method.map_or("none possible", RestoreMethod::as_str),
            plan.method_why
        ),
    );
    let safety = match &plan.safety_backup {
        Some(s) => format!(
            "a {} backup {}: about {} in about {} ({})",
            s.reason,
            if s.after_swap {
                "of the data the swap sets aside, where no session reaches it"
            } else {
                "first"
            },
            ui::size(s.estimate.size_bytes),
            ui::duration_ms(s.estimate.duration_ms),
            s.estimate.describe()
        ),
        None if !plan.database_exists => "none: there is no database to save".to_string(),
        None => "none (--no-safety-backup)".to_string(),
    };
    ui.say(to, format!("  {} {safety}", ui.bold("Safety:    ")));
    ui.say(
        to,
        format!(
            "  {} about {} to load ({}); about {} in all",
            ui.bold("Estimate:  "),
            ui::duration_ms(plan.load.duration_ms),
            plan.load.describe(),
            ui::duration_ms(plan.duration_ms)
        ),
    );
    ui.say(
        to,
        format!(
            "  {} {}",
            ui.bold("Confirm:   "),
            if plan.confirmation {
                "yes: the environment is protected; its name is asked for".to_string()
            } else {
                "no".to_string()
            }
        ),
    );
}

/// The audit event written just before a restore or rollback changes the database.
pub fn commit_event(event: &'static str) -> &'static str {
    match event {
        "rollback" => "rollback-started",
        _ => "restore-started",
    }
}

/// Fails unless `record` was taken from the same kind of database as `env`'s.
pub fn check_kind(env: &Environment, db: &dyn Provider, record: &BackupRecord) -> Result<()> {
    if db.kind() == record.provider {
        return Ok(());
    }
    Err(Error::config(format!(
        "backup {} is a {} backup; environment `{}` is a {} database",
        record.id,
        record.provider.as_str(),
        env.name,
        db.kind().as_str()
    ))
    .with_hint(format!(
        "restore a backup taken from a {} database (see `faber-db list`)",
        db.kind().as_str()
    )))
}

/// How [`apply`] goes about a restore.
pub struct Options {
    /// The audit event: `restore`, `rollback`.
    pub event: &'static str,
    /// The reason of the safety backup to take first, or `None` for none.
    pub safety_reason: Option<&'static str>,
    pub terminate_connections: bool,
    /// Parallel restore jobs; `None` for one per core where the format allows.
    pub jobs: Option<u32>,
    /// Restore in place even when a swap is possible (`--in-place`).
    pub in_place: bool,
    /// The method the plan chose, when there was a plan: not read from the server again.
    pub method: Option<MethodChoice>,
}

/// What a restore did.
pub struct Restored {
    /// The safety backup taken of what was replaced.
    pub safety: Option<String>,
    /// The database as it is now.
    pub inspection: Inspection,
    /// Row counts that differ from the backup's manifest.
    pub diffs: Vec<String>,
    /// The backup was marked `mismatch` and named all the same: its counts were known to differ.
    pub mismatch_known: bool,
    /// How the database's content was replaced.
    pub method: MethodChoice,
    /// Tables of other roles an in-place restore kept (not the backup's, not compared).
    pub kept: Vec<String>,
}

impl Restored {
    /// The failure to report when the restored data differs from the manifest (unless the
    /// backup was known to, and named anyway).
    pub fn failure(&self, env: &Environment) -> Option<Error> {
        if self.diffs.is_empty() || self.mismatch_known {
            return None;
        }
        Some(
            Error::verification(format!(
                "the restored database differs from the manifest: {}",
                self.diffs.join(", ")
            ))
            .with_hint(match &self.safety {
                Some(s) => format!(
                    "the data was replaced; check it, and undo with `faber-db restore {} --from {s}`",
                    env.name
                ),
                None => "the data was replaced; check it before relying on it".to_string(),
            }),
        )
    }
}

/// Restores `record` into `env`'s database: checksum, stage and check, safety backup, commit,
/// then the row counts compared with the manifest. Confirmation is the caller's.
pub fn apply(
    session: &Session,
    env: &Environment,
    db: &dyn Provider,
    record: &BackupRecord,
    options: &Options,
) -> Result<Restored> {
    let _signals = crate::interrupt::guard();
    let committing = std::cell::Cell::new(false);
    apply_inner(session, env, db, record, options, &committing).map_err(|e| {
        if crate::interrupt::happened() && !committing.get() {
            Error::aborted(format!(
                "interrupted: the {} was stopped before it changed the database",
                options.event
            ))
            .caused_by(e.one_line())
            .with_hint("run it again when ready")
        } else {
            e
        }
    })
}

#[expect(clippy::too_many_lines, reason = "issue 19: to split along its steps")]
fn apply_inner(
    session: &Session,
    env: &Environment,
    db: &dyn Provider,
    record: &BackupRecord,
    options: &Options,
    committing: &std::cell::Cell<bool>,
) -> Result<Restored> {
    let ui = &session.ctx.ui;
    let started = std::time::Instant::now();
    let failed = |e: &Error| {
        cmd::log_event(
            session,
            options.event,
            Some(&env.name),
            Some(&record.id),
            false,
            Some(e.one_line()),
        );
    };
    // The method first, once: a role that can use none is told so before anything happens.
    let choice = match &options.method {
        Some(chosen) => chosen.clone(),
        None => choose_method(db, options.in_place).inspect_err(failed)?,
    };
    ui.detail(format!(
        "Method: {} ({})",
        choice.method.as_str(),
        choice.why
    ));
    // Checksum, then stage and check: the safety backup is taken only when the restore is ready
    // to commit, and a restore that cannot happen changes nothing at all.
    // Gone because a cleanup or delete removed it since it was chosen: said so.
    let removed = || {
        Error::config(format!(
            "{} was removed by another run (a cleanup or delete) after it was chosen; nothing was restored",
            record.id
        ))
        .with_hint("pick another backup (see `faber-db list`)")
    };
    let (staged, _held) = (|| {
        crate::offsite::fetch_if_missing(session, record).map_err(|e| {
            if verify::removed_meanwhile(session, &record.id) {
                removed()
            } else {
                e
            }
        })?;
        // Held from its checksum to the end of the restore: a cleanup or delete meanwhile
        // leaves it alone.
        let located = session.store.locate(record)?;
        let mut held = crate::removal::hold(&located.data)?;
        if let Err((e, status)) = verify::checksum_ok(session, record) {
            // A local copy that rotted is replaced by the off-site one, checked the same way.
            let replaced = status == Some(Status::Corrupt)
                && crate::offsite::refetch_damaged(session, record, &e).inspect_err(|_| {
                    mark(session, &record.id, Status::Corrupt);
                })?;
            if !replaced {
                if status == Some(Status::Missing) && verify::removed_meanwhile(session, &record.id)
                {
                    return Err(removed());
                }
                if let Some(status) = status {
                    mark(session, &record.id, status);
                }
                return Err(e);
            }
            // The fetched copy took the damaged file's place: it is the one to hold now.
            held = crate::removal::hold(&located.data)?;
            verify::checksum_ok(session, record).map_err(|(e, _)| e)?;
        }
        ui.ok(format!("Checksum of {} verified", record.id));
        if choice.method == RestoreMethod::InPlace {
            return Ok((None, held));
        }
        Ok((Some(stage(session, env, record, db, options.jobs)?), held))
    })()
    .inspect_err(failed)?;
    let Some(staged) = staged else {
        return in_place(
            session, env, db, record, options, choice, started, committing,
        );
    };
    ui.ok(format!("Staged and checked {}", record.id));
    // Where the swap sets the replaced data aside (PostgreSQL, MySQL), the safety backup is taken
    // of that, after the swap: no write made before it can be missing from it. What it needs is
    // checked now — connection, tools, keys, room — so that it fails for no reason known in
    // advance. Elsewhere (SQLite) it is taken now, before the database is touched.
    let after_swap = match options.safety_reason {
        Some(reason) if db.sets_replaced_aside() && db.exists()? => {
            backup::check_automatic(session, env, reason).map_err(|e| {
                e.add_hint(
                    "nothing was restored: the safety backup taken after the swap could not be",
                )
            })?;
            true
        }
        _ => false,
    };
    let safety_started = std::time::Instant::now();
    let safety = if after_swap {
        None
    } else {
        safety_backup(session, env, db, options.safety_reason)?
    };
    let safety_took = safety_started.elapsed();
    // The last moment to stop without changing anything: a signal during the safety backup
    // stops the restore here, even if the backup itself finished.
    crate::interrupt::check().map_err(|e| Error::aborted("interrupted").caused_by(e))?;
    committing.set(true);
    // Said before the database is touched: a run killed from here on leaves this as the last
    // word of the environment's history, and `status` reports the restore as interrupted.
    let detail = match (&safety, after_swap) {
        (Some(s), _) => Some(format!("safety backup {s}")),
        (None, true) => Some(REPLACED_SET_ASIDE.to_string()),
        (None, false) => None,
    };
    cmd::log_event(
        session,
        commit_event(options.event),
        Some(&env.name),
        Some(&record.id),
        true,
        detail,
    );
    crate::testpoint::pause("restore:before-commit");
    // A signal from here on is noted and waits: the database is never left half-changed.
    let held = crate::interrupt::hold();
    let result = staged.commit(&CommitOptions {
        terminate_connections: options.terminate_connections,
    });
    drop(held);
    // A commit that failed after it began to change the database (MySQL's, making views,
    // triggers, routines and events again after its tables moved) left it incomplete: said so,
    // `status` keeps reporting it until a restore succeeds.
    // The restore's own time, without the safety backup's: what later plans estimate from.
    let timing = result.is_ok().then(|| crate::registry::Timing {
        duration_ms: crate::human::millis(started.elapsed().saturating_sub(safety_took)),
        bytes: record.raw_size_bytes,
    });
    let log = |ok: bool, detail: Option<String>| {
        cmd::log_timed_event(
            session,
            options.event,
            Some(&env.name),
            Some(&record.id),
            ok,
            detail,
            if ok { timing } else { None },
        );
    };
    let committed = match result {
        Ok(c) => c,
        Err(f) => {
            log(
                false,
                Some(if f.incomplete {
                    format!("incomplete: {}", f.error.one_line())
                } else {
                    f.error.one_line()
                }),
            );
            return Err(match &safety {
                Some(s) => f.error.add_hint(format!(
                    "safety backup {s} holds the database as it was before this {}",
                    options.event
                )),
                None => f.error,
            });
        }
    };
    let inspection = committed.inspection;
    // The outcome is logged once the data the swap set aside is safe: until then, `status`
    // says where it is.
    let safety = match committed.replaced {
        Some(replaced) => match safety_of_replaced(session, env, options, replaced) {
            Ok(s) => s,
            Err(e) => {
                log(true, Some(e.one_line()));
                return Err(e);
            }
        },
        None => safety,
    };
    log(true, None);
    Ok(finish(session, record, inspection, safety, choice))
}

/// The restored database compared with the backup's manifest, and said.
fn finish(
    session: &Session,
    record: &BackupRecord,
    inspection: Inspection,
    safety: Option<String>,
    method: MethodChoice,
) -> Restored {
    let ui = &session.ctx.ui;
    let diffs = verify::compare_tables(record.provider, &record.tables, &inspection.tables);
    let mismatch_known = record.status == Status::Mismatch;
    let rows: u64 = inspection.tables.values().map(|t| t.rows).sum();
    let estimated = inspection
        .tables
        .iter()
        .filter(|(name, t)| t.estimated || record.tables.get(*name).is_some_and(|e| e.estimated))
        .count();
    if diffs.is_empty() {
        let unchecked = if estimated > 0 {
            format!(" ({estimated} large tables have estimated counts, not compared)")
        } else {
            String::new()
        };
        ui.ok(format!(
            "Restored {}, {}; row counts match the manifest{unchecked}",
            ui::count(inspection.tables.len() as u64, "table"),
            ui::count(rows, "row")
        ));
    } else if mismatch_known {
        // Not a failure: this is the data the deep check loaded, and it was asked for by name.
        ui.warn(format!(
            "restored {} tables, {rows} rows; as the deep check found, row counts differ from the manifest: {}",
            inspection.tables.len(),
            diffs.join(", ")
        ));
    }
    if let Some(m) = &inspection.migrations {
        ui.line(format!(
            "Migrations: {} applied, last {}",
            m.applied_count,
            m.last_migration.as_deref().unwrap_or("-")
        ));
    }
    Restored {
        safety,
        inspection,
        diffs,
        mismatch_known,
        method,
        kept: Vec::new(),
    }
}

/// The restore method for `db`: what its role allows, or in place when `in_place`.
fn choose_method(db: &dyn Provider, in_place: bool) -> Result<MethodChoice> {
    method::choose(&db.restore_privileges()?, in_place)
}

/// The in-place method (see [`crate::provider::method`]): the safety backup first, then the
/// database's own objects replaced by the backup's. On PostgreSQL that is one transaction, and a
/// failure changes nothing; elsewhere a failure midway restores the safety backup the same way.
#[allow(clippy::too_many_arguments)]
fn in_place(
    session: &Session,
    env: &Environment,
    db: &dyn Provider,
    record: &BackupRecord,
    options: &Options,
    choice: MethodChoice,
    started: std::time::Instant,
    committing: &std::cell::Cell<bool>,
) -> Result<Restored> {
    let ui = &session.ctx.ui;
    let log = |ok: bool, detail: Option<String>, timing: Option<crate::registry::Timing>| {
        cmd::log_timed_event(
            session,
            options.event,
            Some(&env.name),
            Some(&record.id),
            ok,
            detail,
            timing,
        );
    };
    for stale in db
        .prepare_restore(record.raw_size_bytes)
        .inspect_err(|e| log(false, Some(e.one_line()), None))?
    {
        ui.warn(format!(
            "removed {}, left by an interrupted restore",
            session.ctx.show(&stale)
        ));
    }
    // Nothing is set aside in place: the safety backup is of the database as it is now, before
    // anything changes. Other sessions go first (or stop the restore, before any backup): a
    // write made after the backup began and before the load would be in neither.
    crate::testpoint::pause("restore:in-place-before-safety");
    db.clear_sessions(options.terminate_connections)
        .inspect_err(|e| log(false, Some(e.one_line()), None))?;
    let safety_started = std::time::Instant::now();
    let safety = safety_backup(session, env, db, options.safety_reason)?;
    let safety_took = safety_started.elapsed();
    crate::interrupt::check().map_err(|e| Error::aborted("interrupted").caused_by(e))?;
    let atomic = db.in_place_is_atomic();
    // A load in one transaction changes nothing until it commits: a signal before then stops
    // it with the database as it was. Elsewhere the database changes from the first drop on.
    if !atomic {
        committing.set(true);
    }
    cmd::log_event(
        session,
        commit_event(options.event),
        Some(&env.name),
        Some(&record.id),
        true,
        Some(match &safety {
            Some(s) => format!("in place; safety backup {s}"),
            None => "in place".to_string(),
        }),
    );
    crate::testpoint::pause("restore:before-commit");
    let expected = (record.status != Status::Mismatch).then_some(&record.tables);
    let held = (!atomic).then(crate::interrupt::hold);
    let result = load_in_place(session, env, record, db, options, expected);
    drop(held);
    let committed = match result {
        Ok(c) => c,
        Err(f) => {
            // Left incomplete (MySQL's load failed midway with nothing put back): the error and
            // the history say so — `status` reports it until a restore succeeds.
            let (error, incomplete) = match (&safety, f.incomplete) {
                (Some(s), true) => put_back_safety(session, env, db, options, s, f.error),
                (Some(s), false) => (
                    f.error.add_hint(format!(
                        "safety backup {s} holds the database as it was before this {}",
                        options.event
                    )),
                    false,
                ),
                (None, true) => (
                    f.error.add_hint(format!(
                        "no safety backup was taken, so the database stays incomplete until a restore \
                         finishes: once the cause is fixed, `faber-db restore {} --from {} --in-place`, \
                         or restore another backup the same way",
                        env.name, record.id
                    )),
                    true,
                ),
                (None, false) => (f.error, false),
            };
            let detail = if incomplete {
                format!("incomplete: {}", error.one_line())
            } else {
                error.one_line()
            };
            log(false, Some(detail), None);
            return Err(error);
        }
    };
    log(
        true,
        Some("in place".to_string()),
        Some(crate::registry::Timing {
            duration_ms: crate::human::millis(started.elapsed().saturating_sub(safety_took)),
            bytes: record.raw_size_bytes,
        }),
    );
    ui.ok(format!("Restored {} in place", record.id));
    if !committed.kept.is_empty() {
        ui.warn(format!(
            "kept {} of other roles, which the backup does not hold and an in-place restore does not drop: {}",
            ui::count(committed.kept.len() as u64, "table"),
            committed.kept.join(", ")
        ));
    }
    let mut restored = finish(session, record, committed.inspection, safety, choice);
    restored.kept = committed.kept;
    Ok(restored)
}

/// After an in-place restore failed midway (`error`), restores the safety backup `safety` in
/// place; returns the error to report, saying how that went, and whether the database is still
/// incomplete (the safety backup could not be put back either).
fn put_back_safety(
    session: &Session,
    env: &Environment,
    db: &dyn Provider,
    options: &Options,
    safety: &str,
    error: Error,
) -> (Error, bool) {
    let ui = &session.ctx.ui;
    ui.warn(format!(
        "the {} failed midway ({}); restoring safety backup {safety} in place",
        options.event,
        error.one_line()
    ));
    let put_back = session.store.load().and_then(|reg| {
        let record = verify::find(&reg, safety)?.clone();
        load_in_place(session, env, &record, db, options, None).map_err(|f| f.error)
    });
    let with_causes = |message: String| {
        error
            .causes()
            .iter()
            .fold(Error::new(error.kind(), message), |e, c| e.caused_by(c))
    };
    match put_back {
        Ok(_) => {
            ui.ok(format!(
                "Safety backup {safety} restored: the database is as it was"
            ));
            let error = with_causes(format!(
                "{}; safety backup {safety} was restored in place, so the database is as it was before this {}",
                error.message(),
                options.event
            ))
            .with_hints(error.hints())
            .or_hint("fix the cause and restore again");
            (error, false)
        }
        Err(again) => {
            let error = with_causes(error.message().to_string())
                .caused_by(format!(
                    "restoring safety backup {safety} failed too: {}",
                    again.one_line()
                ))
                .with_hint(format!(
                    "the database is incomplete; restore it with `faber-db restore {} --from {safety} --in-place --no-safety-backup`",
                    env.name
                ));
            (error, true)
        }
    }
}

/// Loads `record` into `db` in place, from its file as checked (decoded and decrypted as it
/// streams, its SHA-256 checked once more).
fn load_in_place(
    session: &Session,
    env: &Environment,
    record: &BackupRecord,
    db: &dyn Provider,
    options: &Options,
    expected: Option<&crate::provider::Tables>,
) -> Result<Committed, CommitFailed> {
    let path = session.store.locate(record)?.data;
    let how = InPlace {
        terminate_connections: options.terminate_connections,
        expected,
    };
    let migrations_table = env.migrations_table.as_deref();
    if record.format == Format::Directory {
        return db.restore_in_place(record.format, Source::Path(&path), migrations_table, &how);
    }
    let decryption = crate::crypt::Decryption::of(&session.config, &session.vars, record)?;
    let mut decoder = open_verified(&path, record, decryption.as_ref())?;
    let bar = session.events().bar(record.raw_size_bytes, "restore");
    let mut source = crate::progress::Reader::new(&mut decoder, bar.as_ref());
    let result = db.restore_in_place(
        record.format,
        Source::Stream(&mut source),
        migrations_table,
        &how,
    );
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    result
}

/// The backup named by `from`: an ID, or `latest` for the newest valid backup of `env`; and why
/// it was chosen, as the plan says it.
fn choose(session: &Session, env: &Environment, from: &str) -> Result<(BackupRecord, String)> {
    let reg = session.store.load()?;
    let (record, chosen) = if from == "latest" {
        let record = reg.newest_restorable(&env.name).cloned().ok_or_else(|| {
            Error::config(format!(
                "environment `{}` has no valid backup to restore",
                env.name
            ))
            .with_hint(format!(
                "take one with `faber-db backup {}`, or name another with --from ID",
                env.name
            ))
        })?;
        let why = format!(
            "--from latest: the newest restorable backup of `{}` not taken by a restore or rollback",
            env.name
        );
        (record, why)
    } else {
        ids::validate_id(from)?;
        (
            verify::find(&reg, from)?.clone(),
            "named with --from".to_string(),
        )
    };
    // A backup found corrupt here that has an off-site copy is restored from that copy (see
    // apply), when named: `latest` never picks it.
    let from_off_site =
        record.status == Status::Corrupt && record.remote.as_ref().is_some_and(|r| r.is_uploaded());
    match record.status {
        _ if record.is_restorable() || from_off_site => Ok((record, chosen)),
        // Never picked by `latest`: named, it is restored with a warning.
        Status::Mismatch => {
            warn_mismatch(session, &record);
            Ok((record, chosen))
        }
        s => Err(Error::verification(format!(
            "backup {} is marked {}; it will not be restored",
            record.id,
            s.as_str()
        ))
        .with_hint("check it with `faber-db verify` or pick another backup")),
    }
}

/// Says that `record`, a `mismatch` backup being restored because it was named, may not hold what
/// its manifest says.
pub fn warn_mismatch(session: &Session, record: &BackupRecord) {
    session.ctx.ui.warn(format!(
        "backup {} is marked mismatch: a deep check found that its row counts differ from its manifest \
         (the checksum holds); restoring it because it was named — check the data afterwards",
        record.id
    ));
}

/// What the audit log says of a restore whose safety backup comes after the swap, when the swap
/// begins (and `status` repeats if the run is killed).
pub const REPLACED_SET_ASIDE: &str =
    "the data it replaces is set aside at the swap for its safety backup (see `faber-db doctor`)";

/// Takes the safety backup of the data the swap set aside, then drops that data; with
/// `--no-safety-backup`, just drops it. A safety backup that fails leaves the data where it is,
/// and the error says where.
fn safety_of_replaced(
    session: &Session,
    env: &Environment,
    options: &Options,
    replaced: Box<dyn crate::provider::Replaced>,
) -> Result<Option<String>> {
    let ui = &session.ctx.ui;
    let Some(reason) = options.safety_reason else {
        if let Err(e) = replaced.discard() {
            ui.warn(e.one_line());
        }
        return Ok(None);
    };
    let where_ = replaced.describe();
    let record = backup::take_replaced(session, env, reason, replaced.as_ref()).map_err(|e| {
        let mut err = Error::new(
            e.kind(),
            format!(
                "the {} is in place, but the safety backup of the data it replaced failed: {}",
                options.event,
                e.message()
            ),
        );
        for c in e.causes() {
            err = err.caused_by(c);
        }
        err.with_hint(format!(
            "that data is kept in {where_}: back it up by hand (or drop it once it is not needed); \
             `faber-db doctor` lists it"
        ))
    })?;
    let dropped = replaced.discard();
    ui.ok(format!(
        "Safety backup {} holds the data as it was at the swap ({where_}, which no session could \
         reach{})",
        record.id,
        if dropped.is_ok() { ", now dropped" } else { "" }
    ));
    if let Err(e) = dropped {
        ui.warn(e.one_line());
    }
    Ok(Some(record.id))
}

/// Takes the safety backup (reason `reason`) of the current database. A database that does not
/// exist yet has nothing to save.
fn safety_backup(
    session: &Session,
    env: &Environment,
    db: &dyn Provider,
    reason: Option<&str>,
) -> Result<Option<String>> {
    let ui = &session.ctx.ui;
    let Some(reason) = reason else {
        ui.warn("no safety backup taken (--no-safety-backup)");
        return Ok(None);
    };
    if !db.exists()? {
        ui.warn(format!(
            "no safety backup: database {} does not exist yet",
            db.database_name()
        ));
        return Ok(None);
    }
    let record = backup::take_automatic(session, env, reason).map_err(|e| {
        let msg = format!(
            "the safety backup failed, so nothing was restored: {}",
            e.message()
        );
        let mut err = Error::new(e.kind(), msg);
        for c in e.causes() {
            err = err.caused_by(c);
        }
        err.with_hint("fix the cause, or pass --no-safety-backup if the current data may be lost")
    })?;
    Ok(Some(record.id))
}

/// Prepares the target, then decodes the backup into the provider's staging area, checking its
/// SHA-256 once more as it streams. A directory dump, and an uncompressed custom archive
/// restored with several jobs, are read by the restore tool from disk, as just checked.
fn stage<'a>(
    session: &Session,
    env: &Environment,
    record: &BackupRecord,
    db: &'a dyn Provider,
    jobs: Option<u32>,
) -> Result<Box<dyn Staged + 'a>> {
    for stale in db.prepare_restore(record.raw_size_bytes)? {
        session.ctx.ui.warn(format!(
            "removed {}, left by an interrupted restore",
            session.ctx.show(&stale)
        ));
    }
    let path = session.store.locate(record)?.data;
    let migrations_table = env.migrations_table.as_deref();
    let decryption = crate::crypt::Decryption::of(&session.config, &session.vars, record)?
        .map(std::sync::Arc::new);
    // pg_restore runs jobs in parallel only from a file it can seek in: a directory dump, or a
    // custom archive as it is or decoded to a work file first.
    let parallel = matches!(record.format, Format::Custom | Format::Directory);
    let explicit = jobs.is_some();
    let jobs = jobs.unwrap_or_else(default_jobs);
    let from_disk = record.format == Format::Directory
        || (parallel && record.compression == Compression::None && !record.encrypted && jobs > 1);
    if from_disk {
        let staged =
            db.stage_restore(record.format, Source::Path(&path), migrations_table, jobs)?;
        // The tool read the files after they were checked: check them again now that it is
        // done, so a backup changed or removed meanwhile is never put in place.
        verify::checksum_ok(session, record).map_err(|(e, _)| {
            e.add_hint("the backup changed while it was loaded; nothing was restored")
        })?;
        return Ok(staged);
    }
    if parallel && jobs > 1 {
        match decode_to_work_file(session, env, record, decryption.as_deref()) {
            Ok(decoded) => {
                return db.stage_restore(
                    record.format,
                    Source::Path(decoded.path()),
                    migrations_table,
                    jobs,
                );
            }
            // Jobs nobody asked for are not worth failing over: without room for the work
            // file, the archive loads in one stream.
            Err(e) if !explicit && e.kind() == Kind::DiskSpace => {
                session.ctx.ui.detail(format!(
                    "{}; loading the archive in one stream instead",
                    e.message()
                ));
            }
            Err(e) => return Err(e),
        }
    }
    if explicit && jobs > 1 {
        session.ctx.ui.warn(format!(
            "--jobs applies to custom and directory backups; loading this {} backup in one stream",
            record.format
        ));
    }
    let mut decoder = open_verified(&path, record, decryption.as_deref())?;
    let bar = session.events().bar(record.raw_size_bytes, "restore");
    let mut source = crate::progress::Reader::new(&mut decoder, bar.as_ref());
    let staged = db.stage_restore(
        record.format,
        Source::Stream(&mut source),
        migrations_table,
        jobs,
    );
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    staged
}

/// The decoded data of the backup file at `path`, whose end is reported only if the whole
/// file hashed to the recorded SHA-256.
fn open_verified(
    path: &Path,
    record: &BackupRecord,
    decryption: Option<&crate::crypt::Decryption>,
) -> Result<VerifiedDecoder> {
    let file =
        File::open(path).map_err(|e| Error::io(Kind::Verification, "cannot open", path, e))?;
    let decrypt = decryption.map(|d| d.decrypt());
    let decoder = Decoder::new(file, record.compression, decrypt.as_ref())
        .map_err(|e| Error::verification("cannot decode the backup").caused_by(e))?;
    Ok(VerifiedDecoder::new(decoder, &record.sha256))
}

/// Restore jobs when none are asked for: one per core.
pub fn default_jobs() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get().min(64)).unwrap_or(64))
}

/// Decodes a compressed custom archive into a locked work file beside the environment's
/// backups, so that pg_restore can run jobs in parallel from it. The stored file's SHA-256 is
/// checked as it is read: a file that changed fails before anything is loaded. The work file
/// is removed when the returned value is dropped (and by the next run's sweep if killed).
fn decode_to_work_file(
    session: &Session,
    env: &Environment,
    record: &BackupRecord,
    decryption: Option<&crate::crypt::Decryption>,
) -> Result<crate::fsutil::PartialFile> {
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
    let partial = crate::fsutil::PartialFile::create(&work)
        .map_err(|e| Error::io(Kind::Tool, "cannot create", &work, e))?;
    let mut decoder = open_verified(&session.store.locate(record)?.data, record, decryption)?;
    let bar = session.events().bar(record.raw_size_bytes, "decode");
    let mut source = crate::progress::Reader::new(&mut decoder, bar.as_ref());
    let mut out = std::io::BufWriter::with_capacity(crate::pipeline::BUF_SIZE, partial.file());
    let copied =
        crate::pipeline::copy(&mut source, &mut out).and_then(|_| std::io::Write::flush(&mut out));
    drop(out);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    copied.map_err(|e| {
        if e.kind() == std::io::ErrorKind::InvalidData {
            Error::verification(format!(
                "backup {} cannot be decoded or failed its checksum",
                record.id
            ))
            .caused_by(e)
            .with_hint("it changed since it was checked; nothing was restored")
        } else {
            Error::io(Kind::Tool, "cannot decode the backup into", &work, e)
        }
    })?;
    Ok(partial)
}

fn mark(session: &Session, id: &str, status: Status) {
    let result = session.store.update(|reg| {
        if let Some(b) = reg.backups.iter_mut().find(|b| b.id == id) {
            b.status = status;
        }
        Ok(())
    });
    if let Err(e) = result {
        session.ctx.ui.warn(format!(
            "could not mark {id} {}: {}",
            status.as_str(),
            e.one_line()
        ));
    }
}
