//! `faber-db … --yes` from the agent on a protected environment: the human approves.

use super::{
    Answer, Cli, Command, DEFAULT_ENV_VARS, DRY_RUN_TIMEOUT, Decision, Instant, Invocation,
    MAX_PLAN, Parser, Path, Sub, context, guard, record, run_bounded, shell,
};

/// `faber-db … --yes` changing a protected environment: ask, with the dry run's plan.
pub(super) fn on_faber(line: &str, inv: &Invocation, dir: &Path) -> Option<Answer> {
    let args = guard::faber_args(inv)?;
    let bypass = DEFAULT_YES_VARS.iter().any(|v| inv.var(v).is_some());
    if !guard::says_yes(args) && !bypass {
        return None;
    }
    let mut unknown = false;
    let expanded: Vec<String> = args
        .iter()
        .map(|w| {
            shell::expand(w, &|n| {
                inv.var(n)
                    .map(str::to_string)
                    .or_else(|| std::env::var(n).ok())
            })
            .unwrap_or_else(|| {
                unknown = true;
                shell::display(w)
            })
        })
        .collect();
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
    let env_of = |given: &Option<String>| -> Option<String> {
        given.clone().or_else(|| {
            DEFAULT_ENV_VARS
                .iter()
                .find_map(|v| inv.var(v).map(str::to_string))
                .or_else(|| session.default_env().ok().map(|(n, _)| n))
        })
    };
    let protected = |name: &str| {
        session
            .config
            .environments
            .get(name)
            .is_none_or(|e| e.protected)
    };
    let (action, env, plan_args) = match &cli.command {
        Sub::Backup(a) if !a.list && !a.dry_run.dry_run => ("backup", env_of(&a.env), true),
        Sub::Restore(a) if !a.dry_run.dry_run => ("restore", env_of(&a.env), true),
        Sub::Rollback(a) if !a.dry_run.dry_run => ("rollback", env_of(&a.env), true),
        Sub::Migrate(a) if !a.dry_run.dry_run => ("migrate", env_of(&a.env), true),
        Sub::Cleanup(a) if !a.dry_run.dry_run => ("cleanup", a.env.clone(), true),
        Sub::Delete(a) => {
            let owner = session
                .store
                .load()
                .ok()
                .and_then(|r| r.find(&a.id).map(|b| b.environment.clone()));
            ("delete", owner, false)
        }
        _ => return None,
    };
    let at_stake = match (&cli.command, &env) {
        (Sub::Cleanup(_), None) => session.config.environments.values().any(|e| e.protected),
        (_, Some(name)) => protected(name),
        (_, None) => true,
    };
    if !at_stake {
        return None;
    }
    let target = env.as_deref().unwrap_or("(every environment)");
    let plan = if plan_args {
        dry_run(&expanded, inv, dir)
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

/// Variables that would answer faber-db's confirmations, were any honoured.
pub(super) const DEFAULT_YES_VARS: [&str; 2] = ["FABER_YES", "FABER_DB_YES"];

/// The output of the command run again with `--dry-run` (changes nothing), shortened.
pub(super) fn dry_run(args: &[String], inv: &Invocation, dir: &Path) -> String {
    let Ok(exe) = std::env::current_exe() else {
        return "(no plan: cannot find the faber-db binary)".to_string();
    };
    let mut cmd = Command::new(exe);
    cmd.args(
        args.iter()
            .filter(|a| !guard::says_yes(std::slice::from_ref(a))),
    )
    .arg("--dry-run")
    .current_dir(dir)
    .env("NO_COLOR", "1");
    for (k, v) in &inv.vars {
        if let Some(v) = shell::expand(v, &|n| std::env::var(n).ok()) {
            cmd.env(k, v);
        }
    }
    let Ok(run) = run_bounded(cmd, Instant::now() + DRY_RUN_TIMEOUT) else {
        return "(no plan: the dry run did not start)".to_string();
    };
    let text = format!("{}{}", run.stderr, run.stdout);
    let text = text.trim();
    if text.chars().count() > MAX_PLAN {
        format!("{}…", text.chars().take(MAX_PLAN).collect::<String>())
    } else {
        text.to_string()
    }
}
