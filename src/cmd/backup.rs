//! `faber-db backup ENV`: dump, compress and checksum in one pass, check the file, register it.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use serde::Serialize;

use crate::Report;
use crate::cmd::{self, list};
use crate::config::Environment;
use crate::confirm::{self, Ask};
use crate::crypt;
use crate::dirdump::{self, FileDigest};
use crate::error::{Error, Kind, Result};
use crate::format::Format;
use crate::fsutil::{self, PartialDir, PartialFile};
use crate::ids;
use crate::pipeline::{self, Compression, Counted, Decoder};
use crate::plan;
use crate::progress;
use crate::provider::{self, DumpTo, Provider, ProviderKind, Source};
use crate::registry::{self, BackupRecord, Remote, Status, Verification};
use crate::removal;
use crate::retention::Retention;
use crate::session::Session;
use crate::ui;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Environment to back up (dev, staging, production, …) [default: FABER_ENV, ENV_MODE or
    /// default_environment]
    pub env: Option<String>,

    /// Label appended to the backup ID ([A-Za-z0-9._-], at most 64 characters)
    #[arg(long)]
    pub label: Option<String>,

    /// Why the backup was taken, recorded in the registry (same characters as a label)
    #[arg(long)]
    pub reason: Option<String>,

    /// How long to keep this backup (30d, 12h, 2weeks, 90 = days, or "forever"); default: the
    /// environment's
    #[arg(long, value_name = "DUR")]
    pub retention: Option<Retention>,

    /// Dump format of server databases: sql | custom | directory (PostgreSQL). SQLite backups
    /// are always database images; leave it out for SQLite
    #[arg(long, value_name = "F")]
    pub format: Option<Format>,

    /// Compression: none | gzip | zstd (of the stream; of each file for directory dumps)
    #[arg(long, value_name = "C")]
    pub compression: Option<Compression>,

    /// Parallel dump jobs (PostgreSQL directory format; ignored elsewhere)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: Option<u32>,

    /// Put this backup's files in DIR instead of the configured backup directory (created 0700
    /// if absent); the registry records where they are
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    /// List the environment's backups instead (same as `faber-db list ENV`)
    #[arg(long)]
    pub list: bool,

    /// The command this backup is taken before, recorded in its entry: the Claude Code hook's
    /// pre-migration backups
    #[arg(long, value_name = "CMD", hide = true)]
    pub before_command: Option<String>,

    #[command(flatten)]
    pub dry_run: crate::cmd::cli::DryRun,
}

/// What to back up and how, after validation.
#[derive(Debug, Clone)]
pub struct Request {
    pub label: Option<String>,
    pub reason: Option<String>,
    pub retention: Retention,
    pub format: Option<Format>,
    /// Compression; `None` picks the environment's for SQL dumps, none for custom archives
    /// (pg_dump compresses them itself) and gzip for the files of directory dumps.
    pub compression: Option<Compression>,
    /// Parallel dump jobs of directory dumps.
    pub jobs: Option<u32>,
    /// Where the files go instead of the environment's directory (absolute).
    pub output_dir: Option<PathBuf>,
    /// The command the backup is taken before (the hook's pre-migration backups).
    pub command: Option<String>,
}

impl Request {
    /// A backup taken by faber-db itself before a risky step: labelled and reasoned alike.
    pub fn automatic(env: &Environment, reason: &str) -> Request {
        Request {
            label: Some(reason.to_string()),
            reason: Some(reason.to_string()),
            retention: env.retention,
            format: None,
            compression: None,
            jobs: None,
            output_dir: None,
            command: None,
        }
    }
}

