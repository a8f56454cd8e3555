//! pg_dump's custom archive (`-Fc`), copied into a work file made ready for `pg_restore --jobs`.
//!
//! faber-db takes custom archives with `pg_dump -Fc -Z0` into a pipe, so that its own zstd can
//! compress on every core. Such an archive costs a parallel restore twice over:
//! - uncompressed, pg_dump writes every row as its own data chunk (a length, then the row): 3.7
//!   million chunks for 3.7 million rows, each one a read and a `PQputCopyData` call for
//!   pg_restore (compressed, the chunks are cut by size; pg_dump's own compression is what
//!   faber-db does without, for speed);
//! - unable to seek back in a pipe, it leaves each table's data offset out of the table of
//!   contents (pg_dump writes them in when its output is a file), so every pg_restore job scans
//!   the file for the block it wants, and none knows the tables' sizes to start the largest
//!   first.
//!
//! [`copy_for_restore`] mends both while it copies: it merges each table's chunks into chunks of
//! [`CHUNK`] bytes (pg_restore hands COPY data on in whatever pieces it reads; compressed archives
//! cut it anywhere too) and writes each data block's offset into its table-of-contents entry, as
//! pg_dump does when it writes to a file. The rest is copied byte for byte.
//!
//! The layout read here is pg_dump's (`pg_backup_archiver.c`: `WriteHead`, `WriteToc`;
//! `pg_backup_custom.c`: data blocks). An archive it does not know, of a version outside 1.12
//! (PostgreSQL 9.0) to 1.16 (PostgreSQL 17), compressed by pg_dump, or with offsets already
//! written, is copied as it is: slower to restore, never changed.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

/// The size the data chunks are merged up to.
pub const CHUNK: usize = 256 * 1024;

const MAGIC: &[u8; 5] = b"PGDMP";
/// `archCustom` in pg_dump's header.
const FORMAT_CUSTOM: u8 = 1;
/// Archive minor versions (major 1) whose layout this module reads.
const MINOR_VERSIONS: std::ops::RangeInclusive<u8> = 12..=16;
/// Data-offset states in a table-of-contents entry.
const OFFSET_NOT_SET: u8 = 1;
const OFFSET_SET: u8 = 2;
const OFFSET_NO_DATA: u8 = 3;
/// Data block types.
const BLOCK_DATA: u8 = 1;
const BLOCK_BLOBS: u8 = 3;

/// What [`copy_for_restore`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copied {
    /// Chunks merged and offsets written.
    Mended,
    /// Copied byte for byte: an archive this module does not rewrite.
    AsIs,
}

/// The data of an archive this module knows the layout of is not as pg_dump writes it: neither
/// this module nor pg_restore could read it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the archive is damaged at byte {at}: {what}")]
pub struct Damaged {
    pub at: u64,
    pub what: &'static str,
}

/// Whether an error of [`copy_for_restore`] is a [`Damaged`] archive.
pub fn damaged(e: &io::Error) -> Option<&Damaged> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<Damaged>())
}

/// Copies the archive read from `input` into `out` (empty, at its start), mended for a parallel
/// restore where its layout is known. Reads `input` to its end.
pub fn copy_for_restore(input: &mut dyn Read, out: &File) -> io::Result<Copied> {
    let mut archive = Archive {
        input: BufReader::with_capacity(crate::pipeline::BUF_SIZE, input),
        out: BufWriter::with_capacity(crate::pipeline::BUF_SIZE, out),
        read: 0,
        written: 0,
        tee: true,
        int_size: 4,
        offset_size: 8,
    };
    let Some(entries) = archive.header_and_toc()? else {
        // Everything read so far went out as it came: the rest follows it.
        crate::pipeline::copy(&mut archive.input, &mut archive.out)?;
        archive.out.flush()?;
        return Ok(Copied::AsIs);
    };
    // Where each entry's block starts: only entries of the table of contents are kept, so
    // memory grows with its entries, never with the blocks a file may hold.
    let mut starts: HashMap<i64, Option<u64>> = entries.iter().map(|e| (e.dump_id, None)).collect();
    archive.data_blocks(&mut starts)?;
    archive.out.flush()?;
    write_offsets(out, &entries, &starts, archive.offset_size)?;
    Ok(Copied::Mended)
}

/// A table-of-contents entry with data: its dump ID, and where its offset field is in the file.
struct Entry {
    dump_id: i64,
    offset_at: u64,
}

struct Archive<'a> {
    input: BufReader<&'a mut dyn Read>,
    out: BufWriter<&'a File>,
    /// Bytes read from `input`, and written to `out`.
    read: u64,
    written: u64,
    /// Whether what is read is copied out as it is.
    tee: bool,
    int_size: usize,
    offset_size: usize,
}

