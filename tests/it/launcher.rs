//! The plugin's launcher, `bin/faber-db`: which binary it runs, that it runs it unchanged, and
//! the build it starts when there is none. Each test has a plugin root of its own (a copy of the
//! launcher, its download functions and the SessionStart hook, with a manifest and a Cargo.toml
//! of this version), a temporary HOME and a PATH holding only the tools the launcher uses; the
//! binary is the one cargo built for the suite, and "cargo" a stand-in that installs a copy of
//! it. The downloads are tested in launcher_download.rs.

use std::borrow::BorrowMut;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{self, BIN};

pub(super) const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the launcher runs: plain tools, each linked into a directory of its own.
pub(super) const TOOLS: &[&str] = &[
    "sh", "readlink", "dirname", "basename", "sed", "head", "awk", "dd", "cat", "date", "find",
    "mkdir", "rm", "ln", "mv", "tr", "grep", "tail", "sleep", "setsid", "nohup", "cp",
];

pub(super) struct Plugin {
    tmp: tempfile::TempDir,
    /// Directories put on PATH before the tools, in order.
    pub(super) path_front: Vec<PathBuf>,
}

pub(super) fn write_exe(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

pub(super) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub(super) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(super) fn show(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
        out.status,
        stdout(out),
        stderr(out)
    )
}

impl Plugin {
    pub(super) fn new() -> Plugin {
        let tmp = tempfile::Builder::new()
            .prefix("faber-launcher-")
            .tempdir()
            .unwrap();
        let p = Plugin {
            tmp,
            path_front: Vec::new(),
        };
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = p.root();
        for rel in [
            "bin/faber-db",
            "hooks/session-start.sh",
            "scripts/install.sh",
        ] {
            let text = fs::read_to_string(repo.join(rel)).unwrap();
            write_exe(&root.join(rel), &text);
        }
        fs::create_dir_all(root.join(".claude-plugin")).unwrap();
        fs::write(
            root.join(".claude-plugin/plugin.json"),
            format!("{{\n  \"name\": \"faber-db\",\n  \"version\": \"{VERSION}\"\n}}\n"),
        )
        .unwrap();
        fs::write(
            root.join("Cargo.toml"),
            format!("[package]\nname = \"faber-db\"\nversion = \"{VERSION}\"\n"),
        )
        .unwrap();
        fs::create_dir_all(p.home()).unwrap();
        let tools = p.path("tools");
        fs::create_dir_all(&tools).unwrap();
        for t in TOOLS {
            let found = which::which(t).unwrap_or_else(|e| panic!("{t}: {e}"));
            symlink(found, tools.join(t)).unwrap();
        }
        p
    }

    /// Puts more of the machine's tools on the launcher's PATH.
    pub(super) fn add_tools(&self, names: &[&str]) {
        for t in names {
            let found = which::which(t).unwrap_or_else(|e| panic!("{t}: {e}"));
            symlink(found, self.path("tools").join(t)).unwrap();
        }
    }

    pub(super) fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    pub(super) fn root(&self) -> PathBuf {
        self.path("plugin")
    }

    fn launcher(&self) -> PathBuf {
        self.root().join("bin/faber-db")
    }

    pub(super) fn home(&self) -> PathBuf {
        self.path("home")
    }

    /// The per-user cache directory of this version (no XDG_CACHE_HOME).
    pub(super) fn cache_dir(&self) -> PathBuf {
        self.home().join(".cache/faber-db").join(VERSION)
    }

    fn search_path(&self) -> String {
        let mut dirs: Vec<String> = self
            .path_front
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        dirs.push(self.path("tools").display().to_string());
        dirs.join(":")
    }

    /// `program` with an environment of nothing but PATH, HOME and what a test adds.
    fn command_of(&self, program: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(self.tmp.path())
            .env_clear()
            .env("PATH", self.search_path())
            .env("HOME", self.home())
            .env("FABER_DB_BUILD_WAIT", "30")
            .stdin(Stdio::null());
        cmd
    }