pub fn run(session: &Session, args: BackupArgs) -> Result<Report> {
    let ui = &session.ctx.ui;
    if args.list {
        return list::run(
            session,
            list::ListArgs {
                env: args.env,
                env_option: None,
                all: false,
                remote: false,
            },
        );
    }
    for (what, value) in [("label", &args.label), ("reason", &args.reason)] {
        if let Some(v) = value {
            ids::validate_label(what, v)?;
        }
    }
    let env = session.env(crate::cmd::cli::env_name(&args.env))?;
    let output_dir = match args.output_dir.as_deref() {
        Some(d) => output_dir(session, env, d)?,
        None => None,
    };
    let request = Request {
        label: args.label,
        reason: args.reason,
        retention: args.retention.unwrap_or(env.retention),
        format: args.format,
        compression: args.compression,
        jobs: args.jobs,
        output_dir,
        command: args.before_command,
    };
    if args.dry_run.dry_run {
        let prepared = prepare(session, env, &request)?;
        print_plan(session, &prepared.plan);
        ui.line("Dry run: nothing was written.");
        let mut report = Report::new()
            .with("dry_run", true)
            .with("plan", &prepared.plan);
        report.failure = prepared.plan.space_shortfall();
        return Ok(report);
    }
    // Without a terminal to ask on, a protected backup stops before it connects.
    confirm::can_ask(env, "backup", session.ctx.yes)?;
    let prepared = logged(session, env, || prepare_to_write(session, env, &request))?;
    if prepared.plan.confirmation {
        print_plan(session, &prepared.plan);
    }
    confirm::confirm(env, "backup", Ask::YesNo, session.ctx.yes)?;
    let estimate = prepared.plan.estimate.clone();
    let mut record = write(session, env, &request, prepared)?;
    let copied = if env.offsite {
        cmd::remote::after_backup(session, &mut record)
    } else {
        Ok(())
    };
    print_summary(session, &record, &estimate);
    session.ctx.ui.quiet_result(&record.id);
    // The backup is registered either way: the report names it, and the failure sets the exit.
    let mut report = Report::new()
        .with("backup", &record)
        .with("estimate", &estimate);
    report.failure = copied.err();
    Ok(report)
}

/// `--output-dir DIR` as an absolute path (a relative one is taken from the current directory);
/// `None` when it is the environment's own directory (through a link or `..` as well). Inside
/// the backup directory, only that one is accepted: the others belong to the registry and the
/// other environments.
fn output_dir(session: &Session, env: &Environment, dir: &Path) -> Result<Option<PathBuf>> {
    let abs = std::path::absolute(dir).map_err(|e| {
        Error::config(format!("--output-dir {} cannot be resolved", dir.display())).caused_by(e)
    })?;
    if abs.exists() && !abs.is_dir() {
        return Err(
            Error::config(format!("--output-dir {} is not a directory", abs.display()))
                .with_hint("name a directory (it is created if absent)"),
        );
    }
    // Compared as they are on disk, so that `..` and links do not hide it.
    let store = fsutil::resolved(session.store.dir());
    let within = fsutil::resolved(&abs);
    if within.to_str().is_none() {
        return Err(Error::config(format!(
            "--output-dir {} is not UTF-8, which the registry cannot record",
            abs.display()
        ))
        .with_hint("name a directory whose path is UTF-8"));
    }
    if within == store.join(&env.name) {
        // The environment's own directory, however it was spelled: a backup like any other.
        return Ok(None);
    }
    if within.starts_with(&store) {
        return Err(Error::config(format!(
            "--output-dir {} is inside the backup directory",
            abs.display()
        ))
        .with_hint(format!(
            "leave --output-dir out to use {}, or name a directory outside it",
            session.ctx.show(&session.store.dir().join(&env.name))
        )));
    }
    Ok(Some(abs))
}

/// A backup faber-db takes before a risky step (a restore's safety backup, a pre-migration
/// backup). It is not copied off-site here: an upload would hold the restore or the release for
/// as long as it takes, and the local copy is what the step needs. `faber-db push` copies it.
pub fn take_automatic(session: &Session, env: &Environment, reason: &str) -> Result<BackupRecord> {
    let record = take(session, env, &Request::automatic(env, reason))?;
    if env.offsite {
        session.ctx.ui.detail(format!(
            "{} stays local until `faber-db push` copies it off-site",
            record.id
        ));
    }
    Ok(record)
}

/// Takes one backup of `env` and registers it. Used by `backup` and by the safety backups of
/// `restore`. On failure nothing is registered and no partial file stays behind.
pub fn take(session: &Session, env: &Environment, request: &Request) -> Result<BackupRecord> {
    let prepared = logged(session, env, || prepare_to_write(session, env, request))?;
    write(session, env, request, prepared)
}

/// Checks that a safety backup of `env` (reason `reason`) could be taken now — connection,
/// tools, keys, free space — without taking it: for a restore that takes it after its swap.
pub fn check_automatic(session: &Session, env: &Environment, reason: &str) -> Result<()> {
    prepare_to_write(session, env, &Request::automatic(env, reason)).map(|_| ())
}

/// The safety backup (reason `reason`) of the data a restore of `env` set aside at its swap:
/// taken from `replaced`, and recorded as a backup of `env`'s database as it was just before.
pub fn take_replaced(
    session: &Session,
    env: &Environment,
    reason: &str,
    replaced: &dyn crate::provider::Replaced,
) -> Result<BackupRecord> {
    let request = Request::automatic(env, reason);
    let prepared = logged(session, env, || {
        fits(prepare_from(
            session,
            env,
            &request,
            replaced.provider(),
            format!("{} (set aside at the swap)", replaced.describe()),
        )?)
    })?;
    write(session, env, &request, prepared)
}

