//! Configuration: both file formats, the plugin's original keys, defaults, and dotenv files.

use crate::harness::Project;

#[test]
fn the_plugins_original_config_json_is_accepted() {
    let p = Project::empty();
    p.write(
        ".fractary/plugins/faber-db/config.json",
        r#"{
  "schema_version": "1.0",
  "database": {"provider": "postgresql", "hosting": "local", "migration_tool": "prisma"},
  "environments": {
    "dev": {"connection_string_env": "DEV_DATABASE_URL", "auto_migrate": true, "backup_before_migrate": false},
    "staging": {"connection_string_env": "STAGING_DATABASE_URL", "backup_retention_days": 14},
    "production": {"connection_string_env": "PROD_DATABASE_URL", "require_approval": true}
  },
  "migrations": {"directory": "prisma/migrations", "table": "_prisma_migrations", "timeout_seconds": 300},
  "safety": {"protected_environments": ["production", "staging"], "require_approval_for": ["migrate"]},
  "backup": {"retention_days": 45, "provider": "local"}
}"#,
    );
    let p = p.with_var("DEV_DATABASE_URL", "sqlite:dev.sqlite3");
    p.sqlite("dev.sqlite3")
        .execute_batch("CREATE TABLE t (x);")
        .unwrap();
    let doc = p.json(&["backup", "dev"], 0);
    assert_eq!(
        doc["backup"]["retention_days"], 45,
        "backup.retention_days is the default retention"
    );
    let doc = p.json(&["status"], 0);
    let env = |name: &str| {
        doc["environments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["environment"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(env("staging")["protected"], true);
    assert_eq!(env("staging")["retention"], "14d");
    assert_eq!(env("production")["protected"], true);
    assert_eq!(env("dev")["protected"], false);
}

#[test]
fn defaults_per_environment() {
    let p = Project::with_config(
        "[environments.dev]\n[environments.staging]\n[environments.production]\n[environments.qa]\n",
    );
    let doc = p.json(&["status"], 0);
    let envs = doc["environments"].as_array().unwrap();
    let get = |name: &str| {
        envs.iter()
            .find(|e| e["environment"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(get("dev")["retention"], "30d");
    assert_eq!(get("staging")["retention"], "60d");
    assert_eq!(get("production")["retention"], "90d");
    assert_eq!(get("qa")["retention"], "30d");
    assert_eq!(get("production")["protected"], true);
    assert_eq!(get("staging")["protected"], false);
    // url_env defaults to <ENV>_DATABASE_URL, with production shortened to PROD.
    assert!(
        get("qa")["url_problem"]
            .as_str()
            .unwrap()
            .contains("QA_DATABASE_URL")
    );
    assert_eq!(
        get("production")["url"],
        format!("sqlite:{}", p.path("db/prod.sqlite3").display())
    );
}

#[test]
fn dotenv_files_are_read_and_never_override_the_environment() {
    let p = Project::with_config("[environments.dev]\n");
    p.sqlite("db/a.sqlite3")
        .execute_batch("CREATE TABLE a (x);")
        .unwrap();
    p.sqlite("db/b.sqlite3")
        .execute_batch("CREATE TABLE b (x);")
        .unwrap();
    p.write(".env", "# comment\nDEV_DATABASE_URL=sqlite:db/a.sqlite3\n");
    p.write(
        ".env.local",
        "DEV_DATABASE_URL=sqlite:db/b.sqlite3\nOTHER=1\n",
    );
    let p = p.with_var("DEV_DATABASE_URL", "");
    // An empty variable counts as unset; .env.local wins over .env.
    let doc = p.json(&["backup", "dev"], 0);
    assert!(doc["backup"]["tables"].get("b").is_some(), "{doc}");
    let p = p.with_var("DEV_DATABASE_URL", "sqlite:db/a.sqlite3");
    let doc = p.json(&["backup", "dev"], 0);
    assert!(
        doc["backup"]["tables"].get("a").is_some(),
        "a set variable wins over both files"
    );
    std::fs::remove_file(p.path(".env.local")).unwrap();
    let p = p.with_var("DEV_DATABASE_URL", "");
    let doc = p.json(&["backup", "dev"], 0);
    assert!(doc["backup"]["tables"].get("a").is_some(), ".env alone");
}

#[test]
fn inline_urls_with_passwords_are_refused() {
    let p = Project::with_config(
        "[environments.dev]\nurl = \"postgres://app:hunter2@localhost/app\"\n",
    );
    let run = p.run(&["list"]).code(1).stderr_has("url_env");
    assert!(
        !run.stderr.contains("hunter2"),
        "the password is never echoed"
    );
}

#[test]
fn root_and_config_flags() {
    let p = Project::new();
    p.sqlite("db/dev.sqlite3")
        .execute_batch("CREATE TABLE t (x);")
        .unwrap();
    // From a subdirectory, the root is found by walking up to .fractary/.
    std::fs::create_dir_all(p.path("src/deep")).unwrap();
    let out = std::process::Command::new(crate::harness::BIN)
        .args(["backup", "dev", "--json"])
        .current_dir(p.path("src/deep"))
        .env("DEV_DATABASE_URL", "sqlite:db/dev.sqlite3")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        p.path(".fractary/plugins/faber-db/backups/backups.json")
            .exists()
    );

    let other = tempfile::tempdir().unwrap();
    std::fs::write(
        other.path().join("alt.toml"),
        "[environments.alt]\nurl = \"sqlite:db/dev.sqlite3\"\n",
    )
    .unwrap();
    let alt = other.path().join("alt.toml");
    let root = p.root().to_str().unwrap();
    p.run(&[
        "--root",
        root,
        "--config",
        alt.to_str().unwrap(),
        "backup",
        "alt",
    ])
    .code(0);
    p.run(&["--root", "/definitely/not/here", "list"])
        .code(1)
        .stderr_has("not a directory");
}

#[test]
fn a_bare_number_of_days_is_a_retention() {
    // As the original plugin wrote them: `retention = 90`, `--retention 90`.
    let p = Project::with_config(
        "[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\nretention = 90\n",
    )
    .seeded("db/dev.sqlite3");
    let doc = p.json(&["backup", "dev"], 0);
    assert_eq!(doc["backup"]["retention_days"], 90);
    let doc = p.json(&["backup", "dev", "--retention", "7"], 0);
    assert_eq!(doc["backup"]["retention_days"], 7);
    p.run(&["backup", "dev", "--retention", "0"])
        .code(1)
        .stderr_has("out of range");
    p.write(
        ".fractary/plugins/faber-db/config.toml",
        "[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\nretention = true\n",
    );
    p.run(&["backup", "dev"])
        .code(1)
        .stderr_has("a number of days");
}

#[test]
fn prisma_file_urls_are_sqlite_databases_beside_the_schema() {
    // Prisma's `DATABASE_URL="file:./dev.db"` names prisma/dev.db, beside prisma/schema.prisma.
    let p = Project::with_config("[environments.dev]\nurl_env = \"DATABASE_URL\"\n")
        .with_var("DATABASE_URL", "file:./dev.db");
    p.write(
        "prisma/schema.prisma",
        "datasource db {\n  provider = \"sqlite\"\n}\n",
    );
    let p = p.seeded("prisma/dev.db");
    let doc = p.json(&["backup", "dev"], 0);
    assert_eq!(doc["backup"]["database"], "dev.db");
    assert_eq!(doc["backup"]["tables"]["t"]["rows"], 1);
    p.run(&["backup", "dev"]).code(0);
    // Without a Prisma schema, from the root.
    let q = Project::with_config("[environments.dev]\nurl_env = \"DATABASE_URL\"\n")
        .with_var("DATABASE_URL", "file:db/dev.sqlite3")
        .seeded("db/dev.sqlite3");
    q.run(&["backup", "dev"]).code(0);
}
