//! Destructive statements in migration SQL: `DROP DATABASE`, `DROP SCHEMA`, `DROP TABLE`, dropped
//! columns, `TRUNCATE` and `DELETE` without `WHERE`. The SQL is tokenized the way the database
//! reads it, so words inside comments, string literals, quoted identifiers and dollar-quoted
//! bodies never count.

/// How the database reads quotes and comments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Dollar quoting, nested block comments, backslashes literal except in `E'…'`.
    Postgres,
    /// Backslash escapes in strings, backquoted identifiers, `#` comments.
    Mysql,
    /// Standard SQL quoting.
    Sqlite,
}

/// The kinds of destructive statement, named in the config as the original plugin's
/// `safety.destructive_operations` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    DropDatabase,
    DropSchema,
    DropTable,
    DropColumn,
    Truncate,
    DeleteWithoutWhere,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::DropDatabase,
        Kind::DropSchema,
        Kind::DropTable,
        Kind::DropColumn,
        Kind::Truncate,
        Kind::DeleteWithoutWhere,
    ];

    /// Its key in `safety.destructive_operations`: `drop_table`, `delete_without_where`, …
    pub fn key(self) -> &'static str {
        match self {
            Kind::DropDatabase => "drop_database",
            Kind::DropSchema => "drop_schema",
            Kind::DropTable => "drop_table",
            Kind::DropColumn => "drop_column",
            Kind::Truncate => "truncate",
            Kind::DeleteWithoutWhere => "delete_without_where",
        }
    }

    /// The kind a config key names.
    pub fn from_key(key: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.key() == key)
    }

    /// What it does, for people: `DROP TABLE`, `DELETE without WHERE`, …
    pub fn what(self) -> &'static str {
        match self {
            Kind::DropDatabase => "DROP DATABASE",
            Kind::DropSchema => "DROP SCHEMA",
            Kind::DropTable => "DROP TABLE",
            Kind::DropColumn => "DROP COLUMN",
            Kind::Truncate => "TRUNCATE",
            Kind::DeleteWithoutWhere => "DELETE without WHERE",
        }
    }
}

/// One destructive statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: Kind,
    /// What it does: `DROP TABLE`, `DROP COLUMN`, `TRUNCATE`, `DELETE without WHERE`, …
    /// (`kind.what()`).
    pub what: &'static str,
    /// The line the statement starts on (1-based).
    pub line: usize,
    /// The statement's start, on one line, shortened.
    pub excerpt: String,
}

/// Words after `ALTER TABLE … DROP` that drop something other than a column.
const NOT_A_COLUMN: [&str; 13] = [
    "CONSTRAINT",
    "INDEX",
    "KEY",
    "PRIMARY",
    "FOREIGN",
    "DEFAULT",
    "NOT",
    "CHECK",
    "PARTITION",
    "TRIGGER",
    "IDENTITY",
    "EXPRESSION",
    "SYSTEM",
];

/// The destructive statements in `sql`, in order. The body of a PostgreSQL `DO` block runs at
/// once and is read too; function bodies run only when called and are not.
pub fn destructive(sql: &str, dialect: Dialect) -> Vec<Finding> {
    let mut out = Vec::new();
    for s in statements(sql, dialect) {
        if let Some(kind) = judge(&s.words) {
            out.push(Finding {
                kind,
                what: kind.what(),
                line: s.line,
                excerpt: excerpt(&sql[s.start..s.end]),
            });
        }
        for (start, end, line) in s.do_bodies {
            out.extend(
                destructive(&sql[start..end], dialect)
                    .into_iter()
                    .map(|f| Finding {
                        line: f.line + line - 1,
                        ..f
                    }),
            );
        }
    }
    out
}

/// The part of a migration file that migrates up: dbmate (`-- migrate:down`) and goose
/// (`-- +goose Down`) keep the way back in the same file, after a marker line.
pub fn up_section(sql: &str) -> &str {
    let mut offset = 0;
    for line in sql.split_inclusive('\n') {
        let marker = line.trim().to_ascii_lowercase();
        if marker.starts_with("-- migrate:down") || marker.starts_with("-- +goose down") {
            return &sql[..offset];
        }
        offset += line.len();
    }
    sql
}

