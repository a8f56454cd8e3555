//! A small harness that runs the real `faber-db` binary in a project root of its own and checks
//! the exit code, output and files left behind together.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rusqlite::Connection;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_faber-db");
pub const BACKUPS: &str = ".fractary/plugins/faber-db/backups";

/// A project root in a temporary directory, with a config and an SQLite database per environment.
pub struct Project {
    dir: tempfile::TempDir,
    now: Option<String>,
    vars: BTreeMap<String, String>,
}

/// A config with a dev environment on `db/dev.sqlite3` and a protected production one on
/// `db/prod.sqlite3`, both through variables.
pub const DEFAULT_CONFIG: &str = r#"
[defaults]
compression = "gzip"

[environments.dev]
url_env = "DEV_DATABASE_URL"
retention = "30d"

[environments.production]
url_env = "PROD_DATABASE_URL"
"#;

impl Project {
    pub fn new() -> Project {
        Project::with_config(DEFAULT_CONFIG)
    }

    pub fn with_config(config: &str) -> Project {
        let p = Project::empty();
        p.write(".fractary/plugins/faber-db/config.toml", config);
        fs::create_dir_all(p.path("db")).unwrap();
        p.with_var("DEV_DATABASE_URL", "sqlite:db/dev.sqlite3")
            .with_var("PROD_DATABASE_URL", "sqlite:db/prod.sqlite3")
    }

    /// A root with nothing in it but `.fractary/`.
    pub fn empty() -> Project {
        let dir = tempfile::Builder::new()
            .prefix("faber-it-")
            .tempdir()
            .unwrap();
        fs::create_dir_all(dir.path().join(".fractary")).unwrap();
        Project {
            dir,
            now: None,
            vars: BTreeMap::new(),
        }
    }

    /// Points `[defaults] backup_dir` of the config at `dir` (a small filesystem, say).
    pub fn use_backup_dir(&self, dir: &Path) {
        let rel = ".fractary/plugins/faber-db/config.toml";
        let config = fs::read_to_string(self.path(rel)).unwrap();
        let line = format!("backup_dir = \"{}\"\n", dir.display());
        let config = if config.contains("[defaults]\n") {
            config.replacen("[defaults]\n", &format!("[defaults]\n{line}"), 1)
        } else {
            format!("[defaults]\n{line}{config}")
        };
        self.write(rel, &config);
    }

