//! The structure check of a backup's data, and the comparison of row counts with the manifest.

use std::path::Path;

use crate::error::{Error, Result};
use crate::provider::{self, ProviderKind, Source, StructureCheck, Tables};
use crate::registry::BackupRecord;
use crate::session::Session;

/// The structure check of one backup. A deep check of a server database's backup loads it into a
/// scratch database on the server of the backup's environment.
pub(super) fn structure(
    session: &Session,
    record: &BackupRecord,
    source: Source<'_>,
    work_dir: &Path,
    deep: bool,
) -> Result<StructureCheck> {
    if !deep || record.provider == ProviderKind::Sqlite {
        return provider::check_structure(record.provider, record.format, source, work_dir, deep);
    }
    let env = session.env(&record.environment)?;
    let (_, own) = session.provider(env)?;
    if own.kind() != record.provider {
        return Err(Error::config(format!(
            "environment `{}` is no longer a {} database; the deep check needs one",
            env.name,
            record.provider.as_str()
        )));
    }
    // The scratch database goes to the server `verify_url_env` names, else to the environment's
    // own — when its role may create databases there.
    let server = crate::ops::scratch_copy::server(session, env, own, "a deep check")?;
    let (integrity_check, tables) = server.db.deep_check(record.format, source, 1)?;
    Ok(StructureCheck {
        integrity_check,
        tables: Some(tables),
    })
}

/// Differences between the row counts a manifest recorded and those found in a `kind` database:
/// `users 3 → 2`. A count that either side only estimated is not compared, nor that of a table
/// whose data the backup left out (`exclude_table_data`); the table must be there all the same. Names are shown as JSON strings when they need it (a newline, a quote).
pub fn compare_tables(kind: ProviderKind, expected: &Tables, found: &Tables) -> Vec<String> {
    let found = &provider::as_named_in(kind, expected, found);
    let name = |n: &str| {
        if n.chars().any(|c| c.is_control() || c == '"' || c == ' ') {
            serde_json::to_string(n).unwrap_or_else(|_| n.to_string())
        } else {
            n.to_string()
        }
    };
    let mut diffs = Vec::new();
    for (n, e) in expected {
        match found.get(n) {
            None => diffs.push(format!("{} missing", name(n))),
            Some(f) if !e.is_comparable() || !f.is_comparable() => {}
            Some(f) if f.rows != e.rows => {
                diffs.push(format!("{} {} → {}", name(n), e.rows, f.rows));
            }
            Some(_) => {}
        }
    }
    for n in found.keys().filter(|n| !expected.contains_key(*n)) {
        diffs.push(format!("{} unexpected", name(n)));
    }
    diffs
}
