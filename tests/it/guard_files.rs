//! Issue 24, step 3, after its review: the spellings of removing backups, writing the config or
//! a protected SQLite file that the hook must see, and the ordinary commands and edits it must
//! leave alone.

use serde_json::{Value, json};

use crate::harness::{BACKUPS, Project};
use crate::hook::{feed, hook};

const CONFIG: &str = ".fractary/plugins/faber-db/config.toml";

/// dev on an SQLite file, production (protected) on another, a backup of production.
fn project() -> Project {
    let p = Project::with_config(
        "[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\n\
         [environments.production]\nurl_env = \"PROD_DATABASE_URL\"\nprotected = true\n",
    )
    .seeded("db/dev.sqlite3")
    .seeded("db/prod.sqlite3");
    p.run(&["backup", "production", "--yes"]).code(0);
    p
}

fn bash_in(p: &Project, cwd: &std::path::Path, command: &str) -> Option<Value> {
    let input = json!({
        "session_id": "s", "cwd": cwd, "permission_mode": "default",
        "hook_event_name": "PreToolUse", "tool_name": "Bash",
        "tool_input": {"command": command},
    });
    feed(p, &input.to_string()).out
}

fn decision(out: Option<&Value>) -> Option<String> {
    out.and_then(|o| o["hookSpecificOutput"]["permissionDecision"].as_str())
        .map(str::to_string)
}

#[test]
fn every_spelling_of_removing_backups_or_the_config_asks() {
    let p = project();
    let b = BACKUPS;
    for line in [
        "rm -rf .fractary/*".to_string(),
        "rm -rf .fr*".to_string(),
        "rm -rf .[!.]*".to_string(),
        "rm -rf .fractary/plugins/faber-db/{backups,config.toml}".to_string(),
        format!("rm -rf {b}/../back*"),
        "git clean -fdx".to_string(),
        "git clean -fdX".to_string(),
        "git rm -r --cached .fractary".to_string(),
        format!("git checkout -- {CONFIG}"),
        format!("sed -Ei 's/protected = true/protected = false/' {CONFIG}"),
        format!("cp -t {b} notes.txt"),
        "find -name '*.zst' -delete".to_string(),
        "find .fractary -type f -exec rm {} +".to_string(),
        format!("find {b} -mtime +0 | xargs rm"),
        "rm -f db/prod.sqlite3".to_string(),
        ": > db/prod.sqlite3".to_string(),
        "cp db/dev.sqlite3 db/prod.sqlite3".to_string(),
        "faber-db init --force".to_string(),
        // A variable in a redirection's target is expanded as in any other word.
        format!("echo x > $PWD/{CONFIG}"),
        format!("X={b}; echo x > \"$X/backups.json\""),
    ] {
        let answer = hook(&p, &line);
        assert_eq!(answer.decision(), Some("ask"), "{line}: {:?}", answer.out);
    }
    // `$PWD` is the command's directory (the project), not the hook's own.
    let answer = hook(&p, &format!("echo x > $PWD/{CONFIG}"));
    let reason = answer.out.unwrap()["hookSpecificOutput"]["permissionDecisionReason"].to_string();
    assert!(reason.contains(&p.root().display().to_string()), "{reason}");
    // From another directory, by absolute or relative path.
    let elsewhere = tempfile::tempdir().unwrap();
    let abs = format!("rm -rf {}/{b}", p.root().display());
    assert_eq!(
        decision(bash_in(&p, elsewhere.path(), &abs).as_ref()).as_deref(),
        Some("ask")
    );
    let parent = p.root().parent().unwrap();
    let name = p.root().file_name().unwrap().to_string_lossy();
    let whole = format!("rm -rf {name}");
    assert_eq!(
        decision(bash_in(&p, parent, &whole).as_ref()).as_deref(),
        Some("ask")
    );
}

#[test]
fn ordinary_work_passes_untouched() {
    let p = project();
    std::fs::create_dir_all(p.path("src")).unwrap();
    for line in [
        "find . -name '*.pyc' -delete",
        "find . -name __pycache__ -exec rm -rf {} +",
        "cp ../README.md .",
        "mv src/old.rs .",
        "cp build.log ..",
        "rm -rf target node_modules dist",
        "cargo build 2>&1 > build.log",
        "echo x > /dev/null",
        "sed -n 's/a/b/p' .fractary/plugins/faber-db/config.toml",
        "git clean -fd",
        "git status",
    ] {
        let answer = hook(&p, line);
        assert!(answer.out.is_none(), "{line}: {:?}", answer.out);
    }
}