    /// Puts a wrapper in front of each of `tools` found on PATH, logging every argument list it
    /// is given; returns the PATH that finds the wrappers first, and the log.
    pub fn argv_wrappers(&self, tools: &[&str]) -> (String, PathBuf) {
        let bin = self.path("argvbin");
        fs::create_dir_all(&bin).unwrap();
        let log = self.path("argv.log");
        for tool in tools {
            let Ok(real) = which::which(tool) else {
                continue;
            };
            let path = bin.join(tool);
            fs::write(
                &path,
                format!(
                    "#!/bin/sh\necho \"{tool} $*\" >> '{}'\nexec '{}' \"$@\"\n",
                    log.display(),
                    real.display()
                ),
            )
            .unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        (path, log)
    }

    /// Sets a variable for the following runs.
    pub fn set_var(&mut self, k: &str, v: &str) -> &mut Project {
        self.vars.insert(k.to_string(), v.to_string());
        self
    }

    pub fn with_var(mut self, k: &str, v: &str) -> Project {
        self.vars.insert(k.to_string(), v.to_string());
        self
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    /// Fixes the clock of the following runs (`FABER_NOW`).
    pub fn at(&mut self, rfc3339: &str) -> &mut Project {
        self.now = Some(rfc3339.to_string());
        self
    }

    /// Gives the database at `rel` a table `t` with one row.
    pub fn seeded(self, rel: &str) -> Project {
        self.sqlite(rel)
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        self
    }

    /// The data file of backup `id`, from its registry entry.
    pub fn data_file(&self, id: &str) -> PathBuf {
        let entry = self
            .backups()
            .into_iter()
            .find(|b| b["id"] == id)
            .unwrap_or_else(|| panic!("no entry {id}"));
        // Relative to the backup directory, or absolute (`backup --output-dir`).
        self.path(BACKUPS).join(entry["file"].as_str().unwrap())
    }

    /// The IDs in the registry, sorted.
    /// The data file of backup `id`, from the manifest beside it (when the registry is broken).
    pub fn data_file_from_manifest(&self, id: &str) -> PathBuf {
        let dir = self.path(BACKUPS);
        for env in fs::read_dir(&dir).unwrap().flatten() {
            let manifest = env.path().join(format!("{id}.manifest.json"));
            if let Ok(text) = fs::read_to_string(&manifest) {
                let v: Value = serde_json::from_str(&text).unwrap();
                return dir.join(v["file"].as_str().unwrap());
            }
        }
        panic!("no manifest of {id}");
    }

    pub fn ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .backups()
            .iter()
            .map(|b| b["id"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    }

    /// Opens (creating) an SQLite database under the root.
    pub fn sqlite(&self, rel: &str) -> Connection {
        Connection::open(self.path(rel)).unwrap()
    }

    /// Runs faber-db with `args` in the root, without a terminal on stdin.
    pub fn run(&self, args: &[&str]) -> Run {
        let out = self.command(args).output().expect("faber-db runs");
        Run {
            args: args.iter().map(std::string::ToString::to_string).collect(),
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The command `run` runs, for a test that needs to start it and act while it runs.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_of(BIN, args)
    }

    /// `program` run as [`Project::command`] runs faber-db: in the root, with the project's
    /// variables and none of the caller's that faber-db reads.
    pub fn command_of(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(self.root())
            .stdin(Stdio::null())
            .env_remove("FABER_NOW")
            .env_remove("NO_COLOR")
            .env_remove("DEV_DATABASE_URL")
            .env_remove("STAGING_DATABASE_URL")
            .env_remove("PROD_DATABASE_URL")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SHARED_CREDENTIALS_FILE")
            .env_remove("AWS_CONFIG_FILE")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_ENDPOINT_URL_S3")
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_REGION")
            .env_remove("AZURE_STORAGE_CONNECTION_STRING")
            .env_remove("AZURE_STORAGE_ACCOUNT")
            .env_remove("AZURE_STORAGE_ACCOUNT_NAME")
            .env_remove("AZURE_STORAGE_KEY")
            .env_remove("AZURE_STORAGE_ACCOUNT_KEY")
            .env_remove("AZURE_STORAGE_SAS_TOKEN")
            .env_remove("AZURE_CLIENT_ID")
            .env_remove("AZURE_CLIENT_SECRET")
            .env_remove("AZURE_TENANT_ID")
            .env_remove("AZURE_FEDERATED_TOKEN_FILE")
            .env_remove("AZURE_MSI_ENDPOINT")
            .env_remove("AZURE_AUTHORITY_HOST")
            .env_remove("FABER_WEBHOOK_URL")
            .env_remove("FABER_ENV")
            .env_remove("ENV_MODE")
            // Not an agent's shell, unless a test says so (tests/it/approval.rs).
            .env_remove("CLAUDECODE")
            .env_remove("CLAUDE_CODE_SESSION_ID")
            .env_remove("FABER_APPROVAL")
            // Not the machine's Claude Code settings (doctor reads its installed plugins).
            .env("CLAUDE_CONFIG_DIR", self.path(".no-claude-config"));
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        if let Some(now) = &self.now {
            cmd.env("FABER_NOW", now);
        }
        cmd
    }

    /// Runs with `--json` and returns the parsed document, checking the exit code.
    pub fn json(&self, args: &[&str], code: i32) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let run = self.run(&all).code(code);
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout of {:?} is not JSON ({e}):\n{}",
                run.args, run.stdout
            )
        })
    }

    /// The registry as JSON (an empty one when absent).
    pub fn registry(&self) -> Value {
        match fs::read_to_string(self.path(&format!("{BACKUPS}/backups.json"))) {
            Ok(t) => serde_json::from_str(&t).unwrap(),
            Err(_) => serde_json::json!({"version": 1, "backups": []}),
        }
    }

