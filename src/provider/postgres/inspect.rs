//! What is recorded with a backup: the row counts of its tables and its migration state, read
//! through psql or in the dump's snapshot, or counted in a plain dump's COPY blocks.

use std::collections::BTreeMap;

use super::copycount::CopyTarget;
use super::key::table_key;
use super::psql::{hex_dumped, hex_utf8, ident, literal, unhex};
use super::{Postgres, Rows};
use crate::error::Result;
use crate::migrations::{self, Queryable};
use crate::provider::{Inspection, TableStats, Tables};

impl Postgres {
    /// Per-table row counts of `db`'s user tables (partitioned parents included).
    pub(super) fn count_rows(&self, db: &str) -> Result<Tables> {
        count_rows_via(&|sql| self.query_in(db, sql), self.row_count_max_table_size)
    }

    pub(super) fn inspect_db(
        &self,
        db: &str,
        migrations_table: Option<&str>,
        count_rows: bool,
    ) -> Result<Inspection> {
        let counting = count_rows.then_some(self.row_count_max_table_size);
        inspect_via(&|sql| self.query_in(db, sql), migrations_table, counting)
    }

    /// [`Postgres::inspect_db`] with row counts of `db` just loaded, where `copied` holds the
    /// rows the server said it took into each table the load's COPY statements filled (see
    /// `copycount::server_counts`): those tables are not read again.
    pub(super) fn inspect_loaded(
        &self,
        db: &str,
        migrations_table: Option<&str>,
        copied: Option<&BTreeMap<CopyTarget, u64>>,
    ) -> Result<Inspection> {
        let tables = self.count_rows_loaded(db, copied)?;
        let run = |sql: &str| self.query_in(db, sql);
        let migrations = migrations::read_state(&Via(&run), migrations_table)?;
        Ok(Inspection { tables, migrations })
    }

    /// [`Postgres::count_rows`] of `db` just loaded: see [`Postgres::inspect_loaded`].
    pub(super) fn count_rows_loaded(
        &self,
        db: &str,
        copied: Option<&BTreeMap<CopyTarget, u64>>,
    ) -> Result<Tables> {
        match copied {
            Some(copied) => count_rows_after_load(
                &|sql| self.query_in(db, sql),
                self.row_count_max_table_size,
                copied,
            ),
            None => self.count_rows(db),
        }
    }
}

/// Row counts of a database just loaded: a table whose every COPY target (itself, or its leaf
/// partitions) the server answered for in `copied` gets their sum, exact; the others are
/// counted as [`count_rows_via`] does.
fn count_rows_after_load(
    run: &Run<'_>,
    max_exact_size: u64,
    copied: &BTreeMap<CopyTarget, u64>,
) -> Result<Tables> {
    let mut known = Tables::new();
    for listed in list_tables_via(run)? {
        if let Some(rows) = copied_rows(&listed, copied) {
            known.insert(listed.key, TableStats::exact(rows));
        }
    }
    let mut tables = count_rows_except(run, max_exact_size, &known)?;
    tables.extend(known);
    Ok(tables)
}

/// Something that runs a query: a database through psql, or the backup's snapshot session.
pub(super) type Run<'a> = dyn Fn(&str) -> Result<Rows> + 'a;

/// Per-table row counts of user tables (partitioned parents included): exact (`count(*)`, in one
/// statement per 200 tables) for tables up to `max_exact_size` bytes, the planner's estimate
/// (`reltuples`, marked estimated) for larger ones. A partitioned table's size and estimate are
/// its partitions'.
pub(super) fn count_rows_via(run: &Run<'_>, max_exact_size: u64) -> Result<Tables> {
    count_rows_except(run, max_exact_size, &Tables::new())
}

/// [`count_rows_via`] of the tables not in `known`.
fn count_rows_except(run: &Run<'_>, max_exact_size: u64, known: &Tables) -> Result<Tables> {
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
        if known.contains_key(&table_key(schema, table)) {
            continue;
        }
        if size.parse::<u64>().unwrap_or(0) > max_exact_size {
            out.insert(
                table_key(schema, table),
                TableStats {
                    rows: estimate.parse().unwrap_or(0),
                    estimated: true,
                    data_excluded: false,
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
                out.insert(table_key(s, t), TableStats::exact(n.parse().unwrap_or(0)));
            }
        }
    }
    Ok(out)
}

/// The end of a query over every user table (`n`: its schema, `c`: the table): the planner's
/// row estimate (a partitioned table's as its leaves' sum), then the tables, by name.
pub(super) const ESTIMATE_OF_USER_TABLES: &str = "(CASE WHEN c.relkind = 'p' THEN \
     (SELECT coalesce(sum(greatest(p.reltuples, 0)), 0) FROM pg_partition_tree(c.oid) t \
     JOIN pg_class p ON p.oid = t.relid WHERE t.isleaf) \
     ELSE greatest(c.reltuples, 0) END)::bigint::text \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%' ORDER BY 1, 2";

