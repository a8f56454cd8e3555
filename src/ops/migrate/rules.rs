//! The config's safety rules held against the pending migrations: statements it forbids stop
//! the run before anything is done, and statements it wants backed up take the backup whatever
//! `backup_before_migrate` says.

use super::Pending;
use crate::config::{Enforcement, Environment};
use crate::error::Error;
use crate::session::Session;

/// The failure (exit 8) of pending migrations holding statements the config forbids
/// (`safety.destructive_operations.<kind>.allowed = false`), naming each and its reason.
pub fn blocked(session: &Session, todo: &[Pending]) -> Option<Error> {
    let found: Vec<String> = todo
        .iter()
        .flat_map(|p| {
            p.destructive.iter().filter_map(move |d| {
                let why = d.blocked.as_ref()?;
                Some(format!(
                    "{} ({} line {}) holds {}: {why}",
                    p.name, p.file, d.line, d.what
                ))
            })
        })
        .collect();
    if found.is_empty() {
        return None;
    }
    let keys: std::collections::BTreeSet<String> = todo
        .iter()
        .flat_map(|p| &p.destructive)
        .filter(|d| d.blocked.is_some())
        .map(|d| format!("safety.destructive_operations.{}.allowed = false", d.kind))
        .collect();
    Some(
        Error::aborted(format!(
            "the pending migrations hold statements the config does not allow, so nothing was run: {}",
            found.join("; ")
        ))
        .with_hint(format!(
            "{} in {}: faber-db will not run it, with --allow-destructive or --yes either; run it by hand if it is intended",
            keys.into_iter().collect::<Vec<_>>().join(", "),
            session.ctx.show(&session.config.file)
        )),
    )
}

/// The config's rule that requires the pre-migration backup of this run, if one does:
/// `safety.backup_enforcement.<env> = "required"`, a pending statement whose kind has
/// `require_backup` (or `backup.backup_before_destructive_ops`), or — when the pending
/// migrations cannot be read — any such rule.
pub fn backup_required(
    session: &Session,
    env: &Environment,
    todo: &[Pending],
    listable: bool,
) -> Option<String> {
    if env.backup_enforcement == Enforcement::Required {
        return Some(format!(
            "safety.backup_enforcement.{} = \"required\"",
            env.name
        ));
    }
    if let Some(by) = todo
        .iter()
        .flat_map(|p| &p.destructive)
        .find_map(|d| d.backup_required.clone())
    {
        return Some(by);
    }
    (!listable && session.config.safety.any_backup_required()).then(|| {
        "the config's require_backup rules (the pending migrations cannot be read, so may hold what they name)"
            .to_string()
    })
}
