//! Row counts read from a plain-format dump as it streams by: every table's data is a
//! `COPY <schema>.<table> (…) FROM stdin;` statement followed by one line per row, ended by a
//! line `\.`. Counting lines costs a memchr pass over the stream in faber-db, where `count(*)` on
//! a second connection made the server read every table again, on the core pg_dump's own backend
//! needs.
//!
//! The statements between the data blocks are read the way psql reads them: a quoted name may
//! hold a newline (so a COPY statement can span lines), and a string, a comment or a
//! dollar-quoted function body may hold lines that look like a COPY statement and its data.
//! Only a COPY statement at the top level starts a block.

use std::collections::BTreeMap;
use std::io::{self, Read};

/// The longest COPY statement kept to be parsed.
const HEADER_MAX: usize = 1 << 16;

/// A table as a COPY statement names it: schema and table, unquoted, in the dump's encoding.
pub type CopyTarget = (Vec<u8>, Vec<u8>);

/// The rows the server took into each table of a load, from what psql printed (a `COPY n` line
/// for each COPY statement it ran, in order; other lines are passed by) and the `blocks` a
/// [`CopyCounter`] saw go to it, in their order. `None` unless there is exactly one such line
/// for each block: then the rows of no table are known this way.
pub fn server_counts(
    blocks: &[CopyTarget],
    printed: &[String],
) -> Option<BTreeMap<CopyTarget, u64>> {
    let answers: Vec<u64> = printed.iter().filter_map(|l| copy_answer(l)).collect();
    if answers.len() != blocks.len() {
        return None;
    }
    let mut tables = BTreeMap::new();
    for (table, rows) in blocks.iter().zip(answers) {
        *tables.entry(table.clone()).or_insert(0) += rows;
    }
    Some(tables)
}

/// The rows of psql's answer to a COPY statement, `COPY n`, if `line` is one. Result rows are
/// printed indented, so none can be taken for one.
pub fn copy_answer(line: &str) -> Option<u64> {
    let n = line.strip_prefix("COPY ")?;
    n.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| n.parse().ok())?
}

/// Whether `line` of psql's output answers a COPY statement.
pub fn is_copy_answer(line: &str) -> bool {
    copy_answer(line).is_some()
}

/// Counts the rows of each COPY block read through it, by the table it fills.
pub struct CopyCounter<R> {
    inner: R,
    /// Where the reader is between the data blocks.
    lex: Lex,
    /// Whether the current statement has begun (text since the last top-level `;`).
    in_statement: bool,
    /// The current statement's bytes while it may still be a COPY statement.
    statement: Option<Vec<u8>>,
    /// How many identifier bytes came just before, at the top level (for `E'…'` and `a$b`).
    word: usize,
    /// The previous byte at the top level.
    last: u8,
    /// A COPY statement just ended: its data starts on the next line.
    starting: Option<CopyTarget>,
    /// The block being read, if any.
    block: Option<Block>,
    tables: BTreeMap<CopyTarget, u64>,
    /// The table of every block, in the order the blocks began.
    order: Vec<CopyTarget>,
}

/// Where the reader is inside the statements of the dump.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Lex {
    /// At the top level.
    Top,
    /// Just after a `-` at the top level: a second one starts a comment.
    Dash,
    /// Just after a `/` at the top level: a `*` starts a comment.
    Slash,
    /// In a `--` comment, until the end of the line.
    LineComment,
    /// In a psql meta-command (`\restrict …`), until the end of the line.
    MetaCommand,
    /// In a `/* */` comment, nested this deep; `last` is the previous byte.
    BlockComment { depth: u32, last: u8 },
    /// In a `'…'` string; `escapes` for an `E'…'` one, where a backslash escapes a byte.
    Str { escapes: bool, backslash: bool },
    /// Just after a `'` that may close a string, or be the first of a doubled one.
    StrEnd { escapes: bool },
    /// In a `"…"` name.
    Name,
    /// Just after a `"` that may close a name, or be the first of a doubled one.
    NameEnd,
    /// After a `$` that may open a dollar quote: its tag so far.
    DollarOpen(Vec<u8>),
    /// In a dollar-quoted string `$tag$…$tag$`; `matched` bytes of the closing `$tag$` seen.
    Dollar { tag: Vec<u8>, matched: usize },
}

