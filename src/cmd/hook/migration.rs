//! A migration the agent runs: the pre-migration backup, bounded in time, and the decision.

use super::{
    Answer, Command, Decision, Duration, Environment, Error, HookProtected, Instant, Invocation,
    Path, Session, context, migrate, record, redact, run_bounded, secrets, ui, which_env,
};

/// A migration: back up, then allow; ask (or deny) for a protected environment.
#[expect(clippy::too_many_lines, reason = "issue 19: to split along its steps")]
pub(super) fn on_migration(
    line: &str,
    inv: &Invocation,
    dir: &Path,
    shown: &str,
    only_migrations: bool,
) -> Option<Answer> {
    let ctx = context(dir, None, None)?;
    let session = match ctx.session() {
        Ok(s) => s,
        Err(e) => {
            return Some(Answer::new(
                Decision::Ask,
                format!(
                    "faber-db: `{}` looks like a migration, but the faber-db config cannot be read, so no backup was taken: {}",
                    redact::command(shown, &[]),
                    e.one_line()
                ),
            ));
        }
    };
    if !session.config.hook.enabled {
        return None;
    }
    let shown = redact::command(shown, &secrets(&session));
    let matched = format!("migration: {shown}");
    let env = match which_env(&session, inv, dir) {
        Ok(Some((env, _why))) => env,
        Ok(None) => {
            let answer = Answer::new(
                Decision::None,
                format!(
                    "faber-db: `{shown}` migrates a database that is none of the configured environments; no backup was taken"
                ),
            );
            return Some(record(&session, line, None, None, &matched, answer));
        }
        Err(e) => {
            let answer = Answer::new(
                Decision::Ask,
                format!(
                    "faber-db: cannot tell which environment `{shown}` migrates ({}), so no backup was taken; approve only if that is fine",
                    e.one_line()
                ),
            );
            return Some(record(&session, line, None, None, &matched, answer));
        }
    };
    let env = match session.env(&env) {
        Ok(e) => e.clone(),
        Err(e) => {
            let answer = Answer::new(
                Decision::Ask,
                format!("faber-db: `{shown}`: {}", e.one_line()),
            );
            return Some(record(&session, line, None, None, &matched, answer));
        }
    };
    let name = &env.name;
    if env.protected && session.config.hook.protected == HookProtected::Deny {
        let answer = Answer::new(
            Decision::Deny,
            format!(
                "faber-db: `{shown}` migrates protected environment `{name}`; migrations of it run with /faber-db:migrate {name} (`faber-db migrate {name}`), which backs up, shows the plan and asks"
            ),
        );
        return Some(record(&session, line, Some(name), None, &matched, answer));
    }
    // After a migrate that did not finish, a new backup would be of the half-migrated database
    // and would become the one `rollback` goes back to: none is taken, and the human decides.
    if let Some(i) = crate::unfinished::interrupted(&session.store, name)
        .filter(|i| i.event == "migrate" && i.backup.is_some())
    {
        let id = i.backup.as_deref().unwrap_or_default();
        let answer = Answer::new(
            Decision::Ask,
            format!(
                "faber-db: {}. No new backup was taken: it would be of the half-migrated database. Approve only to run `{shown}` on `{name}` as it is ({id} stays the way back); else `faber-db rollback {name} --to {id}` first.",
                crate::hints::unfinished_migrate(name, &i)
            ),
        );
        return Some(record(&session, line, Some(name), None, &matched, answer));
    }
    let (backup, plan) = match backup_and_plan(&session, &env, &shown) {
        Ok(Planned::Blocked(e)) => {
            let answer = Answer::new(
                Decision::Deny,
                format!(
                    "faber-db: `{shown}` must not run on `{name}`: {}\n{}",
                    e.message(),
                    crate::hints::text(&e).unwrap_or_default()
                ),
            );
            return Some(record(&session, line, Some(name), None, &matched, answer));
        }
        Ok(Planned::Go(backed, plan)) => (backed, plan),
        Err(e) => {
            let hint = crate::hints::text(&e)
                .map(|h| format!(" (hint: {h})"))
                .unwrap_or_default();
            let answer = Answer::new(
                Decision::Deny,
                format!(
                    "faber-db: the pre-migration backup of `{name}` failed, so `{shown}` must not run: {}{hint}",
                    e.one_line()
                ),
            );
            return Some(record(&session, line, Some(name), None, &matched, answer));
        }
    };
    let (taken, backup) = match &backup {
        Backed::Taken(id) => (
            format!(
                "faber-db took the pre-migration backup {id} of `{name}`; to undo the migration: faber-db restore {name} --from {id}"
            ),
            Some(id.clone()),
        ),
        Backed::Reused(id, age) => (
            format!(
                "faber-db counts {id}, taken {age} min ago with the migrations as they are now, as the pre-migration backup of `{name}` (a new one would take too long); writes since then are not in it; to undo the migration: faber-db restore {name} --from {id}"
            ),
            Some(id.clone()),
        ),
        Backed::None => (String::new(), None),
    };
    let answer = if env.protected {
        Answer::new(
            Decision::Ask,
            format!(
                "faber-db: `{shown}` migrates protected environment `{name}`.\n{}{plan}Approve only if this migration of `{name}` is intended.",
                if taken.is_empty() {
                    String::new()
                } else {
                    format!("{taken}.\n")
                }
            ),
        )
    } else if backup.is_some() && only_migrations {
        Answer::new(Decision::Allow, taken)
    } else {
        Answer::new(Decision::None, taken)
    };
    Some(record(
        &session,
        line,
        Some(name),
        backup.as_deref(),
        &matched,
        answer,
    ))
}

