use super::*;
use crate::shell;

fn migration(line: &str) -> Option<String> {
    invocations(line).iter().find_map(builtin_migration)
}

#[test]
fn migration_commands_are_matched() {
    let cases = [
        ("npx prisma migrate deploy", "prisma migrate deploy"),
        (
            "DATABASE_URL=postgres://u:p@h/db npx prisma migrate deploy",
            "prisma migrate deploy",
        ),
        (
            "pnpm exec prisma migrate dev --name init",
            "prisma migrate dev --name init",
        ),
        ("bunx prisma db push", "prisma db push"),
        (
            "yarn prisma migrate reset --force",
            "prisma migrate reset --force",
        ),
        ("cd api && sqlx migrate run", "sqlx migrate run"),
        ("cargo sqlx migrate run", "sqlx migrate run"),
        ("diesel migration run", "diesel migration run"),
        ("diesel migration redo", "diesel migration redo"),
        ("bin/rails db:migrate", "bin/rails db:migrate"),
        (
            "bundle exec rake db:rollback STEP=2",
            "rake db:rollback STEP=2",
        ),
        ("poetry run alembic upgrade head", "alembic upgrade head"),
        (
            "alembic -c alembic.ini downgrade -1",
            "alembic -c alembic.ini downgrade -1",
        ),
        ("python manage.py migrate", "python manage.py migrate"),
        (
            "./manage.py migrate app 0003",
            "./manage.py migrate app 0003",
        ),
        ("npx knex migrate:latest", "knex migrate:latest"),
        ("knex migrate:down", "knex migrate:down"),
        (
            "flyway -url=jdbc:postgresql://h/db migrate",
            "flyway -url=jdbc:postgresql://h/db migrate",
        ),
        ("flyway clean", "flyway clean"),
        ("dbmate up", "dbmate up"),
        (
            "dbmate --url $DATABASE_URL rollback",
            "dbmate --url $DATABASE_URL rollback",
        ),
        (
            "migrate -path db/migrations -database postgres://h/db up 2",
            "migrate -path db/migrations -database postgres://h/db up 2",
        ),
        (
            "migrate -database \"$DB\" down",
            "migrate -database $DB down",
        ),
        ("npm run migrate", "npm run migrate"),
        ("pnpm run migrate:deploy", "pnpm run migrate:deploy"),
        ("yarn db:migrate", "yarn db:migrate"),
        (
            "sudo -u app env RAILS_ENV=production rails db:migrate",
            "rails db:migrate",
        ),
        ("time npx prisma migrate deploy", "prisma migrate deploy"),
        (
            "bash -c 'cd api && npx prisma migrate deploy'",
            "prisma migrate deploy",
        ),
        ("echo $(npx prisma migrate deploy)", "prisma migrate deploy"),
        (
            "git pull; npm ci && npm run migrate:prod",
            "npm run migrate:prod",
        ),
    ];
    for (line, want) in cases {
        assert_eq!(migration(line).as_deref(), Some(want), "{line}");
    }
}

#[test]
fn look_alikes_are_not_matched() {
    for line in [
        "echo \"prisma migrate deploy\"",
        "echo prisma migrate deploy",
        "grep migrate",
        "grep -r 'rails db:migrate' .",
        "git commit -m \"migrate\"",
        "git commit -m 'npx prisma migrate deploy'",
        "cat prisma/migrations/1/migration.sql",
        "ls db/migrate",
        "npx prisma migrate status",
        "npx prisma generate",
        "sqlx migrate info",
        "alembic history",
        "python manage.py makemigrations",
        "knex migrate:make add_users",
        "flyway info",
        "dbmate new add_users",
        "migrate create -ext sql add_users",
        "npm run build",
        "npm test -- migrate",
        "# npx prisma migrate deploy",
        "vim db/migrate/001.rb",
    ] {
        assert_eq!(migration(line), None, "{line}");
    }
}

#[test]
fn variables_and_directories_of_the_line() {
    let invs = invocations(
        "export FABER_ENV=staging; cd api && DATABASE_URL=sqlite:x.db sqlx migrate run",
    );
    let inv = invs.last().unwrap();
    assert_eq!(inv.var("FABER_ENV"), Some("staging"));
    assert_eq!(inv.var("DATABASE_URL"), Some("sqlite:x.db"));
    assert_eq!(inv.dirs, vec!["api".to_string()]);
}

