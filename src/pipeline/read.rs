//! Reading a backup back: the stored bytes decrypted and decoded, their SHA-256 taken on the
//! way, and checked at the end.

use std::fs::File;
use std::io::{self, BufReader, Read};

use sha2::{Digest, Sha256};

use super::{BUF_SIZE, Compression, Drain, HashedFile, copy};

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