/// How long the hook may spend on a pre-migration backup (`FABER_HOOK_BACKUP_TIMEOUT`, in
/// seconds): under the 600 s Claude Code gives it (hooks/hooks.json), past which Claude Code
/// kills it and runs the migration without a backup.
pub(super) const BACKUP_BUDGET: Duration = Duration::from_secs(540);
pub(super) const BUDGET_VAR: &str = "FABER_HOOK_BACKUP_TIMEOUT";
/// A pre-migration backup this recent, of a database whose migrations have not changed since,
/// stands for one that would not fit in the budget.
pub(super) const REUSE_WITHIN_MINUTES: i64 = 60;

/// The pre-migration backup behind a decision.
pub(super) enum Backed {
    /// Taken now: its ID.
    Taken(String),
    /// Taken earlier (too big to take within the hook's time): its ID and age in minutes.
    Reused(String, i64),
    /// None wanted, or no database yet.
    None,
}

/// What [`backup_and_plan`] found.
pub(super) enum Planned {
    /// The backup behind the decision, and the plan in words.
    Go(Backed, String),
    /// Pending migrations hold statements the config forbids: nothing was backed up.
    Blocked(Error),
}

/// The pre-migration backup (when the environment wants one, or the config's safety rules want
/// one for what is pending, and its database exists) and, for a protected environment, the plan
/// in words. Pending migrations holding statements the config forbids are `Blocked` first. The backup runs as `faber-db backup` in a child
/// process, bounded in time: one that would not end before Claude Code gives up on the hook is
/// not started, one that runs over is stopped (it then removes what it wrote), and either is an
/// error — the migration must not run without it.
pub(super) fn backup_and_plan(
    session: &Session,
    env: &Environment,
    shown: &str,
) -> crate::Result<Planned> {
    let started = Instant::now();
    let (_, db) = session.provider(env)?;
    let safety = &session.config.safety;
    let ruled = !safety.destructive.is_empty() || safety.backup_before_destructive_ops;
    let planned = if env.protected || ruled {
        Some(migrate::plan(session, env, db.as_ref())?)
    } else {
        None
    };
    if let Some(e) = planned
        .as_ref()
        .and_then(|p| migrate::blocked(session, &p.todo))
    {
        return Ok(Planned::Blocked(e));
    }
    let required = planned
        .as_ref()
        .and_then(|p| migrate::backup_required(session, env, &p.todo, p.listable));
    let plan = match &planned {
        Some(p) if env.protected => plan_text(p),
        _ => String::new(),
    };
    if !(env.backup_before_migrate || required.is_some()) || !db.exists()? {
        return Ok(Planned::Go(Backed::None, plan));
    }
    let budget = std::env::var(BUDGET_VAR)
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(BACKUP_BUDGET, Duration::from_secs);
    // The plan is quick (it reads the database's size); its bound is the budget or 30 s.
    let dry = backup_child(
        session,
        env,
        &["--dry-run"],
        started + budget.max(Duration::from_secs(30)),
    )?;
    let expected =
        Duration::from_millis(dry["plan"]["estimate"]["duration_ms"].as_u64().unwrap_or(0));
    if started.elapsed() + expected > budget {
        if let Some(reused) = recent_pre_migration(session, env, db.as_ref())? {
            return Ok(Planned::Go(reused, plan));
        }
        let name = &env.name;
        return Err(Error::aborted(format!(
            "the pre-migration backup of `{name}` would take about {}, longer than the hook may wait ({})",
            ui::duration_ms(crate::human::millis(expected)),
            ui::duration_ms(crate::human::millis(budget)),
        ))
        .with_hint(format!(
            "take it first, in the background: `faber-db backup {name} --reason pre-migration --label pre-migration`; \
             within {REUSE_WITHIN_MINUTES} minutes, and while no migration runs in between, the hook counts it as the \
             pre-migration backup. Or migrate with `faber-db migrate {name}`, which backs up first"
        )));
    }
    // `=`: a command starting with `-` stays the option's value.
    let before = format!("--before-command={shown}");
    let taken = backup_child(
        session,
        env,
        &[
            "--yes",
            "--reason",
            "pre-migration",
            "--label",
            "pre-migration",
            &before,
        ],
        started + budget,
    )?;
    let id = taken["backup"]["id"]
        .as_str()
        .ok_or_else(|| Error::tool("the pre-migration backup reported no ID"))?;
    Ok(Planned::Go(Backed::Taken(id.to_string()), plan))
}

