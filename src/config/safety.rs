//! The original plugin's `safety` rules (and `backup.backup_before_destructive_ops`), read into
//! typed values: which destructive statements may run at all, which need a backup first, and how
//! strictly each environment's pre-migration backup is enforced. Every value is checked, and a
//! malformed one is refused with its key named (docs/configuration.md, "The plugin's original
//! `config.json`").

use std::collections::BTreeMap;

use serde_json::Value;

use super::raw::{RawBackup, RawSafety};
use crate::sqlscan::Kind;

/// What the config says of destructive statements and backups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Safety {
    /// `safety.destructive_operations`: the rule of each kind that has one.
    pub destructive: BTreeMap<Kind, Rule>,
    /// `backup.backup_before_destructive_ops`: a migration with any destructive statement is
    /// backed up first, as if every kind had `require_backup`.
    pub backup_before_destructive_ops: bool,
    /// `safety.require_approval_for`: the operations the original plugin asked approval for.
    /// faber-db asks before every command that changes a protected environment, so these add
    /// nothing; they are checked, and a name left out exempts nothing.
    pub require_approval_for: Vec<String>,
}

/// `safety.destructive_operations.<kind>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `allowed = false`: `migrate` refuses a pending migration holding it, and the Claude Code
    /// hook denies it sent to an environment's database.
    pub allowed: bool,
    pub block_reason: Option<String>,
    /// A migration holding it is backed up first, whatever `backup_before_migrate` says.
    pub require_backup: bool,
    /// `standard` or `enhanced`: checked; faber-db's own confirmations apply.
    pub approval: Option<String>,
    /// `truncate`'s row threshold: checked, not used.
    pub row_threshold: Option<u64>,
}

/// `safety.backup_enforcement.<env>`: how strictly the pre-migration backup is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Enforcement {
    /// `backup_before_migrate` is on and cannot be turned off; `--no-backup` is refused.
    Required,
    /// A migration without the backup warns.
    Recommended,
    #[default]
    Optional,
}

impl Enforcement {
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::Required => "required",
            Enforcement::Recommended => "recommended",
            Enforcement::Optional => "optional",
        }
    }
}

impl Safety {
    /// Why statements of `kind` may not run, when the config forbids them: its `block_reason`,
    /// else the key that says so.
    pub fn blocked(&self, kind: Kind) -> Option<String> {
        let rule = self.destructive.get(&kind).filter(|r| !r.allowed)?;
        Some(rule.block_reason.clone().unwrap_or_else(|| {
            format!(
                "safety.destructive_operations.{}.allowed is false",
                kind.key()
            )
        }))
    }

    /// Whether a migration holding a statement of `kind` must be backed up first, and the key
    /// that says so.
    pub fn backup_required(&self, kind: Kind) -> Option<String> {
        if self
            .destructive
            .get(&kind)
            .is_some_and(|r| r.require_backup)
        {
            return Some(format!(
                "safety.destructive_operations.{}.require_backup",
                kind.key()
            ));
        }
        self.backup_before_destructive_ops
            .then(|| "backup.backup_before_destructive_ops".to_string())
    }

    /// Whether some kind of destructive statement needs a backup first.
    pub fn any_backup_required(&self) -> bool {
        Kind::ALL
            .into_iter()
            .any(|k| self.backup_required(k).is_some())
    }
}

/// The kinds' keys, for messages.
fn kinds() -> String {
    Kind::ALL.map(Kind::key).join(", ")
}

/// A value as the config wrote it, shortened, for messages.
fn shown(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(40).collect::<String>())
    } else {
        text
    }
}

fn boolean(key: &str, v: &Value) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| format!("{key} must be true or false, not {}", shown(v)))
}

fn string(key: &str, v: &Value) -> Result<String, String> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{key} must be a string, not {}", shown(v)))
}

fn count(key: &str, v: &Value) -> Result<u64, String> {
    v.as_u64()
        .ok_or_else(|| format!("{key} must be a whole number, 0 or more, not {}", shown(v)))
}

fn table<'a>(key: &str, v: &'a Value) -> Result<&'a serde_json::Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{key} must be a table (an object), not {}", shown(v)))
}

