//! MySQL and MariaDB, through their own clients: `mysqldump` (or `mariadb-dump`) streams the dump,
//! `mysql` (or `mariadb`) runs queries and loads dumps. Where to connect goes in the tools'
//! options; the password goes in `MYSQL_PWD` and never in an argument list.

mod counter;
mod inplace;
mod objects;
mod restore;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{
    DumpTo, Dumped, Inspection, Provider, ProviderKind, Source, Staged, TableStats, Tables,
};
use crate::error::{Error, Kind, Result};
use crate::format::Format;
use crate::migrations::{self, Queryable};
use crate::pipeline::TailReader;
use counter::RowCounter;

/// The line every complete dump ends with (`-- Dump completed on <date>`).
pub const DUMP_TRAILER: &str = "-- Dump completed";

const INSTALL_HINT: &str = "install the MySQL/MariaDB client tools: `apt-get install mariadb-client` (or `default-mysql-client`) on Debian/Ubuntu, `brew install mysql-client` on macOS";

/// Rows of text columns as the client prints them (`None` for NULL).
type Rows = Vec<Vec<Option<String>>>;

/// Rows as the bytes the server sent, which need not be UTF-8.
type RawRows = Vec<Vec<Option<Vec<u8>>>>;

#[derive(Clone)]
pub struct Mysql {
    conn: ConnParams,
    /// The name this database is recorded under when it is not its own: the tables a restore
    /// set aside, backed up as the target's.
    recorded_as: Option<String>,
    tools: std::cell::OnceCell<Tools>,
    /// Tables larger than this get `information_schema.TABLES.TABLE_ROWS` instead of `COUNT(*)`
    /// when a live database is counted.
    row_count_max_table_size: u64,
    /// The project's ledger of the scratch databases it creates.
    ledger: Option<crate::scratch::Ledger>,
}

/// Where and as whom to connect, from the URL. Shown only through [`ConnParams::describe`].
#[derive(Clone)]
struct ConnParams {
    host: Option<String>,
    port: Option<u16>,
    socket: Option<String>,
    user: Option<String>,
    password: Option<String>,
    dbname: String,
    /// TLS settings from the URL's query, as `(option, value)`.
    tls: Vec<(String, String)>,
}

/// The dump tool and the client, found on PATH.
#[derive(Debug, Clone)]
struct Tools {
    dump: PathBuf,
    client: PathBuf,
    dump_version: String,
    /// Whether the client is MariaDB's (its TLS options differ from MySQL's).
    mariadb_client: bool,
}

impl Mysql {
    pub fn new(url: &url::Url) -> Result<Mysql> {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let dbname = decode(url.path().trim_start_matches('/'));
        if dbname.is_empty() {
            return Err(Error::config("the MySQL URL names no database")
                .with_hint("the form is mysql://user@host:3306/dbname"));
        }
        let mut socket = None;
        let mut query_password = None;
        let mut tls = Vec::new();
        for (key, value) in url.query_pairs() {
            let key = key.replace('_', "-").to_ascii_lowercase();
            match key.as_str() {
                "socket" => socket = Some(value.into_owned()),
                "password" => query_password = Some(value.into_owned()),
                "ssl"
                | "ssl-mode"
                | "sslmode"
                | "ssl-ca"
                | "ssl-capath"
                | "ssl-cert"
                | "ssl-key"
                | "ssl-cipher"
                | "ssl-verify-server-cert" => {
                    let key = if key == "sslmode" {
                        "ssl-mode".into()
                    } else {
                        key
                    };
                    tls.push((key, value.into_owned()));
                }
                // Parameters of other tools sharing the URL are not ours.
                _ => {}
            }
        }
        Ok(Mysql {
            conn: ConnParams {
                host: url.host_str().filter(|h| !h.is_empty()).map(decode),
                port: url.port(),
                socket,
                user: Some(decode(url.username())).filter(|u| !u.is_empty()),
                password: url.password().map(decode).or(query_password),
                dbname,
                tls,
            },
            recorded_as: None,
            tools: std::cell::OnceCell::new(),
            row_count_max_table_size: crate::provider::DEFAULT_ROW_COUNT_MAX_TABLE_SIZE,
            ledger: None,
        })
    }

