//! The repository as a Claude Code plugin, through the real client (`claude plugin validate`,
//! `marketplace add`, `install`, `details`) in a temporary HOME; and the release workflow of
//! `config/workflows/`, every faber-db command of it parsed and run by the real binary.
//!
//! The client is the one `scripts/services.sh` installs in `.ci/node/`, or `FABER_CLAUDE_BIN`.
//! Without it these tests skip, unless `FABER_REQUIRE_SERVICES=1`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::harness::{BIN, Project};
use crate::services::required;

const REPO: &str = env!("CARGO_MANIFEST_DIR");
/// The marketplace `.claude-plugin/marketplace.json` declares.
pub const MARKETPLACE: &str = "faber-db";

fn repo(rel: &str) -> PathBuf {
    Path::new(REPO).join(rel)
}

fn read_json(rel: &str) -> Value {
    let text = fs::read_to_string(repo(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel} is not JSON: {e}"))
}

/// The names of the slash commands: `commands/*.md`, read from the directory.
fn command_names() -> BTreeSet<String> {
    let names: BTreeSet<String> = fs::read_dir(repo("commands"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.len() >= 15, "{names:?}");
    names
}

/// The Claude Code client, with a HOME of its own.
pub struct Claude {
    pub bin: PathBuf,
    pub home: tempfile::TempDir,
}

impl Claude {
    /// The client from `FABER_CLAUDE_BIN`, else `.ci/node/`; `None` (skip) when there is none,
    /// a failure when services are required.
    pub fn find() -> Option<Claude> {
        let bin = match std::env::var_os("FABER_CLAUDE_BIN") {
            Some(b) => PathBuf::from(b),
            None => repo(".ci/node/node_modules/.bin/claude"),
        };
        let works = Command::new(&bin)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !works {
            let why = format!(
                "the Claude Code client is not installed at {} (run scripts/services.sh, or set FABER_CLAUDE_BIN)",
                bin.display()
            );
            assert!(!required(), "{why}, and FABER_REQUIRE_SERVICES=1");
            eprintln!("skipping: {why}");
            return None;
        }
        let home = tempfile::Builder::new()
            .prefix("faber-claude-home-")
            .tempdir()
            .unwrap();
        Some(Claude { bin, home })
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .args(args)
            .current_dir(self.home.path())
            .stdin(Stdio::null())
            .env("HOME", self.home.path())
            .env_remove("CLAUDE_CONFIG_DIR")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("CLAUDE_PLUGIN_ROOT")
            .env_remove("CLAUDE_PLUGIN_DATA")
            .env("DISABLE_TELEMETRY", "1")
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .output()
            .expect("the Claude Code client runs")
    }

    /// Runs and checks it exits 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "claude {args:?} exited {:?}\nstdout:\n{stdout}\nstderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}

/// A clone of this checkout as it would be committed: the files git tracks, and the new ones it
/// does not ignore — not `target/`, not `.ci/node/`. The client copies a local marketplace's
/// plugin directory whole into its cache, so installing from the checkout itself would copy
/// gigabytes of build output.
pub fn clone_of_checkout() -> tempfile::TempDir {
    let out = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(REPO)
        .output()
        .expect("git runs (the plugin tests copy the checkout's files)");
    assert!(out.status.success(), "git ls-files failed: {out:?}");
    let dir = tempfile::Builder::new()
        .prefix("faber-plugin-clone-")
        .tempdir()
        .unwrap();
    for rel in out.stdout.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        let rel = std::str::from_utf8(rel).unwrap();
        let from = repo(rel);
        if !from.is_file() {
            continue; // deleted in the worktree
        }
        let to = dir.path().join(rel);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(&from, &to).unwrap(); // keeps the mode: bin/ and hooks/ scripts stay executable
    }
    dir
}

fn du(path: &Path) -> u64 {
    let mut total = 0;
    for e in fs::read_dir(path).unwrap().flatten() {
        let meta = e.metadata().unwrap();
        total += if meta.is_dir() {
            du(&e.path())
        } else {
            meta.len()
        };
    }
    total
}

#[test]
fn manifests_carry_the_crate_version() {
    let plugin = read_json(".claude-plugin/plugin.json");
    assert_eq!(plugin["name"], "faber-db");
    assert_eq!(plugin["version"], env!("CARGO_PKG_VERSION"), "{plugin}");
    assert_eq!(plugin["license"], "MIT");
    let market = read_json(".claude-plugin/marketplace.json");
    assert_eq!(market["name"], MARKETPLACE);
    let entries = market["plugins"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{market}");
    assert_eq!(entries[0]["name"], "faber-db");
    assert_eq!(entries[0]["source"], "./");
    assert_eq!(entries[0]["version"], env!("CARGO_PKG_VERSION"), "{market}");
}

#[test]
fn hooks_json_runs_the_session_start_script_and_the_pre_tool_use_hook() {
    let hooks = read_json("hooks/hooks.json");
    let nth = |event: &str, n: usize, groups_in_all: usize| -> Value {
        let groups = hooks["hooks"][event].as_array().unwrap();
        assert_eq!(groups.len(), groups_in_all, "{event}: {hooks}");
        let inner = groups[n]["hooks"].as_array().unwrap();
        assert_eq!(inner.len(), 1, "{event}: {hooks}");
        assert_eq!(inner[0]["type"], "command");
        let mut hook = inner[0].clone();
        hook["matcher"] = groups[n]["matcher"].clone();
        hook
    };
    let only = |event: &str| nth(event, 0, if event == "PreToolUse" { 2 } else { 1 });
    let start = only("SessionStart");
    assert_eq!(
        start["command"],
        "\"${CLAUDE_PLUGIN_ROOT}/hooks/session-start.sh\""
    );
    assert_eq!(start["timeout"], 10);
    let pre = only("PreToolUse");
    assert_eq!(pre["matcher"], "Bash");
    assert_eq!(
        pre["command"],
        "\"${CLAUDE_PLUGIN_ROOT}/bin/faber-db\" hook pre-tool-use"
    );
    assert_eq!(pre["timeout"], 600);
    // The agent's edits of files: the config's protection and the backups (issue 24).
    let edits = nth("PreToolUse", 1, 2);
    assert_eq!(edits["matcher"], "Edit|Write|MultiEdit");
    assert_eq!(edits["command"], pre["command"]);
    assert_eq!(hooks["hooks"].as_object().unwrap().len(), 2, "{hooks}");
}

#[test]
fn claude_validates_the_plugin_and_its_marketplace() {
    let Some(claude) = Claude::find() else { return };
    for target in [
        REPO.to_string(),
        format!("{REPO}/.claude-plugin/plugin.json"),
    ] {
        let doc: Value =
            serde_json::from_str(&claude.ok(&["plugin", "validate", "--json", &target]))
                .unwrap_or_else(|e| panic!("validate --json {target}: {e}"));
        assert_eq!(doc["success"], true, "{doc}");
        assert_eq!(doc["manifest"]["errors"], serde_json::json!([]), "{doc}");
        assert_eq!(doc["manifest"]["warnings"], serde_json::json!([]), "{doc}");
        // What the client reads out of the directory: every command, the skill, both hooks.
        let provides = &doc["provides"];
        let listed: BTreeSet<String> = provides["commands"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect();
        let expected: BTreeSet<String> = command_names()
            .iter()
            .map(|c| format!("faber-db:{c}"))
            .collect();
        assert_eq!(listed, expected, "{provides}");
        assert!(
            provides["skills"].to_string().contains("faber-db"),
            "{provides}"
        );
        let hooks: Vec<(String, String)> = provides["hooks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["event"].as_str().unwrap().to_string(),
                    h["matcher"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        for matcher in ["Bash", "Edit|Write|MultiEdit"] {
            assert!(
                hooks.contains(&("PreToolUse".into(), matcher.into())),
                "{hooks:?}"
            );
        }
        assert!(hooks.iter().any(|(e, _)| e == "SessionStart"), "{hooks:?}");
    }
}

#[test]
fn claude_installs_the_plugin_from_a_clone() {
    let Some(claude) = Claude::find() else { return };
    let clone = clone_of_checkout();
    let source = clone.path().to_str().unwrap();
    let added = claude.ok(&["plugin", "marketplace", "add", source]);
    assert!(added.contains(MARKETPLACE), "{added}");
    let id = format!("faber-db@{MARKETPLACE}");
    let installed = claude.ok(&["plugin", "install", &id]);
    assert!(installed.contains(&id), "{installed}");

    // `details` lists every command (as skills, the way the client counts them), the skill and
    // both hooks.
    let details = claude.ok(&["plugin", "details", &id]);
    assert!(
        details.starts_with(&format!("faber-db {}", env!("CARGO_PKG_VERSION"))),
        "{details}"
    );
    let line = |prefix: &str| -> String {
        details
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{details}"))
            .to_string()
    };
    let skills_line = line("Skills (");
    let (count, names) = skills_line["Skills (".len()..].split_once(')').unwrap();
    let names: BTreeSet<String> = names.trim().split(", ").map(String::from).collect();
    let mut expected = command_names();
    expected.insert("faber-db".into()); // skills/faber-db/SKILL.md
    assert_eq!(names, expected, "{details}");
    assert_eq!(count.parse::<usize>().unwrap(), expected.len(), "{details}");
    let hooks_line = line("Hooks (");
    assert!(
        hooks_line.starts_with("Hooks (2)")
            && hooks_line.contains("SessionStart")
            && hooks_line.contains("PreToolUse"),
        "{details}"
    );

    // The copy in the client's cache is the plugin, at the crate's version: its hooks, its bin/
    // and its manifest, and no build output.
    let record: Value = serde_json::from_str(
        &fs::read_to_string(
            claude
                .home
                .path()
                .join(".claude/plugins/installed_plugins.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let entry = &record["plugins"][&id][0];
    assert_eq!(entry["version"], env!("CARGO_PKG_VERSION"), "{record}");
    let cached = PathBuf::from(entry["installPath"].as_str().unwrap());
    for rel in [
        "hooks/hooks.json",
        ".claude-plugin/plugin.json",
        "skills/faber-db/SKILL.md",
    ] {
        assert_eq!(
            fs::read(cached.join(rel)).unwrap(),
            fs::read(repo(rel)).unwrap(),
            "{rel}"
        );
    }
    assert!(!cached.join("target").exists());
    let size = du(&cached);
    assert!(size < 20 << 20, "the installed copy holds {size} bytes");
}

/// Every `` `faber-db …` `` a string of the workflow names, in file order, with the step that
/// names it.
fn workflow_commands(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for phase in ["frame", "architect", "build", "evaluate", "release"] {
        for step in doc["phases"][phase]["steps"].as_array().unwrap() {
            let name = step["name"].as_str().unwrap();
            let text = step["prompt"].as_str().unwrap_or("");
            for code in text.split('`').skip(1).step_by(2) {
                if let Some(rest) = code.strip_prefix("faber-db ") {
                    out.push((name.to_string(), rest.to_string()));
                }
            }
        }
    }
    out
}

/// Fills `{placeholder}`s with `values`; one missing is a failure.
fn fill(args: &str, values: &BTreeMap<&str, String>) -> Vec<String> {
    args.split_whitespace()
        .map(
            |a| match a.strip_prefix('{').and_then(|a| a.strip_suffix('}')) {
                Some(name) => values
                    .get(name)
                    .unwrap_or_else(|| panic!("no value for {{{name}}} yet in `{args}`"))
                    .clone(),
                None => a.to_string(),
            },
        )
        .collect()
}

#[test]
fn workflow_names_only_commands_the_cli_accepts() {
    let doc = read_json("config/workflows/faber-db-integrated.json");
    assert_eq!(doc["id"], "faber-db-integrated");
    assert_eq!(doc["phases"]["release"]["require_approval"], true);
    let commands = workflow_commands(&doc);
    let release: Vec<&str> = commands
        .iter()
        .filter(|(step, _)| {
            doc["phases"]["release"]["steps"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["name"] == step.as_str())
        })
        .map(|(_, c)| c.as_str())
        .collect();
    for needed in [
        "backup production",
        "migrate production",
        "rollback production",
    ] {
        assert!(
            release.iter().any(|c| c.starts_with(needed)),
            "the release phase does not run `faber-db {needed}`: {release:?}"
        );
    }
    // The rollback is the on-failure step.
    let rollback_step = doc["phases"]["release"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["prompt"]
                .as_str()
                .unwrap_or("")
                .contains("`faber-db rollback")
        })
        .unwrap();
    assert_eq!(rollback_step["conditional"], "only_if_failures");
    let values: BTreeMap<&str, String> = [
        ("pre_release_backup", "backup-20250124-140000-pre-release"),
        (
            "pre_migration_backup",
            "backup-20250124-140500-pre-migration",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect();
    for (step, args) in &commands {
        assert!(
            !args.contains("--yes"),
            "{step}: the agent never adds --yes: {args}"
        );
        let mut argv = fill(args, &values);
        argv.push("--help".into());
        let out = Command::new(BIN).args(&argv).output().unwrap();
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Usage:"),
            "{step}: `faber-db {}` does not parse: {}",
            argv.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Applies `migrations/*.up.sql` not yet in `schema_migrations`, like golang-migrate.
const MIGRATE_SH: &str = r#"#!/bin/sh
set -e
db="${DATABASE_URL#sqlite:}"
sqlite3 -bail "$db" "CREATE TABLE IF NOT EXISTS schema_migrations (version varchar(64) PRIMARY KEY)"
for f in $(ls migrations/*.up.sql | sort); do
  v=$(basename "$f" | cut -d_ -f1)
  [ "$(sqlite3 "$db" "SELECT count(*) FROM schema_migrations WHERE version = '$v'")" = 0 ] || continue
  sqlite3 -bail "$db" < "$f"
  sqlite3 "$db" "INSERT INTO schema_migrations VALUES ('$v')"
done
"#;

#[test]
fn workflow_runs_end_to_end_on_sqlite() {
    // Each workflow command in order, on dev, staging and a protected production; where one
    // exits 8 the user is taken to have agreed, and it runs again with --yes.
    let p = Project::with_config(
        "[defaults]\ncompression = \"gzip\"\n[migrations]\ndirectory = \"migrations\"\n\
         [environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\nmigrate_command = \"sh ./migrate.sh\"\n\
         [environments.staging]\nurl_env = \"STAGING_DATABASE_URL\"\nmigrate_command = \"sh ./migrate.sh\"\n\
         [environments.production]\nurl_env = \"PROD_DATABASE_URL\"\nmigrate_command = \"sh ./migrate.sh\"\n",
    )
    .with_var("STAGING_DATABASE_URL", "sqlite:db/staging.sqlite3");
    p.write("migrate.sh", MIGRATE_SH);
    for db in ["db/dev.sqlite3", "db/staging.sqlite3", "db/prod.sqlite3"] {
        p.sqlite(db)
            .execute_batch("CREATE TABLE users (id integer PRIMARY KEY, name text NOT NULL); INSERT INTO users VALUES (1, 'ada');")
            .unwrap();
    }
    p.write(
        "migrations/001_posts.up.sql",
        "CREATE TABLE posts (id integer PRIMARY KEY, body text);",
    );
    let doc = read_json("config/workflows/faber-db-integrated.json");
    let mut values: BTreeMap<&str, String> = BTreeMap::new();
    let mut ran = Vec::new();
    for (step, args) in workflow_commands(&doc) {
        let argv = fill(&args, &values);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let mut run = p.run(&argv);
        if run.code == 8 {
            assert!(argv.contains(&"production"), "{step}: {argv:?} asked");
            let mut yes = argv.clone();
            yes.push("--yes");
            run = p.run(&yes);
        }
        let run = run.code(0);
        let out: Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("{step}: {argv:?} printed no JSON ({e}): {}", run.stdout));
        assert_eq!(out["ok"], true, "{step}: {out}");
        match (step.as_str(), argv.contains(&"--dry-run")) {
            ("pre-release-backup", false) => {
                values.insert(
                    "pre_release_backup",
                    out["backup"]["id"].as_str().unwrap().into(),
                );
            }
            ("migrate-production", false) => {
                values.insert(
                    "pre_migration_backup",
                    out["backup"]["id"].as_str().unwrap().into(),
                );
            }
            _ => {}
        }
        ran.push(format!("{step}: {}", argv.join(" ")));
    }
    assert!(ran.len() >= 10, "{ran:#?}");
    // The release's backups, and production rolled back to before the migration.
    let reasons: BTreeSet<String> = p
        .backups()
        .iter()
        .filter(|b| b["environment"] == "production")
        .map(|b| b["reason"].as_str().unwrap_or("").to_string())
        .collect();
    for reason in ["pre-release", "pre-migration", "pre-rollback"] {
        assert!(reasons.contains(reason), "{reasons:?}\n{ran:#?}");
    }
    let prod = p.sqlite("db/prod.sqlite3");
    let posts: i64 = prod
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'posts'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(posts, 0, "production was rolled back");
    let staging = p.sqlite("db/staging.sqlite3");
    let posts: i64 = staging
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'posts'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(posts, 1, "staging was migrated");
}
