//! `faber-db … --yes` from the agent on a protected environment: the human approves.

use super::{Answer, Cli, Decision, Invocation, Parser, Path, Sub, context, engine, guard, record};
use engine::NoPlan;

/// `faber-db … --yes` changing a protected environment: ask, with the dry run's plan.
pub(super) fn on_faber(line: &str, inv: &Invocation, dir: &Path) -> Option<Answer> {
    let args = guard::faber_args(inv)?;
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
    let session = ctx.session_unchanged().ok()?;
    if !session.config.hook.enabled {
        return None;
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
    let answer = Answer::new(
        Decision::Ask,
        format!(
            "faber-db: the agent gave --yes to `faber-db {action}` on protected environment `{target}`: only you can approve that. What it would do:\n{plan}"
        ),
    );
    Some(record(
        &session,
        line,
        env.as_deref(),
        None,
        "faber-db --yes",
        answer,
    ))
}
