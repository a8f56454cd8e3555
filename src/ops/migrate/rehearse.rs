//! A migration rehearsed on a copy of the environment's database before it runs for real: the
//! run's fresh pre-migration backup (or, when the run takes none now, a `pre-rehearsal` one)
//! loaded into a scratch database ([`crate::ops::scratch_copy`]), its schema, row counts and
//! migration state read, the `migrate_command` run against it — `DATABASE_URL`, the
//! environment's own URL variable and every other variable that reaches the environment's
//! database pointed at the copy, for the child only — and read again. The copy is dropped
//! however the rehearsal ends. What it found is a [`Rehearsal`]; whether the real run follows
//! is the caller's.

use std::time::Instant;

use serde::Serialize;

use super::command::{CommandFailed, Target, run_command};
use super::failed_at::{FailedAt, failed_at};
use super::{Prepared, Request, no_command};
use crate::audit::log_event;
use crate::config::{Environment, UrlSource};
use crate::error::{Error, Kind, Result};
use crate::migrations::MigrationState;
use crate::ops::backup;
use crate::ops::scratch_copy::{self, Copy};
use crate::provider::{DatabaseUrl, Inspection, ProviderKind, blank_out};
use crate::registry::BackupRecord;
use crate::schema::Change;
use crate::session::Session;

/// What a migration's rehearsal on a copy of the environment's database found.
#[derive(Debug, Serialize)]
pub struct Rehearsal {
    /// The backup the copy was made from.
    pub backup: String,
    /// Why that backup was taken: `pre-migration` (the run's own) or `pre-rehearsal`.
    pub backup_reason: String,
    /// The copy: its database's name on the scratch server (the file's path for SQLite).
    pub scratch: String,
    /// The command succeeded on the copy.
    pub passed: bool,
    /// A signal stopped it.
    pub interrupted: bool,
    /// The command's exit code, when it exited on its own.
    pub exit_code: Option<i32>,
    /// How it failed (secrets blanked out).
    pub failure: Option<String>,
    /// The migration (and statement) it failed at, when the migration files tell.
    pub failed_at: Option<FailedAt>,
    /// The command's last lines of output.
    pub output_tail: Vec<String>,
    pub duration_ms: u64,
    pub migrations_before: Option<MigrationState>,
    pub migrations_after: Option<MigrationState>,
    /// The migrations the command applied on the copy.
    pub applied: Vec<String>,
    /// What changed in the schema; `None` when it could not be read (see `schema_unread`).
    pub schema_changes: Option<Vec<Change>>,
    pub schema_unread: Option<String>,
    /// The tables whose row count changed, or that came or went.
    pub rows: Vec<RowChange>,
    /// The variables pointed at the copy for the command (names only).
    pub variables: Vec<String>,
}

/// The row count of one table before and after the command (`None`: the table was not there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowChange {
    pub table: String,
    pub before: Option<u64>,
    pub after: Option<u64>,
    /// Either count is the planner's estimate.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub estimated: bool,
}

impl Rehearsal {
    /// The error a failed rehearsal ends the run with (exit 9; 8 when a signal stopped it), or
    /// `None` when it passed.
    pub fn error(&self, env: &Environment) -> Option<Error> {
        if self.passed {
            return None;
        }
        if self.interrupted {
            return Some(Error::aborted(format!(
                "interrupted: the rehearsal on a copy of `{}` was stopped; production was not touched",
                env.name
            )));
        }
        let at = match &self.failed_at {
            Some(FailedAt {
                migration,
                statement: Some(statement),
                ..
            }) => format!(" at {migration}: {statement}"),
            Some(f) => format!(" at {}", f.migration),
            None => String::new(),
        };
        Some(Error::new(
            Kind::Migration,
            format!(
                "the migration failed when rehearsed on a copy of `{}`{at} ({}); production was not touched",
                env.name,
                self.failure.as_deref().unwrap_or("failed")
            ),
        ))
    }
}

