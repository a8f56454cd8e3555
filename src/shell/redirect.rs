//! Redirections and heredocs: what a command reads, and the files it writes.

use super::lexer::{ASSIGN, Lexer};
use super::word::substitutions;
use super::{Stdin, display};

/// A redirection whose target word is read next.
pub(super) enum Redirect {
    /// `<`: the command reads that file.
    In,
    /// `>`, `>>`, `&>`, `<>`, `>|`: the target is a file written.
    Other,
    /// `>&`, `<&`: a file descriptor duplicated (`2>&1`, `>&-`), or with a file name `>& FILE`.
    Dup,
    /// `<<<`: the word is the input.
    HereString,
}

impl Lexer {
    pub(super) fn read_redirect(&mut self, c: char) {
        // A file descriptor number right before the operator belongs to it.
        if let Some(w) = &self.word
            && !w.is_empty()
            && w.chars().all(|c| c.is_ascii_digit())
        {
            self.word = None;
        }
        self.end_word();
        self.pos += 1;
        let kind = match (c, self.peek(0)) {
            ('<', Some('<')) => {
                self.pos += 1;
                match self.peek(0) {
                    Some('<') => {
                        self.pos += 1;
                        Redirect::HereString
                    }
                    Some('-') => {
                        self.pos += 1;
                        self.heredoc(true);
                        return;
                    }
                    _ => {
                        self.heredoc(false);
                        return;
                    }
                }
            }
            ('<', Some('>')) | ('>', Some('>' | '|')) => {
                self.pos += 1;
                Redirect::Other
            }
            ('<' | '>', Some('&')) => {
                self.pos += 1;
                Redirect::Dup
            }
            ('<', _) => Redirect::In,
            _ => Redirect::Other,
        };
        self.redirect(kind);
    }

    /// Reads the target word of a redirection and records what it means for the command.
    pub(super) fn redirect(&mut self, kind: Redirect) {
        let Some(target) = self.next_word() else {
            return;
        };
        match kind {
            Redirect::In => self.current.stdin = Some(Stdin::File(target)),
            Redirect::HereString => self.current.stdin = Some(Stdin::Text(target + "\n")),
            Redirect::Dup if target == "-" || target.chars().all(|c| c.is_ascii_digit()) => {}
            // As read, variables and substitutions still marked: the hook expands what it can.
            Redirect::Other | Redirect::Dup => self.current.writes.push(target),
        }
    }

    /// The next word on its own (a redirection's target), read without ending the command.
    pub(super) fn next_word(&mut self) -> Option<String> {
        while matches!(self.peek(0), Some(' ' | '\t')) {
            self.pos += 1;
        }
        let saved = (self.word.take(), self.assignable);
        while let Some(c) = self.peek(0) {
            if matches!(
                c,
                ' ' | '\t' | '\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>'
            ) {
                break;
            }
            self.read_word_part();
        }
        let word = self.word.take().map(|w| w.replace(ASSIGN, "").clone());
        (self.word, self.assignable) = saved;
        word
    }

    pub(super) fn heredoc(&mut self, strip_tabs: bool) {
        let start = self.pos;
        if let Some(delimiter) = self.next_word() {
            // An unquoted delimiter: the body's `$(…)` run.
            let expands = !self.chars[start..self.pos]
                .iter()
                .any(|c| matches!(c, '\'' | '"' | '\\'));
            self.pending_heredocs
                .push((usize::MAX, display(&delimiter), strip_tabs, expands));
        }
    }

    /// After a newline: the bodies of the heredocs opened on the line just ended.
    pub(super) fn read_heredocs(&mut self) {
        for (index, delimiter, strip_tabs, expands) in std::mem::take(&mut self.pending_heredocs) {
            let mut body = String::new();
            while self.pos < self.chars.len() {
                let start = self.pos;
                while self.peek(0).is_some_and(|c| c != '\n') {
                    self.pos += 1;
                }
                let line: String = self.chars[start..self.pos].iter().collect();
                if self.peek(0) == Some('\n') {
                    self.pos += 1;
                }
                let line = if strip_tabs {
                    line.trim_start_matches('\t').to_string()
                } else {
                    line
                };
                if line == delimiter {
                    break;
                }
                body.push_str(&line);
                body.push('\n');
            }
            if expands {
                let commands = substitutions(&body, self.depth + 1);
                self.out.extend(commands);
            }
            if let Some(cmd) = self.out.get_mut(index) {
                cmd.stdin = Some(Stdin::Text(body));
            }
        }
    }
}
