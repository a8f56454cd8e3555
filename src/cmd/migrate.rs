//! `faber-db migrate ENV`: the pre-migrate hook. Lists the pending migrations and flags their
//! destructive statements, takes the `pre-migration` backup, runs the environment's
//! `migrate_command`, and on failure restores that backup (exit 9).

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use clap::Args;
use serde::Serialize;

use crate::Report;
use crate::cmd;
use crate::cmd::cli::{DryRun, Wait};
use crate::config::{Enforcement, Environment};
use crate::confirm::{self, Ask};
use crate::error::{Error, Kind, Result};
use crate::migrations::MigrationState;
use crate::ops::backup;
use crate::ops::restore;
use crate::pending::{self, MigrationFile};
use crate::provider::ProviderKind;
use crate::session::Session;
use crate::sqlscan::{self, Dialect, Finding};
use crate::ui::Ui;
use crate::ui::{self, To};

/// What must be typed to run destructive migrations on a protected environment.
pub const DESTRUCTIVE_PHRASE: &str = "proceed-with-destructive-changes";
/// How many of the command's last output lines a failure report keeps.
const TAIL_LINES: usize = 20;

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Environment to migrate [default: FABER_ENV, ENV_MODE or
    /// default_environment]
    pub env: Option<String>,

    /// Skip the pre-migration backup even when backup_before_migrate is set
    #[arg(long)]
    pub no_backup: bool,

    /// Run destructive migrations on a protected environment without typing the phrase
    #[arg(long)]
    pub allow_destructive: bool,

    /// If the migration fails, end other sessions on the database so that the pre-migration
    /// backup can be restored (PostgreSQL, MySQL)
    #[arg(long)]
    pub terminate_connections: bool,

    /// Go on after a migrate that did not finish (killed, or failed with nothing restored): run
    /// the command on the database as that run left it, with that run's pre-migration backup
    /// as the one to go back to (no new backup of the half-migrated database is taken)
    #[arg(long)]
    pub resume: bool,

    #[command(flatten)]
    pub wait: Wait,

    #[command(flatten)]
    pub dry_run: DryRun,
}

/// A pending migration, as reported.
#[derive(Debug, Serialize)]
pub struct Pending {
    pub name: String,
    pub file: String,
    pub destructive: Vec<Destructive>,
}

#[derive(Debug, Serialize)]
pub struct Destructive {
    pub what: &'static str,
    /// Its key in `safety.destructive_operations`: `drop_table`, `truncate`, …
    pub kind: &'static str,
    pub line: usize,
    pub statement: String,
    /// Why it may not run, when `safety.destructive_operations` forbids its kind.
    pub blocked: Option<String>,
    /// The key that requires a backup before it runs, if one does.
    pub backup_required: Option<String>,
}

impl Destructive {
    fn of(f: Finding, safety: &crate::config::Safety) -> Self {
        Destructive {
            what: f.what,
            kind: f.kind.key(),
            line: f.line,
            statement: f.excerpt,
            blocked: safety.blocked(f.kind),
            backup_required: safety.backup_required(f.kind),
        }
    }
}

