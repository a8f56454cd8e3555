//! The original plugin's `safety` rules in `config.json`, honoured: statements it forbids never
//! run through `migrate` nor the agent's database clients, statements it wants backed up are,
//! and malformed rules are refused by name.

use serde_json::Value;

use crate::harness::Project;
use crate::hook::hook;
use crate::postgres::{PgDb, server_up};

const CONFIG_JSON: &str = ".fractary/plugins/faber-db/config.json";

/// The original plugin's config.json, its safety rules as its example has them, for
/// `production` (protected) and `staging` at `url`s from PROD_/STAGING_DATABASE_URL.
fn original_config(extra_env: &str, backup: &str) -> String {
    format!(
        r#"{{
  "schema_version": "1.0",
  "environments": {{
    "staging": {{"connection_string_env": "STAGING_DATABASE_URL", "backup_before_migrate": false,
                 "migrate_command": "psql -v ON_ERROR_STOP=1 \"$DATABASE_URL\" -f migrations/002_cleanup.sql && touch migrated.txt"{extra_env}}},
    "production": {{"connection_string_env": "PROD_DATABASE_URL", "require_approval": true,
                    "migrate_command": "psql -v ON_ERROR_STOP=1 \"$DATABASE_URL\" -f migrations/002_cleanup.sql && touch migrated.txt"}}
  }},
  "migrations": {{"directory": "migrations", "table": "schema_migrations"}},
  "safety": {{
    "protected_environments": ["production"],
    "require_approval_for": ["migrate", "rollback", "seed"],
    "max_auto_rollback_attempts": 1,
    "health_check_before_deploy": true,
    "validate_destructive_operations": true,
    "backup_enforcement": {{"production": "required", "staging": "optional"}},
    "destructive_operations": {{
      "drop_table": {{"allowed": true, "approval": "enhanced", "require_backup": true}},
      "drop_database": {{"allowed": false, "block_reason": "Never allowed via automation"}},
      "drop_schema": {{"allowed": false, "block_reason": "Requires manual execution"}},
      "truncate": {{"allowed": true, "approval": "enhanced", "row_threshold": 1000}},
      "delete_without_where": {{"allowed": true, "approval": "enhanced", "require_backup": true}},
      "drop_column": {{"allowed": true, "approval": "standard", "require_backup": true}}
    }},
    "approval_timeouts": {{"standard": 300, "enhanced": 600}}
  }},
  "backup": {{"provider": "aws-rds-snapshot", "retention_days": 30{backup}}}
}}"#
    )
}

/// A project on two PostgreSQL databases of its own at migration 001, with the original
/// config; `002_cleanup.sql` holds `sql`.
fn pg_project(stg: &PgDb, prod: &PgDb, sql: &str, extra_env: &str, backup: &str) -> Project {
    for db in [stg, prod] {
        db.exec(
            "CREATE SCHEMA legacy; CREATE TABLE legacy.old (x int); \
             CREATE TABLE users (id int, email text); INSERT INTO users VALUES (1, 'a'); \
             CREATE TABLE schema_migrations (version text PRIMARY KEY); \
             INSERT INTO schema_migrations VALUES ('001');",
        );
    }
    let p = Project::empty()
        .with_var("STAGING_DATABASE_URL", &stg.url())
        .with_var("PROD_DATABASE_URL", &prod.url());
    p.write(CONFIG_JSON, &original_config(extra_env, backup));
    p.write("migrations/001_init.sql", "CREATE TABLE users (id int);");
    p.write("migrations/002_cleanup.sql", sql);
    p
}

