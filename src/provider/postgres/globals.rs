//! A server's roles and tablespaces (`include_globals`): read with `pg_dumpall --globals-only`
//! when a backup is taken, and made on a server before a backup is restored `--into` a new
//! database there (`--with-globals`), so that its owners and grants have their roles.
//!
//! What the server has already is left as it is: the script is cut into statements, and those
//! about a role or tablespace that exists there — its `CREATE`, its `ALTER`s and settings, its
//! comment, the memberships granted to it — are left out. Only what is missing is made.

use std::collections::BTreeSet;
use std::process::Stdio;

use super::psql::{hex_utf8, unhex};
use super::{MAINTENANCE_DB, Postgres};
use crate::error::{Error, Kind, Result};
use crate::provider::Source;
use crate::provider::tool::feed;

/// What making a backup's globals on a server did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GlobalsApplied {
    /// Roles and tablespaces made.
    pub made: Vec<String>,
    /// Those the server had already, left as they were.
    pub kept: Vec<String>,
}

/// `pg_dumpall --globals-only` of `pg`'s server, role passwords left out unless asked for.
pub(super) fn dump(pg: &Postgres, role_passwords: bool) -> Result<String> {
    let tools = pg.tools()?;
    let pg_dumpall = tools.pg_dump.with_file_name("pg_dumpall");
    let mut cmd = pg.command(&pg_dumpall, &pg.conn.dbname);
    cmd.env("PGCLIENTENCODING", "UTF8")
        .args(["--globals-only", "--no-password"])
        .arg(format!("--database={}", pg.conn.dbname));
    if !role_passwords {
        cmd.arg("--no-role-passwords");
    }
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| Error::new(Kind::ToolNotFound, "cannot run pg_dumpall").caused_by(e))?;
    if !out.status.success() {
        let err =
            crate::provider::tool::failure("pg_dumpall", &String::from_utf8_lossy(&out.stderr));
        return Err(Error::tool("the server's roles and tablespaces could not be read (include_globals)")
            .caused_by(err.one_line())
            .with_hint("pg_dumpall --globals-only needs a role that may read pg_roles and pg_tablespace; set include_globals = false to back up without them"));
    }
    String::from_utf8(out.stdout)
        .map_err(|_| Error::tool("pg_dumpall wrote something that is not UTF-8"))
}

/// Makes the roles and tablespaces of `script` that `pg`'s server lacks.
pub(super) fn apply(pg: &Postgres, script: &str) -> Result<GlobalsApplied> {
    let names = |sql: &str| -> Result<BTreeSet<String>> {
        Ok(pg
            .query_in(MAINTENANCE_DB, sql)?
            .into_iter()
            .filter_map(|row| row.first().cloned().flatten().and_then(|h| unhex(&h)))
            .collect())
    };
    let roles = names(&format!("SELECT {} FROM pg_roles", hex_utf8("rolname")))?;
    let spaces = names(&format!(
        "SELECT {} FROM pg_tablespace",
        hex_utf8("spcname")
    ))?;
    let (kept_script, applied) = filter(script, &roles, &spaces);
    let tools = pg.tools()?;
    let mut psql = pg.command(&tools.psql, MAINTENANCE_DB);
    psql.env("PGCLIENTENCODING", "UTF8")
        .args(["-X", "-q", "-w", "-v", "ON_ERROR_STOP=1"]);
    feed(psql, Source::Stream(&mut kept_script.as_bytes()), "psql").map_err(|e| {
        if e.kind() != Kind::Tool {
            return e;
        }
        Error::tool(
            "the backup's roles and tablespaces could not all be made on the server; no database was created",
        )
        .caused_by(e.one_line())
        .with_hint("a tablespace's directory must exist on the new server; make what failed by hand, then restore again (what was made stays and is kept next time)")
    })?;
    Ok(applied)
}

/// The statements of `script` about roles and tablespaces the server lacks (and everything
/// else: settings, meta-commands), and what that makes and keeps.
pub(super) fn filter(
    script: &str,
    roles: &BTreeSet<String>,
    spaces: &BTreeSet<String>,
) -> (String, GlobalsApplied) {
    let mut out = String::new();
    let mut applied = GlobalsApplied::default();
    for statement in statements(script) {
        let about = subject(&statement);
        let existing = match &about {
            Some(Subject::Role(name)) => roles.contains(name),
            Some(Subject::Tablespace(name)) => spaces.contains(name),
            None => false,
        };
        if let Some(Subject::Role(name) | Subject::Tablespace(name)) = &about {
            let list = if existing {
                &mut applied.kept
            } else {
                &mut applied.made
            };
            if !list.contains(name) {
                list.push(name.clone());
            }
        }
        if !existing {
            out.push_str(&statement);
            out.push('\n');
        }
    }
    (out, applied)
}

/// What a statement is about.
#[derive(Debug, PartialEq, Eq)]
enum Subject {
    Role(String),
    Tablespace(String),
}

