//! Where a backup's files are. The `file` of a registry entry, of a manifest, of a manifest found
//! off-site, the directory a claim names: all of it is data that someone may have written, not a
//! promise. It becomes a path here, and only here: every command that opens, writes, renames or
//! unlinks a backup's data or manifest gets the path from [`Locator::locate`].
//!
//! A backup's files are `<ENV>/<ID>.<ext>` inside the backup directory, or `<DIR>/<ID>.<ext>`
//! in a directory given to `backup --output-dir` that this project recorded itself (in
//! [`ELSEWHERE_FILE`], under the registry lock, before the backup was written — never taken
//! from the entry). Anything else is refused: absolute paths elsewhere, `..`, a name that is not
//! the backup's own, a directory that is a symbolic link leading out, a file that is a link.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Remedy, Result};
use crate::fsutil;
use crate::ids;

/// The manifests of the backups written outside the environment directories (`backup
/// --output-dir`), as absolute paths: the only places outside the backup directory where a
/// backup's files may be, and what `doctor --repair` reads besides the environment directories.
pub const ELSEWHERE_FILE: &str = "other-manifests.json";
/// The same list as earlier versions wrote it: one path a line (which a path holding a newline
/// broke). Read, merged into [`ELSEWHERE_FILE`] at the next write, then removed.
pub const LEGACY_ELSEWHERE_FILE: &str = "other-manifests.txt";
const ELSEWHERE_VERSION: u32 = 1;

const MANIFEST_SUFFIX: &str = ".manifest.json";

/// A backup's data and manifest, checked to lie where this project keeps backups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The data file, or the directory of a directory dump.
    pub data: PathBuf,
    /// `<ID>.manifest.json` beside it.
    pub manifest: PathBuf,
    /// Whether it lies in a recorded `--output-dir` rather than an environment directory.
    pub elsewhere: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct ElsewhereList {
    version: u32,
    manifests: Vec<String>,
}

/// The manifests recorded in [`ELSEWHERE_FILE`] (and the legacy text file) of `backup_dir`.
pub fn recorded_elsewhere(backup_dir: &Path) -> Vec<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut out: BTreeSet<PathBuf> = BTreeSet::new();
    if let Ok(text) = fs::read_to_string(backup_dir.join(ELSEWHERE_FILE))
        && let Ok(list) = serde_json::from_str::<ElsewhereList>(&text)
    {
        out.extend(list.manifests.into_iter().map(PathBuf::from));
    }
    if let Ok(bytes) = fs::read(backup_dir.join(LEGACY_ELSEWHERE_FILE)) {
        out.extend(
            bytes
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| PathBuf::from(std::ffi::OsStr::from_bytes(l))),
        );
    }
    out.into_iter().filter(|p| p.is_absolute()).collect()
}

/// Adds `manifest` to [`ELSEWHERE_FILE`] (the legacy list merged in and removed). The caller
/// holds the registry lock. A path that is not UTF-8 cannot be recorded (nor named by an entry).
pub fn remember_elsewhere(backup_dir: &Path, manifest: &Path) -> Result<()> {
    let Some(text) = manifest.to_str() else {
        return Err(Error::config(format!(
            "{} is not UTF-8, which a registry entry cannot name",
            manifest.display()
        ))
        .with_hint("choose an --output-dir whose path is UTF-8"));
    };
    let mut all: BTreeSet<String> = recorded_elsewhere(backup_dir)
        .into_iter()
        .filter_map(|p| p.to_str().map(str::to_string))
        .collect();
    all.insert(text.to_string());
    let list = ElsewhereList {
        version: ELSEWHERE_VERSION,
        manifests: all.into_iter().collect(),
    };
    let mut bytes = serde_json::to_vec_pretty(&list).expect("the list serializes");
    bytes.push(b'\n');
    fsutil::write_atomic(&backup_dir.join(ELSEWHERE_FILE), &bytes)?;
    let _ = fs::remove_file(backup_dir.join(LEGACY_ELSEWHERE_FILE));
    Ok(())
}

