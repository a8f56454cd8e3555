//! The pre-flight of a restore: what the preview says it will need — the restore method, the
//! tools, room for the safety backup and the staging copy, no other session in the way —
//! checked before anything is asked or changed.

use super::Preview;
use crate::error::{Error, Result};
use crate::preflight::{Needs, Preflight, Sessions, Writes};
use crate::provider::{Provider, ProviderKind};
use crate::registry::BackupRecord;

/// The check that stopped a restore before it began, and why; the command adds the hint that
/// names what to run instead.
#[derive(Debug)]
pub struct Refused {
    /// The failed check's name: `connection`, `sessions`, `space`, …
    pub check: &'static str,
    pub error: Error,
}

/// The pre-flight of restoring `record` into the database `db` as `preview` says, ending other
/// sessions at the swap when `terminate`; and what stopped it, if anything.
pub fn preflight(
    db: &dyn Provider,
    record: &BackupRecord,
    preview: &Preview,
    terminate: bool,
) -> Result<(Preflight, Option<Refused>)> {
    let safety = preview.safety_backup.as_ref();
    let needs = Needs {
        migrate_command: None,
        // A file database has no privileges to speak of.
        method: (db.kind() != ProviderKind::Sqlite).then(|| {
            match (&preview.method_failure, preview.method) {
                (Some(e), _) => Err(e.clone()),
                (None, Some(m)) => Ok(format!("{}: {}", m.as_str(), preview.method_why)),
                (None, None) => Ok(preview.method_why.clone()),
            }
        }),
        backs_up: safety.is_some(),
        restore_tools: true,
        writes: safety
            .map(|s| Writes {
                what: format!("the {} safety backup", s.reason),
                dir: s.dir.clone(),
                bytes: s.space_needed_bytes,
            })
            .into_iter()
            .collect(),
        staging: Some(record.raw_size_bytes),
        sessions: if terminate {
            Sessions::End {
                because: "--terminate-connections".into(),
            }
        } else {
            Sessions::Refuse
        },
    };
    let mut preflight = crate::preflight::run(db, needs)?;
    let refused = preflight.take_failure().map(|(check, e)| Refused {
        check,
        error: match check {
            // The database to save does not open: as the safety backup would have failed.
            "connection" => {
                let mut err = Error::new(
                    e.kind(),
                    format!(
                        "the safety backup failed its pre-flight, so nothing was restored: {}",
                        e.message()
                    ),
                );
                for c in e.causes() {
                    err = err.caused_by(c);
                }
                err
            }
            _ => e,
        },
    });
    Ok((preflight, refused))
}