#[expect(clippy::too_many_lines, reason = "issue 19: to split along its steps")]
pub fn run(session: &Session, ui: &Ui, args: MigrateArgs) -> Result<Report> {
    let env = session.env(crate::cmd::cli::env_name(&args.env))?;
    let lock = cmd::claim_env(
        session,
        env,
        "migrate",
        "migration",
        args.dry_run,
        args.wait,
    )?;
    // A dry run reports the refusal the run would meet, after its plan.
    let (unfinished, refusal) = unfinished(session, env, &args)?;
    let (url, db) = session.provider(env)?;
    let Plan {
        exists,
        version,
        before,
        dir,
        todo,
        listable,
    } = plan(session, env, db.as_ref())?;
    match &version {
        Some(version) => ui.ok(format!("Connected to {} ({version})", url.redacted())),
        None => ui.warn(format!(
            "database {} does not exist yet: no backup, every migration is pending",
            db.database_name()
        )),
    }
    let destructive = todo.iter().filter(|p| !p.destructive.is_empty()).count();
    let command = env
        .migrate_command
        .as_deref()
        .ok_or_else(|| no_command(env));
    let nothing_to_do = listable && todo.is_empty();
    // The config's safety rules: statements it forbids stop the run before anything is done,
    // and statements it wants backed up take the backup whatever backup_before_migrate says.
    let required = backup_required(session, env, &todo, listable);
    if !listable
        && session
            .config
            .safety
            .destructive
            .values()
            .any(|r| !r.allowed)
    {
        ui.warn(
            "the pending migrations cannot be read, so safety.destructive_operations cannot be checked against them",
        );
    }
    let refused = blocked(session, &todo).or_else(|| {
        required
            .as_ref()
            .filter(|_| args.no_backup && exists && !nothing_to_do)
            .map(|why| {
                Error::config(format!(
                    "--no-backup is refused: {why} wants a pre-migration backup of `{}`",
                    env.name
                ))
                .with_hint(format!(
                    "run it without --no-backup (the rule is in {})",
                    session.ctx.show(&session.config.file)
                ))
            })
    });
    // A run that will ask shows its whole plan where the question is, just before it.
    let asking = !args.dry_run.dry_run
        && command.is_ok()
        && refused.is_none()
        && !nothing_to_do
        && confirm::will_ask(
            env,
            session.ctx.yes && (destructive == 0 || args.allow_destructive),
        );
    let to = if asking { To::Prompt } else { To::Output };
    show_state(ui, "Applied", before.as_ref(), to);
    match &dir {
        None => ui.warn(format!(
            "no migrations directory (set migrations.directory, or use one of {}): pending migrations cannot be listed",
            pending::DEFAULT_DIRS.join(", ")
        )),
        Some(d) if !listable => ui.warn(format!(
            "no SQL migration files faber-db can read in {}: pending migrations cannot be listed, the command runs",
            session.ctx.show(d)
        )),
        Some(d) if todo.is_empty() => ui.ok(format!(
            "No pending migrations in {}",
            session.ctx.show(d)
        )),
        Some(d) => {
            ui.say(
                to,
                format!("{} pending in {}:", todo.len(), session.ctx.show(d)),
            );
            for p in &todo {
                ui.say(to, format!("  {}", p.name));
                for f in &p.destructive {
                    ui.warn(format!(
                        "{} line {}: {} — {}{}",
                        p.file,
                        f.line,
                        f.what,
                        f.statement,
                        match &f.blocked {
                            Some(why) => format!(" (not allowed: {why})"),
                            None => String::new(),
                        }
                    ));
                }
            }
        }
    }
    let take_backup =
        (env.backup_before_migrate || required.is_some()) && !args.no_backup && exists;
    if !take_backup
        && exists
        && !nothing_to_do
        && env.backup_enforcement == Enforcement::Recommended
    {
        ui.warn(format!(
            "no pre-migration backup is taken, and safety.backup_enforcement.{} recommends one",
            env.name
        ));
    }
    let mut report = Report::new()
        .with("environment", &env.name)
        .with("pending", &todo)
        .with("migrations_before", &before);
    // Refused by the config: before any backup, question or command, with or without --yes,
    // --allow-destructive or --dry-run.
    if let Some(e) = refused {
        report.failure = Some(e);
        return Ok(if args.dry_run.dry_run {
            report.with("dry_run", true)
        } else {
            report.with("migrated", false)
        });
    }
    // Nothing to migrate: nothing runs, so nothing needs to be possible.
    let secrets = session.url(env).map(|u| u.secrets()).unwrap_or_default();
    let (preflight, failure) = preflight(
        session,
        env,
        db.as_ref(),
        &args,
        take_backup && !nothing_to_do && unfinished.is_none(),
        unfinished.is_some() && !nothing_to_do,
        &secrets,
    )?;
    report = report.with("preflight", &preflight);
    let resumed = unfinished.as_ref().map(|b| b.id.as_str());
    let plan = || {
        steps(
            session,
            env,
            db.as_ref(),
            &args,
            take_backup,
            resumed,
            required.as_deref(),
            destructive,
        )
    };
    if args.dry_run.dry_run {
        // The plan is shown all the same (when there is a command to plan); a dry run fails as
        // the run would, so that a pipeline's dry run catches it.
        let steps = match &command {
            Ok(_) => Some(plan()?),
            Err(_) => None,
        };
        if let Some(steps) = &steps {
            print_steps(ui, env, steps, to);
        }
        ui::restore::preflight(ui, &preflight);
        ui.line("Dry run: nothing was changed.");
        report.failure = refusal.or(failure);
        return Ok(report.with("dry_run", true).with("plan", &steps));
    }
    if let Some(e) = failure {
        ui::restore::preflight(ui, &preflight);
        report.failure = Some(e);
        return Ok(report.with("migrated", false));
    }
    let command = command?;
    if nothing_to_do {
        return Ok(report.with("migrated", false));
    }
    ui::restore::preflight_passed(ui, &preflight);
    if asking {
        let steps = plan()?;
        print_steps(ui, env, &steps, to);
    }
    if destructive > 0 {
        confirm::confirm_phrase(
            env,
            &format!("{destructive} destructive migrations"),
            DESTRUCTIVE_PHRASE,
            args.allow_destructive,
        )?;
    }
    confirm::confirm(env, "migrate", Ask::TypeName, session.ctx.yes)?;
    // From here, SIGTERM, SIGINT or SIGHUP (a CI cancel, an agent's timeout, a closed terminal)
    // stops the command's processes, records it and restores the backup; a second one ends
    // faber-db at once.
    let _signals = crate::interrupt::guard();

    let backup = if let Some(earlier) = unfinished {
        ui.ok(format!(
            "Resuming: {}, taken before the migrate that did not finish, stays the backup to go back to",
            earlier.id
        ));
        Some(earlier)
    } else if take_backup {
        Some(
            backup::take_automatic(session, env, "pre-migration").map_err(|e| {
                e.add_hint("the migration did not run: the pre-migration backup failed")
            })?,
        )
    } else {
        None
    };
    // The entry itself, as `backup` and `rollback` report theirs.
    report = report.with("backup", backup.as_ref());
    if crate::interrupt::happened() {
        return Err(Error::aborted("interrupted: the migration did not run")
            .with_hint("run it again when ready"));
    }

    let shown = crate::provider::blank_out(command, &secrets);
    ui.line(format!("Running: {shown}"));
    // Said before the command runs: a faber-db killed from here on leaves this as the last word
    // of the environment's history, and `status` reports the migration as unfinished.
    cmd::log_event(
        session,
        "migrate-started",
        Some(&env.name),
        backup.as_ref().map(|b| b.id.as_str()),
        true,
        Some(shown),
    );
    let outcome = run_command(ui, session, env, command, lock.as_ref().map(|l| l.raw_fd()));
    let (ok, detail, tail) = match &outcome {
        Ok(tail) => (true, None, tail.clone()),
        Err((what, tail)) => (
            false,
            Some(crate::provider::blank_out(what, &secrets)),
            tail.clone(),
        ),
    };
    // Stopped by a signal, not failed on its own.
    let interrupted = !ok && crate::interrupt::happened();
    let id = backup.as_ref().map(|b| b.id.clone());
    let id = id.as_deref();
    if interrupted {
        cmd::log_interrupted_event(session, "migrate", Some(&env.name), id, detail.clone());
    } else {
        cmd::log_event(session, "migrate", Some(&env.name), id, ok, detail.clone());
    }
    if ok {
        let after = if db.exists()? {
            db.inspect(env.migrations_table.as_deref(), false)?
                .migrations
        } else {
            None
        };
        ui.ok("Migration finished");
        show_state(ui, "Applied", after.as_ref(), To::Output);
        return Ok(report
            .with("migrated", true)
            .with("migrations_after", &after));
    }
    let what = detail.clone().unwrap_or_default();
    report = report
        .with("migrated", false)
        .with("interrupted", interrupted)
        .with("output_tail", &tail);
    let signal = crate::interrupt::signal_name().unwrap_or("a signal");
    let failure = if interrupted {
        // The signal is dealt with: the restore below runs, and a second signal ends it at once.
        crate::interrupt::acknowledge();
        Error::aborted(format!(
            "interrupted by {signal}: the migration was stopped part-way ({what})"
        ))
    } else {
        Error::new(Kind::Migration, format!("the migration failed: {what}"))
    };
    crate::testpoint::pause("migrate:before-restore");
    let Some(backup) = backup.filter(|_| env.rollback_on_failure) else {
        let hint = match (interrupted, id) {
            (true, Some(id)) => format!(
                "the database may be half-migrated; restore the pre-migration backup with `faber-db rollback {} --to {id}`",
                env.name
            ),
            (true, None) => "the database may be half-migrated, and no pre-migration backup was taken: check it before running the migration again".to_string(),
            (false, _) => "the database is as the migration left it; restore a backup with `faber-db restore` if needed".to_string(),
        };
        report.failure = Some(failure.with_hint(hint));
        return Ok(report.with("rolled_back", false));
    };
    ui.warn(format!("restoring the pre-migration backup {}", backup.id));
    let restored = restore::apply(
        session,
        env,
        db.as_ref(),
        &backup,
        &restore::Request {
            event: "rollback",
            safety_reason: Some("pre-rollback"),
            // Sessions still connected would stop the restore and leave the database
            // half-migrated: ended, unless the config says not to (and then the pre-flight
            // refused to start while any were connected).
            terminate_connections: args.terminate_connections
                || env.terminate_connections_on_rollback,
            // The method the role allows: in place when it may not create databases.
            in_place: false,
            method: None,
            jobs: None,
        },
    );
    match restored {
        Ok(r) => {
            let matches = r.inspection.migrations == backup.migrations && r.diffs.is_empty();
            show_state(
                ui,
                "Restored to",
                r.inspection.migrations.as_ref(),
                To::Output,
            );
            report.failure = Some(failure.with_hint(format!(
                "the pre-migration backup {} was restored{}; the {} attempt is kept as {}{}",
                backup.id,
                if matches {
                    " and matches it"
                } else {
                    ", but the database differs from it — check it"
                },
                if interrupted { "interrupted" } else { "failed" },
                r.safety.as_deref().unwrap_or("(no safety backup)"),
                if interrupted {
                    "; run the migration again when ready"
                } else {
                    ""
                }
            )));
            Ok(report
                .with("rolled_back", true)
                .with("rollback_matches", matches)
                .with("migrations_after", &r.inspection.migrations))
        }
        Err(e) => {
            let (kind, how) = if interrupted {
                (Kind::Aborted, format!("was interrupted by {signal}"))
            } else {
                (Kind::Migration, "failed".to_string())
            };
            report.failure = Some(
                Error::new(
                    kind,
                    format!("the migration {how} ({what}), and restoring the pre-migration backup failed: {}", e.message()),
                )
                .with_hint(format!(
                    "the database may be half-migrated; restore it by hand: {}",
                    cmd::command_line(
                        session,
                        &if e.kind() == Kind::Busy {
                            vec!["rollback", env.name.as_str(), "--to", backup.id.as_str(), "--terminate-connections"]
                        } else {
                            vec!["rollback", env.name.as_str(), "--to", backup.id.as_str()]
                        }
                    )
                )),
            );
            Ok(report.with("rolled_back", false))
        }
    }
}