/// What a name in a directory is, as far as locating a backup cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    Absent,
    Link,
    Other,
}

impl Entry {
    fn of(meta: io::Result<fs::Metadata>) -> Entry {
        match meta {
            Err(_) => Entry::Absent,
            Ok(m) if m.file_type().is_symlink() => Entry::Link,
            Ok(_) => Entry::Other,
        }
    }
}

/// The names in the directories backups were looked for in, each directory read once (see
/// [`Locator::locate_listed`]).
#[derive(Debug, Default)]
pub struct Listing {
    dirs: std::cell::RefCell<HashMap<PathBuf, HashMap<OsString, Entry>>>,
}

impl Listing {
    fn entry(&self, path: &Path) -> Entry {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Entry::of(fs::symlink_metadata(path));
        };
        let mut dirs = self.dirs.borrow_mut();
        let names = dirs
            .entry(dir.to_path_buf())
            .or_insert_with(|| read_names(dir));
        names.get(name).copied().unwrap_or(Entry::Absent)
    }
}

/// Every name in `dir` and what it is (from the directory itself where the file system says,
/// else from a `stat` of the name); nothing when it cannot be read.
fn read_names(dir: &Path) -> HashMap<OsString, Entry> {
    let Ok(read) = fs::read_dir(dir) else {
        return HashMap::new();
    };
    read.flatten()
        .map(|e| {
            let kind = match e.file_type() {
                Ok(t) if t.is_symlink() => Entry::Link,
                Ok(_) => Entry::Other,
                Err(_) => Entry::of(fs::symlink_metadata(e.path())),
            };
            (e.file_name(), kind)
        })
        .collect()
}

/// Turns the `file` of backups into paths, remembering what it resolved (the backup directory,
/// each environment directory, the recorded list) for the next one.
#[derive(Debug)]
pub struct Locator {
    root: PathBuf,
    /// Per environment: whether its directory is (or would be) a real directory inside.
    env_ok: std::cell::RefCell<BTreeMap<String, std::result::Result<(), String>>>,
    /// The directories of recorded manifests, by backup ID: read once, when first needed.
    elsewhere: std::cell::OnceCell<BTreeMap<String, BTreeSet<PathBuf>>>,
}

impl Locator {
    pub fn new(backup_dir: &Path) -> Locator {
        Locator {
            root: backup_dir.to_path_buf(),
            env_ok: std::cell::RefCell::default(),
            elsewhere: std::cell::OnceCell::default(),
        }
    }

    /// The files of backup `id` of environment `env`, whose data the record names `file`.
    pub fn locate(&self, id: &str, env: &str, file: &str) -> Result<Located> {
        self.check(id, env, file, &|p| Entry::of(fs::symlink_metadata(p)))
            .map_err(|why| refused(id, file, &why))
    }

    /// [`Locator::locate`], and whether the data is here, for listing thousands of backups:
    /// each directory is read once (`listing` keeps what it held) instead of three `stat`s a
    /// backup. What it says is as of that read; a command that opens the file uses `locate`.
    pub fn locate_listed(
        &self,
        id: &str,
        env: &str,
        file: &str,
        listing: &Listing,
    ) -> Result<(Located, bool)> {
        let located = self
            .check(id, env, file, &|p| listing.entry(p))
            .map_err(|why| refused(id, file, &why))?;
        let here = listing.entry(&located.data) == Entry::Other;
        Ok((located, here))
    }

