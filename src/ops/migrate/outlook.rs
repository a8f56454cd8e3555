//! What is pending: the database's migration state, the migration files not applied yet, and
//! the destructive statements they hold.

use super::{Destructive, Outlook, Pending};
use crate::config::{Environment, Safety};
use crate::error::{Error, Kind, Result};
use crate::pending::{self, MigrationFile};
use crate::provider::{Provider, ProviderKind};
use crate::session::Session;
use crate::sqlscan::{self, Dialect, Finding};

impl Destructive {
    fn of(f: Finding, safety: &Safety) -> Self {
        Destructive {
            what: f.what,
            kind: f.kind.key(),
            line: f.line,
            statement: f.excerpt,
            blocked: safety.blocked(f.kind),
            backup_required: safety.backup_required(f.kind),
        }
    }
}

/// The [`Outlook`] of a migration of `env`: its state, the pending migrations and their
/// destructive statements. Reads the database; changes nothing.
pub fn plan(session: &Session, env: &Environment, db: &dyn Provider) -> Result<Outlook> {
    let exists = db.exists()?;
    let (version, before) = if exists {
        let version = db.check_connection()?;
        let before = db
            .inspect(env.migrations_table.as_deref(), false)?
            .migrations;
        (Some(version), before)
    } else {
        (None, None)
    };
    let dir = pending::directory(
        session.config.migrations_directory.as_deref(),
        &session.config.root,
    );
    let files = match &dir {
        Some(d) => pending::files(d)?,
        None => Vec::new(),
    };
    let dialect = match db.kind() {
        ProviderKind::Postgres => Dialect::Postgres,
        ProviderKind::Mysql => Dialect::Mysql,
        ProviderKind::Sqlite => Dialect::Sqlite,
    };
    let todo = pending::pending(&files, before.as_ref());
    let todo = describe(session, &todo, dialect)?;
    // Pending migrations can be told only from SQL files of a tool whose table lists them:
    // Knex, Django or Alembic migrations (or goose's Go ones) are code.
    let code_tool = before
        .as_ref()
        .is_some_and(|m| matches!(m.tool.as_str(), "knex" | "django" | "alembic"));
    Ok(Outlook {
        exists,
        version,
        before,
        dir,
        todo,
        listable: !files.is_empty() && !code_tool,
    })
}

/// Reads each pending file and scans it for destructive statements.
fn describe(session: &Session, todo: &[MigrationFile], dialect: Dialect) -> Result<Vec<Pending>> {
    todo.iter()
        .map(|f| {
            let sql = std::fs::read_to_string(&f.path)
                .map_err(|e| Error::io(Kind::Config, "cannot read", &f.path, e))?;
            Ok(Pending {
                name: f.name.clone(),
                file: session.ctx.show(&f.path),
                destructive: sqlscan::destructive(sqlscan::up_section(&sql), dialect)
                    .into_iter()
                    .map(|f| Destructive::of(f, &session.config.safety))
                    .collect(),
            })
        })
        .collect()
}