/// The pre-migration backup of an earlier migrate of `env` that did not finish, when `--resume`
/// goes on from it. Without `--resume`, such a migrate stops the run: a new pre-migration backup
/// would be of the half-migrated database, and would become the one `rollback` goes back to —
/// a dry run gets that refusal back to report (the run's is an error).
fn unfinished(
    session: &Session,
    env: &Environment,
    args: &MigrateArgs,
) -> Result<(Option<crate::registry::BackupRecord>, Option<Error>)> {
    let Some(i) =
        crate::unfinished::interrupted(&session.store, &env.name).filter(|i| i.event == "migrate")
    else {
        if args.resume {
            session
                .events()
                .warn("--resume: no unfinished migrate to go on from; migrating as usual");
        }
        return Ok((None, None));
    };
    // Without a backup taken before it, there is none a new one could displace: the run goes on
    // (claim_env has said what did not finish).
    let Some(id) = i.backup.clone() else {
        return Ok((None, None));
    };
    if !args.resume {
        let refusal = Error::aborted(format!(
            "the last migrate of `{}` ({} at {}) was not undone: the database may be half-migrated",
            env.name,
            i.outcome.unwrap_or("interrupted"),
            crate::unfinished::when(&i)
        ))
        .with_hint(format!(
            "`{}` restores the backup taken before it; or `{}` runs the migration on the database as it is, with {id} still the backup to go back to",
            cmd::command_line(session, &["rollback", &env.name, "--to", &id]),
            cmd::command_line(session, &["migrate", &env.name, "--resume"]),
        ));
        if args.dry_run.dry_run {
            session
                .events()
                .warn(&crate::hints::unfinished_migrate(&env.name, &i));
            return Ok((None, Some(refusal)));
        }
        return Err(refusal);
    }
    let reg = session.store.load()?;
    match reg.find(&id) {
        Some(record) if record.is_restorable() => Ok((Some(record.clone()), None)),
        _ => Err(Error::verification(format!(
            "{id}, the backup taken before the migrate that did not finish, is gone or not valid; nothing was run"
        ))
        .with_hint(format!(
            "check it with `faber-db verify {id}`, or restore another backup (`faber-db list {}`)",
            env.name
        ))),
    }
}

