//! PostgreSQL, through its own tools: `pg_dump` streams the dump, `psql` runs queries and loads
//! plain dumps. Connection settings reach the tools through `PG*` variables — the password through
//! `PGPASSWORD` — and never through their argument lists.

mod commits;
mod copycount;
mod inplace;
mod key;
mod restore;
mod snapshot;
mod tools;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::tool::feed;
use super::{
    DumpTo, Dumped, Inspection, Provider, ProviderKind, Source, Staged, TableStats, Tables,
};
use crate::error::{Error, Kind, Result};
use crate::format::Format;
use crate::migrations::{self, Queryable};
use crate::pipeline::{Compression, TailReader};
use copycount::CopyTarget;
use key::table_key;
use tools::Tools;

pub use key::legacy as legacy_table_key;

/// The line every complete plain-format dump ends with.
pub const DUMP_TRAILER: &str = "-- PostgreSQL database dump complete";
/// The maintenance database used to create, rename and drop databases.
const MAINTENANCE_DB: &str = "postgres";

/// Field and record separators for `psql` output. A name may hold them (or a newline): names
/// travel hex-encoded, never as they are.
const FIELD_SEP: char = '\u{1f}';
const RECORD_SEP: char = '\u{1e}';
const NULL_MARK: &str = "\u{1}";

/// Rows of text columns as psql prints them (`None` for NULL).
type Rows = Vec<Vec<Option<String>>>;

#[derive(Clone)]
pub struct Postgres {
    conn: ConnParams,
    /// The name this database is recorded under when it is not its own: the data a restore set
    /// aside, backed up as the target's.
    recorded_as: Option<String>,
    tools: std::cell::OnceCell<Tools>,
    /// Tables larger than this get `pg_class.reltuples` instead of `count(*)`.
    row_count_max_table_size: u64,
    /// The project's ledger of the scratch databases it creates.
    ledger: Option<crate::scratch::Ledger>,
}

/// Where and as whom to connect, from the URL. Shown only through [`ConnParams::describe`].
#[derive(Clone)]
struct ConnParams {
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    password: Option<String>,
    dbname: String,
    options: Vec<(&'static str, String)>,
}

impl Postgres {
    pub fn new(url: &url::Url) -> Result<Postgres> {
        let decode = |s: &str| percent_decode(s);
        let dbname = decode(url.path().trim_start_matches('/'));
        if dbname.is_empty() {
            return Err(Error::config("the PostgreSQL URL names no database")
                .with_hint("the form is postgres://user@host:5432/dbname"));
        }
        let mut host = url.host_str().filter(|h| !h.is_empty()).map(decode);
        let mut options = Vec::new();
        let mut query_password = None;
        for (key, value) in url.query_pairs() {
            let var = match key.as_ref() {
                "host" => {
                    host = Some(value.into_owned());
                    continue;
                }
                "password" => {
                    query_password = Some(value.into_owned());
                    continue;
                }
                "sslmode" => "PGSSLMODE",
                "sslrootcert" => "PGSSLROOTCERT",
                "sslcert" => "PGSSLCERT",
                "sslkey" => "PGSSLKEY",
                "connect_timeout" => "PGCONNECT_TIMEOUT",
                "application_name" => "PGAPPNAME",
                "options" => "PGOPTIONS",
                // Parameters of other tools sharing the URL (Prisma's `schema`, …) are not ours.
                _ => continue,
            };
            options.push((var, value.into_owned()));
        }
        Ok(Postgres {
            conn: ConnParams {
                host,
                port: url.port(),
                user: Some(decode(url.username())).filter(|u| !u.is_empty()),
                password: url.password().map(decode).or(query_password),
                dbname,
                options,
            },
            recorded_as: None,
            tools: std::cell::OnceCell::new(),
            row_count_max_table_size: crate::provider::DEFAULT_ROW_COUNT_MAX_TABLE_SIZE,
            ledger: None,
        })
    }

    pub fn with_options(mut self, options: super::Options) -> Postgres {
        self.row_count_max_table_size = options.row_count_max_table_size;
        self.ledger = options.ledger;
        self
    }

    /// The same server's database `dbname`, recorded under this one's name: what a restore set
    /// aside, to be backed up as this database's data.
    fn at_database(&self, dbname: &str) -> Postgres {
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
        format!(
            "postgres://{}@{}:{}",
            c.user.as_deref().unwrap_or(""),
            c.host.as_deref().unwrap_or(""),
            c.port.unwrap_or(5432)
        )
    }

