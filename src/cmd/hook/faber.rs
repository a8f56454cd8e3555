//! `faber-db … --yes` from the agent on a protected environment: the human approves, and the
//! command they approve carries a one-time approval for exactly that command
//! ([`crate::approval`]).

use super::{
    Answer, Asking, Cli, Decision, Invocation, Parser, Path, Sub, context, engine, guard, record,
};
use crate::approval::{APPROVAL_VAR, Approvals, BackupRef, Binding};
use crate::session::Session;
use engine::NoPlan;

/// An issued approval, and where it waits.
pub(super) struct Issued {
    id: String,
    store: Approvals,
}

/// `faber-db … --yes` changing a protected environment: ask, with the dry run's plan, and an
/// approval the command is rewritten to carry when a human sees the question.
pub(super) fn on_faber(
    line: &str,
    inv: &Invocation,
    dir: &Path,
    asking: &Asking<'_>,
) -> Option<Answer> {
    let args = guard::faber_args(inv)?;
    if let Some(answer) = runs_the_hook(inv, args) {
        return Some(answer);
    }
    if !engine::says_yes(inv, args) {
        return None;
    }
    let (expanded, unknown) = engine::expanded(inv, args);
    let cli = match Cli::try_parse_from(
        std::iter::once("faber-db".to_string()).chain(expanded.clone()),
    ) {
        Ok(cli) => cli,
        // Refused by the parser, it will not run; unless a value only running it would tell
        // hides what it is.
        Err(_) if !unknown => return None,
        Err(_) => {
            return Some(Answer::new(
                Decision::Ask,
                "faber-db: an agent gave --yes to a faber-db command whose arguments cannot be told before it runs; approve only if you know what it changes".to_string(),
            ));
        }
    };
    let ctx = context(dir, cli.global.config.clone(), cli.global.root.clone())?;
    let mut session = ctx.session_unchanged().ok()?;
    if !session.config.hook.enabled {
        return None;
    }
    // The database URLs as the command will see them: an environment pointed at a protected
    // one's database is protected too, as faber-db will hold it in the agent's shell.
    for (k, v) in engine::command_vars(inv) {
        session.vars.set(k, &v);
    }
    session.protect_shared_databases();
    let store = Approvals::new(session.store.dir());
    // An approval the agent wrote into a command: an approved command never comes back
    // through the hook, so it was seen by the agent; it is spent now.
    if let Some(id) = inv.var(APPROVAL_VAR) {
        store.withdraw(id);
    }
    let env_of = |given: &Option<String>| engine::env_of(&session, inv, given.as_deref());
    let (action, env, plan_args) = match &cli.command {
        Sub::Backup(a) if !a.list && !a.dry_run.dry_run => ("backup", env_of(&a.env), true),
        Sub::Restore(a) if !a.dry_run.dry_run => ("restore", env_of(&a.env), true),
        Sub::Rollback(a) if !a.dry_run.dry_run => ("rollback", env_of(&a.env), true),
        Sub::Migrate(a) if !a.dry_run.dry_run => ("migrate", env_of(&a.env), true),
        Sub::Cleanup(a) if !a.dry_run.dry_run => ("cleanup", a.env.clone(), true),
        Sub::Delete(a) => ("delete", engine::owner_of(&session, &a.id), false),
        _ => return None,
    };
    let every = matches!(cli.command, Sub::Cleanup(_));
    if !engine::at_stake(&session, env.as_deref(), every) {
        return None;
    }
    let target = env.as_deref().unwrap_or("(every environment)");
    let plan = if plan_args {
        match engine::dry_run(&expanded, inv, dir) {
            Ok(plan) => plan,
            Err(NoPlan::NoBinary) => "(no plan: cannot find the faber-db binary)".to_string(),
            Err(NoPlan::DidNotStart) => "(no plan: the dry run did not start)".to_string(),
        }
    } else {
        format!(
            "It removes backup {} for good.",
            args.last().map_or("", |a| a.as_str())
        )
    };
    let mut answer = Answer::new(
        Decision::Ask,
        format!(
            "faber-db: the agent gave --yes to `faber-db {action}` on protected environment `{target}`: only you can approve that. What it would do:\n{plan}"
        ),
    );
    if asking.human
        && !unknown
        && !inv.more_args
        && inv.approvable()
        && inv.var(APPROVAL_VAR).is_none()
    {
        let binding = binding_of(&session, &cli.command, action, env.as_deref(), expanded);
        answer.approval = store
            .issue(binding, asking.session, session.ctx.now)
            .ok()
            .map(|id| Issued { id, store });
    }
    Some(record(
        &session,
        line,
        env.as_deref(),
        None,
        "faber-db --yes",
        answer,
    ))
}

