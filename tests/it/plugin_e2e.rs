//! The plugin's `PreToolUse` hook in a real agent session: the Claude Code client (`claude -p`),
//! with the plugin installed in a temporary HOME, runs the Bash command a model asks for, and
//! the hook's decision — `allow`, `deny`, `ask` — decides whether it runs.
//!
//! The model is the one part that is not real: the client is pointed (`ANTHROPIC_BASE_URL`) at
//! [`MockApi`] (tests/it/mock_api.rs), a small Messages API on 127.0.0.1 that answers the first
//! turn with a `tool_use` of the Bash tool running the command under test, and the next one
//! (carrying the `tool_result`) with "done". What the client sent back in that `tool_result` is
//! what the agent would have seen: the command's output, or the hook's reason.
//!
//! What the client 2.1.332 does with the hook's answers in `-p` mode, as these tests check:
//! `allow` runs a command no permission rule allows (which `-p` refuses otherwise); `deny` and
//! `ask` both refuse it — there is no one to ask — even with `--allowedTools Bash`, listing it in
//! the result's `permission_denials` and giving the agent the hook's reason as an error. Each
//! test runs the same command with the hook turned off too (`[hook] enabled = false`), to show
//! that the decision, not the client's own rules, made the difference (for `faber-db … --yes`
//! on a protected environment, faber-db then refuses by itself: the Bash tool's `CLAUDECODE=1`
//! tells it that the `--yes` is the agent's).
//!
//! Without the client these tests skip, unless `FABER_REQUIRE_SERVICES=1` (as tests/it/plugin.rs).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{BACKUPS, BIN, Project};
use crate::mock_api::MockApi;
use crate::plugin::{Claude, MARKETPLACE, clone_of_checkout};

/// A project with dev (backed up before migrations) and a protected production, each an SQLite
/// database with a table `t` of one row, and `./migrate.sh` as both environments' migration.
const CONFIG: &str = r#"
default_environment = "dev"

[defaults]
compression = "gzip"

[environments.dev]
url_env = "DEV_DATABASE_URL"
backup_before_migrate = true
migrate_command = "./migrate.sh"

[environments.production]
url_env = "PROD_DATABASE_URL"
migrate_command = "./migrate.sh"

[hook]
protected = "deny"
"#;

