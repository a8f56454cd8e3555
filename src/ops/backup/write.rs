//! Writing a prepared backup: the directory made ready, the ID reserved, the dump read back, the
//! record built, and the whole published under the lock.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::dump::{self, CheckKey, Dump, Stored};
use super::reserve::{self, Partial};
use super::{Prepared, Request, logged};
use crate::config::Environment;
use crate::error::{Error, Kind, Remedy, Result};
use crate::format::Format;
use crate::fsutil;
use crate::human;
use crate::pipeline::Compression;
use crate::provider::{Dumped, Provider};
use crate::registry::{self, BackupRecord, Recorded, Status, Verification};
use crate::schema::{self, KeyMax, KeyMaxima, Schema};
use crate::session::Session;

/// Writes the backup `prepared` planned and registers it; the outcome goes to the audit log.
pub fn write(
    session: &Session,
    env: &Environment,
    request: &Request,
    prepared: Prepared,
) -> Result<BackupRecord> {
    let result = logged(session, env, || {
        write_inner(session, env, request, prepared)
    });
    if let Ok(r) = &result {
        crate::audit::log_event(
            session,
            "backup",
            Some(&env.name),
            Some(&r.id),
            true,
            request.reason.clone(),
        );
        // Styled as the command layer styles a name: bold on a terminal, plain elsewhere.
        session
            .events()
            .ok(&format!("Registered {}", console::style(&r.id).bold()));
    }
    result
}

fn write_inner(
    session: &Session,
    env: &Environment,
    request: &Request,
    prepared: Prepared,
) -> Result<BackupRecord> {
    let started = Instant::now();
    let Prepared {
        db,
        format,
        compression,
        mut recipients,
        server_version,
        db_size,
        dump_bytes,
        dir,
        exclude_data,
        took,
        preview,
        ..
    } = prepared;
    // The file is also encrypted to a key of this run only, forgotten when it ends: with it the
    // read-back can decrypt what was stored and check it as verify would, though only public
    // keys are configured.
    let check_key: CheckKey = match &mut recipients {
        Some(r) => {
            let key = age::x25519::Identity::generate();
            r.push(Box::new(key.to_public()));
            vec![Box::new(key)]
        }
        None => Vec::new(),
    };
    if request.jobs.is_some() && format != Format::Directory {
        session
            .events()
            .warn("--jobs applies to directory dumps only; ignored");
    }
    let env_dir = ready_dir(session, request, dir, preview.space_needed_bytes, db_size)?;
    let suffix = suffix(format, compression, recipients.is_some());
    let reserved = reserve::reserve(session, env, request, &env_dir, &suffix, format)?;
    // Held until the backup is registered or has failed.
    let _claim = reserved.claim;
    crate::testpoint::pause("backup:after-reserve");

    let d = Dump {
        db: db.as_ref(),
        format,
        compression,
        recipients: recipients.as_deref(),
        check_key: &check_key,
        migrations_table: env.migrations_table.as_deref(),
        exclude_data: &exclude_data,
        env_dir: &env_dir,
        db_size,
        dump_bytes,
        jobs: request.jobs,
        full_check: request.full_check || env.sqlite_full_check,
    };
    let ((dumped, stored), mut recorded) = with_recorded(session, db.as_ref(), || {
        dump::dump(session, &d, &reserved.partial)
    })?;
    excluded_said(session, &exclude_data, &dumped, &mut recorded);
    if env.include_globals {
        recorded.globals = Some(super::globals::read(
            session,
            env,
            db.as_ref(),
            recipients.as_ref(),
        )?);
    }
    session.events().ok(&format!(
        "Verified SHA-256 {}…, integrity {}",
        &stored.sha256[..12],
        if dumped.integrity_check == crate::provider::QUICK_CHECK_PASSED {
            "ok (quick check)"
        } else {
            &dumped.integrity_check
        }
    ));

    let record = record(
        session,
        env,
        request,
        (reserved.id, reserved.file),
        Made {
            db: db.as_ref(),
            format,
            compression,
            server_version,
            db_size,
            dumped,
            stored,
            duration_ms: crate::human::millis(took + started.elapsed()),
        },
    );
    let manifest = record.manifest_bytes(&recorded);
    publish(
        session,
        &record,
        &manifest,
        reserved.partial,
        &reserved.final_path,
    )?;
    Ok(record)
}