/// The error of a migrate of `env`, which has no command to run.
fn no_command(env: &Environment) -> Error {
    Error::config(format!(
        "environment `{}` has no migrate_command to run",
        env.name
    ))
    .with_hint(format!(
        "set environments.{}.migrate_command (e.g. \"npx prisma migrate deploy\")",
        env.name
    ))
}

/// The pre-flight of migrating `env`'s database `db`: a command to run, and — when the
/// migration restores a backup on failure (the one it takes first, `take_backup`, or, when
/// `resuming`, the one taken before the migrate that did not finish) — everything that restore
/// needs, checked now: the automatic restore must not be the first time anyone finds out it
/// cannot happen. Its failure, if any, with a hint naming what works.
fn preflight(
    session: &Session,
    env: &Environment,
    db: &dyn crate::provider::Provider,
    args: &MigrateArgs,
    take_backup: bool,
    resuming: bool,
    secrets: &[String],
) -> Result<(crate::preflight::Preflight, Option<Error>)> {
    use crate::preflight::{Needs, Sessions, Writes};
    let restores = (take_backup || resuming) && env.rollback_on_failure;
    let mut writes = Vec::new();
    let mut db_size = 0;
    if take_backup || restores {
        let format = backup::resolve_format(None, env, db)?;
        let compression = backup::resolve_compression(None, format, env);
        db_size = db.size_estimate()?;
        let bytes = crate::plan::space_needed(format, compression, db_size);
        let dir = session.store.dir().join(&env.name);
        if take_backup {
            writes.push(Writes {
                what: "the pre-migration backup".into(),
                dir: dir.clone(),
                bytes,
            });
        }
        if restores {
            // The restore after a failed migration takes its own safety backup of the
            // half-migrated database, about as large.
            writes.push(Writes {
                what: "the pre-rollback safety backup".into(),
                dir,
                bytes,
            });
        }
    }
    let sessions = if !restores {
        Sessions::Ignore
    } else if args.terminate_connections {
        Sessions::End {
            because: "--terminate-connections, if the migration fails".into(),
        }
    } else if env.terminate_connections_on_rollback {
        Sessions::End {
            because: "terminate_connections_on_rollback, if the migration fails".into(),
        }
    } else {
        Sessions::Refuse
    };
    let needs = Needs {
        // The automatic restore chooses its method as a restore does: a role that can use none
        // is found out now, not after a failed migration.
        method: (restores && db.kind() != crate::provider::ProviderKind::Sqlite)
            .then(|| crate::provider::method::shown(db.restore_privileges(), false)),
        migrate_command: Some(match env.migrate_command.as_deref() {
            Some(c) => Ok(crate::provider::blank_out(c, secrets)),
            None => Err(no_command(env)),
        }),
        // A resumed run's restore takes a pre-rollback backup first.
        backs_up: take_backup || restores,
        restore_tools: restores,
        writes,
        staging: restores.then_some(db_size),
        sessions,
    };
    let mut preflight = crate::preflight::run(db, needs)?;
    let failure = preflight.take_failure().map(|(check, e)| match check {
        "sessions" => {
            let mut again = vec!["migrate", env.name.as_str()];
            if args.no_backup {
                again.push("--no-backup");
            }
            if args.allow_destructive {
                again.push("--allow-destructive");
            }
            // Without it, the command named would be refused after the unfinished migrate.
            if resuming {
                again.push("--resume");
            }
            again.push("--terminate-connections");
            Error::new(
                Kind::Busy,
                format!(
                    "{}: with terminate_connections_on_rollback = false, the pre-migration backup \
                     could not be restored if the migration failed",
                    e.message().trim_end_matches("; nothing was changed")
                ),
            )
            .with_hint(format!(
                "let faber-db end them if the migration fails: `{}`, or set \
                 terminate_connections_on_rollback = true in [environments.{}] (the default) — \
                 or stop the application first; nothing was migrated",
                cmd::command_line(session, &again),
                env.name
            ))
        }
        "privileges" => {
            let mut err = Error::new(
                e.kind(),
                format!(
                    "the pre-migration backup could not be restored if the migration failed: {}",
                    e.message()
                ),
            );
            if let Some(h) = crate::hints::text(&e) {
                err = err.with_hint(h.trim_end_matches("; nothing was changed").to_string());
            }
            err.add_hint(format!(
                "or set rollback_on_failure = false in [environments.{}]; nothing was migrated",
                env.name
            ))
        }
        "space" => e.with_hint(format!(
            "free some space there, or remove expired backups with `{}`; nothing was migrated",
            cmd::command_line(session, &["cleanup", &env.name, "--expired"])
        )),
        _ => e,
    });
    Ok((preflight, failure))
}

