//! Connection URLs: parsed, resolved against the project root, and shown only redacted.

use std::fmt;
use std::path::{Path, PathBuf};

use super::ProviderKind;
use crate::error::{Error, Result};

/// Where Prisma keeps its schema, relative to the project root.
const PRISMA_SCHEMA: &str = "prisma/schema.prisma";

#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite:PATH` or `sqlite://PATH`, resolved against the project root.
    Sqlite(PathBuf),
    /// `postgres://…`, `mysql://…` and friends.
    Server { kind: ProviderKind, url: ::url::Url },
}

impl DatabaseUrl {
    pub fn parse(raw: &str, root: &Path) -> Result<DatabaseUrl> {
        let raw = raw.trim();
        let scheme = raw
            .split_once(':')
            .map(|(s, _)| s.to_ascii_lowercase())
            .unwrap_or_default();
        match scheme.as_str() {
            "sqlite" | "sqlite3" | "file" => {
                let rest = &raw[scheme.len() + 1..];
                let rest = rest.strip_prefix("//").unwrap_or(rest);
                let path = rest.split('?').next().unwrap_or("");
                if path.is_empty() || path == ":memory:" {
                    return Err(Error::config("the sqlite URL names no database file")
                        .with_hint("use sqlite:path/to/db.sqlite3 (relative to the project root) or sqlite:///absolute/path"));
                }
                let path = Path::new(path);
                // Prisma takes a relative `file:` path from the schema's directory.
                let base = if scheme == "file" && root.join(PRISMA_SCHEMA).is_file() {
                    root.join("prisma")
                } else {
                    root.to_path_buf()
                };
                Ok(DatabaseUrl::Sqlite(if path.is_absolute() {
                    path.to_path_buf()
                } else {
                    base.join(path)
                }))
            }
            "postgres" | "postgresql" | "mysql" | "mariadb" => {
                let url = ::url::Url::parse(raw).map_err(|e| {
                    let form = if scheme.starts_with("postgres") {
                        "postgres://user@host:5432/dbname"
                    } else {
                        "mysql://user@host:3306/dbname"
                    };
                    Error::config(format!("invalid {scheme} URL")).caused_by(e).with_hint(format!(
                        "the form is {form} (the password comes from the variable, percent-encoded)"
                    ))
                })?;
                let kind = if scheme.starts_with("postgres") {
                    ProviderKind::Postgres
                } else {
                    ProviderKind::Mysql
                };
                Ok(DatabaseUrl::Server { kind, url })
            }
            _ => Err(Error::config(format!(
                "unsupported database URL scheme `{}`",
                crate::ids::shorten(&scheme)
            ))
            .with_hint("use sqlite:PATH (or Prisma's file:PATH), postgres://… or mysql://…")),
        }
    }

    pub fn kind(&self) -> ProviderKind {
        match self {
            DatabaseUrl::Sqlite(_) => ProviderKind::Sqlite,
            DatabaseUrl::Server { kind, .. } => *kind,
        }
    }

    /// The URL with any password replaced by `***`: the only form ever shown.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(path) => format!("sqlite:{}", path.display()),
            DatabaseUrl::Server { url, .. } => {
                let mut shown = url.clone();
                if shown.password().is_some() {
                    let _ = shown.set_password(Some("***"));
                }
                if url.query_pairs().any(|(k, _)| is_secret_param(&k)) {
                    let pairs: Vec<(String, String)> = url
                        .query_pairs()
                        .map(|(k, v)| {
                            let v = if is_secret_param(&k) {
                                "***".to_string()
                            } else {
                                v.into_owned()
                            };
                            (k.into_owned(), v)
                        })
                        .collect();
                    shown.query_pairs_mut().clear().extend_pairs(pairs);
                }
                shown.to_string()
            }
        }
    }
}

impl DatabaseUrl {
    /// The secrets the URL carries (its password, as written and decoded, and secret query
    /// parameters), to blank out of text that might echo them.
    pub fn secrets(&self) -> Vec<String> {
        let DatabaseUrl::Server { url, .. } = self else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Some(pw) = url.password() {
            out.push(pw.to_string());
            out.push(
                percent_encoding::percent_decode_str(pw)
                    .decode_utf8_lossy()
                    .into_owned(),
            );
        }
        for (k, v) in url.query_pairs() {
            if is_secret_param(&k) {
                out.push(v.into_owned());
            }
        }
        out.retain(|s| !s.is_empty());
        out.sort();
        out.dedup();
        // Longest first, so that a secret containing another is blanked whole.
        out.sort_by_key(|s| std::cmp::Reverse(s.len()));
        out
    }
}

/// Text with every one of `secrets` replaced by `***`.
pub fn blank_out(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .fold(text.to_string(), |t, s| t.replace(s.as_str(), "***"))
}

/// Query parameters that carry a secret (libpq's `password`, and the like).
pub fn is_secret_param(key: &str) -> bool {
    matches!(
        key.to_ascii_lowercase().as_str(),
        "password" | "pass" | "passwd" | "sslpassword"
    )
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths_resolve_against_root() {
        let root = Path::new("/proj");
        assert_eq!(
            DatabaseUrl::parse("sqlite:db/dev.sqlite3", root).unwrap(),
            DatabaseUrl::Sqlite("/proj/db/dev.sqlite3".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite://db/x.db?mode=ro", root).unwrap(),
            DatabaseUrl::Sqlite("/proj/db/x.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///abs/x.db", root).unwrap(),
            DatabaseUrl::Sqlite("/abs/x.db".into())
        );
        assert!(DatabaseUrl::parse("sqlite:", root).is_err());
        // Prisma's SQLite URLs.
        assert_eq!(
            DatabaseUrl::parse("file:./dev.db", root).unwrap(),
            DatabaseUrl::Sqlite("/proj/./dev.db".into())
        );
        let hint = |raw: &str| {
            DatabaseUrl::parse(raw, root).unwrap_err().hints()[0]
                .as_text()
                .unwrap()
                .to_string()
        };
        assert!(hint("mysql://u@[bad/db").contains("mysql://user@host:3306"));
        assert!(hint("postgres://u@[bad/db").contains("postgres://user@host:5432"));
        assert!(DatabaseUrl::parse("ftp://x", root).is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        let u = DatabaseUrl::parse("postgres://app:s3cret@db.example:5432/app", Path::new("/"))
            .unwrap();
        assert_eq!(u.redacted(), "postgres://app:***@db.example:5432/app");
        assert!(!format!("{u:?}").contains("s3cret"));
        let q = DatabaseUrl::parse(
            "postgres://app@db/app?sslmode=require&password=s3cret",
            Path::new("/"),
        )
        .unwrap();
        assert!(!q.redacted().contains("s3cret"), "{}", q.redacted());
        assert!(q.redacted().contains("sslmode=require"));
        let e = DatabaseUrl::parse("postgres://app:p%40ss@db/app", Path::new("/")).unwrap();
        assert_eq!(
            blank_out("url postgres://app:p%40ss@db, password p@ss", &e.secrets()),
            "url postgres://app:***@db, password ***"
        );
        assert_eq!(blank_out("echo s3cret", &q.secrets()), "echo ***");
    }
}
