//! Per-table row counts read off a `mysqldump` stream as it passes: every `CREATE TABLE` statement
//! names a table, every top-level tuple after `VALUES` of an `INSERT INTO` a table so created is a
//! row. The counts describe exactly the dumped data — mysqldump's consistent snapshot is its own,
//! and no other session could count in it.
//!
//! The dump is read the way the `mysql` client reads it: statements end at the delimiter (which
//! `DELIMITER` changes around trigger and routine bodies) outside strings, backquoted names and
//! comments, and only a statement's own start says what it is. A name may hold a newline, and a
//! string in a trigger body may hold lines that look like `DELIMITER ;` and an `INSERT`: neither
//! is taken for a statement.

use std::collections::BTreeMap;
use std::io::{self, Read};

const INSERT: &[u8] = b"INSERT INTO `";
const CREATE: &[u8] = b"CREATE TABLE `";
/// The client's command (any case), followed by the new delimiter on the rest of its line.
const DELIMITER: &[u8] = b"DELIMITER ";

/// The bytes that mean something at the top level of a statement once its kind is known and its
/// rows are being read: quotes, parentheses, and what may start a comment.
const TOP_LEVEL_SIGNS: [bool; 256] = {
    let mut signs = [false; 256];
    let mut i = 0;
    let marks = b"'\"`()-/#";
    while i < marks.len() {
        signs[marks[i] as usize] = true;
        i += 1;
    }
    signs
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Statement {
    Insert,
    Create,
}

/// Where the reader is, as the client's own reading goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Lex {
    /// Outside strings, names and comments.
    Top,
    /// Just after a `-`: a second one and a space start a comment.
    Dash,
    /// Just after `--`.
    DashDash,
    /// Just after a `/`: a `*` starts a comment.
    Slash,
    /// Just after `/*`: `!` (or `M!`) makes it a comment whose content runs.
    SlashStar,
    SlashStarM,
    /// In a `--` or `#` comment, until the end of the line.
    LineComment,
    /// In a `/* */` comment; `star` when the previous byte was a `*`.
    BlockComment {
        star: bool,
    },
    /// In a string quoted with `quote` (`'` or `"`); `backslash` just after a backslash.
    Quoted {
        quote: u8,
        backslash: bool,
    },
    /// Just after a quote that may close a string, or be the first of a doubled one.
    QuotedEnd {
        quote: u8,
    },
    /// In a backquoted name.
    Backquote,
    /// Just after a backquote that may close a name, or be the first of a doubled one.
    BackquoteEnd,
    /// In a `DELIMITER` command: the rest of its line.
    DelimiterLine(Vec<u8>),
}

/// An `INSERT` whose rows are being counted.
struct Insert {
    /// The table, when the dump created it (anything else is not a table's data).
    table: Option<String>,
    /// Whether `VALUES` was seen: each top-level `(` from then on starts a row.
    values: bool,
    depth: u32,
    /// The letters of the word being read, to find `VALUES` (longer words are cut).
    word: Vec<u8>,
}

/// Counts rows per table in the dump read through it.
pub struct RowCounter<R> {
    inner: R,
    lex: Lex,
    delimiter: Vec<u8>,
    /// How much of the delimiter the last top-level bytes matched.
    matched: usize,
    /// Whether a statement has begun since the last delimiter.
    in_statement: bool,
    /// The first bytes of the statement, while they may still say what it is.
    head: Option<Vec<u8>>,
    /// The backquoted table name of an INSERT or CREATE TABLE, as it is read.
    name: Option<(Statement, Vec<u8>)>,
    insert: Option<Insert>,
    tables: BTreeMap<String, u64>,
}

impl<R: Read> RowCounter<R> {
    pub fn new(inner: R) -> Self {
        RowCounter {
            inner,
            lex: Lex::Top,
            delimiter: b";".to_vec(),
            matched: 0,
            in_statement: false,
            head: None,
            name: None,
            insert: None,
            tables: BTreeMap::new(),
        }
    }

