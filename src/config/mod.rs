//! Configuration: found under the project root, parsed from TOML or JSON, and resolved into typed
//! environments with every default applied (DESIGN.md §3).
//!
//! The file is found and read in `load`, and resolved into typed values in `resolve`; the
//! original plugin's `safety` rules in `safety`. What is here: the resolved types, and looking
//! an environment up by name.

mod load;
mod notify;
mod offsite;
pub(crate) use offsite::valid_account;
mod raw;
mod resolve;
mod safety;

pub use load::{LoadError, find_root, from_text, load, load_or_defaults, locate};
pub use notify::{Notify, NotifyFormat, NotifyOn, NotifyTarget};
pub use resolve::default_url_var;
pub use safety::{Enforcement, Rule, Safety};

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::format::Format;
use crate::ids;
use crate::pipeline::Compression;
use crate::retention::Retention;

/// Where a project keeps faber-db's config and backups, relative to its root.
pub const PLUGIN_DIR: &str = ".fractary/plugins/faber-db";
pub const DEFAULT_BACKUP_DIR: &str = ".fractary/plugins/faber-db/backups";

/// A resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub root: PathBuf,
    pub backup_dir: PathBuf,
    pub environments: BTreeMap<String, Environment>,
    /// `default_environment`: the environment commands act on when ENV is left out, unless
    /// FABER_ENV or ENV_MODE names one.
    pub default_environment: Option<String>,
    pub migrations_directory: Option<PathBuf>,
    /// `[storage.offsite]`: where off-site copies go, when configured.
    pub offsite: Option<Offsite>,
    /// `[notify]`: the webhooks told when a backup, restore, rollback or migrate fails (or
    /// succeeds), or when `status` finds a backup too old.
    pub notify: Option<Notify>,
    /// `[encryption]`: the age recipients and identity file, when configured.
    pub encryption: Option<Encryption>,
    /// `[hook]`: what the Claude Code pre-tool-use hook does.
    pub hook: Hook,
    /// The original plugin's `safety` rules: destructive statements forbidden or backed up
    /// first.
    pub safety: Safety,
}

/// What the Claude Code pre-tool-use hook does (`[hook]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub enabled: bool,
    /// What it answers to a migration of a protected environment.
    pub protected: HookProtected,
    /// More commands it treats as migrations, beside the tools it knows and each
    /// environment's `migrate_command`.
    pub migrate_patterns: Vec<String>,
}

/// `[hook] protected`: ask the human in Claude Code's prompt, or refuse and point at
/// `/faber-db:migrate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HookProtected {
    #[default]
    Ask,
    Deny,
}

/// Client-side encryption with age (`[encryption]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encryption {
    /// Public keys (`age1…`): each can decrypt the backups.
    pub recipients: Vec<String>,
    /// The identity file restore and verify decrypt with (FABER_AGE_IDENTITY overrides it).
    pub identity_file: Option<PathBuf>,
}

/// Where off-site copies go (`[storage.offsite]`): an S3-compatible bucket, an Azure Blob
/// container, or a mounted directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offsite {
    pub backend: Backend,
    /// The bucket (S3) or container (Azure); empty for a directory.
    pub bucket: String,
    /// The key prefix, without leading or trailing `/`; may be empty.
    pub prefix: String,
    /// The service's URL, when not the provider's own (MinIO, Azurite, a sovereign cloud).
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`), as MinIO and most self-hosted stores want.
    pub path_style: bool,
    /// The Azure storage account (else `AZURE_STORAGE_ACCOUNT_NAME`). Not a secret.
    pub account: Option<String>,
}

/// The kind of off-site storage, from the URL's scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// `s3://bucket/prefix`: AWS S3 or any S3-compatible store (MinIO, R2, GCS's XML API).
    S3,
    /// `az://container/prefix`: Azure Blob Storage.
    Azure,
    /// `file:///mnt/nas/faber`: a directory, usually a mounted NAS or NFS share.
    Directory(std::path::PathBuf),
}

