//! `faber-db hook pre-tool-use`, fed the JSON Claude Code sends a `PreToolUse` hook: the
//! backups it takes before migrations, the decisions it answers, what it writes to the history.

use std::io::Write;
use std::process::Stdio;

use serde_json::{Value, json};

use crate::harness::{BACKUPS, Project};
use crate::postgres::{PgDb, project_with, server_up};

/// dev and staging back up before migrations; production is protected (and backs up too).
const CONFIG: &str = r#"
default_environment = "dev"

[defaults]
compression = "gzip"

[environments.dev]
url_env = "DEV_DATABASE_URL"
backup_before_migrate = true

[environments.staging]
url_env = "STAGING_DATABASE_URL"
backup_before_migrate = true

[environments.production]
url_env = "PROD_DATABASE_URL"
"#;

fn project() -> Project {
    project_with_config(CONFIG)
}

fn project_with_config(config: &str) -> Project {
    Project::with_config(config)
        .with_var("STAGING_DATABASE_URL", "sqlite:db/staging.sqlite3")
        .seeded("db/dev.sqlite3")
        .seeded("db/staging.sqlite3")
        .seeded("db/prod.sqlite3")
}

/// What the hook answered: its exit code, its stdout parsed (None when empty), its stderr.
pub struct Answer {
    pub code: i32,
    pub out: Option<Value>,
    pub stderr: String,
}

impl Answer {
    pub fn decision(&self) -> Option<&str> {
        self.out.as_ref()?["hookSpecificOutput"]["permissionDecision"].as_str()
    }

    fn reason(&self) -> &str {
        self.out
            .as_ref()
            .and_then(|o| o["hookSpecificOutput"]["permissionDecisionReason"].as_str())
            .unwrap_or("")
    }
}