/// A COPY block being read.
struct Block {
    table: CopyTarget,
    /// The data lines read so far.
    rows: u64,
    /// The start of the current data line: whether it is `\.`, three bytes tell.
    line: Vec<u8>,
    /// Whether the current line is longer than what `line` kept.
    long: bool,
}

impl<R: Read> CopyCounter<R> {
    pub fn new(inner: R) -> Self {
        CopyCounter {
            inner,
            lex: Lex::Top,
            in_statement: false,
            statement: None,
            word: 0,
            last: b'\n',
            starting: None,
            block: None,
            tables: BTreeMap::new(),
            order: Vec::new(),
        }
    }

    /// Rows per table, for every COPY block that began (its rows once it ended).
    pub fn tables(&self) -> &BTreeMap<CopyTarget, u64> {
        &self.tables
    }

    /// The table of every COPY block that began, in the order they began: psql's `COPY n`
    /// lines answer them in this order.
    pub fn blocks(&self) -> &[CopyTarget] {
        &self.order
    }

    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            data = if self.block.is_some() {
                self.feed_block(data)
            } else {
                self.feed_statements(data)
            };
        }
    }

    /// Counts the data lines of the current block; returns what follows its end.
    fn feed_block<'d>(&mut self, mut data: &'d [u8]) -> &'d [u8] {
        let block = self.block.as_mut().expect("in a block");
        while let Some(i) = memchr::memchr(b'\n', data) {
            block.take(&data[..i]);
            data = &data[i + 1..];
            if block.line == b"\\." && !block.long {
                if let Some(block) = self.block.take() {
                    *self.tables.entry(block.table).or_insert(0) += block.rows;
                }
                return data;
            }
            block.rows += 1;
            block.line.clear();
            block.long = false;
        }
        block.take(data);
        &[]
    }

    /// Reads statements up to the start of a block's data; returns the data.
    fn feed_statements<'d>(&mut self, data: &'d [u8]) -> &'d [u8] {
        for (i, &b) in data.iter().enumerate() {
            if b == b'\n'
                && let Some(table) = self.starting.take()
            {
                self.tables.entry(table.clone()).or_insert(0);
                self.order.push(table.clone());
                self.block = Some(Block {
                    table,
                    rows: 0,
                    line: Vec::new(),
                    long: false,
                });
                return &data[i + 1..];
            }
            if let Some(s) = &mut self.statement {
                s.push(b);
                // Only a COPY statement is kept, and only as long as a name can make it.
                if (s.len() <= 5 && !b"COPY ".starts_with(s)) || s.len() > HEADER_MAX {
                    self.statement = None;
                }
            }
            self.step(b);
        }
        &[]
    }

    fn step(&mut self, b: u8) {
        self.lex = match std::mem::replace(&mut self.lex, Lex::Top) {
            Lex::Top => return self.top(b),
            Lex::Dash if b == b'-' => Lex::LineComment,
            Lex::Slash if b == b'*' => Lex::BlockComment { depth: 1, last: 0 },
            Lex::Dash | Lex::Slash => {
                // A statement that starts with `-` or `/` is no COPY statement.
                if !self.in_statement {
                    self.begin_statement(None);
                }
                return self.top(b);
            }
            Lex::LineComment | Lex::MetaCommand if b == b'\n' => Lex::Top,
            lex @ (Lex::LineComment | Lex::MetaCommand) => lex,
            Lex::BlockComment { depth, last } => match (last, b) {
                (b'*', b'/') if depth == 1 => Lex::Top,
                (b'*', b'/') => Lex::BlockComment {
                    depth: depth - 1,
                    last: 0,
                },
                (b'/', b'*') => Lex::BlockComment {
                    depth: depth + 1,
                    last: 0,
                },
                _ => Lex::BlockComment { depth, last: b },
            },
            Lex::Str {
                escapes,
                backslash: false,
            } => match b {
                b'\'' => Lex::StrEnd { escapes },
                b'\\' if escapes => Lex::Str {
                    escapes,
                    backslash: true,
                },
                _ => Lex::Str {
                    escapes,
                    backslash: false,
                },
            },
            Lex::Str {
                escapes,
                backslash: true,
            } => Lex::Str {
                escapes,
                backslash: false,
            },
            Lex::StrEnd { escapes } if b == b'\'' => Lex::Str {
                escapes,
                backslash: false,
            },
            Lex::Name if b == b'"' => Lex::NameEnd,
            Lex::Name => Lex::Name,
            Lex::NameEnd if b == b'"' => Lex::Name,
            Lex::StrEnd { .. } | Lex::NameEnd => {
                self.word = 0;
                return self.top(b);
            }
            Lex::DollarOpen(tag) if b == b'$' => Lex::Dollar { tag, matched: 0 },
            Lex::DollarOpen(mut tag)
                if is_ident_byte(b) && !(tag.is_empty() && b.is_ascii_digit()) =>
            {
                tag.push(b);
                Lex::DollarOpen(tag)
            }
            Lex::DollarOpen(tag) => {
                // Not a dollar quote after all (`$1`): the bytes were a word.
                self.word = tag.len() + 1;
                return self.top(b);
            }
            Lex::Dollar { tag, matched } => {
                // The closing `$tag$`, byte by byte; a `$` may always start it afresh.
                let expected = match matched {
                    0 => b'$',
                    m if m <= tag.len() => tag[m - 1],
                    _ => b'$',
                };
                if b == expected && matched == tag.len() + 1 {
                    Lex::Top
                } else if b == expected {
                    Lex::Dollar {
                        tag,
                        matched: matched + 1,
                    }
                } else {
                    Lex::Dollar {
                        tag,
                        matched: usize::from(b == b'$'),
                    }
                }
            }
        };
        if self.lex == Lex::Top {
            self.word = 0;
            self.last = b;
        }
    }

    /// One byte at the top level.
    fn top(&mut self, b: u8) {
        let word = self.word;
        self.word = 0;
        let last = std::mem::replace(&mut self.last, b);
        if b.is_ascii_whitespace() {
            return;
        }
        if !self.in_statement {
            match b {
                b'-' => return self.lex = Lex::Dash,
                b'/' => return self.lex = Lex::Slash,
                b'\\' => return self.lex = Lex::MetaCommand,
                b';' => return,
                _ => self.begin_statement(Some(b)),
            }
        }
        match b {
            b';' => {
                self.in_statement = false;
                if let Some(statement) = self.statement.take() {
                    self.starting = copy_target(&statement);
                }
            }
            b'\'' => {
                let escapes = word == 1 && matches!(last, b'E' | b'e');
                self.lex = Lex::Str {
                    escapes,
                    backslash: false,
                };
            }
            b'"' => self.lex = Lex::Name,
            b'$' if word == 0 => self.lex = Lex::DollarOpen(Vec::new()),
            b'-' => self.lex = Lex::Dash,
            b'/' => self.lex = Lex::Slash,
            _ if is_ident_byte(b) || b == b'$' => self.word = word + 1,
            _ => {}
        }
    }

    /// A statement begins with `first` (kept, as it may be a COPY statement) or with a byte
    /// that makes it no COPY statement.
    fn begin_statement(&mut self, first: Option<u8>) {
        self.in_statement = true;
        self.starting = None;
        self.statement = first.filter(|&b| b == b'C').map(|b| vec![b]);
    }
}

