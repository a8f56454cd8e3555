//! Writing a backup: the dump compressed, encrypted when asked, hashed, and decoded again as
//! it goes by to prove it decodes, in one pass.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::rc::Rc;

use super::{BUF_SIZE, Compression, HashWriter, copy};

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
/// SHA-256 into `dest`, then flushes it (syncing it is the caller's). The compressed stream is decoded as it is
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
        file.into_inner().map_err(|e| e.into_error())?;
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
    file.into_inner().map_err(|e| e.into_error())?;
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
            let workers = std::thread::available_parallelism()
                .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX));
            if workers > 1 {
                enc.multithread(workers)?;
            }
            let raw_bytes = copy(source, &mut enc)?;
            Ok((enc.finish()?, raw_bytes))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        enc.write_all(&vec![7u8; 100_000]).unwrap();
        enc.finish().unwrap();
        let mut check = DecodeCheck::new(Vec::new(), Compression::Zstd).unwrap();
        check.write_all(&full[..full.len() / 2]).unwrap();
        let (_, decoded) = check.finish().unwrap();
        assert!(decoded.unwrap() < 100_000);
    }
}
