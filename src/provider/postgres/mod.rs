//! PostgreSQL, through its own tools: `pg_dump` streams the dump, `psql` runs queries and loads
//! plain dumps. Connection settings reach the tools through `PG*` variables — the password through
//! `PGPASSWORD` — and never through their argument lists.
//!
//! Running `psql` and reading what it prints is in `psql`; the dump in `dump`, the row counts
//! and migration state recorded with it in `inspect`; restores in `restore` (a checked copy
//! swapped in) and `inplace`.

mod commits;
mod copy;
mod copycount;
mod dump;
mod exclude;
mod globals;
mod inplace;
mod inspect;
mod key;
mod keycount;
mod psql;
mod restore;
mod schema;
mod snapshot;
mod tables;
mod tools;

use std::path::{Path, PathBuf};
use std::process::Command;

use super::tool::feed;
use super::{
    CommitFailed, DumpTo, Dumped, Inspection, Provider, ProviderKind, Source, Staged, Tables,
};
use crate::error::{Error, Kind, Result};
use crate::format::Format;
use psql::{first_error_line, hex_utf8, ident, literal, parse_output, percent_decode, unhex};
use tools::Tools;

pub use globals::GlobalsApplied;
pub use key::legacy as legacy_table_key;
pub use key::{schema_and_table, table_key};

/// The line every complete plain-format dump ends with.
pub const DUMP_TRAILER: &str = "-- PostgreSQL database dump complete";
/// The maintenance database used to create, rename and drop databases.
const MAINTENANCE_DB: &str = "postgres";

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
        Ok(inspect::server_version(&version))
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

    fn version_and_migrations(
        &self,
        migrations_table: Option<&str>,
    ) -> Result<(String, Option<crate::migrations::MigrationState>)> {
        self.version_and_migrations_in(migrations_table)
    }

    fn schema(&self) -> Result<crate::schema::Schema> {
        schema::schema_via(&|sql| self.query_in(&self.conn.dbname, sql))
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

    fn partitioned_tables(&self) -> Result<Vec<String>> {
        self.partitioned_in()
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

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn dump_globals(&self, role_passwords: bool) -> Result<String> {
        globals::dump(self, role_passwords)
    }

    fn apply_globals(&self, script: &str) -> Result<GlobalsApplied> {
        globals::apply(self, script)
    }

    fn replace_tables(&self, from: &dyn Provider, tables: &[String]) -> Result<(), CommitFailed> {
        let Some(from) = from.as_any().downcast_ref::<Postgres>() else {
            return Err(Error::config("tables of a PostgreSQL database come from another").into());
        };
        tables::replace_tables(self, from, tables)
    }

    fn check_new_database(&self, name: &str) -> Result<()> {
        tables::check_new_name(self, name)
    }

    fn check_replaceable(&self, tables: &[String]) -> Result<()> {
        tables::check_replaceable(self, tables)
    }

    fn restore_into(
        &self,
        name: &str,
        format: Format,
        source: Source<'_>,
        migrations_table: Option<&str>,
        jobs: u32,
    ) -> Result<Inspection> {
        tables::restore_into(self, name, format, source, migrations_table, jobs)
    }

    fn scratch_copy<'a>(
        &'a self,
        format: Format,
        source: Source<'_>,
        jobs: u32,
    ) -> Result<Box<dyn super::ScratchCopy + 'a>> {
        copy::scratch_copy(self, format, source, jobs)
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
