//! A migration the agent runs: the pre-migration backup, bounded in time, and the decision.

use super::{
    Answer, Decision, Environment, HookProtected, Invocation, Path, Session, context, engine,
    record, redact,
};
use crate::ui;
use engine::{Backed, Planned};

/// A migration: back up, then allow; ask (or deny) for a protected environment.
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
    let shown = redact::command(shown, &engine::secrets(&session));
    let matched = format!("migration: {shown}");
    let env = match environment(&session, inv, dir, &shown) {
        Ok(env) => env,
        Err(answer) => return Some(record(&session, line, None, None, &matched, answer)),
    };
    let name = Some(env.name.as_str());
    if let Some(answer) = refusal(&session, &env, &shown) {
        return Some(record(&session, line, name, None, &matched, answer));
    }
    let (backed, plan) = match backed_up(&session, &env, &shown) {
        Ok(go) => go,
        Err(answer) => return Some(record(&session, line, name, None, &matched, answer)),
    };
    let backup = backed.id();
    let answer = verdict(&env, &shown, &backed, &plan, only_migrations);
    Some(record(&session, line, name, backup, &matched, answer))
}

/// The environment the migration acts on, or the answer when it cannot be told or is none.
fn environment(
    session: &Session,
    inv: &Invocation,
    dir: &Path,
    shown: &str,
) -> Result<Environment, Answer> {
    let env = match engine::which_env(session, inv, dir) {
        Ok(Some((env, _why))) => env,
        Ok(None) => {
            return Err(Answer::new(
                Decision::None,
                format!(
                    "faber-db: `{shown}` migrates a database that is none of the configured environments; no backup was taken"
                ),
            ));
        }
        Err(e) => {
            return Err(Answer::new(
                Decision::Ask,
                format!(
                    "faber-db: cannot tell which environment `{shown}` migrates ({}), so no backup was taken; approve only if that is fine",
                    e.one_line()
                ),
            ));
        }
    };
    match session.env(&env) {
        Ok(e) => Ok(e.clone()),
        Err(e) => Err(Answer::new(
            Decision::Ask,
            format!("faber-db: `{shown}`: {}", e.one_line()),
        )),
    }
}

/// The answer when the migration must not go ahead with a backup: a protected environment the
/// config denies to the hook, or one a migrate left unfinished.
fn refusal(session: &Session, env: &Environment, shown: &str) -> Option<Answer> {
    let name = &env.name;
    if env.protected && session.config.hook.protected == HookProtected::Deny {
        return Some(Answer::new(
            Decision::Deny,
            format!(
                "faber-db: `{shown}` migrates protected environment `{name}`; migrations of it run with /faber-db:migrate {name} (`faber-db migrate {name}`), which backs up, shows the plan and asks"
            ),
        ));
    }
    // After a migrate that did not finish, a new backup would be of the half-migrated database
    // and would become the one `rollback` goes back to: none is taken, and the human decides.
    let i = crate::unfinished::interrupted(&session.store, name)
        .filter(|i| i.event == "migrate" && i.backup.is_some())?;
    let id = i.backup.as_deref().unwrap_or_default();
    Some(Answer::new(
        Decision::Ask,
        format!(
            "faber-db: {}. No new backup was taken: it would be of the half-migrated database. Approve only to run `{shown}` on `{name}` as it is ({id} stays the way back); else `faber-db rollback {name} --to {id}` first.",
            crate::hints::unfinished_migrate(name, &i)
        ),
    ))
}

/// The pre-migration backup and the plan in words, or the denial when the migration must not
/// run: its pending migrations are forbidden, or the backup failed.
fn backed_up(
    session: &Session,
    env: &Environment,
    shown: &str,
) -> Result<(Backed, String), Answer> {
    let name = &env.name;
    match engine::prepare_migration(session, env, shown) {
        Ok(Planned::Blocked(e)) => Err(Answer::new(
            Decision::Deny,
            format!(
                "faber-db: `{shown}` must not run on `{name}`: {}\n{}",
                e.message(),
                crate::hints::text(&e).unwrap_or_default()
            ),
        )),
        Ok(Planned::Go(backed, outlook)) => Ok((
            backed,
            outlook.map_or_else(String::new, |o| ui::migrate::outlook_text(&o)),
        )),
        Err(e) => {
            let hint = crate::hints::text(&e)
                .map(|h| format!(" (hint: {h})"))
                .unwrap_or_default();
            Err(Answer::new(
                Decision::Deny,
                format!(
                    "faber-db: the pre-migration backup of `{name}` failed, so `{shown}` must not run: {}{hint}",
                    e.one_line()
                ),
            ))
        }
    }
}

/// The answer once backed up: ask for a protected environment, with the plan; allow a line of
/// migrations only, backed up; else no decision, saying the backup.
fn verdict(
    env: &Environment,
    shown: &str,
    backed: &Backed,
    plan: &str,
    only_migrations: bool,
) -> Answer {
    let name = &env.name;
    let taken = match backed {
        Backed::Taken(id) => format!(
            "faber-db took the pre-migration backup {id} of `{name}`; to undo the migration: faber-db restore {name} --from {id}"
        ),
        Backed::Reused(id, age) => format!(
            "faber-db counts {id}, taken {age} min ago with the migrations as they are now, as the pre-migration backup of `{name}` (a new one would take too long); writes since then are not in it; to undo the migration: faber-db restore {name} --from {id}"
        ),
        Backed::None => String::new(),
    };
    if env.protected {
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
    } else if backed.id().is_some() && only_migrations {
        Answer::new(Decision::Allow, taken)
    } else {
        Answer::new(Decision::None, taken)
    }
}
