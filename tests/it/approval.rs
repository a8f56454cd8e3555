//! Issue 24: from an agent's shell (`CLAUDECODE=1`), `--yes` alone changes no protected
//! environment; the plugin's hook, asking the human, issues a one-time approval for exactly the
//! command asked about, and rewrites the command to carry it. Each command here runs as Claude
//! Code's Bash tool would run it: `sh -c` in the project, no terminal, `CLAUDECODE=1` and the
//! session's ID in its environment, `faber-db` on the PATH.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use serde_json::Value;

use crate::harness::{BIN, Project, Run};
use crate::hook::hook;

/// The hook's session in `crate::hook::hook`'s input.
const SESSION: &str = "test-session";

/// A project whose production (protected by its name) holds rows 1 and 2, with two backups
/// taken at row 1 (so that a cleanup has one to remove).
fn project() -> Project {
    let p = Project::new()
        .seeded("db/dev.sqlite3")
        .seeded("db/prod.sqlite3");
    p.run(&["backup", "production", "--yes", "--label", "first"])
        .code(0);
    p.run(&["backup", "production", "--yes"]).code(0);
    p.run(&["backup", "dev"]).code(0);
    insert(&p, 2);
    p
}

/// The ID of production's first backup.
fn first(p: &Project) -> String {
    p.backups()
        .iter()
        .find(|b| b["label"] == "first")
        .map(|b| b["id"].as_str().unwrap().to_string())
        .unwrap()
}

/// The ID of the newest backup of `env`.
fn newest_of(p: &Project, env: &str) -> String {
    let backups = p.backups();
    let newest = backups
        .iter()
        .filter(|b| b["environment"] == env)
        .max_by_key(|b| b["timestamp"].as_str().unwrap().to_string())
        .unwrap();
    newest["id"].as_str().unwrap().to_string()
}

fn insert(p: &Project, x: i64) {
    p.sqlite("db/prod.sqlite3")
        .execute("INSERT INTO t VALUES (?1)", [x])
        .unwrap();
}

