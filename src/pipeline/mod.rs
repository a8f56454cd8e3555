//! The byte stream of a backup: source → compression → SHA-256 → file, in one pass, and the
//! reverse for reading a backup back.
//!
//! Writing is in `write` (compress, encrypt, hash, and decode-check as the bytes go by);
//! reading back in `read` (decrypt, decode, and check the stored SHA-256), over the file hashed
//! on a thread of its own (`hashed`). What is here: the compressions, and the small adapters
//! that count, hash or watch a stream.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

mod hashed;
mod read;
mod write;

pub use hashed::{Drain, HashedFile, hash_file};
pub use read::{Decoder, Decrypt, Decrypted, StoredReader, VerifiedDecoder};
pub use write::{Written, write_stream};

/// Buffer size for the streaming stages: large enough to keep syscalls rare.
pub const BUF_SIZE: usize = 1 << 20;

/// Stream compression applied to a dump before it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The file-name suffix this compression adds (`""`, `".gz"`, `".zst"`).
    pub fn extension(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Zstd => ".zst",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Compression {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Compression::None),
            "gzip" | "gz" => Ok(Compression::Gzip),
            "zstd" | "zst" => Ok(Compression::Zstd),
            other => Err(format!(
                "unknown compression `{other}` (expected none, gzip or zstd)"
            )),
        }
    }
}

/// Counts and hashes every byte written through it.
pub struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashWriter<W> {
    pub fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// The inner writer, the hex SHA-256 and the byte count of what went through.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, hex::encode(self.hasher.finalize()), self.bytes)
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `io::copy` with a [`BUF_SIZE`] buffer. `io::copy` moves 8 KiB at a time from a `dyn Read`:
/// 128,000 reads and writes per GB through a tool's pipe, each waking the other side.
pub fn copy(source: &mut dyn Read, dest: &mut dyn Write) -> io::Result<u64> {
    let mut buf = vec![0u8; BUF_SIZE];
    let mut total = 0u64;
    loop {
        let n = match source.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        dest.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// Counts the bytes read through it.
pub struct Counted<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Counted<R> {
    pub fn new(inner: R) -> Self {
        Counted { inner, count: 0 }
    }

    pub fn count(&self) -> u64 {
        self.count
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// Passes bytes through and keeps the last few KiB, to check how a stream ends (a dump's
/// completion trailer) without holding the stream.
pub struct TailReader<R> {
    inner: R,
    tail: Vec<u8>,
}

/// How much of the end of a stream [`TailReader`] keeps.
const TAIL_SIZE: usize = 4096;

impl<R: Read> TailReader<R> {
    pub fn new(inner: R) -> Self {
        TailReader {
            inner,
            tail: Vec::with_capacity(2 * TAIL_SIZE),
        }
    }

    /// Whether `marker` appears in the last few KiB read.
    pub fn ends_with_marker(&self, marker: &str) -> bool {
        self.tail
            .windows(marker.len())
            .any(|w| w == marker.as_bytes())
    }
}

impl<R: Read> Read for TailReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.tail.extend_from_slice(&buf[..n]);
        if self.tail.len() > 2 * TAIL_SIZE {
            self.tail.drain(..self.tail.len() - TAIL_SIZE);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use super::*;

    fn stored(compression: Compression, data: &[u8]) -> (tempfile::NamedTempFile, Written) {
        let f = tempfile::NamedTempFile::new().unwrap();
        let written = write_stream(&mut &data[..], compression, None, f.as_file()).unwrap();
        (f, written)
    }

    #[test]
    fn round_trip_hashes_what_is_stored() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let (f, written) = stored(c, &data);
            assert_eq!(written.raw_bytes, data.len() as u64);
            assert_eq!(
                hash_file(File::open(f.path()).unwrap()).unwrap(),
                (written.sha256.clone(), written.size_bytes)
            );
            let mut d = Decoder::new(File::open(f.path()).unwrap(), c, None).unwrap();
            let mut out = Vec::new();
            d.read_to_end(&mut out).unwrap();
            assert_eq!(out, data);
            assert_eq!(d.finish().unwrap().0, written.sha256);
        }
    }

    #[test]
    fn encrypted_streams_decrypt_only_with_the_identity_and_catch_damage() {
        use std::str::FromStr;
        let data: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 97).to_le_bytes())
            .collect();
        let key = age::x25519::Identity::generate();
        let recipients: Vec<Box<dyn age::Recipient + Send>> = vec![Box::new(key.to_public())];
        let identities: Vec<Box<dyn age::Identity + Send + Sync>> = vec![Box::new(key)];
        let other: Vec<Box<dyn age::Identity + Send + Sync>> =
            vec![Box::new(age::x25519::Identity::generate())];
        for c in [Compression::None, Compression::Zstd] {
            let f = tempfile::NamedTempFile::new().unwrap();
            let written = write_stream(&mut &data[..], c, Some(&recipients), f.as_file()).unwrap();
            let plain = written.plaintext_sha256.clone().unwrap();
            assert_ne!(plain, written.sha256);
            // What is stored is not the data, and hashes to the recorded SHA-256.
            let bytes = std::fs::read(f.path()).unwrap();
            assert!(
                !bytes
                    .windows(64)
                    .any(|w| data.windows(64).next() == Some(w))
            );
            assert_eq!(
                hash_file(File::open(f.path()).unwrap()).unwrap().0,
                written.sha256
            );
            let decrypt = |ids| Decrypt {
                identities: ids,
                plaintext_sha256: Some(&plain),
            };
            let open = |ids| Decoder::new(File::open(f.path()).unwrap(), c, Some(&decrypt(ids)));
            let mut d = open(&identities).unwrap();
            let mut out = Vec::new();
            d.read_to_end(&mut out).unwrap();
            assert_eq!(out, data);
            assert_eq!(d.finish().unwrap().0, written.sha256);
            // Another identity cannot open it.
            let err = open(&other).err().unwrap();
            assert!(
                err.to_string().contains("none of the age identities"),
                "{err}"
            );
            // A flipped byte fails the read, and the file's hash says it changed.
            let mut damaged = bytes.clone();
            let at = damaged.len() - 100;
            damaged[at] ^= 1;
            std::fs::write(f.path(), &damaged).unwrap();
            let mut d = open(&identities).unwrap();
            assert!(d.read_to_end(&mut Vec::new()).is_err());
            assert_ne!(d.finish().unwrap().0, written.sha256);
        }
        let _ = age::x25519::Recipient::from_str("age1not-a-key").unwrap_err();
    }

    #[test]
    fn verified_decoder_fails_at_the_end_on_a_wrong_hash() {
        let (f, written) = stored(Compression::Zstd, b"some data worth keeping");
        let open = || Decoder::new(File::open(f.path()).unwrap(), Compression::Zstd, None).unwrap();
        let mut ok = Vec::new();
        VerifiedDecoder::new(open(), &written.sha256)
            .read_to_end(&mut ok)
            .unwrap();
        assert_eq!(ok, b"some data worth keeping");
        let err = VerifiedDecoder::new(open(), &"0".repeat(64))
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