/// A table as the catalog lists it, for counts read from a plain dump.
pub(super) struct Listed {
    /// The manifest's name (`events`, `audit.log`; see [`key`](super::key)).
    key: String,
    /// The tables its rows are dumped under, as COPY statements name them: the table itself, or
    /// the leaf partitions of a partitioned table.
    dumped_as: Vec<CopyTarget>,
    /// The planner's estimate, for a table whose data the dump does not hold.
    estimate: u64,
}

/// The tables of the database, with the tables their data is dumped under: `schema.table`
/// pairs of hex names, in the bytes pg_dump writes (the database's encoding), comma-separated.
pub(super) fn list_tables_via(run: &Run<'_>) -> Result<Vec<Listed>> {
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

/// The rows `copied` holds for `table`: the sum over the tables its data is dumped under, when
/// it holds every one of them (and there is one).
fn copied_rows(table: &Listed, copied: &BTreeMap<CopyTarget, u64>) -> Option<u64> {
    if table.dumped_as.is_empty() {
        return None;
    }
    table.dumped_as.iter().map(|d| copied.get(d).copied()).sum()
}

/// Row counts from the COPY blocks of a plain dump. A table none of whose data the dump holds
/// (its data excluded, or a partitioned table without partitions) gets the planner's estimate,
/// marked as such.
pub(super) fn tables_from_copy(listed: &[Listed], copied: &BTreeMap<CopyTarget, u64>) -> Tables {
    listed
        .iter()
        .map(|t| {
            let stats = match copied_rows(t, copied) {
                Some(rows) => TableStats::exact(rows),
                None => TableStats {
                    rows: t.estimate,
                    estimated: true,
                    data_excluded: false,
                },
            };
            (t.key.clone(), stats)
        })
        .collect()
}

/// Tables with row counts (when `counting` gives the largest table counted exactly) and the
/// migration state, through `run`.
pub(super) fn inspect_via(
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
        let rows = self.0(&format!("SELECT {}", exists_columns(tables)))?;
        Ok(flags(&rows, 0, tables.len()))
    }

    fn query_text(&self, sql: &str) -> Result<Rows> {
        self.0(sql)
    }
}

/// `to_regclass(…) IS NOT NULL` for each of `tables`, as a select list.
fn exists_columns(tables: &[&str]) -> String {
    let columns: Vec<String> = tables
        .iter()
        .map(|t| format!("to_regclass({}) IS NOT NULL", literal(&ident(t))))
        .collect();
    columns.join(", ")
}

/// The booleans in columns `from..from + n` of the first of `rows`.
fn flags(rows: &Rows, from: usize, n: usize) -> Vec<bool> {
    let row = rows.first().map(Vec::as_slice).unwrap_or_default();
    (from..from + n)
        .map(|i| row.get(i).cloned().flatten().as_deref() == Some("t"))
        .collect()
}

/// How [`Provider::check_connection`](crate::provider::Provider::check_connection) names the
/// server of `SHOW server_version`'s answer.
pub(super) fn server_version(version: &str) -> String {
    format!("PostgreSQL {version}")
}

/// [`Via`] that asks for the server's version in its first look for tables, so that `status`
/// spends one psql call, not two, on a database without a migration table.
struct WithVersion<'a, 'b> {
    via: Via<'a, 'b>,
    version: std::cell::RefCell<Option<String>>,
}

impl Queryable for WithVersion<'_, '_> {
    fn table_exists(&self, table: &str) -> Result<bool> {
        Ok(self.tables_exist(&[table])?.first() == Some(&true))
    }

    fn tables_exist(&self, tables: &[&str]) -> Result<Vec<bool>> {
        if self.version.borrow().is_some() || tables.is_empty() {
            return self.via.tables_exist(tables);
        }
        let sql = format!(
            "SELECT current_setting('server_version'), {}",
            exists_columns(tables)
        );
        let rows = self.via.0(&sql)?;
        let version = rows.first().and_then(|r| r.first().cloned().flatten());
        *self.version.borrow_mut() = Some(version.unwrap_or_default());
        Ok(flags(&rows, 1, tables.len()))
    }

    fn query_text(&self, sql: &str) -> Result<Rows> {
        self.via.query_text(sql)
    }
}

impl Postgres {
    /// The server's version and the migration state of the environment's database: one psql
    /// call when no migration table is there, two when one is.
    pub(super) fn version_and_migrations_in(
        &self,
        migrations_table: Option<&str>,
    ) -> Result<(String, Option<migrations::MigrationState>)> {
        let run = |sql: &str| self.query_in(&self.conn.dbname, sql);
        let probe = WithVersion {
            via: Via(&run),
            version: std::cell::RefCell::new(None),
        };
        let migrations = migrations::read_state(&probe, migrations_table)?;
        let version = match probe.version.into_inner() {
            Some(v) => server_version(&v),
            None => crate::provider::Provider::check_connection(self)?,
        };
        Ok((version, migrations))
    }
}
