//! What changed in an environment's database since a backup: per-table row counts, tables added
//! and removed, the schema's changes (tables, columns, indexes) when the manifest records the
//! backup's schema, migrations applied since and missing now — the backup's manifest compared
//! with the live database. Nothing is written.

use serde::Serialize;

use crate::config::Environment;
use crate::error::Result;
use crate::ids;
use crate::migrations::MigrationState;
use crate::ops::{restore, scratch_copy};
use crate::provider::{self, Tables};
use crate::registry::BackupRecord;
use crate::schema::{self, Change};
use crate::session::Session;

/// One table, as the backup's manifest and the live database count it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableDiff {
    pub table: String,
    pub backup_rows: Option<u64>,
    pub live_rows: Option<u64>,
    /// Live minus backup, when both are known.
    pub delta: Option<i64>,
    /// `added`, `removed`, `changed`, `same`, or `data_excluded`: the backup holds the table's
    /// schema but not its rows (`exclude_table_data`), so its rows are not compared.
    pub change: &'static str,
    /// Either count is the planner's estimate.
    pub estimated: bool,
}

/// A backup compared with the live database of an environment.
#[derive(Debug)]
pub struct Diff<'a> {
    /// The backup compared with.
    pub record: BackupRecord,
    /// The environment whose database was read.
    pub env: &'a Environment,
    /// Its URL, secrets blanked out.
    pub url: String,
    /// Every table of either side, by name.
    pub tables: Vec<TableDiff>,
    /// Migrations the live database has and the backup does not.
    pub applied_since: Vec<String>,
    /// Migrations the backup has and the live database does not.
    pub missing: Vec<String>,
    /// The live database's migration state.
    pub live_migrations: Option<MigrationState>,
    /// How the schema changed since the backup, as its manifest records it (or a scratch copy
    /// of it shows, with `deep`).
    pub schema: SchemaDiff,
    /// The backup's schema was read from a scratch copy of it, its manifest recording none.
    pub schema_from_copy: bool,
}

/// The schema's side of a diff.
#[derive(Debug)]
pub enum SchemaDiff {
    /// What changed from the backup's schema to the live one (empty: nothing).
    Compared(Vec<Change>),
    /// The backup's manifest records no schema (taken before faber-db recorded it, while the
    /// schema changed, or when it could not be read).
    NotRecorded,
    /// The live database's schema could not be read: why.
    Unreadable(String),
}

/// Compares backup `id` with the live database of `env` (by default the backup's own). With
/// `deep`, a backup whose manifest records no schema is loaded into a scratch copy (as a
/// rehearsal's is, on the same server) to read it.
pub fn diff<'a>(session: &'a Session, id: &str, env: Option<&str>, deep: bool) -> Result<Diff<'a>> {
    ids::validate_id(id)?;
    let reg = session.store.load()?;
    let record = crate::ops::verify::find(&reg, id)?.clone();
    let env = session.env(env.unwrap_or(&record.environment))?;
    let (url, db) = session.provider(env)?;
    restore::check_kind(env, db.as_ref(), &record)?;
    db.check_connection()?;
    let live = db.inspect(env.migrations_table.as_deref(), true)?;
    let (then, schema_from_copy) = match session.store.recorded_schema(&record) {
        Some(then) => (Some(then), false),
        None if deep => (Some(schema_of_copy(session, env, &record)?), true),
        None => (None, false),
    };
    let schema = match then {
        None => SchemaDiff::NotRecorded,
        Some(then) => match db.schema() {
            Ok(now) => SchemaDiff::Compared(schema::changes(&then, &now)),
            Err(e) => SchemaDiff::Unreadable(e.one_line()),
        },
    };
    // Tables as the manifest names them, also when an earlier faber-db wrote it.
    let live_tables = provider::as_named_in(record.provider, &record.tables, &live.tables);
    let tables = compare(&record.tables, &live_tables);
    let list =
        |m: Option<&MigrationState>| m.map(|m| m.migrations_list.clone()).unwrap_or_default();
    let backup_list = list(record.migrations.as_ref());
    let live_list = list(live.migrations.as_ref());
    let applied_since = live_list
        .iter()
        .filter(|m| !backup_list.contains(m))
        .cloned()
        .collect();
    let missing = backup_list
        .iter()
        .filter(|m| !live_list.contains(m))
        .cloned()
        .collect();
    Ok(Diff {
        record,
        env,
        url: url.redacted(),
        tables,
        applied_since,
        missing,
        live_migrations: live.migrations,
        schema,
        schema_from_copy,
    })
}

