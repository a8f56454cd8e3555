//! `restore ENV --table T [--schema S]`: some tables of a backup put back into the
//! environment's database, the rest of it left as it is. The backup is loaded into a scratch
//! copy (as a deep verify loads it, on the same server), the safety backup of the database is
//! taken, and the provider replaces the tables with the copy's ([`Provider::replace_tables`]):
//! in one transaction on PostgreSQL and SQLite; table by table on MySQL, where a failure midway
//! is undone from the safety backup. The tables' row counts are then compared with the manifest.

use std::cell::Cell;
use std::time::Instant;

use super::apply::Run;
use super::{Request, checksum, safety};
use crate::config::Environment;
use crate::error::{Error, Hint, Remedy, Result};
use crate::ops::{scratch_copy, verify};
use crate::provider::{Provider, ProviderKind, Tables, postgres};
use crate::registry::{BackupRecord, Status};
use crate::session::Session;

/// What a table restore did.
#[derive(Debug)]
pub struct Put {
    /// The tables put back, as the manifest names them.
    pub tables: Vec<String>,
    /// The safety backup taken of the database first.
    pub safety: Option<String>,
    /// Those tables as they are now, counted.
    pub counts: Tables,
    /// Row counts that differ from the backup's manifest.
    pub diffs: Vec<String>,
    /// The backup was marked `mismatch`: its counts were known to differ.
    pub mismatch_known: bool,
}

impl Put {
    /// The failure to report when the restored tables differ from the manifest.
    pub fn failure(&self, env: &Environment) -> Option<Error> {
        super::differs(
            "the restored tables differ",
            &self.diffs,
            self.mismatch_known,
            || match &self.safety {
                Some(s) => Hint::from(Remedy::UndoTableRestore {
                    env: env.name.clone(),
                    safety: s.clone(),
                    tables: self.tables.clone(),
                }),
                None => Hint::from("the tables were replaced; check them before relying on them"),
            },
        )
    }
}

/// The tables of `record` that `tables` and `schemas` (PostgreSQL) name, as its manifest names
/// them. A name the backup does not hold is an error that lists what it holds.
pub fn select(record: &BackupRecord, tables: &[String], schemas: &[String]) -> Result<Vec<String>> {
    let pg = record.provider == ProviderKind::Postgres;
    if !schemas.is_empty() && !pg {
        return Err(Error::config("--schema applies to PostgreSQL backups")
            .with_hint("name the tables with --table"));
    }
    let mut chosen: Vec<String> = Vec::new();
    let add = |chosen: &mut Vec<String>, key: String| {
        if !chosen.contains(&key) {
            chosen.push(key);
        }
    };
    for name in tables {
        let key = if record.tables.contains_key(name) || !pg {
            Some(name.clone())
        } else {
            // `public.t` is the manifest's `t`; a quoted part is read as the manifest writes it.
            postgres::schema_and_table(name).map(|(s, t)| postgres::table_key(&s, &t))
        };
        match key.filter(|k| record.tables.contains_key(k)) {
            Some(key) => add(&mut chosen, key),
            None => return Err(not_held(record, &format!("table {name}"))),
        }
    }
    for schema in schemas {
        let before = chosen.len();
        for key in record.tables.keys() {
            if postgres::schema_and_table(key).is_some_and(|(s, _)| &s == schema) {
                add(&mut chosen, key.clone());
            }
        }
        if chosen.len() == before {
            return Err(not_held(record, &format!("tables in schema {schema}")));
        }
    }
    if chosen.is_empty() {
        return Err(Error::config("no table to restore was named"));
    }
    Ok(chosen)
}

fn not_held(record: &BackupRecord, what: &str) -> Error {
    let mut names: Vec<&str> = record.tables.keys().map(String::as_str).take(12).collect();
    if record.tables.len() > names.len() {
        names.push("…");
    }
    Error::config(format!("backup {} holds no {what}", record.id)).with_hint(if names.is_empty() {
        "its manifest records no tables".to_string()
    } else {
        format!("its tables: {}", names.join(", "))
    })
}

/// Puts tables `keys` of `record` back into `env`'s database `db`. Confirmation is the
/// caller's.
pub fn put_back(
    session: &Session,
    env: &Environment,
    db: &dyn Provider,
    record: &BackupRecord,
    keys: &[String],
    request: &Request,
) -> Result<Put> {
    let _signals = crate::interrupt::guard();
    let run = Run {
        session,
        env,
        db,
        record,
        request,
        started: Instant::now(),
        committing: Cell::new(false),
    };
    let detail = format!("tables {}", keys.join(", "));
    let put = (|| {
        db.check_replaceable(keys)?;
        let _held = checksum::fetched_and_checked(session, record)?;
        let (_, own) = session.provider(env)?;
        let server = scratch_copy::server(session, env, own, "a table restore")?;
        scratch_copy::with_copy(session, env, &server, record, |copy| {
            let safety = safety::before(&run)?;
            crate::interrupt::check().map_err(|e| Error::aborted("interrupted").caused_by(e))?;
            // PostgreSQL and SQLite change nothing until they commit; MySQL changes the
            // database from its first drop on, and a signal must not stop it midway. Only
            // there can a killed run leave something to finish, said by its started event.
            let atomic = db.kind() != ProviderKind::Mysql;
            if !atomic {
                run.log_started(Some(match &safety {
                    Some(s) => format!("{detail}; safety backup {s}"),
                    None => detail.clone(),
                }));
            }
            run.committing.set(!atomic);
            let held = (!atomic).then(crate::interrupt::hold);
            let replaced = db.replace_tables(copy.db, keys);
            drop(held);
            if let Err(failed) = replaced {
                let error = if failed.incomplete {
                    run.committing.set(true);
                    match &safety {
                        Some(s) => failed.error.with_hint(Remedy::UndoTableRestore {
                            env: env.name.clone(),
                            safety: s.clone(),
                            tables: keys.to_vec(),
                        }),
                        None => failed.error,
                    }
                } else {
                    failed.error
                };
                return Err(error);
            }
            run.committing.set(true);
            Ok(safety)
        })
    })();
    let safety = put.map_err(|e| {
        run.log(false, Some(format!("{detail}: {}", e.one_line())), None);
        if crate::interrupt::happened() && !run.committing.get() {
            Error::aborted(
                "interrupted: the table restore was stopped before it changed the database",
            )
            .caused_by(e.one_line())
            .with_hint("run it again when ready")
        } else {
            e
        }
    })?;
    // What the restore could not check itself: rows elsewhere pointing at rows gone.
    for line in db.dangling_references(keys).unwrap_or_default() {
        session.events().warn(&format!(
            "rows of another table point at rows the restored tables lack now — {line}"
        ));
    }
    let now = db.inspect(None, true)?.tables;
    let pick = |all: &Tables| -> Tables {
        let named = crate::provider::as_named_in(record.provider, &record.tables, all);
        named
            .into_iter()
            .filter(|(k, _)| keys.contains(k))
            .collect()
    };
    let expected: Tables = record
        .tables
        .iter()
        .filter(|(k, _)| keys.contains(k))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    let counts = pick(&now);
    let diffs = verify::compare_tables(record.provider, &expected, &counts);
    run.log(true, Some(detail), None);
    Ok(Put {
        tables: keys.to_vec(),
        safety,
        counts,
        diffs,
        mismatch_known: record.status == Status::Mismatch,
    })
}
