//! The hook's engine driven as library calls on the test kit's project: an SQLite database,
//! a fixed clock, and no binary.

use chrono::Duration;

use super::*;
use crate::ops::testkit::{Project, at, backed_up};

/// `dev` as in the test kit, a protected `production`, and DROP TABLE forbidden.
const GUARDED: &str = r#"
[environments.dev]
url = "sqlite:db/dev.sqlite3"

[environments.production]
url = "sqlite:db/prod.sqlite3"
protected = true

[safety.destructive_operations.drop_table]
allowed = false
block_reason = "tables stay"
"#;

fn invocation(line: &str) -> Invocation {
    guard::invocations(line).remove(0)
}

#[test]
fn the_environment_is_the_one_the_command_names_or_points_at() {
    let p = Project::new();
    let ctx = p.ctx(at());
    let session = ctx.session_unchanged().unwrap();
    let which = |line: &str| which_env(&session, &invocation(line), p.root());
    assert_eq!(
        which("DATABASE_URL=sqlite:db/prod.sqlite3 sqlx migrate run").unwrap(),
        Some(("production".to_string(), "its database URL"))
    );
    assert_eq!(
        which("DATABASE_URL=sqlite:./db/../db/dev.sqlite3 sqlx migrate run").unwrap(),
        Some(("dev".to_string(), "its database URL"))
    );
    assert_eq!(
        which("FABER_ENV=dev npx prisma migrate deploy").unwrap(),
        Some(("dev".to_string(), "named by the command"))
    );
    assert_eq!(
        which("npx knex migrate:latest --env production").unwrap(),
        Some(("production".to_string(), "named by the command"))
    );
    // A database that is none of the environments'.
    assert_eq!(
        which("DATABASE_URL=sqlite:db/other.sqlite3 sqlx migrate run").unwrap(),
        None
    );
    // A URL from a variable the project does not know.
    let untold = which("DATABASE_URL=$ELSEWHERE sqlx migrate run").unwrap_err();
    assert!(
        untold.message().contains("cannot be told before it runs"),
        "{untold:?}"
    );
}

#[test]
fn sql_the_config_forbids_is_forbidden_at_any_environment() {
    let p = Project::with_config(GUARDED);
    let ctx = p.ctx(at());
    let session = ctx.session_unchanged().unwrap();
    let dir = p.root();
    let inv = invocation("sqlite3 db/dev.sqlite3 'DROP TABLE notes'");
    let sent = sql_sent(&session, &inv, dir).unwrap();
    let Some(Verdict::Forbidden { to, blocked }) = judge_sql(&session, &sent, dir) else {
        panic!("not forbidden");
    };
    assert!(
        matches!(to, Reached::Database(e) if e.name == "dev"),
        "{to:?}"
    );
    assert_eq!(blocked.len(), 1);
    assert_eq!(blocked[0].0.what, "DROP TABLE");
    assert_eq!(blocked[0].1, "tables stay");
}

#[test]
fn destructive_sql_is_judged_by_the_environment_it_reaches() {
    let p = Project::with_config(GUARDED);
    let ctx = p.ctx(at());
    let session = ctx.session_unchanged().unwrap();
    let dir = p.root();
    let judge = |line: &str| {
        let sent = sql_sent(&session, &invocation(line), dir)?;
        Some(match judge_sql(&session, &sent, dir)? {
            Verdict::Forbidden { to, .. } => format!("forbidden {:?}", to.env().map(|e| &e.name)),
            Verdict::Destructive(env) => format!("destructive {:?}", env.map(|e| &e.name)),
        })
    };
    // Nothing destructive: nothing to judge.
    assert_eq!(judge("sqlite3 db/prod.sqlite3 'SELECT 1'"), None);
    // Allowed, but destructive, on the protected environment: the human is asked.
    assert_eq!(
        judge("sqlite3 db/prod.sqlite3 'DELETE FROM notes'").as_deref(),
        Some(r#"destructive Some("production")"#)
    );
    // The same on an environment that is not protected: no decision.
    assert_eq!(judge("sqlite3 db/dev.sqlite3 'DELETE FROM notes'"), None);
    // Forbidden wherever it goes among the environments, but not elsewhere.
    assert_eq!(
        judge("sqlite3 db/prod.sqlite3 'DROP TABLE notes'").as_deref(),
        Some(r#"forbidden Some("production")"#)
    );
    assert_eq!(judge("sqlite3 /tmp/scratch.db 'DROP TABLE notes'"), None);
}

#[test]
fn a_line_is_scanned_for_what_concerns_a_database() {
    let p = Project::new();
    let kinds = |line: &str| {
        let invocations = guard::invocations(line);
        let scan = scan(line, &invocations, p.root());
        let what: Vec<What> = scan.found.into_iter().map(|f| f.what).collect();
        (what, scan.only_migrations)
    };
    assert_eq!(
        kinds("npx prisma migrate deploy"),
        (vec![What::Migration("prisma migrate deploy".into())], true)
    );
    // A file written beside the migration: approving the line would approve that too.
    assert!(!kinds("npx prisma migrate deploy > out.log").1);
    assert_eq!(
        kinds("ls && sqlite3 db/dev.sqlite3 'SELECT 1' && faber-db list"),
        (vec![What::Sql, What::Faber], false)
    );
}

#[test]
fn the_config_names_its_own_migrations() {
    let p = Project::with_config(
        r#"
[environments.dev]
url = "sqlite:db/dev.sqlite3"
migrate_command = "make migrate"
"#,
    );
    let line = "cd sub && make migrate && make test";
    let invocations = guard::invocations(line);
    let found = scan(line, &invocations, p.root()).found;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].what, What::Migration("make migrate".into()));
    assert_eq!(found[0].dir, p.root().join("sub"));
}