/// Runs `step` of a backup of `env`: a failure is said as an interruption when Ctrl-C caused
/// it, and written to the audit log.
fn logged<T>(session: &Session, env: &Environment, step: impl FnOnce() -> Result<T>) -> Result<T> {
    let _signals = crate::interrupt::guard();
    let result = step().map_err(interrupted);
    if let Err(e) = &result {
        cmd::log_event(
            session,
            "backup",
            Some(&env.name),
            None,
            false,
            Some(e.one_line()),
        );
    }
    result
}

/// A backup checked and planned, ready to write: nothing is written yet.
pub struct Prepared {
    db: Box<dyn Provider>,
    format: Format,
    compression: Compression,
    recipients: Option<crypt::Recipients>,
    server_version: String,
    db_size: u64,
    /// What the dump is expected to stream: the progress bar's total.
    dump_bytes: u64,
    /// Where the files go.
    dir: PathBuf,
    pub plan: Plan,
    /// How long the checks took: part of the backup's duration.
    took: std::time::Duration,
}

/// What a backup will do and is expected to cost, as `backup --dry-run` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub environment: String,
    pub database: String,
    pub provider: ProviderKind,
    pub server_version: String,
    /// The dump tool and its version (SQLite: built in).
    pub tools: Option<String>,
    pub format: Format,
    pub compression: Compression,
    pub encrypted: bool,
    pub offsite: bool,
    pub steps: Vec<&'static str>,
    pub database_size_bytes: u64,
    pub estimate: plan::Estimate,
    /// The directory the backup's files go to.
    pub destination: PathBuf,
    pub free_bytes: u64,
    pub space_needed_bytes: u64,
    pub enough_space: bool,
    /// Whether the backup asks before it starts (a protected environment without --yes).
    pub confirmation: bool,
}

impl Plan {
    /// The failure a dry run reports when the backup would not fit (exit 2).
    fn space_shortfall(&self) -> Option<Error> {
        (!self.enough_space).then(|| {
            Error::new(
                Kind::DiskSpace,
                format!(
                    "not enough free space in {} for the backup: {} free, about {} needed",
                    self.destination.display(),
                    ui::size(self.free_bytes),
                    ui::size(self.space_needed_bytes)
                ),
            )
            .with_hint("free some space, or remove old backups with `faber-db cleanup --expired`")
        })
    }
}

/// [`prepare`], failing (exit 2) when the destination has too little room: before anything is
/// asked or written.
fn prepare_to_write(session: &Session, env: &Environment, request: &Request) -> Result<Prepared> {
    fits(prepare(session, env, request)?)
}

/// A prepared backup, unless the destination has too little room for it (exit 2).
fn fits(prepared: Prepared) -> Result<Prepared> {
    match prepared.plan.space_shortfall() {
        Some(e) => Err(e),
        None => Ok(prepared),
    }
}

/// Everything a backup checks before it writes: the format, the encryption keys, the connection
/// and the tools, the database's size and the free space; and the plan made of them. Changes
/// nothing on disk.
fn prepare(session: &Session, env: &Environment, request: &Request) -> Result<Prepared> {
    let (url, db) = session.provider(env)?;
    prepare_from(session, env, request, db, url.redacted())
}