/// Runs `dump`, and reads what its manifest records of the database: the schema before and
/// after it, recorded when the two agree, so that it is the schema of the data dumped; and, before
/// it, the largest key of each table with a single integer primary key, so that a row written
/// while the dump runs counts as one the backup may lack, never the reverse. What cannot be read,
/// or a schema that changed meanwhile, is not recorded — the backup is no less good for it.
fn with_recorded<T>(
    session: &Session,
    db: &dyn Provider,
    dump: impl FnOnce() -> Result<T>,
) -> Result<(T, Recorded)> {
    let before = db.schema();
    let key_max = before.as_ref().ok().and_then(|schema| {
        key_maxima(db, schema)
            .map_err(|e| {
                session.events().detail(&format!(
                    "the largest keys are not recorded: {}",
                    e.one_line()
                ));
            })
            .ok()
    });
    let dumped = dump()?;
    let schema = match (before, db.schema()) {
        (Ok(before), Ok(after)) if before == after => Some(after),
        (Ok(_), Ok(_)) => {
            session
                .events()
                .detail("the schema changed while the backup was taken: not recorded");
            None
        }
        (Err(e), _) | (_, Err(e)) => {
            session
                .events()
                .detail(&format!("the schema is not recorded: {}", e.one_line()));
            None
        }
    };
    // Keys of a schema that changed are not the backup's either.
    let key_max = key_max.filter(|_| schema.is_some());
    Ok((
        dumped,
        Recorded {
            schema,
            key_max,
            globals: None,
        },
    ))
}

/// Says which tables' rows the dump left out, and which patterns matched no table; a table whose
/// rows it left out has no largest key in the backup (as an empty table has none).
fn excluded_said(session: &Session, patterns: &[String], dumped: &Dumped, recorded: &mut Recorded) {
    if patterns.is_empty() {
        return;
    }
    let excluded: Vec<&str> = dumped
        .inspection
        .tables
        .iter()
        .filter(|(_, t)| t.data_excluded)
        .map(|(name, _)| name.as_str())
        .collect();
    for pattern in crate::provider::exclude::unmatched(patterns, &excluded) {
        session.events().warn(&format!(
            "exclude_table_data: {pattern} matches no table of the database"
        ));
    }
    if !excluded.is_empty() {
        session.events().ok(&format!(
            "Left out the rows of {} (schema kept): {}",
            human::count(excluded.len() as u64, "table"),
            excluded.join(", ")
        ));
    }
    if let Some(keys) = &mut recorded.key_max {
        for table in &excluded {
            if let Some(key) = keys.get_mut(*table) {
                key.max = None;
            }
        }
    }
}

/// How many tables' largest keys may be unreadable before none is recorded.
const MAX_UNREAD_KEYS: usize = 3;

/// The largest key of each table of `schema` whose primary key is one integer column.
fn key_maxima(db: &dyn Provider, schema: &Schema) -> Result<KeyMaxima> {
    let keys: Vec<(&str, &str)> = schema
        .tables
        .iter()
        .filter_map(|(name, table)| Some((name.as_str(), schema::integer_key(table)?)))
        .collect();
    if keys.is_empty() {
        return Ok(KeyMaxima::new());
    }
    let entry = |table: &str, column: &str, max| {
        let column = column.to_string();
        (table.to_string(), KeyMax { column, max })
    };
    match db.key_maxima(&keys) {
        Ok(maxima) => Ok(keys
            .into_iter()
            .zip(maxima)
            .map(|((table, column), max)| entry(table, column, max))
            .collect()),
        // One table's key that cannot be read (a MySQL `bigint unsigned` beyond i64) must not
        // cost every other table its count by key: each read alone, the unreadable left out —
        // unless reads keep failing (a server gone), when none is recorded.
        Err(e) if keys.len() > 1 => {
            let mut maxima = KeyMaxima::new();
            let mut failed = 0;
            for &(table, column) in &keys {
                match db.key_maxima(&[(table, column)]).map(|mut m| m.pop()) {
                    Ok(Some(max)) => {
                        let (table, key) = entry(table, column, max);
                        maxima.insert(table, key);
                    }
                    _ if failed < MAX_UNREAD_KEYS => failed += 1,
                    _ => return Err(e),
                }
            }
            Ok(maxima)
        }
        Err(e) => Err(e),
    }
}

