//! Configuration: found under the project root, parsed from TOML or JSON, and resolved into typed
//! environments with every default applied (DESIGN.md §3).

mod raw;
mod safety;

pub use safety::{Enforcement, Rule, Safety};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::format::Format;
use crate::ids;
use crate::pipeline::Compression;
use crate::retention::Retention;
use raw::{RawConfig, RawEnvironment};

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
    /// `[notify]`: the webhook told when a backup, restore, rollback or migrate fails.
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

/// Where notifications go: a URL given inline, or the variable holding it (by default
/// `FABER_WEBHOOK_URL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    pub url: Option<String>,
    pub url_var: Option<String>,
    pub on_success: bool,
}

/// S3-compatible object storage for off-site copies (`[storage.offsite]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offsite {
    pub bucket: String,
    /// The key prefix, without leading or trailing `/`; may be empty.
    pub prefix: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`), as MinIO and most self-hosted stores want.
    pub path_style: bool,
}

impl Offsite {
    fn parse(raw: raw::RawOffsite) -> std::result::Result<Offsite, String> {
        let rest = raw.url.strip_prefix("s3://").ok_or_else(|| {
            format!(
                "storage.offsite.url `{}` is not an s3:// URL (s3://bucket/prefix)",
                raw.url
            )
        })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid_bucket {
            return Err(format!(
                "storage.offsite.url: `{bucket}` is not a bucket name (3-63 of a-z 0-9 . -)"
            ));
        }
        let prefix = prefix.trim_matches('/').to_string();
        if prefix
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
            && !prefix.is_empty()
        {
            return Err(format!(
                "storage.offsite.url: the prefix `{prefix}` has an empty or dot segment"
            ));
        }
        if let Some(e) = &raw.endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(format!(
                "storage.offsite.endpoint `{e}` must start with http:// or https://"
            ));
        }
        Ok(Offsite {
            bucket: bucket.to_string(),
            prefix,
            path_style: raw.path_style.unwrap_or(raw.endpoint.is_some()),
            endpoint: raw.endpoint,
            region: raw.region,
        })
    }

    /// `s3://bucket/prefix`, as configured.
    pub fn url(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
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
    pub migrations_table: Option<String>,
    pub format: Format,
    pub compression: Compression,
    /// Tables larger than this (PostgreSQL) get the planner's row estimate instead of `count(*)`.
    pub row_count_max_table_size: u64,
    /// `status` warns when the newest valid backup is older than this.
    pub max_backup_age: Option<std::time::Duration>,
    /// Backups of this environment are copied to `[storage.offsite]`.
    pub offsite: bool,
    /// Backups of this environment are encrypted to `[encryption]`'s recipients.
    pub encrypt: bool,
    /// `safety.backup_enforcement.<env>`: `required` keeps `backup_before_migrate` on.
    pub backup_enforcement: Enforcement,
}

/// Tables larger than this get estimated row counts unless the config says otherwise: the
/// providers' own default.
pub use crate::provider::DEFAULT_ROW_COUNT_MAX_TABLE_SIZE;

/// What environments inherit from `[defaults]`.
#[derive(Debug, Clone, Copy)]
struct EnvDefaults {
    retention: Option<Retention>,
    format: Format,
    compression: Compression,
    row_count_max_table_size: u64,
    max_backup_age: Option<std::time::Duration>,
    /// `[encryption] encrypt`.
    encrypt: bool,
    terminate_connections_on_rollback: bool,
}

/// Where an environment's connection URL comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlSource {
    /// Read from this variable at run time (the URL itself is never stored).
    Var(String),
    /// Given in the config; only allowed without a password.
    Inline(String),
}

/// The nearest ancestor of `start` holding `.fractary/`, else `start` itself.
pub fn find_root(start: &Path) -> PathBuf {
    start
        .ancestors()
        .find(|dir| dir.join(".fractary").is_dir())
        .unwrap_or(start)
        .to_path_buf()
}

/// The config file to read: `--config` if given, else `config.toml`, else `config.json`.
pub fn locate(root: &Path, explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            root.join(path)
        };
        if !path.is_file() {
            return Err(Error::config(format!(
                "config file {} not found",
                path.display()
            ))
            .with_hint("check the --config path (relative paths start at the project root), or run `faber-db init`"));
        }
        return Ok(path);
    }
    let dir = root.join(PLUGIN_DIR);
    for name in ["config.toml", "config.json"] {
        let path = dir.join(name);
        if path.is_file() {
            return Ok(path);
        }
    }
    Err(
        Error::config(format!("no faber-db config found in {}", dir.display()))
            .with_hint("run `faber-db init` to create one, or pass --root / --config"),
    )
}