    fn check(
        &self,
        id: &str,
        env: &str,
        file: &str,
        entry: &dyn Fn(&Path) -> Entry,
    ) -> std::result::Result<Located, String> {
        if ids::validate_id(id).is_err() {
            return Err("its ID is not a backup ID".into());
        }
        if !ids::is_valid_env_name(env) {
            return Err(format!(
                "its environment `{}` is not an environment name",
                ids::shorten(env)
            ));
        }
        let name = plain_name_of(file, id)?;
        let path = Path::new(file);
        let (data, elsewhere) = if path.is_absolute() {
            let dir = path.parent().unwrap_or(Path::new("/"));
            if !self.is_recorded_dir(id, dir) {
                return Err(format!(
                    "{} is outside the backup directory and not an --output-dir this project recorded for it",
                    dir.display()
                ));
            }
            (fsutil::resolved(dir).join(name), true)
        } else {
            let parts: Vec<&str> = file.split('/').collect();
            if parts.len() != 2 || parts[0] != env {
                return Err(format!(
                    "a backup of `{env}` lies in the backup directory's `{env}/`, not at `{}`",
                    ids::shorten(file)
                ));
            }
            self.env_dir_ok(env)?;
            (self.root.join(env).join(name), false)
        };
        let manifest = data.with_file_name(format!("{id}{MANIFEST_SUFFIX}"));
        for p in [&data, &manifest] {
            if entry(p) == Entry::Link {
                return Err(format!(
                    "{} is a symbolic link, which faber-db never writes",
                    p.display()
                ));
            }
        }
        Ok(Located {
            data,
            manifest,
            elsewhere,
        })
    }

    /// Whether `<backup dir>/<env>` is a directory of its own inside the backup directory (or
    /// not there yet), not a link leading elsewhere.
    fn env_dir_ok(&self, env: &str) -> std::result::Result<(), String> {
        if let Some(known) = self.env_ok.borrow().get(env) {
            return known.clone();
        }
        let dir = self.root.join(env);
        let verdict = match fs::symlink_metadata(&dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("{} cannot be read: {e}", dir.display())),
            // A link, even one that leads back inside, is not what faber-db creates.
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(format!(
                "{} is not a directory of the backup directory's own (a link leading elsewhere?)",
                dir.display()
            )),
        };
        self.env_ok
            .borrow_mut()
            .insert(env.to_string(), verdict.clone());
        verdict
    }

    /// Whether `dir` is where this project recorded that backup `id` is written (`backup
    /// --output-dir`).
    pub fn is_recorded_dir(&self, id: &str, dir: &Path) -> bool {
        self.elsewhere()
            .get(id)
            .is_some_and(|dirs| dirs.contains(&fsutil::resolved(dir)))
    }

    fn elsewhere(&self) -> &BTreeMap<String, BTreeSet<PathBuf>> {
        self.elsewhere.get_or_init(|| {
            let mut by_id: BTreeMap<String, BTreeSet<PathBuf>> = BTreeMap::new();
            for manifest in recorded_elsewhere(&self.root) {
                let (Some(dir), Some(name)) = (manifest.parent(), manifest.file_name()) else {
                    continue;
                };
                let Some(id) = name.to_str().and_then(|n| n.strip_suffix(MANIFEST_SUFFIX)) else {
                    continue;
                };
                by_id
                    .entry(id.to_string())
                    .or_default()
                    .insert(dir.to_path_buf());
            }
            by_id
        })
    }
}

/// The last part of `file`, checked: `file` has no empty, `.` or `..` part and no NUL, and its
/// last part is backup `id`'s data — `<id>.<extension>` — not its manifest or a work file.
fn plain_name_of<'a>(file: &'a str, id: &str) -> std::result::Result<&'a str, String> {
    let shown = ids::shorten(file);
    if file.contains('\0') {
        return Err("its path holds a NUL byte".into());
    }
    let body = file.strip_prefix('/').unwrap_or(file);
    if body
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(format!(
            "`{shown}` is not a plain path (empty, `.` or `..` parts)"
        ));
    }
    let name = body.rsplit('/').next().unwrap_or(body);
    let named_after_id = name
        .strip_prefix(id)
        .is_some_and(|rest| rest.len() > 1 && rest.starts_with('.'));
    if !named_after_id || name.ends_with(MANIFEST_SUFFIX) || name.ends_with(fsutil::PARTIAL_SUFFIX)
    {
        return Err(format!(
            "`{shown}` is not the name of its data (`{id}.<extension>`)"
        ));
    }
    Ok(name)
}

