//! The client tools: found on PATH, run connected as the URL says (the password in
//! `MYSQL_PWD`, never in an argument), and what they print read back as rows or as an error
//! that says what failed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{ConnParams, INSTALL_HINT, Mysql, RawRows, Rows, Tools};
use crate::error::{Error, Kind, Result};

impl Mysql {
    /// A command for one of the tools, connected as the URL says. Option files are not read
    /// (`--no-defaults`): a `[mysqldump] insert-ignore` or `[mysql] force` in someone's
    /// `~/.my.cnf` would change what a dump holds or hide a failed load. The caller's
    /// `MYSQL_HOST`, `MYSQL_TCP_PORT` and `MYSQL_UNIX_PORT` cannot redirect it either; a
    /// `MYSQL_PWD` of the caller's stays usable when the URL has no password.
    pub(super) fn command(&self, program: &Path, mariadb_client: bool) -> Command {
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
    pub(super) fn client(&self, db: Option<&str>) -> Result<Command> {
        let (client, mariadb) = if let Some(t) = self.tools.get() {
            (t.client.clone(), t.mariadb_client)
        } else {
            let client = find_client()?;
            let mariadb = is_mariadb_tool(&client);
            (client, mariadb)
        };
        let mut cmd = self.command(&client, mariadb);
        cmd.args(["--batch", "--skip-column-names", "--connect-timeout=10"]);
        if let Some(db) = db {
            cmd.arg(format!("--database={db}"));
        }
        Ok(cmd)
    }

    /// Runs `sql` in `db` (or in no database); rows of text columns (`None` for NULL).
    pub(super) fn query_in(&self, db: Option<&str>, sql: &str) -> Result<Rows> {
        Ok(parse_rows(&String::from_utf8_lossy(
            &self.query_bytes_in(db, sql)?,
        )))
    }

    /// Runs `sql` in `db` (or in no database); rows of byte columns, as the server sent them.
    pub(super) fn query_raw_in(&self, db: Option<&str>, sql: &str) -> Result<RawRows> {
        Ok(parse_raw_rows(&self.query_bytes_in(db, sql)?))
    }

    /// Runs `sql` in `db` (or in no database); what the client printed.
    pub(super) fn query_bytes_in(&self, db: Option<&str>, sql: &str) -> Result<Vec<u8>> {
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
    pub(super) fn run_script(&self, db: Option<&str>, script: &[u8]) -> Result<()> {
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

    pub(super) fn scalar_in(&self, db: Option<&str>, sql: &str) -> Result<String> {
        self.query_in(db, sql)?
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten())
            .ok_or_else(|| Error::tool(format!("the query returned nothing: {sql}")))
    }

    /// An error from a client tool: a failed connection (access denied, unknown database,
    /// server unreachable) is exit 3 with the server's words.
    pub(super) fn client_error(&self, db: Option<&str>, stderr: &str) -> Error {
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
    pub(super) fn server_version(&self) -> Result<String> {
        let v = self.scalar_in(Some(&self.conn.dbname), "SELECT VERSION()")?;
        let number = v.split('-').next().unwrap_or(&v);
        Ok(if v.contains("MariaDB") {
            format!("MariaDB {number}")
        } else {
            format!("MySQL {number}")
        })
    }
}

impl ConnParams {
    /// `user@host:port/db`, never the password.
    pub(super) fn describe(&self) -> String {
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
    pub(super) fn find() -> Result<Tools> {
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

pub(super) fn find_client() -> Result<PathBuf> {
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
pub(super) fn tool_version(tool: &Path) -> Option<String> {
    let out = Command::new(tool).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next()?.trim().to_string();
    (!line.is_empty()).then_some(line)
}

pub(super) fn is_mariadb_tool(tool: &Path) -> bool {
    tool_version(tool).is_some_and(|v| v.contains("MariaDB"))
}

/// A TLS setting of the URL as client options. MariaDB's client has no `--ssl-mode`: its
/// values are said with `--ssl`, `--skip-ssl` and `--ssl-verify-server-cert` there.
pub(super) fn tls_args(key: &str, value: &str, mariadb_client: bool) -> Vec<String> {
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
pub(super) fn error_code(message: &str) -> Option<u32> {
    let after = message
        .find("ERROR ")
        .map(|i| &message[i + 6..])
        .or_else(|| message.find("Got error: ").map(|i| &message[i + 11..]))?;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Rows as `--batch` prints them: tab-separated, with `\t`, `\n`, `\\` and `\0` escaped and
/// `NULL` for NULL.
pub(super) fn parse_rows(text: &str) -> Rows {
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
pub(super) fn parse_raw_rows(text: &[u8]) -> RawRows {
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

pub(super) fn unescape(field: &[u8]) -> Vec<u8> {
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
pub(super) fn literal(s: &str) -> String {
    format!(
        "CONVERT(X'{}' USING utf8mb4) COLLATE utf8mb4_bin",
        hex::encode(s.as_bytes())
    )
}

/// An identifier, always quoted.
pub(super) fn ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
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
