//! A command line as it may be written down (history, hook reasons): the secrets it carries
//! replaced by `***` — URL passwords, secret query parameters, `PGPASSWORD=…`-style variables
//! and MySQL's `-pSECRET` / `--password=SECRET`.

/// `text` with every secret it shows replaced by `***`, plus each of `known` (the passwords of
/// the environments' URLs) wherever it appears.
pub fn command(text: &str, known: &[String]) -> String {
    let mysql = text.contains("mysql") || text.contains("mariadb");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let end = if let Some((keep, end)) = secret_assignment(rest) {
            out.push_str(&rest[..keep]);
            out.push_str("***");
            end
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            out.push_str(&chunk_redacted(&rest[..end], mysql));
            end
        };
        let after = &rest[end..];
        let spaces = after
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(after.len());
        out.push_str(&after[..spaces]);
        rest = &after[spaces..];
    }
    crate::provider::blank_out(&out, known)
}

/// At a `NAME=value` (or `--name=value`) whose name says it holds a secret: how much to keep
/// (up to the `=`) and where the value ends — a quoted value at its closing quote.
fn secret_assignment(rest: &str) -> Option<(usize, usize)> {
    let lead = rest.len() - rest.trim_start_matches(['"', '\'']).len();
    let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let eq = rest[..word_end].find('=')?;
    let name = rest[lead..eq].trim_start_matches("--");
    if name.is_empty() || !is_secret_name(name) {
        return None;
    }
    let value = &rest[eq + 1..];
    let end = match value.chars().next() {
        Some(q @ ('"' | '\'')) => value[1..]
            .find(q)
            .map_or(rest.len(), |i| eq + 1 + 1 + i + 1),
        _ => word_end,
    };
    Some((eq + 1, end))
}

/// One whitespace-separated piece of a command line, redacted.
fn chunk_redacted(chunk: &str, mysql: bool) -> String {
    if mysql
        && let Some(pw) = chunk.strip_prefix("-p")
        && !pw.is_empty()
        && !pw.contains('/')
    {
        return "-p***".to_string();
    }
    url_passwords(chunk)
}

/// Whether a variable or option named `name` holds a secret.
fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase().replace('-', "_");
    [
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "TOKEN",
        "PGPASS",
        "API_KEY",
        "ACCESS_KEY",
        "PRIVATE_KEY",
    ]
    .iter()
    .any(|s| upper.contains(s))
        || upper == "PASS"
        || upper.ends_with("_PWD")
}

/// Every `scheme://user:password@` in `s` with the password as `***`, and secret query
/// parameters (`?password=…`) too.
fn url_passwords(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let authority_end = tail.find(['/', '?', '#', '"', '\'']).unwrap_or(tail.len());
        let authority = &tail[..authority_end];
        match authority.rfind('@') {
            Some(at_sign) => {
                let userinfo = &authority[..at_sign];
                match userinfo.split_once(':') {
                    Some((user, _)) => {
                        out.push_str(user);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at_sign..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    secret_params(&out)
}

/// `password=…` (and the like) in a query string, as `password=***`.
fn secret_params(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(['?', '&']) {
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        let end = rest.find(['&', '"', '\'', '#']).unwrap_or(rest.len());
        let pair = &rest[..end];
        match pair.split_once('=') {
            Some((k, _)) if crate::provider::url_is_secret_param(k) => {
                out.push_str(k);
                out.push_str("=***");
            }
            _ => out.push_str(pair),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_blanked() {
        let cases = [
            (
                "DATABASE_URL=postgres://app:s3cret@db:5432/app npx prisma migrate deploy",
                "DATABASE_URL=postgres://app:***@db:5432/app npx prisma migrate deploy",
            ),
            (
                "PGPASSWORD=s3cret psql -h db -c 'DROP TABLE t'",
                "PGPASSWORD=*** psql -h db -c 'DROP TABLE t'",
            ),
            ("mysql -uroot -ps3cret app", "mysql -uroot -p*** app"),
            ("MYSQL_PWD=s3cret mysql app", "MYSQL_PWD=*** mysql app"),
            ("mysql --password=s3cret app", "mysql --password=*** app"),
            (
                "psql \"postgres://u@h/db?sslmode=require&password=s3cret\"",
                "psql \"postgres://u@h/db?sslmode=require&password=***\"",
            ),
            (
                "MYSQL_PWD=s3cret mysql -uroot app",
                "MYSQL_PWD=*** mysql -uroot app",
            ),
            (
                "export AWS_SECRET_ACCESS_KEY='abc def'",
                "export AWS_SECRET_ACCESS_KEY=***",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(command(input, &[]), want, "{input}");
        }
        assert_eq!(
            command("echo hunter2", &["hunter2".to_string()]),
            "echo ***"
        );
        // Nothing else changes: a path with -p in it, a URL without a password.
        assert_eq!(
            command(
                "migrate -path db/migrations -database postgres://u@h/db up",
                &[]
            ),
            "migrate -path db/migrations -database postgres://u@h/db up"
        );
    }
}