    pub fn with_options(mut self, options: super::Options) -> Mysql {
        self.row_count_max_table_size = options.row_count_max_table_size;
        self.ledger = options.ledger;
        self
    }

    /// The same server's database `dbname`, recorded under this one's name: what a restore set
    /// aside, to be backed up as this database's data.
    fn at_database(&self, dbname: &str) -> Mysql {
        let mut other = self.clone();
        other.recorded_as = Some(self.conn.dbname.clone());
        other.conn.dbname = dbname.to_string();
        other
    }

    /// The ledger scratch databases are recorded in (see [`crate::scratch::Ledger::required`]).
    fn ledger(&self) -> Result<&crate::scratch::Ledger> {
        crate::scratch::Ledger::required(self.ledger.as_ref())
    }

    /// The server, as the ledger names it: never the password.
    fn server_id(&self) -> String {
        let c = &self.conn;
        let at = match (&c.socket, &c.host) {
            (Some(s), _) => s.clone(),
            (None, h) => format!(
                "{}:{}",
                h.as_deref().unwrap_or("localhost"),
                c.port.unwrap_or(3306)
            ),
        };
        format!("mysql://{}@{at}", c.user.as_deref().unwrap_or(""))
    }

    fn tools(&self) -> Result<&Tools> {
        if let Some(t) = self.tools.get() {
            return Ok(t);
        }
        let tools = Tools::find()?;
        Ok(self.tools.get_or_init(|| tools))
    }

