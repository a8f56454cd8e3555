//! The config file as written: TOML or JSON, with the plugin's original `config.json` keys
//! accepted as aliases. Every unknown key is an error; keys of the original plugin that
//! faber-db does not use are accepted and ignored, and its `safety` rules are read by
//! [`super::safety`] (see docs/configuration.md).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use crate::bytesize::ByteSize;
use crate::format::Format;
use crate::pipeline::Compression;
use crate::retention::{Age, Retention};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(rename = "$schema")]
    #[allow(dead_code)]
    pub schema: Option<IgnoredAny>,
    /// The environment commands act on when ENV is left out (after FABER_ENV and ENV_MODE).
    pub default_environment: Option<String>,
    #[serde(default)]
    pub defaults: RawDefaults,
    #[serde(default)]
    pub environments: BTreeMap<String, RawEnvironment>,
    #[serde(default)]
    pub safety: RawSafety,
    #[serde(default)]
    pub backup: RawBackup,
    #[serde(default)]
    pub migrations: RawMigrations,
    #[serde(default)]
    pub storage: RawStorage,
    pub encryption: Option<RawEncryption>,
    pub notify: Option<RawNotify>,
    #[serde(default)]
    pub hook: RawHook,
    /// Original plugin keys with no meaning for faber-db.
    #[allow(dead_code)]
    pub schema_version: Option<IgnoredAny>,
    #[allow(dead_code)]
    pub database: Option<IgnoredAny>,
    #[allow(dead_code)]
    pub integration: Option<IgnoredAny>,
    #[allow(dead_code)]
    pub faber_integration: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    pub backup_dir: Option<String>,
    pub format: Option<Format>,
    pub compression: Option<Compression>,
    pub retention: Option<Retention>,
    pub row_count_max_table_size: Option<ByteSize>,
    pub max_backup_age: Option<Age>,
    pub max_drill_age: Option<Age>,
    pub include_globals: Option<bool>,
    pub include_role_passwords: Option<bool>,
    pub terminate_connections_on_rollback: Option<bool>,
    /// Tables whose rows backups leave out (patterns), keeping their schema.
    pub exclude_table_data: Option<Vec<String>>,
    pub sqlite_full_check: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnvironment {
    #[serde(alias = "connection_string_env")]
    pub url_env: Option<String>,
    pub url: Option<String>,
    /// The variable holding a server URL where `verify --deep` may create scratch databases.
    pub verify_url_env: Option<String>,
    pub retention: Option<Retention>,
    pub backup_retention_days: Option<u64>,
    #[serde(alias = "require_approval")]
    pub protected: Option<bool>,
    pub backup_before_migrate: Option<bool>,
    pub rollback_on_failure: Option<bool>,
    pub terminate_connections_on_rollback: Option<bool>,
    pub migrate_command: Option<String>,
    /// `migrate` rehearses the migration on a copy of the database first.
    pub rehearse: Option<bool>,
    pub migrations_table: Option<String>,
    pub format: Option<Format>,
    pub compression: Option<Compression>,
    pub row_count_max_table_size: Option<ByteSize>,
    pub max_backup_age: Option<Age>,
    pub max_drill_age: Option<Age>,
    pub include_globals: Option<bool>,
    pub include_role_passwords: Option<bool>,
    pub offsite: Option<bool>,
    pub encrypt: Option<bool>,
    /// Replaces `[defaults] exclude_table_data` for this environment.
    pub exclude_table_data: Option<Vec<String>>,
    pub sqlite_full_check: Option<bool>,
    /// Original plugin key with no meaning for faber-db.
    #[allow(dead_code)]
    pub auto_migrate: Option<IgnoredAny>,
}

/// `[safety]`, the original plugin's rules. The values beside `protected_environments` are
/// read as they are written and checked key by key in [`super::safety`], so that a malformed
/// one is refused with its key named.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSafety {
    #[serde(default)]
    pub protected_environments: Vec<String>,
    pub require_approval_for: Option<Value>,
    pub max_auto_rollback_attempts: Option<Value>,
    pub health_check_before_deploy: Option<Value>,
    pub validate_destructive_operations: Option<Value>,
    pub backup_enforcement: Option<Value>,
    pub destructive_operations: Option<Value>,
    pub approval_timeouts: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackup {
    pub retention_days: Option<u64>,
    /// Checked in [`super::safety`] (a string), with no meaning for faber-db.
    pub provider: Option<Value>,
    pub backup_before_destructive_ops: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMigrations {
    pub table: Option<String>,
    pub directory: Option<String>,
    #[allow(
        dead_code,
        reason = "read by `migrate`, coming with the release workflow"
    )]
    pub timeout_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    pub offsite: Option<RawOffsite>,
}

/// `[storage.offsite]`. Credentials are deliberately not fields: they come from the standard
/// AWS or Azure variables, profiles and identities only.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOffsite {
    pub url: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub path_style: Option<bool>,
    pub account: Option<String>,
}

/// `[notify]`: a webhook told of failures (and successes, when asked), and more of them in
/// `[[notify.targets]]`. `format` and `on` stay strings here, checked in
/// [`super::notify`] so that a wrong one is refused with its key named.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    pub webhook_url: Option<String>,
    pub webhook_url_env: Option<String>,
    #[serde(default)]
    pub on_success: bool,
    pub format: Option<String>,
    pub on: Option<Vec<String>>,
    #[serde(default)]
    pub targets: Vec<RawNotifyTarget>,
}

/// One `[[notify.targets]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotifyTarget {
    pub webhook_url: Option<String>,
    pub webhook_url_env: Option<String>,
    pub format: Option<String>,
    pub on: Option<Vec<String>>,
}

/// `[encryption]`: age recipients backups are encrypted to, and where the identity to decrypt
/// them is. Only public keys and a path: never a secret key.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEncryption {
    pub encrypt: Option<bool>,
    #[serde(default)]
    pub age_recipients: Vec<String>,
    pub age_identity_file: Option<String>,
}

/// `[hook]`: what the Claude Code pre-tool-use hook does.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHook {
    pub enabled: Option<bool>,
    pub protected: Option<super::HookProtected>,
    #[serde(default)]
    pub migrate_patterns: Vec<String>,
}
