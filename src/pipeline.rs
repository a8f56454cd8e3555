//! The byte stream of a backup: source → compression → SHA-256 → file, in one pass, and the
//! reverse for reading a backup back.

use std::cell::Cell;
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::rc::Rc;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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

/// What a finished write stream produced.
#[derive(Debug, Clone)]
pub struct Written {
    /// SHA-256 of the bytes stored (after compression).
    pub sha256: String,
    /// Bytes stored.
    pub size_bytes: u64,
    /// Bytes of the dump before compression.
    pub raw_bytes: u64,
    /// Of an encrypted backup: SHA-256 of the bytes encrypted (the compressed dump), which a
    /// decryption must give back.
    pub plaintext_sha256: Option<String>,
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

/// Counts what is written to it and keeps nothing.
struct Counter(Rc<Cell<u64>>);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.set(self.0.get() + buf.len() as u64);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A decoder of what is being stored.
enum InlineDecoder {
    Gzip(Box<flate2::write::MultiGzDecoder<Counter>>),
    Zstd(Box<zstd::stream::write::Decoder<'static, Counter>>),
}

/// Writes to `inner` and decodes the same bytes as they go by: the stream is proven to decode
/// (zstd's content checksum and gzip's CRC-32 matched, the length counted) while the dump runs,
/// instead of by reading the whole file back and decoding it after.
struct DecodeCheck<W> {
    inner: W,
    decoder: Option<InlineDecoder>,
    decoded: Rc<Cell<u64>>,
}

impl<W: Write> DecodeCheck<W> {
    fn new(inner: W, compression: Compression) -> io::Result<Self> {
        let decoded = Rc::new(Cell::new(0));
        let counter = Counter(decoded.clone());
        let decoder = match compression {
            Compression::None => None,
            Compression::Gzip => {
                let d = flate2::write::MultiGzDecoder::new(counter);
                Some(InlineDecoder::Gzip(Box::new(d)))
            }
            Compression::Zstd => {
                let d = zstd::stream::write::Decoder::new(counter)?;
                Some(InlineDecoder::Zstd(Box::new(d)))
            }
        };
        Ok(DecodeCheck {
            inner,
            decoder,
            decoded,
        })
    }

    /// The inner writer, once the stream decoded to exactly `raw_bytes`.
    fn finish_checked(self, raw_bytes: u64) -> io::Result<W> {
        let (inner, decoded) = self.finish()?;
        if decoded.is_some_and(|d| d != raw_bytes) {
            return Err(undecodable(io::Error::other(format!(
                "{raw_bytes} bytes in, {} decoded",
                decoded.unwrap_or(0)
            ))));
        }
        Ok(inner)
    }

    /// The inner writer and the number of bytes the stream decoded to (`None` uncompressed).
    fn finish(self) -> io::Result<(W, Option<u64>)> {
        match self.decoder {
            None => return Ok((self.inner, None)),
            Some(InlineDecoder::Gzip(mut d)) => d.try_finish().map_err(undecodable)?,
            Some(InlineDecoder::Zstd(mut d)) => d.flush().map_err(undecodable)?,
        }
        Ok((self.inner, Some(self.decoded.get())))
    }
}

fn undecodable(e: io::Error) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the compressed stream does not decode to what was written: {e}"),
    )
}