/// What migrating an environment would do, read before anything is done.
pub struct Plan {
    /// The database exists (a first deploy may create it: then every migration is pending).
    pub exists: bool,
    /// The server's version, when it exists.
    pub version: Option<String>,
    pub before: Option<MigrationState>,
    /// Where the migration files are.
    pub dir: Option<std::path::PathBuf>,
    pub todo: Vec<Pending>,
    /// Pending migrations can be told (SQL files of a tool whose table lists them).
    pub listable: bool,
}

/// The plan of a migration of `env`: its state, the pending migrations and their destructive
/// statements. Reads the database; changes nothing.
pub fn plan(
    session: &Session,
    env: &Environment,
    db: &dyn crate::provider::Provider,
) -> Result<Plan> {
    let exists = db.exists()?;
    let (version, before) = if exists {
        let version = db.check_connection()?;
        let before = db
            .inspect(env.migrations_table.as_deref(), false)?
            .migrations;
        (Some(version), before)
    } else {
        (None, None)
    };
    let dir = pending::directory(
        session.config.migrations_directory.as_deref(),
        &session.config.root,
    );
    let files = match &dir {
        Some(d) => pending::files(d)?,
        None => Vec::new(),
    };
    let dialect = match db.kind() {
        ProviderKind::Postgres => Dialect::Postgres,
        ProviderKind::Mysql => Dialect::Mysql,
        ProviderKind::Sqlite => Dialect::Sqlite,
    };
    let todo = pending::pending(&files, before.as_ref());
    let todo = describe(session, &todo, dialect)?;
    // Pending migrations can be told only from SQL files of a tool whose table lists them:
    // Knex, Django or Alembic migrations (or goose's Go ones) are code.
    let code_tool = before
        .as_ref()
        .is_some_and(|m| matches!(m.tool.as_str(), "knex" | "django" | "alembic"));
    Ok(Plan {
        exists,
        version,
        before,
        dir,
        todo,
        listable: !files.is_empty() && !code_tool,
    })
}

