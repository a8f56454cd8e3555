//! Row counts read from a plain-format dump as it streams by: every table's data is a
//! `COPY <table> (…) FROM stdin;` block of one line per row, ended by a line `\.`. Counting lines
//! costs a memchr pass over the stream in faber-db, where `count(*)` on a second connection made
//! the server read every table again, on the core pg_dump's own backend needs.

use std::collections::BTreeMap;
use std::io::{self, Read};

/// The longest statement line kept to be recognised as a COPY header.
const HEADER_MAX: usize = 1 << 16;

/// Counts the rows of each COPY block read through it, by the table as pg_dump names it
/// (`public.events`, `"Odd Name".t`).
pub struct CopyCounter<R> {
    inner: R,
    /// The start of the current line: a whole statement line, or a data line's first bytes.
    line: Vec<u8>,
    /// Whether the current line is longer than what `line` kept.
    long: bool,
    /// The table whose COPY block is being read.
    in_copy: Option<String>,
    tables: BTreeMap<String, u64>,
}

impl<R: Read> CopyCounter<R> {
    pub fn new(inner: R) -> Self {
        CopyCounter {
            inner,
            line: Vec::new(),
            long: false,
            in_copy: None,
            tables: BTreeMap::new(),
        }
    }

    /// Rows per table, for every COPY block that ended.
    pub fn tables(&self) -> &BTreeMap<String, u64> {
        &self.tables
    }

    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    fn feed(&mut self, mut data: &[u8]) {
        while let Some(i) = memchr::memchr(b'\n', data) {
            self.take(&data[..i]);
            self.end_line();
            data = &data[i + 1..];
        }
        self.take(data);
    }

    fn take(&mut self, part: &[u8]) {
        // A data line matters only if it is the end marker `\.`: three bytes tell.
        let keep = if self.in_copy.is_some() {
            3
        } else {
            HEADER_MAX
        };
        let room = keep.saturating_sub(self.line.len());
        if part.len() > room {
            self.long = true;
        }
        self.line.extend_from_slice(&part[..part.len().min(room)]);
    }

    fn end_line(&mut self) {
        match self.in_copy.take() {
            Some(_) if self.line == b"\\." && !self.long => {}
            Some(table) => {
                *self.tables.entry(table.clone()).or_insert(0) += 1;
                self.in_copy = Some(table);
            }
            None if !self.long => {
                if let Some(table) = copy_target(&self.line) {
                    self.tables.entry(table.clone()).or_insert(0);
                    self.in_copy = Some(table);
                }
            }
            None => {}
        }
        self.line.clear();
        self.long = false;
    }
}

impl<R: Read> Read for CopyCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.feed(&buf[..n]);
        Ok(n)
    }
}

/// The table of a `COPY <schema>.<table> [(columns)] FROM stdin;` line, as written: each name
/// bare, or in double quotes with `""` for a quote.
fn copy_target(line: &[u8]) -> Option<String> {
    let rest = line.strip_prefix(b"COPY ")?;
    if !line.ends_with(b" FROM stdin;") {
        return None;
    }
    let mut i = 0;
    loop {
        if rest.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match rest.get(i)? {
                    b'"' if rest.get(i + 1) == Some(&b'"') => i += 2,
                    b'"' => break,
                    _ => i += 1,
                }
            }
            i += 1;
        } else {
            while !matches!(rest.get(i)?, b'.' | b' ') {
                i += 1;
            }
        }
        match rest.get(i)? {
            b'.' => i += 1,
            b' ' => break,
            _ => return None,
        }
    }
    String::from_utf8(rest[..i].to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(dump: &str, chunk: usize) -> BTreeMap<String, u64> {
        let mut c = CopyCounter::new(dump.as_bytes());
        let mut buf = vec![0; chunk];
        while c.read(&mut buf).unwrap() > 0 {}
        c.tables().clone()
    }

    #[test]
    fn counts_each_copy_block_whatever_the_read_sizes() {
        let dump = "--\n-- PostgreSQL database dump\n--\nCREATE TABLE public.t (x int);\n\
            COPY public.t (x, y) FROM stdin;\n1\ta\n2\t\\\\.\n3\t\\N\n\\.\n\n\
            COPY \"Odd \"\"Name\"\".\".x\" (a) FROM stdin;\n\\.\n\
            COPY s.\"with space\" FROM stdin;\nrow one\n\\.\n\
            -- COPY public.fake (x) FROM stdin; in a comment is no block\n\
            INSERT INTO t VALUES ('COPY public.t FROM stdin;');\n";
        for chunk in [1, 2, 3, 7, 64, 4096] {
            let tables = count(dump, chunk);
            assert_eq!(tables.len(), 3, "{chunk}: {tables:?}");
            assert_eq!(tables["public.t"], 3, "{chunk}");
            assert_eq!(tables["\"Odd \"\"Name\"\".\".x\""], 0, "{chunk}");
            assert_eq!(tables["s.\"with space\""], 1, "{chunk}");
        }
    }

    #[test]
    fn names_are_read_as_written() {
        assert_eq!(
            copy_target(b"COPY public.events (id, note) FROM stdin;").as_deref(),
            Some("public.events")
        );
        assert_eq!(
            copy_target(b"COPY \"a.b\".\"c (d\" (x) FROM stdin;").as_deref(),
            Some("\"a.b\".\"c (d\"")
        );
        assert_eq!(copy_target(b"COPY public.t TO stdout;"), None);
        assert_eq!(copy_target(b"COPY \"unterminated FROM stdin;"), None);
    }
}