    /// `pg_dump`, `pg_restore` and `psql` of a version that can handle the server.
    fn tools(&self) -> Result<&Tools> {
        if let Some(t) = self.tools.get() {
            return Ok(t);
        }
        let server_major = self.server_version_num()? / 10_000;
        let tools = Tools::find(server_major)?;
        Ok(self.tools.get_or_init(|| tools))
    }

    /// A command for one of the tools, connected to `db` through the environment.
    fn command(&self, program: &Path, db: &str) -> Command {
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
    fn psql_command(&self, psql: &Path, db: &str) -> Command {
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
    fn query_in(&self, db: &str, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
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
    fn psql_error(&self, db: &str, code: Option<i32>, stderr: &str) -> Error {
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

    fn scalar(&self, db: &str, sql: &str) -> Result<String> {
        self.query_in(db, sql)?
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten())
            .ok_or_else(|| Error::tool(format!("the query returned nothing: {sql}")))
    }

    /// Whether the connecting role is a superuser (and so may give objects to their owners).
    fn is_superuser(&self) -> Result<bool> {
        Ok(self.scalar(
            MAINTENANCE_DB,
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
        )? == "t")
    }

    fn server_version_num(&self) -> Result<u32> {
        // The target may not exist yet (a restore creates it): the maintenance database answers.
        let v = self
            .scalar(&self.conn.dbname, "SHOW server_version_num")
            .or_else(|_| self.scalar(MAINTENANCE_DB, "SHOW server_version_num"))?;
        v.trim()
            .parse()
            .map_err(|_| Error::tool(format!("unexpected server_version_num `{v}`")))
    }

    /// Per-table row counts of `db`'s user tables (partitioned parents included).
    fn count_rows(&self, db: &str) -> Result<Tables> {
        count_rows_via(&|sql| self.query_in(db, sql), self.row_count_max_table_size)
    }

    fn inspect_db(
        &self,
        db: &str,
        migrations_table: Option<&str>,
        count_rows: bool,
    ) -> Result<Inspection> {
        let counting = count_rows.then_some(self.row_count_max_table_size);
        inspect_via(&|sql| self.query_in(db, sql), migrations_table, counting)
    }
}

impl ConnParams {
    /// `user@host:port/db`, never the password.
    fn describe(&self) -> String {
        format!(
            "{}@{}:{}/{}",
            self.user.as_deref().unwrap_or("(default user)"),
            self.host.as_deref().unwrap_or("(default host)"),
            self.port.unwrap_or(5432),
            self.dbname
        )
    }
}

impl Provider for Postgres {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Postgres
    }

    fn database_name(&self) -> String {
        self.recorded_as
            .clone()
            .unwrap_or_else(|| self.conn.dbname.clone())
    }

    fn formats(&self) -> &'static [Format] {
        &[Format::Sql, Format::Custom, Format::Directory]
    }

    fn exists(&self) -> Result<bool> {
        let sql = format!(
            "SELECT count(*) FROM pg_database WHERE datname = {}",
            literal(&self.conn.dbname)
        );
        Ok(self.scalar(MAINTENANCE_DB, &sql)? != "0")
    }

    fn check_connection(&self) -> Result<String> {
        let version = self.scalar(&self.conn.dbname, "SHOW server_version")?;
        Ok(format!("PostgreSQL {version}"))
    }

    fn size_estimate(&self) -> Result<u64> {
        let size = self.scalar(
            &self.conn.dbname,
            "SELECT pg_database_size(current_database())",
        )?;
        Ok(size.parse().unwrap_or(0))
    }

    fn inspect(&self, migrations_table: Option<&str>, count_rows: bool) -> Result<Inspection> {
        self.inspect_db(&self.conn.dbname, migrations_table, count_rows)
    }

    fn dump(
        &self,
        format: Format,
        migrations_table_name: Option<&str>,
        _work_dir: &Path,
        to: DumpTo<'_, '_>,
    ) -> Result<Dumped> {
        let tools = self.tools()?;
        // pg_dump shares this session's snapshot; counts and migration state are read in it
        // while the dump streams, so they describe exactly the dumped data.
        let session = snapshot::SnapshotSession::open(self)?;
        let migrations_table = migrations_table_name.map(str::to_string);
        let count_limit = self.row_count_max_table_size;
        let mut cmd = self.command(&tools.pg_dump, &self.conn.dbname);
        cmd.arg(format!("--snapshot={}", session.id))
            .arg("--no-password")
            .stderr(Stdio::piped());
        match (&to, format) {
            (DumpTo::Stream(_), Format::Sql) => {
                cmd.arg("--format=plain").stdout(Stdio::piped());
            }
            (DumpTo::Stream(_), Format::Custom) => {
                // Uncompressed: the stream's compression (zstd on every core by default) does
                // it faster than pg_dump's zlib, and `--compression none` means none.
                cmd.arg("--format=custom")
                    .arg("--compress=0")
                    .stdout(Stdio::piped());
            }
            (
                DumpTo::Directory {
                    path,
                    jobs,
                    compression,
                },
                Format::Directory,
            ) => {
                cmd.arg("--format=directory")
                    .arg(format!("--jobs={}", (*jobs).max(1)))
                    .arg(directory_compression(*compression, tools.pg_dump_major)?)
                    .arg("--file")
                    .arg(path)
                    .stdout(Stdio::null());
            }
            _ => {
                return Err(Error::config(format!(
                    "PostgreSQL cannot dump the {format} format this way"
                )));
            }
        }
        let mut child = cmd.spawn().map_err(|e| {
            Error::new(
                Kind::ToolNotFound,
                format!("cannot run {}", tools.pg_dump.display()),
            )
            .caused_by(e)
        })?;
        let stderr_reader = crate::provider::tool::drain_stderr(&mut child);
        // A plain dump's rows are counted in the stream itself; the other formats are counted
        // with count(*) in the same snapshot, on this second connection, while pg_dump runs.
        let from_stream = format == Format::Sql;
        let counting = std::thread::spawn(move || {
            let run = |sql: &str| session.query(sql);
            let listed = if from_stream {
                list_tables_via(&run).map(Some)
            } else {
                Ok(None)
            };
            let counted = (!from_stream).then_some(count_limit);
            let inspection = inspect_via(&run, migrations_table.as_deref(), counted);
            (listed, inspection, session)
        });
        let mut copied = BTreeMap::new();
        let (written, trailer_seen) = match to {
            DumpTo::Stream(sink) => {
                let stdout = child.stdout.take().expect("stdout is piped");
                crate::child::widen_pipe(&stdout);
                let mut source = copycount::CopyCounter::new(TailReader::new(stdout));
                let written = sink(&mut source);
                if written.is_err() {
                    // Storing failed (a full disk, say): pg_dump must not be left blocked on the
                    // pipe.
                    let _ = child.kill();
                }
                copied = source.tables().clone();
                (
                    Some(written),
                    source.get_ref().ends_with_marker(DUMP_TRAILER),
                )
            }
            DumpTo::Directory { .. } => (None, false),
        };
        let status = crate::interrupt::wait_for(&mut child);
        // The snapshot's transaction ends only now that pg_dump is done with it.
        let inspection = match counting.join() {
            Ok((listed, inspection, session)) => {
                session.close();
                match (listed, inspection) {
                    (Ok(Some(listed)), Ok(mut inspection)) => {
                        inspection.tables = tables_from_copy(&listed, &copied);
                        Ok(inspection)
                    }
                    (Err(e), _) => Err(e),
                    (_, inspection) => inspection,
                }
            }
            Err(_) => Err(Error::tool("counting rows failed")),
        };
        let written = written.transpose().map_err(|e| {
            Error::io(
                Kind::Tool,
                "cannot write the backup of",
                Path::new(&self.conn.dbname),
                e,
            )
        });
        let stderr = stderr_reader.join().unwrap_or_default();
        let status = status.map_err(|e| Error::tool("pg_dump did not finish").caused_by(e))?;
        // A failure to store comes first: it is why pg_dump was stopped.
        let written = written?;
        if !status.success() {
            let what = match status.code() {
                Some(code) => format!("pg_dump failed (exit {code})"),
                None => "pg_dump was killed".to_string(),
            };
            // pg_dump writing a directory dump itself runs out of room: exit 2, like a stream.
            let mut err = if stderr.contains("No space left on device") {
                Error::new(
                    Kind::DiskSpace,
                    format!("{what}: the backup directory is full"),
                )
                .with_hint("free some space there; `faber-db cleanup --expired` may help")
            } else {
                Error::tool(what)
            };
            for line in stderr.lines().filter(|l| !l.trim().is_empty()).take(5) {
                err = err.caused_by(line.trim_start_matches("pg_dump: ").trim());
            }
            return Err(err.add_hint("nothing was registered; fix the cause and back up again"));
        }
        if format == Format::Sql && !trailer_seen {
            return Err(Error::tool("pg_dump's output lacks its completion trailer")
                .with_hint("the dump is incomplete; back up again"));
        }
        let inspection = inspection?;
        Ok(Dumped {
            inspection,
            written,
            tool_version: tools.pg_dump_version.clone(),
            integrity_check: "ok".to_string(),
        })
    }

    fn tools_report(&self) -> Result<Option<String>> {
        let t = self.tools()?;
        Ok(Some(format!(
            "{} ({})",
            t.pg_dump_version,
            t.pg_dump.display()
        )))
    }

    fn restore_tools_report(&self) -> Result<Option<String>> {
        let t = self.tools()?;
        let version = |tool: &Path| {
            tools::version_line(tool).ok_or_else(|| {
                Error::new(
                    Kind::ToolNotFound,
                    format!("{} does not run", tool.display()),
                )
                .with_hint(tools::INSTALL_HINT)
            })
        };
        Ok(Some(format!(
            "{} ({}), {} ({})",
            version(&t.pg_restore)?,
            t.pg_restore.display(),
            version(&t.psql)?,
            t.psql.display()
        )))
    }

    fn other_sessions(&self) -> Result<Option<Vec<crate::provider::OtherSession>>> {
        restore::other_sessions(self).map(Some)
    }

    fn clear_sessions(&self, terminate: bool) -> Result<()> {
        restore::clear_sessions(self, terminate)
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

    fn in_place_is_atomic(&self) -> bool {
        true
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
        jobs: u32,
    ) -> Result<Box<dyn Staged + 'a>> {
        restore::stage(self, format, source, migrations_table, jobs)
    }

    fn deep_check(
        &self,
        format: Format,
        source: Source<'_>,
        jobs: u32,
    ) -> Result<(String, Tables)> {
        restore::deep_check(self, format, source, jobs)
    }
}

/// pg_dump's option for the compression of a directory dump's files. pg_dump before 16 knows
/// gzip levels only.
fn directory_compression(compression: Compression, pg_dump_major: u32) -> Result<String> {
    match compression {
        Compression::None => Ok("--compress=0".into()),
        Compression::Gzip => Ok("--compress=6".into()),
        Compression::Zstd if pg_dump_major >= 16 => Ok("--compress=zstd".into()),
        Compression::Zstd => Err(Error::config(format!(
            "pg_dump {pg_dump_major} cannot compress directory dumps with zstd"
        ))
        .with_hint("use --compression gzip (or none), or install the PostgreSQL 16+ client tools")),
    }
}

/// Checks a custom-format archive (a decoded stream) or a directory dump with
/// `pg_restore --list` (no server needed).
pub fn check_archive(source: Source<'_>) -> Result<()> {
    let pg_restore = tools::pg_restore_any()?;
    let mut cmd = Command::new(&pg_restore);
    crate::child::tool(&mut cmd).arg("--list");
    feed(cmd, source, "pg_restore").map_err(|e| match e.kind() {
        Kind::Tool => Error::verification(format!("the archive is damaged: {}", e.one_line())),
        _ => e,
    })
}

/// The rows of one statement's output, as psql prints them with [`RECORD_SEP`] between them
/// and a newline after the last.
fn parse_output(text: &str) -> Rows {
    let text = text.strip_suffix('\n').unwrap_or(text);
    if text.is_empty() {
        return Vec::new();
    }
    text.split(RECORD_SEP).map(parse_row).collect()
}

/// One row as psql prints it with [`FIELD_SEP`] and [`NULL_MARK`].
fn parse_row(row: &str) -> Vec<Option<String>> {
    row.split(FIELD_SEP)
        .map(|v| (v != NULL_MARK).then(|| v.to_string()))
        .collect()
}

/// The first line of a tool's stderr that is neither empty nor a server NOTICE/WARNING: what
/// failed.
fn first_error_line(stderr: &str) -> Option<&str> {
    stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("NOTICE:") && !l.starts_with("WARNING:"))
}

/// A name as the catalog holds it, hex-encoded in UTF-8 by the server (`n.nspname`), so that
/// no character of it can be taken for psql's separators.
fn hex_utf8(column: &str) -> String {
    format!("encode(convert_to({column}, 'UTF8'), 'hex')")
}

/// A name hex-encoded in the database's own encoding: the bytes pg_dump writes it with.
fn hex_dumped(column: &str) -> String {
    format!("encode(convert_to({column}, getdatabaseencoding()), 'hex')")
}

/// A name the server sent through [`hex_utf8`].
fn unhex(hex_name: &str) -> Option<String> {
    let bytes = hex::decode(hex_name).ok()?;
    Some(
        String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    )
}

/// An SQL string literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// An SQL identifier, always quoted.
fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Something that runs a query: a database through psql, or the backup's snapshot session.
type Run<'a> = dyn Fn(&str) -> Result<Rows> + 'a;

/// Per-table row counts of user tables (partitioned parents included): exact (`count(*)`, in one
/// statement per 200 tables) for tables up to `max_exact_size` bytes, the planner's estimate
/// (`reltuples`, marked estimated) for larger ones. A partitioned table's size and estimate are
/// its partitions'.
fn count_rows_via(run: &Run<'_>, max_exact_size: u64) -> Result<Tables> {
    let listed = run(&format!(
        "SELECT {}, {}, \
         (CASE WHEN c.relkind = 'p' THEN (SELECT coalesce(sum(pg_relation_size(t.relid)), 0) \
             FROM pg_partition_tree(c.oid) t WHERE t.isleaf) ELSE pg_relation_size(c.oid) END)::text, \
         {ESTIMATE_OF_USER_TABLES}",
        hex_utf8("n.nspname"),
        hex_utf8("c.relname")
    ))?;
    let mut out = Tables::new();
    let mut exact = Vec::new();
    for row in listed {
        let [Some(schema), Some(table), Some(size), Some(estimate)] = row.as_slice() else {
            continue;
        };
        let (Some(schema), Some(table)) = (unhex(schema), unhex(table)) else {
            continue;
        };
        let (schema, table) = (&schema, &table);
        if size.parse::<u64>().unwrap_or(0) > max_exact_size {
            out.insert(
                table_key(schema, table),
                TableStats {
                    rows: estimate.parse().unwrap_or(0),
                    estimated: true,
                },
            );
        } else {
            exact.push((schema.clone(), table.clone()));
        }
    }
    for chunk in exact.chunks(200) {
        // Each count is labelled with its table's place in the chunk: no name comes back.
        let sql = chunk
            .iter()
            .enumerate()
            .map(|(i, (s, t))| format!("SELECT {i}, count(*) FROM {}.{}", ident(s), ident(t)))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        for row in run(&sql)? {
            let [Some(i), Some(n)] = row.as_slice() else {
                continue;
            };
            if let Some((s, t)) = i.parse::<usize>().ok().and_then(|i| chunk.get(i)) {
                out.insert(
                    table_key(s, t),
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

/// The end of a query over every user table (`n`: its schema, `c`: the table): the planner's
/// row estimate (a partitioned table's as its leaves' sum), then the tables, by name.
const ESTIMATE_OF_USER_TABLES: &str = "(CASE WHEN c.relkind = 'p' THEN \
     (SELECT coalesce(sum(greatest(p.reltuples, 0)), 0) FROM pg_partition_tree(c.oid) t \
     JOIN pg_class p ON p.oid = t.relid WHERE t.isleaf) \
     ELSE greatest(c.reltuples, 0) END)::bigint::text \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%' ORDER BY 1, 2";

/// A table as the catalog lists it, for counts read from a plain dump.
struct Listed {
    /// The manifest's name (`events`, `audit.log`; see [`key`]).
    key: String,
    /// The tables its rows are dumped under, as COPY statements name them: the table itself, or
    /// the leaf partitions of a partitioned table.
    dumped_as: Vec<CopyTarget>,
    /// The planner's estimate, for a table whose data the dump does not hold.
    estimate: u64,
}

/// The tables of the database, with the tables their data is dumped under: `schema.table`
/// pairs of hex names, in the bytes pg_dump writes (the database's encoding), comma-separated.
fn list_tables_via(run: &Run<'_>) -> Result<Vec<Listed>> {
    let rows = run(&format!(
        "SELECT {}, {}, \
         CASE WHEN c.relkind = 'p' THEN (SELECT string_agg({} || '.' || {}, ',') \
             FROM pg_partition_tree(c.oid) t \
             JOIN pg_class l ON l.oid = t.relid JOIN pg_namespace ln ON ln.oid = l.relnamespace \
             WHERE t.isleaf) \
         ELSE {} || '.' || {} END, \
         {ESTIMATE_OF_USER_TABLES}",
        hex_utf8("n.nspname"),
        hex_utf8("c.relname"),
        hex_dumped("ln.nspname"),
        hex_dumped("l.relname"),
        hex_dumped("n.nspname"),
        hex_dumped("c.relname"),
    ))?;
    let pair = |p: &str| {
        let (schema, table) = p.split_once('.')?;
        Some((hex::decode(schema).ok()?, hex::decode(table).ok()?))
    };
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let [Some(schema), Some(table), dumped_as, Some(estimate)] = row.as_slice() else {
                return None;
            };
            Some(Listed {
                key: table_key(&unhex(schema)?, &unhex(table)?),
                dumped_as: dumped_as
                    .as_deref()
                    .map(|d| d.split(',').filter_map(pair).collect())
                    .unwrap_or_default(),
                estimate: estimate.parse().unwrap_or(0),
            })
        })
        .collect())
}

/// Row counts from the COPY blocks of a plain dump. A table none of whose data the dump holds
/// (its data excluded, or a partitioned table without partitions) gets the planner's estimate,
/// marked as such.
fn tables_from_copy(listed: &[Listed], copied: &BTreeMap<CopyTarget, u64>) -> Tables {
    listed
        .iter()
        .map(|t| {
            let counts: Option<Vec<u64>> =
                t.dumped_as.iter().map(|d| copied.get(d).copied()).collect();
            let stats = match counts {
                Some(counts) if !t.dumped_as.is_empty() => TableStats {
                    rows: counts.iter().sum(),
                    estimated: false,
                },
                _ => TableStats {
                    rows: t.estimate,
                    estimated: true,
                },
            };
            (t.key.clone(), stats)
        })
        .collect()
}

/// Tables with row counts (when `counting` gives the largest table counted exactly) and the
/// migration state, through `run`.
fn inspect_via(
    run: &Run<'_>,
    migrations_table: Option<&str>,
    counting: Option<u64>,
) -> Result<Inspection> {
    let tables = match counting {
        Some(max_exact_size) => count_rows_via(run, max_exact_size)?,
        None => Tables::new(),
    };
    let migrations = migrations::read_state(&Via(run), migrations_table)?;
    Ok(Inspection { tables, migrations })
}

/// Migration state queries through a [`Run`].
struct Via<'a, 'b>(&'a Run<'b>);

impl Queryable for Via<'_, '_> {
    fn table_exists(&self, table: &str) -> Result<bool> {
        let sql = format!("SELECT to_regclass({}) IS NOT NULL", literal(&ident(table)));
        Ok(self.0(&sql)?
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .as_deref()
            == Some("t"))
    }

    fn tables_exist(&self, tables: &[&str]) -> Result<Vec<bool>> {
        if tables.is_empty() {
            return Ok(Vec::new());
        }
        let columns: Vec<String> = tables
            .iter()
            .map(|t| format!("to_regclass({}) IS NOT NULL", literal(&ident(t))))
            .collect();
        let rows = self.0(&format!("SELECT {}", columns.join(", ")))?;
        let row = rows.into_iter().next().unwrap_or_default();
        Ok((0..tables.len())
            .map(|i| row.get(i).cloned().flatten().as_deref() == Some("t"))
            .collect())
    }

    fn query_text(&self, sql: &str) -> Result<Rows> {
        self.0(sql)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_become_connection_params_without_showing_the_password() {
        let url = url::Url::parse(
            "postgres://app:p%40ss@db.internal:6543/my%20db?sslmode=require&schema=public",
        )
        .unwrap();
        let pg = Postgres::new(&url).unwrap();
        assert_eq!(pg.conn.password.as_deref(), Some("p@ss"));
        assert_eq!(pg.conn.dbname, "my db");
        assert_eq!(pg.conn.options, vec![("PGSSLMODE", "require".to_string())]);
        assert_eq!(pg.conn.describe(), "app@db.internal:6543/my db");
        assert!(Postgres::new(&url::Url::parse("postgres://app@host/").unwrap()).is_err());
    }
}
