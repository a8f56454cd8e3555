//! MySQL and MariaDB, through their own clients: `mysqldump` (or `mariadb-dump`) streams the dump,
//! `mysql` (or `mariadb`) runs queries and loads dumps. Where to connect goes in the tools'
//! options; the password goes in `MYSQL_PWD` and never in an argument list.
//!
//! Running the client and reading what it prints is in `client`; the dump and the live row
//! counts in `dump`; restores in `restore` (a checked copy swapped in) and `inplace`.

mod client;
mod counter;
mod dump;
mod exclude;
mod inplace;
mod keycount;
mod objects;
mod restore;
mod schema;

use std::path::{Path, PathBuf};

use super::{
    CommitFailed, DumpTo, Dumped, Inspection, Provider, ProviderKind, Source, Staged, Tables,
};
use crate::error::{Error, Kind, Result};
use crate::format::Format;
use crate::migrations::Queryable;
use client::{ident, literal, tool_version};

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

    fn schema(&self) -> Result<crate::schema::Schema> {
        self.schema_of(&self.conn.dbname)
    }

    fn key_maxima(&self, keys: &[(&str, &str)]) -> Result<Vec<Option<i64>>> {
        self.key_maxima_in(keys)
    }

    fn split_by_key(
        &self,
        table: &str,
        column: &str,
        max: Option<i64>,
    ) -> Result<crate::schema::KeySplit> {
        self.split_by_key_in(table, column, max)
    }

    fn dump(
        &self,
        options: &crate::provider::DumpOptions<'_>,
        _work_dir: &Path,
        to: DumpTo<'_, '_>,
    ) -> Result<Dumped> {
        dump::dump(self, options, to)
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

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn replace_tables(&self, from: &dyn Provider, tables: &[String]) -> Result<(), CommitFailed> {
        let Some(from) = from.as_any().downcast_ref::<Mysql>() else {
            return Err(Error::config("tables of a MySQL database come from another").into());
        };
        restore::replace_tables(self, from, tables)
    }

    fn dangling_references(&self, tables: &[String]) -> Result<Vec<String>> {
        restore::dangling(self, tables)
    }

    fn check_new_database(&self, name: &str) -> Result<()> {
        restore::check_new_name(self, name)
    }

    fn restore_into(
        &self,
        name: &str,
        format: Format,
        source: Source<'_>,
        migrations_table: Option<&str>,
        _jobs: u32,
    ) -> Result<Inspection> {
        if format != Format::Sql {
            return Err(Error::config(format!(
                "cannot load a {format} backup into MySQL"
            )));
        }
        restore::restore_into(self, name, source, migrations_table)
    }

    fn scratch_copy<'a>(
        &'a self,
        format: Format,
        source: Source<'_>,
        _jobs: u32,
    ) -> Result<Box<dyn super::ScratchCopy + 'a>> {
        restore::scratch_copy(self, format, source)
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
