//! Which backup is restored: the one named, or the newest restorable one; and whether it can
//! go into the environment's database at all.

use crate::config::Environment;
use crate::error::{Error, Remedy, Result};
use crate::ids;
use crate::ops::verify;
use crate::provider::Provider;
use crate::registry::{BackupRecord, Status};
use crate::session::Session;

/// The backup named by `from`: an ID, or `latest` for the newest valid backup of `env`; and why
/// it was chosen, as the preview says it. A `mismatch` backup named is chosen with a warning.
pub fn choose(session: &Session, env: &Environment, from: &str) -> Result<(BackupRecord, String)> {
    let reg = session.store.load()?;
    let (record, chosen) = if from == "latest" {
        let record = reg.newest_restorable(&env.name).cloned().ok_or_else(|| {
            Error::config(format!(
                "environment `{}` has no valid backup to restore",
                env.name
            ))
            .with_hint(Remedy::TakeBackup {
                env: env.name.clone(),
            })
        })?;
        let why = format!(
            "--from latest: the newest restorable backup of `{}` not taken by a restore or rollback",
            env.name
        );
        (record, why)
    } else {
        ids::validate_id(from)?;
        (
            verify::find(&reg, from)?.clone(),
            "named with --from".to_string(),
        )
    };
    // A backup found corrupt here that has an off-site copy is restored from that copy (see
    // apply), when named: `latest` never picks it.
    let from_off_site = record.status == Status::Corrupt
        && record.offsite.as_ref().is_some_and(|r| r.is_uploaded());
    match record.status {
        _ if record.is_restorable() || from_off_site => Ok((record, chosen)),
        // Never picked by `latest`: named, it is restored with a warning.
        Status::Mismatch => {
            warn_mismatch(session, &record);
            Ok((record, chosen))
        }
        s => Err(Error::verification(format!(
            "backup {} is marked {}; it will not be restored",
            record.id,
            s.as_str()
        ))
        .with_hint(Remedy::CheckOrPickAnother)),
    }
}

/// Says that `record`, a `mismatch` backup being restored because it was named, may not hold what
/// its manifest says.
pub fn warn_mismatch(session: &Session, record: &BackupRecord) {
    session.events().warn(&format!(
        "backup {} is marked mismatch: a deep check found that its row counts differ from its manifest \
         (the checksum holds); restoring it because it was named — check the data afterwards",
        record.id
    ));
}

/// Fails unless `record` was taken from the same kind of database as `env`'s.
pub fn check_kind(env: &Environment, db: &dyn Provider, record: &BackupRecord) -> Result<()> {
    if db.kind() == record.provider {
        return Ok(());
    }
    Err(Error::config(format!(
        "backup {} is a {} backup; environment `{}` is a {} database",
        record.id,
        record.provider.as_str(),
        env.name,
        db.kind().as_str()
    ))
    .with_hint(Remedy::RestoreKind {
        kind: db.kind().as_str().to_string(),
    }))
}