impl<W: Write> Write for DecodeCheck<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        match &mut self.decoder {
            None => {}
            Some(InlineDecoder::Gzip(d)) => d.write_all(&buf[..n]).map_err(undecodable)?,
            Some(InlineDecoder::Zstd(d)) => d.write_all(&buf[..n]).map_err(undecodable)?,
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Streams `source` through `compression`, then encryption to `recipients` when given, and
/// SHA-256 into `dest`, then flushes and syncs it. The compressed stream is decoded as it is
/// written, and must decode to exactly what was read. Encrypted, the stored bytes are hashed
/// (what `sha256` covers) and so are the bytes encrypted (`plaintext_sha256`).
pub fn write_stream(
    source: &mut dyn Read,
    compression: Compression,
    recipients: Option<&[Box<dyn age::Recipient + Send>]>,
    dest: &File,
) -> io::Result<Written> {
    let file = BufWriter::with_capacity(BUF_SIZE, dest);
    let Some(recipients) = recipients else {
        let sink = HashWriter::new(DecodeCheck::new(file, compression)?);
        let (sink, raw_bytes) = compress_into(source, compression, sink)?;
        let (check, sha256, size_bytes) = sink.finish();
        let file = check.finish_checked(raw_bytes)?;
        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        return Ok(Written {
            sha256,
            size_bytes,
            raw_bytes,
            plaintext_sha256: None,
        });
    };
    let encryptor = age::Encryptor::with_recipients(recipients.iter().map(|r| r.as_ref() as _))
        .map_err(io::Error::other)?;
    let stored = encryptor.wrap_output(HashWriter::new(file))?;
    let sink = HashWriter::new(DecodeCheck::new(stored, compression)?);
    let (sink, raw_bytes) = compress_into(source, compression, sink)?;
    let (check, plaintext_sha256, _) = sink.finish();
    let stored = check.finish_checked(raw_bytes)?.finish()?;
    let (file, sha256, size_bytes) = stored.finish();
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(Written {
        sha256,
        size_bytes,
        raw_bytes,
        plaintext_sha256: Some(plaintext_sha256),
    })
}

/// Copies `source` into `sink` through `compression`; the sink and the bytes read.
fn compress_into<W: Write>(
    source: &mut dyn Read,
    compression: Compression,
    mut sink: W,
) -> io::Result<(W, u64)> {
    match compression {
        Compression::None => {
            let raw_bytes = copy(source, &mut sink)?;
            Ok((sink, raw_bytes))
        }
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(sink, flate2::Compression::default());
            let raw_bytes = copy(source, &mut enc)?;
            Ok((enc.finish()?, raw_bytes))
        }
        Compression::Zstd => {
            let mut enc = zstd::stream::write::Encoder::new(sink, 3)?;
            // Every decoder then checks the content, not only the framing.
            enc.include_checksum(true)?;
            let workers = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
            if workers > 1 {
                enc.multithread(workers)?;
            }
            let raw_bytes = copy(source, &mut enc)?;
            Ok((enc.finish()?, raw_bytes))
        }
    }
}

/// Reads a file on a thread of its own that hashes each chunk before handing it over, so that
/// the SHA-256 of the stored bytes costs no time on the thread that decodes them (with SHA-NI it
/// runs at over 1 GB/s, beside a decoder that is slower). Memory stays bounded: a few chunks of
/// [`BUF_SIZE`] are in flight, then reused.
pub struct HashedFile {
    chunks: Receiver<io::Result<Vec<u8>>>,
    spare: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    failed: bool,
    worker: Option<JoinHandle<io::Result<(String, u64)>>>,
    /// Set when the reader is dropped on purpose: the worker then hashes the rest by itself.
    drain: Arc<AtomicBool>,
}

/// The hash of a [`HashedFile`] wrapped in a reader that cannot give it back (a decryptor):
/// the reader is dropped, and the file's worker hashes what is left by itself.
pub struct Drain {
    worker: JoinHandle<io::Result<(String, u64)>>,
    drain: Arc<AtomicBool>,
}

impl Drain {
    /// Drops `reader` (which holds the [`HashedFile`]), then waits for the whole file's hash.
    fn finish<R>(self, reader: R) -> io::Result<(String, u64)> {
        self.drain.store(true, Ordering::SeqCst);
        drop(reader);
        self.worker
            .join()
            .map_err(|_| io::Error::other("the hashing thread failed"))?
    }
}

/// Chunks read ahead of the consumer.
const READ_AHEAD: usize = 4;

