//! Finding the config file under the project root and reading it: TOML or JSON, a malformed one
//! refused with the file, line and column named.

use std::path::{Path, PathBuf};

use super::raw::RawConfig;
use super::resolve::resolve;
use super::{Config, PLUGIN_DIR};
use crate::error::{Error, Remedy, Result};

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
            return Err(
                Error::config(format!("config file {} not found", path.display()))
                    .with_hint(Remedy::CheckConfigPath),
            );
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
            .with_hint(Remedy::CreateConfig),
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

pub(super) fn parse(file: &Path, text: &str) -> Result<RawConfig> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn positions() {
        assert_eq!(line_col("a\nbc\nd", 3), (2, 2));
        assert_eq!(line_col("abc", 0), (1, 1));
    }
}
