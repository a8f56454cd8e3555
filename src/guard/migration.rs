//! The migration commands the hook knows by itself, and the ones the config names.

use super::wrappers::skip_options;
use super::{Invocation, basename, invocations, tool_words};
use crate::shell;

/// A migration command the hook knows by itself: the tool's name (`prisma migrate deploy`).
pub fn builtin_migration(inv: &Invocation) -> Option<String> {
    let words = tool_words(&inv.words);
    let program = basename(words.first()?);
    let args: Vec<&str> = words[1..]
        .iter()
        .map(String::as_str)
        .filter(|w| !w.starts_with('-'))
        .collect();
    let first = args.first().copied();
    let second = args.get(1).copied();
    let found = match program {
        "prisma" => matches!(
            (first, second),
            (Some("migrate"), Some("deploy" | "dev" | "reset")) | (Some("db"), Some("push"))
        ),
        "sqlx" => matches!((first, second), (Some("migrate"), Some("run" | "revert"))),
        "diesel" => matches!(
            (first, second),
            (Some("migration"), Some("run" | "redo" | "revert"))
                | (Some("database"), Some("reset"))
        ),
        "rails" | "rake" => args.iter().any(|a| {
            (a.starts_with("db:migrate") && !is_read_only_task(a))
                || matches!(
                    *a,
                    "db:rollback" | "db:reset" | "db:drop" | "db:schema:load" | "db:setup"
                )
        }),
        "alembic" => alembic_verb(&words[1..]).is_some_and(|v| v == "upgrade" || v == "downgrade"),
        "manage.py" | "django-admin" => first == Some("migrate") && !django_dry(words),
        "python" | "python3" => {
            first.is_some_and(|f| basename(f) == "manage.py")
                && second == Some("migrate")
                && !django_dry(words)
        }
        "knex" => args.iter().any(|a| {
            matches!(
                *a,
                "migrate:latest" | "migrate:up" | "migrate:down" | "migrate:rollback"
            )
        }),
        "flyway" => args
            .iter()
            .any(|a| matches!(*a, "migrate" | "clean" | "undo")),
        "dbmate" => skip_options(
            &words[1..],
            &[
                "--url",
                "-u",
                "--env",
                "-e",
                "--env-file",
                "--migrations-dir",
                "-d",
                "--schema-file",
                "-s",
                "--migrations-table",
            ],
        )
        .first()
        .is_some_and(|f| matches!(f.as_str(), "up" | "migrate" | "rollback" | "down" | "drop")),
        "migrate" => golang_migrate_verb(&words[1..]).is_some(),
        "npm" | "pnpm" | "yarn" | "bun" => package_script(words).is_some_and(is_migrate_script),
        _ => false,
    };
    found.then(|| {
        words
            .iter()
            .map(|w| shell::display(w))
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// `alembic [-c FILE] [-n NAME] [-x ARG] upgrade head`: its verb.
fn alembic_verb(args: &[String]) -> Option<&str> {
    skip_options(args, &["-c", "--config", "-n", "--name", "-x"])
        .first()
        .map(String::as_str)
}

/// golang-migrate's `migrate -path DIR -database URL up [N]`: its verb, when it changes the
/// database.
fn golang_migrate_verb(args: &[String]) -> Option<&str> {
    let with_value = [
        "-path",
        "--path",
        "-database",
        "--database",
        "-source",
        "--source",
        "-lock-timeout",
        "--lock-timeout",
        "-prefetch",
        "--prefetch",
    ];
    skip_options(args, &with_value)
        .first()
        .map(String::as_str)
        .filter(|v| matches!(*v, "up" | "down" | "goto" | "drop"))
}

/// The package script `npm run x` / `pnpm x` / `yarn x` / `bun run x` runs.
fn package_script(words: &[String]) -> Option<&str> {
    let program = basename(words.first()?);
    let rest: Vec<&str> = words[1..]
        .iter()
        .map(String::as_str)
        .filter(|w| !w.starts_with('-'))
        .collect();
    match (program, rest.first().copied()) {
        (_, Some("run" | "run-script")) => rest.get(1).copied(),
        ("pnpm" | "yarn", Some(script)) => Some(script),
        _ => None,
    }
}

fn is_migrate_script(script: &str) -> bool {
    (script.starts_with("migrate") || script.contains(":migrate") || script.contains("migrate:"))
        && !is_read_only_task(script)
}

/// A migration task that only reads or writes files: `migrate:status`, `db:migrate:status`,
/// `migrate:create`, `migrate-make`…
fn is_read_only_task(task: &str) -> bool {
    let last = task.rsplit([':', '-', '_']).next().unwrap_or(task);
    matches!(
        last,
        "status"
            | "info"
            | "list"
            | "ls"
            | "check"
            | "diff"
            | "validate"
            | "plan"
            | "help"
            | "create"
            | "make"
            | "new"
            | "generate"
            | "gen"
    )
}

/// `manage.py migrate --plan` / `--check`: shows, changes nothing.
fn django_dry(words: &[String]) -> bool {
    words.iter().any(|w| w == "--plan" || w == "--check")
}

/// Whether `inv` runs `pattern`: a command whose words start with the pattern's words, where a
/// word ending in `*` matches any word starting with what comes before it, and `*` any word.
/// Wrappers are taken off both (`npx`, `env`, …); the programs are compared by file name.
pub fn matches_pattern(inv: &Invocation, pattern: &str) -> bool {
    starts_with(inv, pattern, true)
}

/// Whether `inv` runs the configured `migrate_command` (its first command that is not a `cd`).
pub fn matches_command(inv: &Invocation, configured: &str) -> bool {
    starts_with(inv, configured, false)
}

fn starts_with(inv: &Invocation, pattern: &str, globs: bool) -> bool {
    let Some(pattern) = invocations(pattern)
        .into_iter()
        .find(|p| !p.words.is_empty())
    else {
        return false;
    };
    let want = tool_words(&pattern.words);
    let have = tool_words(&inv.words);
    !want.is_empty()
        && have.len() >= want.len()
        && want.iter().zip(have).enumerate().all(|(i, (w, h))| {
            let (w, h) = (shell::display(w), shell::display(h));
            match w.strip_suffix('*') {
                Some("") if globs => true,
                Some(prefix) if globs => h.starts_with(prefix),
                _ if i == 0 => basename(&w) == basename(&h),
                _ => w == h,
            }
        })
}
