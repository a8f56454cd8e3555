//! Dumps that are a directory of files (`pg_dump --format=directory`): each file's SHA-256, and
//! one checksum for the whole dump — the SHA-256 of the sorted list of file digests, written the
//! way `sha256sum` prints them (`<hex>  <name>\n`), so `sha256sum * | sha256sum` in the directory
//! reproduces it by hand.

use std::fs::{self, File};
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::pipeline;

/// One file of a directory dump, as recorded in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    /// The file's name inside the dump directory.
    pub name: String,
    pub size_bytes: u64,
    pub sha256: String,
}

/// The digests of every file in `dir`, sorted by name. A dump directory holds plain files only:
/// a subdirectory, a link or a name that is not UTF-8 is an error, never silently skipped.
#[allow(
    clippy::unnecessary_debug_formatting,
    reason = "a name that is not UTF-8 is shown escaped"
)]
pub fn digest_dir(dir: &Path) -> io::Result<Vec<FileDigest>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().into_string().map_err(|n| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unexpected file name {n:?} in the dump"),
            )
        })?;
        if !entry.file_type()?.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unexpected entry `{name}` in the dump: not a plain file"),
            ));
        }
        files.push(digest_file(dir, &name)?);
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// The digest of the file `name` in `dir`. A name that is not a plain name inside `dir` (a
/// tampered record) is an error.
pub fn digest_file(dir: &Path, name: &str) -> io::Result<FileDigest> {
    check_name(name)?;
    let (sha256, size_bytes) = pipeline::hash_file(File::open(dir.join(name))?)?;
    Ok(FileDigest {
        name: name.to_string(),
        size_bytes,
        sha256,
    })
}

/// Fails unless `name` is a plain file name: what a record read from disk or off-site says a
/// dump's file is called is data, and must not lead out of the dump's directory.
pub fn check_name(name: &str) -> io::Result<()> {
    if name.is_empty() || name.contains(['/', '\0']) || name == "." || name == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("`{}` is not a file name", crate::ids::shorten(name)),
        ));
    }
    Ok(())
}

/// The path of the dump's file `name` in `dir`, once `name` is checked to be a plain name.
pub fn member(dir: &Path, name: &str) -> crate::error::Result<std::path::PathBuf> {
    check_name(name).map_err(|e| {
        crate::error::Error::verification("the backup's record names a file outside its dump")
            .caused_by(e)
            .with_hint("the record was not written by faber-db as it is; use another backup")
    })?;
    Ok(dir.join(name))
}

/// Entries of `dir` that are not among `recorded`, sorted.
pub fn unrecorded_entries(dir: &Path, recorded: &[FileDigest]) -> io::Result<Vec<String>> {
    let mut extra: Vec<String> = fs::read_dir(dir)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !recorded.iter().any(|r| &r.name == n))
        .collect();
    extra.sort();
    Ok(extra)
}

/// The checksum of a whole directory dump: SHA-256 over its sorted `sha256sum`-style list.
pub fn checksum(files: &[FileDigest]) -> String {
    let mut hasher = Sha256::new();
    for f in files {
        hasher.update(format!("{}  {}\n", f.sha256, f.name).as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// The bytes all files take.
pub fn total_size(files: &[FileDigest]) -> u64 {
    files.iter().map(|f| f.size_bytes).sum()
}

/// How the files found differ from those recorded, one phrase per file: `3901.dat.gz changed`,
/// `toc.dat missing`, `extra.txt unexpected`. Empty when they are the same.
pub fn differences(recorded: &[FileDigest], found: &[FileDigest]) -> Vec<String> {
    let mut diffs = Vec::new();
    for r in recorded {
        match found.iter().find(|f| f.name == r.name) {
            None => diffs.push(format!("{} missing", r.name)),
            Some(f) if f.sha256 != r.sha256 || f.size_bytes != r.size_bytes => {
                diffs.push(format!("{} changed", r.name));
            }
            Some(_) => {}
        }
    }
    for f in found {
        if !recorded.iter().any(|r| r.name == f.name) {
            diffs.push(format!("{} unexpected", f.name));
        }
    }
    diffs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_is_sha256sum_of_the_sorted_listing() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("toc.dat"), b"toc").unwrap();
        fs::write(dir.path().join("3001.dat.gz"), b"rows").unwrap();
        let files = digest_dir(dir.path()).unwrap();
        assert_eq!(
            files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
            ["3001.dat.gz", "toc.dat"]
        );
        assert_eq!(total_size(&files), 7);
        let listing = format!(
            "{}  3001.dat.gz\n{}  toc.dat\n",
            hex::encode(Sha256::digest(b"rows")),
            hex::encode(Sha256::digest(b"toc"))
        );
        assert_eq!(checksum(&files), hex::encode(Sha256::digest(listing)));
    }

    #[test]
    fn differences_name_each_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a"), b"1").unwrap();
        fs::write(dir.path().join("b"), b"2").unwrap();
        let recorded = digest_dir(dir.path()).unwrap();
        assert!(differences(&recorded, &recorded).is_empty());
        fs::write(dir.path().join("a"), b"X").unwrap();
        fs::remove_file(dir.path().join("b")).unwrap();
        fs::write(dir.path().join("c"), b"3").unwrap();
        let found = digest_dir(dir.path()).unwrap();
        assert_eq!(
            differences(&recorded, &found),
            ["a changed", "b missing", "c unexpected"]
        );
        assert_ne!(checksum(&recorded), checksum(&found));
        fs::create_dir(dir.path().join("sub")).unwrap();
        assert!(digest_dir(dir.path()).is_err());
    }
}