/// What a statement's words (upper-cased, outside quotes and comments) make it, if destructive.
fn judge(words: &[String]) -> Option<Kind> {
    let w = |i: usize| words.get(i).map_or("", String::as_str);
    // Where a statement may start within these words: at the beginning; after a WITH clause
    // (`WITH old AS (…) DELETE FROM …`, the first such verb at the top level); inside
    // parentheses (a data-modifying CTE `AS (DELETE …)`); and after the control words of a
    // procedural block (`BEGIN`, `THEN`, `ELSE`, `LOOP`, in DO bodies). Never mid-clause:
    // `ON DELETE CASCADE` and `GRANT DELETE` are not deletes.
    let mut starts = vec![0];
    if w(0) == "WITH" {
        let mut depth = 0;
        for (i, x) in words.iter().enumerate() {
            match x.as_str() {
                "(" => depth += 1,
                ")" => depth -= 1,
                "DELETE" | "TRUNCATE" | "DROP" if depth == 0 => {
                    starts.push(i);
                    break;
                }
                _ => {}
            }
        }
    }
    for (i, x) in words.iter().enumerate() {
        let after_paren = x == "(" && w(i + 1) == "DELETE";
        if after_paren || matches!(x.as_str(), "BEGIN" | "THEN" | "ELSE" | "LOOP") {
            starts.push(i + 1);
        }
    }
    for &k in &starts {
        match (w(k), w(k + 1)) {
            ("DROP", "DATABASE") => return Some(Kind::DropDatabase),
            ("DROP", "SCHEMA") => return Some(Kind::DropSchema),
            ("DROP", "TABLE") => return Some(Kind::DropTable),
            ("TRUNCATE", _) => return Some(Kind::Truncate),
            // A DELETE needs its own WHERE — or LIMIT — at its own level: one inside a subquery
            // does not bound it.
            ("DELETE", _) if !bounded(&words[k + 1..]) => return Some(Kind::DeleteWithoutWhere),
            _ => {}
        }
    }
    if w(0) == "ALTER" && w(1) == "TABLE" {
        for (i, word) in words.iter().enumerate() {
            if word != "DROP" {
                continue;
            }
            // COLUMN is optional (`ALTER TABLE t DROP c`); the word after DROP tells a column
            // from a constraint, an index or `ALTER COLUMN c DROP NOT NULL`.
            let next = w(i + 1);
            if next == "COLUMN" || !next.is_empty() && !NOT_A_COLUMN.contains(&next) {
                return Some(Kind::DropColumn);
            }
        }
    }
    None
}

/// Whether the rest of a DELETE (`words` after it) has a WHERE or LIMIT at its own level.
fn bounded(words: &[String]) -> bool {
    let mut depth = 0i32;
    for word in words {
        match word.as_str() {
            "(" => depth += 1,
            ")" if depth == 0 => return false,
            ")" => depth -= 1,
            "WHERE" | "LIMIT" if depth == 0 => return true,
            _ => {}
        }
    }
    false
}

struct Statement {
    start: usize,
    end: usize,
    line: usize,
    words: Vec<String>,
    /// Dollar-quoted bodies of a `DO` statement: (start, end, line).
    do_bodies: Vec<(usize, usize, usize)>,
}

/// Splits `sql` into statements at `;` outside quotes and comments, with each statement's
/// unquoted words upper-cased.
fn statements(sql: &str, dialect: Dialect) -> Vec<Statement> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut words = Vec::new();
    let mut do_bodies = Vec::new();
    let mut start = None;
    let mut line = 1;
    let mut start_line = 1;
    let mut i = 0;
    let mut finish = |words: &mut Vec<String>,
                      bodies: &mut Vec<(usize, usize, usize)>,
                      start: &mut Option<usize>,
                      end: usize,
                      sl: usize| {
        if let Some(s) = start.take() {
            out.push(Statement {
                start: s,
                end,
                line: sl,
                words: std::mem::take(words),
                do_bodies: std::mem::take(bodies),
            });
        }
        words.clear();
        bodies.clear();
    };
    while i < bytes.len() {
        // Whitespace and comments first: they neither start a statement nor hold words.
        if let Some(after) = skip_blank(bytes, i, dialect, &mut line) {
            i = after;
            continue;
        }
        if bytes[i] == b';' {
            finish(&mut words, &mut do_bodies, &mut start, i, start_line);
            i += 1;
            continue;
        }
        if start.is_none() {
            start = Some(i);
            start_line = line;
        }
        i = read_token(sql, i, dialect, &mut line, &mut words, &mut do_bodies);
    }
    finish(
        &mut words,
        &mut do_bodies,
        &mut start,
        bytes.len(),
        start_line,
    );
    out
}