/// [`load`], or with no config file under `root` (and none named), the defaults with no
/// environment: for the commands that need none, such as `verify PATH` on another machine.
pub fn load_or_defaults(root: &Path, explicit: Option<&Path>) -> Result<Config> {
    let dir = root.join(PLUGIN_DIR);
    let found = ["config.toml", "config.json"]
        .iter()
        .any(|name| dir.join(name).is_file());
    if explicit.is_none() && !found {
        return resolve(RawConfig::default(), root, dir.join("config.toml"));
    }
    load(root, explicit)
}

/// Reads and resolves the config under `root`.
pub fn load(root: &Path, explicit: Option<&Path>) -> Result<Config> {
    let file = locate(root, explicit)?;
    let text = std::fs::read_to_string(&file)
        .map_err(|e| Error::config(format!("cannot read {}", file.display())).caused_by(e))?;
    let raw = parse(&file, &text)?;
    resolve(raw, root, file)
}

fn parse(file: &Path, text: &str) -> Result<RawConfig> {
    let is_json = file.extension().is_some_and(|e| e == "json");
    let hint = "see config/config.example.toml for every key and its meaning";
    if is_json {
        serde_json::from_str(text).map_err(|e| {
            Error::config(format!(
                "{}:{}:{}: {}",
                file.display(),
                e.line(),
                e.column(),
                strip_position(&e.to_string())
            ))
            .with_hint(hint)
        })
    } else {
        toml::from_str(text).map_err(|e| {
            let (line, col) = e.span().map_or((1, 1), |span| line_col(text, span.start));
            Error::config(format!(
                "{}:{line}:{col}: {}",
                file.display(),
                e.message().trim()
            ))
            .with_hint(hint)
        })
    }
}

/// serde_json appends " at line L column C" to its messages; the position is printed up front.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(before.chars().count(), |nl| {
        before[nl + 1..].chars().count()
    }) + 1;
    (line, col)
}