/// The failure (exit 8) of pending migrations holding statements the config forbids
/// (`safety.destructive_operations.<kind>.allowed = false`), naming each and its reason.
pub fn blocked(session: &Session, todo: &[Pending]) -> Option<Error> {
    let found: Vec<String> = todo
        .iter()
        .flat_map(|p| {
            p.destructive.iter().filter_map(move |d| {
                let why = d.blocked.as_ref()?;
                Some(format!(
                    "{} ({} line {}) holds {}: {why}",
                    p.name, p.file, d.line, d.what
                ))
            })
        })
        .collect();
    if found.is_empty() {
        return None;
    }
    let keys: std::collections::BTreeSet<String> = todo
        .iter()
        .flat_map(|p| &p.destructive)
        .filter(|d| d.blocked.is_some())
        .map(|d| format!("safety.destructive_operations.{}.allowed = false", d.kind))
        .collect();
    Some(
        Error::aborted(format!(
            "the pending migrations hold statements the config does not allow, so nothing was run: {}",
            found.join("; ")
        ))
        .with_hint(format!(
            "{} in {}: faber-db will not run it, with --allow-destructive or --yes either; run it by hand if it is intended",
            keys.into_iter().collect::<Vec<_>>().join(", "),
            session.ctx.show(&session.config.file)
        )),
    )
}

/// The config's rule that requires the pre-migration backup of this run, if one does:
/// `safety.backup_enforcement.<env> = "required"`, a pending statement whose kind has
/// `require_backup` (or `backup.backup_before_destructive_ops`), or — when the pending
/// migrations cannot be read — any such rule.
pub fn backup_required(
    session: &Session,
    env: &Environment,
    todo: &[Pending],
    listable: bool,
) -> Option<String> {
    if env.backup_enforcement == Enforcement::Required {
        return Some(format!(
            "safety.backup_enforcement.{} = \"required\"",
            env.name
        ));
    }
    if let Some(by) = todo
        .iter()
        .flat_map(|p| &p.destructive)
        .find_map(|d| d.backup_required.clone())
    {
        return Some(by);
    }
    (!listable && session.config.safety.any_backup_required()).then(|| {
        "the config's require_backup rules (the pending migrations cannot be read, so may hold what they name)"
            .to_string()
    })
}

/// Reads each pending file and scans it for destructive statements.
fn describe(session: &Session, todo: &[MigrationFile], dialect: Dialect) -> Result<Vec<Pending>> {
    todo.iter()
        .map(|f| {
            let sql = std::fs::read_to_string(&f.path)
                .map_err(|e| Error::io(Kind::Config, "cannot read", &f.path, e))?;
            Ok(Pending {
                name: f.name.clone(),
                file: session.ctx.show(&f.path),
                destructive: sqlscan::destructive(sqlscan::up_section(&sql), dialect)
                    .into_iter()
                    .map(|f| Destructive::of(f, &session.config.safety))
                    .collect(),
            })
        })
        .collect()
}

