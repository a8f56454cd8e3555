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
    /// Whether `self` and `other` may reach the same database, whoever connects and however:
    /// the same file, or the same database name on the same port of hosts that may be the same
    /// (every local host and socket counts as one). Errs towards yes.
    pub fn same_database(&self, other: &DatabaseUrl) -> bool {
        match (self, other) {
            (DatabaseUrl::Sqlite(a), DatabaseUrl::Sqlite(b)) => {
                a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
            }
            (
                DatabaseUrl::Server { kind: ka, url: a },
                DatabaseUrl::Server { kind: kb, url: b },
            ) => {
                ka == kb && server_host(a) == server_host(b) && port(*ka, a) == port(*kb, b) && {
                    let name = |u: &::url::Url| {
                        percent_encoding::percent_decode_str(u.path().trim_start_matches('/'))
                            .decode_utf8_lossy()
                            .into_owned()
                    };
                    name(a) == name(b)
                }
            }
            _ => false,
        }
    }

    /// Whether `self` and `other` name the same database, on whatever host and port: the same
    /// file, or the same kind of server and the same database name. Wider than
    /// [`Self::same_database`] — a host known by two names (a DNS alias, a pooler in front of the
    /// server, the machine's own name for it) cannot be told apart from the URLs alone — for
    /// where erring towards yes costs nothing: which variables a rehearsal points at its copy.
    pub fn names_same_database(&self, other: &DatabaseUrl) -> bool {
        match (self, other) {
            (
                DatabaseUrl::Server { kind: ka, url: a },
                DatabaseUrl::Server { kind: kb, url: b },
            ) => {
                let name = |u: &::url::Url| {
                    percent_encoding::percent_decode_str(u.path().trim_start_matches('/'))
                        .decode_utf8_lossy()
                        .into_owned()
                };
                ka == kb && name(a) == name(b)
            }
            _ => self.same_database(other),
        }
    }

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

/// The host a server URL reaches, lower-cased, a `host=` parameter (a socket directory) taking
/// the place of the authority's; every local host and socket as one, `local`.
fn server_host(url: &::url::Url) -> String {
    let host = url
        .query_pairs()
        .find(|(k, _)| k == "host" || k == "socket")
        .map(|(_, v)| v.into_owned())
        .or_else(|| url.host_str().map(str::to_string))
        .unwrap_or_default()
        .to_ascii_lowercase();
    let local = host.is_empty()
        || host.starts_with('/')
        || matches!(host.as_str(), "localhost" | "127.0.0.1" | "[::1]" | "::1");
    if local { "local".to_string() } else { host }
}

/// The port a server URL reaches, the default when it names none.
fn port(kind: ProviderKind, url: &::url::Url) -> u16 {
    url.port().unwrap_or(match kind {
        ProviderKind::Mysql => 3306,
        _ => 5432,
    })
}

/// Query parameters by which a client may pick a database other than the one the URL's path
/// names (libpq takes a `dbname` parameter over the path).
const DATABASE_PARAMS: [&str; 2] = ["dbname", "database"];

/// `raw` — a URL as written, password included — naming database `database` instead of its own:
/// how a child process is pointed at a scratch database. For SQLite, `database` is the copy's
/// absolute path, under `raw`'s scheme (`sqlite:` or Prisma's `file:`); for a server, the path
/// is replaced and any parameter that could pick another database is left out. Never shown: it
/// carries the password. Fails rather than give back anything else.
pub fn naming(raw: &str, root: &Path, database: &str) -> Result<String> {
    let built = match DatabaseUrl::parse(raw, root)? {
        DatabaseUrl::Sqlite(_) => {
            if !Path::new(database).is_absolute() {
                return Err(Error::tool(
                    "a scratch copy of an SQLite database must have an absolute path",
                ));
            }
            let scheme = raw
                .trim()
                .split_once(':')
                .map(|(s, _)| s.to_ascii_lowercase());
            match scheme.as_deref() {
                Some("file") => format!("file:{database}"),
                _ => format!("sqlite:{database}"),
            }
        }
        DatabaseUrl::Server { mut url, .. } => {
            const KEPT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
                .remove(b'_')
                .remove(b'-')
                .remove(b'.');
            let name = percent_encoding::utf8_percent_encode(database, KEPT).to_string();
            url.set_path(&format!("/{name}"));
            let kept: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(k, _)| !DATABASE_PARAMS.contains(&k.to_ascii_lowercase().as_str()))
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            if kept.is_empty() {
                url.set_query(None);
            } else {
                url.query_pairs_mut().clear().extend_pairs(kept);
            }
            url.to_string()
        }
    };
    Ok(built)
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
    fn a_url_naming_another_database_keeps_the_server_and_drops_database_parameters() {
        let root = Path::new("/proj");
        assert_eq!(
            naming(
                "postgres://app:p%40ss@db:6543/shop?sslmode=require&dbname=shop",
                root,
                "shop__faber_rehearse_1f"
            )
            .unwrap(),
            "postgres://app:p%40ss@db:6543/shop__faber_rehearse_1f?sslmode=require"
        );
        assert_eq!(
            naming("mysql://root@127.0.0.1:3306/shop?DATABASE=x", root, "a b").unwrap(),
            "mysql://root@127.0.0.1:3306/a%20b"
        );
        assert_eq!(
            naming("file:./dev.db", root, "/b/.scratch/rehearse-1.sqlite3").unwrap(),
            "file:/b/.scratch/rehearse-1.sqlite3"
        );
        assert_eq!(
            naming("sqlite://db/x.db", root, "/b/rehearse-1.sqlite3").unwrap(),
            "sqlite:/b/rehearse-1.sqlite3"
        );
        assert!(naming("sqlite:db/x.db", root, "relative.sqlite3").is_err());
        assert!(naming("ftp://x", root, "/a").is_err());
    }

    #[test]
    fn urls_of_the_same_database_are_told_whoever_connects() {
        let root = Path::new("/proj");
        let same = |a: &str, b: &str| {
            DatabaseUrl::parse(a, root)
                .unwrap()
                .same_database(&DatabaseUrl::parse(b, root).unwrap())
        };
        assert!(same(
            "postgres://app:x@127.0.0.1:5432/shop",
            "postgresql://admin@localhost:5432/shop?sslmode=disable"
        ));
        assert!(same(
            "postgres:///shop?host=/run/pg",
            "postgres://app@localhost/shop"
        ));
        assert!(same(
            "postgres://app@db1/shop",
            "postgres://app@DB1:5432/shop"
        ));
        assert!(!same("postgres://app@db1/shop", "postgres://app@db2/shop"));
        assert!(!same(
            "postgres://app@db1/shop",
            "postgres://app@db1/shop_shadow"
        ));
        assert!(!same(
            "postgres://app@db1:5432/shop",
            "postgres://app@db1:6432/shop"
        ));
        assert!(!same("postgres://app@db1/shop", "mysql://app@db1/shop"));
        assert!(same("sqlite:db/x.db", "file:///proj/db/x.db"));
        let named = |a: &str, b: &str| {
            DatabaseUrl::parse(a, root)
                .unwrap()
                .names_same_database(&DatabaseUrl::parse(b, root).unwrap())
        };
        assert!(named(
            "postgres://app@pooler.example:6432/shop",
            "postgres://app@db.example:5432/sh%6Fp"
        ));
        assert!(!named(
            "postgres://app@db1/shop",
            "postgres://app@db1/shop2"
        ));
        assert!(!named("postgres://app@db1/shop", "mysql://app@db1/shop"));
        assert!(named("sqlite:db/x.db", "file:///proj/db/x.db"));
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