impl Block {
    fn take(&mut self, part: &[u8]) {
        let room = 3usize.saturating_sub(self.line.len());
        if part.len() > room {
            self.long = true;
        }
        self.line.extend_from_slice(&part[..part.len().min(room)]);
    }
}

impl<R> crate::provider::InTable for CopyCounter<R> {
    /// The COPY block being read: its table (schema-qualified outside `public`, as the manifest
    /// names it) and its rows so far.
    fn in_table(&self) -> Option<(String, u64)> {
        let block = self.block.as_ref()?;
        let (schema, table) = &block.table;
        let table = String::from_utf8_lossy(table);
        let name = if schema == b"public" {
            table.into_owned()
        } else {
            format!("{}.{table}", String::from_utf8_lossy(schema))
        };
        Some((name, block.rows))
    }
}

impl<R: Read> Read for CopyCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.feed(&buf[..n]);
        Ok(n)
    }
}

/// A byte of an unquoted name (or of a dollar quote's tag).
fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// The table of a whole `COPY <schema>.<table> [(columns)] FROM stdin;` statement: each name
/// bare (lowercased, as the server reads it) or in double quotes with `""` for a quote, and the
/// quotes may hold anything, newlines included.
fn copy_target(statement: &[u8]) -> Option<CopyTarget> {
    let rest = statement.strip_prefix(b"COPY ")?;
    if !rest.ends_with(b" FROM stdin;") {
        return None;
    }
    let (schema, rest) = name(rest)?;
    let (table, rest) = name(rest.strip_prefix(b".")?)?;
    matches!(rest.first(), Some(b' ')).then_some((schema, table))
}

