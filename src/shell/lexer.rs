//! The lexer: the state of a line being read, and the operators that end words and commands.

use super::redirect::Redirect;
use super::{MAX_INPUT, Simple};

/// A line being read into simple commands.
pub(super) struct Lexer {
    pub(super) chars: Vec<char>,
    pub(super) pos: usize,
    pub(super) depth: usize,
    pub(super) out: Vec<Simple>,
    pub(super) current: Simple,
    /// The word being read; `None` between words (an empty quoted word is `Some("")`).
    pub(super) word: Option<String>,
    /// The word being read can still be an assignment: so far only unquoted name characters.
    pub(super) assignable: bool,
    /// Heredocs whose bodies start at the next newline: (index in `out` of their command once
    /// it ends, or `usize::MAX` for the current one, delimiter, strip leading tabs).
    pub(super) pending_heredocs: Vec<(usize, String, bool, bool)>,
}

impl Lexer {
    pub(super) fn new(line: &str, depth: usize) -> Lexer {
        let mut end = line.len().min(MAX_INPUT);
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        Lexer {
            chars: line[..end].chars().collect(),
            pos: 0,
            depth,
            out: Vec::new(),
            current: Simple::default(),
            word: None,
            assignable: true,
            pending_heredocs: Vec::new(),
        }
    }

    pub(super) fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    pub(super) fn run(&mut self) {
        while let Some(c) = self.peek(0) {
            match c {
                ' ' | '\t' => {
                    self.pos += 1;
                    self.end_word();
                }
                '\n' => {
                    self.pos += 1;
                    self.end_command(false);
                    self.read_heredocs();
                }
                ';' | '&' | '(' | ')' => {
                    self.pos += 1;
                    // `&>` and `&>>` redirect output.
                    if c == '&' && self.peek(0) == Some('>') {
                        self.end_word();
                        self.pos += 1;
                        if self.peek(0) == Some('>') {
                            self.pos += 1;
                        }
                        self.redirect(Redirect::Other);
                        continue;
                    }
                    if c == '&' && self.peek(0) == Some('&')
                        || c == ';' && self.peek(0) == Some(';')
                    {
                        self.pos += 1;
                    }
                    self.end_command(false);
                }
                '|' => {
                    self.pos += 1;
                    let pipe = match self.peek(0) {
                        Some('|') => {
                            self.pos += 1;
                            false
                        }
                        Some('&') => {
                            self.pos += 1;
                            true
                        }
                        _ => true,
                    };
                    self.end_command(pipe);
                }
                '<' | '>' => self.read_redirect(c),
                '#' if self.word.is_none() => {
                    while self.peek(0).is_some_and(|c| c != '\n') {
                        self.pos += 1;
                    }
                }
                _ => self.read_word_part(),
            }
        }
        self.end_command(false);
        // A heredoc never closed runs to the end of the input.
        self.read_heredocs();
    }

    pub(super) fn start_word(&mut self) {
        if self.word.is_none() {
            self.word = Some(String::new());
            self.assignable = true;
        }
    }

    pub(super) fn push(&mut self, c: char, quoted: bool) {
        self.start_word();
        if quoted || !(c.is_ascii_alphanumeric() || c == '_') {
            self.assignable = false;
        }
        self.word.as_mut().expect("started").push(c);
    }

    pub(super) fn end_word(&mut self) {
        let Some(word) = self.word.take() else {
            return;
        };
        if self.current.words.is_empty()
            && let Some((name, value)) = word.split_once(ASSIGN)
        {
            let name = name.trim_end_matches('=');
            self.current
                .assigns
                .push((name.to_string(), value.replace(ASSIGN, "")));
        } else {
            self.current.words.push(word.replace(ASSIGN, ""));
        }
        self.assignable = true;
    }

    /// Ends the simple command being read; `pipe` says the next one reads its output.
    pub(super) fn end_command(&mut self, pipe: bool) {
        self.end_word();
        let command = std::mem::take(&mut self.current);
        let index = self.out.len();
        let opened_here = self
            .pending_heredocs
            .iter_mut()
            .filter(|(i, _, _, _)| *i == usize::MAX);
        let mut any = false;
        for h in opened_here {
            h.0 = index;
            any = true;
        }
        if !command.words.is_empty()
            || !command.assigns.is_empty()
            || !command.writes.is_empty()
            || any
        {
            self.out.push(command);
        }
        self.current.piped = pipe;
    }
}

/// Marks, inside a word being read, the `=` of an assignment (removed when the word ends).
pub(super) const ASSIGN: char = '\u{E003}';

pub(super) fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