/// Rehearses `prepared`'s migration of `env` on a copy of `taken`, the pre-migration backup this
/// run just took — or, when it took none (a dry run, `--resume`, `backup_before_migrate` off),
/// of a `pre-rehearsal` backup taken now (registered, like any backup). The command's output
/// goes to `on_output`. An error when the rehearsal could not run (the backup, the copy); a
/// command that failed on the copy is a rehearsal that did not pass.
pub fn rehearse(
    session: &Session,
    env: &Environment,
    request: &Request,
    prepared: &Prepared,
    taken: Option<&BackupRecord>,
    on_output: &(dyn Fn(&str) + Sync),
) -> Result<Rehearsal> {
    let command = prepared.command.as_deref().ok_or_else(|| no_command(env))?;
    let _signals = crate::interrupt::guard();
    let owned;
    let backup = if let Some(b) = taken {
        b
    } else {
        owned = backup::take_automatic(session, env, "pre-rehearsal")
            .map_err(|e| e.add_hint("the rehearsal did not run: its backup failed"))
            .map_err(not_touched)?;
        &owned
    };
    if crate::interrupt::happened() {
        return Err(Error::aborted(
            "interrupted: the rehearsal did not run; production was not touched",
        ));
    }
    let (_, own) = session.provider(env)?;
    // The environment's own database, watched: a command that does not take its database
    // from the variables would migrate it instead of the copy.
    let (_, watched) = session.provider(env)?;
    let table = env.migrations_table.as_deref();
    let before = Watched::read(watched.as_ref(), table)?;
    let server = scratch_copy::server(session, env, own, "a rehearsal").map_err(not_touched)?;
    session.events().line(&format!(
        "Rehearsing the migration on a copy of {} (backup {})",
        env.name, backup.id
    ));
    let found = scratch_copy::with_copy(session, env, &server, backup, |copy| {
        run_on(session, env, request, prepared, command, copy, on_output)
    });
    let after = Watched::read(watched.as_ref(), table)?;
    if let Some(what) = before.changed(&after) {
        log_event(
            session,
            "rehearse",
            Some(&env.name),
            Some(&backup.id),
            false,
            Some(format!("the environment's own database changed: {what}")),
        );
        return Err(Error::new(
            Kind::Migration,
            format!(
                "the rehearsal's command changed `{}`'s own database, not only the copy ({what}); the real migration was not run",
                env.name
            ),
        )
        .with_hint(format!(
            "migrate_command must reach its database through DATABASE_URL{}: check `{}` now — backup {} holds it as it was before",
            match &env.url {
                UrlSource::Var(var) => format!(" or {var}"),
                UrlSource::Inline(_) => String::new(),
            },
            env.name,
            backup.id
        )));
    }
    let rehearsal = found.map_err(not_touched).map(|found| Rehearsal {
        backup: backup.id.clone(),
        backup_reason: backup.reason.clone().unwrap_or_default(),
        ..found
    })?;
    log_event(
        session,
        "rehearse",
        Some(&env.name),
        Some(&backup.id),
        rehearsal.passed,
        rehearsal.failure.clone(),
    );
    Ok(rehearsal)
}

/// A rehearsal that could not run (no scratch server, a backup that would not load): said so,
/// and that the environment's database was not touched.
fn not_touched(e: Error) -> Error {
    if e.message().contains("production was not touched") {
        e
    } else {
        e.add_hint("the rehearsal could not run; production was not touched")
    }
}

/// What of the environment's own database a rehearsal must leave as it was: its migration
/// state and its schema.
struct Watched {
    migrations: Option<MigrationState>,
    /// `None` when it cannot be read (then only the migration state is compared).
    schema: Option<crate::schema::Schema>,
}

impl Watched {
    fn read(db: &dyn crate::provider::Provider, table: Option<&str>) -> Result<Watched> {
        Ok(Watched {
            migrations: db.inspect(table, false)?.migrations,
            schema: db.schema().ok(),
        })
    }

    /// What changed from `self` to `now`, if anything did.
    fn changed(&self, now: &Watched) -> Option<String> {
        if self.migrations != now.migrations {
            return Some(format!(
                "its migration state went from {} to {}",
                crate::migrations::describe(self.migrations.as_ref()),
                crate::migrations::describe(now.migrations.as_ref())
            ));
        }
        // The schema too, with a migration table or without: a migration that failed half-way
        // on the database itself (non-transactional DDL) leaves the state where it was and the
        // schema changed — and then "production was not touched" would be false. (An
        // application's own DDL meanwhile, a partition made by a scheduler, counts too: the run
        // stops rather than claim what it cannot tell.)
        match (&self.schema, &now.schema) {
            (Some(was), Some(is)) if was != is => {
                let changes = crate::schema::changes(was, is);
                Some(format!(
                    "its schema changed: {} change{}",
                    changes.len(),
                    if changes.len() == 1 { "" } else { "s" }
                ))
            }
            _ => None,
        }
    }
}

