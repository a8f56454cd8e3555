//! Finding the config file under the project root and reading it: TOML or JSON, a malformed one
//! refused with the file, line and column named.

use std::io;
use std::path::{Path, PathBuf};

use super::raw::RawConfig;
use super::resolve::resolve;
use super::{Config, PLUGIN_DIR};
use crate::error::{Error, Remedy, Result};

/// Why no config could be read: a typed error the loader's callers can tell apart (no file at
/// all is not a failure for [`load_or_defaults`]). Into an [`Error`] it is a configuration error
/// (exit 1), with its source as the cause and what to do as the hint.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// `--config` names a file that is not there.
    #[error("config file {} not found", .0.display())]
    NotFound(PathBuf),
    /// No config file in the project's config directory (named here).
    #[error("no faber-db config found in {}", .0.display())]
    Missing(PathBuf),
    /// The file is there but cannot be read.
    #[error("cannot read {}", .path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file is not valid TOML or JSON: where, and what the parser says (its position left
    /// out, since it leads the message).
    #[error("{}:{line}:{column}: {message}", .file.display())]
    Syntax {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

impl From<LoadError> for Error {
    fn from(e: LoadError) -> Error {
        let err = Error::config(e.to_string());
        match e {
            LoadError::NotFound(_) => err.with_hint(Remedy::CheckConfigPath),
            LoadError::Missing(_) => err.with_hint(Remedy::CreateConfig),
            LoadError::Unreadable { source, .. } => err.caused_by(source),
            LoadError::Syntax { .. } => {
                err.with_hint("see config/config.example.toml for every key and its meaning")
            }
        }
    }
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
pub fn locate(root: &Path, explicit: Option<&Path>) -> Result<PathBuf, LoadError> {
    if let Some(path) = explicit {
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            root.join(path)
        };
        if !path.is_file() {
            return Err(LoadError::NotFound(path));
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
    Err(LoadError::Missing(dir))
}

/// [`load`], or with no config file under `root` (and none named), the defaults with no
/// environment: for the commands that need none, such as `verify PATH` on another machine.
pub fn load_or_defaults(root: &Path, explicit: Option<&Path>) -> Result<Config> {
    match locate(root, explicit) {
        Err(LoadError::Missing(dir)) => {
            resolve(RawConfig::default(), root, dir.join("config.toml"))
        }
        located => read(root, located?),
    }
}

/// Reads and resolves the config under `root`.
pub fn load(root: &Path, explicit: Option<&Path>) -> Result<Config> {
    read(root, locate(root, explicit)?)
}

/// The config `text` would be as the project's config `file` at `root` (the hook: what an edit
/// would make of it).
pub fn from_text(root: &Path, file: &Path, text: &str) -> Result<Config> {
    let raw = parse(file, text)?;
    resolve(raw, root, file.to_path_buf())
}

/// Reads and resolves the config `file` of the project at `root`.
fn read(root: &Path, file: PathBuf) -> Result<Config> {
    let text = std::fs::read_to_string(&file).map_err(|source| LoadError::Unreadable {
        path: file.clone(),
        source,
    })?;
    let raw = parse(&file, &text)?;
    resolve(raw, root, file)
}

pub(super) fn parse(file: &Path, text: &str) -> Result<RawConfig, LoadError> {
    let is_json = file.extension().is_some_and(|e| e == "json");
    let syntax = |line, column, message| LoadError::Syntax {
        file: file.to_path_buf(),
        line,
        column,
        message,
    };
    if is_json {
        serde_json::from_str(text)
            .map_err(|e| syntax(e.line(), e.column(), strip_position(&e.to_string())))
    } else {
        toml::from_str(text).map_err(|e| {
            let (line, col) = e.span().map_or((1, 1), |span| line_col(text, span.start));
            syntax(line, col, e.message().trim().to_string())
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
                .map_err(Error::from)
                .and_then(|raw| resolve(raw, Path::new("/p"), PathBuf::from("config.json")))
            {
                Ok(_) => {}
                Err(e) => proptest::prop_assert!(e.kind() == crate::error::Kind::Config, "{}", e.one_line()),
            }
        }
    }
    #[test]
    fn a_missing_config_is_told_apart_and_says_what_to_do() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(PLUGIN_DIR);
        assert!(matches!(locate(root.path(), None), Err(LoadError::Missing(d)) if d == dir));
        // Not a failure where the defaults will do.
        assert!(load_or_defaults(root.path(), None).is_ok());
        let e = Error::from(locate(root.path(), None).unwrap_err());
        assert_eq!(e.kind(), crate::error::Kind::Config);
        assert_eq!(
            e.message(),
            format!("no faber-db config found in {}", dir.display())
        );
        assert_eq!(e.hints(), [Remedy::CreateConfig.into()]);
        let named = Error::from(locate(root.path(), Some(Path::new("x.toml"))).unwrap_err());
        assert_eq!(named.hints(), [Remedy::CheckConfigPath.into()]);
        assert!(load_or_defaults(root.path(), Some(Path::new("x.toml"))).is_err());
    }

    #[test]
    fn an_unreadable_config_keeps_its_io_error_as_the_cause() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(PLUGIN_DIR);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.toml"), b"\xff\xfe not text").unwrap();
        let e = load(root.path(), None).unwrap_err();
        assert!(e.message().starts_with("cannot read "), "{}", e.message());
        let io = std::error::Error::source(&e)
            .and_then(|s| s.downcast_ref::<io::Error>())
            .expect("the io::Error");
        assert_eq!(io.kind(), io::ErrorKind::InvalidData);
        assert_eq!(e.causes()[0].as_str(), io.to_string());
    }

    #[test]
    fn a_syntax_error_names_the_file_line_and_column() {
        let e = parse(Path::new("c.json"), "{\n  \"environments\": ]").unwrap_err();
        assert!(matches!(e, LoadError::Syntax { line: 2, .. }), "{e:?}");
        let e = Error::from(e);
        assert!(e.message().starts_with("c.json:2:"), "{}", e.message());
        assert!(e.causes().is_empty());
        let e = parse(Path::new("c.toml"), "[environments\n").unwrap_err();
        assert!(e.to_string().starts_with("c.toml:1:"), "{e}");
    }

    #[test]
    fn positions() {
        assert_eq!(line_col("a\nbc\nd", 3), (2, 2));
        assert_eq!(line_col("abc", 0), (1, 1));
    }
}
