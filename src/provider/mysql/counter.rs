//! Per-table row counts read off a `mysqldump` stream as it passes: every `CREATE TABLE` names a
//! table, every top-level tuple of its `INSERT INTO … VALUES` is a row. The counts describe
//! exactly the dumped data — mysqldump's consistent snapshot is its own, and no other session
//! could count in it.

use std::collections::BTreeMap;
use std::io::{self, Read};

const INSERT: &[u8] = b"INSERT INTO `";
const CREATE: &[u8] = b"CREATE TABLE `";
const VALUES: &[u8] = b" VALUES";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Statement {
    Insert,
    Create,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line, `n` bytes into matching one of the statement prefixes.
    LineStart(usize),
    /// In a line that is not one of ours, until its end.
    SkipLine,
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
}

impl<R: Read> RowCounter<R> {
    pub fn new(inner: R) -> Self {
        RowCounter {
            inner,
            state: State::LineStart(0),
            name: Vec::new(),
            current: None,
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
                let insert = n < INSERT.len() && INSERT[n] == b;
                let create = n < CREATE.len() && CREATE[n] == b;
                match (insert, create) {
                    (true, _) if n + 1 == INSERT.len() => self.start_name(Statement::Insert),
                    (_, true) if n + 1 == CREATE.len() => self.start_name(Statement::Create),
                    (true, _) | (_, true) => State::LineStart(n + 1),
                    _ => State::SkipLine,
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
                self.tables.entry(name.clone()).or_insert(0);
                match s {
                    Statement::Create => {
                        if b == b'\n' {
                            State::LineStart(0)
                        } else {
                            State::SkipLine
                        }
                    }
                    Statement::Insert => {
                        self.current = Some(name);
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