/// The rehearsal itself, on `copy`: read, run, read again.
fn run_on(
    session: &Session,
    env: &Environment,
    request: &Request,
    prepared: &Prepared,
    command: &str,
    copy: &Copy<'_>,
    on_output: &(dyn Fn(&str) + Sync),
) -> Result<Rehearsal> {
    let table = env.migrations_table.as_deref();
    let before = copy.db.inspect(table, true)?;
    let schema_before = copy.db.schema();
    let (target, variables) = target(session, env, copy)?;
    session.events().line(&format!(
        "Running on the copy ({}): {}",
        copy.name,
        blank_out(command, &target.secrets)
    ));
    crate::testpoint::pause("migrate:rehearsing");
    let started = Instant::now();
    let ran = if crate::interrupt::happened() {
        Err(CommandFailed {
            what: "the rehearsal was stopped before its command ran".to_string(),
            tail: Vec::new(),
            code: None,
        })
    } else {
        run_command(session, command, &target, request.lock_fd, on_output)
    };
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (failure, output_tail, exit_code) = match ran {
        Ok(tail) => (None, tail, Some(0)),
        Err(f) => (Some(blank_out(&f.what, &target.secrets)), f.tail, f.code),
    };
    let mut found = Rehearsal {
        backup: String::new(),
        backup_reason: String::new(),
        scratch: copy.name.to_string(),
        passed: failure.is_none(),
        interrupted: crate::interrupt::happened(),
        exit_code,
        failure,
        failed_at: None,
        output_tail,
        duration_ms,
        migrations_before: before.migrations.clone(),
        migrations_after: None,
        applied: Vec::new(),
        schema_changes: None,
        schema_unread: None,
        rows: Vec::new(),
        variables,
    };
    if found.interrupted {
        // Nothing more is read: the copy goes at once.
        found.passed = false;
        return Ok(found);
    }
    let after = copy.db.inspect(table, true)?;
    match (schema_before, copy.db.schema()) {
        (Ok(was), Ok(now)) => found.schema_changes = Some(crate::schema::changes(&was, &now)),
        (Err(e), _) | (_, Err(e)) => found.schema_unread = Some(e.one_line()),
    }
    found.rows = row_changes(&before, &after);
    found.applied = applied(before.migrations.as_ref(), after.migrations.as_ref());
    if !found.passed {
        found.failed_at = failed_at(
            session,
            prepared.outlook.dir.as_deref(),
            after.migrations.as_ref(),
            &found.output_tail,
        );
    }
    found.migrations_after = after.migrations;
    Ok(found)
}

/// Where the command is pointed on a rehearsal: `DATABASE_URL`, the environment's own URL
/// variable, and every variable (of the process or the dotenv files, which a migration tool may
/// read) whose URL names the environment's database, on whatever host (a host has many names:
/// an alias, a pooler) — each set to the copy's URL, for the
/// child only; for PostgreSQL, `PGDATABASE` set to the copy's name and `PGSERVICE` unset. With
/// the variables' names.
fn target(session: &Session, env: &Environment, copy: &Copy<'_>) -> Result<(Target, Vec<String>)> {
    let own = session.url(env)?;
    let mut names = vec!["DATABASE_URL".to_string()];
    if let UrlSource::Var(var) = &env.url {
        names.push(var.clone());
    }
    for (name, value) in session.vars.iter() {
        let reaches = DatabaseUrl::parse(value, &session.config.root)
            .is_ok_and(|u| u.names_same_database(&own));
        if reaches && !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    let mut secrets = own.secrets();
    secrets.extend(copy.secrets.iter().cloned());
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut vars: Vec<(String, String)> = names
        .iter()
        .map(|n| (n.clone(), copy.url.to_string()))
        .collect();
    let mut unset = Vec::new();
    if own.kind() == ProviderKind::Postgres {
        // A libpq client given no database (`psql -f FILE`) takes PGDATABASE's, and a service
        // file's `dbname` wins over PGDATABASE: the copy's name in one, the other gone — a client
        // that reads neither URL nor the variables reaches the copy or nothing, never the
        // environment's own database.
        vars.retain(|(n, _)| n != "PGDATABASE");
        vars.push(("PGDATABASE".to_string(), copy.name.to_string()));
        if !names.iter().any(|n| n == "PGDATABASE") {
            names.push("PGDATABASE".to_string());
        }
        unset.push("PGSERVICE");
    }
    Ok((
        Target {
            vars,
            unset,
            secrets,
        },
        names,
    ))
}

/// The tables whose row count changed, or that came or went, between two inspections.
fn row_changes(before: &Inspection, after: &Inspection) -> Vec<RowChange> {
    let mut names: Vec<&String> = before.tables.keys().chain(after.tables.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            let was = before.tables.get(name);
            let now = after.tables.get(name);
            let change = RowChange {
                table: name.clone(),
                before: was.map(|t| t.rows),
                after: now.map(|t| t.rows),
                estimated: was.is_some_and(|t| t.estimated) || now.is_some_and(|t| t.estimated),
            };
            (change.before != change.after).then_some(change)
        })
        .collect()
}

/// The migrations `after` lists and `before` does not.
fn applied(before: Option<&MigrationState>, after: Option<&MigrationState>) -> Vec<String> {
    let Some(after) = after else {
        return Vec::new();
    };
    after
        .migrations_list
        .iter()
        .filter(|m| before.is_none_or(|b| !b.migrations_list.contains(m)))
        .cloned()
        .collect()
}