    pub fn backups(&self) -> Vec<Value> {
        self.registry()["backups"].as_array().unwrap().clone()
    }

    /// Every file under the backup directory, relative to it, sorted.
    pub fn backup_files(&self) -> Vec<String> {
        let base = self.path(BACKUPS);
        let mut out = Vec::new();
        walk(&base, &base, &mut out);
        out.sort();
        out
    }

    /// Checks that a failed backup of `env` left nothing: no registry entry, no file.
    pub fn assert_nothing_left(&self, env: &str) {
        assert!(self.backups().is_empty(), "{:?}", self.backups());
        let prefix = format!("{env}/");
        let leftovers: Vec<String> = self
            .backup_files()
            .into_iter()
            .filter(|f| f.starts_with(&prefix))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        // Not even an empty directory (a directory dump's `.partial`).
        let entries: Vec<_> = fs::read_dir(self.path(&format!("{BACKUPS}/{env}")))
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(entries.is_empty(), "{entries:?}");
    }

    /// Starts `args` (output captured) and returns once it waits at test point `point`.
    pub fn paused_at(&self, args: &[&str], point: &str) -> Paused {
        let marker = self.path("paused");
        let _ = fs::remove_file(&marker);
        let child = self
            .command(args)
            .env("FABER_TEST_PAUSE_AT", point)
            .env("FABER_TEST_PAUSE_MARKER", &marker)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for(&marker);
        Paused { child, marker }
    }

    /// Takes a backup and returns its ID.
    pub fn backup(&self, args: &[&str]) -> String {
        let mut all = vec!["backup"];
        all.extend_from_slice(args);
        let doc = self.json(&all, 0);
        doc["backup"]["id"].as_str().unwrap().to_string()
    }
}

/// The `id` of each object in the array `doc[key]` (a JSON report's `removed`, `kept`, …).
pub fn ids_in<'a>(doc: &'a Value, key: &str) -> Vec<&'a str> {
    doc[key]
        .as_array()
        .unwrap_or_else(|| panic!("no array `{key}` in {doc}"))
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

/// Waits (up to 20 s) until `path` exists.
pub fn wait_for(path: &Path) {
    let started = std::time::Instant::now();
    while !path.exists() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A run waiting at a test point (src/testpoint.rs), started by [`Project::paused_at`].
pub struct Paused {
    pub child: std::process::Child,
    marker: PathBuf,
}

impl Paused {
    /// Lets the run go on past its test point, and waits for its end.
    pub fn resume(self) -> std::process::Output {
        fs::remove_file(&self.marker).unwrap();
        self.child.wait_with_output().unwrap()
    }

    /// Sends it `signal` where it waits, and waits for its end.
    pub fn signal(self, signal: i32) -> std::process::Output {
        // SAFETY: a signal to the child this test started, which has not been waited for.
        assert_eq!(
            unsafe { libc::kill(self.child.id().cast_signed(), signal) },
            0
        );
        self.child.wait_with_output().unwrap()
    }
}

/// Every file below `dir`, as a path relative to `base`, appended to `out`.
pub fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(base, &p, out);
        } else {
            out.push(p.strip_prefix(base).unwrap().display().to_string());
        }
    }
}

/// A shell script standing in for `tool`: it answers `--version` as the real one does (tool
/// selection reads it), and otherwise runs `body`.
pub fn stand_in(tool: &str, body: &str) -> String {
    format!(
        "#!/bin/sh\nif [ \"$1\" = --version ]; then exec '{}' --version; fi\n{body}",
        which::which(tool).unwrap().display()
    )
}

/// Whether process `pid` runs (a zombie waiting for its reaper counts as gone).
pub fn process_alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(") ")
            .next()
            .is_some_and(|rest| !rest.starts_with('Z'))
    })
}

pub fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The result of one run, with chained checks that print everything on failure.
#[derive(Debug)]
pub struct Run {
    pub args: Vec<String>,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn fail(&self, what: &str) -> ! {
        panic!(
            "faber-db {:?}: {what}\n--- exit code: {}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.args, self.code, self.stdout, self.stderr
        )
    }

