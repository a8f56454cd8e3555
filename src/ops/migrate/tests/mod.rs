//! The migrate engine driven as library calls, on the engine's test kit (an SQLite database in a
//! temporary directory, a fixed clock, a recorder for the events), with real migration files, a
//! `schema_migrations` table and a real `migrate_command` (a shell command that runs `sqlite3`),
//! and no binary of ours. `planned.rs` has what is found pending and what the rules make of it;
//! `ran.rs` the runs that work, fail and are restored, and what they leave.

mod planned;
mod ran;

use std::fs;
use std::ops::Deref;
use std::sync::Mutex;

use super::*;
use crate::error::Result;
use crate::ops::testkit::{Project, at};
use crate::session::Session;

/// A drop of the three-row `notes` table, the migration pending.
const DROP_NOTES: &str = "DROP TABLE notes;\n";

/// A project whose `dev` database has applied `001_init` (in a `schema_migrations` table), with
/// `002_drop_notes` pending; `migrate_command` and `extra` (more keys of `[environments.dev]`,
/// then other tables) in its config, where `backup_before_migrate` is on.
struct Migrating {
    project: Project,
}

impl Deref for Migrating {
    type Target = Project;

    fn deref(&self) -> &Project {
        &self.project
    }
}

impl Migrating {
    fn new(migrate_command: &str, extra: &str) -> Migrating {
        let config = format!(
            r#"
[environments.dev]
url = "sqlite:db/dev.sqlite3"
backup_before_migrate = true
migrate_command = "{}"
{extra}
"#,
            migrate_command.replace('\\', "\\\\").replace('"', "\\\"")
        );
        let project = Project::with_config(&config);
        let dir = project.root().join("migrations");
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("001_init.sql"),
            "CREATE TABLE notes (id INTEGER);\n",
        )
        .unwrap();
        fs::write(dir.join("002_drop_notes.sql"), DROP_NOTES).unwrap();
        let p = Migrating { project };
        p.sql(
            "CREATE TABLE schema_migrations (version VARCHAR NOT NULL PRIMARY KEY);
             INSERT INTO schema_migrations VALUES ('001');",
        );
        p
    }

    fn sql(&self, sql: &str) {
        rusqlite::Connection::open(self.root().join("db/dev.sqlite3"))
            .unwrap()
            .execute_batch(sql)
            .unwrap();
    }

    /// The tables of the database, in order.
    fn tables(&self) -> Vec<String> {
        let conn = rusqlite::Connection::open(self.root().join("db/dev.sqlite3")).unwrap();
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(std::result::Result::unwrap)
            .collect()
    }

    fn warnings(&self) -> Vec<String> {
        self.seen()
            .iter()
            .filter_map(|s| s.strip_prefix("warn: ").map(str::to_string))
            .collect()
    }
}

/// What `faber-db migrate dev` asks for, with no options.
fn request() -> Request {
    Request::default()
}

/// Prepares `request` on `dev` and, unless the config refuses it, applies it; the lines of the
/// command's output with what it did.
fn migrate(session: &Session, request: &Request) -> Result<(Prepared, Ran, Vec<String>)> {
    let env = session.env("dev")?;
    let (_, db) = session.provider(env)?;
    let prepared = prepare(session, env, db.as_ref(), request, None)?;
    assert!(prepared.refused.is_none(), "{:?}", prepared.refused);
    let output = Mutex::new(Vec::new());
    let begun = begin(session, env, &prepared)?;
    let ran = apply(
        session,
        env,
        db.as_ref(),
        request,
        &prepared,
        begun,
        &|line| {
            output.lock().unwrap().push(line.to_string());
        },
    )?;
    Ok((prepared, ran, output.into_inner().unwrap()))
}