#[test]
fn a_monorepo_package_is_judged_by_its_own_config() {
    let p = Project::empty();
    let api = p.path("api");
    std::fs::create_dir_all(api.join(".fractary/plugins/faber-db")).unwrap();
    std::fs::write(
        api.join(CONFIG),
        "[environments.production]\nurl = \"sqlite:prod.sqlite3\"\nprotected = true\n",
    )
    .unwrap();
    for line in [
        "rm -rf api/.fractary/plugins/faber-db/backups",
        "sed -i s/true/false/ api/.fractary/plugins/faber-db/config.toml",
    ] {
        assert_eq!(
            decision(bash_in(&p, p.root(), line).as_ref()).as_deref(),
            Some("ask"),
            "{line}"
        );
    }
}

#[test]
fn a_dotenv_faber_db_cannot_read_does_not_turn_the_guard_off() {
    let p = project();
    p.write(
        ".env",
        "KEY=\"-----BEGIN KEY-----\nabc\n-----END KEY-----\"\nBROKEN LINE\n",
    );
    for line in [
        format!("rm -rf {BACKUPS}"),
        "faber-db restore production --yes".to_string(),
        "sqlite3 db/prod.sqlite3 'DROP TABLE t'".to_string(),
    ] {
        let answer = hook(&p, &line);
        assert_eq!(answer.decision(), Some("ask"), "{line}: {:?}", answer.out);
    }
}

fn edit(p: &Project, tool: &str, file: &str, fields: Value) -> Option<Value> {
    let mut input = fields;
    input["file_path"] = Value::String(p.path(file).display().to_string());
    let input = json!({
        "session_id": "s", "cwd": p.root(), "permission_mode": "default",
        "hook_event_name": "PreToolUse", "tool_name": tool, "tool_input": input,
    });
    feed(p, &input.to_string()).out
}

#[test]
fn edits_the_hook_cannot_replay_or_that_replace_the_config_ask_and_stronger_ones_pass() {
    let p = project();
    // Text not found as given (another line ending, a quote Claude Code may normalise).
    let unknown = edit(
        &p,
        "Edit",
        CONFIG,
        json!({"old_string": "protected = true\r\n", "new_string": ""}),
    );
    assert_eq!(
        decision(unknown.as_ref()).as_deref(),
        Some("ask"),
        "{unknown:?}"
    );
    // Stronger: the hook refusing protected migrations, a comment.
    let config = std::fs::read_to_string(p.path(CONFIG)).unwrap();
    for stronger in [
        format!("{config}\n[hook]\nprotected = \"deny\"\n"),
        format!("# a note\n{config}"),
    ] {
        let out = edit(&p, "Write", CONFIG, json!({"content": stronger}));
        assert!(out.is_none(), "{out:?}");
    }
    // Weaker in another way: production's backups leaving out every table's rows.
    let prod = "[environments.production]\n";
    let weaker = config.replace(prod, &format!("{prod}exclude_table_data = [\"*\"]\n"));
    let out = edit(&p, "Write", CONFIG, json!({"content": weaker}));
    let reason = out
        .as_ref()
        .map(|o| o["hookSpecificOutput"]["permissionDecisionReason"].to_string());
    assert!(
        reason.is_some_and(|r| r.contains("exclude_table_data")),
        "{out:?}"
    );
    // A protected SQLite file written by the Write tool.
    let out = edit(&p, "Write", "db/prod.sqlite3", json!({"content": ""}));
    assert_eq!(decision(out.as_ref()).as_deref(), Some("ask"), "{out:?}");

    // A config.json project: a config.toml beside it would be read instead.
    let j = Project::empty();
    j.write(
        ".fractary/plugins/faber-db/config.json",
        r#"{"environments": {"production": {"url": "sqlite:prod.sqlite3", "protected": true}}}"#,
    );
    let out = edit(
        &j,
        "Write",
        CONFIG,
        json!({"content": "[environments.production]\nurl = \"sqlite:prod.sqlite3\"\nprotected = false\n"}),
    );
    assert_eq!(decision(out.as_ref()).as_deref(), Some("ask"), "{out:?}");
}