    /// A command for one of the tools, connected as the URL says. Option files are not read
    /// (`--no-defaults`): a `[mysqldump] insert-ignore` or `[mysql] force` in someone's
    /// `~/.my.cnf` would change what a dump holds or hide a failed load. The caller's
    /// `MYSQL_HOST`, `MYSQL_TCP_PORT` and `MYSQL_UNIX_PORT` cannot redirect it either; a
    /// `MYSQL_PWD` of the caller's stays usable when the URL has no password.
    fn command(&self, program: &Path, mariadb_client: bool) -> Command {
        let mut cmd = Command::new(program);
        crate::child::tool(&mut cmd);
        cmd.arg("--no-defaults");
        for var in ["MYSQL_HOST", "MYSQL_TCP_PORT", "MYSQL_UNIX_PORT"] {
            cmd.env_remove(var);
        }
        let c = &self.conn;
        if let Some(pw) = &c.password {
            cmd.env("MYSQL_PWD", pw);
        }
        cmd.arg("--default-character-set=utf8mb4");
        if let Some(h) = &c.host {
            cmd.arg(format!("--host={h}"));
        }
        if let Some(p) = c.port {
            cmd.arg(format!("--port={p}"));
        }
        if let Some(s) = &c.socket {
            cmd.arg(format!("--socket={s}"));
        }
        if let Some(u) = &c.user {
            cmd.arg(format!("--user={u}"));
        }
        for (key, value) in &c.tls {
            cmd.args(tls_args(key, value, mariadb_client));
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// The client, connected to `db` (or to no database), printing tab-separated rows.
    fn client(&self, db: Option<&str>) -> Result<Command> {
        let (client, mariadb) = match self.tools.get() {
            Some(t) => (t.client.clone(), t.mariadb_client),
            None => {
                let client = find_client()?;
                let mariadb = is_mariadb_tool(&client);
                (client, mariadb)
            }
        };
        let mut cmd = self.command(&client, mariadb);
        cmd.args(["--batch", "--skip-column-names", "--connect-timeout=10"]);
        if let Some(db) = db {
            cmd.arg(format!("--database={db}"));
        }
        Ok(cmd)
    }

    /// Runs `sql` in `db` (or in no database); rows of text columns (`None` for NULL).
    fn query_in(&self, db: Option<&str>, sql: &str) -> Result<Rows> {
        Ok(parse_rows(&String::from_utf8_lossy(
            &self.query_bytes_in(db, sql)?,
        )))
    }

    /// Runs `sql` in `db` (or in no database); rows of byte columns, as the server sent them.
    fn query_raw_in(&self, db: Option<&str>, sql: &str) -> Result<RawRows> {
        Ok(parse_raw_rows(&self.query_bytes_in(db, sql)?))
    }

    /// Runs `sql` in `db` (or in no database); what the client printed.
    fn query_bytes_in(&self, db: Option<&str>, sql: &str) -> Result<Vec<u8>> {
        let mut cmd = self.client(db)?;
        let out = cmd.arg("--execute").arg(sql).output().map_err(|e| {
            Error::new(Kind::ToolNotFound, "cannot run the mysql client").caused_by(e)
        })?;
        if !out.status.success() {
            return Err(self.client_error(db, &String::from_utf8_lossy(&out.stderr)));
        }
        Ok(out.stdout)
    }

    /// Runs the statements of `script` in `db` (or in no database), given to the client on its
    /// stdin as a dump is (so `DELIMITER` works); the client stops at the first failing one.
    fn run_script(&self, db: Option<&str>, script: &[u8]) -> Result<()> {
        let mut child = self
            .client(db)?
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                Error::new(Kind::ToolNotFound, "cannot run the mysql client").caused_by(e)
            })?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let script = script.to_vec();
        // Written on a thread of its own: the client's stderr is read meanwhile.
        let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &script));
        let out = child
            .wait_with_output()
            .map_err(|e| Error::new(Kind::Tool, "the mysql client did not finish").caused_by(e))?;
        let written = writer.join().unwrap_or(Ok(()));
        if !out.status.success() {
            return Err(self.client_error(db, &String::from_utf8_lossy(&out.stderr)));
        }
        written.map_err(|e| Error::tool("cannot give the mysql client its statements").caused_by(e))
    }

    fn scalar_in(&self, db: Option<&str>, sql: &str) -> Result<String> {
        self.query_in(db, sql)?
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten())
            .ok_or_else(|| Error::tool(format!("the query returned nothing: {sql}")))
    }

    /// An error from a client tool: a failed connection (access denied, unknown database,
    /// server unreachable) is exit 3 with the server's words.
    fn client_error(&self, db: Option<&str>, stderr: &str) -> Error {
        // Where the client runs several statements, it frames the failing one in dashes before
        // its `ERROR` line.
        let lines = || {
            stderr
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("Warning") && !l.contains("[Warning]"))
        };
        let message = lines()
            .find(|l| l.starts_with("ERROR "))
            .or_else(|| lines().next())
            .unwrap_or("the client failed");
        let code = error_code(message);
        if code == Some(1205) {
            return Error::new(
                Kind::Busy,
                format!(
                    "MySQL database {} is locked by another session",
                    db.unwrap_or(&self.conn.dbname)
                ),
            )
            .caused_by(message)
            .with_hint(
                "a transaction elsewhere holds it; end it (or stop the application) and try again",
            );
        }
        let connection = matches!(code, Some(1044 | 1045 | 1049 | 1130 | 1698 | 2000..=2999));
        if connection {
            let hint = match code {
                Some(1045 | 1698) => {
                    "check the user and password in the environment's URL variable"
                }
                Some(1044 | 1130) => {
                    "the user may not connect to this database from here; check its grants"
                }
                Some(1049) => "create the database, or check the database name in the URL",
                _ => "check that the server runs and the host and port in the URL are right",
            };
            return Error::connection(format!(
                "cannot connect to MySQL database {} at {}",
                db.unwrap_or(&self.conn.dbname),
                self.conn.describe()
            ))
            .caused_by(message)
            .with_hint(hint);
        }
        let err = Error::tool(format!(
            "a query in MySQL database {} failed",
            db.unwrap_or("(none)")
        ))
        .caused_by(message);
        if code.is_some_and(|c| matches!(c, 1142 | 1227 | 1370)) {
            err.with_hint("the user in the URL lacks a privilege this needs: restores need CREATE and DROP on the database (and on `<db>__faber_%` databases to swap a checked copy in), backups SELECT, SHOW VIEW, TRIGGER, EVENT and (for routines) access to mysql.proc")
        } else {
            err
        }
    }

    /// The server's version as shown: `MariaDB 10.11.6` or `MySQL 8.0.36`.
    fn server_version(&self) -> Result<String> {
        let v = self.scalar_in(Some(&self.conn.dbname), "SELECT VERSION()")?;
        let number = v.split('-').next().unwrap_or(&v);
        Ok(if v.contains("MariaDB") {
            format!("MariaDB {number}")
        } else {
            format!("MySQL {number}")
        })
    }

    /// Per-table row counts of `db`'s base tables: `COUNT(*)` for tables up to the size limit,
    /// the server's estimate (marked estimated) above it. Names travel in hex, so that a table
    /// named `NULL` is not taken for a NULL.
    fn count_rows(&self, db: &str) -> Result<Tables> {
        let listed = self.query_in(
            Some(db),
            "SELECT HEX(TABLE_NAME), COALESCE(DATA_LENGTH, 0), COALESCE(TABLE_ROWS, 0) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
        )?;
        let mut out = Tables::new();
        let mut exact = Vec::new();
        for row in listed {
            let [Some(hex_name), Some(size), Some(estimate)] = row.as_slice() else {
                continue;
            };
            let Some(name) = hex::decode(hex_name)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
            else {
                continue;
            };
            let name = &name;
            if size.parse::<u64>().unwrap_or(0) > self.row_count_max_table_size {
                out.insert(
                    name.clone(),
                    TableStats {
                        rows: estimate.parse().unwrap_or(0),
                        estimated: true,
                    },
                );
            } else {
                exact.push(name.clone());
            }
        }
        for chunk in exact.chunks(200) {
            // Each count is labelled with its table's place in the chunk.
            let sql = chunk
                .iter()
                .enumerate()
                .map(|(i, t)| format!("SELECT {i}, COUNT(*) FROM {}", ident(t)))
                .collect::<Vec<_>>()
                .join(" UNION ALL ");
            for row in self.query_in(Some(db), &sql)? {
                let [Some(i), Some(n)] = row.as_slice() else {
                    continue;
                };
                if let Some(name) = i.parse::<usize>().ok().and_then(|i| chunk.get(i)) {
                    out.insert(
                        name.clone(),
                        TableStats {
                            rows: n.parse().unwrap_or(0),
                            estimated: false,
                        },
                    );
                }
            }
        }
        Ok(out)
    }

    fn inspect_db(
        &self,
        db: &str,
        migrations_table: Option<&str>,
        count_rows: bool,
    ) -> Result<Inspection> {
        let tables = if count_rows {
            self.count_rows(db)?
        } else {
            Tables::new()
        };
        let migrations = migrations::read_state(&InDb(self, db), migrations_table)?;
        Ok(Inspection { tables, migrations })
    }
}