#[test]
fn configured_commands_and_patterns() {
    let inv = &invocations("make db-migrate ENV=prod")[0];
    assert!(matches_pattern(inv, "make db-*"));
    assert!(matches_pattern(inv, "make *"));
    assert!(!matches_pattern(inv, "make test"));
    let inv = &invocations("cd api && ./scripts/migrate.sh --prod")[0];
    assert!(matches_command(inv, "./scripts/migrate.sh"));
    assert!(matches_command(inv, "cd api && scripts/migrate.sh"));
    assert!(!matches_command(inv, "./scripts/seed.sh"));
}

#[test]
fn faber_db_yes_in_any_spelling() {
    for (line, yes) in [
        ("faber-db restore production --yes", true),
        ("faber-db -y restore production", true),
        ("./target/release/faber-db -qy rollback production", true),
        ("faber-db --yes=true restore production", true),
        ("faber-db restore production", false),
        ("faber-db restore production --label yes", false),
    ] {
        let invs = invocations(line);
        let args = faber_args(&invs[0]).unwrap();
        assert_eq!(says_yes(args), yes, "{line}");
    }
    assert!(faber_args(&invocations("echo faber-db restore --yes")[0]).is_none());
}

#[test]
fn sql_clients_say_where_and_what() {
    let none = |_: &str| None;
    let invs = invocations("psql -h db.internal -p 6543 -d app -c 'DROP TABLE users'");
    let call = sql::call(&invs[0], &none).unwrap();
    assert_eq!(call.target.host.as_deref(), Some("db.internal"));
    assert_eq!(call.target.port, Some(6543));
    assert_eq!(call.target.database.as_deref(), Some("app"));
    assert_eq!(call.findings(std::path::Path::new("/")).len(), 1);

    let vars = |n: &str| (n == "PROD_DATABASE_URL").then(|| "postgres://h/prod".to_string());
    let invs = invocations("psql \"$PROD_DATABASE_URL\" <<SQL\nTRUNCATE orders;\nSQL");
    let call = sql::call(&invs[0], &vars).unwrap();
    assert_eq!(call.target.url.as_deref(), Some("postgres://h/prod"));
    assert_eq!(call.findings(std::path::Path::new("/"))[0].what, "TRUNCATE");

    let invs = invocations("echo 'DELETE FROM t' | mysql -uroot -psecret -hdb shop");
    let call = sql::call(&invs[1], &none).unwrap();
    assert_eq!(call.target.host.as_deref(), Some("db"));
    assert_eq!(call.target.database.as_deref(), Some("shop"));
    assert_eq!(call.findings(std::path::Path::new("/")).len(), 1);

    let invs = invocations("sqlite3 db/prod.sqlite3 'DELETE FROM t WHERE id = 1'");
    let call = sql::call(&invs[0], &none).unwrap();
    assert_eq!(call.target.file.as_deref(), Some("db/prod.sqlite3"));
    assert!(call.findings(std::path::Path::new("/")).is_empty());
}

#[test]
fn wrappers_and_shells_hide_no_command() {
    for (line, want) in [
        (
            "command -p npx prisma migrate deploy",
            "prisma migrate deploy",
        ),
        (
            "exec -a x npx prisma migrate deploy",
            "prisma migrate deploy",
        ),
        (
            "env -S 'npx prisma migrate deploy'",
            "prisma migrate deploy",
        ),
        (
            "env -iS'npx prisma' migrate deploy",
            "prisma migrate deploy",
        ),
        (
            "bash -ce 'npx prisma migrate deploy'",
            "prisma migrate deploy",
        ),
        (
            "bash -c -e 'npx prisma migrate deploy'",
            "prisma migrate deploy",
        ),
        ("bash -o pipefail -c 'sqlx migrate run'", "sqlx migrate run"),
        (
            "bash <<< 'npx prisma migrate deploy'",
            "prisma migrate deploy",
        ),
        (
            "echo 'npx prisma migrate deploy' | sh",
            "prisma migrate deploy",
        ),
        ("bash -s <<EOF\nsqlx migrate run\nEOF", "sqlx migrate run"),
        ("cat <<EOF | sh\nsqlx migrate run\nEOF", "sqlx migrate run"),
    ] {
        assert_eq!(migration(line).as_deref(), Some(want), "{line}");
    }
    assert_eq!(migration("bash migrate.sh"), None);
    let inv = &invocations("env -S 'FABER_ENV=production npx' prisma migrate deploy")[0];
    assert_eq!(inv.var("FABER_ENV"), Some("production"));
}