/// Feeds the hook raw `input` in the project's root.
pub fn feed(p: &Project, input: &str) -> Answer {
    let mut child = p
        .command(&["hook", "pre-tool-use"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    Answer {
        code: out.status.code().unwrap_or(-1),
        out: (!stdout.trim().is_empty()).then(|| {
            serde_json::from_str(&stdout)
                .unwrap_or_else(|e| panic!("the hook's stdout is not JSON ({e}): {stdout}"))
        }),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Feeds the hook the Bash command `command`, as Claude Code would in the project's root.
pub fn hook(p: &Project, command: &str) -> Answer {
    let input = json!({
        "session_id": "test-session",
        "transcript_path": "/tmp/transcript.jsonl",
        "cwd": p.root(),
        "permission_mode": "default",
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": command, "description": "run it"},
    });
    let answer = feed(p, &input.to_string());
    assert_eq!(answer.code, 0, "{command}: {}", answer.stderr);
    answer
}

/// Checks that the hook asks about `command`, with `needle` in its reason.
fn asks(p: &Project, command: &str, needle: &str) {
    let answer = hook(p, command);
    assert_eq!(
        answer.decision(),
        Some("ask"),
        "{command}: {:?}",
        answer.out
    );
    assert!(
        answer.reason().contains(needle),
        "{command}: no {needle:?} in {}",
        answer.reason()
    );
}

/// The hook events of the history.
fn hook_events(p: &Project) -> Vec<Value> {
    std::fs::read_to_string(p.path(&format!("{BACKUPS}/history.jsonl")))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "hook")
        .collect()
}

fn entries_of(p: &Project, env: &str) -> Vec<Value> {
    p.backups()
        .into_iter()
        .filter(|b| b["environment"] == env)
        .collect()
}

#[test]
fn migration_commands_get_a_backup_then_allow() {
    let p = project();
    // Each shape, alone on its line, in the default environment (dev) unless it says otherwise.
    let shapes = [
        ("npx prisma migrate deploy", "dev"),
        (
            "DATABASE_URL=sqlite:db/staging.sqlite3 npx prisma migrate deploy",
            "staging",
        ),
        (
            "FABER_ENV=staging pnpm exec prisma migrate dev --name init",
            "staging",
        ),
        ("bunx prisma db push", "dev"),
        ("cd api && sqlx migrate run", "dev"),
        ("diesel migration run", "dev"),
        ("diesel migration redo", "dev"),
        ("bin/rails db:migrate", "dev"),
        ("bundle exec rake db:rollback STEP=2", "dev"),
        ("poetry run alembic upgrade head", "dev"),
        ("alembic downgrade -1", "dev"),
        ("python manage.py migrate", "dev"),
        ("npx knex migrate:latest", "dev"),
        ("flyway migrate", "dev"),
        ("dbmate up", "dev"),
        (
            "migrate -path db/migrations -database sqlite:db/staging.sqlite3 up",
            "staging",
        ),
        ("npm run migrate", "dev"),
        ("yarn migrate:deploy", "dev"),
        (
            "export FABER_ENV=staging; npx prisma migrate deploy",
            "staging",
        ),
        ("bash -c 'npx prisma migrate reset --force'", "dev"),
    ];
    for (i, (command, env)) in shapes.iter().enumerate() {
        let before = entries_of(&p, env).len();
        let answer = hook(&p, command);
        assert_eq!(
            answer.decision(),
            Some("allow"),
            "{command}: {:?}",
            answer.out
        );
        let entries = entries_of(&p, env);
        assert_eq!(entries.len(), before + 1, "{command}: one backup of {env}");
        let named = answer
            .reason()
            .split_whitespace()
            .find(|w| w.starts_with("backup-"))
            .unwrap_or_else(|| panic!("{command}: no backup named: {}", answer.reason()));
        let entry = entries
            .iter()
            .find(|e| e["id"] == named)
            .unwrap_or_else(|| panic!("{command}: no entry {named}"));
        assert_eq!(entry["reason"], "pre-migration", "{command}");
        assert_eq!(entry["status"], "valid", "{command}");
        assert!(
            command.contains(entry["command"].as_str().unwrap()),
            "{command}: the entry records the command: {entry}"
        );
        let events = hook_events(&p);
        assert_eq!(events.len(), i + 1, "{command}: one hook event");
        let last = events.last().unwrap();
        assert_eq!(last["hook"]["decision"], "allow");
        assert_eq!(last["environment"], *env);
        assert_eq!(last["id"], entry["id"]);
        assert_eq!(last["hook"]["command"], *command);
    }
    // The backup is a real one: it restores.
    let id = entries_of(&p, "dev")[0]["id"].as_str().unwrap().to_string();
    p.run(&["restore", "dev", "--from", &id]).code(0);
}

#[test]
fn look_alikes_get_no_decision_and_no_backup() {
    let p = project();
    for command in [
        "echo \"prisma migrate deploy\"",
        "grep migrate",
        "grep -rn 'db:migrate' .",
        "git commit -m \"migrate\"",
        "git commit -m 'npx prisma migrate deploy'",
        "cat prisma/migrations/001/migration.sql",
        "npx prisma migrate status",
        "python manage.py makemigrations",
        "ls -la",
        "sqlite3 db/prod.sqlite3 'SELECT count(*) FROM t'",
        "faber-db list",
        "faber-db restore production",
        "faber-db restore production --yes --dry-run",
        "faber-db restore dev --yes",
    ] {
        let answer = hook(&p, command);
        assert!(answer.out.is_none(), "{command}: {:?}", answer.out);
    }
    assert!(p.backups().is_empty(), "{:?}", p.backups());
    assert!(hook_events(&p).is_empty());
}

#[test]
fn a_line_with_more_than_migrations_is_never_allowed_whole() {
    let p = project();
    // `allow` would approve the rest of the line too: the backup is taken and said, and Claude
    // Code's own rules decide.
    let answer = hook(&p, "npx prisma migrate deploy && rm -rf build");
    assert_eq!(answer.decision(), None, "{:?}", answer.out);
    let message = answer.out.as_ref().unwrap()["systemMessage"]
        .as_str()
        .unwrap();
    let id = entries_of(&p, "dev")[0]["id"].as_str().unwrap().to_string();
    assert!(message.contains(&id), "{message}");
    assert_eq!(hook_events(&p)[0]["hook"]["decision"], "none");
}

#[test]
fn the_environment_comes_from_the_dotenv_file_when_the_command_names_none() {
    let p = project();
    p.write(".env", "FABER_ENV=staging\n");
    let answer = hook(&p, "npx prisma migrate deploy");
    assert_eq!(answer.decision(), Some("allow"));
    assert_eq!(entries_of(&p, "staging").len(), 1);
    assert!(entries_of(&p, "dev").is_empty());
}

#[test]
fn a_database_no_environment_names_gets_no_backup() {
    let p = project();
    let answer = hook(
        &p,
        "DATABASE_URL=sqlite:db/scratch.sqlite3 npx prisma migrate reset",
    );
    assert_eq!(answer.decision(), None);
    assert!(p.backups().is_empty());
    let message = answer.out.as_ref().unwrap()["systemMessage"]
        .as_str()
        .unwrap();
    assert!(
        message.contains("none of the configured environments"),
        "{message}"
    );
}

#[test]
fn a_protected_migration_asks_with_the_plan_and_the_backup() {
    let p = project();
    p.write("migrations/001_init.sql", "CREATE TABLE users (id int);\n");
    p.write(
        "migrations/002_drop_legacy.sql",
        "-- the old table goes\nDROP TABLE legacy;\n",
    );
    let answer = hook(&p, "FABER_ENV=production npx prisma migrate deploy");
    assert_eq!(answer.decision(), Some("ask"), "{:?}", answer.out);
    let reason = answer.reason();
    let entries = entries_of(&p, "production");
    assert_eq!(
        entries.len(),
        1,
        "the pre-migration backup is taken before asking"
    );
    assert_eq!(entries[0]["reason"], "pre-migration");
    for part in [
        "protected environment `production`",
        entries[0]["id"].as_str().unwrap(),
        "001_init",
        "002_drop_legacy",
        "DROP TABLE",
    ] {
        assert!(
            reason.contains(part),
            "the reason lacks {part:?}:\n{reason}"
        );
    }
    assert_eq!(hook_events(&p)[0]["hook"]["decision"], "ask");
}

/// Claude Code runs its hooks with `CLAUDECODE=1` too: the hook's own pre-migration backup of
/// a protected environment is not the agent's `--yes`, and is taken.
#[test]
fn the_hooks_own_backup_of_a_protected_environment_is_no_agents_yes() {
    let p = project()
        .with_var("CLAUDECODE", "1")
        .with_var("CLAUDE_CODE_SESSION_ID", "test-session");
    let answer = hook(&p, "FABER_ENV=production npx prisma migrate deploy");
    assert_eq!(answer.decision(), Some("ask"), "{:?}", answer.out);
    let entries = entries_of(&p, "production");
    assert_eq!(entries.len(), 1, "{}", answer.reason());
    assert_eq!(entries[0]["reason"], "pre-migration");
}

#[test]
fn protected_deny_refuses_and_points_at_the_migrate_command() {
    let p = project_with_config(&format!("{CONFIG}\n[hook]\nprotected = \"deny\"\n"));
    let answer = hook(&p, "FABER_ENV=production npx prisma migrate deploy");
    assert_eq!(answer.decision(), Some("deny"));
    assert!(
        answer.reason().contains("/faber-db:migrate production"),
        "{}",
        answer.reason()
    );
    assert!(
        p.backups().is_empty(),
        "nothing to back up for a refused migration"
    );
    // Other environments still get their backup.
    assert_eq!(
        hook(&p, "npx prisma migrate deploy").decision(),
        Some("allow")
    );
}

#[test]
fn a_backup_that_fails_denies_the_migration() {
    // staging is to be encrypted, and no [encryption] says to whom: its backup cannot be taken.
    let config = CONFIG.replace(
        "[environments.staging]\n",
        "[environments.staging]\nencrypt = true\n",
    );
    let p = project_with_config(&config);
    let answer = hook(&p, "FABER_ENV=staging npx prisma migrate deploy");
    assert_eq!(answer.decision(), Some("deny"), "{:?}", answer.out);
    assert!(
        answer
            .reason()
            .contains("pre-migration backup of `staging` failed"),
        "{}",
        answer.reason()
    );
    assert!(answer.reason().contains("hint:"), "{}", answer.reason());
    assert!(p.backups().is_empty());
    assert_eq!(hook_events(&p)[0]["hook"]["decision"], "deny");
}

#[test]
fn yes_from_the_agent_on_a_protected_change_asks_with_the_dry_run() {
    let p = project();
    let id = p.backup(&["production", "--yes"]);
    for command in [
        "faber-db restore production --yes".to_string(),
        "faber-db -qy restore production".to_string(),
        "FABER_ENV=production faber-db --yes rollback".to_string(),
        format!("./target/release/faber-db delete {id} --yes"),
        "faber-db cleanup --keep-last 0 --yes".to_string(),
    ] {
        asks(&p, &command, "only you can approve");
    }
    // The reason is the dry run's plan; and the dry run changed nothing.
    let answer = hook(&p, "faber-db restore production --yes");
    assert!(answer.reason().contains(&id), "{}", answer.reason());
    assert!(answer.reason().contains("Dry run"), "{}", answer.reason());
    assert_eq!(p.ids(), vec![id]);
    // Without --yes, faber-db itself stops (exit 8); for an unprotected one, nothing to ask.
    assert!(hook(&p, "faber-db restore production").out.is_none());
    assert!(hook(&p, "faber-db backup dev --yes").out.is_none());
}

#[test]
fn destructive_sql_at_a_protected_database_asks() {
    let p = project();
    for command in [
        "sqlite3 db/prod.sqlite3 'DROP TABLE t'",
        "sqlite3 ./db/../db/prod.sqlite3 \"DELETE FROM t\"",
        "sqlite3 db/prod.sqlite3 <<'SQL'\nTRUNCATE t;\nSQL",
        "echo 'DROP TABLE t;' | sqlite3 db/prod.sqlite3",
    ] {
        let answer = hook(&p, command);
        assert_eq!(
            answer.decision(),
            Some("ask"),
            "{command}: {:?}",
            answer.out
        );
        assert!(
            answer.reason().contains("production"),
            "{}",
            answer.reason()
        );
    }
    p.write("drop.sql", "DROP TABLE t;\n");
    assert_eq!(
        hook(&p, "sqlite3 db/prod.sqlite3 < drop.sql").decision(),
        Some("ask")
    );
    for command in [
        "sqlite3 db/dev.sqlite3 'DROP TABLE t'",
        "sqlite3 db/prod.sqlite3 'DELETE FROM t WHERE x = 1'",
    ] {
        assert!(hook(&p, command).out.is_none(), "{command}");
    }
    // Nothing was run.
    assert_eq!(
        p.sqlite("db/prod.sqlite3")
            .query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
            .unwrap(),
        1
    );
}

#[test]
fn bad_input_is_a_warning_and_never_blocks() {
    let p = project();
    for input in ["", "not json", "{", "[]", "{\"tool_name\": \"Bash\"}"] {
        let answer = feed(&p, input);
        assert_eq!(answer.code, 0, "{input:?}");
        assert!(answer.out.is_none(), "{input:?}");
        assert!(
            answer.stderr.contains("warning: faber-db hook"),
            "{input:?}: {}",
            answer.stderr
        );
    }
    // Other tools are none of its business.
    let read = json!({"hook_event_name": "PreToolUse", "tool_name": "Read",
                      "tool_input": {"file_path": "/etc/passwd"}, "cwd": p.root()});
    let answer = feed(&p, &read.to_string());
    assert!(answer.out.is_none() && answer.stderr.is_empty());
}

#[test]
fn an_unreadable_config_asks_before_a_migration() {
    let p = project();
    p.write(
        ".fractary/plugins/faber-db/config.toml",
        "[environments.dev\n",
    );
    let answer = hook(&p, "npx prisma migrate deploy");
    assert_eq!(answer.decision(), Some("ask"));
    assert!(
        answer.reason().contains("cannot be read"),
        "{}",
        answer.reason()
    );
    // A command that is no migration is not held up.
    assert!(hook(&p, "cargo build").out.is_none());
}

#[test]
fn configured_commands_and_patterns_are_migrations_of_their_environment() {
    let config = CONFIG.replace(
        "[environments.staging]\n",
        "[environments.staging]\nmigrate_command = \"./scripts/migrate.sh --all\"\n",
    ) + "\n[hook]\nmigrate_patterns = [\"make db-*\"]\n";
    let p = project_with_config(&config);
    assert_eq!(
        hook(&p, "./scripts/migrate.sh --all").decision(),
        Some("allow")
    );
    assert_eq!(
        entries_of(&p, "staging").len(),
        1,
        "its migrate_command says staging"
    );
    assert_eq!(hook(&p, "make db-migrate").decision(), Some("allow"));
    assert_eq!(entries_of(&p, "dev").len(), 1);
    assert!(hook(&p, "make test").out.is_none());
}

#[test]
fn a_disabled_hook_decides_nothing() {
    let p = project_with_config(&format!("{CONFIG}\n[hook]\nenabled = false\n"));
    for command in [
        "npx prisma migrate deploy",
        "FABER_ENV=production npx prisma migrate deploy",
        "faber-db restore production --yes",
        "sqlite3 db/prod.sqlite3 'DROP TABLE t'",
    ] {
        assert!(hook(&p, command).out.is_none(), "{command}");
    }
    assert!(p.backups().is_empty());
    assert!(hook_events(&p).is_empty());
}

#[test]
fn postgres_migrations_are_backed_up_and_drops_at_production_ask() {
    if !server_up() {
        return;
    }
    let staging = PgDb::new("hook_stg");
    staging.exec("CREATE TABLE users (id int); INSERT INTO users VALUES (1), (2);");
    let prod = PgDb::new("hook_prod");
    prod.exec("CREATE TABLE users (id int); INSERT INTO users VALUES (1);");
    let config = "[environments.staging]\nurl_env = \"STAGING_DATABASE_URL\"\nbackup_before_migrate = true\n\
                  [environments.production]\nurl_env = \"PRODUCTION_DATABASE_URL\"\n";
    let p = project_with(&[("staging", &staging), ("production", &prod)]);
    p.write(".fractary/plugins/faber-db/config.toml", config);
    // The URL in the command is the environment's, spelled another way (127.0.0.1 and
    // localhost, no port).
    let spelled = staging.url().replace("127.0.0.1:5432", "localhost");
    let answer = hook(
        &p,
        &format!("DATABASE_URL={spelled} npx prisma migrate deploy"),
    );
    assert_eq!(answer.decision(), Some("allow"), "{:?}", answer.out);
    let entries = entries_of(&p, "staging");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["provider"], "postgres");
    let tables = entries[0]["tables"].to_string();
    assert!(tables.contains("users"), "{tables}");

    let prod_url = prod.url();
    let name = &prod.name;
    for command in [
        format!("psql -h 127.0.0.1 -U postgres -d {name} -c 'DROP TABLE users'"),
        format!("psql \"{prod_url}\" <<SQL\nTRUNCATE users;\nSQL"),
        "psql \"$PRODUCTION_DATABASE_URL\" -c 'DELETE FROM users'".to_string(),
        format!("PGDATABASE={name} psql -h localhost -c 'ALTER TABLE users DROP COLUMN id'"),
    ] {
        asks(&p, &command, "`production`");
    }
    // The same at staging's database: not protected, no question.
    let stg = &staging.name;
    assert!(
        hook(
            &p,
            &format!("psql -h 127.0.0.1 -d {stg} -c 'DROP TABLE users'")
        )
        .out
        .is_none()
    );
    assert_eq!(prod.exec("SELECT count(*) FROM users"), "1");
}

#[test]
fn secrets_in_the_command_are_never_written_down() {
    let p = project();
    let secret = "hunter2-Pa55";
    for command in [
        format!(
            "DATABASE_URL=sqlite:db/staging.sqlite3?password={secret} npx prisma migrate deploy"
        ),
        format!("PGPASSWORD={secret} FABER_ENV=production npx prisma migrate deploy"),
        format!("MYSQL_PWD='{secret}' sqlite3 db/prod.sqlite3 'DROP TABLE t'"),
        format!("mysql -uroot -p{secret} -e 'select 1'; FABER_ENV=staging sqlx migrate run"),
    ] {
        let answer = hook(&p, &command);
        assert!(answer.out.is_some(), "{command}");
        let out = answer.out.unwrap().to_string();
        assert!(!out.contains(secret), "the secret is in the answer: {out}");
        assert!(!answer.stderr.contains(secret), "{}", answer.stderr);
    }
    assert!(!hook_events(&p).is_empty());
    for f in p.backup_files() {
        let text = std::fs::read(p.path(&format!("{BACKUPS}/{f}"))).unwrap();
        let text = String::from_utf8_lossy(&text);
        let line = text.lines().find(|l| l.contains(secret));
        assert!(line.is_none(), "the secret is in {f}: {line:?}");
    }
}

#[test]
fn a_backup_too_big_for_the_hook_denies_unless_a_fresh_one_stands_for_it() {
    // A budget of 0 s: no backup fits in it.
    let p = project().with_var("FABER_HOOK_BACKUP_TIMEOUT", "0");
    let answer = hook(&p, "FABER_ENV=staging npx prisma migrate deploy");
    assert_eq!(answer.decision(), Some("deny"), "{:?}", answer.out);
    assert!(
        answer.reason().contains("longer than the hook may wait"),
        "{}",
        answer.reason()
    );
    assert!(
        answer.reason().contains("--reason pre-migration"),
        "{}",
        answer.reason()
    );
    assert!(p.backups().is_empty());
    // Taken by hand (in the background, as the hint says), it stands for the hook's own.
    let id = p.backup(&[
        "staging",
        "--reason",
        "pre-migration",
        "--label",
        "pre-migration",
    ]);
    let answer = hook(&p, "FABER_ENV=staging npx prisma migrate deploy");
    assert_eq!(answer.decision(), Some("allow"), "{:?}", answer.out);
    assert!(answer.reason().contains(&id), "{}", answer.reason());
    assert_eq!(p.ids(), vec![id.clone()], "no second backup");
    // Once a migration has run since, it no longer does.
    p.sqlite("db/staging.sqlite3")
        .execute_batch(
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT, \
             installed_on TEXT, success BOOLEAN, checksum BLOB, execution_time BIGINT);
             INSERT INTO _sqlx_migrations VALUES (1, 'init', '2026-01-01', 1, x'00', 1);",
        )
        .unwrap();
    let answer = hook(&p, "FABER_ENV=staging npx prisma migrate deploy");
    assert_eq!(answer.decision(), Some("deny"), "{:?}", answer.out);
    assert_eq!(p.ids(), vec![id]);
}

#[test]
fn a_backup_running_past_the_hooks_time_is_stopped_and_denies() {
    if !server_up() {
        return;
    }
    let db = PgDb::new("hook_slow");
    db.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1);");
    let p = project_with(&[("staging", &db)]);
    p.write(
        ".fractary/plugins/faber-db/config.toml",
        "[environments.staging]\nurl_env = \"STAGING_DATABASE_URL\"\nbackup_before_migrate = true\n",
    );
    // A pg_dump that hangs: Claude Code would kill the hook at its timeout and run the
    // migration anyway. The hook stops the backup first, and says no.
    let script = crate::harness::stand_in("pg_dump", "exec /bin/sleep 60\n");
    let (path, libdir) = crate::postgres::fake_tools(&p, Some(&script));
    let p = p
        .with_var("PATH", &path)
        .with_var("FABER_PG_LIBDIR", &libdir)
        .with_var("FABER_HOOK_BACKUP_TIMEOUT", "3");
    let started = std::time::Instant::now();
    let answer = hook(&p, "FABER_ENV=staging npx prisma migrate deploy");
    assert_eq!(answer.decision(), Some("deny"), "{:?}", answer.out);
    assert!(
        answer
            .reason()
            .contains("took longer than the hook may wait"),
        "{}",
        answer.reason()
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(40));
    p.assert_nothing_left("staging");
}

