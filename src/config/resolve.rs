//! The config as written resolved into typed values: every default applied, every value
//! checked, a wrong one refused with its key and the file named.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::raw::{RawConfig, RawEnvironment};
use super::safety::{self, Enforcement, Safety};
use super::{
    Config, DEFAULT_BACKUP_DIR, DEFAULT_ROW_COUNT_MAX_TABLE_SIZE, Encryption, Environment, Hook,
    Offsite, UrlSource,
};
use crate::error::{Error, Remedy, Result};
use crate::format::Format;
use crate::ids;
use crate::pipeline::Compression;
use crate::retention::Retention;

/// What environments inherit from `[defaults]`.
#[derive(Debug, Clone, Copy)]
struct EnvDefaults {
    retention: Option<Retention>,
    format: Format,
    compression: Compression,
    row_count_max_table_size: u64,
    max_backup_age: Option<std::time::Duration>,
    max_drill_age: Option<std::time::Duration>,
    include_globals: bool,
    sqlite_full_check: bool,
    include_role_passwords: bool,
    /// `[encryption] encrypt`.
    encrypt: bool,
    terminate_connections_on_rollback: bool,
}

pub(super) fn resolve(raw: RawConfig, root: &Path, file: PathBuf) -> Result<Config> {
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
    let (safety, enforcement) = resolve_safety(&raw, &bad)?;
    // Only the defaults used without a config file (see `load_or_defaults`) have none.
    if raw.environments.is_empty() && file.exists() {
        return Err(bad("no environments are defined".into()).with_hint(Remedy::StartOver));
    }
    let offsite = raw
        .storage
        .offsite
        .map(Offsite::parse)
        .transpose()
        .map_err(|e| bad(e).with_hint("see the off-site section of docs/configuration.md"))?;
    let notify = raw
        .notify
        .map(super::notify::resolve)
        .transpose()
        .map_err(|e| bad(e).with_hint("see the notifications section of docs/configuration.md"))?;
    let encrypt_default = raw
        .encryption
        .as_ref()
        .and_then(|e| e.encrypt)
        .unwrap_or(false);
    let encryption = raw.encryption.map(|e| Encryption {
        recipients: e.age_recipients,
        identity_file: e.age_identity_file.map(|f| expand_home(root, &f)),
    });
    let defaults = EnvDefaults {
        retention: default_retention,
        format: default_format,
        compression: default_compression,
        row_count_max_table_size: raw
            .defaults
            .row_count_max_table_size
            .map_or(DEFAULT_ROW_COUNT_MAX_TABLE_SIZE, |s| s.0),
        max_backup_age: raw.defaults.max_backup_age.map(|a| a.0),
        max_drill_age: raw.defaults.max_drill_age.map(|a| a.0),
        include_globals: raw.defaults.include_globals.unwrap_or(false),
        sqlite_full_check: raw.defaults.sqlite_full_check.unwrap_or(false),
        include_role_passwords: raw.defaults.include_role_passwords.unwrap_or(false),
        encrypt: encrypt_default,
        terminate_connections_on_rollback: raw
            .defaults
            .terminate_connections_on_rollback
            .unwrap_or(true),
    };
    let exclude_table_data = checked_patterns(raw.defaults.exclude_table_data.clone())
        .map_err(|e| bad(format!("defaults.exclude_table_data: {e}")))?;
    let context = EnvContext {
        exclude_table_data: &exclude_table_data,
        protected: &raw.safety.protected_environments,
        migrations_table: &raw.migrations.table,
        defaults,
        enforcement: &enforcement,
        has_offsite: offsite.is_some(),
    };
    let environments = resolve_environments(raw.environments, &context, &bad)?;
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

/// The `safety` rules, checked, and each environment's backup enforcement; every environment
/// they name must exist.
fn resolve_safety(
    raw: &RawConfig,
    bad: &dyn Fn(String) -> Error,
) -> Result<(Safety, BTreeMap<String, Enforcement>)> {
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
    Ok((safety, enforcement))
}

/// What every environment is resolved against: the rest of the config.
struct EnvContext<'a> {
    /// `safety.protected_environments`.
    protected: &'a [String],
    /// `[migrations] table`, for the environments that name none.
    migrations_table: &'a Option<String>,
    defaults: EnvDefaults,
    /// `safety.backup_enforcement`.
    enforcement: &'a BTreeMap<String, Enforcement>,
    has_offsite: bool,
    /// `[defaults] exclude_table_data`, checked.
    exclude_table_data: &'a [String],
}

