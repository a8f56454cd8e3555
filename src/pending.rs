//! Migration files on disk, and which of them the database has not applied yet.
//!
//! Layouts read: Prisma (`<dir>/<name>/migration.sql`), Diesel (`<dir>/<name>/up.sql`), and flat
//! files (`<dir>/<name>.sql`, `<name>.up.sql`) as sqlx, refinery, Flyway, dbmate and
//! golang-migrate write them; `*.down.sql` and Flyway's undo files (`U…`) are not migrations.
//! A file counts as applied when the migration table holds its name (Prisma) or its version,
//! compared as numbers: the leading version's parts split at `.` and `_` (`V1_2` → 1.2, `1.10` is
//! not `11.0`), dashes joined (Diesel's `2024-01-01-000000` → 20240101000000), leading zeros
//! dropped (`000001` is 1) and trailing zero parts too (`1.0` is 1). golang-migrate keeps only
//! its current version: every file up to it counts as applied.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Kind, Result};
use crate::migrations::MigrationState;

/// One migration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationFile {
    /// The migration's name: the directory's for Prisma and Diesel, the file's stem otherwise.
    pub name: String,
    pub path: PathBuf,
}

/// Where migration files are looked for when the config names no directory, relative to the
/// project root.
pub const DEFAULT_DIRS: [&str; 3] = ["prisma/migrations", "migrations", "db/migrations"];

/// The migration files under `dir`, oldest first.
pub fn files(dir: &Path) -> Result<Vec<MigrationFile>> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io(Kind::Config, "cannot read", dir, e))?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if path.is_dir() {
            for inner in ["migration.sql", "up.sql"] {
                let file = path.join(inner);
                if file.is_file() {
                    out.push(MigrationFile {
                        name: name.clone(),
                        path: file,
                    });
                    break;
                }
            }
            continue;
        }
        let Some(stem) = name.strip_suffix(".sql") else {
            continue;
        };
        let undo = stem.ends_with(".down")
            || stem.ends_with(".undo")
            || (stem.starts_with('U') && stem[1..].starts_with(|c: char| c.is_ascii_digit()));
        if undo {
            continue;
        }
        out.push(MigrationFile {
            name: stem.strip_suffix(".up").unwrap_or(stem).to_string(),
            path,
        });
    }
    // By version where there is one (dates and counters alike), then by name.
    out.sort_by_key(|f| {
        let version = version_key(&f.name);
        (version.is_empty(), version, f.name.clone())
    });
    Ok(out)
}

/// The files `state` does not list as applied (all of them when there is no state).
pub fn pending(files: &[MigrationFile], state: Option<&MigrationState>) -> Vec<MigrationFile> {
    let Some(state) = state else {
        return files.to_vec();
    };
    let applied: Vec<Vec<u128>> = state
        .migrations_list
        .iter()
        .map(|a| version_key(a))
        .filter(|k| !k.is_empty())
        .collect();
    // golang-migrate records the version it is at, not each one applied.
    let current = (state.tool == "golang-migrate")
        .then(|| applied.iter().max().cloned())
        .flatten();
    files
        .iter()
        .filter(|f| {
            let key = version_key(&f.name);
            let done = state.migrations_list.contains(&f.name)
                || (!key.is_empty() && applied.contains(&key))
                || current
                    .as_ref()
                    .is_some_and(|c| !key.is_empty() && &key <= c);
            !done
        })
        .cloned()
        .collect()
}

/// A migration name's leading version as numbers: `20240101120000_init` → [20240101120000],
/// `V1_2__add` → [1, 2], `2024-01-01-000000_users` → [20240101000000], `000001_a` → [1],
/// `1.0` → [1]. Empty when the name does not start with a version.
pub fn version_key(name: &str) -> Vec<u128> {
    let rest = name
        .strip_prefix(['V', 'v'])
        .filter(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or(name);
    let mut parts: Vec<String> = vec![String::new()];
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        let digit_next = chars.peek().is_some_and(|n| n.is_ascii_digit());
        match c {
            '0'..='9' => parts.last_mut().expect("never empty").push(c),
            // Dashes join a date and time into one number (Diesel).
            '-' if digit_next => {}
            '.' | '_' if digit_next => parts.push(String::new()),
            _ => break,
        }
    }
    let mut key: Vec<u128> = parts.iter().map_while(|p| p.parse::<u128>().ok()).collect();
    while key.len() > 1 && key.last() == Some(&0) {
        key.pop();
    }
    key
}