    /// The tables seen, with their row counts.
    pub fn tables(&self) -> &BTreeMap<String, u64> {
        &self.tables
    }

    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    fn feed(&mut self, mut bytes: &[u8]) {
        while let Some((&b, rest)) = bytes.split_first() {
            let skip = self.inert(bytes);
            if skip > 0 {
                bytes = &bytes[skip..];
                continue;
            }
            if self.read_head(b) {
                self.step(b);
            }
            bytes = rest;
        }
    }

    /// How many of the first `bytes` would change nothing but the position: the inside of a
    /// string up to its quote or a backslash, and a statement's top-level bytes up to one that
    /// matters (a quote, a parenthesis, a comment's start, the delimiter). Rows are mostly
    /// these, so they are passed over with `memchr` and a table instead of byte by byte.
    fn inert(&self, bytes: &[u8]) -> usize {
        if self.head.is_some() || self.name.is_some() {
            return 0;
        }
        match self.lex {
            Lex::Quoted {
                quote,
                backslash: false,
            } => {
                // A backslash and the byte it escapes leave the string as it was: passed over
                // too, unless the backslash ends the read.
                let mut at = 0;
                loop {
                    match memchr::memchr2(quote, b'\\', &bytes[at..]) {
                        None => break bytes.len(),
                        Some(i) if bytes[at + i] == b'\\' && at + i + 1 < bytes.len() => {
                            at += i + 2;
                        }
                        Some(i) => break at + i,
                    }
                }
            }
            Lex::Top
                if self.in_statement
                    && self.matched == 0
                    && self.insert.as_ref().is_none_or(|i| i.values) =>
            {
                let delimiter = self.delimiter.first().copied();
                bytes
                    .iter()
                    .position(|&b| TOP_LEVEL_SIGNS[usize::from(b)] || Some(b) == delimiter)
                    .unwrap_or(bytes.len())
            }
            _ => 0,
        }
    }

    /// Adds `b` to the statement's first bytes; false when it was taken as part of a
    /// `DELIMITER` command.
    fn read_head(&mut self, b: u8) -> bool {
        let Some(head) = &mut self.head else {
            return true;
        };
        head.push(b);
        if head == INSERT || head == CREATE {
            let s = if head == INSERT {
                Statement::Insert
            } else {
                Statement::Create
            };
            self.head = None;
            self.name = Some((s, Vec::new()));
        } else if head.eq_ignore_ascii_case(DELIMITER) {
            self.head = None;
            self.lex = Lex::DelimiterLine(Vec::new());
            return false;
        } else if !(INSERT.starts_with(head)
            || CREATE.starts_with(head)
            || DELIMITER.len() > head.len() && DELIMITER[..head.len()].eq_ignore_ascii_case(head))
        {
            self.head = None;
        }
        true
    }