/// A name at the start of `text`, and what follows it.
fn name(text: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let Some(quoted) = text.strip_prefix(b"\"") else {
        let end = text
            .iter()
            .position(|b| matches!(b, b'.' | b' ' | b'('))
            .unwrap_or(text.len());
        return (end > 0).then(|| (text[..end].to_ascii_lowercase(), &text[end..]));
    };
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        match quoted.get(i)? {
            b'"' if quoted.get(i + 1) == Some(&b'"') => {
                out.push(b'"');
                i += 2;
            }
            b'"' => return Some((out, &quoted[i + 1..])),
            &b => {
                out.push(b);
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(dump: &str, chunk: usize) -> BTreeMap<(String, String), u64> {
        let mut c = CopyCounter::new(dump.as_bytes());
        let mut buf = vec![0; chunk];
        while c.read(&mut buf).unwrap() > 0 {}
        c.tables()
            .iter()
            .map(|((s, t), n)| {
                (
                    (
                        String::from_utf8(s.clone()).unwrap(),
                        String::from_utf8(t.clone()).unwrap(),
                    ),
                    *n,
                )
            })
            .collect()
    }

    fn target(schema: &str, table: &str) -> CopyTarget {
        (schema.as_bytes().to_vec(), table.as_bytes().to_vec())
    }

    #[test]
    fn psql_answers_each_block_in_order_and_only_a_full_answer_counts() {
        let dump = "SET x = 1;\nCOPY public.a (x) FROM stdin;\n1\n2\n\\.\n\
            COPY public.b (x) FROM stdin;\n\\.\nCOPY public.a (x) FROM stdin;\n3\n\\.\n";
        let mut c = CopyCounter::new(dump.as_bytes());
        std::io::copy(&mut c, &mut std::io::sink()).unwrap();
        assert_eq!(
            c.blocks(),
            [
                target("public", "a"),
                target("public", "b"),
                target("public", "a")
            ]
        );
        // Other tags and result rows are not answers; a row that says "COPY 7 " is not either.
        let printed = "SET\n set_config \n------------\n \n(1 row)\n\nCOPY 2\nCOPY 0\n\
            CREATE INDEX\nCOPY 7 \nCOPY 1\n";
        let lines = |text: &str| text.lines().map(str::to_string).collect::<Vec<_>>();
        let counts = server_counts(c.blocks(), &lines(printed)).unwrap();
        assert_eq!(counts[&target("public", "a")], 3);
        assert_eq!(counts[&target("public", "b")], 0);
        assert!(is_copy_answer("COPY 0") && !is_copy_answer("COPY ") && !is_copy_answer(" COPY 1"));
        // An answer missing, or one too many: nothing is taken from them.
        assert_eq!(server_counts(c.blocks(), &lines("COPY 2\nCOPY 0\n")), None);
        assert_eq!(
            server_counts(c.blocks(), &lines("COPY 2\nCOPY 0\nCOPY 1\nCOPY 1\n")),
            None
        );
    }

    /// What a progress display is told as the stream goes by, read after read.
    #[test]
    fn the_table_being_read_is_told_with_its_rows_so_far() {
        use crate::provider::{TableProgress, Watched};
        let dump = "CREATE TABLE public.t (x int);\n\
            COPY public.t (x) FROM stdin;\n1\n2\n3\n\\.\n\
            COPY billing.\"Ev ents\" (a) FROM stdin;\nrow\n\\.\nCREATE INDEX i ON t (x);\n";
        let progress = TableProgress::default();
        let mut watched = Watched::new(CopyCounter::new(dump.as_bytes()), Some(&progress));
        let mut seen = Vec::new();
        let mut buf = [0u8; 4];
        while watched.read(&mut buf).unwrap() > 0 {
            if let Some(now) = progress.now()
                && seen.last() != Some(&now)
            {
                seen.push(now);
            }
        }
        let mut tables: Vec<(usize, &str)> =
            seen.iter().map(|t| (t.number, t.name.as_str())).collect();
        tables.dedup();
        assert_eq!(tables, [(1, "t"), (2, "billing.Ev ents")]);
        // The rows of a table only grow, and reach what was read of it.
        assert!(
            seen.windows(2)
                .all(|w| w[0].number != w[1].number || w[0].rows <= w[1].rows)
        );
        assert!(
            seen.iter().any(|t| t.name == "t" && t.rows >= 2),
            "{seen:?}"
        );
    }

    fn key(s: &str, t: &str) -> (String, String) {
        (s.to_string(), t.to_string())
    }

    #[test]
    fn counts_each_copy_block_whatever_the_read_sizes() {
        let dump = "--\n-- PostgreSQL database dump\n--\n\\restrict abc\nCREATE TABLE public.t (x int);\n\
            COPY public.t (x, y) FROM stdin;\n1\ta\n2\t\\\\.\n3\t\\N\n\\.\n\n\
            COPY \"Odd \"\"Name\"\".\".\"x\" (a) FROM stdin;\n\\.\n\
            COPY s.\"with space\" FROM stdin;\nrow one\n\\.\n\
            -- COPY public.fake (x) FROM stdin; in a comment is no block\n\
            INSERT INTO t VALUES ('COPY public.t FROM stdin;');\n\
            COPY public.\"line\nbreak\" (id, \"co\nl\") FROM stdin;\n1\ta\\nb\n\\.\n\
            \\unrestrict abc\n";
        for chunk in [1, 2, 3, 7, 64, 4096] {
            let tables = count(dump, chunk);
            assert_eq!(tables.len(), 4, "{chunk}: {tables:?}");
            assert_eq!(tables[&key("public", "t")], 3, "{chunk}");
            assert_eq!(tables[&key("Odd \"Name\".", "x")], 0, "{chunk}");
            assert_eq!(tables[&key("s", "with space")], 1, "{chunk}");
            assert_eq!(tables[&key("public", "line\nbreak")], 1, "{chunk}");
        }
    }

    /// Lines that look like a COPY block inside a string, a comment or a function body are
    /// none: only the real block is counted.
    #[test]
    fn copy_lines_in_strings_comments_and_bodies_are_no_blocks() {
        let fake = "\nCOPY public.t (x) FROM stdin;\n1\n2\n\\.\n";
        let dump = format!(
            "CREATE TABLE public.t (x int);\n\
             COMMENT ON TABLE public.t IS 'it''s{fake}';\n\
             COMMENT ON COLUMN public.t.x IS E'\\'{fake}';\n\
             CREATE FUNCTION public.f() RETURNS int LANGUAGE plpgsql AS $_$ BEGIN{fake}RETURN 1; END $_$;\n\
             CREATE FUNCTION public.g() RETURNS int LANGUAGE sql AS $$ SELECT 1 /* $x$ */{fake}$$;\n\
             CREATE VIEW public.\"v{fake}\" AS SELECT 1;\n\
             /* a /* nested */{fake}*/\n\
             SELECT $tag$ $ta$ $$ {fake} $tag$, a$b, $1;\n\
             -- COPY public.t (x) FROM stdin;\n\
             COPY public.t (x) FROM stdin;\n7\n\\.\n"
        );
        for chunk in [1, 5, 4096] {
            let tables = count(&dump, chunk);
            assert_eq!(
                tables.into_iter().collect::<Vec<_>>(),
                [(key("public", "t"), 1)],
                "{chunk}"
            );
        }
    }

    #[test]
    fn names_are_read_unquoted() {
        let target = |s: &str| {
            copy_target(s.as_bytes())
                .map(|(a, b)| (String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap()))
        };
        assert_eq!(
            target("COPY public.events (id, note) FROM stdin;"),
            Some(key("public", "events"))
        );
        assert_eq!(
            target("COPY \"a.b\".\"c (d\" (x) FROM stdin;"),
            Some(key("a.b", "c (d"))
        );
        assert_eq!(
            target("COPY \"we.ird\nschema\".\"p\n2\" (\"x) FROM stdin;\") FROM stdin;"),
            Some(key("we.ird\nschema", "p\n2"))
        );
        assert_eq!(target("COPY public.t TO stdout;"), None);
        assert_eq!(target("COPY \"unterminated FROM stdin;"), None);
        assert_eq!(target("COPY t (x) FROM stdin;"), None);
    }
}
