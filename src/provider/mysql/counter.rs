//! Per-table row counts read off a `mysqldump` stream as it passes: every `CREATE TABLE` at the
//! start of a line names a table, every top-level tuple of an `INSERT INTO … VALUES` into a table
//! so named is a row. Trigger and routine bodies (between `DELIMITER ;;` and `DELIMITER ;`) are
//! not read: an `INSERT` line in a trigger is no row. The counts describe exactly the dumped
//! data — mysqldump's consistent snapshot is its own, and no other session could count in it.

use std::collections::BTreeMap;
use std::io::{self, Read};

const INSERT: &[u8] = b"INSERT INTO `";
const CREATE: &[u8] = b"CREATE TABLE `";
const VALUES: &[u8] = b" VALUES";
const DELIMITER: &[u8] = b"DELIMITER ";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Statement {
    Insert,
    Create,
}

const PATTERNS: [&[u8]; 3] = [INSERT, CREATE, DELIMITER];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line, `n` bytes into matching one of the statement prefixes.
    LineStart(usize),
    /// In a line that is not one of ours, until its end.
    SkipLine,
    /// In a `DELIMITER x` line, reading the delimiter.
    Delimiter,
    /// Inside the backquoted table name of a statement.
    Name(Statement),
    /// Just after a backquote inside the name: a second one is a literal backquote.
    NameQuote(Statement),
    /// After an INSERT's table name, `n` bytes into matching ` VALUES`.
    SeekValues(usize),
    /// In the value list of an INSERT, at this parenthesis depth, outside any string.
    Values(u32),
    /// In a quoted string of the value list (the depth to return to).
    InString(u32),
    /// Just after a backslash in a string.
    Escape(u32),
}

/// Counts rows per table in the dump read through it.
pub struct RowCounter<R> {
    inner: R,
    state: State,
    name: Vec<u8>,
    current: Option<String>,
    tables: BTreeMap<String, u64>,
    /// Inside a `DELIMITER ;;` block (trigger, routine and event bodies).
    in_routines: bool,
}

impl<R: Read> RowCounter<R> {
    pub fn new(inner: R) -> Self {
        RowCounter {
            inner,
            state: State::LineStart(0),
            name: Vec::new(),
            current: None,
            tables: BTreeMap::new(),
            in_routines: false,
        }
    }

    /// The tables seen, with their row counts.
    pub fn tables(&self) -> &BTreeMap<String, u64> {
        &self.tables
    }

    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.state = self.step(b);
        }
    }

    fn step(&mut self, b: u8) -> State {
        match self.state {
            State::LineStart(n) => {
                if b == b'\n' {
                    return State::LineStart(0);
                }
                let mut matching = PATTERNS
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| n < p.len() && p[n] == b);
                let Some((which, pattern)) = matching.next() else {
                    return State::SkipLine;
                };
                if n + 1 < pattern.len() {
                    return State::LineStart(n + 1);
                }
                match which {
                    2 => {
                        self.name.clear();
                        State::Delimiter
                    }
                    _ if self.in_routines => State::SkipLine,
                    0 => self.start_name(Statement::Insert),
                    _ => self.start_name(Statement::Create),
                }
            }
            State::Delimiter => {
                if b == b'\n' {
                    // `DELIMITER ;` ends the block of bodies, any other delimiter starts one.
                    self.in_routines = self.name.trim_ascii() != b";";
                    State::LineStart(0)
                } else {
                    self.name.push(b);
                    State::Delimiter
                }
            }
            State::SkipLine => {
                if b == b'\n' {
                    State::LineStart(0)
                } else {
                    State::SkipLine
                }
            }
            State::Name(s) => {
                if b == b'`' {
                    State::NameQuote(s)
                } else {
                    self.name.push(b);
                    State::Name(s)
                }
            }
            State::NameQuote(s) => {
                if b == b'`' {
                    self.name.push(b'`');
                    return State::Name(s);
                }
                let name = String::from_utf8_lossy(&self.name).into_owned();
                match s {
                    Statement::Create => {
                        self.tables.entry(name).or_insert(0);
                        if b == b'\n' {
                            State::LineStart(0)
                        } else {
                            State::SkipLine
                        }
                    }
                    Statement::Insert => {
                        // Only into a table the dump created: anything else is not a table's
                        // data.
                        self.current = self.tables.contains_key(&name).then_some(name);
                        self.seek_values(0, b)
                    }
                }
            }
            State::SeekValues(n) => self.seek_values(n, b),
            State::Values(depth) => match b {
                b'(' => {
                    if depth == 0
                        && let Some(t) = self.current.as_ref().and_then(|c| self.tables.get_mut(c))
                    {
                        *t += 1;
                    }
                    State::Values(depth + 1)
                }
                b')' => State::Values(depth.saturating_sub(1)),
                b'\'' => State::InString(depth),
                b';' if depth == 0 => {
                    self.current = None;
                    State::SkipLine
                }
                _ => State::Values(depth),
            },
            State::InString(depth) => match b {
                b'\\' => State::Escape(depth),
                b'\'' => State::Values(depth),
                _ => State::InString(depth),
            },
            State::Escape(depth) => State::InString(depth),
        }
    }

    fn start_name(&mut self, s: Statement) -> State {
        self.name.clear();
        State::Name(s)
    }

    /// Matches ` VALUES` after an INSERT's table name; anything else (a column list) is skipped
    /// until it is found.
    fn seek_values(&mut self, n: usize, b: u8) -> State {
        if VALUES[n] == b {
            if n + 1 == VALUES.len() {
                State::Values(0)
            } else {
                State::SeekValues(n + 1)
            }
        } else if b == VALUES[0] {
            State::SeekValues(1)
        } else {
            State::SeekValues(0)
        }
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

    const DUMP: &str = "-- MariaDB dump\n\
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
}
