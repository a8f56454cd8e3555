//! `psql`: run connected as the URL says (through `PG*` variables, the password in
//! `PGPASSWORD`), its output read back as rows, its failures as errors that say what failed;
//! and how names and strings are written into the queries and read back from them.

use std::path::Path;
use std::process::{Command, Stdio};

use super::{ConnParams, MAINTENANCE_DB, Postgres, Rows, tools};
use crate::error::{Error, Kind, Result};

/// Field and record separators for `psql` output. A name may hold them (or a newline): names
/// travel hex-encoded, never as they are.
pub(super) const FIELD_SEP: char = '\u{1f}';
pub(super) const RECORD_SEP: char = '\u{1e}';
pub(super) const NULL_MARK: &str = "\u{1}";

impl Postgres {
    /// A command for one of the tools, connected to `db` through the environment.
    pub(super) fn command(&self, program: &Path, db: &str) -> Command {
        let mut cmd = Command::new(program);
        crate::child::tool(&mut cmd);
        let c = &self.conn;
        // Only the URL says where to connect: PG* variables of the caller's environment
        // (PGHOSTADDR, PGPORT, PGSERVICE, …) must not redirect the tools elsewhere. A password
        // or password file of the caller's stays usable when the URL has none.
        for (var, _) in std::env::vars_os() {
            let name = var.to_string_lossy();
            if name.starts_with("PG") && name != "PGPASSWORD" && name != "PGPASSFILE" {
                cmd.env_remove(&var);
            }
        }
        cmd.env("PGPORT", c.port.unwrap_or(5432).to_string());
        cmd.env("PGDATABASE", db)
            .env("PGAPPNAME", "faber-db")
            .env("PGCONNECT_TIMEOUT", "10");
        if let Some(h) = &c.host {
            cmd.env("PGHOST", h);
        }
        if let Some(u) = &c.user {
            cmd.env("PGUSER", u);
        }
        if let Some(pw) = &c.password {
            cmd.env("PGPASSWORD", pw);
        }
        for (var, value) in &c.options {
            cmd.env(var, value);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// `psql` connected to `db`, printing unaligned rows of [`FIELD_SEP`]-separated fields with
    /// [`NULL_MARK`] for NULL, [`RECORD_SEP`] between rows, stopping at the first error. It
    /// talks UTF-8 whatever the database's encoding, as the queries and their parsing do.
    pub(super) fn psql_command(&self, psql: &Path, db: &str) -> Command {
        let mut cmd = self.command(psql, db);
        cmd.env("PGCLIENTENCODING", "UTF8")
            .args(["-X", "-q", "-A", "-t", "-w", "-v", "ON_ERROR_STOP=1"])
            .arg("-F")
            .arg(FIELD_SEP.to_string())
            .arg("-R")
            .arg(RECORD_SEP.to_string())
            .arg("-P")
            .arg(format!("null={NULL_MARK}"));
        cmd
    }

    /// Runs `sql` in `db` with psql; rows of text columns (`None` for NULL).
    pub(super) fn query_in(&self, db: &str, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
        let psql = match self.tools.get() {
            Some(t) => t.psql.clone(),
            None => tools::psql_on_path()?,
        };
        let out = self
            .psql_command(&psql, db)
            .arg("-c")
            .arg(sql)
            .output()
            .map_err(|e| {
                Error::new(Kind::ToolNotFound, format!("cannot run {}", psql.display()))
                    .caused_by(e)
            })?;
        if !out.status.success() {
            return Err(self.psql_error(
                db,
                out.status.code(),
                &String::from_utf8_lossy(&out.stderr),
            ));
        }
        Ok(parse_output(&String::from_utf8_lossy(&out.stdout)))
    }

    /// An error from psql: a failed connection (exit 2) is exit 3 with the server's words.
    pub(super) fn psql_error(&self, db: &str, code: Option<i32>, stderr: &str) -> Error {
        let message = first_error_line(stderr)
            .unwrap_or("psql failed")
            .trim_start_matches("psql: ")
            .trim_start_matches("error: ");
        if code == Some(2) {
            let hint = if message.contains("password authentication failed")
                || message.contains("no password supplied")
            {
                "check the user and password in the environment's URL variable"
            } else if message.contains("role \"") && message.contains("does not exist") {
                "check the user name in the URL, or create that role (CREATE ROLE … LOGIN)"
            } else if message.contains("does not exist") {
                "create the database, or check the database name in the URL"
            } else {
                "check that the server runs and the host and port in the URL are right"
            };
            Error::connection(format!(
                "cannot connect to PostgreSQL database {db} at {}",
                self.conn.describe()
            ))
            .caused_by(message)
            .with_hint(hint)
        } else {
            let err = Error::tool(format!("a query in PostgreSQL database {db} failed"))
                .caused_by(message);
            if message.contains("permission denied") || message.contains("must be owner") {
                err.with_hint("the role in the URL lacks a privilege this needs: restores need ownership of the database (and CREATEDB to swap a checked copy in), backups read access to every table")
            } else {
                err
            }
        }
    }

    pub(super) fn scalar(&self, db: &str, sql: &str) -> Result<String> {
        self.query_in(db, sql)?
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten())
            .ok_or_else(|| Error::tool(format!("the query returned nothing: {sql}")))
    }

    /// Whether the connecting role is a superuser (and so may give objects to their owners).
    pub(super) fn is_superuser(&self) -> Result<bool> {
        Ok(self.scalar(
            MAINTENANCE_DB,
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
        )? == "t")
    }

    pub(super) fn server_version_num(&self) -> Result<u32> {
        // The target may not exist yet (a restore creates it): the maintenance database answers.
        let v = self
            .scalar(&self.conn.dbname, "SHOW server_version_num")
            .or_else(|_| self.scalar(MAINTENANCE_DB, "SHOW server_version_num"))?;
        v.trim()
            .parse()
            .map_err(|_| Error::tool(format!("unexpected server_version_num `{v}`")))
    }
}

impl ConnParams {
    /// `user@host:port/db`, never the password.
    pub(super) fn describe(&self) -> String {
        format!(
            "{}@{}:{}/{}",
            self.user.as_deref().unwrap_or("(default user)"),
            self.host.as_deref().unwrap_or("(default host)"),
            self.port.unwrap_or(5432),
            self.dbname
        )
    }
}

/// The rows of one statement's output, as psql prints them with [`RECORD_SEP`] between them
/// and a newline after the last.
pub(super) fn parse_output(text: &str) -> Rows {
    let text = text.strip_suffix('\n').unwrap_or(text);
    if text.is_empty() {
        return Vec::new();
    }
    text.split(RECORD_SEP).map(parse_row).collect()
}

/// One row as psql prints it with [`FIELD_SEP`] and [`NULL_MARK`].
pub(super) fn parse_row(row: &str) -> Vec<Option<String>> {
    row.split(FIELD_SEP)
        .map(|v| (v != NULL_MARK).then(|| v.to_string()))
        .collect()
}

/// The first line of a tool's stderr that is neither empty nor a server NOTICE/WARNING: what
/// failed.
pub(super) fn first_error_line(stderr: &str) -> Option<&str> {
    stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("NOTICE:") && !l.starts_with("WARNING:"))
}

/// A name as the catalog holds it, hex-encoded in UTF-8 by the server (`n.nspname`), so that
/// no character of it can be taken for psql's separators.
pub(super) fn hex_utf8(column: &str) -> String {
    format!("encode(convert_to({column}, 'UTF8'), 'hex')")
}

/// A name hex-encoded in the database's own encoding: the bytes pg_dump writes it with.
pub(super) fn hex_dumped(column: &str) -> String {
    format!("encode(convert_to({column}, getdatabaseencoding()), 'hex')")
}

/// A name the server sent through [`hex_utf8`].
pub(super) fn unhex(hex_name: &str) -> Option<String> {
    let bytes = hex::decode(hex_name).ok()?;
    Some(
        String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    )
}

/// An SQL string literal.
pub(super) fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// An SQL identifier, always quoted.
pub(super) fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub(super) fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}
