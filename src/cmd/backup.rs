//! `faber-db backup ENV`: dump, compress and checksum in one pass, check the file, register it.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fs::File;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

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
use crate::progress;
use crate::provider::{self, DumpTo, Provider, ProviderKind, Source};
use crate::registry::{self, BackupRecord, Remote, Status, Verification};
use crate::retention::Retention;
use crate::session::Session;
use crate::ui;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Environment to back up (dev, staging, production, …)
    pub env: String,

    /// Label appended to the backup ID ([A-Za-z0-9._-], at most 64 characters)
    #[arg(long)]
    pub label: Option<String>,

    /// Why the backup was taken, recorded in the registry (same characters as a label)
    #[arg(long)]
    pub reason: Option<String>,

    /// How long to keep this backup (30d, 12h, 2weeks, or "forever"); default: the environment's
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

    /// List the environment's backups instead (same as `faber-db list ENV`)
    #[arg(long)]
    pub list: bool,
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
        }
    }
}

pub fn run(session: &Session, args: BackupArgs) -> Result<Report> {
    if args.list {
        return list::run(
            session,
            list::ListArgs {
                env: Some(args.env),
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
    let env = session.env(&args.env)?;
    let request = Request {
        label: args.label,
        reason: args.reason,
        retention: args.retention.unwrap_or(env.retention),
        format: args.format,
        compression: args.compression,
        jobs: args.jobs,
    };
    confirm::confirm(env, "backup", Ask::YesNo, session.ctx.yes)?;
    let mut record = take(session, env, &request)?;
    let copied = if env.offsite {
        cmd::remote::after_backup(session, &mut record)
    } else {
        Ok(())
    };
    print_summary(session, &record);
    // The backup is registered either way: the report names it, and the failure sets the exit.
    let mut report = Report::new().with("backup", &record);
    report.failure = copied.err();
    Ok(report)
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
    let ui = &session.ctx.ui;
    let started = Instant::now();
    let _signals = crate::interrupt::guard();
    let result = take_inner(session, env, request, started).map_err(interrupted);
    let (id, ok, detail) = match &result {
        Ok(r) => (Some(r.id.clone()), true, request.reason.clone()),
        Err(e) => (None, false, Some(e.one_line())),
    };
    cmd::log_event(
        session,
        "backup",
        Some(&env.name),
        id.as_deref(),
        ok,
        detail,
    );
    if let Ok(r) = &result {
        ui.ok(format!("Registered {}", ui.bold(&r.id)));
    }
    result
}

fn take_inner(
    session: &Session,
    env: &Environment,
    request: &Request,
    started: Instant,
) -> Result<BackupRecord> {
    let ui = &session.ctx.ui;
    let now = session.ctx.now;
    let (url, db) = session.provider(env)?;
    let format = match request.format {
        Some(f) if db.formats().contains(&f) => f,
        Some(_) if db.kind() == ProviderKind::Sqlite => {
            return Err(Error::config(
                "SQLite backups are database images made with SQLite's online backup API",
            )
            .with_hint("--format applies to PostgreSQL and MySQL; leave it out for SQLite"));
        }
        Some(f) => {
            return Err(Error::config(format!(
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
            )));
        }
        None if db.formats().contains(&env.format) => env.format,
        None => db.formats()[0],
    };
    // Encryption that is asked for must be usable before anything is dumped: never plaintext.
    let mut recipients = crypt::recipients(session, env)?;
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
    if recipients.is_some() && format == Format::Directory {
        return Err(Error::config(format!(
            "environment `{}` is encrypted, and directory dumps are not encrypted yet",
            env.name
        ))
        .with_hint("use --format sql or --format custom for this environment's backups"));
    }
    let server_version = db.check_connection()?;
    ui.ok(format!(
        "Connected to {} ({server_version})",
        url.redacted()
    ));

    if request.jobs.is_some() && format != Format::Directory {
        ui.warn("--jobs applies to directory dumps only; ignored");
    }
    // A custom archive is written by pg_dump uncompressed and compressed by faber-db's stream:
    // zstd on both cores instead of pg_dump's single-threaded zlib, three times faster.
    let compression = request.compression.unwrap_or(match format {
        Format::Custom => Compression::Zstd,
        Format::Directory => Compression::Gzip,
        _ => env.compression,
    });

    let env_dir = session.store.env_dir(&env.name)?;
    let estimate = db.size_estimate()?;
    let needed = space_needed(format, compression, estimate);
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
    let (id, partial) = {
        let _lock = session.store.lock()?;
        let text = session.store.read_text()?;
        let registered: HashSet<Cow<'_, str>> =
            session.store.ids(text.as_deref())?.into_iter().collect();
        let names = session.store.file_names();
        let base = ids::base_id(now, request.label.as_deref());
        let id = ids::unique_id(&base, |id| {
            let prefix = format!("{id}.");
            registered.contains(id) || names.iter().any(|n| n.starts_with(&prefix))
        });
        let final_path = env_dir.join(format!("{id}{suffix}"));
        let partial = if format == Format::Directory {
            PartialDir::create(&final_path).map(Partial::Dir)
        } else {
            PartialFile::create(&final_path).map(Partial::File)
        }
        .map_err(|e| Error::io(Kind::Tool, "cannot create", &final_path, e))?;
        (id, partial)
    };
    let final_path = env_dir.join(format!("{id}{suffix}"));
    crate::testpoint::pause("backup:after-reserve");

    let (dumped, stored) = match &partial {
        Partial::File(file) => {
            let bar = progress::bar(ui, estimate, "dump");
            let label = format!("dump ({compression})");
            let dumped = db.dump(
                format,
                env.migrations_table.as_deref(),
                &env_dir,
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

    let file = final_path
        .strip_prefix(session.store.dir())
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| final_path.to_string_lossy().into_owned());
    let record = BackupRecord {
        id: id.clone(),
        environment: env.name.clone(),
        database: db.database_name(),
        provider: db.kind(),
        timestamp: now,
        label: request.label.clone(),
        reason: request.reason.clone(),
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
        duration_ms: started.elapsed().as_millis() as u64,
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

/// The free space a backup of a database of `db_size` bytes is asked for before it starts: the
/// database's size times a factor of its format — 1 for an uncompressed dump (a dump leaves out
/// the indexes and free space the size includes, but text can outgrow binary data), ½ for a
/// compressed one, 2 for an SQLite image (the working snapshot plus the stored copy) — plus
/// 1 MiB. An estimate, not a promise: a dump that outgrows it fails cleanly when the disk fills.
pub fn space_needed(format: Format, compression: Compression, db_size: u64) -> u64 {
    let (num, den) = match (format, compression) {
        (Format::Sqlite, _) => (2, 1),
        (Format::Sql | Format::Directory | Format::Custom, Compression::None) => (1, 1),
        (Format::Sql | Format::Directory | Format::Custom, _) => (1, 2),
    };
    (db_size / den).saturating_mul(num).saturating_add(1 << 20)
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

fn print_summary(session: &Session, r: &BackupRecord) {
    let ui = &session.ctx.ui;
    let path: PathBuf = r.path(session.store.dir());
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
        "  {} {} tables, {about}{} rows",
        ui.bold("Contents:  "),
        r.tables.len(),
        tables
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
