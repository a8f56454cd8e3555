//! Finding `pg_dump`, `pg_restore` and `psql` of a major version that can handle the server: the
//! ones on PATH when new enough, else the oldest sufficient one under `/usr/lib/postgresql/*/bin`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Kind, Result};

/// Where versioned client tools live (`<dir>/<major>/bin`); `FABER_PG_LIBDIR` overrides it.
fn lib_dir() -> PathBuf {
    std::env::var_os("FABER_PG_LIBDIR")
        .map_or_else(|| PathBuf::from("/usr/lib/postgresql"), PathBuf::from)
}

/// The tool `name` of every versioned installation, oldest first.
fn versioned(name: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(lib_dir())
        .map(|dirs| {
            dirs.flatten()
                .map(|d| d.path().join("bin").join(name))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    found.sort_by_key(|p| major_of_dir(p));
    found
}

pub const INSTALL_HINT: &str = "install the PostgreSQL client tools: `apt-get install postgresql-client` (Debian/Ubuntu) or `brew install libpq` (macOS)";

#[derive(Debug, Clone)]
pub struct Tools {
    pub pg_dump: PathBuf,
    pub psql: PathBuf,
    pub pg_restore: PathBuf,
    pub pg_dump_version: String,
    pub pg_dump_major: u32,
}

/// A `pg_restore` to read archives with when no server is at hand (`verify`): the one on PATH,
/// else the newest installed. A newer pg_restore reads older archives.
pub fn pg_restore_any() -> Result<PathBuf> {
    which::which("pg_restore")
        .ok()
        .or_else(|| versioned("pg_restore").pop())
        .ok_or_else(|| {
            Error::new(
                Kind::ToolNotFound,
                "pg_restore is not installed or not on PATH",
            )
            .with_hint(INSTALL_HINT)
        })
}

/// `psql` for the first queries (before the server's version is known; `status`, `diff`): the
/// one on PATH — unless that is Debian's Perl wrapper, which picks a version anew on every call
/// (~50 ms each): then the newest installed psql itself, which talks to any older server.
pub fn psql_on_path() -> Result<PathBuf> {
    let on_path = which::which("psql").map_err(|_| {
        Error::new(Kind::ToolNotFound, "psql is not installed or not on PATH")
            .with_hint(INSTALL_HINT)
    })?;
    Ok(unwrapped(on_path, versioned("psql")))
}

/// `on_path`, or the newest of `installed` when `on_path` is Debian's wrapper.
fn unwrapped(on_path: PathBuf, mut installed: Vec<PathBuf>) -> PathBuf {
    match installed.pop() {
        Some(newest) if is_debian_wrapper(&on_path) => newest,
        _ => on_path,
    }
}

/// Whether `tool` is (a link to) Debian's `pg_wrapper`.
fn is_debian_wrapper(tool: &Path) -> bool {
    std::fs::canonicalize(tool)
        .is_ok_and(|real| real.file_name().is_some_and(|n| n == "pg_wrapper"))
}

impl Tools {
    pub fn find(server_major: u32) -> Result<Tools> {
        let mut candidates: Vec<PathBuf> = which::which("pg_dump").ok().into_iter().collect();
        candidates.extend(versioned("pg_dump"));
        if candidates.is_empty() {
            return Err(Error::new(
                Kind::ToolNotFound,
                "pg_dump is not installed or not on PATH",
            )
            .with_hint(INSTALL_HINT));
        }
        let mut seen = Vec::new();
        for pg_dump in candidates {
            let Some((major, version)) = tool_version(&pg_dump) else {
                continue;
            };
            seen.push(format!("{} ({version})", pg_dump.display()));
            if major >= server_major {
                // Debian's PATH tools are a Perl wrapper that picks a version on every call
                // (~50 ms each, and a restore makes dozens of calls): the same major's own
                // directory is used directly when it holds the same pg_dump.
                let direct = lib_dir()
                    .join(major.to_string())
                    .join("bin")
                    .join("pg_dump");
                let pg_dump = if direct != pg_dump
                    && tool_version(&direct).is_some_and(|(_, v)| v == version)
                {
                    direct
                } else {
                    pg_dump
                };
                let psql = sibling(&pg_dump, "psql")
                    .or_else(|| which::which("psql").ok())
                    .ok_or_else(|| {
                        Error::new(Kind::ToolNotFound, "psql is not installed or not on PATH")
                            .with_hint(INSTALL_HINT)
                    })?;
                let pg_restore = sibling(&pg_dump, "pg_restore")
                    .or_else(|| which::which("pg_restore").ok())
                    .ok_or_else(|| {
                        Error::new(
                            Kind::ToolNotFound,
                            "pg_restore is not installed or not on PATH",
                        )
                        .with_hint(INSTALL_HINT)
                    })?;
                return Ok(Tools {
                    pg_dump,
                    psql,
                    pg_restore,
                    pg_dump_version: version,
                    pg_dump_major: major,
                });
            }
        }
        Err(Error::new(Kind::ToolNotFound, format!("no pg_dump of version {server_major} or newer for this PostgreSQL {server_major} server"))
            .caused_by(format!("found: {}", seen.join(", ")))
            .with_hint(format!("install the PostgreSQL {server_major} client tools (e.g. postgresql-client-{server_major})")))
    }
}

/// The same tool in the directory of `tool`, if present.
fn sibling(tool: &Path, name: &str) -> Option<PathBuf> {
    let p = tool.parent()?.join(name);
    p.is_file().then_some(p)
}

fn major_of_dir(p: &Path) -> u32 {
    p.components()
        .find_map(|c| c.as_os_str().to_str()?.parse().ok())
        .unwrap_or(0)
}

/// `tool --version`, as the tool says it: `pg_restore (PostgreSQL) 15.4`; `None` when it does
/// not run.
pub fn version_line(tool: &Path) -> Option<String> {
    tool_version(tool).map(|(_, text)| text)
}

/// `pg_dump --version` → (major, "pg_dump (PostgreSQL) 15.4").
fn tool_version(tool: &Path) -> Option<(u32, String)> {
    let out = Command::new(tool).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let number = text
        .split_whitespace()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))?;
    let major = number.split('.').next()?.parse().ok()?;
    Some((major, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debians_wrapper_is_passed_over_for_the_newest_psql() {
        let dir = tempfile::tempdir().unwrap();
        let wrapper = dir.path().join("pg_wrapper");
        std::fs::write(&wrapper, "#!/usr/bin/perl\n").unwrap();
        let link = dir.path().join("psql");
        std::os::unix::fs::symlink(&wrapper, &link).unwrap();
        let installed = vec![
            PathBuf::from("/lib/14/bin/psql"),
            PathBuf::from("/lib/16/bin/psql"),
        ];
        assert_eq!(
            unwrapped(link.clone(), installed.clone()),
            PathBuf::from("/lib/16/bin/psql")
        );
        // No installed one: the wrapper all the same; a real psql on PATH: that one.
        assert_eq!(unwrapped(link, Vec::new()), dir.path().join("psql"));
        let real = dir.path().join("real-psql");
        std::fs::write(&real, "binary").unwrap();
        assert_eq!(unwrapped(real.clone(), installed), real);
    }
}