    pub(super) fn command(&self, args: &[&str]) -> Command {
        self.command_of(&self.launcher(), args)
    }

    /// A stand-in for cargo, first on PATH: it logs its arguments (one a line, then `--`),
    /// sleeps FAKE_CARGO_SLEEP seconds, then installs a copy of the suite's binary under
    /// `--root`, or with FAKE_CARGO_FAIL prints a compiler error and fails.
    pub(super) fn fake_cargo(&mut self) -> PathBuf {
        let dir = self.path("cargo-bin");
        let log = self.path("cargo.argv");
        write_exe(
            &dir.join("cargo"),
            &format!(
                r#"#!/bin/sh
for a in "$@"; do printf '%s\n' "$a"; done >>'{log}'
echo -- >>'{log}'
printf '%s\n' "${{LIBSQLITE3_FLAGS-unset}}" >>'{log}.sqlite-flags'
echo "   Compiling faber-db v{VERSION}"
sleep "${{FAKE_CARGO_SLEEP:-0}}"
if [ -n "${{FAKE_CARGO_FAIL:-}}" ]; then
    echo "error[E0425]: cannot find value in this scope" >&2
    exit 101
fi
root=
while [ $# -gt 0 ]; do
    case $1 in --root) root=$2; shift ;; esac
    shift
done
mkdir -p "$root/bin" && cp '{bin}' "$root/bin/faber-db"
"#,
                log = log.display(),
                bin = BIN,
            ),
        );
        self.path_front.push(dir);
        log
    }

    /// The argument lists cargo was run with.
    pub(super) fn cargo_runs(&self) -> Vec<Vec<String>> {
        let text = fs::read_to_string(self.path("cargo.argv")).unwrap_or_default();
        let mut runs = Vec::new();
        let mut cur = Vec::new();
        for line in text.lines() {
            if line == "--" {
                runs.push(std::mem::take(&mut cur));
            } else {
                cur.push(line.to_string());
            }
        }
        runs
    }

    /// A script answering `--version` with `faber-db 9.9.9` and, run for anything else,
    /// leaving a marker file behind.
    fn other_version(&self, at: &Path) -> PathBuf {
        let marker = self.path("other-version-ran");
        write_exe(
            at,
            &format!(
                "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'faber-db 9.9.9'; exit 0; fi\ntouch '{}'\nexit 0\n",
                marker.display()
            ),
        );
        marker
    }