/// Operations `require_approval_for` may name: faber-db's commands that change a database or
/// remove backups, and the original plugin's `seed`.
const APPROVABLE: [&str; 7] = [
    "migrate", "rollback", "restore", "seed", "backup", "cleanup", "delete",
];

/// Reads `[safety]` and `[backup]`'s rules; also `backup_enforcement`, by environment name
/// (the names are checked by the caller, which knows the environments).
pub(super) fn parse(
    safety: &RawSafety,
    backup: &RawBackup,
) -> Result<(Safety, BTreeMap<String, Enforcement>), String> {
    let mut out = Safety::default();
    if let Some(v) = &safety.destructive_operations {
        for (name, rule) in table("safety.destructive_operations", v)? {
            let key = format!("safety.destructive_operations.{name}");
            let kind = Kind::from_key(name).ok_or_else(|| {
                format!(
                    "{key}: `{name}` is no kind of destructive statement faber-db knows ({})",
                    kinds()
                )
            })?;
            out.destructive.insert(kind, parse_rule(&key, rule)?);
        }
    }
    if let Some(v) = &backup.backup_before_destructive_ops {
        out.backup_before_destructive_ops = boolean("backup.backup_before_destructive_ops", v)?;
    }
    if let Some(v) = &safety.require_approval_for {
        let key = "safety.require_approval_for";
        let list = v
            .as_array()
            .ok_or_else(|| format!("{key} must be a list of operations, not {}", shown(v)))?;
        for op in list {
            let op = string(&format!("{key}[…]"), op)?;
            if !APPROVABLE.contains(&op.as_str()) {
                return Err(format!(
                    "{key}: `{op}` is no operation faber-db knows ({})",
                    APPROVABLE.join(", ")
                ));
            }
            out.require_approval_for.push(op);
        }
    }
    let mut enforcement = BTreeMap::new();
    if let Some(v) = &safety.backup_enforcement {
        for (env, level) in table("safety.backup_enforcement", v)? {
            let key = format!("safety.backup_enforcement.{env}");
            let level = match level.as_str() {
                Some("required") => Enforcement::Required,
                Some("recommended") => Enforcement::Recommended,
                Some("optional") => Enforcement::Optional,
                _ => {
                    return Err(format!(
                        "{key} must be \"required\", \"recommended\" or \"optional\", not {}",
                        shown(level)
                    ));
                }
            };
            enforcement.insert(env.clone(), level);
        }
    }
    // Checked, with no further meaning (see docs/configuration.md).
    if let Some(v) = &safety.max_auto_rollback_attempts {
        let key = "safety.max_auto_rollback_attempts";
        if count(key, v)? == 0 {
            return Err(format!(
                "{key} = 0: faber-db's migrate restores the pre-migration backup at most once, when \
                 the environment's rollback_on_failure is true; to turn that off, set \
                 rollback_on_failure = false on the environment and leave this key out"
            ));
        }
    }
    if let Some(v) = &safety.health_check_before_deploy {
        boolean("safety.health_check_before_deploy", v)?;
    }
    if let Some(v) = &safety.validate_destructive_operations {
        boolean("safety.validate_destructive_operations", v)?;
    }
    if let Some(v) = &safety.approval_timeouts {
        for (name, secs) in table("safety.approval_timeouts", v)? {
            let key = format!("safety.approval_timeouts.{name}");
            if !matches!(name.as_str(), "standard" | "enhanced") {
                return Err(format!(
                    "{key}: the approvals are `standard` and `enhanced`"
                ));
            }
            count(&key, secs)?;
        }
    }
    if let Some(v) = &backup.provider {
        string("backup.provider", v)?;
    }
    Ok((out, enforcement))
}