/// Whitespace or a comment at `i`: the index just past it (`line` counted on). `None` when
/// something else starts there.
fn skip_blank(bytes: &[u8], mut i: usize, dialect: Dialect, line: &mut usize) -> Option<usize> {
    let b = bytes[i];
    let next = bytes.get(i + 1).copied();
    if b == b'\n' {
        *line += 1;
        return Some(i + 1);
    }
    if b.is_ascii_whitespace() {
        return Some(i + 1);
    }
    // MySQL wants a space after `--` (`1--1` is arithmetic), and also reads `#` comments.
    let dashes = b == b'-'
        && next == Some(b'-')
        && (dialect != Dialect::Mysql || bytes.get(i + 2).is_none_or(|c| c.is_ascii_whitespace()));
    let line_comment = dashes || (dialect == Dialect::Mysql && b == b'#');
    if line_comment {
        while i < bytes.len() && bytes[i] != b'\n' {
            i += 1;
        }
        return Some(i);
    }
    if dialect == Dialect::Mysql
        && b == b'/'
        && next == Some(b'*')
        && bytes.get(i + 2) == Some(&b'!')
    {
        // `/*!50001 … */` is code MySQL runs: read what is inside.
        i += 3;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        return Some(i);
    }
    if dialect == Dialect::Mysql && b == b'*' && next == Some(b'/') {
        // The end of an executable comment.
        i += 2;
        return Some(i);
    }
    if b == b'/' && next == Some(b'*') {
        let nests = dialect == Dialect::Postgres;
        let mut depth = 0;
        while i < bytes.len() {
            if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') && (nests || depth == 0) {
                depth += 1;
                i += 2;
            } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    break;
                }
            } else {
                if bytes[i] == b'\n' {
                    *line += 1;
                }
                i += 1;
            }
        }
        return Some(i);
    }
    None
}

/// Reads the word, quoted run, dollar-quoted body or parenthesis at `i` into `words` (and a
/// `DO` statement's body into `do_bodies`); the index just past it, `line` counted on.
fn read_token(
    sql: &str,
    mut i: usize,
    dialect: Dialect,
    line: &mut usize,
    words: &mut Vec<String>,
    do_bodies: &mut Vec<(usize, usize, usize)>,
) -> usize {
    let bytes = sql.as_bytes();
    let b = bytes[i];
    match b {
        b'\'' | b'"' | b'`' => {
            let backslashes = match dialect {
                Dialect::Mysql => b != b'`',
                // E'…' strings only: an `E` that is a word of its own.
                Dialect::Postgres => {
                    b == b'\''
                        && i > 0
                        && matches!(bytes[i - 1], b'E' | b'e')
                        && (i < 2
                            || !(bytes[i - 2].is_ascii_alphanumeric() || bytes[i - 2] == b'_'))
                }
                Dialect::Sqlite => false,
            };
            i = skip_quoted(bytes, i, b, backslashes, line);
            // A quoted name or literal is a word of its own, never a keyword.
            words.push((b as char).to_string());
        }
        b'$' if dialect == Dialect::Postgres => {
            // `$tag$ … $tag$` (the tag may be empty); `$1` is a parameter.
            let tag_end = bytes[i + 1..]
                .iter()
                .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
                .map(|p| i + 1 + p);
            match tag_end {
                Some(e) if bytes[e] == b'$' && !bytes[i + 1].is_ascii_digit() => {
                    let tag = &bytes[i..=e];
                    let body = e + 1;
                    let close = bytes[body..]
                        .windows(tag.len())
                        .position(|w| w == tag)
                        .map_or(bytes.len(), |p| body + p + tag.len());
                    if words.first().is_some_and(|w| w == "DO") {
                        let body_end = close.saturating_sub(tag.len()).max(body);
                        do_bodies.push((body, body_end, *line));
                    }
                    *line += bytes[i..close].iter().filter(|c| **c == b'\n').count();
                    i = close;
                    words.push("$".to_string());
                }
                _ => i += 1,
            }
        }
        c if c.is_ascii_alphabetic() || c == b'_' => {
            let s = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            words.push(sql[s..i].to_ascii_uppercase());
        }
        b'(' | b')' => {
            words.push((b as char).to_string());
            i += 1;
        }
        _ => i += 1,
    }
    i
}