impl Archive<'_> {
    /// Reads (and copies out) the header and the table of contents; the entries whose data
    /// offsets are to be written, or `None` for an archive to copy as it is.
    fn header_and_toc(&mut self) -> io::Result<Option<Vec<Entry>>> {
        // Anything shorter than the magic string, or another one, is no archive of pg_dump's.
        let mut magic = Vec::with_capacity(MAGIC.len());
        (&mut self.input)
            .take(MAGIC.len() as u64)
            .read_to_end(&mut magic)?;
        self.read += magic.len() as u64;
        self.emit(&magic)?;
        if magic != MAGIC {
            return Ok(None);
        }
        let [major, minor, _revision] = self.array::<3>()?;
        let [int_size, offset_size, format] = self.array::<3>()?;
        if major != 1
            || !MINOR_VERSIONS.contains(&minor)
            || format != FORMAT_CUSTOM
            || !(4..=8).contains(&int_size)
            || !(1..=8).contains(&offset_size)
        {
            return Ok(None);
        }
        self.int_size = usize::from(int_size);
        self.offset_size = usize::from(offset_size);
        // Compression: an algorithm byte from 1.15, a zlib level before; none is 0 in both.
        let compressed = if minor >= 15 {
            self.array::<1>()?[0] != 0
        } else {
            self.int()? != 0
        };
        if compressed {
            return Ok(None);
        }
        for _ in 0..7 {
            self.int()?; // the time it was made
        }
        for _ in 0..3 {
            self.string()?; // database name, server version, pg_dump version
        }
        let count = self.int()?;
        let mut entries = Vec::new();
        for _ in 0..count.max(0) {
            let dump_id = self.toc_entry(minor)?;
            let offset_at = self.written;
            let [state] = self.array::<1>()?;
            self.pass(self.offset_size as u64)?;
            match state {
                OFFSET_NOT_SET => entries.push(Entry { dump_id, offset_at }),
                OFFSET_NO_DATA => {}
                // Offsets already written (pg_dump wrote to a file) would no longer point at
                // the blocks once the chunks are merged; an unknown state is not ours to mend.
                _ => return Ok(None),
            }
        }
        Ok(Some(entries))
    }

    /// Reads one table-of-contents entry up to its data offset; its dump ID.
    fn toc_entry(&mut self, minor: u8) -> io::Result<i64> {
        let dump_id = self.int()?;
        self.int()?; // had a data dumper
        for _ in 0..4 {
            self.string()?; // table OID, OID, tag, description
        }
        self.int()?; // section
        for _ in 0..5 {
            self.string()?; // definition, drop, copy statement, schema, tablespace
        }
        if minor >= 14 {
            self.string()?; // table access method
        }
        if minor >= 16 {
            self.int()?; // relkind
        }
        self.string()?; // owner
        self.string()?; // "with OIDs"
        while self.string()? {} // dependencies, up to a null string
        Ok(dump_id)
    }

    /// Copies the data blocks out, merging their chunks, and notes in `starts` where the first
    /// block of each entry there starts.
    fn data_blocks(&mut self, starts: &mut HashMap<i64, Option<u64>>) -> io::Result<()> {
        self.tee = false;
        let mut pending = Vec::with_capacity(CHUNK);
        loop {
            let mut kind = [0u8; 1];
            if !self.fill(&mut kind)? {
                return Ok(());
            }
            let start = self.written;
            let dump_id = self.int()?;
            if let Some(slot @ None) = starts.get_mut(&dump_id) {
                *slot = Some(start);
            }
            self.emit(&kind)?;
            self.emit_int(dump_id)?;
            match kind[0] {
                BLOCK_DATA => self.merge_chunks(&mut pending)?,
                BLOCK_BLOBS => self.copy_blobs()?,
                _ => return Err(self.damaged(self.int_size + 2, "a data block of unknown type")),
            }
        }
    }

    /// Copies one data block's chunks out as chunks of up to [`CHUNK`] bytes, and its end.
    fn merge_chunks(&mut self, pending: &mut Vec<u8>) -> io::Result<()> {
        loop {
            let read = self.int()?;
            let len = usize::try_from(read)
                .map_err(|_| self.damaged(self.int_size + 1, "a chunk of negative length"))?;
            if len == 0 || pending.len() + len > CHUNK {
                self.emit_chunk(pending)?;
            }
            if len == 0 {
                return self.emit_int(0);
            }
            if len >= CHUNK {
                // A chunk as large as a merged one goes on as it is, never held in memory.
                self.emit_int(read)?;
                self.pass(read.unsigned_abs())?;
            } else {
                let at = pending.len();
                pending.resize(at + len, 0);
                self.exact(&mut pending[at..])?;
            }
        }
    }

    /// Copies a block of large objects out as it is: each object's OID, then its chunks up to a
    /// zero length, up to a zero OID.
    fn copy_blobs(&mut self) -> io::Result<()> {
        self.tee = true;
        while self.int()? != 0 {
            loop {
                let len = self.int()?;
                let len = u64::try_from(len)
                    .map_err(|_| self.damaged(self.int_size + 1, "a chunk of negative length"))?;
                if len == 0 {
                    break;
                }
                self.pass(len)?;
            }
        }
        self.tee = false;
        Ok(())
    }

    fn emit_chunk(&mut self, pending: &mut Vec<u8>) -> io::Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let len = i64::try_from(pending.len()).expect("a merged chunk is at most CHUNK bytes");
        self.emit_int(len)?;
        self.out.write_all(pending)?;
        self.written += pending.len() as u64;
        pending.clear();
        Ok(())
    }

    fn emit(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Writes an integer as pg_dump does: a sign byte, then the magnitude, least significant
    /// byte first, in `int_size` bytes.
    fn emit_int(&mut self, value: i64) -> io::Result<()> {
        let mut bytes = [0u8; 9];
        bytes[0] = u8::from(value < 0);
        let magnitude = value.unsigned_abs().to_le_bytes();
        bytes[1..=self.int_size].copy_from_slice(&magnitude[..self.int_size]);
        self.emit(&bytes[..=self.int_size])
    }

    /// Reads an integer as pg_dump writes it.
    fn int(&mut self) -> io::Result<i64> {
        let mut bytes = [0u8; 9];
        let size = self.int_size;
        self.exact(&mut bytes[..=size])?;
        let mut magnitude = [0u8; 8];
        magnitude[..size].copy_from_slice(&bytes[1..=size]);
        let magnitude = i64::try_from(u64::from_le_bytes(magnitude))
            .map_err(|_| self.damaged(size + 1, "an integer out of range"))?;
        Ok(if bytes[0] != 0 { -magnitude } else { magnitude })
    }

    /// Copies a string out as pg_dump writes it (a length, then the bytes; -1 for null) without
    /// holding it; whether it was not null.
    fn string(&mut self) -> io::Result<bool> {
        let len = self.int()?;
        if len < 0 {
            return Ok(false);
        }
        self.pass(len.unsigned_abs())?;
        Ok(true)
    }

    fn array<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        let mut bytes = [0u8; N];
        self.exact(&mut bytes)?;
        Ok(bytes)
    }

    /// Copies `len` bytes from the input out.
    fn pass(&mut self, len: u64) -> io::Result<()> {
        let got = io::copy(&mut (&mut self.input).take(len), &mut self.out)?;
        self.read += got;
        self.written += got;
        self.short(got, len)
    }

    fn short(&self, got: u64, wanted: u64) -> io::Result<()> {
        if got < wanted {
            return Err(self.damaged(0, "it ends in the middle"));
        }
        Ok(())
    }

    fn exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        if !self.fill(buf)? {
            return Err(self.damaged(0, "it ends in the middle"));
        }
        Ok(())
    }

    /// Fills `buf` from the input (copied out when teeing); false at the end of the input
    /// before the first byte. Ending part way is damage.
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        let mut got = 0;
        while got < buf.len() {
            match self.input.read(&mut buf[got..]) {
                Ok(0) if got == 0 => return Ok(false),
                Ok(0) => return Err(self.damaged(0, "it ends in the middle")),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.read += got as u64;
        if self.tee {
            self.out.write_all(buf)?;
            self.written += got as u64;
        }
        Ok(true)
    }

    /// Damage found `back` bytes before the current read position.
    fn damaged(&self, back: usize, what: &'static str) -> io::Error {
        io::Error::other(Damaged {
            at: self.read.saturating_sub(back as u64),
            what,
        })
    }
}

/// Writes each entry's data offset (the first block of its dump ID) into the table of contents.
/// An entry whose block is not in the file keeps its unset offset, as pg_dump left it.
fn write_offsets(
    mut out: &File,
    entries: &[Entry],
    starts: &HashMap<i64, Option<u64>>,
    offset_size: usize,
) -> io::Result<()> {
    for entry in entries {
        let Some(&Some(start)) = starts.get(&entry.dump_id) else {
            continue;
        };
        let bytes = start.to_le_bytes();
        if bytes[offset_size..].iter().any(|&b| b != 0) {
            continue; // does not fit the archive's offsets
        }
        let mut field = [0u8; 9];
        field[0] = OFFSET_SET;
        field[1..=offset_size].copy_from_slice(&bytes[..offset_size]);
        out.seek(SeekFrom::Start(entry.offset_at))?;
        out.write_all(&field[..=offset_size])?;
    }
    out.seek(SeekFrom::End(0))?;
    Ok(())
}

#[cfg(test)]
mod tests;