/// A valid `pre-migration` backup of `env` taken in the last hour, when the database's
/// migrations are still those it recorded: no migration ran since.
pub(super) fn recent_pre_migration(
    session: &Session,
    env: &Environment,
    db: &dyn crate::provider::Provider,
) -> crate::Result<Option<Backed>> {
    let registry = session.store.load()?;
    let newest = registry
        .backups
        .iter()
        .filter(|b| {
            b.environment == env.name
                && b.reason.as_deref() == Some("pre-migration")
                && b.status == crate::registry::Status::Valid
        })
        .max_by_key(|b| b.timestamp);
    let Some(newest) = newest else {
        return Ok(None);
    };
    let age = (session.ctx.now - newest.timestamp).num_minutes();
    if !(0..=REUSE_WITHIN_MINUTES).contains(&age) {
        return Ok(None);
    }
    let now = db
        .inspect(env.migrations_table.as_deref(), false)?
        .migrations;
    Ok((now == newest.migrations).then(|| Backed::Reused(newest.id.clone(), age)))
}

/// Runs `faber-db --json backup ENV ARGS` for the project and returns its JSON report; past
/// `deadline` it is stopped (SIGTERM: it removes what it wrote) and that is the error.
pub(super) fn backup_child(
    session: &Session,
    env: &Environment,
    args: &[&str],
    deadline: Instant,
) -> crate::Result<serde_json::Value> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::tool("cannot find the faber-db binary").caused_by(e))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--json")
        .arg("--root")
        .arg(&session.config.root)
        .arg("--config")
        .arg(&session.config.file)
        .arg("backup")
        .arg(&env.name)
        .args(args)
        .current_dir(&session.config.root);
    let run = run_bounded(cmd, deadline)
        .map_err(|e| Error::tool("cannot start faber-db backup").caused_by(e))?;
    let (out, overran) = (run.stdout, run.overran);
    if overran {
        return Err(Error::aborted(format!(
            "the pre-migration backup of `{}` took longer than the hook may wait, and was stopped",
            env.name
        ))
        .with_hint(format!(
            "take it first, in the background: `faber-db backup {} --reason pre-migration --label pre-migration`; then run the migration again",
            env.name
        )));
    }
    let doc: serde_json::Value = serde_json::from_str(&out)
        .map_err(|e| Error::tool("faber-db backup gave no report").caused_by(e))?;
    if doc["ok"] == true {
        return Ok(doc);
    }
    let error = &doc["error"];
    let mut e = Error::tool(
        error["message"]
            .as_str()
            .unwrap_or("the backup failed")
            .to_string(),
    );
    if let Some(h) = error["hint"].as_str() {
        e = e.with_hint(h.to_string());
    }
    Err(e)
}

pub(super) fn plan_text(plan: &migrate::Plan) -> String {
    let mut out = String::new();
    if !plan.exists {
        out.push_str("Its database does not exist yet: every migration is pending.\n");
    }
    if let Some(m) = &plan.before {
        out.push_str(&format!(
            "Applied: {} migrations ({}), last {}.\n",
            m.applied_count,
            m.tool,
            m.last_migration.as_deref().unwrap_or("-")
        ));
    }
    if !plan.listable {
        out.push_str(
            "Pending migrations cannot be listed (no SQL migration files faber-db can read).\n",
        );
    } else if plan.todo.is_empty() {
        out.push_str("No pending migrations in the migration files.\n");
    } else {
        out.push_str(&format!("Pending: {}\n", plan.todo.len()));
        for p in &plan.todo {
            out.push_str(&format!("  {}\n", p.name));
            for d in &p.destructive {
                out.push_str(&format!(
                    "    DESTRUCTIVE {} ({} line {}): {}\n",
                    d.what, p.file, d.line, d.statement
                ));
            }
        }
    }
    out
}