    fn step(&mut self, b: u8) {
        let was = std::mem::replace(&mut self.lex, Lex::Top);
        self.lex = match was {
            Lex::Top => return self.top(b),
            Lex::Dash if b == b'-' => Lex::DashDash,
            Lex::DashDash if b <= b' ' => {
                if b == b'\n' {
                    Lex::Top
                } else {
                    Lex::LineComment
                }
            }
            Lex::Slash if b == b'*' => Lex::SlashStar,
            Lex::SlashStar if b == b'M' => Lex::SlashStarM,
            Lex::SlashStar | Lex::SlashStarM if b == b'!' => {
                // A comment the server runs: its content is read as statements are.
                if !self.in_statement {
                    self.begin_statement(None);
                }
                Lex::Top
            }
            Lex::SlashStar | Lex::SlashStarM => Lex::BlockComment { star: b == b'*' },
            Lex::Dash | Lex::DashDash | Lex::Slash => {
                // An operator after all; a statement that starts with one is none of ours.
                if !self.in_statement {
                    self.begin_statement(None);
                }
                return self.top(b);
            }
            Lex::LineComment if b == b'\n' => Lex::Top,
            Lex::LineComment => Lex::LineComment,
            Lex::BlockComment { star: true } if b == b'/' => Lex::Top,
            Lex::BlockComment { .. } => Lex::BlockComment { star: b == b'*' },
            Lex::Quoted {
                quote,
                backslash: true,
            } => Lex::Quoted {
                quote,
                backslash: false,
            },
            Lex::Quoted { quote, .. } if b == quote => Lex::QuotedEnd { quote },
            Lex::Quoted { quote, .. } => Lex::Quoted {
                quote,
                backslash: b == b'\\',
            },
            Lex::QuotedEnd { quote } if b == quote => Lex::Quoted {
                quote,
                backslash: false,
            },
            Lex::Backquote if b == b'`' => Lex::BackquoteEnd,
            Lex::Backquote => {
                if let Some((_, name)) = &mut self.name {
                    name.push(b);
                }
                Lex::Backquote
            }
            Lex::BackquoteEnd if b == b'`' => {
                if let Some((_, name)) = &mut self.name {
                    name.push(b'`');
                }
                Lex::Backquote
            }
            Lex::QuotedEnd { .. } => return self.top(b),
            Lex::BackquoteEnd => {
                self.named();
                return self.top(b);
            }
            Lex::DelimiterLine(line) if b == b'\n' => {
                // `DELIMITER ;;` starts a block of trigger and routine bodies, `DELIMITER ;`
                // ends it: the first word is the delimiter.
                if let Some(word) = line
                    .split(|c| c.is_ascii_whitespace())
                    .find(|w| !w.is_empty())
                {
                    self.delimiter = word.to_vec();
                }
                self.in_statement = false;
                self.matched = 0;
                Lex::Top
            }
            Lex::DelimiterLine(mut line) => {
                line.push(b);
                Lex::DelimiterLine(line)
            }
        };
    }

    /// One byte outside strings, names and comments.
    fn top(&mut self, b: u8) {
        if !self.in_statement {
            match b {
                _ if b.is_ascii_whitespace() => {}
                b'-' => self.lex = Lex::Dash,
                b'/' => self.lex = Lex::Slash,
                b'#' => self.lex = Lex::LineComment,
                _ => self.begin_statement(Some(b)),
            }
            if !self.in_statement {
                return;
            }
        }
        if self.end_of_statement(b) {
            return;
        }
        if let Some(insert) = &mut self.insert {
            insert.read(b, &mut self.tables);
        }
        match b {
            b'\'' | b'"' => {
                self.lex = Lex::Quoted {
                    quote: b,
                    backslash: false,
                }
            }
            b'`' => self.lex = Lex::Backquote,
            b'-' => self.lex = Lex::Dash,
            b'/' => self.lex = Lex::Slash,
            b'#' => self.lex = Lex::LineComment,
            _ => {}
        }
    }

    /// Whether `b` completes the delimiter, which ends the statement.
    fn end_of_statement(&mut self, b: u8) -> bool {
        if self.delimiter.get(self.matched) == Some(&b) {
            self.matched += 1;
        } else {
            self.matched = usize::from(self.delimiter.first() == Some(&b));
        }
        if self.matched < self.delimiter.len() {
            return false;
        }
        self.matched = 0;
        self.in_statement = false;
        self.head = None;
        self.name = None;
        self.insert = None;
        true
    }

    /// A statement begins with `first` (which may start an INSERT, a CREATE TABLE or a
    /// DELIMITER) or with something that is none of them.
    fn begin_statement(&mut self, first: Option<u8>) {
        self.in_statement = true;
        self.head = first.map(|b| vec![b]);
        self.name = None;
        self.insert = None;
    }

    /// The backquoted name of an INSERT or CREATE TABLE was read.
    fn named(&mut self) {
        let Some((statement, name)) = self.name.take() else {
            return;
        };
        let name = String::from_utf8_lossy(&name).into_owned();
        match statement {
            Statement::Create => {
                self.tables.entry(name).or_insert(0);
            }
            Statement::Insert => {
                self.insert = Some(Insert {
                    table: self.tables.contains_key(&name).then_some(name),
                    values: false,
                    depth: 0,
                    word: Vec::new(),
                });
            }
        }
    }
}