/// The project's migration: a table `posts` in the environment's database, a line in
/// `migrated.log`.
const MIGRATE_SH: &str = r#"#!/bin/sh
set -e
case "${FABER_ENV:-dev}" in
production) db=${PROD_DATABASE_URL#sqlite:} ;;
*) db=${DEV_DATABASE_URL#sqlite:} ;;
esac
sqlite3 -bail "$db" "CREATE TABLE posts (id integer PRIMARY KEY)"
echo "${FABER_ENV:-dev}" >> migrated.log
"#;

/// One turn of the agent: the client's `--output-format json` result and the `tool_result` it
/// sent back to the model.
struct Turn {
    result: Value,
    tool_result: Value,
}

impl Turn {
    /// The text of the tool_result: the command's output, or why it did not run.
    fn text(&self) -> String {
        match &self.tool_result["content"] {
            Value::String(s) => s.clone(),
            Value::Array(blocks) => blocks
                .iter()
                .filter_map(|b| b["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            other => other.to_string(),
        }
    }

    /// Whether the client refused the command (it did not run).
    fn refused(&self) -> bool {
        let denials = self.result["permission_denials"].as_array().unwrap();
        let refused = self.tool_result["is_error"] == true && !denials.is_empty();
        if refused {
            assert_eq!(denials[0]["tool_name"], "Bash", "{}", self.result);
        }
        refused
    }
}

/// The client with the plugin installed, a project, and the mock model.
struct Session {
    claude: Claude,
    _clone: tempfile::TempDir,
    project: Project,
    api: MockApi,
}

impl Session {
    fn new() -> Option<Session> {
        let claude = Claude::find()?;
        let clone = clone_of_checkout();
        claude.ok(&[
            "plugin",
            "marketplace",
            "add",
            clone.path().to_str().unwrap(),
        ]);
        claude.ok(&["plugin", "install", &format!("faber-db@{MARKETPLACE}")]);
        let project = Project::with_config(CONFIG)
            .seeded("db/dev.sqlite3")
            .seeded("db/prod.sqlite3");
        project.write("migrate.sh", MIGRATE_SH);
        fs::set_permissions(
            project.path("migrate.sh"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        Some(Session {
            claude,
            _clone: clone,
            project,
            api: MockApi::start(),
        })
    }

    /// Turns the hook on or off in the project's config.
    fn hook_enabled(&self, on: bool) {
        self.project.write(
            ".fractary/plugins/faber-db/config.toml",
            &format!("{CONFIG}enabled = {on}\n"),
        );
    }

    /// `claude -p` in the project, the model asking for the Bash command `command`.
    fn agent(&self, command: &str, flags: &[&str]) -> Turn {
        self.agent_with(command, flags, Some(BIN), None, &[])
    }

    /// [`Session::agent`] with the launcher given `faber_db_bin` as `FABER_DB_BIN` (none: it
    /// must find, download or build one), `path_first` before the PATH, and `env` besides.
    fn agent_with(
        &self,
        command: &str,
        flags: &[&str],
        faber_db_bin: Option<&str>,
        path_first: Option<&std::path::Path>,
        env: &[(&str, &str)],
    ) -> Turn {
        let first = self.api.ask_for(command);
        self.client(first, command, flags, faber_db_bin, path_first, env)
    }

    /// `claude -p` in the project, the model asking for tool `name` with `input`.
    fn agent_tool(&self, name: &str, input: Value, flags: &[&str]) -> Turn {
        let first = self.api.ask_for_tool(name, input);
        self.client(first, name, flags, Some(BIN), None, &[])
    }

    /// Runs the client once the model's request is set (`first`: the requests before it).
    fn client(
        &self,
        first: usize,
        command: &str,
        flags: &[&str],
        faber_db_bin: Option<&str>,
        path_first: Option<&std::path::Path>,
        env: &[(&str, &str)],
    ) -> Turn {
        let mut path = std::env::var_os("PATH").unwrap_or_default();
        if let Some(dir) = path_first {
            let mut joined = dir.as_os_str().to_owned();
            joined.push(":");
            joined.push(&path);
            path = joined;
        }
        let out_path = self.claude.home.path().join("agent.out");
        let err_path = self.claude.home.path().join("agent.err");
        let mut child = Command::new(&self.claude.bin)
            .args(["-p", "Run the command.", "--output-format", "json"])
            .args(flags)
            .current_dir(self.project.root())
            .env_clear()
            .env("PATH", &path)
            .env("HOME", self.claude.home.path())
            .env("ANTHROPIC_BASE_URL", self.api.url())
            .env("ANTHROPIC_API_KEY", "mock-key")
            .env("DISABLE_TELEMETRY", "1")
            .env("DISABLE_AUTOUPDATER", "1")
            .env("DISABLE_ERROR_REPORTING", "1")
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .env("DEV_DATABASE_URL", "sqlite:db/dev.sqlite3")
            .env("PROD_DATABASE_URL", "sqlite:db/prod.sqlite3")
            .envs(faber_db_bin.map(|bin| ("FABER_DB_BIN", bin)))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out_path).unwrap())
            .stderr(fs::File::create(&err_path).unwrap())
            .spawn()
            .expect("the Claude Code client starts");
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "claude -p ({command}) still runs after 60 s; stderr:\n{}",
                    fs::read_to_string(&err_path).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stdout = fs::read_to_string(&out_path).unwrap();
        let stderr = fs::read_to_string(&err_path).unwrap();
        let requests = self.api.requests_since(first);
        let seen: Vec<String> = requests
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        let context = format!(
            "claude -p ({command}) exited {status}; requests {seen:?}\n\
             stdout:\n{stdout}\nstderr:\n{stderr}"
        );
        assert!(status.success(), "{context}");
        let result: Value =
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {context}"));
        assert_eq!(result["subtype"], "success", "{context}");
        assert_eq!(result["result"], "done", "{context}");
        let tool_result = requests
            .iter()
            .filter_map(|r| r.body["messages"].as_array()?.last()?["content"].as_array())
            .flatten()
            .find(|b| b["type"] == "tool_result")
            .unwrap_or_else(|| panic!("no tool_result came back: {context}"))
            .clone();
        Turn {
            result,
            tool_result,
        }
    }

    fn hook_events(&self) -> Vec<Value> {
        fs::read_to_string(self.project.path(&format!("{BACKUPS}/history.jsonl")))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|e| e["event"] == "hook")
            .collect()
    }

    fn migrated(&self) -> String {
        fs::read_to_string(self.project.path("migrated.log")).unwrap_or_default()
    }

    fn tables(&self, db: &str) -> Vec<String> {
        let conn = self.project.sqlite(db);
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn rows(&self, db: &str) -> Vec<i64> {
        let conn = self.project.sqlite(db);
        let mut stmt = conn.prepare("SELECT x FROM t ORDER BY x").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }
}

#[test]
fn agent_migration_on_dev_is_backed_up_then_allowed_to_run() {
    let Some(s) = Session::new() else { return };
    // Without the hook, -p mode refuses `./migrate.sh` (no rule allows it).
    s.hook_enabled(false);
    let turn = s.agent("./migrate.sh", &[]);
    assert!(turn.refused(), "{}\n{}", turn.result, turn.tool_result);
    assert_eq!(s.migrated(), "");
    assert!(s.project.backups().is_empty());
    assert!(s.hook_events().is_empty());

    // With it: the pre-migration backup, then `allow`, and the migration runs.
    s.hook_enabled(true);
    let turn = s.agent("./migrate.sh", &[]);
    assert!(!turn.refused(), "{}\n{}", turn.result, turn.tool_result);
    assert_eq!(turn.tool_result["is_error"], false, "{}", turn.tool_result);
    assert_eq!(s.migrated(), "dev\n");
    assert_eq!(s.tables("db/dev.sqlite3"), ["posts", "t"]);
    let backups = s.project.backups();
    assert_eq!(backups.len(), 1, "{backups:?}");
    let backup = &backups[0];
    assert_eq!(backup["environment"], "dev");
    assert_eq!(backup["reason"], "pre-migration");
    assert_eq!(backup["command"], "./migrate.sh");
    // Taken before the migration ran: `t` only.
    let tables: Vec<&String> = backup["tables"].as_object().unwrap().keys().collect();
    assert_eq!(tables, ["t"], "{backup}");
    let events = s.hook_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["hook"]["decision"], "allow", "{}", events[0]);
    assert_eq!(events[0]["hook"]["command"], "./migrate.sh");
    assert_eq!(events[0]["environment"], "dev");
    assert_eq!(events[0]["id"], backup["id"]);
    assert_eq!(
        s.project
            .run(&["verify", backup["id"].as_str().unwrap()])
            .code,
        0
    );
}

#[test]
fn agent_migration_of_protected_production_is_denied_even_when_bash_is_allowed() {
    let Some(s) = Session::new() else { return };
    let command = "FABER_ENV=production ./migrate.sh";
    let turn = s.agent(command, &["--allowedTools", "Bash"]);
    assert!(turn.refused(), "{}\n{}", turn.result, turn.tool_result);
    let events = s.hook_events();
    assert_eq!(events.len(), 1, "{events:?}");
    let hook = &events[0]["hook"];
    assert_eq!(hook["decision"], "deny", "{}", events[0]);
    assert_eq!(events[0]["environment"], "production");
    assert_eq!(hook["command"], command);
    // The agent is told the hook's reason, which sends it to /faber-db:migrate.
    let reason = hook["reason"].as_str().unwrap();
    assert!(reason.contains("/faber-db:migrate production"), "{reason}");
    assert!(turn.text().contains(reason), "{}", turn.text());
    assert_eq!(s.migrated(), "");
    assert_eq!(s.tables("db/prod.sqlite3"), ["t"]);
    assert!(
        s.project.backups().is_empty(),
        "protected = \"deny\" takes no backup"
    );

    // The same command without the hook: --allowedTools Bash lets it run.
    s.hook_enabled(false);
    let turn = s.agent(command, &["--allowedTools", "Bash"]);
    assert!(!turn.refused(), "{}\n{}", turn.result, turn.tool_result);
    assert_eq!(s.migrated(), "production\n");
    assert_eq!(s.tables("db/prod.sqlite3"), ["posts", "t"]);
}

/// The hook asks, about the command rewritten to carry an approval; without the hook, faber-db
/// refuses by itself (issue 24).
#[test]
fn agent_restore_of_production_with_yes_waits_for_the_human() {
    let Some(s) = Session::new() else { return };
    assert_eq!(s.project.run(&["backup", "production", "--yes"]).code, 0);
    s.project
        .sqlite("db/prod.sqlite3")
        .execute("INSERT INTO t VALUES (2)", [])
        .unwrap();
    // `ask` in -p mode: nobody to ask, so the client refuses, even with Bash allowed.
    let command = "faber-db restore production --yes";
    let turn = s.agent(command, &["--allowedTools", "Bash"]);
    assert!(turn.refused(), "{}\n{}", turn.result, turn.tool_result);
    let events = s.hook_events();
    assert_eq!(events.len(), 1, "{events:?}");
    let hook = &events[0]["hook"];
    assert_eq!(hook["decision"], "ask", "{}", events[0]);
    assert_eq!(events[0]["environment"], "production");
    // The reason (the restore's plan, from its --dry-run) is what the agent is told.
    let reason = hook["reason"].as_str().unwrap();
    assert!(reason.contains("only you can approve"), "{reason}");
    assert!(turn.text().contains(reason), "{}", turn.text());
    assert_eq!(s.rows("db/prod.sqlite3"), [1, 2], "production is unchanged");
    assert_eq!(
        s.project.backups().len(),
        1,
        "no pre-restore backup: nothing ran"
    );
    // What the human was asked about is the command rewritten to carry a one-time approval
    // (the client applies the hook's `updatedInput` before it asks).
    let denied = &turn.result["permission_denials"][0]["tool_input"];
    let asked = denied["command"].as_str().unwrap();
    assert!(
        asked.starts_with("FABER_APPROVAL=") && asked.ends_with(command),
        "{denied}"
    );
    assert_eq!(denied["description"], "the command under test", "{denied}");

    // Without the hook, the plugin's `faber-db` on the Bash tool's PATH runs, and refuses
    // itself: `--yes` from the agent's shell is not the human's answer.
    s.hook_enabled(false);
    let turn = s.agent(command, &["--allowedTools", "Bash"]);
    assert!(!turn.refused(), "{}\n{}", turn.result, turn.tool_result);
    assert!(
        turn.text().contains("needs the user's approval"),
        "{}",
        turn.text()
    );
    assert_eq!(s.rows("db/prod.sqlite3"), [1, 2], "{}", turn.text());
    assert_eq!(s.project.backups().len(), 1, "{:?}", s.project.backups());
}

#[test]
fn a_session_start_builds_the_binary_the_hook_and_the_bash_tool_then_run() {
    let Some(s) = Session::new() else { return };
    // No FABER_DB_BIN, no faber-db anywhere and no release to download (FABER_DB_RELEASE_URL
    // off): the plugin must build its own. A stand-in cargo "builds" it by copying this test
    // build where it is told to, and says how it was called.
    let tools = tempfile::tempdir().unwrap();
    let log = tools.path().join("cargo.argv");
    let cargo = tools.path().join("cargo");
    fs::write(
        &cargo,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nroot=\nwhile [ $# -gt 0 ]; do\n  case $1 in --root) root=$2; shift ;; esac\n  shift\ndone\nmkdir -p \"$root/bin\" && cp '{BIN}' \"$root/bin/faber-db\"\n",
            log.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&cargo, fs::Permissions::from_mode(0o755)).unwrap();
    // The session's SessionStart hook starts the build; the PreToolUse hook and the Bash tool
    // (which Claude Code gives no CLAUDE_PLUGIN_DATA) find it; the migration is backed up. The
    // model takes its time, as a real one does, until the build is linked where the Bash tool
    // finds it: only the SessionStart hook can have started it by then.
    let version = env!("CARGO_PKG_VERSION");
    let linked = s
        .claude
        .home
        .path()
        .join(format!(".cache/faber-db/{version}/bin/faber-db"));
    s.api.think_until(&linked);
    let turn = s.agent_with(
        "./migrate.sh",
        &[],
        None,
        Some(tools.path()),
        &[("FABER_DB_RELEASE_URL", "off")],
    );
    let calls = fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(calls.lines().count(), 1, "one build: {calls}");
    // From the plugin Claude Code runs (its CLAUDE_PLUGIN_ROOT), into the plugin's data
    // directory (its CLAUDE_PLUGIN_DATA), keyed by version.
    let words: Vec<&str> = calls.split_whitespace().collect();
    assert_eq!(words[..3], ["install", "--locked", "--path"], "{calls}");
    assert!(
        std::path::Path::new(words[3])
            .join(".claude-plugin/plugin.json")
            .is_file(),
        "built from a plugin root: {calls}"
    );
    let home = s.claude.home.path().display().to_string();
    assert_eq!(words[4], "--root", "{calls}");
    assert!(
        words[5].starts_with(&format!("{home}/.claude/plugins/data/"))
            && words[5].ends_with(&format!("/{}", env!("CARGO_PKG_VERSION"))),
        "built into the plugin's data directory: {calls}"
    );
    assert!(linked.exists(), "linked where the Bash tool finds it");
    assert!(s.migrated().contains("dev"), "{}", turn.text());
    assert_eq!(
        s.hook_events().len(),
        1,
        "the hook decided: {}",
        turn.text()
    );
    assert_eq!(s.hook_events()[0]["hook"]["decision"], "allow");
}

#[test]
fn a_session_start_downloads_the_release_binary_the_hook_and_the_bash_tool_then_run() {
    let Some(s) = Session::new() else { return };
    // A release served from 127.0.0.1; a cargo that fails, so that only the download can give
    // the plugin its binary.
    let tmp = tempfile::tempdir().unwrap();
    let release = crate::launcher_download::Release::serve(tmp.path());
    let tools = tempfile::tempdir().unwrap();
    let log = tools.path().join("cargo.argv");
    fs::write(
        tools.path().join("cargo"),
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexit 101\n",
            log.display()
        ),
    )
    .unwrap();
    fs::set_permissions(
        tools.path().join("cargo"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let version = env!("CARGO_PKG_VERSION");
    let linked = s
        .claude
        .home
        .path()
        .join(format!(".cache/faber-db/{version}/bin/faber-db"));
    s.api.think_until(&linked);
    let url = release.url();
    let turn = s.agent_with(
        "./migrate.sh",
        &[],
        None,
        Some(tools.path()),
        &[("FABER_DB_RELEASE_URL", &url)],
    );
    assert!(!log.exists(), "cargo ran: {:?}", fs::read_to_string(&log));
    assert_eq!(
        release.asked(),
        crate::launcher_download::Release::paths(),
        "the SHA256SUMS, then the archive"
    );
    // Downloaded into the plugin's data directory, linked where the Bash tool finds it.
    assert_eq!(fs::read(&linked).unwrap(), release.binary);
    assert!(s.migrated().contains("dev"), "{}", turn.text());
    assert_eq!(
        s.hook_events().len(),
        1,
        "the hook decided: {}",
        turn.text()
    );
    assert_eq!(s.hook_events()[0]["hook"]["decision"], "allow");
}

/// The hook runs on the agent's edits too (issue 24): an `Edit` of faber-db's config that turns
/// production's protection off is asked about — refused in `-p` mode, where nobody can be
/// asked — even with the Edit tool allowed.
#[test]
fn agent_edit_that_unprotects_production_is_asked_about() {
    let Some(s) = Session::new() else { return };
    let config = s.project.path(".fractary/plugins/faber-db/config.toml");
    let before = fs::read_to_string(&config).unwrap();
    s.project.write(
        ".fractary/plugins/faber-db/config.toml",
        &before.replace(
            "[environments.production]\n",
            "[environments.production]\nprotected = true\n",
        ),
    );
    let input = serde_json::json!({
        "file_path": config.to_str().unwrap(),
        "old_string": "protected = true",
        "new_string": "protected = false",
    });
    let turn = s.agent_tool("Edit", input, &["--allowedTools", "Edit"]);
    let denials = turn.result["permission_denials"].as_array().unwrap();
    assert_eq!(denials.len(), 1, "{}", turn.result);
    assert_eq!(denials[0]["tool_name"], "Edit", "{}", turn.result);
    assert!(
        turn.text().contains("`production` loses protected"),
        "{}",
        turn.text()
    );
    assert!(
        fs::read_to_string(&config)
            .unwrap()
            .contains("protected = true")
    );
    let events = s.hook_events();
    assert_eq!(
        events.last().unwrap()["hook"]["decision"],
        "ask",
        "{events:?}"
    );
}