#[test]
fn every_command_a_line_runs_is_an_invocation() {
    let programs = |line: &str| -> Vec<String> {
        invocations(line)
            .iter()
            .map(|i| shell::display(&i.words.join(" ")))
            .collect()
    };
    // Wrappers with nothing after them, and bare redirections, still count.
    for line in [
        "true && env -S 'rm -rf ~'",
        "true && sudo -i",
        "true && nohup",
        "true; > ~/.bashrc",
    ] {
        assert_eq!(programs(line).len(), 2, "{line}");
    }
    // What expansions and unquoted heredocs run.
    for line in [
        "true ${X:-$(rm -rf ~)}",
        "true \"$'$(rm -rf ~)'\"",
        "true <<EOF\n$(rm -rf ~)\nEOF",
        "true <<EOF\n`rm -rf ~`\nEOF",
    ] {
        assert!(
            programs(line).iter().any(|p| p.starts_with("rm -rf")),
            "{line}: {:?}",
            programs(line)
        );
    }
    // A quoted heredoc runs nothing.
    assert_eq!(programs("true <<'EOF'\n$(rm -rf ~)\nEOF").len(), 1);
    // A script nested deeper than followed is itself a command.
    let deep = format!("true; {}rm -rf ~", "eval ".repeat(12));
    assert_eq!(programs(&deep).len(), 2, "{deep}");
}

#[test]
fn only_plain_commands_can_be_approved() {
    let approvable = |line: &str| invocations(line).iter().all(Invocation::approvable);
    assert!(approvable("npx prisma migrate deploy >/dev/null 2>&1"));
    assert!(approvable("npx prisma migrate deploy 2>&1 >&2"));
    assert!(!approvable("npx prisma migrate deploy > out.log"));
    assert!(!approvable("npx prisma migrate deploy >& out.log"));
    assert!(!approvable("npx prisma migrate deploy &>> out.log"));
    assert!(!approvable("sudo npx prisma migrate deploy"));
    assert!(!approvable("bash -c 'npx prisma migrate deploy' > out.log"));
}

#[test]
fn runners_env_files_and_env_options() {
    let words = |line: &str| invocations(line).remove(0).words;
    assert_eq!(
        env_files(&words(
            "dotenv -e .env.production -- npx prisma migrate deploy"
        )),
        vec![".env.production"]
    );
    assert_eq!(
        env_files(&words(
            "npx dotenvx run -f a.env --env-file=b.env -- knex migrate:latest"
        )),
        vec!["a.env", "b.env"]
    );
    assert!(env_files(&words("npx prisma migrate deploy")).is_empty());
    let w = words("knex migrate:latest --env=production");
    assert_eq!(option_value(&w, &["--env"]), Some("production"));
    let w = words("rails db:migrate -e staging");
    assert_eq!(option_value(&w, &["-e"]), Some("staging"));
}

#[test]
fn read_only_migration_tasks_are_not_migrations() {
    for line in [
        "npm run migrate:status",
        "yarn migrate:create add_users",
        "pnpm run db:migrate-make x",
        "bin/rails db:migrate:status",
        "python manage.py migrate --plan",
        "./manage.py migrate --check",
    ] {
        assert_eq!(migration(line), None, "{line}");
    }
    for line in [
        "rake db:migrate:redo",
        "npm run migrate:up",
        "yarn db:migrate",
    ] {
        assert!(migration(line).is_some(), "{line}");
    }
}

#[test]
fn sql_that_cannot_be_told_and_included_files() {
    let none = |_: &str| None;
    let call = |line: &str| sql::call(invocations(line).last().unwrap(), &none).unwrap();
    let c = call("psql -d app -c \"$(cat drop.sql)\"");
    assert!(c.unknown_sql && !c.target.unknown);
    let c = call("psql -d \"$DB\" -c 'select 1'");
    assert!(!c.unknown_sql && c.target.unknown);
    assert!(call("pg_dump other | psql app").unknown_sql);
    assert!(!call("cat x.sql | psql app").unknown_sql);
    let c = call("psql --field-separator , app -c 'select 1'");
    assert_eq!(c.target.database.as_deref(), Some("app"));
    let c = call("mysql --protocol tcp -h db shop -e 'select 1'");
    assert_eq!(c.target.database.as_deref(), Some("shop"));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("drop.sql"), "DROP TABLE t;\n").unwrap();
    std::fs::write(dir.path().join("main.sql"), "\\i drop.sql\n").unwrap();
    assert_eq!(
        call("psql app -c '\\i drop.sql'")
            .findings(dir.path())
            .len(),
        1
    );
    assert_eq!(call("psql app -f main.sql").findings(dir.path()).len(), 1);
    assert_eq!(
        call("sqlite3 x.db '.read drop.sql'")
            .findings(dir.path())
            .len(),
        1
    );
}