impl HashedFile {
    pub fn new(mut file: File) -> HashedFile {
        let (chunk_tx, chunks) = sync_channel::<io::Result<Vec<u8>>>(READ_AHEAD);
        let (spare, spare_rx) = sync_channel::<Vec<u8>>(READ_AHEAD + 2);
        let drain = Arc::new(AtomicBool::new(false));
        let draining = drain.clone();
        let worker = std::thread::spawn(move || {
            let mut hasher = Sha256::new();
            let mut bytes = 0u64;
            let mut sending = true;
            let mut kept = Vec::new();
            loop {
                let mut buf = if sending {
                    spare_rx.try_recv().unwrap_or_default()
                } else {
                    std::mem::take(&mut kept)
                };
                buf.resize(BUF_SIZE, 0);
                let n = match file.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let failed = io::Error::new(e.kind(), e.to_string());
                        let _ = chunk_tx.send(Err(e));
                        return Err(failed);
                    }
                };
                buf.truncate(n);
                hasher.update(&buf);
                bytes += n as u64;
                if !sending {
                    kept = buf;
                } else if chunk_tx.send(Ok(buf)).is_err() {
                    // The reader is gone: the rest is hashed only if someone waits for it.
                    if !draining.load(Ordering::SeqCst) {
                        return Err(io::Error::other("the reader stopped"));
                    }
                    sending = false;
                }
            }
            Ok((hex::encode(hasher.finalize()), bytes))
        });
        HashedFile {
            chunks,
            spare,
            current: Vec::new(),
            pos: 0,
            failed: false,
            worker: Some(worker),
            drain,
        }
    }

    /// The handle that gets this file's hash once the reader wrapping it is dropped.
    fn drain(&mut self) -> Drain {
        Drain {
            worker: self.worker.take().expect("taken once"),
            drain: self.drain.clone(),
        }
    }

    /// Reads what is left and returns the SHA-256 and size of the whole file.
    pub fn finish(mut self) -> io::Result<(String, u64)> {
        while let Ok(chunk) = self.chunks.recv() {
            let _ = self.spare.try_send(chunk?);
        }
        if self.failed {
            return Err(io::Error::other("the file could not be read to its end"));
        }
        self.worker
            .take()
            .expect("joined once")
            .join()
            .map_err(|_| io::Error::other("the hashing thread failed"))?
    }
}

impl Read for HashedFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            let done = std::mem::take(&mut self.current);
            let _ = self.spare.try_send(done);
            self.pos = 0;
            match self.chunks.recv() {
                Ok(Ok(chunk)) => self.current = chunk,
                Ok(Err(e)) => {
                    self.failed = true;
                    return Err(e);
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// What decrypts an encrypted backup: the identities to try, and the SHA-256 the decrypted
/// bytes must have (when the backup recorded one).
pub struct Decrypt<'a> {
    pub identities: &'a [Box<dyn age::Identity + Send + Sync>],
    pub plaintext_sha256: Option<&'a str>,
}

/// The stored bytes, decrypted when the backup is encrypted.
pub enum StoredReader {
    Plain(HashedFile),
    Decrypted(Box<Decrypted>),
}

/// An encrypted file read through age: the decrypted bytes are hashed too, and checked against
/// the SHA-256 recorded at backup when the stream ends.
pub struct Decrypted {
    reader: age::stream::StreamReader<HashedFile>,
    hasher: Sha256,
    expected: Option<String>,
    drain: Drain,
}

impl StoredReader {
    fn new(file: File, decrypt: Option<&Decrypt<'_>>) -> io::Result<StoredReader> {
        let mut stored = HashedFile::new(file);
        let Some(decrypt) = decrypt else {
            return Ok(StoredReader::Plain(stored));
        };
        let drain = stored.drain();
        let undecryptable = |e: age::DecryptError| {
            let why = match e {
                age::DecryptError::NoMatchingKeys => {
                    "none of the age identities given can decrypt it".to_string()
                }
                age::DecryptError::InvalidHeader | age::DecryptError::UnknownFormat => {
                    "it is not an age-encrypted file".to_string()
                }
                e => e.to_string(),
            };
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("cannot decrypt the backup: {why}"),
            )
        };
        let reader = age::Decryptor::new(stored)
            .map_err(undecryptable)?
            .decrypt(
                decrypt
                    .identities
                    .iter()
                    .map(|i| i.as_ref() as &dyn age::Identity),
            )
            .map_err(undecryptable)?;
        Ok(StoredReader::Decrypted(Box::new(Decrypted {
            reader,
            hasher: Sha256::new(),
            expected: decrypt.plaintext_sha256.map(str::to_string),
            drain,
        })))
    }

    /// Reads what is left and returns the SHA-256 and size of the whole stored file. Encrypted,
    /// the rest is decrypted (age authenticates every chunk, the last one included) and the
    /// decrypted bytes must have the recorded SHA-256. A rest that does not decrypt (a damaged
    /// file) still gives the stored file's hash: the caller compares it, and the reader has
    /// already seen the failure.
    fn finish(self) -> io::Result<(String, u64)> {
        match self {
            StoredReader::Plain(file) => file.finish(),
            StoredReader::Decrypted(mut d) => {
                let rest = copy(&mut *d, &mut io::sink());
                let Decrypted {
                    reader,
                    hasher,
                    expected,
                    drain,
                } = *d;
                let stored = drain.finish(reader)?;
                let plain_differs =
                    expected.is_some_and(|expected| hex::encode(hasher.finalize()) != expected);
                if rest.is_ok() && plain_differs {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the decrypted backup does not match its recorded SHA-256",
                    ));
                }
                Ok(stored)
            }
        }
    }
}

