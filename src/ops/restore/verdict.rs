//! The backup's SHA-256, computed on a thread of its own while the restore gets ready (the
//! scratch database made, the tool started), and a gate that hands none of the backup's data to
//! a tool before it matched.

use std::cell::{Cell, OnceCell};
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::thread::JoinHandle;

/// The hash of a file under way: its SHA-256 and size, or why it could not be read.
type Hashing = JoinHandle<io::Result<(String, u64)>>;

/// Whether the backup file hashed to its recorded SHA-256: asked, it waits for the hash.
pub struct Verdict {
    expected: String,
    hashing: Cell<Option<Hashing>>,
    matched: OnceCell<bool>,
}

impl Verdict {
    /// Starts hashing the file at `path`, to match `expected`.
    pub fn start(path: &Path, expected: &str) -> Self {
        let path = path.to_path_buf();
        let hashing =
            std::thread::spawn(move || File::open(&path).and_then(crate::pipeline::hash_file));
        Self {
            expected: expected.to_string(),
            hashing: Cell::new(Some(hashing)),
            matched: OnceCell::new(),
        }
    }

    /// The file hashed to the recorded SHA-256. A file that could not be read did not.
    pub fn matched(&self) -> bool {
        *self.matched.get_or_init(|| {
            self.hashing
                .take()
                .and_then(|hashing| hashing.join().ok())
                .and_then(Result::ok)
                .is_some_and(|(sha, _)| sha == self.expected)
        })
    }

    /// Refuses, as a failed read, unless the file matched.
    pub fn require(&self) -> io::Result<()> {
        if self.matched() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the backup file does not match its checksum",
            ))
        }
    }
}

/// `inner`, whose first read waits for the verdict and fails unless the file matched.
pub struct Gated<'v, R> {
    inner: R,
    verdict: Option<&'v Verdict>,
}

impl<'v, R> Gated<'v, R> {
    pub fn new(inner: R, verdict: Option<&'v Verdict>) -> Self {
        Self { inner, verdict }
    }
}

impl<R: Read> Read for Gated<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(verdict) = self.verdict {
            verdict.require()?;
            self.verdict = None;
        }
        self.inner.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn file_with(dir: &Path, bytes: &[u8]) -> std::path::PathBuf {
        let path = dir.join("backup");
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn a_file_that_hashes_to_its_checksum_opens_the_gate() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_with(dir.path(), b"the data");
        let verdict = Verdict::start(&path, &hex::encode(Sha256::digest(b"the data")));
        let mut read = String::new();
        Gated::new("the stream".as_bytes(), Some(&verdict))
            .read_to_string(&mut read)
            .unwrap();
        assert_eq!(read, "the stream");
        assert!(verdict.matched());
    }

    #[test]
    fn a_changed_file_keeps_the_gate_shut_from_the_first_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_with(dir.path(), b"the data, changed");
        let verdict = Verdict::start(&path, &hex::encode(Sha256::digest(b"the data")));
        let mut buf = [0u8; 4];
        let err = Gated::new("the stream".as_bytes(), Some(&verdict))
            .read(&mut buf)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(buf, [0u8; 4], "nothing was read");
        assert!(!verdict.matched());
    }

    #[test]
    fn a_file_that_cannot_be_read_does_not_match() {
        let dir = tempfile::tempdir().unwrap();
        let verdict = Verdict::start(&dir.path().join("gone"), "00");
        assert!(!verdict.matched());
        assert!(verdict.require().is_err());
    }
}