fn subject(statement: &str) -> Option<Subject> {
    let s = statement.trim_start();
    let after = |prefix: &str| {
        s.get(..prefix.len())
            .filter(|head| head.eq_ignore_ascii_case(prefix))
            .map(|_| &s[prefix.len()..])
    };
    for prefix in ["CREATE ROLE ", "ALTER ROLE ", "COMMENT ON ROLE "] {
        if let Some(rest) = after(prefix) {
            return name(rest).map(Subject::Role);
        }
    }
    for prefix in [
        "CREATE TABLESPACE ",
        "ALTER TABLESPACE ",
        "COMMENT ON TABLESPACE ",
    ] {
        if let Some(rest) = after(prefix) {
            return name(rest).map(Subject::Tablespace);
        }
    }
    if let Some(rest) = after("GRANT ") {
        // `GRANT role TO member …`: about the member, whose memberships are its server's.
        let (granted, rest) = split_name(rest)?;
        let rest = rest.trim_start();
        if granted.is_empty() || !rest.get(..3)?.eq_ignore_ascii_case("TO ") {
            return None;
        }
        return name(&rest[3..]).map(Subject::Role);
    }
    None
}

/// The identifier `text` begins with: `"quoted"` (`""` for a quote) or bare.
fn name(text: &str) -> Option<String> {
    split_name(text).map(|(n, _)| n).filter(|n| !n.is_empty())
}

fn split_name(text: &str) -> Option<(String, &str)> {
    let text = text.trim_start();
    if let Some(quoted) = text.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if quoted[i + 1..].starts_with('"') {
                    out.push('"');
                    chars.next();
                } else {
                    return Some((out, &quoted[i + 1..]));
                }
            } else {
                out.push(c);
            }
        }
        None
    } else {
        let end = text
            .find(|c: char| c.is_whitespace() || c == ';' || c == ',')
            .unwrap_or(text.len());
        Some((text[..end].to_string(), &text[end..]))
    }
}

/// The statements of a `pg_dumpall` script, each with its own text: SQL up to a `;` outside
/// quotes, and a meta-command (`\restrict …`) or comment line as it is.
fn statements(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let (mut single, mut double) = (false, false);
    for line in script.lines() {
        if current.is_empty() {
            let t = line.trim_start();
            if t.is_empty() || t.starts_with("--") || t.starts_with('\\') {
                out.push(line.to_string());
                continue;
            }
        }
        for c in line.chars() {
            current.push(c);
            match c {
                '\'' if !double => single = !single,
                '"' if !single => double = !double,
                ';' if !single && !double => {
                    out.push(std::mem::take(&mut current));
                }
                _ => {}
            }
        }
        if current.is_empty() {
            continue;
        }
        if current.trim().is_empty() {
            current.clear();
        } else {
            current.push('\n');
        }
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT: &str = "--\n-- Roles\n--\n\n\\restrict abc\nSET standard_conforming_strings = on;\n\
        CREATE ROLE postgres;\nALTER ROLE postgres WITH SUPERUSER LOGIN PASSWORD 'x;y';\n\
        CREATE ROLE \"Odd \"\"one\"\"\";\nALTER ROLE \"Odd \"\"one\"\"\" WITH NOLOGIN;\n\
        COMMENT ON ROLE \"Odd \"\"one\"\"\" IS 'two\nlines; and a quote ''';\n\
        ALTER ROLE app SET search_path TO 'a', 'b';\nCREATE ROLE app;\n\
        GRANT \"Odd \"\"one\"\"\" TO postgres GRANTED BY postgres;\nGRANT pg_read_all_data TO \"Odd \"\"one\"\"\";\n\
        CREATE TABLESPACE fast OWNER postgres LOCATION '/srv/fast';\n\\unrestrict abc\n";

    #[test]
    fn only_what_the_server_lacks_is_kept() {
        let roles: BTreeSet<String> = ["postgres".to_string()].into();
        let spaces = BTreeSet::new();
        let (kept, applied) = filter(SCRIPT, &roles, &spaces);
        assert!(!kept.contains("CREATE ROLE postgres"), "{kept}");
        assert!(!kept.contains("ALTER ROLE postgres"), "{kept}");
        assert!(
            !kept.contains("TO postgres"),
            "a member the server has keeps its own: {kept}"
        );
        assert!(kept.contains("CREATE ROLE \"Odd \"\"one\"\"\";"), "{kept}");
        assert!(kept.contains("'two\nlines; and a quote '''"), "{kept}");
        assert!(kept.contains("GRANT pg_read_all_data TO \"Odd"), "{kept}");
        assert!(kept.contains("CREATE TABLESPACE fast"), "{kept}");
        assert!(
            kept.contains("\\restrict abc") && kept.contains("SET standard_conforming_strings")
        );
        assert_eq!(applied.made, ["Odd \"one\"", "app", "fast"]);
        assert_eq!(applied.kept, ["postgres"]);
    }

    #[test]
    fn a_server_that_has_everything_gets_nothing_but_settings() {
        let roles: BTreeSet<String> = ["postgres", "Odd \"one\"", "app"]
            .map(str::to_string)
            .into();
        let spaces: BTreeSet<String> = ["fast".to_string()].into();
        let (kept, applied) = filter(SCRIPT, &roles, &spaces);
        assert!(
            !kept.contains("CREATE") && !kept.contains("ALTER") && !kept.contains("GRANT"),
            "{kept}"
        );
        assert!(applied.made.is_empty());
    }
}