fn resolve(raw: RawConfig, root: &Path, file: PathBuf) -> Result<Config> {
    let bad = |msg: String| Error::config(format!("{}: {msg}", file.display()));
    let backup_dir = root.join(
        raw.defaults
            .backup_dir
            .as_deref()
            .unwrap_or(DEFAULT_BACKUP_DIR),
    );
    let default_format = raw.defaults.format.unwrap_or(Format::Sql);
    let default_compression = raw.defaults.compression.unwrap_or(Compression::Zstd);
    let default_retention = match (raw.defaults.retention, raw.backup.retention_days) {
        (Some(_), Some(_)) => {
            return Err(
                bad("both defaults.retention and backup.retention_days are set".into())
                    .with_hint("keep one of them"),
            );
        }
        (r, days) => r.or(days.map(retention_from_days).transpose().map_err(bad)?),
    };
    for name in &raw.safety.protected_environments {
        if !raw.environments.contains_key(name) {
            return Err(bad(format!(
                "safety.protected_environments names `{name}`, which is not an environment"
            )));
        }
    }
    let safety_hint = "see \"The plugin's original config.json\" in docs/configuration.md";
    let (safety, enforcement) =
        safety::parse(&raw.safety, &raw.backup).map_err(|e| bad(e).with_hint(safety_hint))?;
    for name in enforcement.keys() {
        if !raw.environments.contains_key(name) {
            return Err(bad(format!(
                "safety.backup_enforcement names `{}`, which is not an environment",
                ids::shorten(name)
            ))
            .with_hint(safety_hint));
        }
    }
    // Only the defaults used without a config file (see `load_or_defaults`) have none.
    if raw.environments.is_empty() && file.exists() {
        return Err(bad("no environments are defined".into()).with_hint(
            "add an [environments.dev] table, or run `faber-db init --force` to start over",
        ));
    }
    let offsite = raw
        .storage
        .offsite
        .map(Offsite::parse)
        .transpose()
        .map_err(|e| bad(e).with_hint("see the off-site section of docs/configuration.md"))?;
    let notify = match raw.notify {
        None => None,
        Some(n) if n.webhook_url.is_some() && n.webhook_url_env.is_some() => {
            return Err(bad(
                "notify: both webhook_url and webhook_url_env are set; keep one".into(),
            ));
        }
        Some(n) => Some(Notify {
            url: n.webhook_url,
            url_var: n.webhook_url_env,
            on_success: n.on_success,
        }),
    };
    let encrypt_default = raw
        .encryption
        .as_ref()
        .and_then(|e| e.encrypt)
        .unwrap_or(false);
    let encryption = raw.encryption.map(|e| Encryption {
        recipients: e.age_recipients,
        identity_file: e.age_identity_file.map(|f| expand_home(root, &f)),
    });
    let mut environments = BTreeMap::new();
    for (name, env) in raw.environments {
        if !ids::is_valid_env_name(&name) {
            return Err(bad(format!(
                "invalid environment name `{}`",
                ids::shorten(&name)
            ))
            .with_hint("environment names use only A-Z a-z 0-9 _ - (at most 64 characters)"));
        }
        let listed = raw.safety.protected_environments.contains(&name);
        let defaults = EnvDefaults {
            retention: default_retention,
            format: default_format,
            compression: default_compression,
            row_count_max_table_size: raw
                .defaults
                .row_count_max_table_size
                .map_or(DEFAULT_ROW_COUNT_MAX_TABLE_SIZE, |s| s.0),
            max_backup_age: raw.defaults.max_backup_age.map(|a| a.0),
            encrypt: encrypt_default,
            terminate_connections_on_rollback: raw
                .defaults
                .terminate_connections_on_rollback
                .unwrap_or(true),
        };
        let enforced = enforcement.get(&name).copied().unwrap_or_default();
        let mut resolved = resolve_env(&name, env, listed, defaults, offsite.is_some(), enforced)
            .map_err(|e| bad(format!("environments.{name}: {e}")))?;
        if resolved.encrypt && resolved.format == Format::Directory {
            return Err(bad(format!(
                "environments.{name}: format = \"directory\" cannot be encrypted yet, and \
                 encryption is on"
            ))
            .with_hint("use format = \"custom\" (parallel restores work from it too)"));
        }
        if resolved.migrations_table.is_none() {
            resolved.migrations_table.clone_from(&raw.migrations.table);
        }
        environments.insert(name, resolved);
    }
    if let Some(name) = &raw.default_environment
        && !environments.contains_key(name)
    {
        return Err(bad(format!(
            "default_environment = \"{}\" is not one of the environments",
            ids::shorten(name)
        ))
        .with_hint(format!(
            "environments: {}",
            environments.keys().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(Config {
        file,
        root: root.to_path_buf(),
        backup_dir,
        environments,
        default_environment: raw.default_environment,
        migrations_directory: raw.migrations.directory.map(|d| root.join(d)),
        offsite,
        notify,
        encryption,
        hook: Hook {
            enabled: raw.hook.enabled.unwrap_or(true),
            protected: raw.hook.protected.unwrap_or_default(),
            migrate_patterns: raw.hook.migrate_patterns,
        },
        safety,
    })
}

/// A path from the config: `~/` is the home directory, a relative path is taken from the root.
fn expand_home(root: &Path, path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => root.join(path),
    }
}

fn retention_from_days(days: u64) -> std::result::Result<Retention, String> {
    Retention::days(days).ok_or_else(|| {
        format!("a retention of {days} days is out of range (1 to {}); use \"forever\" to keep backups for good", crate::retention::MAX_DAYS)
    })
}

fn resolve_env(
    name: &str,
    raw: RawEnvironment,
    listed_protected: bool,
    defaults: EnvDefaults,
    has_offsite: bool,
    backup_enforcement: Enforcement,
) -> std::result::Result<Environment, String> {
    if backup_enforcement == Enforcement::Required && raw.backup_before_migrate == Some(false) {
        return Err(format!(
            "backup_before_migrate = false, but safety.backup_enforcement.{name} is \"required\"; \
             drop one of them"
        ));
    }
    if raw.offsite == Some(true) && !has_offsite {
        return Err(
            "offsite = true, but no [storage.offsite] is configured; add one or drop the key"
                .into(),
        );
    }
    let is_production = matches!(name, "production" | "prod");
    let url = match (raw.url, raw.url_env) {
        (Some(_), Some(_)) => return Err("both url and url_env are set; keep one".into()),
        (Some(url), None) => {
            if url_has_password(&url) {
                return Err(
                    "the inline url carries a password; move the URL into a variable and name it with url_env".into(),
                );
            }
            UrlSource::Inline(url)
        }
        (None, Some(var)) => UrlSource::Var(var),
        (None, None) => UrlSource::Var(default_url_var(name)),
    };
    let retention = match (raw.retention, raw.backup_retention_days) {
        (Some(_), Some(_)) => {
            return Err("both retention and backup_retention_days are set; keep one".into());
        }
        (Some(r), None) => r,
        (None, Some(days)) => retention_from_days(days)?,
        (None, None) => defaults.retention.unwrap_or_else(|| {
            let days = match name {
                "staging" => 60,
                "production" | "prod" => 90,
                _ => 30,
            };
            Retention::days(days).expect("the built-in retentions are in range")
        }),
    };
    let protected = raw.protected.unwrap_or(is_production) || listed_protected;
    Ok(Environment {
        name: name.to_string(),
        url,
        verify_url_env: raw.verify_url_env,
        retention,
        protected,
        offsite: raw.offsite.unwrap_or(protected && has_offsite),
        encrypt: raw.encrypt.unwrap_or(defaults.encrypt),
        backup_before_migrate: raw
            .backup_before_migrate
            .unwrap_or(is_production || backup_enforcement == Enforcement::Required),
        backup_enforcement,
        rollback_on_failure: raw.rollback_on_failure.unwrap_or(is_production),
        terminate_connections_on_rollback: raw
            .terminate_connections_on_rollback
            .unwrap_or(defaults.terminate_connections_on_rollback),
        migrate_command: raw.migrate_command,
        migrations_table: raw.migrations_table,
        format: raw.format.unwrap_or(defaults.format),
        compression: raw.compression.unwrap_or(defaults.compression),
        row_count_max_table_size: raw
            .row_count_max_table_size
            .map_or(defaults.row_count_max_table_size, |s| s.0),
        max_backup_age: raw.max_backup_age.map(|a| a.0).or(defaults.max_backup_age),
    })
}

/// `<ENV>_DATABASE_URL`, upper-cased, with `production` shortened to `PROD`.
pub fn default_url_var(env: &str) -> String {
    let stem = if env == "production" {
        "PROD".to_string()
    } else {
        env.to_uppercase().replace('-', "_")
    };
    format!("{stem}_DATABASE_URL")
}

fn url_has_password(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| {
        u.password().is_some_and(|p| !p.is_empty())
            || u.query_pairs()
                .any(|(k, _)| crate::provider::url_is_secret_param(&k))
    })
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
    fn url_var_defaults() {
        assert_eq!(default_url_var("dev"), "DEV_DATABASE_URL");
        assert_eq!(default_url_var("production"), "PROD_DATABASE_URL");
        assert_eq!(default_url_var("qa-eu"), "QA_EU_DATABASE_URL");
    }

    proptest::proptest! {
        /// Any config text, TOML or JSON, is either loaded or refused with an error: never a panic.
        #[test]
        fn arbitrary_config_text_never_panics(
            text in "(\\[(environments\\.[a-z]{1,8}|defaults|safety|backup|migrations)\\]\n|(url_env|url|retention|backup_retention_days|retention_days|protected|format|compression|backup_dir|protected_environments|table|row_count_max_table_size|max_backup_age|migrate_command) = (\"[^\"\n]{0,20}\"|[0-9]{1,25}|true|\\[\"[a-z]{1,8}\"\\])\n|\\PC{0,20}\n){0,12}",
        ) {
            for name in ["config.toml", "config.json"] {
                if let Ok(raw) = parse(Path::new(name), &text) {
                    let _ = resolve(raw, Path::new("/p"), PathBuf::from(name));
                }
            }
        }

        /// The same for JSON built of the config's own keys and odd values: a refusal names the
        /// file and says what is wrong.
        #[test]
        fn arbitrary_json_config_never_panics(
            pairs in proptest::collection::vec(
                (
                    "(url_env|url|retention|backup_retention_days|protected|format|compression|row_count_max_table_size|max_backup_age|migrations_table|bogus)",
                    "(\"[^\"\\\\]{0,12}\"|-?[0-9]{1,22}|true|null|\\[\\]|\\{\\})",
                ),
                0..6,
            ),
            env in "[a-z_-]{0,10}",
        ) {
            let body = pairs
                .iter()
                .map(|(k, v)| format!("\"{k}\": {v}"))
                .collect::<Vec<_>>()
                .join(", ");
            let text = format!("{{\"environments\": {{\"{env}\": {{{body}}}}}}}");
            match parse(Path::new("config.json"), &text)
                .and_then(|raw| resolve(raw, Path::new("/p"), PathBuf::from("config.json")))
            {
                Ok(_) => {}
                Err(e) => proptest::prop_assert!(e.kind() == crate::error::Kind::Config, "{}", e.one_line()),
            }
        }
    }

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

    #[test]
    fn migrates_restore_ends_sessions_unless_the_environment_or_defaults_say_not() {
        let load = |text: &str| {
            let raw = parse(Path::new("config.toml"), text).unwrap();
            resolve(raw, Path::new("/p"), PathBuf::from("config.toml")).unwrap()
        };
        let envs = "[environments.a]\n[environments.b]\nterminate_connections_on_rollback = true\n\
                    [environments.c]\nterminate_connections_on_rollback = false\n";
        let ends = |config: &Config| {
            ["a", "b", "c"].map(|n| config.environments[n].terminate_connections_on_rollback)
        };
        assert_eq!(ends(&load(envs)), [true, true, false]);
        let off = load(&format!(
            "[defaults]\nterminate_connections_on_rollback = false\n{envs}"
        ));
        assert_eq!(ends(&off), [false, true, false]);
        assert!(
            parse(
                Path::new("config.toml"),
                "[environments.a]\nterminate_connections_on_rollback = \"yes\"\n"
            )
            .is_err()
        );
    }

    #[test]
    fn positions() {
        assert_eq!(line_col("a\nbc\nd", 3), (2, 2));
        assert_eq!(line_col("abc", 0), (1, 1));
    }
}