impl ConnParams {
    /// `user@host:port/db`, never the password.
    fn describe(&self) -> String {
        let at = match (&self.socket, &self.host) {
            (Some(s), _) => s.clone(),
            (None, h) => format!(
                "{}:{}",
                h.as_deref().unwrap_or("localhost"),
                self.port.unwrap_or(3306)
            ),
        };
        format!(
            "{}@{at}/{}",
            self.user.as_deref().unwrap_or("(default user)"),
            self.dbname
        )
    }
}

impl Tools {
    /// The dump tool and client on PATH, MariaDB's names first (`mysqldump` and `mysql` are
    /// often links to them).
    fn find() -> Result<Tools> {
        let dump = ["mariadb-dump", "mysqldump"]
            .iter()
            .find_map(|t| which::which(t).ok())
            .ok_or_else(|| {
                Error::new(
                    Kind::ToolNotFound,
                    "mysqldump is not installed or not on PATH",
                )
                .with_hint(INSTALL_HINT)
            })?;
        let client = find_client()?;
        let dump_version = tool_version(&dump).ok_or_else(|| {
            Error::new(
                Kind::ToolNotFound,
                format!("{} does not run", dump.display()),
            )
            .with_hint(INSTALL_HINT)
        })?;
        let mariadb_client = is_mariadb_tool(&client);
        Ok(Tools {
            dump,
            client,
            dump_version,
            mariadb_client,
        })
    }
}

fn find_client() -> Result<PathBuf> {
    ["mariadb", "mysql"]
        .iter()
        .find_map(|t| which::which(t).ok())
        .ok_or_else(|| {
            Error::new(
                Kind::ToolNotFound,
                "the mysql client is not installed or not on PATH",
            )
            .with_hint(INSTALL_HINT)
        })
}

/// `mysqldump --version`, first line.
fn tool_version(tool: &Path) -> Option<String> {
    let out = Command::new(tool).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next()?.trim().to_string();
    (!line.is_empty()).then_some(line)
}

