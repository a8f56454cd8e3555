//! Whether this binary is the version of the faber-db plugin Claude Code has installed. The
//! plugin's commands and hooks run a binary of their own version (its launcher, bin/faber-db,
//! runs no other), but a `faber-db` found first on PATH — an older `cargo install`, a
//! downloaded binary — may be another: its backups and the hook's would then differ.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Level;

/// One faber-db plugin Claude Code has installed.
#[derive(Debug, PartialEq, Eq)]
pub struct Installed {
    /// `faber-db@<marketplace>`.
    pub id: String,
    /// `user`, `project` or `local`.
    pub scope: String,
    /// The version its launcher runs: its plugin.json's, else the one Claude Code recorded.
    pub version: String,
    pub path: String,
}

/// Where Claude Code keeps its settings: CLAUDE_CONFIG_DIR, else ~/.claude.
pub fn config_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CLAUDE_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".claude"))
}

/// The faber-db plugins listed in `<config dir>/plugins/installed_plugins.json` that apply in
/// the project at `root` (installs of another project, which name their `projectPath`, do
/// not); none when there is no such file. An error says why the file could not be read.
pub fn installed(config_dir: &Path, root: &Path) -> Result<Vec<Installed>, String> {
    let path = config_dir.join("plugins/installed_plugins.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let json: Value =
        serde_json::from_str(&text).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut found = Vec::new();
    let Some(plugins) = json.get("plugins").and_then(Value::as_object) else {
        return Ok(found);
    };
    for (id, entries) in plugins {
        if id.split('@').next() != Some("faber-db") {
            continue;
        }
        // Version 2 lists installs per scope; version 1 had one object.
        let entries = match entries {
            Value::Array(list) => list.iter().collect(),
            other => vec![other],
        };
        for entry in entries {
            let text = |key: &str| entry.get(key).and_then(Value::as_str).unwrap_or("");
            if !text("projectPath").is_empty() && !same_dir(Path::new(text("projectPath")), root) {
                continue;
            }
            let path = text("installPath").to_string();
            let version =
                manifest_version(Path::new(&path)).unwrap_or_else(|| text("version").to_string());
            found.push(Installed {
                id: id.clone(),
                scope: text("scope").to_string(),
                version,
                path,
            });
        }
    }
    Ok(found)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The "version" of the plugin's .claude-plugin/plugin.json, as its launcher reads it.
fn manifest_version(root: &Path) -> Option<String> {
    if root.as_os_str().is_empty() {
        return None;
    }
    let text = std::fs::read_to_string(root.join(".claude-plugin/plugin.json")).ok()?;
    let json: Value = serde_json::from_str(&text).ok()?;
    json.get("version")?.as_str().map(str::to_string)
}

/// What doctor says of each installed plugin, against this binary's `version`.
pub fn findings(installed: &[Installed], version: &str) -> Vec<(Level, String)> {
    installed
        .iter()
        .map(|p| {
            let scope = if p.scope.is_empty() {
                String::new()
            } else {
                format!(", {} scope", p.scope)
            };
            if p.version == version {
                (
                    Level::Ok,
                    format!(
                        "{} {}{scope}: the same version as this binary",
                        p.id, p.version
                    ),
                )
            } else {
                (
                    Level::Warning,
                    format!(
                        "{} is {}{scope} ({}), but this binary is {version}: the plugin's \
                         commands and hooks run faber-db {} through its launcher, while \
                         `faber-db` run here is this one; update the one that is behind \
                         (`claude plugin update {}`, or install faber-db {} as docs/install.md \
                         says)",
                        p.id,
                        display_version(&p.version),
                        p.path,
                        display_version(&p.version),
                        p.id,
                        display_version(&p.version),
                    ),
                )
            }
        })
        .collect()
}

fn display_version(v: &str) -> &str {
    if v.is_empty() { "(no version)" } else { v }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn installed_faber_db_plugins_are_read_with_their_manifests_version() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path().join("cache/faber-db/faber-db/0.2.0");
        write(
            &cache,
            ".claude-plugin/plugin.json",
            r#"{"name": "faber-db", "version": "0.2.0"}"#,
        );
        let listing = serde_json::json!({
            "version": 2,
            "plugins": {
                "faber-db@faber-db": [
                    {"scope": "user", "installPath": cache, "version": "0.1.9"},
                    {"scope": "project", "installPath": "/nonexistent/x", "version": "0.1.0",
                     "projectPath": tmp.path()},
                    {"scope": "project", "installPath": "/nonexistent/y", "version": "0.0.1",
                     "projectPath": "/some/other/project"}
                ],
                "faber-db-extras@other": [{"scope": "user", "installPath": "/x", "version": "9"}],
                "other@faber-db": [{"scope": "user", "installPath": "/x", "version": "9"}]
            }
        });
        write(
            tmp.path(),
            "plugins/installed_plugins.json",
            &listing.to_string(),
        );
        let found = installed(tmp.path(), tmp.path()).unwrap();
        assert_eq!(
            found,
            [
                Installed {
                    id: "faber-db@faber-db".into(),
                    scope: "user".into(),
                    version: "0.2.0".into(),
                    path: cache.display().to_string(),
                },
                Installed {
                    id: "faber-db@faber-db".into(),
                    scope: "project".into(),
                    version: "0.1.0".into(),
                    path: "/nonexistent/x".into(),
                },
            ]
        );
        let said = findings(&found, "0.1.0");
        assert_eq!(said[0].0, Level::Warning);
        assert!(
            said[0]
                .1
                .starts_with("faber-db@faber-db is 0.2.0, user scope (")
                && said[0].1.contains("but this binary is 0.1.0"),
            "{}",
            said[0].1
        );
        assert_eq!(
            said[1],
            (
                Level::Ok,
                "faber-db@faber-db 0.1.0, project scope: the same version as this binary".into()
            )
        );
    }

    #[test]
    fn no_listing_is_no_plugin_and_a_broken_one_is_said() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(installed(tmp.path(), tmp.path()).unwrap(), []);
        write(tmp.path(), "plugins/installed_plugins.json", "{not json");
        let err = installed(tmp.path(), tmp.path()).unwrap_err();
        assert!(err.contains("installed_plugins.json"), "{err}");
    }
}