    /// Waits for the background build of this plugin to end, if one runs.
    pub(super) fn wait_for_build(&self) {
        let started = Instant::now();
        while self.cache_dir().join("build.lock").exists() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the build never ended"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Plugin {
    /// Ends a background build still running (a stand-in cargo asked to sleep): its process
    /// group, whose leader's ID the build's lock records.
    fn drop(&mut self) {
        for lock in [self.cache_dir().join("build.lock")] {
            if let Ok(pid) = fs::read_to_string(lock.join("pid"))
                && let Ok(pid) = pid.trim().parse::<i32>()
                && pid > 1
            {
                // SAFETY: signals the process group of a build this test started.
                unsafe { libc::kill(-pid, libc::SIGTERM) };
            }
        }
    }
}

pub(super) fn run(mut cmd: impl BorrowMut<Command>) -> Output {
    cmd.borrow_mut().output().expect("the launcher runs")
}

fn run_with_stdin(mut cmd: impl BorrowMut<Command>, input: &str) -> Output {
    let mut child = cmd
        .borrow_mut()
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
    child.wait_with_output().unwrap()
}

/// What the suite's binary says to `--version`: `faber-db <version> (<commit>, <target>)`.
pub(super) fn version_line() -> String {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(line.starts_with(&format!("faber-db {VERSION} (")), "{line}");
    line
}

fn hook_input(command: &str) -> String {
    serde_json::json!({
        "session_id": "s",
        "transcript_path": "/tmp/t.jsonl",
        "cwd": "/home/u/rails-app",
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": { "command": command, "description": "d" },
    })
    .to_string()
}

#[test]
fn faber_db_bin_gets_the_arguments_stdin_and_exit_code_unchanged() {
    let p = Plugin::new();
    // A wrapper of the right version that shows what it was given.
    let wrapper = p.path("wrapper/faber-db");
    write_exe(
        &wrapper,
        &format!(
            "#!/bin/sh\nif [ \"$1\" = --version ]; then exec '{BIN}' --version; fi\nprintf '%s\\n' \"$#\"\nfor a in \"$@\"; do printf '[%s]\\n' \"$a\"; done\ncat\nexit 42\n"
        ),
    );
    let args = [
        "two words",
        "",
        "it's \"quoted\"",
        "$HOME *",
        "line\nbreak",
        "--yes",
    ];
    let out = run_with_stdin(
        p.command(&args).env("FABER_DB_BIN", &wrapper),
        "stdin line 1\nstdin line 2\n",
    );
    assert_eq!(out.status.code(), Some(42), "{}", show(&out));
    let mut expected = format!("{}\n", args.len());
    for a in args {
        expected.push_str(&format!("[{a}]\n"));
    }
    expected.push_str("stdin line 1\nstdin line 2\n");
    assert_eq!(stdout(&out), expected);
    assert_eq!(stderr(&out), "");

    // The real binary: the same output and exit code as run directly, failure included.
    for args in [
        &["--version"][..],
        &["restore", "nowhere", "--yes"][..],
        &["no-such-command"][..],
    ] {
        let via = run(p.command(args).env("FABER_DB_BIN", BIN));
        let direct = run(p.command_of(Path::new(BIN), args));
        assert_eq!(via.status.code(), direct.status.code(), "{}", show(&via));
        assert_eq!(stdout(&via), stdout(&direct));
        assert_eq!(stderr(&via), stderr(&direct));
    }
    let out = run(p.command(&["--version"]).env("FABER_DB_BIN", BIN));
    assert_eq!(stdout(&out), version_line());
    let out = run(p.command(&["no-such-command"]).env("FABER_DB_BIN", BIN));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
}

#[test]
fn a_signal_to_the_launcher_reaches_faber_db_itself() {
    let p = Plugin::new();
    let project = harness::Project::new().seeded("db/dev.sqlite3");
    let marker = p.path("paused");
    let mut child = p
        .command(&["backup", "dev"])
        .current_dir(project.root())
        .env("FABER_DB_BIN", BIN)
        .env("DEV_DATABASE_URL", "sqlite:db/dev.sqlite3")
        .env("FABER_TEST_PAUSE_AT", "backup:during-dump")
        .env("FABER_TEST_PAUSE_MARKER", &marker)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    harness::wait_for(&marker);
    // The launcher's process is faber-db now (exec), not a shell waiting for it.
    let exe = fs::read_link(format!("/proc/{}/exe", child.id())).unwrap();
    assert_eq!(exe, fs::canonicalize(BIN).unwrap());
    // SAFETY: the child this test started, not yet waited for.
    assert_eq!(
        unsafe { libc::kill(child.id().cast_signed(), libc::SIGTERM) },
        0
    );
    let started = Instant::now();
    let out = loop {
        if let Some(_status) = child.try_wait().unwrap() {
            break child.wait_with_output().unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(20), "still running");
        std::thread::sleep(Duration::from_millis(20));
    };
    // faber-db's own answer to an interrupted backup: exit 8, nothing left behind.
    assert_eq!(out.status.code(), Some(8), "{}", show(&out));
    assert!(project.ids().is_empty(), "{:?}", project.ids());
}

#[test]
fn a_version_that_only_begins_like_this_one_is_another_version() {
    let p = Plugin::new();
    let other = p.path("lookalike/faber-db");
    let marker = p.path("lookalike-ran");
    // A binary answering `--version` with `said`, and leaving the marker when run otherwise.
    let saying = |said: &str| {
        write_exe(
            &other,
            &format!(
                "#!/bin/sh\nif [ \"$1\" = --version ]; then echo '{said}'; exit 0; fi\n: >'{}'\n",
                marker.display()
            ),
        );
    };
    for said in [
        format!("faber-db {VERSION}-rc1 (d94e9bab0 2026-12-06, x86_64-unknown-linux-gnu)"),
        format!("faber-db {VERSION}0"),
        format!("faber-db {VERSION}.1 (x86_64-unknown-linux-gnu)"),
        format!("faber-db  {VERSION}"),
        format!("faber-db {VERSION}(x)"),
    ] {
        saying(&said);
        let out = run(p.command(&["list"]).env("FABER_DB_BIN", &other));
        assert_eq!(out.status.code(), Some(4), "{said}: {}", show(&out));
        assert!(!marker.exists(), "{said}: run");
    }
    // The line this version's binary prints is taken, with or without commit and target.
    for said in [
        format!("faber-db {VERSION}"),
        format!("faber-db {VERSION} (x86_64-unknown-linux-gnu)"),
    ] {
        saying(&said);
        let out = run(p.command(&["list"]).env("FABER_DB_BIN", &other));
        assert_eq!(out.status.code(), Some(0), "{said}: {}", show(&out));
        assert!(marker.exists(), "{said}: not run");
        fs::remove_file(&marker).unwrap();
    }
}

#[test]
fn faber_db_bin_of_another_version_is_refused_and_never_run() {
    let p = Plugin::new();
    let other = p.path("other/faber-db");
    let marker = p.other_version(&other);
    let out = run(p.command(&["backup", "dev"]).env("FABER_DB_BIN", &other));
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let err = stderr(&out);
    assert!(
        err.contains("error: FABER_DB_BIN") && err.contains("faber-db 9.9.9"),
        "{err}"
    );
    assert!(err.contains(&format!("faber-db {VERSION}")), "{err}");
    assert!(err.contains("hint: "), "{err}");
    // Nor through the hook, which asks instead of letting a migration through unchecked.
    let out = run_with_stdin(
        p.command(&["hook", "pre-tool-use"])
            .env("FABER_DB_BIN", &other),
        &hook_input("npx prisma migrate deploy"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["hookSpecificOutput"]["permissionDecision"], "ask");
    assert!(!marker.exists(), "the binary of another version was run");

    // Nor one of another version in the data directory: it is not used, and none is built.
    let data = p.path("data");
    let marker = p.other_version(&data.join(VERSION).join("bin/faber-db"));
    let out = run(p.command(&["list"]).env("CLAUDE_PLUGIN_DATA", &data));
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert!(!marker.exists(), "the binary of another version was run");

    // FABER_DB_BIN naming the launcher itself does not loop.
    let started = Instant::now();
    let out = run(p.command(&["list"]).env("FABER_DB_BIN", p.launcher()));
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_binary_built_earlier_is_found_in_the_data_directory_or_the_user_cache() {
    let p = Plugin::new();
    // Nothing anywhere and no cargo: no binary (the baseline the finds below differ from).
    let out = run(p.command(&["--version"]));
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));

    // In the plugin's data directory (hooks get CLAUDE_PLUGIN_DATA) ...
    let data = p.path("data");
    let built = data.join(VERSION).join("bin/faber-db");
    fs::create_dir_all(built.parent().unwrap()).unwrap();
    fs::copy(BIN, &built).unwrap();
    let out = run(p.command(&["--version"]).env("CLAUDE_PLUGIN_DATA", &data));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(stdout(&out), version_line());
    // ... and then by the Bash tool's runs, which do not get it: the user cache points there.
    let link = p.cache_dir().join("bin/faber-db");
    assert_eq!(
        fs::canonicalize(&link).unwrap(),
        fs::canonicalize(&built).unwrap()
    );
    let out = run(p.command(&["--version"]));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(stdout(&out), version_line());

    // In the user cache itself, at XDG_CACHE_HOME when set.
    let q = Plugin::new();
    let xdg = q.path("xdg");
    let cached = xdg.join("faber-db").join(VERSION).join("bin/faber-db");
    fs::create_dir_all(cached.parent().unwrap()).unwrap();
    fs::copy(BIN, &cached).unwrap();
    let out = run(q.command(&["--version"]).env("XDG_CACHE_HOME", &xdg));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(stdout(&out), version_line());
    let out = run(q.command(&["--version"]));
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
}

#[test]
fn a_matching_binary_on_path_is_used_and_launchers_on_path_are_skipped() {
    let mut p = Plugin::new();
    // Copies of the launcher and a link to it, first on PATH: never run as the binary.
    let copies = p.path("launchers");
    fs::create_dir_all(&copies).unwrap();
    let copy = copies.join("copy");
    fs::create_dir_all(&copy).unwrap();
    fs::copy(p.launcher(), copy.join("faber-db")).unwrap();
    let linked = copies.join("linked");
    fs::create_dir_all(&linked).unwrap();
    symlink(p.launcher(), linked.join("faber-db")).unwrap();
    p.path_front.push(p.root().join("bin"));
    p.path_front.push(linked.clone());
    p.path_front.push(copy.clone());

    // Only launchers on PATH: no binary, in bounded time.
    let started = Instant::now();
    let out = run(p.command(&["--version"]));
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(stderr(&out).contains("no faber-db"), "{}", show(&out));

    // A binary of another version on PATH is skipped too.
    let other = p.path("other/faber-db");
    let marker = p.other_version(&other);
    p.path_front.push(other.parent().unwrap().to_path_buf());
    // So is a binary that is not faber-db of this version (`echo`, saying `--version`).
    let echo = p.path("echo");
    fs::create_dir_all(&echo).unwrap();
    fs::copy(which::which("echo").unwrap(), echo.join("faber-db")).unwrap();
    p.path_front.push(echo);
    // And the real one after them all is the one run.
    let real = p.path("real");
    fs::create_dir_all(&real).unwrap();
    fs::copy(BIN, real.join("faber-db")).unwrap();
    p.path_front.push(real);
    let project = harness::Project::new();
    let direct = project.run(&["list", "--json"]);
    let out = run(p
        .command(&["list", "--json"])
        .current_dir(project.root())
        .env("DEV_DATABASE_URL", "sqlite:db/dev.sqlite3")
        .env("PROD_DATABASE_URL", "sqlite:db/prod.sqlite3"));
    assert_eq!(out.status.code(), Some(direct.code), "{}", show(&out));
    assert_eq!(stdout(&out), direct.stdout);
    assert!(!marker.exists(), "the binary of another version was run");
}

#[test]
fn with_none_found_it_builds_one_once_with_cargo_install() {
    let mut p = Plugin::new();
    p.fake_cargo();
    let data = p.path("data");
    let out = run(p.command(&["--version"]).env("CLAUDE_PLUGIN_DATA", &data));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(stdout(&out), version_line());
    let err = stderr(&out);
    assert!(err.contains("cargo install --locked --path"), "{err}");
    assert!(err.contains("minutes"), "{err}");
    let root = data.join(VERSION);
    assert_eq!(
        p.cargo_runs(),
        vec![vec![
            "install".to_string(),
            "--locked".to_string(),
            "--path".to_string(),
            p.root().display().to_string(),
            "--root".to_string(),
            root.display().to_string(),
        ]]
    );
    // SQLite is built with its sqlite_dbpage table, whether or not cargo reads the plugin's
    // .cargo/config.toml.
    let flags = fs::read_to_string(p.path("cargo.argv.sqlite-flags")).unwrap();
    assert_eq!(flags, "-DSQLITE_ENABLE_DBPAGE_VTAB\n");
    // Its log is in the data directory.
    let log = fs::read_to_string(root.join("build.log")).unwrap();
    assert!(log.contains("Compiling faber-db"), "{log}");
    p.wait_for_build();

    // Found, not built again: by a hook, by the Bash tool (no CLAUDE_PLUGIN_DATA), and as a
    // run whose exit code is faber-db's.
    let out = run(p.command(&["--version"]).env("CLAUDE_PLUGIN_DATA", &data));
    assert_eq!(stdout(&out), version_line(), "{}", show(&out));
    assert_eq!(stderr(&out), "");
    let out = run(p.command(&["--version"]));
    assert_eq!(stdout(&out), version_line(), "{}", show(&out));
    let out = run(p.command(&["no-such-command"]));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(p.cargo_runs().len(), 1, "{:?}", p.cargo_runs());
}

#[test]
fn two_launches_at_once_build_once() {
    let mut p = Plugin::new();
    p.fake_cargo();
    let children: Vec<_> = (0..3)
        .map(|_| {
            p.command(&["--version"])
                .env("FAKE_CARGO_SLEEP", "2")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        assert_eq!(stdout(&out), version_line());
    }
    assert_eq!(p.cargo_runs().len(), 1, "{:?}", p.cargo_runs());
    // The build's own record: its duration, for the next estimate.
    let secs = fs::read_to_string(p.home().join(".cache/faber-db/last-build-seconds")).unwrap();
    assert!(secs.trim().parse::<u64>().unwrap() >= 2, "{secs}");
}

#[test]
fn without_cargo_and_without_a_binary_it_exits_4_with_instructions() {
    let p = Plugin::new();
    let out = run(p.command(&["backup", "dev"]));
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let err = stderr(&out);
    assert!(err.starts_with("error: no faber-db"), "{err}");
    assert!(err.contains("cargo is not installed"), "{err}");
    assert!(err.contains("https://rustup.rs"), "{err}");
    assert!(err.contains("FABER_DB_BIN"), "{err}");
    assert_eq!(stdout(&out), "");
}

#[test]
fn a_failed_build_exits_4_with_the_end_of_its_log() {
    let mut p = Plugin::new();
    p.fake_cargo();
    let out = run(p.command(&["list"]).env("FAKE_CARGO_FAIL", "1"));
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let err = stderr(&out);
    let log = p.cache_dir().join("build.log");
    assert!(err.contains(&log.display().to_string()), "{err}");
    assert!(err.contains("error[E0425]"), "{err}");
    assert!(err.contains("hint: "), "{err}");
    // The next run tries again, and builds it.
    let out = run(p.command(&["--version"]));
    assert_eq!(stdout(&out), version_line(), "{}", show(&out));
    assert_eq!(p.cargo_runs().len(), 2);
}

#[test]
fn a_build_under_way_makes_runs_exit_10_and_the_hook_ask() {
    let mut p = Plugin::new();
    p.fake_cargo();
    let started = Instant::now();
    let out = run(p
        .command(&["backup", "dev"])
        .env("FAKE_CARGO_SLEEP", "60")
        .env("FABER_DB_BUILD_WAIT", "2"));
    assert_eq!(out.status.code(), Some(10), "{}", show(&out));
    assert!(started.elapsed() < Duration::from_secs(15));
    let err = stderr(&out);
    assert!(
        err.contains("error: faber-db is still being built (about ")
            && err.contains(" s left); try again"),
        "{err}"
    );
    assert!(err.contains("hint: "), "{err}");

    // A second run finds it under way and waits for it, and does not start another.
    let out = run(p.command(&["list"]).env("FABER_DB_BUILD_WAIT", "1"));
    assert_eq!(out.status.code(), Some(10), "{}", show(&out));
    assert!(stderr(&out).contains("is being built"), "{}", show(&out));

    // The hook: quick, `ask` for what may touch a database, nothing for the rest.
    for command in [
        "DATABASE_URL=postgres://x npx prisma migrate deploy",
        "cd api && sqlx migrate run",
        "psql -c 'DROP TABLE users'",
        "bundle exec rails db:migrate",
    ] {
        let started = Instant::now();
        let out = run_with_stdin(p.command(&["hook", "pre-tool-use"]), &hook_input(command));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        let doc: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{command}: {e}\n{}", show(&out)));
        let o = &doc["hookSpecificOutput"];
        assert_eq!(o["hookEventName"], "PreToolUse");
        assert_eq!(o["permissionDecision"], "ask");
        let reason = o["permissionDecisionReason"].as_str().unwrap();
        assert!(reason.contains("still being built (about "), "{reason}");
    }
    for command in ["ls -la", "cargo build", "git status"] {
        let out = run_with_stdin(p.command(&["hook", "pre-tool-use"]), &hook_input(command));
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        assert_eq!(stdout(&out), "", "{command}");
    }
    assert_eq!(p.cargo_runs().len(), 1, "{:?}", p.cargo_runs());
}

#[test]
fn the_hook_with_no_binary_starts_the_build_without_waiting_for_it() {
    let mut p = Plugin::new();
    p.fake_cargo();
    let data = p.path("data");
    let started = Instant::now();
    let out = run_with_stdin(
        p.command(&["hook", "pre-tool-use"])
            .env("CLAUDE_PLUGIN_DATA", &data)
            .env("FAKE_CARGO_SLEEP", "60"),
        &hook_input("alembic upgrade head"),
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["hookSpecificOutput"]["permissionDecision"], "ask");
    harness::wait_for(&p.path("cargo.argv"));
}

#[test]
fn session_start_starts_the_build_in_the_background_and_returns_at_once() {
    let mut p = Plugin::new();
    p.fake_cargo();
    let data = p.path("data");
    let hook = p.root().join("hooks/session-start.sh");
    let started = Instant::now();
    let out = run_with_stdin(
        p.command_of(&hook, &[])
            .env("CLAUDE_PLUGIN_ROOT", p.root())
            .env("CLAUDE_PLUGIN_DATA", &data)
            .env("FAKE_CARGO_SLEEP", "3"),
        r#"{"hook_event_name":"SessionStart","source":"startup"}"#,
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let doc: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&out)));
    let msg = doc["systemMessage"].as_str().unwrap();
    assert!(msg.contains("being built"), "{msg}");
    assert_eq!(doc["hookSpecificOutput"]["hookEventName"], "SessionStart");
    // The build runs on, detached, and its binary is there once it ends.
    harness::wait_for(&p.path("cargo.argv"));
    p.wait_for_build();
    assert_eq!(p.cargo_runs().len(), 1);
    let out = run(p.command(&["--version"]));
    assert_eq!(stdout(&out), version_line(), "{}", show(&out));