fn is_mariadb_tool(tool: &Path) -> bool {
    tool_version(tool).is_some_and(|v| v.contains("MariaDB"))
}

/// A TLS setting of the URL as client options. MariaDB's client has no `--ssl-mode`: its
/// values are said with `--ssl`, `--skip-ssl` and `--ssl-verify-server-cert` there.
fn tls_args(key: &str, value: &str, mariadb_client: bool) -> Vec<String> {
    let on = !matches!(
        value.to_ascii_lowercase().as_str(),
        "0" | "false" | "off" | "no" | "disabled"
    );
    match key {
        "ssl" | "ssl-verify-server-cert" if on => vec![format!("--{key}")],
        "ssl" | "ssl-verify-server-cert" => vec![format!("--skip-{key}")],
        "ssl-mode" if mariadb_client => match value.to_ascii_uppercase().as_str() {
            "DISABLED" => vec!["--skip-ssl".into()],
            "VERIFY_CA" | "VERIFY_IDENTITY" => {
                vec!["--ssl".into(), "--ssl-verify-server-cert".into()]
            }
            _ => vec!["--ssl".into()],
        },
        _ => vec![format!("--{key}={value}")],
    }
}

/// The error number of a client message: `ERROR 1045 (28000): …`, `mysqldump: Got error: 1045:
/// …`.
fn error_code(message: &str) -> Option<u32> {
    let after = message
        .find("ERROR ")
        .map(|i| &message[i + 6..])
        .or_else(|| message.find("Got error: ").map(|i| &message[i + 11..]))?;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Rows as `--batch` prints them: tab-separated, with `\t`, `\n`, `\\` and `\0` escaped and
/// `NULL` for NULL.
fn parse_rows(text: &str) -> Rows {
    parse_raw_rows(text.as_bytes())
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|field| field.map(|f| String::from_utf8_lossy(&f).into_owned()))
                .collect()
        })
        .collect()
}

/// [`parse_rows`] for bytes in any character set (the escapes are ASCII in all of them the
/// client prints).
fn parse_raw_rows(text: &[u8]) -> RawRows {
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    if text.is_empty() {
        return RawRows::new();
    }
    text.split(|&b| b == b'\n')
        .map(|line| {
            line.split(|&b| b == b'\t')
                .map(|field| (field != b"NULL").then(|| unescape(field)))
                .collect()
        })
        .collect()
}

fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut bytes = field.iter();
    while let Some(&b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(b't') => out.push(b'\t'),
            Some(b'n') => out.push(b'\n'),
            Some(b'0') => out.push(0),
            Some(&other) => out.push(other),
            None => out.push(b'\\'),
        }
    }
    out
}

/// A string literal that means the same under any `sql_mode` (with or without
/// `NO_BACKSLASH_ESCAPES`): the text's bytes in hex, read as utf8mb4, and compared byte for
/// byte — `shop` is not `Shop` or `shöp`.
fn literal(s: &str) -> String {
    format!(
        "CONVERT(X'{}' USING utf8mb4) COLLATE utf8mb4_bin",
        hex::encode(s.as_bytes())
    )
}

/// An identifier, always quoted.
fn ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// Migration state queries in one database.
struct InDb<'a>(&'a Mysql, &'a str);

impl Queryable for InDb<'_> {
    fn table_exists(&self, table: &str) -> Result<bool> {
        let sql = format!(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = {}",
            literal(table)
        );
        Ok(self.0.scalar_in(Some(self.1), &sql)? != "0")
    }

    fn query_text(&self, sql: &str) -> Result<Rows> {
        self.0.query_in(Some(self.1), sql)
    }
}

