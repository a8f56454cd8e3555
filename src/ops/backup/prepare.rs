//! Everything a backup checks before it writes — the format, the encryption keys, the connection
//! and the tools, the database's size and the free space — and the plan made of them.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::Request;
use crate::config::Environment;
use crate::crypt;
use crate::error::{Error, Kind, Remedy, Result};
use crate::format::Format;
use crate::human;
use crate::pipeline::Compression;
use crate::plan;
use crate::provider::{Provider, ProviderKind};
use crate::session::Session;

/// A backup checked and planned, ready to write: nothing is written yet.
pub struct Prepared {
    pub(super) db: Box<dyn Provider>,
    pub(super) format: Format,
    pub(super) compression: Compression,
    pub(super) recipients: Option<crypt::Recipients>,
    pub(super) server_version: String,
    pub(super) db_size: u64,
    /// What the dump is expected to stream: the progress bar's total.
    pub(super) dump_bytes: u64,
    /// Where the files go.
    pub(super) dir: PathBuf,
    /// Patterns of the tables whose rows are left out: the environment's and the request's.
    pub(super) exclude_data: Vec<String>,
    pub preview: Preview,
    /// How long the checks took: part of the backup's duration.
    pub(super) took: Duration,
}

/// What a backup will do and is expected to cost, as `backup --dry-run` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
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
    /// Patterns of the tables whose rows the backup leaves out (`exclude_table_data`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude_table_data: Vec<String>,
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

impl Preview {
    /// The failure a backup that would not fit reports (exit 2).
    pub fn space_shortfall(&self) -> Option<Error> {
        (!self.enough_space).then(|| {
            Error::new(
                Kind::DiskSpace,
                format!(
                    "not enough free space in {} for the backup: {} free, about {} needed",
                    self.destination.display(),
                    human::size(self.free_bytes),
                    human::size(self.space_needed_bytes)
                ),
            )
            .with_hint(Remedy::MakeRoom { there: false })
        })
    }
}

/// A prepared backup, unless the destination has too little room for it (exit 2).
pub(super) fn fits(prepared: Prepared) -> Result<Prepared> {
    match prepared.preview.space_shortfall() {
        Some(e) => Err(e),
        None => Ok(prepared),
    }
}

/// Everything a backup checks before it writes, and the plan made of it. Changes nothing on disk.
pub(super) fn prepare(session: &Session, env: &Environment, request: &Request) -> Result<Prepared> {
    let (url, db) = session.provider(env)?;
    prepare_from(session, env, request, db, url.redacted())
}

/// [`prepare`] of a backup of `env` taken from `db` (shown as `shown`): the environment's own
/// database, or the data a restore set aside (see [`super::take_replaced`]).
pub(super) fn prepare_from(
    session: &Session,
    env: &Environment,
    request: &Request,
    db: Box<dyn Provider>,
    shown: String,
) -> Result<Prepared> {
    let started = Instant::now();
    let format = resolve_format(request.format, env, db.as_ref())?;
    let exclude_data = exclude_data(env, request)?;
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
    session
        .events()
        .ok(&format!("Connected to {shown} ({server_version})"));
    let tools = db.tools_report()?;

    let compression = resolve_compression(request.compression, format, env);
    let db_size = db.size_estimate()?;
    let copied_first = db.backup_copies_first(!exclude_data.is_empty());
    let needed = plan::space_needed(format, compression, db_size, copied_first);
    let dir = match &request.output_dir {
        Some(d) => d.clone(),
        None => session.store.dir().join(&env.name),
    };
    let free = free_space(&dir)?;
    let text = session.store.read_text()?;
    let history: Vec<plan::Sample> = session.store.entries_as(text.as_deref())?;
    let estimate = plan::backup(&history, &env.name, format, compression, db_size);
    let dump_bytes = plan::dump_bytes(&history, &env.name, format, db_size);
    let preview = Preview {
        environment: env.name.clone(),
        database: db.database_name(),
        provider: db.kind(),
        server_version: server_version.clone(),
        steps: steps(
            tools.is_some(),
            compression,
            recipients.is_some(),
            env.offsite,
        ),
        tools,
        format,
        compression,
        encrypted: recipients.is_some(),
        offsite: env.offsite,
        exclude_table_data: exclude_data.clone(),
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
        exclude_data,
        preview,
        took: started.elapsed(),
    })
}

/// The patterns of the tables whose rows a backup of `env` leaves out: the environment's, then
/// those the request adds, each once.
fn exclude_data(env: &Environment, request: &Request) -> Result<Vec<String>> {
    let mut patterns: Vec<String> = Vec::new();
    for p in env
        .exclude_table_data
        .iter()
        .chain(&request.exclude_table_data)
    {
        crate::provider::exclude::check(p).map_err(|e| {
            Error::config(format!("--exclude-table-data: {e}"))
                .with_hint("name a table, or a pattern with * (sessions*)")
        })?;
        if !patterns.contains(p) {
            patterns.push(p.clone());
        }
    }
    Ok(patterns)
}

/// The free space where `dir` is or will be: the directory may not exist yet, and its nearest
/// existing parent has the same free space.
fn free_space(dir: &std::path::Path) -> Result<u64> {
    Ok(dir
        .ancestors()
        .find(|d| d.is_dir())
        .map(fs4::available_space)
        .transpose()
        .map_err(|e| Error::io(Kind::Config, "cannot read free space of", dir, e))?
        .unwrap_or(0))
}

/// The steps a backup goes through, as the plan names them.
fn steps(
    tools: bool,
    compression: Compression,
    encrypted: bool,
    offsite: bool,
) -> Vec<&'static str> {
    let mut steps = vec!["validate connection"];
    if tools {
        steps.push("check tools");
    }
    steps.extend(["estimate", "dump"]);
    if compression != Compression::None {
        steps.push("compress");
    }
    if encrypted {
        steps.push("encrypt");
    }
    steps.extend(["checksum", "verify", "register"]);
    if offsite {
        steps.push("upload off-site");
    }
    steps
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
            "SQLite backups are images of the database file, in no other format",
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