/// What the command changes, as faber-db will see it when it runs (`approval::gate`): its
/// arguments, the environment it names, that environment's database and the backup it loads.
fn binding_of(
    session: &Session,
    command: &Sub,
    action: &str,
    scope: Option<&str>,
    args: Vec<String>,
) -> Binding {
    let env = scope.and_then(|name| session.config.environments.get(name));
    let chosen = env.and_then(|env| match command {
        Sub::Restore(a) => crate::ops::restore::choose(session, env, &a.from).ok(),
        Sub::Rollback(a) => {
            let target =
                crate::ops::rollback::Target::from_flags(a.to.clone(), a.to_migration.clone());
            crate::ops::rollback::pick(session, env, &target).ok()
        }
        _ => None,
    });
    Binding {
        args,
        subcommand: action.to_string(),
        environment: scope.map(str::to_string),
        database: env.and_then(|e| crate::approval::database_of(session, e)),
        backup: chosen.map(|(b, _)| BackupRef {
            id: b.id,
            sha256: b.sha256,
        }),
    }
}

/// `faber-db hook …` run by the agent: the hook is Claude Code's to run. Run from the agent's
/// shell, it would issue the agent an approval of its own asking.
fn runs_the_hook(inv: &Invocation, args: &[String]) -> Option<Answer> {
    let (expanded, _) = engine::expanded(inv, args);
    let cli = Cli::try_parse_from(std::iter::once("faber-db".to_string()).chain(expanded)).ok()?;
    match &cli.command {
        Sub::Hook(_) => Some(Answer::new(
            Decision::Deny,
            "faber-db: `faber-db hook` is Claude Code's to run, before the agent's commands; the agent does not run it (it would answer questions meant for the user)",
        )),
        // `init --force` writes a new config over the project's, protection and all.
        Sub::Init(a) if a.force => Some(Answer::new(
            Decision::Ask,
            "faber-db: `faber-db init --force` replaces the project's faber-db config with a new one: every environment's protection, backups before migrations and hook settings go back to the defaults; approve only if that is meant",
        )),
        _ => None,
    }
}

/// The agent's tool input with its command rewritten to carry the approval one answer issued,
/// when the hook asks (`strongest`) and exactly one approval was issued: the human is asked
/// about, and approves, that command. Every other field of the input is kept. The approvals
/// not carried are withdrawn: no one will see them.
pub(super) fn carrying_approval(
    answers: &[Answer],
    strongest: Decision,
    line: &str,
    input: &serde_json::Value,
) -> Option<serde_json::Value> {
    let issued: Vec<&Issued> = answers.iter().filter_map(|a| a.approval.as_ref()).collect();
    if strongest != Decision::Ask || issued.len() != 1 {
        for i in issued {
            i.store.withdraw(&i.id);
        }
        return None;
    }
    let id = &issued[0].id;
    // `faber-db …` alone, its variables first, takes the variable as a prefix; any other line
    // (a wrapper or builtin such as `eval`, which would not pass it on, a list, a pipeline)
    // exports it first.
    let trimmed = line.trim_start();
    let program = trimmed
        .split_whitespace()
        .find(|w| !w.contains('=') || w.starts_with('-'))
        .unwrap_or_default();
    let single = guard::invocations(line).len() == 1
        && guard::basename(program) == "faber-db"
        && !trimmed.contains(['\n', ';', '&', '|', '(', ')', '{', '}', '`', '$', '\\']);
    let command = if single {
        format!("{APPROVAL_VAR}={id} {trimmed}")
    } else {
        format!("export {APPROVAL_VAR}={id}; {line}")
    };
    let mut updated = input.clone();
    updated["command"] = serde_json::Value::String(command);
    Some(updated)
}