    pub fn code(self, expected: i32) -> Run {
        if self.code != expected {
            self.fail(&format!("expected exit code {expected}"));
        }
        self
    }

    pub fn stdout_has(self, needle: &str) -> Run {
        if !self.stdout.contains(needle) {
            self.fail(&format!("stdout lacks {needle:?}"));
        }
        self
    }

    pub fn stderr_has(self, needle: &str) -> Run {
        if !self.stderr.contains(needle) {
            self.fail(&format!("stderr lacks {needle:?}"));
        }
        self
    }

    pub fn stdout_lacks(self, needle: &str) -> Run {
        if self.stdout.contains(needle) {
            self.fail(&format!("stdout has {needle:?}"));
        }
        self
    }

    pub fn stderr_lacks(self, needle: &str) -> Run {
        if self.stderr.contains(needle) {
            self.fail(&format!("stderr has {needle:?}"));
        }
        self
    }
}

/// Every table's rows, in rowid order, rendered exactly (types included): equal renderings
/// mean byte-for-byte equal query results.
pub fn dump_tables(conn: &Connection) -> BTreeMap<String, Vec<String>> {
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap();
    let names: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut out = BTreeMap::new();
    for name in names {
        let mut q = conn
            .prepare(&format!("SELECT * FROM \"{name}\" ORDER BY rowid"))
            .unwrap();
        let n = q.column_count();
        let rows: Vec<String> = q
            .query_map([], |row| {
                Ok((0..n)
                    .map(|i| format!("{:?}", row.get_ref(i).unwrap()))
                    .collect::<Vec<_>>()
                    .join("|"))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        out.insert(name, rows);
    }
    out
}

/// The schema as SQLite stores it.
pub fn schema(conn: &Connection) -> Vec<String> {
    let mut stmt = conn.prepare("SELECT type || ' ' || name || ' ' || coalesce(sql, '') FROM sqlite_schema ORDER BY name").unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The schema of the database at `url`, as faber-db's provider reads it.
pub fn read_schema(url: &str) -> faber_db::schema::Schema {
    let url = faber_db::provider::DatabaseUrl::parse(url, Path::new("/")).unwrap();
    let options = faber_db::provider::Options {
        row_count_max_table_size: faber_db::provider::DEFAULT_ROW_COUNT_MAX_TABLE_SIZE,
        ledger: None,
    };
    faber_db::provider::open(&url, options)
        .unwrap()
        .schema()
        .unwrap()
}

/// The schema changes of a `diff --json` (or a rehearsal's report) as `change table[.name]`
/// lines: `column_added users.name`, `index_dropped users.users_note`, `table_added tags`.
pub fn schema_changes(changes: &Value) -> Vec<String> {
    changes
        .as_array()
        .unwrap_or_else(|| panic!("no schema changes in {changes}"))
        .iter()
        .map(|c| {
            let what = c["change"].as_str().unwrap();
            let table = c["table"].as_str().unwrap();
            let name = c["column"]["name"]
                .as_str()
                .or(c["after"]["name"].as_str())
                .or(c["index"].as_str())
                .or(c["constraint"].as_str());
            match name {
                Some(n) => format!("{what} {table}.{n}"),
                None => format!("{what} {table}"),
            }
        })
        .collect()
}

/// A port on 127.0.0.1 free a moment ago, for a server a test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `what` listens on 127.0.0.1:`port` (a failure after `secs` seconds).
pub fn wait_listening(port: u16, what: &str, secs: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not listen on {port}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Fills `db` with a table `t` of 3 MB of incompressible rows (three random 1 MB blobs), in WAL
/// mode when `wal` (its backups stream the pages) or in the default rollback-journal mode (its
/// backups go through a snapshot).
pub fn three_random_megabytes(db: &Connection, wal: bool) {
    let mode = if wal { "PRAGMA journal_mode=WAL;" } else { "" };
    db.execute_batch(&format!(
        "{mode} CREATE TABLE t (b BLOB); \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) \
         INSERT INTO t SELECT randomblob(1000000) FROM n;"
    ))
    .unwrap();
}
