//! What a restore or rollback would do, read from the live database and changing nothing: what
//! `--dry-run` shows, and a protected environment's confirmation before its question.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Environment;
use crate::error::{Error, Kind, Result};
use crate::migrations::MigrationState;
use crate::ops::backup;
use crate::plan;
use crate::provider::Provider;
use crate::provider::method::{self, MethodChoice, RestoreMethod};
use crate::registry::BackupRecord;
use crate::session::Session;

/// What a restore or rollback will do and is expected to take, as `--dry-run` shows it.
#[derive(Debug, Serialize)]
pub struct Preview {
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

impl Preview {
    /// The restore method the preview chose, for the run to use as it is; `None` when none is
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

/// What restoring `record` into `env`'s database `db` would do, with a safety backup of reason
/// `safety` (if the database exists), in place if `in_place` (else by the method the role
/// allows). Reads the live database; changes nothing. A role that can use no restore method is
/// the pre-flight's to report: the preview says why.
pub fn preview(
    session: &Session,
    env: &Environment,
    db: &dyn Provider,
    record: &BackupRecord,
    chosen: String,
    safety: Option<&'static str>,
    in_place: bool,
) -> Result<Preview> {
    // A role that can use no method is the pre-flight's to report (a failed `privileges`
    // check): the preview is shown all the same.
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
                space_needed_bytes: plan::space_needed(
                    format,
                    compression,
                    db_size,
                    db.backup_copies_first(!env.exclude_table_data.is_empty()),
                ),
                after_swap: method == Some(RestoreMethod::Swap) && db.sets_replaced_aside(),
            })
        }
        _ => None,
    };
    let load = plan::restore(record, &session.store.history(&env.name));
    let duration_ms =
        load.duration_ms + safety_backup.as_ref().map_or(0, |s| s.estimate.duration_ms);
    Ok(Preview {
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

/// The restore method for `db`: what its role allows, or in place when `in_place`.
pub(super) fn choose_method(db: &dyn Provider, in_place: bool) -> Result<MethodChoice> {
    method::choose(&db.restore_privileges()?, in_place)
}
