//! A PostgreSQL server's roles and tablespaces kept with a backup (`include_globals`): read
//! after the dump, their SHA-256 taken, and sealed to the backup's recipients when they carry
//! password hashes (`include_role_passwords`, which the config allows only with encryption).

use sha2::{Digest, Sha256};

use crate::config::Environment;
use crate::crypt::Recipients;
use crate::error::{Error, Result};
use crate::provider::Provider;
use crate::registry::Globals;
use crate::session::Session;

/// The globals of `db`'s server, as the manifest keeps them.
pub(super) fn read(
    session: &Session,
    env: &Environment,
    db: &dyn Provider,
    recipients: Option<&Recipients>,
) -> Result<Globals> {
    let script = db.dump_globals(env.include_role_passwords)?;
    let sha256 = hex::encode(Sha256::digest(script.as_bytes()));
    let roles = script
        .lines()
        .filter(|l| l.trim_start().starts_with("CREATE ROLE "))
        .count();
    session.events().detail(&format!(
        "Recorded the server's roles and tablespaces ({} roles{})",
        roles,
        if env.include_role_passwords {
            ", with their password hashes, encrypted"
        } else {
            ", without passwords"
        }
    ));
    if !env.include_role_passwords {
        return Ok(Globals {
            script,
            sha256,
            role_passwords: false,
            sealed: false,
        });
    }
    let recipients = recipients.ok_or_else(|| {
        Error::config("include_role_passwords = true, but this backup is not encrypted")
            .with_hint("set encrypt = true for the environment, with [encryption] recipients")
    })?;
    Ok(Globals {
        script: crate::crypt::seal(recipients, script.as_bytes())?,
        sha256,
        role_passwords: true,
        sealed: true,
    })
}
