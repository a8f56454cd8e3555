//! The pre-tool-use hook attacked the way a careless or hostile agent would: lines that hide
//! more than a migration never get `allow` (it approves the whole line in Claude Code), a
//! protected environment's migration spelled another way still gets `ask`, and read-only
//! migration tasks are no migration.

use crate::harness::Project;

const CONFIG: &str = r#"
default_environment = "dev"

[environments.dev]
url_env = "DEV_DATABASE_URL"
backup_before_migrate = true

[environments.production]
url_env = "PROD_DATABASE_URL"
backup_before_migrate = true
"#;

fn project() -> Project {
    let p = Project::with_config(CONFIG);
    for db in ["db/dev.sqlite3", "db/prod.sqlite3"] {
        p.sqlite(db)
            .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();
    }
    p.write("drop.sql", "DROP TABLE t;\n");
    p.write(".env.production", "DATABASE_URL=sqlite:db/prod.sqlite3\n");
    p
}

/// The hook's decision on `command` run in the project: `allow`, `ask`, `deny` or `none`.
fn decide(p: &Project, command: &str) -> String {
    crate::hook::hook(p, command)
        .decision()
        .unwrap_or("none")
        .to_string()
}

#[test]
fn lines_that_hide_more_than_a_migration_never_get_allow() {
    let p = project();
    // The plain migration of dev is allowed (after its backup): the lines below are not.
    assert_eq!(decide(&p, "npx prisma migrate deploy"), "allow");
    assert_eq!(
        decide(&p, "npx prisma migrate deploy >/dev/null 2>&1"),
        "allow"
    );
    for line in [
        "npx prisma migrate deploy && env -S 'rm -rf ~'",
        "npx prisma migrate deploy && sudo -i <<EOF\nrm -rf /\nEOF",
        "npx prisma migrate deploy && nohup",
        "npx prisma migrate deploy ${X:-$(rm -rf ~)}",
        "npx prisma migrate deploy ${X/$(rm -rf ~)/y}",
        "npx prisma migrate deploy <<EOF\n$(rm -rf ~)\nEOF",
        "npx prisma migrate deploy \"$'$(rm -rf ~)'\"",
        "npx prisma migrate deploy > ~/.bashrc",
        "npx prisma migrate deploy; > ~/.bashrc",
        "npx prisma migrate deploy; exec 3<> ~/.bashrc",
        "npx prisma migrate deploy; eval eval eval eval eval eval eval eval eval eval rm -rf ~",
        "bash -c 'npx prisma migrate deploy' > ~/.bashrc",
        "sudo npx prisma migrate deploy",
    ] {
        assert_ne!(decide(&p, line), "allow", "{line}");
    }
    let long = format!("echo {}; npx prisma migrate deploy", "a".repeat(300_000));
    assert_eq!(decide(&p, &long), "ask");
}

#[test]
fn a_protected_migration_spelled_another_way_asks() {
    let p = project();
    for line in [
        "DATABASE_URL=$PROD_DATABASE_URL npx prisma migrate deploy",
        "export DATABASE_URL=\"${PROD_DATABASE_URL}\"; npx prisma migrate deploy",
        "DATABASE_URL=$(cat url) npx prisma migrate deploy",
        "command -p env FABER_ENV=production npx prisma migrate deploy",
        "FABER_ENV=production bash -ce 'npx prisma migrate deploy'",
        "FABER_ENV=production bash -o pipefail -c 'npx prisma migrate deploy'",
        "bash <<< 'FABER_ENV=production npx prisma migrate deploy'",
        "echo 'FABER_ENV=production npx prisma migrate deploy' | sh",
        "bash <<EOF\nFABER_ENV=production npx prisma migrate deploy\nEOF",
        "env -S 'FABER_ENV=production npx prisma migrate deploy'",
        "npx knex migrate:latest --env production",
        "bin/rails db:migrate -e production",
        "dotenv -e .env.production -- npx prisma migrate deploy",
        "npx dotenv -e .env.production -- prisma migrate deploy",
        "dbmate --env PROD_DATABASE_URL up",
    ] {
        assert_eq!(decide(&p, line), "ask", "{line}");
    }
    // The same spellings naming dev are no protected migration.
    assert_eq!(
        decide(
            &p,
            "DATABASE_URL=$DEV_DATABASE_URL npx prisma migrate deploy"
        ),
        "allow"
    );
}

#[test]
fn read_only_migration_tasks_are_no_migration() {
    let p = project();
    for line in [
        "npm run migrate:status",
        "pnpm migrate:create add_users",
        "bin/rails db:migrate:status",
        "python manage.py migrate --plan",
    ] {
        assert_eq!(decide(&p, line), "none", "{line}");
    }
    assert!(p.backups().is_empty(), "no backup taken");
}

#[test]
fn destructive_sql_in_other_spellings_asks() {
    let p = project();
    p.write("include.sql", "\\i drop.sql\n");
    for line in [
        "sqlite3 db/prod.sqlite3 '.read drop.sql'",
        "sqlite3 ./db/../db/prod.sqlite3 \"$(cat drop.sql)\"",
        "some-tool --dump | sqlite3 db/prod.sqlite3",
    ] {
        assert_eq!(decide(&p, line), "ask", "{line}");
    }
    for line in [
        "sqlite3 db/dev.sqlite3 '.read drop.sql'",
        "sqlite3 db/prod.sqlite3 'SELECT count(*) FROM t'",
    ] {
        assert_eq!(decide(&p, line), "none", "{line}");
    }
}

#[test]
fn a_mysql_password_variable_stays_out_of_the_history() {
    let p = project();
    assert_eq!(
        decide(
            &p,
            "MYSQL_PWD=hunter2 FABER_ENV=production npx prisma migrate deploy"
        ),
        "ask"
    );
    let history =
        std::fs::read_to_string(p.path(&format!("{}/history.jsonl", crate::harness::BACKUPS)))
            .unwrap();
    assert!(history.contains("MYSQL_PWD=***"), "{history}");
    assert!(!history.contains("hunter2"), "{history}");
}