#[test]
fn after_an_unfinished_migrate_a_migration_asks_and_takes_no_backup() {
    let p = Project::with_config(
        "[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\nmigrate_command = \"sh ./migrate.sh\"\n\
         backup_before_migrate = true\nrollback_on_failure = true\n",
    )
    .seeded("db/dev.sqlite3");
    // A migrate whose command fails, killed before its automatic restore.
    p.write("migrate.sh", "exit 3\n");
    let out = p
        .paused_at(&["migrate", "dev", "--yes"], "migrate:before-restore")
        .signal(libc::SIGKILL);
    assert_eq!(out.status.code(), None);
    let before = p.backups();
    let pre = before[0]["id"].as_str().unwrap().to_string();
    let answer = hook(&p, "FABER_ENV=dev npx prisma migrate deploy");
    assert_eq!(answer.decision(), Some("ask"), "{:?}", answer.out);
    assert!(
        answer.reason().contains("half-migrated"),
        "{}",
        answer.reason()
    );
    assert!(
        answer
            .reason()
            .contains(&format!("faber-db rollback dev --to {pre}")),
        "{}",
        answer.reason()
    );
    assert_eq!(
        p.backups(),
        before,
        "no backup of the half-migrated database"
    );
    assert_eq!(hook_events(&p).last().unwrap()["hook"]["decision"], "ask");
    // Once rolled back, the hook backs up and allows again.
    p.run(&["rollback", "dev", "--to", &pre, "--yes"]).code(0);
    assert_eq!(
        hook(&p, "FABER_ENV=dev npx prisma migrate deploy").decision(),
        Some("allow")
    );
}