#[test]
fn a_forbidden_statement_stops_migrate_before_any_backup_or_command() {
    if !server_up() {
        return;
    }
    let (stg, prod) = (PgDb::new("safety_stg"), PgDb::new("safety_prod"));
    let p = pg_project(
        &stg,
        &prod,
        "ALTER TABLE users ADD COLUMN nick text;\nDROP SCHEMA legacy CASCADE;\n",
        "",
        "",
    );
    for env in ["production", "staging"] {
        for extra in [
            &["--yes", "--allow-destructive"][..],
            &["--dry-run"][..],
            &["--yes", "--no-backup"][..],
        ] {
            let mut args = vec!["migrate", env];
            args.extend_from_slice(extra);
            p.run(&args)
                .code(8)
                .stderr_has(
                    "error: the pending migrations hold statements the config does not allow",
                )
                .stderr_has("002_cleanup")
                .stderr_has("DROP SCHEMA: Requires manual execution")
                .stderr_has("safety.destructive_operations.drop_schema.allowed = false");
        }
    }
    let doc = p.json(
        &["migrate", "production", "--yes", "--allow-destructive"],
        8,
    );
    assert_eq!(doc["error"]["kind"], "aborted", "{doc}");
    assert_eq!(doc["migrated"], false, "{doc}");
    let found = &doc["pending"][0]["destructive"][0];
    assert_eq!(found["kind"], "drop_schema", "{doc}");
    assert_eq!(found["blocked"], "Requires manual execution", "{doc}");
    // Nothing ran, nothing was taken: no backup, no marker, the schema and column as they were.
    assert!(p.backups().is_empty(), "{:?}", p.backups());
    assert!(!p.path("migrated.txt").exists(), "the migrate command ran");
    for db in [&stg, &prod] {
        assert_eq!(
            db.exec(
                "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'legacy'"
            ),
            "1"
        );
        assert_eq!(
            db.exec("SELECT count(*) FROM information_schema.columns WHERE column_name = 'nick'"),
            "0"
        );
    }
    // DROP DATABASE too, with its own reason.
    p.write("migrations/002_cleanup.sql", "DROP DATABASE other;\n");
    p.run(&["migrate", "staging", "--yes"])
        .code(8)
        .stderr_has("DROP DATABASE: Never allowed via automation");
}

#[test]
fn require_backup_takes_the_pre_migration_backup_whatever_the_environment_says() {
    if !server_up() {
        return;
    }
    let (stg, prod) = (PgDb::new("safety_rb_stg"), PgDb::new("safety_rb_prod"));
    // staging has backup_before_migrate = false; drop_column requires a backup.
    let p = pg_project(
        &stg,
        &prod,
        "ALTER TABLE users DROP COLUMN email;\n",
        "",
        "",
    );
    p.run(&["migrate", "staging", "--yes", "--no-backup"])
        .code(1)
        .stderr_has("--no-backup is refused")
        .stderr_has("safety.destructive_operations.drop_column.require_backup");
    assert!(!p.path("migrated.txt").exists());
    assert!(p.backups().is_empty());
    let dry = p.json(&["migrate", "staging", "--dry-run"], 0);
    assert_eq!(
        dry["plan"]["backup_required_by"],
        "safety.destructive_operations.drop_column.require_backup",
        "{dry}"
    );
    let doc = p.json(&["migrate", "staging", "--yes"], 0);
    assert_eq!(doc["migrated"], true, "{doc}");
    assert_eq!(doc["backup"]["reason"], "pre-migration", "{doc}");
    assert!(p.path("migrated.txt").exists());
    // The backup holds the column the migration dropped.
    let backups = p.backups();
    assert_eq!(backups.len(), 1);
    assert_eq!(backups[0]["environment"], "staging");
    assert_eq!(
        stg.exec("SELECT count(*) FROM information_schema.columns WHERE column_name = 'email'"),
        "0"
    );
}

#[test]
fn backup_before_destructive_ops_and_backup_enforcement_keep_the_backup() {
    if !server_up() {
        return;
    }
    let (stg, prod) = (PgDb::new("safety_bd_stg"), PgDb::new("safety_bd_prod"));
    // TRUNCATE has no require_backup of its own: backup_before_destructive_ops covers it.
    let p = pg_project(
        &stg,
        &prod,
        "TRUNCATE users;\n",
        "",
        ", \"backup_before_destructive_ops\": true",
    );
    p.run(&["migrate", "staging", "--yes", "--no-backup"])
        .code(1)
        .stderr_has("backup.backup_before_destructive_ops");
    let doc = p.json(&["migrate", "staging", "--yes"], 0);
    assert_eq!(doc["backup"]["reason"], "pre-migration", "{doc}");
    assert_eq!(stg.exec("SELECT count(*) FROM users"), "0");

    // production's backup is "required": --no-backup is refused even for a harmless migration.
    p.write(
        "migrations/002_cleanup.sql",
        "ALTER TABLE users ADD COLUMN nick text;\n",
    );
    let _ = std::fs::remove_file(p.path("migrated.txt"));
    p.run(&["migrate", "production", "--yes", "--no-backup"])
        .code(1)
        .stderr_has("safety.backup_enforcement.production = \"required\"");
    assert!(!p.path("migrated.txt").exists());
    let doc = p.json(&["migrate", "production", "--yes"], 0);
    assert_eq!(doc["backup"]["reason"], "pre-migration", "{doc}");
}

