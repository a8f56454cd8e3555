//! A shell command line, split into the simple commands it would run: enough of POSIX sh to tell
//! what an agent's Bash command does (quotes, `&&`/`;`/`|`, assignments, redirections, heredocs,
//! `$(…)`), never enough to run it. What cannot be known without running it — a variable's
//! value, a substitution's output — is kept as a marker, so that a caller can expand it from the
//! variables it knows or treat it as unknown.
//!
//! The reading itself is a small lexer (`lexer`): words and their quotes and expansions
//! (`word`), redirections and heredocs (`redirect`).

mod lexer;
mod redirect;
mod word;

use lexer::Lexer;

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