impl Read for Decrypted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.reader.read(buf).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the encrypted backup is damaged: {e}"),
            )
        })?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

impl Read for StoredReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            StoredReader::Plain(f) => f.read(buf),
            StoredReader::Decrypted(d) => d.read(buf),
        }
    }
}

/// Reads the decoded dump out of a stored file while hashing the stored bytes, so that one pass
/// over the file both checks its SHA-256 and feeds the structure check.
pub enum Decoder {
    None(StoredReader),
    Gzip(Box<flate2::read::MultiGzDecoder<BufReader<StoredReader>>>),
    Zstd(Box<zstd::stream::read::Decoder<'static, BufReader<StoredReader>>>),
}

impl Decoder {
    pub fn new(
        file: File,
        compression: Compression,
        decrypt: Option<&Decrypt<'_>>,
    ) -> io::Result<Decoder> {
        let stored = StoredReader::new(file, decrypt)?;
        Ok(match compression {
            Compression::None => Decoder::None(stored),
            Compression::Gzip => Decoder::Gzip(Box::new(flate2::read::MultiGzDecoder::new(
                BufReader::with_capacity(BUF_SIZE, stored),
            ))),
            Compression::Zstd => Decoder::Zstd(Box::new(zstd::stream::read::Decoder::new(stored)?)),
        })
    }

    /// Reads the rest of the stored file (bytes the decoder did not need count too) and returns
    /// its SHA-256 and size.
    pub fn finish(self) -> io::Result<(String, u64)> {
        let stored = match self {
            Decoder::None(r) => r,
            Decoder::Gzip(d) => d.into_inner().into_inner(),
            Decoder::Zstd(d) => d.finish().into_inner(),
        };
        stored.finish()
    }
}

impl Read for Decoder {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::None(r) => r.read(buf),
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Zstd(d) => d.read(buf),
        }
    }
}

/// SHA-256 and size of a whole file, streamed.
pub fn hash_file(file: File) -> io::Result<(String, u64)> {
    HashedFile::new(file).finish()
}

/// A [`Decoder`] that checks the stored bytes against an expected SHA-256 when the stream ends:
/// the end of the data is reported only if the whole file matched, so a consumer that commits at
/// the end (a restore) never commits bytes that changed since they were checked.
pub struct VerifiedDecoder {
    decoder: Option<Decoder>,
    expected: String,
}

impl VerifiedDecoder {
    pub fn new(decoder: Decoder, expected_sha256: &str) -> Self {
        VerifiedDecoder {
            decoder: Some(decoder),
            expected: expected_sha256.to_string(),
        }
    }
}

impl Read for VerifiedDecoder {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(decoder) = self.decoder.as_mut() else {
            return Ok(0);
        };
        let n = decoder.read(buf)?;
        if n > 0 || buf.is_empty() {
            return Ok(n);
        }
        let (sha, _) = self
            .decoder
            .take()
            .expect("present until the end")
            .finish()?;
        if sha == self.expected {
            Ok(0)
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "checksum mismatch: the backup file changed while it was read",
            ))
        }
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
    fn a_stream_that_does_not_decode_fails_as_it_is_written() {
        for c in [Compression::Gzip, Compression::Zstd] {
            let mut check = DecodeCheck::new(Vec::new(), c).unwrap();
            let err = check
                .write_all(&[0x5a; 4096])
                .and_then(|()| check.finish().map(|_| ()))
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{c}");
        }
        // A valid stream cut short decodes to fewer bytes than were written.
        let mut full = Vec::new();
        let mut enc = zstd::stream::write::Encoder::new(&mut full, 3).unwrap();
        enc.include_checksum(true).unwrap();
        enc.write_all(&[7u8; 100_000]).unwrap();
        enc.finish().unwrap();
        let mut check = DecodeCheck::new(Vec::new(), Compression::Zstd).unwrap();
        check.write_all(&full[..full.len() / 2]).unwrap();
        let (_, decoded) = check.finish().unwrap();
        assert!(decoded.unwrap() < 100_000);
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