fn show_state(ui: &Ui, what: &str, state: Option<&MigrationState>, to: To) {
    match state {
        Some(m) => ui.say(
            to,
            format!(
                "{what}: {} migrations ({}), last {}",
                m.applied_count,
                m.tool,
                m.last_migration.as_deref().unwrap_or("-")
            ),
        ),
        None => ui.say(to, format!("{what}: no migration table")),
    }
}

/// What a migration run will do once the pending migrations are known, as `--dry-run` and the
/// question on a protected environment show it.
#[derive(Debug, Serialize)]
pub struct Steps {
    /// The pre-migration backup taken first: its expected size and duration; none when
    /// `no_backup` says why.
    pub backup: Option<crate::plan::Estimate>,
    pub no_backup: Option<String>,
    /// The config's rule that makes the backup required, when one does.
    pub backup_required_by: Option<String>,
    /// The command run (secrets of the URL blanked out).
    pub command: String,
    /// The pre-migration backup is restored if the command fails.
    pub restore_on_failure: bool,
    /// The typed phrase asked for before destructive migrations run.
    pub phrase: bool,
    /// The environment's name asked for before the migration runs.
    pub confirmation: bool,
}

/// The [`Steps`] of migrating `env`, its backup estimated when one is taken; `resumed`, the
/// backup of the migrate that did not finish, when this run goes on from it (and takes none).
#[allow(clippy::too_many_arguments)]
fn steps(
    session: &Session,
    env: &Environment,
    db: &dyn crate::provider::Provider,
    args: &MigrateArgs,
    take_backup: bool,
    resumed: Option<&str>,
    required: Option<&str>,
    destructive: usize,
) -> Result<Steps> {
    let secrets = session.url(env).map(|u| u.secrets()).unwrap_or_default();
    let command = env.migrate_command.as_deref().unwrap_or_default();
    let restore_on_failure = (take_backup || resumed.is_some()) && env.rollback_on_failure;
    let take_backup = take_backup && resumed.is_none();
    let no_backup = if let Some(id) = resumed {
        Some(format!(
            "none (--resume): {id}, taken before the migrate that did not finish, stays the backup to go back to"
        ))
    } else if take_backup {
        None
    } else if args.no_backup {
        Some("none (--no-backup)".to_string())
    } else if env.backup_before_migrate || required.is_some() {
        Some("none: the database does not exist yet".to_string())
    } else {
        Some("none: backup_before_migrate is off".to_string())
    };
    Ok(Steps {
        backup: take_backup
            .then(|| backup::estimate(session, env, db))
            .transpose()?,
        no_backup,
        backup_required_by: required.map(str::to_string),
        command: crate::provider::blank_out(command, &secrets),
        restore_on_failure,
        phrase: env.protected && destructive > 0 && !args.allow_destructive,
        confirmation: env.protected && !session.ctx.yes,
    })
}

/// Prints the [`Steps`] of a migration under `Plan: migrate ENV`, where `to` says.
fn print_steps(ui: &Ui, env: &Environment, steps: &Steps, to: To) {
    ui.say(to, format!("Plan: migrate {}", ui.bold(&env.name)));
    let backup = match (&steps.backup, &steps.no_backup) {
        (Some(e), _) => format!(
            "a pre-migration backup first: about {} in about {} ({}){}",
            ui::size(e.size_bytes),
            ui::duration_ms(e.duration_ms),
            e.describe(),
            match &steps.backup_required_by {
                Some(by) => format!("; required by {by}"),
                None => String::new(),
            }
        ),
        (None, Some(why)) => why.clone(),
        (None, None) => "none".to_string(),
    };
    ui.say(to, format!("  {} {backup}", ui.bold("Backup:    ")));
    ui.say(
        to,
        format!("  {} {}", ui.bold("Command:   "), steps.command),
    );
    ui.say(
        to,
        format!(
            "  {} {}",
            ui.bold("On failure:"),
            if steps.restore_on_failure {
                "the pre-migration backup is restored (rollback_on_failure)"
            } else {
                "the database is left as the command leaves it"
            }
        ),
    );
    let confirm = match (steps.phrase, steps.confirmation) {
        (true, true) => format!(
            "yes: the environment is protected; {DESTRUCTIVE_PHRASE} is asked for, then its name"
        ),
        (true, false) => {
            format!("yes: the environment is protected; {DESTRUCTIVE_PHRASE} is asked for")
        }
        (false, true) => "yes: the environment is protected; its name is asked for".to_string(),
        (false, false) => "no".to_string(),
    };
    ui.say(to, format!("  {} {confirm}", ui.bold("Confirm:   ")));
}