#[test]
fn a_recent_pre_migration_backup_stands_for_one_that_would_take_too_long() {
    let p = Project::new();
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let env = session.env("dev").unwrap();
    let taken = crate::ops::backup::take(
        &session,
        env,
        &crate::ops::backup::Request::automatic(env, "pre-migration"),
    )
    .unwrap();
    // Another kind of backup, newer, does not count.
    backed_up(&session, "dev");
    let reused = |minutes: i64| {
        let ctx = p.ctx(at() + Duration::minutes(minutes));
        let session = ctx.session_unchanged().unwrap();
        let env = session.env("dev").unwrap();
        let (_, db) = session.provider(env).unwrap();
        backup::recent_pre_migration(&session, env, db.as_ref()).unwrap()
    };
    assert_eq!(reused(30), Some(Backed::Reused(taken.id.clone(), 30)));
    assert_eq!(reused(REUSE_WITHIN_MINUTES + 1), None);
    assert_eq!(reused(-5), None, "a backup from the future");
}

#[test]
fn a_decision_is_recorded_with_its_secrets_blanked_out() {
    let p = Project::new();
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let line = "PGPASSWORD=hunter2 psql -h db -c 'DROP TABLE t'";
    let reason = record(
        &session,
        Heard {
            line,
            env: Some("dev"),
            backup: None,
            matched: "destructive SQL",
        },
        Decision::Ask,
        "sent with PGPASSWORD=hunter2",
    );
    assert_eq!(reason, "sent with PGPASSWORD=***");
    let history = std::fs::read_to_string(p.backups().join("history.jsonl")).unwrap_or_default();
    let event: serde_json::Value = serde_json::from_str(history.lines().last().unwrap()).unwrap();
    assert_eq!(event["event"], "hook");
    assert_eq!(event["environment"], "dev");
    assert_eq!(event["hook"]["decision"], "ask");
    assert_eq!(
        event["hook"]["command"],
        "PGPASSWORD=*** psql -h db -c 'DROP TABLE t'"
    );
    assert!(!history.contains("hunter2"), "{history}");
}

#[test]
fn a_faber_db_command_puts_a_protected_environment_at_stake() {
    let p = Project::with_config(GUARDED);
    let ctx = p.ctx(at());
    let session = ctx.session_unchanged().unwrap();
    let inv = invocation("FABER_ENV=production faber-db backup --yes");
    assert!(says_yes(&inv, guard::faber_args(&inv).unwrap()));
    assert!(says_yes(
        &invocation("FABER_YES=1 faber-db restore dev"),
        &[]
    ));
    assert!(!says_yes(&invocation("faber-db restore dev"), &[]));
    // The environment named, else the one the command's variables name.
    assert_eq!(env_of(&session, &inv, Some("dev")).as_deref(), Some("dev"));
    assert_eq!(env_of(&session, &inv, None).as_deref(), Some("production"));
    assert!(at_stake(&session, Some("production"), false));
    assert!(!at_stake(&session, Some("dev"), false));
    assert!(
        at_stake(&session, Some("unknown"), false),
        "not known: at stake"
    );
    assert!(
        at_stake(&session, None, true),
        "every environment, one protected"
    );
    // A variable the hook does not know is kept as written.
    let inv = invocation("faber-db restore $WHICH_ENV_NOT_SET --yes");
    let (args, unknown) = expanded(&inv, guard::faber_args(&inv).unwrap());
    assert!(unknown, "{args:?}");
    assert_eq!(args[0], "restore");
    let inv = guard::invocations("export WHICH=dev && faber-db restore $WHICH --yes")
        .pop()
        .unwrap();
    let (args, unknown) = expanded(&inv, guard::faber_args(&inv).unwrap());
    assert!(!unknown);
    assert_eq!(args, ["restore", "dev", "--yes"]);
}