impl Provider for Mysql {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Mysql
    }

    fn database_name(&self) -> String {
        self.recorded_as
            .clone()
            .unwrap_or_else(|| self.conn.dbname.clone())
    }

    fn formats(&self) -> &'static [Format] {
        &[Format::Sql]
    }

    fn exists(&self) -> Result<bool> {
        let sql = format!(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {}",
            literal(&self.conn.dbname)
        );
        Ok(self.scalar_in(None, &sql)? != "0")
    }

    fn check_connection(&self) -> Result<String> {
        self.server_version()
    }

    fn size_estimate(&self) -> Result<u64> {
        let size = self.scalar_in(
            Some(&self.conn.dbname),
            "SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE()",
        )?;
        Ok(size.parse().unwrap_or(0))
    }

    fn inspect(&self, migrations_table: Option<&str>, count_rows: bool) -> Result<Inspection> {
        self.inspect_db(&self.conn.dbname, migrations_table, count_rows)
    }

    fn dump(
        &self,
        format: Format,
        migrations_table: Option<&str>,
        _work_dir: &Path,
        to: DumpTo<'_, '_>,
    ) -> Result<Dumped> {
        let DumpTo::Stream(sink) = to else {
            return Err(Error::config("MySQL dumps are single files"));
        };
        if format != Format::Sql {
            return Err(Error::config(format!(
                "MySQL backups are plain SQL; format `{format}` is not available"
            ))
            .with_hint("leave --format out for MySQL"));
        }
        let tools = self.tools()?;
        // Migration state is read just before the dump starts, in a session of its own: mysqldump's
        // snapshot cannot be shared. Row counts come from the dump itself.
        let migrations = migrations::read_state(&InDb(self, &self.conn.dbname), migrations_table)?;
        let mut child = self
            .command(&tools.dump, tools.mariadb_client)
            .args([
                "--single-transaction",
                "--routines",
                "--triggers",
                "--events",
                "--hex-blob",
                "--no-tablespaces",
                "--skip-dump-date",
            ])
            .arg(&self.conn.dbname)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                Error::new(
                    Kind::ToolNotFound,
                    format!("cannot run {}", tools.dump.display()),
                )
                .caused_by(e)
            })?;
        let stderr_reader = crate::provider::tool::drain_stderr(&mut child);
        let stdout = child.stdout.take().expect("stdout is piped");
        crate::child::widen_pipe(&stdout);
        let mut source = RowCounter::new(TailReader::new(stdout));
        let written = sink(&mut source);
        if written.is_err() {
            // Storing failed (a full disk, say): the dump must not be left blocked on the pipe.
            let _ = child.kill();
        }
        let trailer_seen = source.get_ref().ends_with_marker(DUMP_TRAILER);
        let tables: Tables = source
            .tables()
            .iter()
            .map(|(name, rows)| {
                (
                    name.clone(),
                    TableStats {
                        rows: *rows,
                        estimated: false,
                    },
                )
            })
            .collect();
        drop(source);
        let status = crate::interrupt::wait_for(&mut child);
        let stderr = stderr_reader.join().unwrap_or_default();
        let written = written.map_err(|e| {
            Error::io(
                Kind::Tool,
                "cannot write the backup of",
                Path::new(&self.conn.dbname),
                e,
            )
        })?;
        let status = status.map_err(|e| Error::tool("mysqldump did not finish").caused_by(e))?;
        if !status.success() {
            let what = match status.code() {
                Some(code) => format!("mysqldump failed (exit {code})"),
                None => "mysqldump was killed".to_string(),
            };
            let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            if error_code(first).is_some_and(|c| matches!(c, 1044 | 1045 | 1049 | 2000..=2999)) {
                return Err(self.client_error(Some(&self.conn.dbname), first));
            }
            let mut err = Error::tool(what);
            for line in stderr.lines().filter(|l| !l.trim().is_empty()).take(5) {
                err = err.caused_by(
                    line.trim_start_matches("mysqldump: ")
                        .trim_start_matches("mariadb-dump: ")
                        .trim(),
                );
            }
            return Err(err.with_hint("nothing was registered; fix the cause and back up again"));
        }
        if !trailer_seen {
            return Err(
                Error::tool("mysqldump's output lacks its completion trailer")
                    .with_hint("the dump is incomplete; back up again"),
            );
        }
        Ok(Dumped {
            inspection: Inspection { tables, migrations },
            written: Some(written),
            tool_version: tools.dump_version.clone(),
            integrity_check: "ok".to_string(),
        })
    }

    fn tools_report(&self) -> Result<Option<String>> {
        let t = self.tools()?;
        Ok(Some(format!("{} ({})", t.dump_version, t.dump.display())))
    }

    fn restore_tools_report(&self) -> Result<Option<String>> {
        let t = self.tools()?;
        let version = tool_version(&t.client).ok_or_else(|| {
            Error::new(
                Kind::ToolNotFound,
                format!("{} does not run", t.client.display()),
            )
            .with_hint(INSTALL_HINT)
        })?;
        Ok(Some(format!("{version} ({})", t.client.display())))
    }

    fn other_sessions(&self) -> Result<Option<Vec<crate::provider::OtherSession>>> {
        restore::other_sessions(self).map(Some)
    }

    fn clear_sessions(&self, terminate: bool) -> Result<()> {
        restore::clear_sessions(self, terminate)
    }

    fn sessions_unseen(&self) -> Result<Option<String>> {
        restore::sessions_unseen(self)
    }

    fn prepare_restore(&self, _raw_size: u64) -> Result<Vec<PathBuf>> {
        self.tools()?;
        Ok(restore::sweep(self, true)?
            .dropped
            .into_iter()
            .map(|name| PathBuf::from(format!("database {name}")))
            .collect())
    }

    fn sets_replaced_aside(&self) -> bool {
        true
    }

    fn sweep_scratch(&self, drop: bool) -> Result<crate::scratch::Sweep> {
        restore::sweep(self, drop)
    }

    fn restore_privileges(&self) -> Result<super::RestorePrivileges> {
        inplace::privileges(self)
    }

    fn restore_in_place(
        &self,
        format: Format,
        source: Source<'_>,
        migrations_table: Option<&str>,
        options: &super::InPlace<'_>,
    ) -> Result<super::Committed, super::CommitFailed> {
        inplace::restore(self, format, source, migrations_table, options)
    }

    fn stage_restore<'a>(
        &'a self,
        format: Format,
        source: Source<'_>,
        migrations_table: Option<&str>,
        _jobs: u32,
    ) -> Result<Box<dyn Staged + 'a>> {
        restore::stage(self, format, source, migrations_table)
    }

    fn deep_check(
        &self,
        format: Format,
        source: Source<'_>,
        _jobs: u32,
    ) -> Result<(String, Tables)> {
        restore::deep_check(self, format, source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_become_connection_params_without_showing_the_password() {
        let url = url::Url::parse(
            "mysql://app:p%40ss@db.internal:3307/shop?ssl-mode=REQUIRED&ssl_ca=/ca.pem&charset=x",
        )
        .unwrap();
        let my = Mysql::new(&url).unwrap();
        assert_eq!(my.conn.password.as_deref(), Some("p@ss"));
        assert_eq!(my.conn.describe(), "app@db.internal:3307/shop");
        assert_eq!(
            my.conn.tls,
            [
                ("ssl-mode".to_string(), "REQUIRED".to_string()),
                ("ssl-ca".to_string(), "/ca.pem".to_string())
            ]
        );
        assert_eq!(tls_args("ssl-mode", "REQUIRED", true), ["--ssl"]);
        assert_eq!(
            tls_args("ssl-mode", "REQUIRED", false),
            ["--ssl-mode=REQUIRED"]
        );
        let sock = Mysql::new(
            &url::Url::parse("mariadb://root@localhost/app?socket=/run/my.sock").unwrap(),
        )
        .unwrap();
        assert_eq!(sock.conn.describe(), "root@/run/my.sock/app");
        assert!(Mysql::new(&url::Url::parse("mysql://app@host/").unwrap()).is_err());
    }

    #[test]
    fn batch_output_and_error_codes() {
        assert_eq!(
            parse_rows("a\\tb\tNULL\n2\tx\\\\y\n"),
            vec![
                vec![Some("a\tb".to_string()), None],
                vec![Some("2".to_string()), Some("x\\y".to_string())]
            ]
        );
        assert_eq!(
            error_code("ERROR 1045 (28000): Access denied for user 'x'@'localhost'"),
            Some(1045)
        );
        assert_eq!(
            error_code("mysqldump: Got error: 2002: \"Can't connect\" when trying to connect"),
            Some(2002)
        );
        assert_eq!(error_code("something else"), None);
        assert_eq!(
            literal("a'b"),
            "CONVERT(X'612762' USING utf8mb4) COLLATE utf8mb4_bin"
        );
        assert_eq!(ident("we`ird"), "`we``ird`");
    }
}