impl Insert {
    /// One top-level byte of the INSERT after its table's name.
    fn read(&mut self, b: u8, tables: &mut BTreeMap<String, u64>) {
        if b.is_ascii_alphabetic() {
            if self.word.len() < 7 {
                self.word.push(b);
            }
            return;
        }
        if self.depth == 0 && self.word.eq_ignore_ascii_case(b"VALUES") {
            self.values = true;
        }
        self.word.clear();
        match b {
            b'(' => {
                if self.depth == 0
                    && self.values
                    && let Some(rows) = self.table.as_ref().and_then(|t| tables.get_mut(t))
                {
                    *rows += 1;
                }
                self.depth += 1;
            }
            b')' => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
    }
}

impl<R> crate::provider::InTable for RowCounter<R> {
    /// The table whose INSERT is being read, and its rows so far.
    fn in_table(&self) -> Option<(String, u64)> {
        let table = self.insert.as_ref()?.table.as_ref()?;
        Some((table.clone(), self.tables.get(table).copied().unwrap_or(0)))
    }
}

impl<R: Read> Read for RowCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.feed(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(dump: &str, chunk: usize) -> BTreeMap<String, u64> {
        let mut c = RowCounter::new(dump.as_bytes());
        let mut buf = vec![0; chunk];
        while c.read(&mut buf).unwrap() > 0 {}
        c.tables().clone()
    }

    const DUMP: &str = "/*M!999999\\- enable the sandbox mode */ \n-- MariaDB dump\n\
        DROP TABLE IF EXISTS `a`;\n\
        CREATE TABLE `a` (\n  `id` int NOT NULL,\n  `t` text\n);\n\
        LOCK TABLES `a` WRITE;\n\
        INSERT INTO `a` VALUES\n(1,'it\\'s (not) a tuple'),\n(2,'semi;colon'),\n(3,'quote''d'),\n(4,NULL);\n\
        UNLOCK TABLES;\n\
        CREATE TABLE `we``ird` (`x` int);\n\
        INSERT INTO `we``ird` VALUES (1),(2),(3);\n\
        INSERT INTO `we``ird` VALUES (4);\n\
        CREATE TABLE `empty` (`x` int);\n\
        /*!50001 CREATE VIEW `v` AS SELECT\n 1 AS `id` */;\n\
        INSERT INTO `a` (`id`, `t`) VALUES (5,'back\\\\slash'),(6,'x');\n\
        DELIMITER ;;\n\
        /*!50003 CREATE*/ /*!50003 TRIGGER tr AFTER INSERT ON a FOR EACH ROW BEGIN\n\
        INSERT INTO `a` VALUES (99,'no row');\n\
        CREATE TABLE `not_a_table` (x int);\n\
        END */;;\n\
        DELIMITER ;\n\
        INSERT INTO `never_created` VALUES (1);\n\
        -- Dump completed on 2026-01-01\n";

    #[test]
    fn counts_tuples_per_table_whatever_the_chunking() {
        for chunk in [1, 2, 7, 4096] {
            let tables = count(DUMP, chunk);
            assert_eq!(
                tables.into_iter().collect::<Vec<_>>(),
                [
                    ("a".to_string(), 6),
                    ("empty".to_string(), 0),
                    ("we`ird".to_string(), 4)
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn the_table_being_read_is_told_with_its_rows_so_far() {
        use crate::provider::{TableProgress, Watched};
        let progress = TableProgress::default();
        let mut watched = Watched::new(RowCounter::new(DUMP.as_bytes()), Some(&progress));
        let mut told = Vec::new();
        let mut buf = [0u8; 16];
        while watched.read(&mut buf).unwrap() > 0 {
            if let Some(now) = progress.now() {
                let now = (now.number, now.name, now.rows);
                if told.last() != Some(&now) {
                    told.push(now);
                }
            }
        }
        let mut names: Vec<(usize, &str)> = told.iter().map(|(n, t, _)| (*n, t.as_str())).collect();
        names.dedup();
        // `a`, then `we``ird`, then `a` again (its later INSERT): the place goes on counting.
        assert_eq!(names, [(1, "a"), (2, "we`ird"), (3, "a")]);
        assert!(told.iter().any(|(_, t, r)| t == "a" && *r >= 4), "{told:?}");
        // An INSERT into a table the dump did not create is nobody's row.
        assert!(told.iter().all(|(_, t, _)| t != "never_created"));
    }

    /// Long rows whose strings hold what would matter outside them — quotes doubled and escaped,
    /// `),(`, the delimiter, comment starts — with every read ending somewhere else in them: the
    /// fast passes over strings and rows count as the byte-by-byte reading does.
    #[test]
    fn long_rows_are_counted_whatever_their_strings_hold_and_wherever_reads_end() {
        let mut dump = String::from("CREATE TABLE `t` (`a` int, `b` text);\n");
        let mut rows = 0;
        for statement in 0..20 {
            dump.push_str("INSERT INTO `t` VALUES ");
            for row in 0..50 {
                if row > 0 {
                    dump.push(',');
                }
                let text = match (statement + row) % 5 {
                    0 => "it\\'s ),( not; a -- row # /* */".to_string(),
                    1 => "quote''d \\\\ back\\\\slash ;".repeat(7),
                    2 => "\"double\" `tick` (((".to_string(),
                    3 => "x".repeat(300),
                    _ => String::new(),
                };
                let quoted = text.replace('"', "\\\"");
                dump.push_str(&format!("({row},'{text}',\"{quoted}\",NULL,-1.5e3)"));
                rows += 1;
            }
            dump.push_str(";\n-- a comment (1),(2);\n/* (3) */\n");
        }
        for chunk in [1, 5, 64, 333, 4096, 1 << 20] {
            let tables = count(&dump, chunk);
            assert_eq!(tables.get("t"), Some(&rows), "chunk {chunk}");
        }
    }

    /// Names with newlines, and bodies whose strings hold lines like `DELIMITER ;` and an
    /// INSERT, as mysqldump writes them: only the real statements count.
    #[test]
    fn names_and_strings_spanning_lines_are_read_as_the_client_reads_them() {
        let dump = "-- Table structure for table `line\n-- break`\n\
            CREATE TABLE `line\nbreak` (\n  `co\nl` text\n) COMMENT='x\\nINSERT INTO `a` VALUES (1);';\n\
            INSERT INTO `line\nbreak` VALUES\n(1,'a\\nb'),(2,'\n(3)\n');\n\
            CREATE TABLE `a` (x int);\n\
            INSERT INTO `a` VALUES (1);\n\
            DELIMITER ;;\n\
            /*!50003 CREATE*/ /*!50003 TRIGGER trg BEFORE INSERT ON `a` FOR EACH ROW BEGIN SET @a = \"\n\
            DELIMITER ;\n\
            INSERT INTO `a` VALUES (7),(8);\n\
            CREATE TABLE `ghost` (x int);\n\
            DELIMITER ;;\n\
            \"; /* ;; */ SET @b = 'x''\n;;\n'; END */;;\n\
            CREATE PROCEDURE `p`()\nSELECT '\nDELIMITER ;\nINSERT INTO `a` VALUES (9);\n' # ;;\n;;\n\
            DELIMITER ;\n\
            INSERT INTO `a` VALUES (2),(3);\n";
        for chunk in [1, 3, 4096] {
            let tables = count(dump, chunk);
            assert_eq!(
                tables.into_iter().collect::<Vec<_>>(),
                [("a".to_string(), 3), ("line\nbreak".to_string(), 2)],
                "chunk {chunk}"
            );
        }
    }
}
