//! What an agent's edit or shell command would do to faber-db's own files: a config that
//! protects less, backups removed or overwritten (issue 24, step 3).

use std::path::{Component, Path, PathBuf};

use crate::config::{self, Config, Environment};
use crate::fsutil;

/// How a config after an edit protects less than before: one line each, empty when it does
/// not. A config that no longer reads is one line too: it cannot be told.
pub fn weakened(before: &Config, after_text: &str) -> Vec<String> {
    let after = match config::from_text(&before.root, &before.file, after_text) {
        Ok(after) => after,
        Err(e) => return vec![format!("the config would no longer read: {}", e.one_line())],
    };
    let mut out = Vec::new();
    for (name, was) in &before.environments {
        let Some(now) = after.environments.get(name) else {
            if guards(was) {
                out.push(format!("environment `{name}` is removed"));
            }
            continue;
        };
        let lost = |what: &str, before: bool, after: bool, out: &mut Vec<String>| {
            if before && !after {
                out.push(format!("`{name}` loses {what}"));
            }
        };
        lost("protected", was.protected, now.protected, &mut out);
        lost(
            "backup_before_migrate",
            was.backup_before_migrate,
            now.backup_before_migrate,
            &mut out,
        );
        lost(
            "rollback_on_failure",
            was.rollback_on_failure,
            now.rollback_on_failure,
            &mut out,
        );
        if was.url != now.url && guards(was) {
            out.push(format!("`{name}`'s database URL is taken from elsewhere"));
        }
    }
    if before.hook.enabled && !after.hook.enabled {
        out.push("the Claude Code hook is turned off".into());
    }
    if before.hook.protected != after.hook.protected {
        out.push("what the hook answers for protected migrations changes".into());
    }
    if before.safety != after.safety {
        out.push("the safety rules for destructive statements change".into());
    }
    if fsutil::resolved(&before.backup_dir) != fsutil::resolved(&after.backup_dir) {
        out.push(format!(
            "backups move to {} (those in {} are left behind)",
            after.backup_dir.display(),
            before.backup_dir.display()
        ));
    }
    out
}

/// Whether an environment has a guard an edit could take away.
fn guards(env: &Environment) -> bool {
    env.protected || env.backup_before_migrate || env.rollback_on_failure
}

/// What a path written or removed is to faber-db.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guarded {
    /// The project's config.
    Config,
    /// The backup directory, something in it, or a directory holding it.
    Backups,
}

/// Whether `path` (as the command names it, from `dir`) is the config of `config` or holds its
/// backups. Paths are compared as written, `..` folded, and as they resolve on disk (links).
pub fn guarded(config: &Config, dir: &Path, path: &str) -> Option<Guarded> {
    let path = lexical(&dir.join(path));
    let resolved = fsutil::resolved(&path);
    let same = |a: &Path| path == a || resolved == fsutil::resolved(a);
    if same(&config.file) {
        return Some(Guarded::Config);
    }
    let backups = lexical(&config.backup_dir);
    let backups_resolved = fsutil::resolved(&backups);
    let within = |p: &Path| p.starts_with(&backups) || p.starts_with(&backups_resolved);
    let holds = |p: &Path| backups.starts_with(p) || backups_resolved.starts_with(p);
    (within(&path) || within(&resolved) || holds(&path) || holds(&resolved))
        .then_some(Guarded::Backups)
}

/// `path` with `.` and `..` folded away, without touching the disk.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}