/// Each of `raw`'s environments resolved, by name.
fn resolve_environments(
    raw: BTreeMap<String, RawEnvironment>,
    context: &EnvContext<'_>,
    bad: &dyn Fn(String) -> Error,
) -> Result<BTreeMap<String, Environment>> {
    let mut environments = BTreeMap::new();
    for (name, mut env) in raw {
        if !ids::is_valid_env_name(&name) {
            return Err(bad(format!(
                "invalid environment name `{}`",
                ids::shorten(&name)
            ))
            .with_hint("environment names use only A-Z a-z 0-9 _ - (at most 64 characters)"));
        }
        let listed = context.protected.contains(&name);
        let enforced = context.enforcement.get(&name).copied().unwrap_or_default();
        let exclude = match env.exclude_table_data.take() {
            Some(own) => checked_patterns(Some(own))
                .map_err(|e| bad(format!("environments.{name}.exclude_table_data: {e}")))?,
            None => context.exclude_table_data.to_vec(),
        };
        let mut resolved = resolve_env(
            &name,
            env,
            listed,
            context.defaults,
            context.has_offsite,
            enforced,
        )
        .map_err(|e| bad(format!("environments.{name}: {e}")))?;
        if resolved.encrypt && resolved.format == Format::Directory {
            return Err(bad(format!(
                "environments.{name}: format = \"directory\" cannot be encrypted yet, and \
                 encryption is on"
            ))
            .with_hint("use format = \"custom\" (parallel restores work from it too)"));
        }
        resolved.exclude_table_data = exclude;
        if resolved.migrations_table.is_none() {
            resolved
                .migrations_table
                .clone_from(context.migrations_table);
        }
        environments.insert(name, resolved);
    }
    Ok(environments)
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
    let include_globals = raw.include_globals.unwrap_or(defaults.include_globals);
    let include_role_passwords = raw
        .include_role_passwords
        .unwrap_or(defaults.include_role_passwords);
    if include_role_passwords && !include_globals {
        return Err("include_role_passwords = true needs include_globals = true".into());
    }
    if include_role_passwords && !raw.encrypt.unwrap_or(defaults.encrypt) {
        return Err("include_role_passwords = true keeps the roles' password hashes, which faber-db stores only in encrypted backups: set encrypt = true (see [encryption])".into());
    }
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
        rehearse: raw.rehearse.unwrap_or(protected),
        migrations_table: raw.migrations_table,
        format: raw.format.unwrap_or(defaults.format),
        compression: raw.compression.unwrap_or(defaults.compression),
        row_count_max_table_size: raw
            .row_count_max_table_size
            .map_or(defaults.row_count_max_table_size, |s| s.0),
        max_backup_age: raw.max_backup_age.map(|a| a.0).or(defaults.max_backup_age),
        max_drill_age: raw.max_drill_age.map(|a| a.0).or(defaults.max_drill_age),
        include_globals,
        include_role_passwords,
        sqlite_full_check: raw.sqlite_full_check.unwrap_or(defaults.sqlite_full_check),
        exclude_table_data: Vec::new(),
    })
}

/// `exclude_table_data` as written, each pattern checked (see [`crate::provider::exclude`]).
fn checked_patterns(raw: Option<Vec<String>>) -> std::result::Result<Vec<String>, String> {
    let patterns = raw.unwrap_or_default();
    for p in &patterns {
        crate::provider::exclude::check(p)?;
    }
    Ok(patterns)
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

#[cfg(test)]
mod tests {
    use super::super::load::parse;
    use super::*;

    #[test]
    fn url_var_defaults() {
        assert_eq!(default_url_var("dev"), "DEV_DATABASE_URL");
        assert_eq!(default_url_var("production"), "PROD_DATABASE_URL");
        assert_eq!(default_url_var("qa-eu"), "QA_EU_DATABASE_URL");
    }

    #[test]
    fn migrations_are_rehearsed_on_protected_environments_unless_the_config_says_not() {
        let raw = parse(
            Path::new("config.toml"),
            "[safety]\nprotected_environments = [\"staging\"]\n[environments.dev]\n\
             [environments.staging]\n[environments.production]\n\
             [environments.qa]\nrehearse = true\n[environments.prod]\nrehearse = false\n",
        )
        .unwrap();
        let config = resolve(raw, Path::new("/p"), PathBuf::from("config.toml")).unwrap();
        let rehearse = |n: &str| config.environments[n].rehearse;
        assert!(!rehearse("dev"));
        assert!(rehearse("staging"), "listed as protected");
        assert!(rehearse("production"));
        assert!(rehearse("qa"));
        assert!(!rehearse("prod"));
    }

    #[test]
    fn an_environments_excluded_tables_replace_the_defaults_and_empty_patterns_are_refused() {
        let load = |text: &str| {
            let raw = parse(Path::new("config.toml"), text)?;
            resolve(raw, Path::new("/p"), PathBuf::from("config.toml"))
        };
        let config = load(
            "[defaults]\nexclude_table_data = [\"audit_log\", \"sessions*\"]\n\
             [environments.a]\n[environments.b]\nexclude_table_data = [\"cache\"]\n\
             [environments.c]\nexclude_table_data = []\n",
        )
        .unwrap();
        let excluded = |n: &str| config.environments[n].exclude_table_data.clone();
        assert_eq!(excluded("a"), ["audit_log", "sessions*"]);
        assert_eq!(excluded("b"), ["cache"]);
        assert!(excluded("c").is_empty());
        for (bad, key) in [
            (
                "[defaults]\nexclude_table_data = [\"\"]\n[environments.a]\n",
                "defaults.exclude_table_data: a pattern is empty",
            ),
            (
                "[environments.a]\nexclude_table_data = [\"ok\", \" \"]\n",
                "environments.a.exclude_table_data: a pattern is empty",
            ),
        ] {
            let err = load(bad).unwrap_err();
            assert!(err.message().contains(key), "{bad}: {}", err.message());
        }
        for bad in [
            "[environments.a]\nexclude_table_data = \"audit_log\"\n",
            "[environments.a]\nexclude_table_data = [1]\n",
        ] {
            assert!(load(bad).is_err(), "{bad}");
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
}
