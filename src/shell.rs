//! A shell command line, split into the simple commands it would run: enough of POSIX sh to tell
//! what an agent's Bash command does (quotes, `&&`/`;`/`|`, assignments, redirections, heredocs,
//! `$(…)`), never enough to run it. What cannot be known without running it — a variable's
//! value, a substitution's output — is kept as a marker, so that a caller can expand it from the
//! variables it knows or treat it as unknown.

/// Starts a variable reference in a word: `VAR_START name VAR_END`.
pub const VAR_START: char = '\u{E000}';
pub const VAR_END: char = '\u{E001}';
/// Stands for text only running the command would tell (`$(…)`, `$1`, `$?`).
pub const UNKNOWN: char = '\u{E002}';

/// Input longer than this is cut: a hook must answer quickly whatever it is fed.
const MAX_INPUT: usize = 256 * 1024;
/// How deep `$(…)`, `sh -c` and `eval` are followed.
pub const MAX_DEPTH: usize = 8;

/// What a simple command reads on its standard input, when the line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stdin {
    /// A heredoc's body, or a here-string.
    Text(String),
    /// `< FILE`.
    File(String),
}

/// One simple command: its leading `NAME=value` assignments, its words, and where its input
/// comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Simple {
    pub assigns: Vec<(String, String)>,
    pub words: Vec<String>,
    pub stdin: Option<Stdin>,
    /// Its standard input is the previous command's output (`a | b`).
    pub piped: bool,
    /// The files its output redirections write (`> FILE`, `>> FILE`, `&> FILE`, `<> FILE`), as
    /// written; duplications (`2>&1`) are none.
    pub writes: Vec<String>,
}

/// The simple commands of `line`, in the order they appear (a `$(…)` before the command it is
/// part of).
pub fn parse(line: &str) -> Vec<Simple> {
    parse_at(line, 0)
}

/// [`parse`] at nesting `depth`: deeper than [`MAX_DEPTH`], nothing.
pub fn parse_at(line: &str, depth: usize) -> Vec<Simple> {
    if depth > MAX_DEPTH {
        return Vec::new();
    }
    let mut lexer = Lexer::new(line, depth);
    lexer.run();
    lexer.out
}

/// Whether `line` is longer than what [`parse`] reads: the rest of it is not judged.
pub fn is_cut(line: &str) -> bool {
    line.len() > MAX_INPUT
}