fn parse_rule(key: &str, v: &Value) -> Result<Rule, String> {
    let mut rule = Rule {
        allowed: true,
        block_reason: None,
        require_backup: false,
        approval: None,
        row_threshold: None,
    };
    for (name, value) in table(key, v)? {
        let key = format!("{key}.{name}");
        match name.as_str() {
            "allowed" => rule.allowed = boolean(&key, value)?,
            "block_reason" => rule.block_reason = Some(string(&key, value)?),
            "require_backup" => rule.require_backup = boolean(&key, value)?,
            "approval" => {
                let approval = string(&key, value)?;
                if !matches!(approval.as_str(), "standard" | "enhanced") {
                    return Err(format!(
                        "{key} must be \"standard\" or \"enhanced\", not {}",
                        shown(value)
                    ));
                }
                rule.approval = Some(approval);
            }
            "row_threshold" => rule.row_threshold = Some(count(&key, value)?),
            _ => {
                return Err(format!(
                    "unknown key {key} (the keys are allowed, block_reason, require_backup, approval, row_threshold)"
                ));
            }
        }
    }
    Ok(rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(safety: Value, backup: Value) -> Result<Safety, String> {
        let safety: RawSafety = serde_json::from_value(safety).unwrap();
        let backup: RawBackup = serde_json::from_value(backup).unwrap();
        parse(&safety, &backup).map(|(s, _)| s)
    }

    #[test]
    fn the_original_plugins_example_reads_into_rules() {
        let safety = parsed(
            serde_json::json!({
                "protected_environments": ["production"],
                "require_approval_for": ["migrate", "rollback", "seed"],
                "max_auto_rollback_attempts": 1,
                "health_check_before_deploy": true,
                "validate_destructive_operations": true,
                "backup_enforcement": {"production": "required", "dev": "optional"},
                "destructive_operations": {
                    "drop_table": {"allowed": true, "approval": "enhanced", "require_backup": true},
                    "drop_database": {"allowed": false, "block_reason": "Never allowed via automation"},
                    "truncate": {"allowed": true, "approval": "enhanced", "row_threshold": 1000}
                },
                "approval_timeouts": {"standard": 300, "enhanced": 600}
            }),
            serde_json::json!({"provider": "aws-rds-snapshot", "backup_before_destructive_ops": false}),
        )
        .unwrap();
        assert_eq!(
            safety.blocked(Kind::DropDatabase).as_deref(),
            Some("Never allowed via automation")
        );
        assert_eq!(safety.blocked(Kind::DropTable), None);
        assert_eq!(safety.blocked(Kind::DropSchema), None);
        assert!(safety.backup_required(Kind::DropTable).is_some());
        assert!(safety.backup_required(Kind::Truncate).is_none());
        let all = Safety {
            backup_before_destructive_ops: true,
            ..Safety::default()
        };
        assert!(all.backup_required(Kind::Truncate).is_some());
    }

    #[test]
    fn malformed_values_name_their_key() {
        let none = serde_json::json!({});
        for (safety, backup, key) in [
            (
                serde_json::json!({"destructive_operations": {"drop_database": {"allowed": "no"}}}),
                none.clone(),
                "safety.destructive_operations.drop_database.allowed",
            ),
            (
                serde_json::json!({"destructive_operations": {"drop_tabel": {}}}),
                none.clone(),
                "safety.destructive_operations.drop_tabel",
            ),
            (
                serde_json::json!({"destructive_operations": {"truncate": {"alowed": false}}}),
                none.clone(),
                "safety.destructive_operations.truncate.alowed",
            ),
            (
                serde_json::json!({"backup_enforcement": {"production": "always"}}),
                none.clone(),
                "safety.backup_enforcement.production",
            ),
            (
                serde_json::json!({"require_approval_for": "migrate"}),
                none.clone(),
                "safety.require_approval_for",
            ),
            (
                serde_json::json!({"approval_timeouts": {"standard": -1}}),
                none.clone(),
                "safety.approval_timeouts.standard",
            ),
            (
                serde_json::json!({"max_auto_rollback_attempts": 0}),
                none.clone(),
                "safety.max_auto_rollback_attempts",
            ),
            (
                none.clone(),
                serde_json::json!({"backup_before_destructive_ops": "yes"}),
                "backup.backup_before_destructive_ops",
            ),
        ] {
            let e = parsed(safety.clone(), backup).unwrap_err();
            assert!(e.contains(key), "{safety}: {e}");
        }
    }
}