/// The directory the backup goes to, created (0700) and checked for room: as it is on disk when
/// it was named with `--output-dir` (`..`, symbolic links resolved), as the registry records it.
fn ready_dir(
    session: &Session,
    request: &Request,
    dir: PathBuf,
    needed: u64,
    db_size: u64,
) -> Result<PathBuf> {
    fsutil::create_private_dir(&dir)?;
    let dir = if request.output_dir.is_some() {
        dir.canonicalize()
            .map_err(|e| Error::io(Kind::Config, "cannot resolve", &dir, e))?
    } else {
        dir
    };
    fsutil::ensure_free_space(
        &dir,
        needed,
        "for the backup",
        Remedy::MakeRoom { there: false },
    )?;
    session.events().detail(&format!(
        "database size {}, free space checked (about {} needed)",
        human::size(db_size),
        human::size(needed)
    ));
    Ok(dir)
}

/// What follows the ID in the backup's file name. A directory dump's files carry their own
/// compression suffixes.
fn suffix(format: Format, compression: Compression, encrypted: bool) -> String {
    match format {
        Format::Directory => format.extension().to_string(),
        _ => format!(
            "{}{}{}",
            format.extension(),
            compression.extension(),
            if encrypted { ".age" } else { "" }
        ),
    }
}

/// What a backup's registry entry is made of, besides its request.
struct Made<'a> {
    db: &'a dyn Provider,
    format: Format,
    compression: Compression,
    server_version: String,
    db_size: u64,
    dumped: Dumped,
    stored: Stored,
    /// The checks, the dump and the read-back.
    duration_ms: u64,
}

/// The registry entry of backup `id` of `env`, stored as `file`, just verified.
fn record(
    session: &Session,
    env: &Environment,
    request: &Request,
    (id, file): (String, String),
    made: Made<'_>,
) -> BackupRecord {
    let now = session.ctx.now;
    let Made {
        db,
        format,
        compression,
        server_version,
        db_size,
        dumped,
        stored,
        duration_ms,
    } = made;
    BackupRecord {
        id,
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
        tool_version: dumped.tool_version,
        server_version: Some(server_version),
        database_size_bytes: Some(db_size),
        migrations: dumped.inspection.migrations,
        tables: dumped.inspection.tables,
        retention_days: request.retention.as_days(),
        expires_at: request.retention.expiry(now),
        status: Status::Valid,
        verification: Some(Verification {
            checksum_only: false,
            integrity_check: dumped.integrity_check,
            file_readable: true,
            verified_at: now,
            deep: false,
        }),
        host: crate::audit::host(),
        user: crate::audit::user(),
        git: crate::audit::git_state(&session.config.root),
        duration_ms,
        offsite: None,
        last_drill: None,
    }
}

/// Publishes the backup: manifest, registry entry, final name — under the lock, so a concurrent
/// cleanup never sees a file without its entry, and a crash leaves something the next run can
/// finish or remove (see `Store::publish`).
fn publish(
    session: &Session,
    record: &BackupRecord,
    manifest_bytes: &[u8],
    partial: Partial,
    final_path: &Path,
) -> Result<()> {
    crate::testpoint::pause("backup:before-publish");
    let manifest = registry::manifest_path_for(final_path, &record.id);
    let registering = Instant::now();
    session.store.publish(
        record,
        &manifest,
        manifest_bytes,
        || {
            match partial {
                Partial::File(f) => f.persist(final_path),
                Partial::Dir(d) => d.persist(final_path),
            }
            .map_err(|e| Error::io(Kind::Tool, "cannot finish", final_path, e))
        },
        || {
            // A move that happened and then failed to sync: the data is this run's (its ID is).
            let _ = fsutil::remove_backup_data(final_path);
        },
    )?;
    session.events().detail(&format!(
        "registered in {} ms (manifest, registry entry, final name)",
        registering.elapsed().as_millis()
    ));
    Ok(())
}