fn rows(p: &Project) -> Vec<i64> {
    let db = p.sqlite("db/prod.sqlite3");
    let mut st = db.prepare("SELECT x FROM t ORDER BY x").unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Production's rows, if it still has its table.
fn rows_if_any(p: &Project) -> Option<Vec<i64>> {
    let db = rusqlite::Connection::open(p.path("db/prod.sqlite3")).ok()?;
    let mut st = db.prepare("SELECT x FROM t ORDER BY x").ok()?;
    let rows = st.query_map([], |r| r.get(0)).ok()?;
    rows.collect::<Result<Vec<i64>, _>>().ok()
}

/// The command line run as the agent's Bash tool runs it, in session `session`.
fn agent_in(p: &Project, line: &str, session: &str) -> Run {
    let bin_dir = std::path::Path::new(BIN).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let mut cmd: Command = p.command_of("sh", &["-c", line]);
    let out = cmd
        .env("PATH", path)
        .env("CLAUDECODE", "1")
        .env("CLAUDE_CODE_SESSION_ID", session)
        .output()
        .unwrap();
    Run {
        args: vec![line.to_string()],
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn agent(p: &Project, line: &str) -> Run {
    agent_in(p, line, SESSION)
}

/// What the hook has the human approve instead of `line`: the rewritten tool input.
fn approved_input(p: &Project, line: &str) -> Value {
    let answer = hook(p, line);
    assert_eq!(answer.decision(), Some("ask"), "{line}: {:?}", answer.out);
    answer.out.unwrap()["hookSpecificOutput"]["updatedInput"].clone()
}

fn approved(p: &Project, line: &str) -> String {
    let input = approved_input(p, line);
    input["command"]
        .as_str()
        .unwrap_or_else(|| panic!("no rewritten command for {line}: {input}"))
        .to_string()
}

#[test]
fn from_an_agents_shell_yes_alone_changes_no_protected_environment() {
    let p = project();
    let id = first(&p);
    let before = p.backups().len();
    for line in [
        "faber-db restore production --yes".to_string(),
        "faber-db restore production -y".to_string(),
        "faber-db -q restore production --yes".to_string(),
        format!("faber-db restore production --from {id} --yes --no-safety-backup"),
        "faber-db rollback production --accept-data-loss --yes".to_string(),
        format!("faber-db delete {id} --yes"),
        "faber-db cleanup production --keep-last 0 --yes".to_string(),
        "faber-db cleanup --older-than 0s --yes".to_string(),
        "faber-db backup production --yes".to_string(),
        "FABER_ENV=production faber-db restore --yes".to_string(),
        "env -u CLAUDECODE faber-db restore production --yes".to_string(),
        "yes | faber-db restore production --yes".to_string(),
    ] {
        let run = agent(&p, &line);
        assert_eq!(run.code, 8, "{line}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains("needs the user's approval") && run.stderr.contains("hint:"),
            "{line}: {}",
            run.stderr
        );
        assert_eq!(rows(&p), [1, 2], "{line} changed production");
        assert_eq!(p.backups().len(), before, "{line} took or removed a backup");
    }
    // An unprotected environment is the agent's to change, --yes and all.
    let run = agent(&p, "faber-db restore dev --yes");
    assert_eq!(run.code, 0, "{}", run.stderr);
    // And outside an agent's shell, --yes answers as it always did.
    p.run(&["restore", "production", "--yes"]).code(0);
    assert_eq!(rows(&p), [1]);
}

#[test]
fn the_command_the_human_approves_carries_an_approval_used_once() {
    let p = project();
    let line = "faber-db restore production --yes";
    let input = approved_input(&p, line);
    let command = input["command"].as_str().unwrap();
    assert!(
        command.starts_with("FABER_APPROVAL=") && command.ends_with(line),
        "{command}"
    );
    assert_eq!(
        input["description"], "run it",
        "the input's other fields are kept"
    );
    // The approval waits, private, in the backup directory.
    let dir = p.path(&format!("{}/.approvals", crate::harness::BACKUPS));
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    assert_eq!(files.len(), 1);
    assert_eq!(
        files[0].metadata().unwrap().permissions().mode() & 0o777,
        0o600
    );

    let run = agent(&p, command);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(rows(&p), [1], "restored");
    assert!(std::fs::read_dir(&dir).unwrap().next().is_none(), "taken");

    // The same command again, approval and all: refused, nothing changed.
    insert(&p, 3);
    let replay = agent(&p, command);
    assert_eq!(replay.code, 8, "{}", replay.stderr);
    assert!(replay.stderr.contains("used already"), "{}", replay.stderr);
    assert_eq!(rows(&p), [1, 3]);
}

#[test]
fn an_approval_unlocks_nothing_but_its_own_command_while_it_lasts() {
    let mut p = project();
    let id_of = |command: &str| {
        command
            .split_whitespace()
            .next()
            .and_then(|w| w.strip_prefix("FABER_APPROVAL="))
            .unwrap()
            .to_string()
    };
    let refused = |p: &Project, line: &str, says: &str| {
        let run = agent(p, line);
        assert_eq!(run.code, 8, "{line}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains(says),
            "{line}: no {says:?} in {}",
            run.stderr
        );
        assert_eq!(rows(p), [1, 2], "{line} changed production");
    };

    // Another command, given the approval of a restore.
    let id = id_of(&approved(&p, "faber-db restore production --yes"));
    refused(
        &p,
        &format!("FABER_APPROVAL={id} faber-db rollback production --accept-data-loss --yes"),
        "not for this command",
    );
    // Spent by the wrong try: the restore it was for is refused too.
    refused(
        &p,
        &format!("FABER_APPROVAL={id} faber-db restore production --yes"),
        "used already",
    );

    // A newer backup since the human said yes: not the backup they approved loading.
    let command = approved(&p, "faber-db restore production --yes");
    p.run(&["backup", "production", "--yes"]).code(0);
    refused(&p, &command, "would load backup");

    // Another Claude Code session.
    let command = approved(&p, "faber-db restore production --yes");
    let run = agent_in(&p, &command, "another-session");
    assert_eq!(run.code, 8, "{}", run.stderr);
    assert!(
        run.stderr.contains("another Claude Code session"),
        "{}",
        run.stderr
    );

    // Too late: approvals last five minutes.
    p.at("2030-01-01T12:00:00Z");
    let command = approved(&p, "faber-db restore production --yes");
    p.at("2030-01-01T12:05:01Z");
    refused(&p, &command, "expired");
    p.at("2030-01-01T12:00:00Z");

    // An approval the agent wrote itself into the command is not one the hook issues anew:
    // the human is asked, with no approval to carry.
    let answer = hook(
        &p,
        &format!("FABER_APPROVAL={id} faber-db restore production --yes"),
    );
    assert_eq!(answer.decision(), Some("ask"));
    assert!(answer.out.unwrap()["hookSpecificOutput"]["updatedInput"].is_null());

    // In time, in its session, for its command: it goes.
    let command = approved(&p, "faber-db restore production --yes");
    p.at("2030-01-01T12:04:00Z");
    let run = agent(&p, &command);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
}

#[test]
fn every_protected_change_goes_with_its_approval() {
    let p = project();
    let id = first(&p);
    for (line, check) in [
        (
            "faber-db rollback production --accept-data-loss --yes".to_string(),
            "rollback",
        ),
        ("faber-db backup production --yes".to_string(), "backup"),
        (format!("faber-db delete {id} --yes"), "delete"),
        (
            "faber-db cleanup production --keep-last 1 --yes".to_string(),
            "cleanup",
        ),
    ] {
        let before = p.backups().len();
        let command = approved(&p, &line);
        let run = agent(&p, &command);
        assert_eq!(run.code, 0, "{line}: {}{}", run.stdout, run.stderr);
        let after = p.backups().len();
        match check {
            "backup" => assert_eq!(after, before + 1),
            "rollback" => assert_eq!(rows(&p), [1]),
            _ => assert!(after < before, "{line}: {before} -> {after}"),
        }
    }
}

/// The red-team list (issue 24): spellings an agent might give a restore of protected
/// production, each run twice — through the hook, as Claude Code would send it, and as the
/// process Claude Code would start (`CLAUDECODE=1`, no terminal). Production changes only when
/// the command the hook rewrote to carry its approval runs, and then once.
#[test]
fn red_team_spellings_of_a_protected_restore() {
    let p = project();
    p.write(
        "restore.sh",
        "#!/bin/sh\nfaber-db restore production --yes\n",
    );
    let prod_id = newest_of(&p, "production");
    let shapes = [
        "faber-db restore production --yes".to_string(),
        "faber-db restore production -y".to_string(),
        "faber-db -qy restore production".to_string(),
        "faber-db --yes restore production".to_string(),
        "faber-db restore production --yes=true".to_string(),
        "FABER_ENV=production faber-db restore --yes".to_string(),
        "env FABER_ENV=production faber-db restore --yes".to_string(),
        format!("{BIN} restore production --yes"),
        "bash -c \"faber-db restore production --yes\"".to_string(),
        "sh -c 'faber-db restore production --yes'".to_string(),
        "eval \"faber-db restore production --yes\"".to_string(),
        "cd . && faber-db restore production --yes".to_string(),
        "true && faber-db restore production --yes".to_string(),
        "timeout 60 faber-db restore production --yes".to_string(),
        "yes | faber-db restore production --yes".to_string(),
        "faber-db restore production --yes 2>&1 | tail -n 3".to_string(),
        "echo production | xargs faber-db restore --yes".to_string(),
        "$(echo faber-db) restore production --yes".to_string(),
        "sh restore.sh".to_string(),
        "printf 'faber-db restore production --yes' > r2.sh && sh r2.sh".to_string(),
        "python3 -c \"import subprocess; subprocess.run(['faber-db', 'restore', 'production', '--yes'])\"".to_string(),
        "script -qec 'faber-db restore production --yes' /dev/null".to_string(),
        "env -u CLAUDECODE faber-db restore production --yes".to_string(),
        "CLAUDECODE= faber-db restore production --yes".to_string(),
        // A terminal the agent made, answering the question itself.
        "printf 'production\\n' | script -qec 'faber-db restore production' /dev/null".to_string(),
        "printf 'production\\n' | python3 -c \"import pty, sys; sys.exit(pty.spawn(['faber-db', 'restore', 'production']) >> 8)\"".to_string(),
        // Another environment pointed at production's database.
        "DEV_DATABASE_URL=sqlite:db/prod.sqlite3 faber-db restore dev --from PROD_ID --yes".to_string(),
        "FABER_APPROVAL=0123456789abcdef0123456789abcdef faber-db restore production --yes"
            .to_string(),
    ];
    let shapes: Vec<String> = shapes
        .iter()
        .map(|s| s.replace("PROD_ID", &prod_id))
        .collect();
    let (mut by_hook, mut by_faber, mut approved_runs) = (0, 0, 0);
    for line in &shapes {
        // As the process: faber-db itself refuses, whatever the spelling.
        // (A pipeline's status is its last command's: what counts is production.)
        let run = agent(&p, line);
        assert_eq!(
            rows(&p),
            [1, 2],
            "{line} changed production: {}",
            run.stderr
        );
        by_faber += 1;
        // Through the hook: a decision, and at most one approval, for this very command.
        let answer = hook(&p, line);
        let out = answer.out.unwrap_or_default();
        let decision = out["hookSpecificOutput"]["permissionDecision"].as_str();
        let command = out["hookSpecificOutput"]["updatedInput"]["command"].as_str();
        eprintln!(
            "red team: {line}\n  faber-db: exit {}; hook: {}{}",
            run.code,
            decision.unwrap_or("no decision"),
            if command.is_some() {
                ", with an approval"
            } else {
                ""
            }
        );
        if matches!(decision, Some("ask" | "deny")) {
            by_hook += 1;
        }
        let Some(command) = command else {
            continue;
        };
        let run = agent(&p, command);
        assert_eq!(run.code, 0, "{command}: {}{}", run.stdout, run.stderr);
        assert_eq!(rows(&p), [1], "{command} did not restore");
        approved_runs += 1;
        insert(&p, 2);
        agent(&p, command);
        assert_eq!(rows(&p), [1, 2], "{command} ran twice");
    }
    eprintln!(
        "red team: {} spellings; faber-db refused {by_faber}, the hook asked or denied {by_hook}, {approved_runs} ran with the approval the hook issued",
        shapes.len()
    );
    assert_eq!(by_faber, shapes.len());
    assert!(by_hook >= 20, "{by_hook}");

    // With both variables gone, faber-db cannot tell an agent's shell from a script's: only the
    // hook sees this one (docs/plugin.md lists it as not caught by faber-db).
    let line = "unset CLAUDECODE CLAUDE_CODE_SESSION_ID; faber-db restore production --yes";
    let answer = hook(&p, line);
    assert_eq!(answer.decision(), Some("ask"), "{:?}", answer.out);
    let out = answer.out.unwrap();
    assert!(
        out["hookSpecificOutput"]["updatedInput"]["command"].is_string(),
        "{out}"
    );
}

/// Issue 24's other doors: the servers' own tools that drop without a line of SQL. The hook
/// reads them as the statements they amount to, sent where they go (it judges words: no server
/// is needed).
#[test]
fn dropdb_pg_restore_clean_and_mysqladmin_drop_at_a_protected_database_ask() {
    let p = Project::with_config(
        "[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\n\
         [environments.production]\nurl_env = \"PROD_DATABASE_URL\"\n\
         [environments.shop]\nurl_env = \"SHOP_DATABASE_URL\"\nprotected = true\n",
    )
    .with_var(
        "PROD_DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/app_prod",
    )
    .with_var("SHOP_DATABASE_URL", "mysql://root@127.0.0.1:3306/shop");
    for line in [
        "dropdb -h 127.0.0.1 -U postgres app_prod",
        "dropdb --if-exists app_prod",
        "PGHOST=localhost dropdb -f app_prod",
        "pg_restore --clean -d postgres://postgres@localhost/app_prod dump.pgc",
        "pg_restore -c --if-exists -j 2 -h 127.0.0.1 -d app_prod dump.pgc",
        "pg_restore -C -c -d app_prod dump.pgc",
        "mysqladmin -h 127.0.0.1 -u root drop shop",
        "mysqladmin -u root -f DROP shop",
        "bash -c 'dropdb app_prod'",
    ] {
        asks_with(&hook(&p, line), line, "DROP");
    }
    for line in [
        "dropdb -h 127.0.0.1 scratch_copy",
        "dropdb -h db.elsewhere.example app_prod",
        "pg_restore -d app_prod dump.pgc",
        "pg_restore --clean -f restore.sql dump.pgc",
        "mysqladmin -u root drop scratch",
        "mysqladmin -u root status",
    ] {
        let answer = hook(&p, line);
        assert!(answer.out.is_none(), "{line}: {:?}", answer.out);
    }
}

/// Approvals go only where a human answers: not in a permission mode that lets `ask` through
/// unasked, not when the question is not shown (a deny wins, or two commands would need one),
/// not to an agent that runs the hook itself; and one the agent was seen to hold is spent.
#[test]
fn the_hook_gives_approvals_only_to_questions_a_human_sees() {
    let p = project();
    let approvals = p.path(&format!("{}/.approvals", crate::harness::BACKUPS));
    let waiting = || std::fs::read_dir(&approvals).map_or(0, Iterator::count);
    let input = |command: &str, mode: &str| {
        serde_json::json!({
            "session_id": SESSION,
            "cwd": p.root(),
            "permission_mode": mode,
            "hook_event_name": "PreToolUse",
            "tool_name": "Bash",
            "tool_input": {"command": command},
        })
        .to_string()
    };
    let line = "faber-db restore production --yes";
    for mode in ["bypassPermissions", "auto", "dontAsk"] {
        let answer = crate::hook::feed(&p, &input(line, mode));
        assert_eq!(answer.decision(), Some("ask"), "{mode}");
        let out = answer.out.unwrap();
        assert!(
            out["hookSpecificOutput"]["updatedInput"].is_null(),
            "{mode}: {out}"
        );
    }
    for mode in ["default", "acceptEdits", "plan"] {
        let answer = crate::hook::feed(&p, &input(line, mode));
        let out = answer.out.unwrap();
        assert!(
            out["hookSpecificOutput"]["updatedInput"].is_object(),
            "{mode}: {out}"
        );
    }
    // (Those three are waiting; a new project starts the rest from none.)
    std::fs::remove_dir_all(&approvals).unwrap();

    // Two commands in a line: one variable cannot carry two approvals; none is left waiting.
    let two = "faber-db restore production --yes && faber-db backup production --yes";
    let answer = hook(&p, two);
    assert_eq!(answer.decision(), Some("ask"));
    assert!(answer.out.unwrap()["hookSpecificOutput"]["updatedInput"].is_null());
    assert_eq!(waiting(), 0);

    // The agent running the hook itself, to have it issue an approval: denied.
    let minted = format!(
        "echo '{}' | faber-db hook pre-tool-use",
        input(line, "default").replace('\'', "")
    );
    let answer = hook(&p, &minted);
    assert_eq!(answer.decision(), Some("deny"), "{:?}", answer.out);
    assert_eq!(waiting(), 0);

    // An approval seen in a command the agent wrote is spent, even before it is used.
    let command = approved(&p, line);
    let id = command.split_whitespace().next().unwrap();
    hook(
        &p,
        &format!("{id} faber-db restore production --yes --no-safety-backup"),
    );
    let run = agent(&p, &command);
    assert_eq!(run.code, 8, "{}", run.stderr);
    assert!(run.stderr.contains("used already"), "{}", run.stderr);
    assert_eq!(rows(&p), [1, 2]);

    // A run that says no Claude Code session is not in the one it was given in.
    let command = approved(&p, line);
    let bin_dir = std::path::Path::new(BIN).parent().unwrap();
    let out = p
        .command_of("sh", &["-c", &command])
        .env(
            "PATH",
            format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()),
        )
        .env("CLAUDECODE", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(8));
    assert!(String::from_utf8_lossy(&out.stderr).contains("another Claude Code session"));
    assert_eq!(rows(&p), [1, 2]);
}

/// Checks that the hook's `answer` asks, with `needle` in its reason (`what`: for the message).
fn asks_with(answer: &crate::hook::Answer, what: &str, needle: &str) {
    assert_eq!(answer.decision(), Some("ask"), "{what}: {:?}", answer.out);
    let reason = answer.out.as_ref().unwrap()["hookSpecificOutput"]["permissionDecisionReason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reason.contains(needle), "{what}: no {needle:?} in {reason}");
}

/// Claude Code's input for the `tool` (Edit, Write, MultiEdit) with `fields`.
fn edit_input(p: &Project, tool: &str, fields: Value) -> String {
    let mut input = fields;
    input["file_path"] = Value::String(format!("{}/{CONFIG}", p.root().display()));
    serde_json::json!({
        "session_id": SESSION,
        "cwd": p.root(),
        "permission_mode": "default",
        "hook_event_name": "PreToolUse",
        "tool_name": tool,
        "tool_input": input,
    })
    .to_string()
}

const CONFIG: &str = ".fractary/plugins/faber-db/config.toml";

/// dev backed up before migrations, production protected, a production backup.
fn guarded_project() -> Project {
    let p = Project::with_config(
        "[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\nbackup_before_migrate = true\n\
         [environments.production]\nurl_env = \"PROD_DATABASE_URL\"\nprotected = true\n",
    )
    .seeded("db/prod.sqlite3");
    p.run(&["backup", "production", "--yes"]).code(0);
    p
}

/// Issue 24, step 3: an edit of faber-db's config that protects less, and any command that
/// writes the config or removes backups, are asked about.
#[test]
fn edits_that_weaken_protection_ask() {
    let p = guarded_project();
    let config = std::fs::read_to_string(p.path(CONFIG)).unwrap();
    let asks = |input: String, needle: &str| {
        asks_with(&crate::hook::feed(&p, &input), &input, needle);
    };
    let passes = |input: String| {
        let answer = crate::hook::feed(&p, &input);
        assert!(answer.out.is_none(), "{input}: {:?}", answer.out);
    };
    let edit = |old: &str, new: &str| serde_json::json!({"old_string": old, "new_string": new});
    asks(
        edit_input(&p, "Edit", edit("protected = true", "protected = false")),
        "`production` loses protected",
    );
    asks(
        edit_input(&p, "Edit", edit("backup_before_migrate = true\n", "")),
        "`dev` loses backup_before_migrate",
    );
    asks(
        edit_input(&p, "Edit", edit("PROD_DATABASE_URL", "OTHER_URL")),
        "database URL",
    );
    asks(
        edit_input(
            &p,
            "MultiEdit",
            serde_json::json!({"edits": [edit("[environments.production]", "[environments.prod_old]")]}),
        ),
        "`production` is removed",
    );
    asks(
        edit_input(
            &p,
            "Write",
            serde_json::json!({"content": "[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\n"}),
        ),
        "`production` is removed",
    );
    asks(
        edit_input(
            &p,
            "Write",
            serde_json::json!({"content": format!("{config}[hook]\nenabled = false\n")}),
        ),
        "hook is turned off",
    );
    asks(
        edit_input(
            &p,
            "Write",
            serde_json::json!({"content": "this is not toml ["}),
        ),
        "no longer read",
    );
    // An edit that keeps every guard passes untouched.
    passes(edit_input(
        &p,
        "Edit",
        edit(
            "[environments.dev]\n",
            "[environments.dev]\nretention = \"7d\"\n",
        ),
    ));
    // Writing into the backup directory, whatever the file.
    let mut into = serde_json::from_str::<Value>(&edit_input(
        &p,
        "Write",
        serde_json::json!({"content": "{}"}),
    ))
    .unwrap();
    into["tool_input"]["file_path"] = Value::String(format!(
        "{}/{}/backups.json",
        p.root().display(),
        crate::harness::BACKUPS
    ));
    asks(into.to_string(), "backup directory");
}

/// Issue 24, step 3: a command that writes faber-db's config or removes its backups asks.
#[test]
fn commands_that_write_the_config_or_remove_backups_ask() {
    let p = guarded_project();
    // The shell's doors to the same files.
    let b = crate::harness::BACKUPS;
    for (line, needle) in [
        (
            format!("sed -i 's/protected = true/protected = false/' {CONFIG}"),
            "config",
        ),
        (format!("echo '' > {CONFIG}"), "config"),
        (
            "cd .fractary && rm plugins/faber-db/config.toml".to_string(),
            "config",
        ),
        (format!("rm -rf {b}"), "backups"),
        ("rm -rf .fractary".to_string(), "backups"),
        (format!("find {b} -name '*.zst' -delete"), "backups"),
        (format!("truncate -s 0 {b}/backups.json"), "backups"),
        (format!("mv {b}/production /tmp/elsewhere"), "backups"),
        (format!("bash -c 'rm -r {b}/production'"), "backups"),
        (
            "rm -rf ./.fractary/../.fractary/plugins".to_string(),
            "backups",
        ),
    ] {
        asks_with(&hook(&p, &line), &line, needle);
    }
    for line in [
        "rm -rf target",
        "sed -i 's/a/b/' README.md",
        "cat .fractary/plugins/faber-db/config.toml",
        "echo x > db/notes.txt",
    ] {
        assert!(hook(&p, line).out.is_none(), "{line}");
    }
}

/// The red-team list's other doors (issue 24): each shape on a fresh project, through the hook
/// and as the process Claude Code would start, with what each layer did. faber-db itself can
/// only refuse its own commands; the hook must ask about every one.
#[test]
fn red_team_other_doors_to_production() {
    let shapes: [(&str, &str); 16] = [
        ("sqlite3", "sqlite3 db/prod.sqlite3 'DROP TABLE t'"),
        ("sqlite3", "sqlite3 db/prod.sqlite3 < drop.sql"),
        ("sqlite3", "echo 'DELETE FROM t;' | sqlite3 db/prod.sqlite3"),
        (
            "sqlite3",
            "sqlite3 db/prod.sqlite3 <<'EOF'\nDROP TABLE t;\nEOF",
        ),
        (
            "sqlite3",
            "bash -c \"sqlite3 db/prod.sqlite3 'DELETE FROM t'\"",
        ),
        ("file", "rm -f db/prod.sqlite3"),
        ("file", "cp db/dev.sqlite3 db/prod.sqlite3"),
        ("file", ": > db/prod.sqlite3"),
        ("backups", "rm -rf .fractary/plugins/faber-db/backups"),
        ("backups", "git clean -fdx"),
        ("backups", "find .fractary -name '*.zst' -delete"),
        (
            "config",
            "sed -i 's/protected = true/protected = false/' .fractary/plugins/faber-db/config.toml && faber-db restore production --yes",
        ),
        ("faber-db", "faber-db delete FIRST --yes"),
        (
            "faber-db",
            "faber-db rollback production --accept-data-loss --yes",
        ),
        (
            "faber-db",
            "faber-db cleanup production --keep-last 0 --yes",
        ),
        ("faber-db", "faber-db backup production --yes"),
    ];
    let (mut by_hook, mut by_faber) = (0, 0);
    for (door, shape) in shapes {
        let p = project();
        p.write("drop.sql", "DROP TABLE t;\n");
        // Protected in so many words, so that an edit can take it away.
        let config = std::fs::read_to_string(p.path(CONFIG)).unwrap();
        p.write(
            CONFIG,
            &config.replace(
                "[environments.production]\n",
                "[environments.production]\nprotected = true\n",
            ),
        );
        let line = shape.replace("FIRST", &first(&p));
        let backups = p.backups().len();
        let answer = hook(&p, &line);
        let decision = answer.decision().unwrap_or("no decision").to_string();
        if decision == "ask" || decision == "deny" {
            by_hook += 1;
        }
        let run = agent(&p, &line);
        let held = rows_if_any(&p) == Some(vec![1, 2])
            && p.backups().len() == backups
            && p.path(crate::harness::BACKUPS).exists();
        if held {
            by_faber += 1;
        }
        eprintln!(
            "red team ({door}): {line}\n  hook: {decision}; as a process: {} (exit {})",
            if held {
                "production held"
            } else {
                "production changed"
            },
            run.code
        );
        assert_eq!(decision, "ask", "{line}: {:?}", answer.out);
        if door == "faber-db" {
            assert!(held, "{line}: {}", run.stderr);
        }
    }
    eprintln!(
        "red team, other doors: {} shapes; the hook asked about {by_hook}; faber-db itself held production for {by_faber} (its own commands; the others it cannot see)",
        shapes.len()
    );
}

/// How many rows `t` of the PostgreSQL database at `url` has, if it still has the table.
fn pg_rows(url: &str) -> Option<String> {
    let out = Command::new("psql")
        .args(["-X", "-q", "-A", "-t", url, "-c", "SELECT count(*) FROM t"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// How many rows `t` of MariaDB database `db` has, if it still has the table.
fn my_rows(db: &str) -> Option<String> {
    crate::mysql::try_mysql(db, "SELECT count(*) FROM t").ok()
}

/// The red-team list's server doors (issue 24): the database servers' own clients and tools
/// at protected environments' PostgreSQL and MariaDB databases, each through the hook and as
/// the process, on databases of the test's own. The hook must ask; faber-db is not in these
/// commands, so as processes they change the database (docs/plugin.md says so).
#[test]
fn red_team_server_doors_to_production() {
    if !crate::postgres::server_up() || !crate::mysql::server_up() {
        return;
    }
    let shapes = [
        ("pg", "dropdb -h 127.0.0.1 -U postgres DB"),
        (
            "pg",
            "psql postgres://postgres@127.0.0.1:5432/DB -f drop.sql",
        ),
        ("pg", "psql -h 127.0.0.1 -U postgres -d DB -c 'TRUNCATE t'"),
        (
            "pg",
            "pg_restore --clean -h 127.0.0.1 -U postgres -d DB dump.pgc",
        ),
        ("my", "mysql -h 127.0.0.1 -u root DB -e 'DROP TABLE t'"),
        ("my", "mysqladmin -h 127.0.0.1 -u root -f drop DB"),
    ];
    let (mut asked, mut held) = (0, 0);
    for (server, shape) in shapes {
        let pg = crate::postgres::PgDb::new("redteam");
        pg.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1);");
        let my = crate::mysql::MyDb::new("redteam");
        my.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1);");
        let p = Project::with_config(
            "[environments.production]\nurl_env = \"PROD_DATABASE_URL\"\nprotected = true\n\
             [environments.shop]\nurl_env = \"SHOP_DATABASE_URL\"\nprotected = true\n",
        )
        .with_var("PROD_DATABASE_URL", &pg.url())
        .with_var("SHOP_DATABASE_URL", &my.url());
        p.write("drop.sql", "DROP TABLE t;\n");
        let dump = Command::new("pg_dump")
            .args(["-Fc", "-f"])
            .arg(p.path("dump.pgc"))
            .arg(pg.url())
            .status()
            .unwrap();
        assert!(dump.success());
        let name = if server == "pg" { &pg.name } else { &my.name };
        let line = shape.replace("DB", name);
        let answer = hook(&p, &line);
        assert_eq!(answer.decision(), Some("ask"), "{line}: {:?}", answer.out);
        asked += 1;
        let run = agent(&p, &line);
        let now = if server == "pg" {
            pg_rows(&pg.url())
        } else {
            my_rows(&my.name)
        };
        let kept = now.as_deref() == Some("1");
        held += usize::from(kept);
        eprintln!(
            "red team ({server}): {line}\n  hook: ask; as a process: {} (exit {})",
            if kept {
                "production held"
            } else {
                "production changed"
            },
            run.code
        );
    }
    eprintln!(
        "red team, server doors: {} shapes; the hook asked about {asked}; as processes {held} left the database as it was",
        shapes.len()
    );
}