/// The schema of backup `record`, read from a scratch copy of it on `env`'s scratch server,
/// which is dropped after.
fn schema_of_copy(
    session: &Session,
    env: &Environment,
    record: &BackupRecord,
) -> Result<schema::Schema> {
    let (_, own) = session.provider(env)?;
    let server = scratch_copy::server(session, env, own, "a deep diff")?;
    scratch_copy::with_copy(session, env, &server, record, |copy| copy.db.schema())
}

/// Every table of `backup` or `live`, in name order, with how its row count changed.
pub fn compare(backup: &Tables, live: &Tables) -> Vec<TableDiff> {
    let mut names: Vec<&String> = backup.keys().chain(live.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let before = backup.get(name);
            let now = live.get(name);
            let excluded = before.is_some_and(|t| t.data_excluded);
            let delta = match (before, now) {
                (Some(b), Some(n)) if !excluded => {
                    Some(n.rows.cast_signed() - b.rows.cast_signed())
                }
                _ => None,
            };
            TableDiff {
                table: name.clone(),
                backup_rows: before.filter(|t| !t.data_excluded).map(|t| t.rows),
                live_rows: now.map(|t| t.rows),
                delta,
                change: match (before, now, delta) {
                    (Some(_), Some(_), _) if excluded => "data_excluded",
                    (None, Some(_), _) => "added",
                    (Some(_), None, _) => "removed",
                    (_, _, Some(0)) => "same",
                    _ => "changed",
                },
                estimated: before.is_some_and(|t| t.estimated) || now.is_some_and(|t| t.estimated),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::ops::testkit::{self, Project, at};

    fn sql(p: &Project, sql: &str) {
        rusqlite::Connection::open(p.root().join("db/dev.sqlite3"))
            .unwrap()
            .execute_batch(sql)
            .unwrap();
    }

    #[test]
    fn a_diff_reports_rows_written_and_tables_added_since_the_backup() {
        let p = Project::new();
        let record = {
            let ctx = p.ctx(at());
            testkit::backed_up(&ctx.session().unwrap(), "dev")
        };
        sql(
            &p,
            "INSERT INTO notes (body) VALUES ('d'), ('e');
             CREATE TABLE tags (id INTEGER PRIMARY KEY);",
        );
        let ctx = p.ctx(at() + Duration::hours(1));
        let session = ctx.session().unwrap();

        let d = diff(&session, &record.id, None, false).unwrap();
        assert_eq!(d.env.name, "dev");
        assert_eq!(d.record.id, record.id);
        assert!(d.url.starts_with("sqlite:"), "{}", d.url);
        let notes = TableDiff {
            table: "notes".into(),
            backup_rows: Some(3),
            live_rows: Some(5),
            delta: Some(2),
            change: "changed",
            estimated: false,
        };
        let tags = TableDiff {
            table: "tags".into(),
            backup_rows: None,
            live_rows: Some(0),
            delta: None,
            change: "added",
            estimated: false,
        };
        assert_eq!(d.tables, [notes, tags]);
        assert!(d.applied_since.is_empty() && d.missing.is_empty());
        let SchemaDiff::Compared(changes) = &d.schema else {
            panic!("the backup's manifest records its schema: {:?}", d.schema);
        };
        assert_eq!(
            changes,
            &[Change::TableAdded {
                table: "tags".into()
            }]
        );
        // Nothing was written: a diff only reads.
        assert_eq!(p.history().len(), 1, "{:?}", p.history());
    }

    #[test]
    fn a_diff_of_an_unchanged_database_says_the_same_and_of_a_dropped_table_removed() {
        let p = Project::new();
        let record = {
            let ctx = p.ctx(at());
            testkit::backed_up(&ctx.session().unwrap(), "dev")
        };
        let ctx = p.ctx(at() + Duration::hours(1));
        let session = ctx.session().unwrap();
        let d = diff(&session, &record.id, Some("dev"), false).unwrap();
        assert_eq!(d.tables.len(), 1);
        assert_eq!((d.tables[0].change, d.tables[0].delta), ("same", Some(0)));

        sql(&p, "DROP TABLE notes;");
        let d = diff(&session, &record.id, None, false).unwrap();
        assert_eq!(d.tables[0].change, "removed");
        assert_eq!(d.tables[0].live_rows, None);
    }
}