/// Runs `command` with `sh -c` in the project root, with `DATABASE_URL` set to the environment's
/// URL. Its output goes to stderr (stdout stays clean for `--json`); the last lines are kept for
/// the report. On failure, what failed and those lines.
fn run_command(
    ui: &Ui,
    session: &Session,
    env: &Environment,
    command: &str,
    lock_fd: Option<std::os::fd::RawFd>,
) -> std::result::Result<Vec<String>, (String, Vec<String>)> {
    let url = session
        .raw_url(env)
        .map_err(|e| (e.one_line(), Vec::new()))?;
    // The command's output is shown and kept, but never the URL's password.
    let secrets = session.url(env).map(|u| u.secrets()).unwrap_or_default();
    let mut cmd = Command::new("sh");
    // A process group of its own: Ctrl-C at the terminal reaches faber-db alone, which stops the
    // whole group — the tool and whatever it started — itself.
    crate::child::tool(&mut cmd);
    // The migration's processes hold the environment's lock too: a restore cannot start while a
    // migration tool left running by a killed faber-db still writes.
    if let Some(fd) = lock_fd {
        crate::child::inherit_fd(&mut cmd, fd);
    }
    let child = cmd
        .arg("-c")
        .arg(command)
        .current_dir(&session.config.root)
        .env("DATABASE_URL", url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return Err((format!("cannot run sh: {e}"), Vec::new())),
    };
    let tail = Arc::new(Mutex::new(Vec::new()));
    let quiet = ui.quiet;
    let pump = |stream: Box<dyn Read + Send>| {
        let tail = Arc::clone(&tail);
        let secrets = secrets.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(|l| l.ok()) {
                let line = crate::provider::blank_out(&line, &secrets);
                if !quiet {
                    eprintln!("  | {line}");
                }
                let mut t = tail.lock().expect("not poisoned");
                t.push(line);
                if t.len() > TAIL_LINES {
                    t.remove(0);
                }
            }
        })
    };
    let out = pump(Box::new(child.stdout.take().expect("piped")));
    let err = pump(Box::new(child.stderr.take().expect("piped")));
    let status = wait_stopping(&mut child);
    let _ = out.join();
    let _ = err.join();
    let tail = tail.lock().expect("not poisoned").clone();
    match status {
        Ok(s) if s.success() => Ok(tail),
        Ok(_) if crate::interrupt::happened() => Err((
            format!(
                "`{command}` was stopped on {}",
                crate::interrupt::signal_name().unwrap_or("a signal")
            ),
            tail,
        )),
        Ok(s) => Err((
            match s.code() {
                Some(code) => format!("`{command}` exited with {code}"),
                None => format!("`{command}` was killed"),
            },
            tail,
        )),
        Err(e) => Err((format!("`{command}` did not finish: {e}"), tail)),
    }
}

/// How long the migrate command's processes have after SIGTERM before they are killed.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Waits for the migrate command. Once a signal came, stops its process group: SIGTERM (a
/// migration tool may end its transaction cleanly), then SIGKILL for whatever is left after
/// [`STOP_GRACE`] — so that no process of it writes to the database while the backup is
/// restored.
fn wait_stopping(child: &mut std::process::Child) -> std::io::Result<std::process::ExitStatus> {
    let group = child.id().cast_signed();
    // SAFETY: kill is a plain system call; the group is the command's own (child::tool).
    let signal_group = |sig| unsafe { libc::kill(-group, sig) == 0 };
    loop {
        if let Some(status) = child.try_wait()? {
            if !crate::interrupt::happened() {
                return Ok(status);
            }
            // Stopped, or ended just as the signal came: what it started goes too.
            signal_group(libc::SIGKILL);
            return Ok(status);
        }
        if crate::interrupt::happened() {
            signal_group(libc::SIGTERM);
            let started = std::time::Instant::now();
            let mut status = None;
            // Until the whole group is gone (the leader reaped, no member left), or the grace ends.
            while started.elapsed() < STOP_GRACE {
                if status.is_none() {
                    status = child.try_wait()?;
                }
                if status.is_some() && !signal_group(0) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            signal_group(libc::SIGKILL);
            return match status {
                Some(s) => Ok(s),
                None => child.wait(),
            };
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
