//! Variables a run can see: the process environment, then `.env.local`, then `.env` in the root.
//! A dotenv file never overrides a variable that is already set; `.env.local` (the machine's own
//! overrides, usually not committed) wins over `.env`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default)]
pub struct Vars {
    values: BTreeMap<String, String>,
}

impl Vars {
    /// The process environment plus the dotenv files found in `root`.
    pub fn load(root: &Path) -> Result<Vars> {
        Vars::load_with(root, false)
    }

    /// [`Vars::load`], a dotenv line that cannot be read skipped rather than an error (the hook:
    /// a `.env` faber-db cannot read must not turn the guard off).
    pub fn load_lenient(root: &Path) -> Vars {
        Vars::load_with(root, true).unwrap_or_default()
    }

    fn load_with(root: &Path, lenient: bool) -> Result<Vars> {
        let mut vars = Vars {
            values: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        };
        for name in [".env.local", ".env"] {
            let path = root.join(name);
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            for (line_no, line) in text.lines().enumerate() {
                match parse_line(line) {
                    // Set variables win; an empty one counts as unset.
                    Ok(Some((k, v))) => {
                        let slot = vars.values.entry(k).or_default();
                        if slot.is_empty() {
                            *slot = v;
                        }
                    }
                    Ok(None) => {}
                    Err(_) if lenient => {}
                    Err(what) => {
                        return Err(Error::config(format!(
                            "{}:{}: {what}",
                            path.display(),
                            line_no + 1
                        ))
                        .with_hint(
                            "dotenv lines look like KEY=value, `export KEY=value` or # comments",
                        ));
                    }
                }
            }
        }
        Ok(vars)
    }

    /// Every variable set (not empty), by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Sets `key` for this run's lookups (the hook: a variable the command it judges sets).
    pub fn set(&mut self, key: &str, value: &str) {
        self.values.insert(key.to_string(), value.to_string());
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

impl FromIterator<(String, String)> for Vars {
    /// Exactly these variables, without the process environment (tests, a child's own set).
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Vars {
        Vars {
            values: pairs.into_iter().collect(),
        }
    }
}

/// The variables a dotenv file sets, in order (a line that cannot be read is skipped).
pub fn read_file(path: &Path) -> std::io::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|l| parse_line(l).ok().flatten())
        .collect())
}

/// One dotenv line: `KEY=value`, `export KEY=value`, quoted values, `#` comments.
fn parse_line(line: &str) -> std::result::Result<Option<(String, String)>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
    let Some((key, value)) = line.split_once('=') else {
        return Err("expected KEY=value".to_string());
    };
    let key = key.trim();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("invalid variable name `{key}`"));
    }
    let value = value.trim();
    let value = if let Some(inner) = value.strip_prefix('"') {
        let end = inner.rfind('"').ok_or("unterminated double quote")?;
        inner[..end].replace("\\n", "\n").replace("\\\"", "\"")
    } else if let Some(inner) = value.strip_prefix('\'') {
        let end = inner.rfind('\'').ok_or("unterminated single quote")?;
        inner[..end].to_string()
    } else {
        // An unquoted value ends at ` #` (an inline comment).
        value
            .split(" #")
            .next()
            .unwrap_or("")
            .trim_end()
            .to_string()
    };
    Ok(Some((key.to_string(), value)))
}

#[cfg(test)]
mod tests {
    use super::parse_line;

    #[test]
    fn dotenv_lines() {
        let kv = |k: &str, v: &str| Some((k.to_string(), v.to_string()));
        assert_eq!(parse_line("A=1"), Ok(kv("A", "1")));
        assert_eq!(parse_line("export B = two # note"), Ok(kv("B", "two")));
        assert_eq!(parse_line("C=\"x # y\""), Ok(kv("C", "x # y")));
        assert_eq!(parse_line("D='$HOME'"), Ok(kv("D", "$HOME")));
        assert_eq!(parse_line("# comment"), Ok(None));
        assert!(parse_line("no equals").is_err());
        assert!(parse_line("BAD KEY=1").is_err());
    }
}
