//! pg_dump's script ends a transaction of its own: the data of large objects is written between
//! a `BEGIN;` and a `COMMIT;` (`pg_restore --file=-` does the same for an archive). Run inside
//! the in-place restore's one transaction, that `COMMIT` would make everything loaded before it
//! permanent, halfway through the load. [`WithoutOwnCommits`] passes the script on without those
//! two lines; a `COMMIT` it does not recognise is still stopped by the commit guard in the
//! transaction (see `inplace::prelude`), which fails it and rolls everything back.

use std::io::{self, BufWriter, Write};

/// What opens large objects' data after the script's `BEGIN;`.
const LO_OPEN: &[u8] = b"SELECT pg_catalog.lo_open(";
/// What every line of large objects' data starts with (`lo_open`, `lowrite`, `lo_close`).
const LO_LINE: &[u8] = b"SELECT pg_catalog.lo";

/// Writes a pg_dump script on to `W` without the `BEGIN;` and `COMMIT;` around large objects'
/// data: a `BEGIN;` line followed (after blank lines) by `SELECT pg_catalog.lo_open(`, and the
/// `COMMIT;` line that ends that data, outside COPY data. Everything else passes unchanged;
/// COPY data (from a line ending in ` FROM stdin;` to the line `\.`) is never looked into.
pub(super) struct WithoutOwnCommits<W: Write> {
    out: BufWriter<W>,
    /// Outside COPY data: the line read so far. In COPY data: its first bytes, enough to tell
    /// the line `\.` that ends it.
    line: Vec<u8>,
    in_copy: bool,
    /// A `BEGIN;` line and the blank lines after it, held until the next line says whether they
    /// open large objects' data.
    held: Vec<u8>,
    /// In large objects' data, whose `BEGIN;` was left out: its `COMMIT;` is left out too.
    in_lo: bool,
}

impl<W: Write> WithoutOwnCommits<W> {
    pub(super) fn new(out: W) -> Self {
        WithoutOwnCommits {
            out: BufWriter::with_capacity(crate::pipeline::BUF_SIZE, out),
            line: Vec::new(),
            in_copy: false,
            held: Vec::new(),
            in_lo: false,
        }
    }

    /// Writes what is held (an unfinished last line, a `BEGIN;` that opened nothing) and gives
    /// the writer back, with how writing that went.
    pub(super) fn finish(mut self) -> (W, io::Result<()>) {
        let written = self.write_held().and_then(|()| self.out.flush());
        let (out, _) = self.out.into_parts();
        (out, written)
    }

    fn write_held(&mut self) -> io::Result<()> {
        if !self.in_copy {
            let line = std::mem::take(&mut self.line);
            if !line.is_empty() {
                self.line_done(&line)?;
            }
        }
        let held = std::mem::take(&mut self.held);
        self.out.write_all(&held)
    }

    /// A whole line (its `\n` included) outside COPY data.
    fn line_done(&mut self, line: &[u8]) -> io::Result<()> {
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        if !self.held.is_empty() {
            if text.is_empty() {
                self.held.extend_from_slice(line);
                return Ok(());
            }
            if text.starts_with(LO_OPEN) {
                // The BEGIN that opened large objects' data: left out.
                self.held.clear();
                self.in_lo = true;
            } else {
                let held = std::mem::take(&mut self.held);
                self.out.write_all(&held)?;
            }
        }
        if self.in_lo {
            if text == b"COMMIT;" {
                self.in_lo = false;
                return Ok(());
            }
            // Anything else than large objects' data: not the script this was made for. Its
            // COMMIT, if any, goes through, and the commit guard fails it.
            if !text.is_empty() && !text.starts_with(LO_LINE) {
                self.in_lo = false;
            }
        } else if text == b"BEGIN;" {
            self.held.extend_from_slice(line);
            return Ok(());
        }
        if text.ends_with(b" FROM stdin;") {
            self.in_copy = true;
        }
        self.out.write_all(line)
    }
}

impl<W: Write> Write for WithoutOwnCommits<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while !rest.is_empty() {
            let end = memchr::memchr(b'\n', rest).map(|i| i + 1);
            let (part, after) = rest.split_at(end.unwrap_or(rest.len()));
            rest = after;
            if self.in_copy {
                // COPY data goes straight through; only the line `\.` that ends it matters.
                let want = 3usize.saturating_sub(self.line.len()).min(part.len());
                self.line.extend_from_slice(&part[..want]);
                self.out.write_all(part)?;
                if end.is_some() {
                    if self.line == b"\\.\n" {
                        self.in_copy = false;
                    }
                    self.line.clear();
                }
            } else {
                self.line.extend_from_slice(part);
                if end.is_some() {
                    let line = std::mem::take(&mut self.line);
                    self.line_done(&line)?;
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `script` through the filter, written in pieces of `chunk` bytes.
    fn filtered(script: &str, chunk: usize) -> String {
        let mut f = WithoutOwnCommits::new(Vec::new());
        for piece in script.as_bytes().chunks(chunk) {
            f.write_all(piece).unwrap();
        }
        let (out, written) = f.finish();
        written.unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn only_the_begin_and_commit_around_large_objects_go() {
        let script = "SET x = 1;\nCOPY public.t (a) FROM stdin;\nBEGIN;\nSELECT pg_catalog.lo_open('1', 131072);\nCOMMIT;\n\\.\n\
                      \nBEGIN;\n\nSELECT pg_catalog.lo_open('46314', 131072);\nSELECT pg_catalog.lowrite(0, '\\x68');\n\
                      SELECT pg_catalog.lo_close(0);\n\nCOMMIT;\n\nCREATE INDEX i ON public.t (a);\n\
                      BEGIN;\nSELECT 1;\nCOMMIT;\nCOPY public.\"we\nird\" (a) FROM stdin;\nCOMMIT;\n\\.\nBEGIN;";
        let want = "SET x = 1;\nCOPY public.t (a) FROM stdin;\nBEGIN;\nSELECT pg_catalog.lo_open('1', 131072);\nCOMMIT;\n\\.\n\
                    \nSELECT pg_catalog.lo_open('46314', 131072);\nSELECT pg_catalog.lowrite(0, '\\x68');\n\
                    SELECT pg_catalog.lo_close(0);\n\n\nCREATE INDEX i ON public.t (a);\n\
                    BEGIN;\nSELECT 1;\nCOMMIT;\nCOPY public.\"we\nird\" (a) FROM stdin;\nCOMMIT;\n\\.\nBEGIN;";
        for chunk in [1, 2, 3, 7, 1 << 20] {
            assert_eq!(filtered(script, chunk), want, "chunk {chunk}");
        }
    }

    #[test]
    fn a_commit_after_other_statements_than_large_objects_stays() {
        let script = "BEGIN;\nSELECT pg_catalog.lo_open('1', 131072);\nDROP TABLE t;\nCOMMIT;\n";
        assert_eq!(
            filtered(script, 5),
            "SELECT pg_catalog.lo_open('1', 131072);\nDROP TABLE t;\nCOMMIT;\n"
        );
    }
}