fn refused(id: &str, file: &str, why: &str) -> Error {
    Error::config(format!(
        "backup {}: its file `{}` is refused: {why}",
        ids::shorten(id),
        ids::shorten(file)
    ))
    .with_hint(Remedy::RepairRefusedEntry)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "backup-20261205-101010";

    fn setup() -> (tempfile::TempDir, Locator) {
        let root = tempfile::tempdir().unwrap();
        let backups = root.path().join("backups");
        fs::create_dir_all(backups.join("dev")).unwrap();
        let locator = Locator::new(&backups);
        (root, locator)
    }

    #[test]
    fn plain_entries_are_located_in_their_environment_directory() {
        let (root, l) = setup();
        let got = l.locate(ID, "dev", &format!("dev/{ID}.sql.gz")).unwrap();
        let dev = root.path().join("backups/dev");
        assert_eq!(got.data, dev.join(format!("{ID}.sql.gz")));
        assert_eq!(got.manifest, dev.join(format!("{ID}.manifest.json")));
        assert!(!got.elsewhere);
    }

    #[test]
    fn hostile_paths_are_refused() {
        let (root, l) = setup();
        let outside = root.path().join(format!("{ID}.sql"));
        for file in [
            format!("../{ID}.sql"),
            format!("dev/../../{ID}.sql"),
            format!("dev/../dev/{ID}.sql"),
            format!("./dev/{ID}.sql"),
            format!("dev//{ID}.sql"),
            format!("dev/./{ID}.sql"),
            format!("staging/{ID}.sql"),
            format!("dev/sub/{ID}.sql"),
            format!("{ID}.sql"),
            "dev/backup-20261205-101011.sql".to_string(),
            format!("dev/{ID}"),
            format!("dev/{ID}."),
            format!("dev/{ID}.manifest.json"),
            format!("dev/{ID}.sql.partial"),
            format!("dev/{ID}.sql\0"),
            outside.display().to_string(),
            format!("/etc/{ID}.sql"),
            "/etc/passwd".to_string(),
            String::new(),
        ] {
            let e = l.locate(ID, "dev", &file).unwrap_err();
            assert_eq!(e.kind(), crate::Kind::Config, "{file:?}");
            assert!(e.message().contains(ID), "{file:?}: {}", e.message());
        }
        assert!(l.locate("../x", "dev", "dev/../x.sql").is_err());
        assert!(l.locate(ID, "..", &format!("../{ID}.sql")).is_err());
        assert!(l.locate(ID, "dev/x", &format!("dev/x/{ID}.sql")).is_err());
    }

    #[test]
    fn a_listing_locates_as_locate_does_and_says_what_is_here() {
        let (root, l) = setup();
        let backups = root.path().join("backups");
        let dev = backups.join("dev");
        let id = |n: u32| format!("backup-20261205-1010{n:02}");
        // 0: data and manifest; 1: manifest only; 2: a directory dump; 3: the data a link;
        // 4: the manifest a link; 5: nothing at all; 6: a hostile path.
        fs::write(dev.join(format!("{}.sql.gz", id(0))), "x").unwrap();
        fs::write(dev.join(format!("{}.manifest.json", id(0))), "{}").unwrap();
        fs::write(dev.join(format!("{}.manifest.json", id(1))), "{}").unwrap();
        fs::create_dir(dev.join(format!("{}.dir", id(2)))).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dev.join(format!("{}.sql.gz", id(3)))).unwrap();
        fs::write(dev.join(format!("{}.sql.gz", id(4))), "x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dev.join(format!("{}.manifest.json", id(4))))
            .unwrap();
        let listing = Listing::default();
        let mut here = Vec::new();
        for n in 0..=6 {
            let file = match n {
                2 => format!("dev/{}.dir", id(n)),
                6 => format!("dev/../{}.sql.gz", id(n)),
                _ => format!("dev/{}.sql.gz", id(n)),
            };
            let by_stat = l.locate(&id(n), "dev", &file);
            let listed = l.locate_listed(&id(n), "dev", &file, &listing);
            assert_eq!(
                by_stat.as_ref().ok(),
                listed.as_ref().ok().map(|(located, _)| located),
                "{file}"
            );
            here.push(listed.is_ok_and(|(located, here)| {
                assert_eq!(here, located.data.exists(), "{file}");
                here
            }));
        }
        assert_eq!(here, [true, false, true, false, false, false, false]);
        // An environment directory that is not there yet: nothing in it.
        let staging = l.locate_listed(
            &id(0),
            "staging",
            &format!("staging/{}.sql", id(0)),
            &listing,
        );
        assert!(staging.is_ok_and(|(_, here)| !here));
    }

    #[test]
    fn links_leading_out_are_refused() {
        let (root, _) = setup();
        let backups = root.path().join("backups");
        let away = root.path().join("away");
        fs::create_dir(&away).unwrap();
        std::os::unix::fs::symlink(&away, backups.join("staging")).unwrap();
        let l = Locator::new(&backups);
        assert!(
            l.locate(ID, "staging", &format!("staging/{ID}.sql"))
                .is_err()
        );
        // A data file that is a link is refused too, wherever it points.
        std::os::unix::fs::symlink("/etc/passwd", backups.join(format!("dev/{ID}.sql"))).unwrap();
        assert!(l.locate(ID, "dev", &format!("dev/{ID}.sql")).is_err());
        // The backup directory itself may be a link: what counts is where it leads.
        let linked = root.path().join("linked-backups");
        std::os::unix::fs::symlink(&backups, &linked).unwrap();
        let l = Locator::new(&linked);
        assert!(l.locate(ID, "dev", &format!("dev/{ID}.sql.gz")).is_ok());
    }

    #[test]
    fn output_dirs_count_only_when_recorded_for_the_backup() {
        let (root, l) = setup();
        let backups = root.path().join("backups");
        let out = root.path().join("out\nwith a newline");
        fs::create_dir(&out).unwrap();
        let out = out.canonicalize().unwrap();
        let file = out.join(format!("{ID}.sql")).display().to_string();
        assert!(l.locate(ID, "dev", &file).is_err(), "not recorded yet");
        remember_elsewhere(&backups, &out.join(format!("{ID}.manifest.json"))).unwrap();
        let l = Locator::new(&backups);
        let got = l.locate(ID, "dev", &file).unwrap();
        assert_eq!(got.data, out.join(format!("{ID}.sql")));
        assert!(got.elsewhere);
        // Recorded for one backup, the directory is not open to another's entry.
        let other = "backup-20261205-101011";
        let file = out.join(format!("{other}.sql")).display().to_string();
        assert!(l.locate(other, "dev", &file).is_err());
        // The list survives a newline in a path, and merges the legacy text list.
        fs::write(
            backups.join(LEGACY_ELSEWHERE_FILE),
            "/old/dir/backup-1.manifest.json\n",
        )
        .unwrap();
        let listed = recorded_elsewhere(&backups);
        assert!(listed.contains(&out.join(format!("{ID}.manifest.json"))));
        assert!(listed.contains(&PathBuf::from("/old/dir/backup-1.manifest.json")));
        remember_elsewhere(&backups, &out.join(format!("{other}.manifest.json"))).unwrap();
        assert!(!backups.join(LEGACY_ELSEWHERE_FILE).exists());
        assert_eq!(recorded_elsewhere(&backups).len(), 3);
    }
}