/// The commands the `$(…)` and backquoted substitutions of `text` run, where `text` is read
/// the way an unquoted heredoc's body is: only `\`, `$` and backquotes are special.
fn substitutions(text: &str, depth: usize) -> Vec<Simple> {
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

/// A word with its markers shown as the shell would write them: `$NAME`, `$(…)`.
pub fn display(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    for c in word.chars() {
        match c {
            VAR_START => out.push('$'),
            VAR_END => {}
            UNKNOWN => out.push_str("$(…)"),
            c => out.push(c),
        }
    }
    out
}

/// A word with each variable replaced by `lookup`'s value; `None` when a variable has no value
/// `lookup` knows or the word holds text only running it would tell.
pub fn expand(word: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let mut out = String::with_capacity(word.len());
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        match c {
            VAR_START => {
                let name: String = chars.by_ref().take_while(|&c| c != VAR_END).collect();
                out.push_str(&lookup(&name)?);
            }
            UNKNOWN => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// Whether the word is plain text, with no variable or substitution in it.
pub fn is_literal(word: &str) -> bool {
    !word.contains([VAR_START, UNKNOWN])
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
    out: Vec<Simple>,
    current: Simple,
    /// The word being read; `None` between words (an empty quoted word is `Some("")`).
    word: Option<String>,
    /// The word being read can still be an assignment: so far only unquoted name characters.
    assignable: bool,
    /// Heredocs whose bodies start at the next newline: (index in `out` of their command once
    /// it ends, or `usize::MAX` for the current one, delimiter, strip leading tabs).
    pending_heredocs: Vec<(usize, String, bool, bool)>,
}

/// A redirection whose target word is read next.
enum Redirect {
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
    fn new(line: &str, depth: usize) -> Lexer {
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

    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    fn run(&mut self) {
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

    /// Reads one piece of a word: a quoted string, an escape, a `$…`, or a plain character.
    fn read_word_part(&mut self) {
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

    fn start_word(&mut self) {
        if self.word.is_none() {
            self.word = Some(String::new());
            self.assignable = true;
        }
    }

    fn push(&mut self, c: char, quoted: bool) {
        self.start_word();
        if quoted || !(c.is_ascii_alphanumeric() || c == '_') {
            self.assignable = false;
        }
        self.word.as_mut().expect("started").push(c);
    }

    /// `$NAME`, `${NAME…}`, `$(…)`, `$'…'`, `$1`, `$?`… In double quotes (`quoted`), `$'` is
    /// no quoting: only the `$`.
    fn read_dollar(&mut self, quoted: bool) {
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

    fn read_backquoted(&mut self) {
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
    fn take_balanced(&mut self, open: char, close: char) -> String {
        let mut depth = 1;
        let mut inner = String::new();
        let mut quote: Option<char> = None;
        while let Some(c) = self.peek(0) {
            self.pos += 1;
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some('"'), '\\') | (None, '\\') => {
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
    fn nested(&mut self, inner: &str) {
        let commands = parse_at(inner, self.depth + 1);
        self.out.extend(commands);
    }

    fn read_redirect(&mut self, c: char) {
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
            ('<', Some('&')) | ('>', Some('&')) => {
                self.pos += 1;
                Redirect::Dup
            }
            ('<', _) => Redirect::In,
            _ => Redirect::Other,
        };
        self.redirect(kind);
    }

    /// Reads the target word of a redirection and records what it means for the command.
    fn redirect(&mut self, kind: Redirect) {
        let Some(target) = self.next_word() else {
            return;
        };
        match kind {
            Redirect::In => self.current.stdin = Some(Stdin::File(target)),
            Redirect::HereString => self.current.stdin = Some(Stdin::Text(target + "\n")),
            Redirect::Dup if target == "-" || target.chars().all(|c| c.is_ascii_digit()) => {}
            Redirect::Other | Redirect::Dup => self.current.writes.push(display(&target)),
        }
    }

    /// The next word on its own (a redirection's target), read without ending the command.
    fn next_word(&mut self) -> Option<String> {
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
        let word = self.word.take().map(|w| w.replace(ASSIGN, "").to_string());
        (self.word, self.assignable) = saved;
        word
    }

    fn heredoc(&mut self, strip_tabs: bool) {
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
    fn read_heredocs(&mut self) {
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

    fn end_word(&mut self) {
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
    fn end_command(&mut self, pipe: bool) {
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
const ASSIGN: char = '\u{E003}';

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<Vec<String>> {
        parse(line)
            .into_iter()
            .map(|s| s.words.iter().map(|w| display(w)).collect())
            .collect()
    }

    #[test]
    fn splits_on_operators_and_keeps_quotes_together() {
        assert_eq!(
            words("cd api && npx prisma migrate deploy; echo 'a b' | grep \"x y\""),
            vec![
                vec!["cd", "api"],
                vec!["npx", "prisma", "migrate", "deploy"],
                vec!["echo", "a b"],
                vec!["grep", "x y"],
            ]
        );
        let p = parse("a | b || c");
        assert!(!p[0].piped && p[1].piped && !p[2].piped);
    }

    #[test]
    fn assignments_only_before_the_command() {
        let p = parse("DATABASE_URL=postgres://u:p@h/db FOO='x y' npx prisma migrate deploy A=b");
        assert_eq!(
            p[0].assigns,
            vec![
                (
                    "DATABASE_URL".to_string(),
                    "postgres://u:p@h/db".to_string()
                ),
                ("FOO".to_string(), "x y".to_string())
            ]
        );
        assert_eq!(p[0].words.last().unwrap(), "A=b");
        // A quoted name is no assignment.
        assert_eq!(parse("\"A\"=b cmd")[0].words[0], "A=b");
        assert!(parse("\"A\"=b cmd")[0].assigns.is_empty());
    }

    #[test]
    fn heredocs_and_redirections() {
        let p = parse("psql \"$PROD_DATABASE_URL\" <<'SQL'\nDROP TABLE users;\nSQL\necho done");
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].stdin, Some(Stdin::Text("DROP TABLE users;\n".into())));
        assert_eq!(display(&p[0].words[1]), "$PROD_DATABASE_URL");
        assert_eq!(p[1].words, vec!["echo", "done"]);
        let p = parse("mysql app < drop.sql 2>&1 > out.log");
        assert_eq!(p[0].words, vec!["mysql", "app"]);
        assert_eq!(p[0].stdin, Some(Stdin::File("drop.sql".into())));
        let p = parse("sqlite3 db.sqlite <<< 'DELETE FROM t'");
        assert_eq!(p[0].stdin, Some(Stdin::Text("DELETE FROM t\n".into())));
        let p = parse("cat <<-EOF | psql\n\tTRUNCATE t;\n\tEOF\n");
        assert_eq!(p[0].stdin, Some(Stdin::Text("TRUNCATE t;\n".into())));
        assert!(p[1].piped);
    }

    #[test]
    fn substitutions_are_commands_too() {
        assert_eq!(
            words("echo $(prisma migrate deploy) `rake db:migrate`"),
            vec![
                vec!["prisma", "migrate", "deploy"],
                vec!["rake", "db:migrate"],
                vec!["echo", "$(…)", "$(…)"],
            ]
        );
    }

    #[test]
    fn variables_expand_only_when_known() {
        let w = &parse("psql ${URL} -c x$HOME")[0].words;
        let vars = |n: &str| (n == "URL").then(|| "postgres://h/db".to_string());
        assert_eq!(expand(&w[1], &vars).as_deref(), Some("postgres://h/db"));
        assert_eq!(expand(&w[3], &vars), None);
        assert_eq!(parse("echo '$HOME'")[0].words[1], "$HOME");
    }

    #[test]
    fn comments_and_continuations() {
        assert_eq!(
            words("# prisma migrate deploy\nsqlx \\\n migrate run # later"),
            vec![vec!["sqlx", "migrate", "run"]]
        );
        assert_eq!(words("echo a#b"), vec![vec!["echo", "a#b"]]);
    }

    proptest::proptest! {
        /// Whatever it is fed, the lexer ends and never panics.
        #[test]
        fn never_panics(line in "\\PC{0,200}") {
            let _ = parse(&line);
        }

        #[test]
        fn never_panics_on_shell_characters(line in "[a-z $(){}`'\"\\\\|&;<>#=\n-]{0,120}") {
            let _ = parse(&line);
        }
    }
}