/// The index just past the quoted run that starts at `open` (`quote` doubled inside stands for
/// itself; with `backslashes`, a backslash escapes the next byte).
fn skip_quoted(bytes: &[u8], open: usize, quote: u8, backslashes: bool, line: &mut usize) -> usize {
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if backslashes => i += 2,
            c if c == quote => {
                if bytes.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return i + 1;
                }
            }
            c => {
                if c == b'\n' {
                    *line += 1;
                }
                i += 1;
            }
        }
    }
    bytes.len()
}

fn excerpt(statement: &str) -> String {
    let one_line = statement.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 80 {
        format!("{}…", one_line.chars().take(79).collect::<String>())
    } else {
        one_line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whats(sql: &str, dialect: Dialect) -> Vec<&'static str> {
        destructive(sql, dialect)
            .into_iter()
            .map(|f| f.what)
            .collect()
    }

    #[test]
    fn finds_each_kind_of_destructive_statement() {
        let sql = "CREATE TABLE a (x int);\n\
                   DROP TABLE IF EXISTS old_users;\n\
                   drop schema legacy cascade;\n\
                   DROP DATABASE scratch;\n\
                   ALTER TABLE users DROP COLUMN email;\n\
                   ALTER TABLE users DROP nickname;\n\
                   TRUNCATE sessions;\n\
                   DELETE FROM audit;\n\
                   DELETE FROM audit WHERE at < now();\n\
                   WITH gone AS (SELECT 1) DELETE FROM t;\n";
        assert_eq!(
            whats(sql, Dialect::Postgres),
            [
                "DROP TABLE",
                "DROP SCHEMA",
                "DROP DATABASE",
                "DROP COLUMN",
                "DROP COLUMN",
                "TRUNCATE",
                "DELETE without WHERE",
                "DELETE without WHERE"
            ]
        );
        let found = destructive(sql, Dialect::Postgres);
        assert_eq!(found[0].line, 2);
        assert_eq!(found[0].excerpt, "DROP TABLE IF EXISTS old_users");
    }

    #[test]
    fn alterations_that_keep_columns_are_fine() {
        let sql = "ALTER TABLE users DROP CONSTRAINT users_email_key;\n\
                   ALTER TABLE users ALTER COLUMN name DROP NOT NULL;\n\
                   ALTER TABLE users ALTER COLUMN name DROP DEFAULT;\n\
                   ALTER TABLE users DROP INDEX users_name;\n\
                   ALTER TABLE users DROP FOREIGN KEY fk;\n\
                   ALTER TABLE users DROP PRIMARY KEY;\n\
                   ALTER TABLE users ADD COLUMN dropped boolean;\n\
                   DROP INDEX users_name;\n\
                   DROP VIEW v;\n\
                   CREATE TABLE drop_table_log (truncate text);\n\
                   CREATE TABLE posts (user_id int REFERENCES users ON DELETE CASCADE);\n\
                   GRANT DELETE ON posts TO app;\n\
                   CREATE TRIGGER t AFTER DELETE ON posts FOR EACH ROW EXECUTE FUNCTION f();\n\
                   CREATE RULE r AS ON DELETE TO posts DO INSTEAD NOTHING;";
        assert!(whats(sql, Dialect::Postgres).is_empty());
        assert!(whats(sql, Dialect::Mysql).is_empty());
    }

    #[test]
    fn comments_strings_and_quoted_bodies_never_count() {
        let pg = "-- DROP TABLE users;\n\
                  /* DROP TABLE users; /* nested */ TRUNCATE users; */\n\
                  INSERT INTO notes VALUES ('drop table users; delete from users');\n\
                  INSERT INTO notes VALUES (E'it\\'s; TRUNCATE users');\n\
                  CREATE FUNCTION f() RETURNS void AS $body$ BEGIN DELETE FROM t; END $body$ LANGUAGE plpgsql;\n\
                  CREATE FUNCTION g() RETURNS void AS $$ TRUNCATE t; $$ LANGUAGE sql;\n\
                  SELECT \"DROP TABLE x\" FROM \"delete\";\n\
                  SELECT $1::text;\n";
        assert!(
            whats(pg, Dialect::Postgres).is_empty(),
            "{:?}",
            destructive(pg, Dialect::Postgres)
        );
        let my = "# DROP TABLE users;\n\
                  INSERT INTO notes VALUES ('it\\'s; DROP TABLE users');\n\
                  SELECT `drop table x` FROM t;\n\
                  INSERT INTO notes VALUES (\"delete from x\");\n";
        assert!(
            whats(my, Dialect::Mysql).is_empty(),
            "{:?}",
            destructive(my, Dialect::Mysql)
        );
        // A standard string with a backslash ends at its quote in PostgreSQL and SQLite.
        let tail = "INSERT INTO paths VALUES ('C:\\'); DROP TABLE users;";
        assert_eq!(whats(tail, Dialect::Postgres), ["DROP TABLE"]);
        assert_eq!(whats(tail, Dialect::Sqlite), ["DROP TABLE"]);
    }

    #[test]
    fn do_blocks_and_nested_deletes_are_read() {
        let pg = "DO $$ BEGIN\n  DROP TABLE legacy;\nEND $$;\n\
                  WITH moved AS (DELETE FROM sessions RETURNING *) INSERT INTO archive SELECT * FROM moved WHERE true;\n\
                  WITH s AS (SELECT id FROM t WHERE x) DELETE FROM t;\n\
                  DELETE FROM t USING (SELECT id FROM u WHERE u.gone) s;\n\
                  DELETE FROM t USING u WHERE t.id = u.id;\n";
        let found = destructive(pg, Dialect::Postgres);
        assert_eq!(
            found.iter().map(|f| (f.what, f.line)).collect::<Vec<_>>(),
            [
                ("DROP TABLE", 1),
                ("DELETE without WHERE", 4),
                ("DELETE without WHERE", 5),
                ("DELETE without WHERE", 6)
            ]
        );
        let my = "/*!50001 DROP TABLE t */;\nSELECT 1--1;\nDROP TABLE users;\n\
                  DELETE FROM log ORDER BY id LIMIT 1000;\n";
        assert_eq!(whats(my, Dialect::Mysql), ["DROP TABLE", "DROP TABLE"]);
        // An `E` ending a word is no escape-string prefix.
        let like = "SELECT * FROM t WHERE p LIKE'C:\\'; DROP TABLE users;";
        assert_eq!(whats(like, Dialect::Postgres), ["DROP TABLE"]);
    }

    #[test]
    fn only_the_up_section_of_dbmate_and_goose_files_counts() {
        let dbmate = "-- migrate:up\nCREATE TABLE a (x int);\n-- migrate:down\nDROP TABLE a;\n";
        assert_eq!(
            up_section(dbmate),
            "-- migrate:up\nCREATE TABLE a (x int);\n"
        );
        let goose = "-- +goose Up\nCREATE TABLE a (x int);\n-- +goose Down\nDROP TABLE a;\n";
        assert!(whats(up_section(goose), Dialect::Postgres).is_empty());
        assert_eq!(up_section("DROP TABLE a;"), "DROP TABLE a;");
    }

    #[test]
    fn real_migrations_read_right() {
        // As Prisma writes them.
        let prisma = "-- DropForeignKey\nALTER TABLE \"Post\" DROP CONSTRAINT \"Post_authorId_fkey\";\n\n\
                      -- AlterTable\nALTER TABLE \"User\" DROP COLUMN \"legacy\",\nADD COLUMN \"bio\" TEXT;\n\n\
                      -- DropTable\nDROP TABLE \"Old\";\n";
        let found = destructive(prisma, Dialect::Postgres);
        assert_eq!(
            found.iter().map(|f| (f.what, f.line)).collect::<Vec<_>>(),
            [("DROP COLUMN", 5), ("DROP TABLE", 9)]
        );
        // golang-migrate down-and-up style, MySQL.
        let mysql = "ALTER TABLE `orders` DROP `note`, ADD INDEX `o_at` (`at`);\nDELETE FROM `carts` WHERE `expired` = 1;";
        assert_eq!(whats(mysql, Dialect::Mysql), ["DROP COLUMN"]);
        assert_eq!(
            whats("ALTER TABLE \"User\" DROP \"legacy\";", Dialect::Postgres),
            ["DROP COLUMN"]
        );
    }
}
