//! What a backup reads: `mysqldump`'s stream, counted as it goes by, and a live database's row
//! counts and migration state.

use std::io::Read;
use std::path::Path;
use std::process::Stdio;

use super::client::{error_code, ident};
use super::counter::RowCounter;
use super::exclude;
use super::{DUMP_TRAILER, InDb, Mysql};
use crate::error::{Error, Kind, Result};
use crate::format::Format;
use crate::migrations;
use crate::pipeline::TailReader;
use crate::provider::{DumpTo, Dumped, Inspection, TableStats, Tables};

/// Streams the database through `mysqldump` into `to`, and reads its row counts from the dump
/// and its migration state from the database.
pub(super) fn dump(
    my: &Mysql,
    options: &crate::provider::DumpOptions<'_>,
    to: DumpTo<'_, '_>,
) -> Result<Dumped> {
    let crate::provider::DumpOptions {
        format,
        migrations_table,
        exclude_data,
        ..
    } = *options;
    let DumpTo::Stream(sink) = to else {
        return Err(Error::config("MySQL dumps are single files"));
    };
    if format != Format::Sql {
        return Err(Error::config(format!(
            "MySQL backups are plain SQL; format `{format}` is not available"
        ))
        .with_hint("leave --format out for MySQL"));
    }
    let tools = my.tools()?;
    // Migration state is read just before the dump starts, in a session of its own: mysqldump's
    // snapshot cannot be shared. Row counts come from the dump itself.
    let migrations = migrations::read_state(&InDb(my, &my.conn.dbname), migrations_table)?;
    // The excluded tables' definitions go first: the main dump's trailer ends the stream.
    let excluded = my.excluded_tables(exclude_data)?;
    let schema_only = my.schema_only_dump(tools, &excluded)?;
    let mut child = my
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
        .args(exclude::ignore_args(&my.conn.dbname, &excluded))
        .arg(&my.conn.dbname)
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
    let mut source = crate::provider::Watched::new(
        RowCounter::new(TailReader::new(schema_only.as_slice().chain(stdout))),
        options.tables,
    );
    let written = sink(&mut source);
    let source = source.inner;
    if written.is_err() {
        // Storing failed (a full disk, say): the dump must not be left blocked on the pipe.
        let _ = child.kill();
    }
    let trailer_seen = source.get_ref().ends_with_marker(DUMP_TRAILER);
    let mut tables: Tables = source
        .tables()
        .iter()
        .map(|(name, rows)| (name.clone(), TableStats::exact(*rows)))
        .collect();
    crate::provider::exclude::mark(&mut tables, &excluded);
    drop(source);
    let status = crate::interrupt::wait_for(&mut child);
    let stderr = stderr_reader.join().unwrap_or_default();
    let written = written.map_err(|e| {
        Error::io(
            Kind::Tool,
            "cannot write the backup of",
            Path::new(&my.conn.dbname),
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
            return Err(my.client_error(Some(&my.conn.dbname), first));
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

impl Mysql {
    /// Per-table row counts of `db`'s base tables: `COUNT(*)` for tables up to the size limit,
    /// the server's estimate (marked estimated) above it. Names travel in hex, so that a table
    /// named `NULL` is not taken for a NULL.
    pub(super) fn count_rows(&self, db: &str) -> Result<Tables> {
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
                        data_excluded: false,
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
                    out.insert(name.clone(), TableStats::exact(n.parse().unwrap_or(0)));
                }
            }
        }
        Ok(out)
    }

    pub(super) fn inspect_db(
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