#[test]
fn the_hook_denies_forbidden_sql_at_any_environments_database() {
    // The hook judges the command; it connects to nothing.
    let p = Project::empty()
        .with_var(
            "PROD_DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/faber_hook_prod",
        )
        .with_var(
            "STAGING_DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/faber_hook_stg",
        );
    p.write(CONFIG_JSON, &original_config("", ""));
    let decision = |command: &str| -> (Option<String>, String) {
        let answer = hook(&p, command);
        let out = answer.out.unwrap_or(Value::Null);
        (
            out["hookSpecificOutput"]["permissionDecision"]
                .as_str()
                .map(str::to_string),
            out["hookSpecificOutput"]["permissionDecisionReason"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        )
    };
    let (d, reason) = decision("psql \"$PROD_DATABASE_URL\" -c 'DROP SCHEMA x CASCADE'");
    assert_eq!(d.as_deref(), Some("deny"), "{reason}");
    assert!(reason.contains("Requires manual execution"), "{reason}");
    assert!(reason.contains("`production`"), "{reason}");
    // Not protected, and denied all the same; so is a target that cannot be told.
    for command in [
        "psql \"$STAGING_DATABASE_URL\" -c 'DROP DATABASE faber_hook_stg'",
        "psql -h 127.0.0.1 -d faber_hook_stg -c 'drop schema legacy'",
        "psql \"$(cat url.txt)\" -c 'DROP SCHEMA x'",
    ] {
        let (d, reason) = decision(command);
        assert_eq!(d.as_deref(), Some("deny"), "{command}: {reason}");
        assert!(reason.contains("not allowed"), "{command}: {reason}");
    }
    // Allowed kinds keep their old answers: ask at production, nothing at staging.
    let (d, _) = decision("psql \"$PROD_DATABASE_URL\" -c 'DROP TABLE users'");
    assert_eq!(d.as_deref(), Some("ask"));
    let (d, _) = decision("psql \"$STAGING_DATABASE_URL\" -c 'DROP TABLE users'");
    assert_eq!(d, None);
    // Another database altogether: not the project's to rule.
    let (d, _) = decision("psql -h db.elsewhere -d other -c 'DROP SCHEMA x'");
    assert_eq!(d, None);
    // The denial is in the history.
    let history =
        std::fs::read_to_string(p.path(".fractary/plugins/faber-db/backups/history.jsonl"))
            .unwrap();
    assert!(history.contains("\"deny\""), "{history}");
}

#[test]
fn malformed_safety_rules_are_config_errors_naming_the_key() {
    let base: Value = serde_json::from_str(&original_config("", "")).unwrap();
    for (path, value, key) in [
        (
            "/safety/destructive_operations/drop_database/allowed",
            serde_json::json!("no"),
            "safety.destructive_operations.drop_database.allowed",
        ),
        (
            "/safety/destructive_operations/drop_schema/block_reason",
            serde_json::json!(5),
            "safety.destructive_operations.drop_schema.block_reason",
        ),
        (
            "/safety/destructive_operations/truncate/row_threshold",
            serde_json::json!(-1),
            "safety.destructive_operations.truncate.row_threshold",
        ),
        (
            "/safety/destructive_operations/drop_column/approval",
            serde_json::json!("maximal"),
            "safety.destructive_operations.drop_column.approval",
        ),
        (
            "/safety/backup_enforcement/production",
            serde_json::json!("sometimes"),
            "safety.backup_enforcement.production",
        ),
        (
            "/safety/require_approval_for",
            serde_json::json!(["migrate", "deploy-everything"]),
            "safety.require_approval_for",
        ),
        (
            "/safety/approval_timeouts/enhanced",
            serde_json::json!("10m"),
            "safety.approval_timeouts.enhanced",
        ),
        (
            "/safety/max_auto_rollback_attempts",
            serde_json::json!(0),
            "safety.max_auto_rollback_attempts",
        ),
        (
            "/safety/health_check_before_deploy",
            serde_json::json!("yes"),
            "safety.health_check_before_deploy",
        ),
        (
            "/backup/backup_before_destructive_ops",
            serde_json::json!(1),
            "backup.backup_before_destructive_ops",
        ),
        (
            "/backup/provider",
            serde_json::json!(["s3"]),
            "backup.provider",
        ),
    ] {
        let mut config = base.clone();
        let (parent, name) = path.rsplit_once('/').unwrap();
        config
            .pointer_mut(parent)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .insert(name.to_string(), value);
        let p = Project::empty();
        p.write(CONFIG_JSON, &config.to_string());
        p.run(&["status"])
            .code(1)
            .stderr_has(&format!("error: {}", p.path(CONFIG_JSON).display()))
            .stderr_has(key)
            .stderr_has("hint:");
    }
    // A kind, an environment or a rule key that does not exist.
    for (edit, key) in [
        (
            ("/safety/destructive_operations", "drop_tabel"),
            "safety.destructive_operations.drop_tabel",
        ),
        (
            ("/safety/backup_enforcement", "prod"),
            "safety.backup_enforcement names `prod`",
        ),
        (
            ("/safety/destructive_operations/truncate", "alowed"),
            "safety.destructive_operations.truncate.alowed",
        ),
    ] {
        let mut config = base.clone();
        let (at, name) = edit;
        config
            .pointer_mut(at)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .insert(name.to_string(), serde_json::json!("optional"));
        let p = Project::empty();
        p.write(CONFIG_JSON, &config.to_string());
        p.run(&["status"]).code(1).stderr_has(key);
    }
    // "required" and backup_before_migrate = false contradict each other.
    let mut config = base.clone();
    config["environments"]["production"]["backup_before_migrate"] = serde_json::json!(false);
    let p = Project::empty();
    p.write(CONFIG_JSON, &config.to_string());
    p.run(&["status"])
        .code(1)
        .stderr_has("safety.backup_enforcement.production is \"required\"");
}

/// DROP DATABASE names the database it drops: PostgreSQL refuses to drop the one a session is
/// connected to, so it is sent from another database of the same server (`postgres`, a
/// maintenance database) — and is denied all the same when that server holds an environment's.
#[test]
fn the_hook_denies_drop_database_sent_from_another_database_of_an_environments_server() {
    let p = Project::empty()
        .with_var(
            "PROD_DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/faber_hook_prod",
        )
        .with_var(
            "STAGING_DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/faber_hook_stg",
        );
    p.write(CONFIG_JSON, &original_config("", ""));
    for command in [
        "psql -h 127.0.0.1 -U postgres -d postgres -c 'DROP DATABASE faber_hook_stg'",
        "psql postgres://postgres@localhost:5432/postgres -c 'drop database faber_hook_prod'",
        "psql -h localhost template1 -c 'DROP DATABASE IF EXISTS faber_hook_stg'",
    ] {
        let out = hook(&p, command).out.unwrap_or(Value::Null);
        let decision = &out["hookSpecificOutput"]["permissionDecision"];
        let reason = out["hookSpecificOutput"]["permissionDecisionReason"]
            .as_str()
            .unwrap_or("");
        assert_eq!(decision, "deny", "{command}: {out}");
        assert!(
            reason.contains("Never allowed via automation"),
            "{command}: {reason}"
        );
    }
    // Another server is not the project's to rule; a DROP SCHEMA acts on the database connected
    // to, which is no environment's.
    for command in [
        "psql -h db.elsewhere -d postgres -c 'DROP DATABASE faber_hook_stg'",
        "psql -h 127.0.0.1 -d postgres -c 'DROP SCHEMA legacy'",
    ] {
        let out = hook(&p, command).out.unwrap_or(Value::Null);
        assert!(
            out["hookSpecificOutput"]["permissionDecision"].is_null(),
            "{command}: {out}"
        );
    }
}