impl Offsite {
    /// `s3://bucket/prefix`, `az://container/prefix` or `file:///path`, as configured.
    pub fn url(&self) -> String {
        let scheme = match &self.backend {
            Backend::Directory(dir) => return format!("file://{}", dir.display()),
            Backend::S3 => "s3",
            Backend::Azure => "az",
        };
        if self.prefix.is_empty() {
            format!("{scheme}://{}", self.bucket)
        } else {
            format!("{scheme}://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// One environment with every default applied.
#[derive(Debug, Clone)]
pub struct Environment {
    pub name: String,
    pub url: UrlSource,
    /// `verify_url_env`: the variable holding the URL of a server where `verify --deep` may
    /// create scratch databases, for a role that may not create them on its own server.
    pub verify_url_env: Option<String>,
    pub retention: Retention,
    pub protected: bool,
    pub backup_before_migrate: bool,
    pub rollback_on_failure: bool,
    /// `migrate`'s own restore after a failed migration ends the other sessions connected to
    /// the database (as `--terminate-connections` does); when false, `migrate` refuses to start
    /// while any are connected (exit 7), before the migration runs.
    pub terminate_connections_on_rollback: bool,
    pub migrate_command: Option<String>,
    /// `migrate` first runs `migrate_command` against a scratch copy of the database, made from
    /// the pre-migration backup, and runs it for real only if that passes. On by default for
    /// protected environments.
    pub rehearse: bool,
    pub migrations_table: Option<String>,
    pub format: Format,
    pub compression: Compression,
    /// Tables larger than this (PostgreSQL) get the planner's row estimate instead of `count(*)`.
    pub row_count_max_table_size: u64,
    /// `status` warns when the newest valid backup is older than this.
    pub max_backup_age: Option<std::time::Duration>,
    /// `status` warns when the last successful restore drill (`verify --drill`) is older than
    /// this, or there was none.
    pub max_drill_age: Option<std::time::Duration>,
    /// PostgreSQL: each backup also records the server's roles and tablespaces
    /// (`pg_dumpall --globals-only`), for `restore --into … --with-globals` on a new server.
    pub include_globals: bool,
    /// `sqlite_full_check`: a backup of this SQLite database runs the full `PRAGMA
    /// integrity_check` on its snapshot, not `quick_check` (as `backup --full-check` does).
    pub sqlite_full_check: bool,
    /// With them, the roles' password hashes (only in encrypted backups).
    pub include_role_passwords: bool,
    /// Backups of this environment are copied to `[storage.offsite]`.
    pub offsite: bool,
    /// Backups of this environment are encrypted to `[encryption]`'s recipients.
    pub encrypt: bool,
    /// `safety.backup_enforcement.<env>`: `required` keeps `backup_before_migrate` on.
    pub backup_enforcement: Enforcement,
    /// `exclude_table_data`: patterns of the tables whose rows this environment's backups leave
    /// out, keeping their schema (see [`crate::provider::exclude`]); the environment's list
    /// replaces `[defaults]`'s.
    pub exclude_table_data: Vec<String>,
}

/// Tables larger than this get estimated row counts unless the config says otherwise: the
/// providers' own default.
pub use crate::provider::DEFAULT_ROW_COUNT_MAX_TABLE_SIZE;

/// Where an environment's connection URL comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlSource {
    /// Read from this variable at run time (the URL itself is never stored).
    Var(String),
    /// Given in the config; only allowed without a password.
    Inline(String),
}

impl Config {
    /// The named environment, or an error that lists the known ones (and the one meant, when
    /// the name is a near miss: `prod` for `production`, `stagin` for `staging`).
    pub fn environment(&self, name: &str) -> Result<&Environment> {
        self.environments.get(name).ok_or_else(|| {
            let known = self
                .environments
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            let hint = match closest(name, self.environments.keys()) {
                Some(meant) => format!(
                    "did you mean `{meant}`? environments in {}: {known}",
                    self.file.display()
                ),
                None => format!("environments in {}: {known}", self.file.display()),
            };
            Error::config(format!("unknown environment `{}`", ids::shorten(name))).with_hint(hint)
        })
    }
}

/// The name among `names` that `typed` most likely means: one it starts or ends, or one at
/// most two edits away (case aside); none when two fit equally.
fn closest<'a>(typed: &str, names: impl Iterator<Item = &'a String>) -> Option<&'a str> {
    let typed = typed.to_ascii_lowercase();
    if typed.is_empty() || typed.len() > 64 {
        return None;
    }
    let mut best: Option<(usize, &str)> = None;
    let mut tie = false;
    for name in names {
        let lower = name.to_ascii_lowercase();
        let score = if lower.starts_with(&typed) || typed.starts_with(&lower) {
            0
        } else {
            edit_distance(&typed, &lower)
        };
        if score > 2 {
            continue;
        }
        match best {
            Some((b, _)) if score > b => {}
            Some((b, _)) if score == b => tie = true,
            _ => {
                best = Some((score, name));
                tie = false;
            }
        }
    }
    best.filter(|_| !tie).map(|(_, n)| n)
}

/// Levenshtein distance of two short strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses_name_the_environment_meant() {
        let names: Vec<String> = ["dev", "staging", "production"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for (typed, meant) in [
            ("prod", Some("production")),
            ("stagin", Some("staging")),
            ("Staging", Some("staging")),
            ("develop", Some("dev")),
            ("qa", None),
            ("", None),
        ] {
            assert_eq!(closest(typed, names.iter()), meant, "{typed}");
        }
    }
}
