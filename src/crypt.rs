//! Client-side encryption with age (`[encryption]`): backups are encrypted to public keys
//! before anything is written, and decrypted with an identity only restore and verify need.
//! Encryption that is asked for but cannot be set up refuses the backup: never plaintext.

use std::path::Path;
use std::str::FromStr;

use crate::config::{Config, Environment};
use crate::error::{Error, Remedy, Result};
use crate::pipeline::Decrypt;
use crate::registry::BackupRecord;
use crate::vars::Vars;

/// The variable holding an identity (an `AGE-SECRET-KEY-1…` key, or the path of a file of
/// them); it takes precedence over `age_identity_file`.
pub const IDENTITY_VAR: &str = "FABER_AGE_IDENTITY";

pub type Recipients = Vec<Box<dyn age::Recipient + Send>>;
type Identities = Vec<Box<dyn age::Identity + Send + Sync>>;

/// The recipients `env`'s backups are encrypted to; `None` when it is not encrypted. Asked for
/// but not usable (no `[encryption]`, no recipients, one that does not parse): a config error.
pub fn recipients(config: &Config, env: &Environment) -> Result<Option<Recipients>> {
    if !env.encrypt {
        return Ok(None);
    }
    let refused = |what: String| {
        Error::config(format!(
            "environment `{}` is encrypted, but {what}; nothing was backed up",
            env.name
        ))
        .with_hint(
            "list public keys in [encryption] age_recipients = [\"age1…\"] (see \
             docs/configuration.md), or set encrypt = false for this environment",
        )
    };
    let Some(config) = &config.encryption else {
        return Err(refused("there is no [encryption] section".into()));
    };
    if config.recipients.is_empty() {
        return Err(refused("[encryption] age_recipients is empty".into()));
    }
    config
        .recipients
        .iter()
        .map(|r| {
            if r.contains("AGE-SECRET-KEY") {
                return Err(refused(
                    "age_recipients holds a secret key (AGE-SECRET-KEY-…); it belongs with \
                     whoever restores, and only its public key (age1…) in the config"
                        .into(),
                ));
            }
            age::x25519::Recipient::from_str(r.trim())
                .map(|r| Box::new(r) as Box<dyn age::Recipient + Send>)
                .map_err(|_| refused(format!("`{}` is not an age recipient (age1…)", shorten(r))))
        })
        .collect::<Result<Recipients>>()
        .map(Some)
}

/// What decrypts one backup: the identities of this run and the backup's plaintext SHA-256.
pub struct Decryption {
    identities: Identities,
    plaintext_sha256: Option<String>,
}

impl Decryption {
    /// `None` for a backup that is not encrypted; else the identities from FABER_AGE_IDENTITY
    /// (read from `vars`) or `age_identity_file`, which must be there.
    pub fn of(config: &Config, vars: &Vars, record: &BackupRecord) -> Result<Option<Decryption>> {
        if !record.encrypted {
            return Ok(None);
        }
        if record.plaintext_sha256.is_none() {
            return Err(Error::verification(format!(
                "{} is encrypted, but its entry has no plaintext SHA-256 to check it against",
                record.id
            ))
            .with_hint(Remedy::RepairEntry));
        }
        Ok(Some(Decryption {
            identities: identities(config, vars)?,
            plaintext_sha256: record.plaintext_sha256.clone(),
        }))
    }

    pub fn decrypt(&self) -> Decrypt<'_> {
        Decrypt {
            identities: &self.identities,
            plaintext_sha256: self.plaintext_sha256.as_deref(),
        }
    }
}

/// Whether this run has an age identity to decrypt backups with (it may still not be the one a
/// backup was encrypted to).
pub fn identity_given(config: &Config, vars: &Vars) -> bool {
    identities(config, vars).is_ok()
}

fn identities(config: &Config, vars: &Vars) -> Result<Identities> {
    let missing = || {
        Error::config("the backup is encrypted and no age identity is given").with_hint(format!(
            "set {IDENTITY_VAR} to the identity (AGE-SECRET-KEY-1…) or to its file, or \
             age_identity_file in [encryption]"
        ))
    };
    if let Some(value) = vars.get(IDENTITY_VAR) {
        let value = value.trim();
        // The identity itself (a key, or a whole identity file's text): parsed, never echoed.
        if value.contains("AGE-SECRET-KEY") || value.contains('\n') || value.starts_with('#') {
            let malformed = || {
                Error::config(format!("{IDENTITY_VAR} holds no usable age identity")).with_hint(
                    "give one AGE-SECRET-KEY-1… key, an identity file's text as age-keygen \
                     writes it, or the path of such a file",
                )
            };
            return age::IdentityFile::from_buffer(value.as_bytes())
                .map_err(|_| malformed())?
                .into_identities()
                .map_err(|_| malformed())
                .and_then(|ids| {
                    if ids.is_empty() {
                        Err(malformed())
                    } else {
                        Ok(ids)
                    }
                });
        }
        return from_file(&config.root.join(value));
    }
    match config
        .encryption
        .as_ref()
        .and_then(|e| e.identity_file.as_ref())
    {
        Some(file) => from_file(file),
        None => Err(missing()),
    }
}

fn from_file(path: &Path) -> Result<Identities> {
    let unreadable = |e: String| {
        Error::config(format!(
            "cannot read the age identity file {}",
            path.display()
        ))
        .caused_by(e)
        .with_hint("check age_identity_file or FABER_AGE_IDENTITY")
    };
    age::IdentityFile::from_file(path.to_string_lossy().into_owned())
        .map_err(|e| unreadable(e.to_string()))?
        .into_identities()
        .map_err(|e| unreadable(e.to_string()))
}

/// The start of a value that may be long, for an error message.
fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(24).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// `bytes` encrypted to `recipients`, hex-encoded: a small secret kept in a manifest (a backup's
/// role password hashes).
pub fn seal(recipients: &Recipients, bytes: &[u8]) -> Result<String> {
    use std::io::Write;
    let failed = |e: &dyn std::fmt::Display| Error::tool(format!("cannot encrypt: {e}"));
    let encryptor = age::Encryptor::with_recipients(recipients.iter().map(|r| r.as_ref() as _))
        .map_err(|e| failed(&e))?;
    let mut out = Vec::new();
    let mut writer = encryptor.wrap_output(&mut out).map_err(|e| failed(&e))?;
    writer.write_all(bytes).map_err(|e| failed(&e))?;
    writer.finish().map_err(|e| failed(&e))?;
    Ok(hex::encode(out))
}

/// What [`seal`] sealed, decrypted with this run's identities.
pub fn unseal(config: &Config, vars: &Vars, sealed: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    let identities = identities(config, vars)?;
    let undecryptable = |why: &dyn std::fmt::Display| {
        Error::verification(format!("cannot decrypt the backup's roles: {why}"))
    };
    let bytes = hex::decode(sealed).map_err(|e| undecryptable(&e))?;
    let mut reader = age::Decryptor::new(bytes.as_slice())
        .map_err(|e| undecryptable(&e))?
        .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(|e| undecryptable(&e))?;
    let mut out = Vec::new();
    reader
        .read_to_end(&mut out)
        .map_err(|e| undecryptable(&e))?;
    Ok(out)
}