/// The directory to read migration files from: the configured one, else the first of
/// [`DEFAULT_DIRS`] that exists under `root`.
pub fn directory(configured: Option<&Path>, root: &Path) -> Option<PathBuf> {
    match configured {
        Some(dir) => Some(dir.to_path_buf()),
        None => DEFAULT_DIRS
            .iter()
            .map(|d| root.join(d))
            .find(|d| d.is_dir()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(names: &[&str]) -> MigrationState {
        MigrationState {
            tool: "x".into(),
            table: "x".into(),
            applied_count: names.len() as u64,
            last_migration: names.last().map(|s| s.to_string()),
            migrations_list: names.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn version_keys_of_every_layout() {
        let cases: [(&str, &[u128]); 10] = [
            ("20240101120000_init", &[20240101120000]),
            ("V1_2__add_users", &[1, 2]),
            ("v3__x", &[3]),
            ("2024-01-01-000000_create_users", &[20240101000000]),
            ("1.2", &[1, 2]),
            ("0001_initial", &[1]),
            ("init", &[]),
            ("20240301_users", &[20240301]),
            ("1.0", &[1]),
            ("V12__drop", &[12]),
        ];
        for (name, key) in cases {
            assert_eq!(version_key(name), key, "{name}");
        }
        assert_ne!(version_key("1.10"), version_key("11.0"));
        assert_ne!(version_key("V1_2__a"), version_key("V12__b"));
    }

    #[test]
    fn versions_compare_as_numbers_and_golang_migrate_keeps_only_its_current_one() {
        let file = |name: &str| MigrationFile {
            name: name.into(),
            path: PathBuf::from(name),
        };
        let files = [file("000001_a"), file("000002_b"), file("000003_c")];
        let names = |left: Vec<MigrationFile>| left.into_iter().map(|f| f.name).collect::<Vec<_>>();
        // Every row a version (dbmate, Rails): only those listed are applied.
        assert_eq!(
            names(pending(&files, Some(&state(&["1", "3"])))),
            ["000002_b"]
        );
        // golang-migrate at version 2: 1 and 2 are applied.
        let mut current = state(&["2"]);
        current.tool = "golang-migrate".into();
        assert_eq!(names(pending(&files, Some(&current))), ["000003_c"]);
        // Flyway 1 and 1.2 applied; V12 is not 1.2.
        let flyway = [file("V1__init"), file("V1_2__more"), file("V12__drop")];
        assert_eq!(
            names(pending(&flyway, Some(&state(&["1__init", "1.2__more"])))),
            ["V12__drop"]
        );
    }

    #[test]
    fn files_of_each_layout_and_which_are_pending() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (path, sql) in [
            (
                "20240101000000_init/migration.sql",
                "CREATE TABLE a (x int);",
            ),
            (
                "20240201000000_users/migration.sql",
                "CREATE TABLE b (x int);",
            ),
            ("2024-03-01-000000_posts/up.sql", "CREATE TABLE c (x int);"),
            ("2024-03-01-000000_posts/down.sql", "DROP TABLE c;"),
            ("20240401_tags.up.sql", "CREATE TABLE d (x int);"),
            ("20240401_tags.down.sql", "DROP TABLE d;"),
            ("V5__more.sql", "CREATE TABLE e (x int);"),
            ("U5__more.sql", "DROP TABLE e;"),
            ("README.md", "not a migration"),
        ] {
            let p = d.join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, sql).unwrap();
        }
        let found = files(d).unwrap();
        let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "V5__more",
                "20240401_tags",
                "20240101000000_init",
                "20240201000000_users",
                "2024-03-01-000000_posts"
            ]
        );
        assert_eq!(pending(&found, None).len(), 5);
        // Prisma names, a Diesel version, golang-migrate's bare version, Flyway's version.
        let applied = state(&[
            "20240101000000_init",
            "20240301000000",
            "20240401",
            "5__more",
        ]);
        let left: Vec<String> = pending(&found, Some(&applied))
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(left, ["20240201000000_users"]);
    }
}
