//! Words: quotes, escapes, `$…` expansions and substitutions, whose commands are read too.

use super::lexer::{ASSIGN, Lexer, is_name};
use super::{Simple, UNKNOWN, VAR_END, VAR_START, parse_at};

/// The commands the `$(…)` and backquoted substitutions of `text` run, where `text` is read
/// the way an unquoted heredoc's body is: only `\`, `$` and backquotes are special.
pub(super) fn substitutions(text: &str, depth: usize) -> Vec<Simple> {
    let mut lexer = Lexer::new(text, depth);
    while let Some(c) = lexer.peek(0) {
        match c {
            '\\' => lexer.pos += 2,
            // `$'…'` is no quoting here: only the `$` is read.
            '$' if lexer.peek(1) == Some('\'') => lexer.pos += 1,
            '$' => lexer.read_dollar(true),
            '`' => lexer.read_backquoted(),
            _ => lexer.pos += 1,
        }
    }
    lexer.out
}

impl Lexer {
    /// Reads one piece of a word: a quoted string, an escape, a `$…`, or a plain character.
    pub(super) fn read_word_part(&mut self) {
        let c = self.peek(0).expect("called at a character");
        match c {
            '\\' => {
                self.pos += 1;
                match self.peek(0) {
                    Some('\n') => self.pos += 1,
                    Some(next) => {
                        self.pos += 1;
                        self.push(next, false);
                    }
                    None => self.push('\\', false),
                }
            }
            '\'' => {
                self.pos += 1;
                self.start_word();
                self.assignable = false;
                while let Some(c) = self.peek(0) {
                    self.pos += 1;
                    if c == '\'' {
                        break;
                    }
                    self.push(c, true);
                }
            }
            '"' => {
                self.pos += 1;
                self.start_word();
                self.assignable = false;
                while let Some(c) = self.peek(0) {
                    match c {
                        '"' => {
                            self.pos += 1;
                            break;
                        }
                        '\\' => {
                            self.pos += 1;
                            match self.peek(0) {
                                Some(n @ ('$' | '`' | '"' | '\\')) => {
                                    self.pos += 1;
                                    self.push(n, true);
                                }
                                Some('\n') => self.pos += 1,
                                _ => self.push('\\', true),
                            }
                        }
                        '$' => self.read_dollar(true),
                        '`' => self.read_backquoted(),
                        c => {
                            self.pos += 1;
                            self.push(c, true);
                        }
                    }
                }
            }
            '$' => self.read_dollar(false),
            '`' => self.read_backquoted(),
            '=' => {
                self.pos += 1;
                // Only the first `=` after an unquoted name makes an assignment.
                let assign = self.assignable && self.word.as_ref().is_some_and(|w| is_name(w));
                self.start_word();
                let w = self.word.as_mut().expect("started");
                w.push('=');
                if assign {
                    w.push(ASSIGN);
                }
                self.assignable = false;
            }
            c => {
                self.pos += 1;
                self.push(c, false);
            }
        }
    }

    /// `$NAME`, `${NAME…}`, `$(…)`, `$'…'`, `$1`, `$?`… In double quotes (`quoted`), `$'` is
    /// no quoting: only the `$`.
    pub(super) fn read_dollar(&mut self, quoted: bool) {
        self.pos += 1;
        self.start_word();
        self.assignable = false;
        match self.peek(0) {
            Some('(') => {
                self.pos += 1;
                let inner = self.take_balanced('(', ')');
                self.nested(&inner);
                self.word.as_mut().expect("started").push(UNKNOWN);
            }
            Some('{') => {
                self.pos += 1;
                let inner = self.take_balanced('{', '}');
                // `${X:-$(cmd)}`: what the expansion may run is a command too.
                if inner.contains(['$', '`', '(']) {
                    self.nested(&inner);
                }
                let name: String = inner
                    .trim_start_matches(['#', '!'])
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let w = self.word.as_mut().expect("started");
                if is_name(&name) && !inner.starts_with(['#', '!']) {
                    w.push(VAR_START);
                    w.push_str(&name);
                    w.push(VAR_END);
                } else {
                    w.push(UNKNOWN);
                }
            }
            Some('\'') if !quoted => {
                self.pos += 1;
                while let Some(c) = self.peek(0) {
                    self.pos += 1;
                    match c {
                        '\'' => break,
                        '\\' => {
                            let e = self.peek(0).unwrap_or('\\');
                            self.pos += 1;
                            let c = match e {
                                'n' => '\n',
                                't' => '\t',
                                other => other,
                            };
                            self.word.as_mut().expect("started").push(c);
                        }
                        c => self.word.as_mut().expect("started").push(c),
                    }
                }
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let mut name = String::new();
                while let Some(c) = self
                    .peek(0)
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                {
                    name.push(c);
                    self.pos += 1;
                }
                let w = self.word.as_mut().expect("started");
                w.push(VAR_START);
                w.push_str(&name);
                w.push(VAR_END);
            }
            Some(c) if c.is_ascii_digit() || "@*#?-$!".contains(c) => {
                self.pos += 1;
                self.word.as_mut().expect("started").push(UNKNOWN);
            }
            _ => self.word.as_mut().expect("started").push('$'),
        }
    }

    pub(super) fn read_backquoted(&mut self) {
        self.pos += 1;
        self.start_word();
        self.assignable = false;
        let mut inner = String::new();
        while let Some(c) = self.peek(0) {
            self.pos += 1;
            match c {
                '`' => break,
                '\\' => {
                    if let Some(n) = self.peek(0) {
                        self.pos += 1;
                        inner.push(n);
                    }
                }
                c => inner.push(c),
            }
        }
        self.nested(&inner);
        self.word.as_mut().expect("started").push(UNKNOWN);
    }

    /// Text up to the `close` that balances an `open` already read, quotes respected; the
    /// closing character is consumed.
    pub(super) fn take_balanced(&mut self, open: char, close: char) -> String {
        let mut depth = 1;
        let mut inner = String::new();
        let mut quote: Option<char> = None;
        while let Some(c) = self.peek(0) {
            self.pos += 1;
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some('"') | None, '\\') => {
                    inner.push(c);
                    if let Some(n) = self.peek(0) {
                        self.pos += 1;
                        inner.push(n);
                    }
                    continue;
                }
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, c) if c == open => depth += 1,
                (None, c) if c == close => {
                    depth -= 1;
                    if depth == 0 {
                        return inner;
                    }
                }
                _ => {}
            }
            inner.push(c);
        }
        inner
    }

    /// The commands of a `$(…)` or backquoted substitution run before the one it is part of.
    pub(super) fn nested(&mut self, inner: &str) {
        let commands = parse_at(inner, self.depth + 1);
        self.out.extend(commands);
    }
}