    // With a binary ready it says nothing and starts nothing.
    let out = run(p.command_of(&hook, &[]).env("CLAUDE_PLUGIN_DATA", &data));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(stdout(&out), "");
    assert_eq!(p.cargo_runs().len(), 1);
}

#[test]
fn the_version_is_the_manifests_else_cargo_tomls() {
    let p = Plugin::new();
    let manifest = p.root().join(".claude-plugin/plugin.json");
    // The manifest's version wins: a binary of Cargo.toml's is then refused.
    fs::write(
        &manifest,
        "{\n  \"name\": \"faber-db\",\n  \"version\": \"9.9.9\",\n  \"author\": { \"name\": \"x\" }\n}\n",
    )
    .unwrap();
    let out = run(p.command(&["--version"]).env("FABER_DB_BIN", BIN));
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert!(
        stderr(&out).contains("not \"faber-db 9.9.9\""),
        "{}",
        show(&out)
    );
    // Without a manifest, Cargo.toml's [package] version (not a dependency's).
    fs::remove_file(&manifest).unwrap();
    fs::write(
        p.root().join("Cargo.toml"),
        format!(
            "[workspace]\nversion = \"8.8.8\"\n\n[package]\nname = \"faber-db\"\nversion = \"{VERSION}\"\n\n[dependencies]\nx = {{ version = \"7\" }}\n"
        ),
    )
    .unwrap();
    let out = run(p.command(&["--version"]).env("FABER_DB_BIN", BIN));
    assert_eq!(stdout(&out), version_line(), "{}", show(&out));
}