/// [`prepare`] of a backup of `env` taken from `db` (shown as `shown`): the environment's own
/// database, or the data a restore set aside (see [`take_replaced`]).
fn prepare_from(
    session: &Session,
    env: &Environment,
    request: &Request,
    db: Box<dyn Provider>,
    shown: String,
) -> Result<Prepared> {
    let started = Instant::now();
    let ui = &session.ctx.ui;
    let format = resolve_format(request.format, env, db.as_ref())?;
    // Encryption that is asked for must be usable before anything is dumped: never plaintext.
    let recipients = crypt::recipients(&session.config, env)?;
    if recipients.is_some() && format == Format::Directory {
        return Err(Error::config(format!(
            "environment `{}` is encrypted, and directory dumps are not encrypted yet",
            env.name
        ))
        .with_hint("use --format sql or --format custom for this environment's backups"));
    }
    let server_version = db.check_connection()?;
    ui.ok(format!("Connected to {shown} ({server_version})"));
    let tools = db.tools_report()?;

    let compression = resolve_compression(request.compression, format, env);
    let db_size = db.size_estimate()?;
    let needed = plan::space_needed(format, compression, db_size);
    let dir = match &request.output_dir {
        Some(d) => d.clone(),
        None => session.store.dir().join(&env.name),
    };
    // The directory may not exist yet: its nearest existing parent has the same free space.
    let free = dir
        .ancestors()
        .find(|d| d.is_dir())
        .map(fs4::available_space)
        .transpose()
        .map_err(|e| Error::io(Kind::Config, "cannot read free space of", &dir, e))?
        .unwrap_or(0);
    let text = session.store.read_text()?;
    let history: Vec<plan::Sample> = session.store.entries_as(text.as_deref())?;
    let estimate = plan::backup(&history, &env.name, format, compression, db_size);
    let dump_bytes = plan::dump_bytes(&history, &env.name, format, db_size);
    let mut steps = vec!["validate connection"];
    if tools.is_some() {
        steps.push("check tools");
    }
    steps.extend(["estimate", "dump"]);
    if compression != Compression::None {
        steps.push("compress");
    }
    if recipients.is_some() {
        steps.push("encrypt");
    }
    steps.extend(["checksum", "verify", "register"]);
    if env.offsite {
        steps.push("upload off-site");
    }
    let plan = Plan {
        environment: env.name.clone(),
        database: db.database_name(),
        provider: db.kind(),
        server_version: server_version.clone(),
        tools,
        format,
        compression,
        encrypted: recipients.is_some(),
        offsite: env.offsite,
        steps,
        database_size_bytes: db_size,
        estimate,
        destination: dir.clone(),
        free_bytes: free,
        space_needed_bytes: needed,
        enough_space: free >= needed,
        confirmation: env.protected && !session.ctx.yes,
    };
    Ok(Prepared {
        db,
        format,
        compression,
        recipients,
        server_version,
        db_size,
        dump_bytes,
        dir,
        plan,
        took: started.elapsed(),
    })
}

/// What an automatic backup of `env`'s database `db` (a safety backup, a pre-migration one) is
/// expected to take, in the environment's own format and compression: from its earlier backups,
/// else from defaults. Reads the database's size; changes nothing.
pub fn estimate(session: &Session, env: &Environment, db: &dyn Provider) -> Result<plan::Estimate> {
    let format = resolve_format(None, env, db)?;
    let compression = resolve_compression(None, format, env);
    let text = session.store.read_text()?;
    let history: Vec<plan::Sample> = session.store.entries_as(text.as_deref())?;
    Ok(plan::backup(
        &history,
        &env.name,
        format,
        compression,
        db.size_estimate()?,
    ))
}

