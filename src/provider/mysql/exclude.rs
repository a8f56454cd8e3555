//! `exclude_table_data` of a MySQL backup: the patterns resolved against the live database's
//! tables; the main `mysqldump` skips those tables (`--ignore-table`), and a `--no-data` dump of
//! just them — their definitions, indexes and triggers — goes first in the same stream, so that
//! the backup holds their schema and their rows are absent. The main dump's completion trailer
//! still ends the stream.

use std::process::Stdio;

use super::{Mysql, Tools};
use crate::error::{Error, Kind, Result};
use crate::provider::exclude;

impl Mysql {
    /// The base tables of the database `patterns` match, by name (none without patterns).
    pub(super) fn excluded_tables(&self, patterns: &[String]) -> Result<Vec<String>> {
        if patterns.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.query_in(
            Some(&self.conn.dbname),
            "SELECT HEX(TABLE_NAME) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
        )?;
        let names: Vec<String> = rows
            .iter()
            .filter_map(|row| {
                let hex_name = row.first()?.as_deref()?;
                String::from_utf8(hex::decode(hex_name).ok()?).ok()
            })
            .collect();
        Ok(exclude::resolve(patterns, names.iter().map(String::as_str)))
    }

    /// The definitions (no rows) of `tables`, with their triggers, as `mysqldump --no-data`
    /// writes them; empty for no tables.
    pub(super) fn schema_only_dump(&self, tools: &Tools, tables: &[String]) -> Result<Vec<u8>> {
        if tables.is_empty() {
            return Ok(Vec::new());
        }
        let out = self
            .command(&tools.dump, tools.mariadb_client)
            .args([
                "--no-data",
                "--single-transaction",
                "--triggers",
                "--no-tablespaces",
                "--skip-dump-date",
            ])
            .arg(&self.conn.dbname)
            // Table names after `--`: one that begins with a dash is a name, not an option.
            .arg("--")
            .args(tables)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                Error::new(
                    Kind::ToolNotFound,
                    format!("cannot run {}", tools.dump.display()),
                )
                .caused_by(e)
            })?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let mut err = Error::tool("mysqldump --no-data of the excluded tables failed");
            for line in stderr.lines().filter(|l| !l.trim().is_empty()).take(5) {
                err = err.caused_by(line.trim());
            }
            return Err(err.with_hint("nothing was registered; fix the cause and back up again"));
        }
        Ok(out.stdout)
    }
}

/// The main dump's options that skip `tables` of database `db`.
pub(super) fn ignore_args<'a>(
    db: &'a str,
    tables: &'a [String],
) -> impl Iterator<Item = String> + 'a {
    tables
        .iter()
        .map(move |t| format!("--ignore-table={db}.{t}"))
}
