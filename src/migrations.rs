//! Migration state, read from whichever known migration table a database holds (DESIGN.md §5).
//! The queries are plain SQL that SQLite, PostgreSQL and MySQL all accept; a provider only runs them.

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// What a migration tool recorded as applied, as stored in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationState {
    pub tool: String,
    pub table: String,
    pub applied_count: u64,
    pub last_migration: Option<String>,
    pub migrations_list: Vec<String>,
}

/// A migration state for people: `3 migrations applied, last 003_add_email`.
pub fn describe(state: Option<&MigrationState>) -> String {
    match state {
        Some(m) => format!(
            "{} migrations applied, last {}",
            m.applied_count,
            m.last_migration.as_deref().unwrap_or("-")
        ),
        None => "no migration table".to_string(),
    }
}

/// The migrations applied `now` that `backup` does not have: what returning to the backup
/// undoes.
pub fn undone(now: Option<&MigrationState>, backup: Option<&MigrationState>) -> Vec<String> {
    let Some(now) = now else {
        return Vec::new();
    };
    now.migrations_list
        .iter()
        .filter(|m| !backup.is_some_and(|b| b.migrations_list.contains(m)))
        .cloned()
        .collect()
}

/// How one tool keeps its applied migrations.
struct Layout {
    tool: &'static str,
    table: &'static str,
    /// Selects one or more columns per applied migration, oldest first.
    query: &'static str,
    /// Joins a row's non-null columns into the migration's name.
    sep: &'static str,
}

const LAYOUTS: &[Layout] = &[
    Layout {
        tool: "prisma",
        table: "_prisma_migrations",
        query: "SELECT migration_name FROM _prisma_migrations \
                WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY migration_name",
        sep: "",
    },
    Layout {
        tool: "sqlx",
        table: "_sqlx_migrations",
        query: "SELECT version, description FROM _sqlx_migrations WHERE success ORDER BY version",
        sep: "_",
    },
    Layout {
        tool: "diesel",
        table: "__diesel_schema_migrations",
        query: "SELECT version FROM __diesel_schema_migrations ORDER BY version",
        sep: "",
    },
    // golang-migrate's table has a `dirty` column and one row: the version it is at. The query
    // fails on Rails' and dbmate's table (no `dirty`), which then read as the next layout.
    Layout {
        tool: "golang-migrate",
        table: "schema_migrations",
        query: "SELECT version FROM schema_migrations WHERE dirty = dirty ORDER BY version",
        sep: "",
    },
    Layout {
        tool: "schema_migrations",
        table: "schema_migrations",
        query: "SELECT version FROM schema_migrations ORDER BY version",
        sep: "",
    },
    Layout {
        tool: "flyway",
        table: "flyway_schema_history",
        query: "SELECT version, description FROM flyway_schema_history WHERE success ORDER BY installed_rank",
        sep: "__",
    },
    Layout {
        tool: "knex",
        table: "knex_migrations",
        query: "SELECT name FROM knex_migrations ORDER BY id",
        sep: "",
    },
    Layout {
        tool: "django",
        table: "django_migrations",
        query: "SELECT app, name FROM django_migrations ORDER BY id",
        sep: ".",
    },
    Layout {
        tool: "alembic",
        table: "alembic_version",
        query: "SELECT version_num FROM alembic_version ORDER BY version_num",
        sep: "",
    },
];

/// The little a provider must answer for migration state to be read.
pub trait Queryable {
    fn table_exists(&self, table: &str) -> Result<bool>;
    /// Which of `tables` exist; one round trip where the database allows (a query through a
    /// client tool costs tens of milliseconds).
    fn tables_exist(&self, tables: &[&str]) -> Result<Vec<bool>> {
        tables.iter().map(|t| self.table_exists(t)).collect()
    }
    /// Runs `sql` and returns every row's columns as text (`None` for NULL).
    fn query_text(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>>;
}

/// The migration state of `db`: from `table` when the environment names one, else from the first
/// known table present. `None` when there is none.
pub fn read_state(db: &dyn Queryable, table: Option<&str>) -> Result<Option<MigrationState>> {
    let candidates: Vec<&Layout> = match table {
        Some(t) => LAYOUTS.iter().filter(|l| l.table == t).collect(),
        None => LAYOUTS.iter().collect(),
    };
    if let (Some(t), true) = (table, candidates.is_empty()) {
        return read_unknown_layout(db, t);
    }
    let names: Vec<&str> = candidates.iter().map(|l| l.table).collect();
    let present = db.tables_exist(&names)?;
    for (layout, _) in candidates.iter().zip(&present).filter(|(_, p)| **p) {
        // A table of that name in another layout (Ruby Sequel also has a `schema_migrations`)
        // is not this tool's: the next candidate is tried, and none found means null.
        let Ok(rows) = db.query_text(layout.query) else {
            continue;
        };
        let names: Vec<String> = rows
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(layout.sep)
            })
            .collect();
        return Ok(Some(MigrationState {
            tool: layout.tool.to_string(),
            table: layout.table.to_string(),
            applied_count: names.len() as u64,
            last_migration: names.last().cloned(),
            migrations_list: names,
        }));
    }
    match table {
        // The configured table exists in a layout of its own: count its rows at least.
        Some(t) => read_unknown_layout(db, t),
        None => Ok(None),
    }
}

/// A table the config names but whose layout is unknown: its rows are counted, nothing more.
fn read_unknown_layout(db: &dyn Queryable, table: &str) -> Result<Option<MigrationState>> {
    let plain = table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !plain || !db.table_exists(table)? {
        return Ok(None);
    }
    let rows = db.query_text(&format!("SELECT COUNT(*) FROM {table}"))?;
    let count = rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Ok(Some(MigrationState {
        tool: "custom".to_string(),
        table: table.to_string(),
        applied_count: count,
        last_migration: None,
        migrations_list: Vec::new(),
    }))
}