/// The format of a backup of `db`: the one asked for if `db` has it, else the environment's,
/// else the database's first.
pub fn resolve_format(
    asked: Option<Format>,
    env: &Environment,
    db: &dyn Provider,
) -> Result<Format> {
    match asked {
        Some(f) if db.formats().contains(&f) => Ok(f),
        Some(_) if db.kind() == ProviderKind::Sqlite => Err(Error::config(
            "SQLite backups are database images made with SQLite's online backup API",
        )
        .with_hint("--format applies to PostgreSQL and MySQL; leave it out for SQLite")),
        Some(f) => Err(Error::config(format!(
            "format `{f}` is not available for {} databases",
            db.kind().as_str()
        ))
        .with_hint(format!(
            "available: {}",
            db.formats()
                .iter()
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        None if db.formats().contains(&env.format) => Ok(env.format),
        None => Ok(db.formats()[0]),
    }
}

/// The compression of a backup in `format`: the one asked for, else the environment's for SQL
/// dumps and images. A custom archive is written by pg_dump uncompressed and compressed by
/// faber-db's stream: zstd on both cores instead of pg_dump's single-threaded zlib, three times
/// faster. A directory dump's files are gzipped, as pg_restore reads them.
pub fn resolve_compression(
    asked: Option<Compression>,
    format: Format,
    env: &Environment,
) -> Compression {
    asked.unwrap_or(match format {
        Format::Custom => Compression::Zstd,
        Format::Directory => Compression::Gzip,
        _ => env.compression,
    })
}

/// Prints a backup's plan.
fn print_plan(session: &Session, plan: &Plan) {
    let ui = &session.ctx.ui;
    ui.line(format!(
        "Plan: back up {} of {}",
        ui.bold(&plan.database),
        ui.bold(&plan.environment)
    ));
    ui.line(format!(
        "  {} {}",
        ui.bold("Steps:     "),
        plan.steps.join(" → ")
    ));
    let what = match plan.compression {
        Compression::None => plan.format.to_string(),
        c => format!("{}, {c}", plan.format),
    };
    ui.line(format!(
        "  {} {} now; {what}{}",
        ui.bold("Database:  "),
        ui::size(plan.database_size_bytes),
        if plan.encrypted { ", encrypted" } else { "" }
    ));
    ui.line(format!(
        "  {} about {} in about {} ({})",
        ui.bold("Estimate:  "),
        ui::size(plan.estimate.size_bytes),
        ui::duration_ms(plan.estimate.duration_ms),
        plan.estimate.describe()
    ));
    ui.line(format!(
        "  {} {} ({} free, about {} needed{})",
        ui.bold("Location:  "),
        session.ctx.show(&plan.destination),
        ui::size(plan.free_bytes),
        ui::size(plan.space_needed_bytes),
        if plan.enough_space {
            ""
        } else {
            ": not enough"
        }
    ));
    if let Some(tools) = &plan.tools {
        ui.line(format!("  {} {tools}", ui.bold("Tools:     ")));
    }
    ui.line(format!(
        "  {} {}",
        ui.bold("Confirm:   "),
        if plan.confirmation {
            format!("yes: `{}` is protected", plan.environment)
        } else {
            "no".to_string()
        }
    ));
}

/// Writes the backup `prepared` planned and registers it; the outcome goes to the audit log.
fn write(
    session: &Session,
    env: &Environment,
    request: &Request,
    prepared: Prepared,
) -> Result<BackupRecord> {
    let ui = &session.ctx.ui;
    let result = logged(session, env, || {
        write_inner(session, env, request, prepared)
    });
    if let Ok(r) = &result {
        cmd::log_event(
            session,
            "backup",
            Some(&env.name),
            Some(&r.id),
            true,
            request.reason.clone(),
        );
        ui.ok(format!("Registered {}", ui.bold(&r.id)));
    }
    result
}

fn write_inner(
    session: &Session,
    env: &Environment,
    request: &Request,
    prepared: Prepared,
) -> Result<BackupRecord> {
    let ui = &session.ctx.ui;
    let now = session.ctx.now;
    let started = Instant::now();
    let Prepared {
        db,
        format,
        compression,
        mut recipients,
        server_version,
        db_size: estimate,
        dump_bytes,
        dir: env_dir,
        took,
        ..
    } = prepared;
    // The file is also encrypted to a key of this run only, forgotten when it ends: with it the
    // read-back can decrypt what was stored and check it as verify would, though only public
    // keys are configured.
    let check_key: Vec<Box<dyn age::Identity + Send + Sync>> = match &mut recipients {
        Some(r) => {
            let key = age::x25519::Identity::generate();
            r.push(Box::new(key.to_public()));
            vec![Box::new(key)]
        }
        None => Vec::new(),
    };
    if request.jobs.is_some() && format != Format::Directory {
        ui.warn("--jobs applies to directory dumps only; ignored");
    }
    fsutil::create_private_dir(&env_dir)?;
    // Recorded as the directory is, not as it was spelled (`..`, symbolic links).
    let env_dir = if request.output_dir.is_some() {
        env_dir
            .canonicalize()
            .map_err(|e| Error::io(Kind::Config, "cannot resolve", &env_dir, e))?
    } else {
        env_dir
    };
    let needed = plan::space_needed(format, compression, estimate);
    fsutil::ensure_free_space(
        &env_dir,
        needed,
        "for the backup",
        "free some space, or remove old backups with `faber-db cleanup --expired`",
    )?;
    ui.detail(format!(
        "database size {}, free space checked (about {} needed)",
        ui::size(estimate),
        ui::size(needed)
    ));

    // A directory dump's files carry their own compression suffixes.
    let suffix = match format {
        Format::Directory => format.extension().to_string(),
        _ => format!(
            "{}{}{}",
            format.extension(),
            compression.extension(),
            if recipients.is_some() { ".age" } else { "" }
        ),
    };

    // Reserve the ID under the registry lock: the `.partial` file claims it. IDs are unique
    // across environments, so a file of any environment with this ID makes it taken.
    let (id, file, final_path, partial, _claim) = {
        let _lock = session.store.lock()?;
        // Made now, while there is room: a removal on a full disk needs them there.
        let _ = removal::prepare(&session.store);
        let text = session.store.read_text()?;
        // A backup being removed keeps its ID until it is gone everywhere.
        let mut registered: HashSet<Cow<'_, str>> =
            session.store.ids(text.as_deref())?.into_iter().collect();
        registered.extend(
            removal::tombstoned(&session.store)
                .into_iter()
                .map(Cow::Owned),
        );
        let mut names = session.store.file_names();
        if request.output_dir.is_some() {
            names.extend(fsutil::file_names(&env_dir));
        }
        let base = ids::base_id(now, request.label.as_deref());
        let id = ids::unique_id(&base, |id| {
            let prefix = format!("{id}.");
            registered.contains(id) || names.iter().any(|n| n.starts_with(&prefix))
        });
        // Writing elsewhere, the directory is recorded as this backup's before anything is
        // written there: the only way a directory outside the backup directory becomes one
        // faber-db may read and remove in.
        if request.output_dir.is_some() {
            session
                .store
                .remember_manifest(&env_dir.join(format!("{id}.manifest.json")))?;
        }
        // The entry's `file`, and the path it stands for, as every later command will find it.
        let file = match &request.output_dir {
            Some(_) => env_dir
                .join(format!("{id}{suffix}"))
                .to_string_lossy()
                .into_owned(),
            None => format!("{}/{id}{suffix}", env.name),
        };
        let final_path = session.store.locator().locate(&id, &env.name, &file)?.data;
        // Writing elsewhere, the run then claims the ID in the environment's directory, where
        // other runs look, and says where it writes, for the sweep if it is killed.
        let claim = match &request.output_dir {
            Some(_) => Some(claim(session, env, &id, &env_dir)?),
            None => None,
        };
        let partial = if format == Format::Directory {
            PartialDir::create(&final_path).map(Partial::Dir)
        } else {
            PartialFile::create(&final_path).map(Partial::File)
        }
        .map_err(|e| Error::io(Kind::Tool, "cannot create", &final_path, e))?;
        (id, file, final_path, partial, claim)
    };
    crate::testpoint::pause("backup:after-reserve");

    // The SQLite snapshot is the plain database: for an encrypted backup it is made in a private
    // directory away from the backups, with room checked there.
    let work_dir = if recipients.is_some() && db.kind() == ProviderKind::Sqlite {
        let dir = fsutil::private_temp_dir(session.store.dir())?;
        fsutil::ensure_free_space(
            &dir,
            estimate.saturating_add(1 << 20),
            "for the decrypted snapshot of an encrypted backup",
            "set TMPDIR to a directory with room (not the backup directory)",
        )?;
        dir
    } else {
        env_dir.clone()
    };
    let (dumped, stored) = match &partial {
        Partial::File(file) => {
            let bar = session.events().bar(dump_bytes, "dump");
            let label = format!("dump ({compression})");
            let dumped = db.dump(
                format,
                env.migrations_table.as_deref(),
                &work_dir,
                DumpTo::Stream(&mut |source| {
                    let mut source = progress::Reader::new(source, bar.as_ref())
                        .showing_stored(file.file(), &label);
                    pipeline::write_stream(
                        &mut source,
                        compression,
                        recipients.as_deref(),
                        file.file(),
                    )
                }),
            );
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            let dumped = dumped?;
            let written = dumped
                .written
                .clone()
                .ok_or_else(|| Error::tool("the dump produced no stream"))?;
            report_dumped(session, db.as_ref(), &written, compression);
            let decrypt = written
                .plaintext_sha256
                .as_deref()
                .map(|sha| pipeline::Decrypt {
                    identities: &check_key,
                    plaintext_sha256: Some(sha),
                });
            read_back(
                db.as_ref(),
                format,
                file,
                &written,
                compression,
                decrypt.as_ref(),
                &env_dir,
            )?;
            let stored = Stored {
                sha256: written.sha256,
                size_bytes: written.size_bytes,
                raw_bytes: written.raw_bytes,
                plaintext_sha256: written.plaintext_sha256,
                files: Vec::new(),
            };
            (dumped, stored)
        }
        Partial::Dir(dir) => {
            let content = dir.content();
            let dumped = db.dump(
                format,
                env.migrations_table.as_deref(),
                &env_dir,
                DumpTo::Directory {
                    path: &content,
                    jobs: request.jobs.unwrap_or(1),
                    compression,
                },
            )?;
            // The files are hashed as they lie on disk, then checked as verify checks them.
            let files = dirdump::digest_dir(&content).map_err(|e| {
                Error::verification("the dump directory cannot be read back").caused_by(e)
            })?;
            let size = dirdump::total_size(&files);
            ui.ok(format!(
                "Dumped {} ({} files, {}, {compression} per file)",
                db.database_name(),
                files.len(),
                ui::size(size)
            ));
            structure_ok(db.kind(), format, Source::Path(&content), &env_dir)?;
            let stored = Stored {
                sha256: dirdump::checksum(&files),
                size_bytes: size,
                raw_bytes: size,
                plaintext_sha256: None,
                files,
            };
            (dumped, stored)
        }
    };
    ui.ok(format!(
        "Verified SHA-256 {}…, integrity {}",
        &stored.sha256[..12],
        dumped.integrity_check
    ));

    let record = BackupRecord {
        id: id.clone(),
        environment: env.name.clone(),
        database: db.database_name(),
        provider: db.kind(),
        timestamp: now,
        label: request.label.clone(),
        reason: request.reason.clone(),
        command: request.command.clone(),
        file,
        size_bytes: stored.size_bytes,
        raw_size_bytes: stored.raw_bytes,
        format,
        compression,
        compressed: compression != Compression::None,
        encrypted: stored.plaintext_sha256.is_some(),
        sha256: stored.sha256,
        plaintext_sha256: stored.plaintext_sha256,
        files: stored.files,
        tool_version: dumped.tool_version.clone(),
        server_version: Some(server_version),
        database_size_bytes: Some(estimate),
        migrations: dumped.inspection.migrations.clone(),
        tables: dumped.inspection.tables.clone(),
        retention_days: request.retention.as_days(),
        expires_at: request.retention.expiry(now),
        status: Status::Valid,
        verification: Some(Verification {
            checksum_only: false,
            integrity_check: dumped.integrity_check.clone(),
            file_readable: true,
            verified_at: now,
            deep: false,
        }),
        host: cmd::host(),
        user: cmd::user(),
        git: cmd::git_state(&session.config.root),
        duration_ms: (took + started.elapsed()).as_millis() as u64,
        remote: None,
    };

    // Publish: manifest, registry entry, final name — under the lock, so a concurrent cleanup
    // never sees a file without its entry, and a crash leaves something the next run can finish
    // or remove (see Store::publish).
    crate::testpoint::pause("backup:before-publish");
    let manifest = registry::manifest_path_for(&final_path, &id);
    let manifest_bytes = record.manifest_bytes();
    let registering = Instant::now();
    let published = session.store.publish(
        &record,
        &manifest,
        &manifest_bytes,
        || {
            match partial {
                Partial::File(f) => f.persist(&final_path),
                Partial::Dir(d) => d.persist(&final_path),
            }
            .map_err(|e| Error::io(Kind::Tool, "cannot finish", &final_path, e))
        },
        || {
            // A move that happened and then failed to sync: the data is this run's (its ID is).
            let _ = fsutil::remove_backup_data(&final_path);
        },
    );
    published?;
    session.ctx.ui.detail(format!(
        "registered in {} ms (manifest, registry entry, final name)",
        registering.elapsed().as_millis()
    ));
    Ok(record)
}

/// The claim of backup `id` of `env` written into `dir` (see [`fsutil::CLAIM_SUFFIX`]): held until
/// the backup is registered or has failed.
fn claim(session: &Session, env: &Environment, id: &str, dir: &Path) -> Result<PartialFile> {
    let path = session
        .store
        .env_dir(&env.name)?
        .join(format!("{id}{}", fsutil::CLAIM_SUFFIX));
    let claim =
        PartialFile::create(&path).map_err(|e| Error::io(Kind::Tool, "cannot create", &path, e))?;
    let mut file = claim.file();
    std::io::Write::write_all(&mut file, dir.as_os_str().as_encoded_bytes())
        .and_then(|()| claim.file().sync_all())
        .map_err(|e| Error::io(Kind::Tool, "cannot write", &path, e))?;
    Ok(claim)
}

/// A failure caused by Ctrl-C or SIGTERM, said as such (exit 8).
pub fn interrupted(e: Error) -> Error {
    if !crate::interrupt::happened() {
        return e;
    }
    Error::aborted("interrupted: the backup was stopped; nothing was registered")
        .caused_by(e.one_line())
        .with_hint("its partial file was removed; run it again when ready")
}

/// Where a backup is written until it is complete.
enum Partial {
    File(PartialFile),
    Dir(PartialDir),
}

/// What was stored, as the registry records it.
struct Stored {
    sha256: String,
    size_bytes: u64,
    raw_bytes: u64,
    plaintext_sha256: Option<String>,
    /// The files of a directory dump (empty for a single file).
    files: Vec<FileDigest>,
}

fn report_dumped(
    session: &Session,
    db: &dyn Provider,
    written: &pipeline::Written,
    compression: Compression,
) {
    let ui = &session.ctx.ui;
    ui.ok(format!(
        "Dumped {} ({} → {} {})",
        db.database_name(),
        ui::size(written.raw_bytes),
        ui::size(written.size_bytes),
        compression
    ));
}

/// Fails unless a server database's dump passes the structure check `verify` uses.
fn structure_ok(
    kind: ProviderKind,
    format: Format,
    source: Source<'_>,
    work_dir: &std::path::Path,
) -> Result<()> {
    let structure = provider::check_structure(kind, format, source, work_dir, false)?;
    if structure.integrity_check != "ok" {
        return Err(Error::verification(format!(
            "the dump failed its structure check: {}",
            structure.integrity_check
        )));
    }
    Ok(())
}

/// Reads the stored bytes back: the file on disk must be what was hashed, must decode, and (for
/// server dumps) must pass the structure check verify uses. SQLite's image was already
/// integrity-checked as a snapshot.
fn read_back(
    db: &dyn Provider,
    format: Format,
    file: &PartialFile,
    written: &pipeline::Written,
    compression: Compression,
    decrypt: Option<&pipeline::Decrypt<'_>>,
    work_dir: &std::path::Path,
) -> Result<()> {
    let reread = File::open(file.path())
        .map_err(|e| Error::io(Kind::Tool, "cannot reopen", file.path(), e))?;
    let unreadable =
        |e: std::io::Error| Error::verification("the backup file cannot be read back").caused_by(e);
    let differs = || Error::verification("the backup file read back differs from what was written");
    if matches!(format, Format::Sql | Format::Sqlite) {
        // The stream was decoded as it was written (content checksum and length), and its
        // structure checked on the raw stream (the dump's trailer, SQLite's integrity check):
        // what is left is that the disk holds the bytes written. Hashing them is ~1 GB/s, where
        // decoding them all again cost a second per GB after the dump.
        let (sha, size) = pipeline::hash_file(reread).map_err(unreadable)?;
        if sha != written.sha256 || size != written.size_bytes {
            return Err(differs());
        }
        return Ok(());
    }
    let mut decoder = Decoder::new(reread, compression, decrypt).map_err(unreadable)?;
    let mut counted = Counted::new(&mut decoder);
    // Only archives get here (SQLite images and plain SQL returned above).
    structure_ok(db.kind(), format, Source::Stream(&mut counted), work_dir)?;
    pipeline::copy(&mut counted, &mut std::io::sink()).map_err(unreadable)?;
    let decoded = counted.count();
    let (sha, _) = decoder.finish().map_err(unreadable)?;
    if sha != written.sha256 || decoded != written.raw_bytes {
        return Err(differs());
    }
    Ok(())
}

fn print_summary(session: &Session, r: &BackupRecord, estimate: &plan::Estimate) {
    let ui = &session.ctx.ui;
    let path: PathBuf = session
        .store
        .locate(r)
        .map_or_else(|_| PathBuf::from(&r.file), |l| l.data);
    ui.line("");
    ui.line(format!("  {} {}", ui.bold("Backup:    "), r.id));
    let size = if r.files.is_empty() {
        format!(
            "{} ({} before compression)",
            ui::size(r.size_bytes),
            ui::size(r.raw_size_bytes)
        )
    } else {
        format!(
            "{} in {} files ({} per file)",
            ui::size(r.size_bytes),
            r.files.len(),
            r.compression
        )
    };
    ui.line(format!("  {} {size}", ui.bold("Size:      ")));
    ui.line(format!(
        "  {} {} in {}; estimated {} in {} ({})",
        ui.bold("Actual:    "),
        ui::size(r.size_bytes),
        ui::duration_ms(r.duration_ms),
        ui::size(estimate.size_bytes),
        ui::duration_ms(estimate.duration_ms),
        estimate.describe()
    ));
    ui.line(format!(
        "  {} {}",
        ui.bold("Location:  "),
        session.ctx.show(&path)
    ));
    let tables: u64 = r.tables.values().map(|t| t.rows).sum();
    let about = if r.tables.values().any(|t| t.estimated) {
        "about "
    } else {
        ""
    };
    ui.line(format!(
        "  {} {}, {about}{}",
        ui.bold("Contents:  "),
        ui::count(r.tables.len() as u64, "table"),
        ui::count(tables, "row")
    ));
    if let Some(m) = &r.migrations {
        ui.line(format!(
            "  {} {} applied ({}), last {}",
            ui.bold("Migrations:"),
            m.applied_count,
            m.tool,
            m.last_migration.as_deref().unwrap_or("-")
        ));
    }
    let expiry = r.expires_at.map_or_else(
        || "kept forever".to_string(),
        |t| format!("until {}", t.format("%Y-%m-%d %H:%M UTC")),
    );
    ui.line(format!("  {} {expiry}", ui.bold("Retention: ")));
    match &r.remote {
        Some(Remote::Uploaded { url, .. }) => {
            ui.line(format!("  {} {url}", ui.bold("Off-site:  ")))
        }
        Some(Remote::Failed { .. }) => {
            ui.line(format!("  {} upload failed", ui.bold("Off-site:  ")));
        }
        None => {}
    }
    ui.line("");
    ui.line(format!(
        "Restore with: faber-db restore {} --from {}",
        r.environment, r.id
    ));
}
