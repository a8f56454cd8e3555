//! The database servers' own tools that destroy without a line of SQL: `dropdb`, `pg_restore
//! --clean` and `mysqladmin drop`. Each is read as the statement it amounts to, sent where it
//! goes, so that the hook judges it as it judges `psql -c 'DROP DATABASE …'`.

use super::Invocation;
use super::sql::{SqlCall, Target, defaults_from_vars, set_database, split};
use crate::provider::ProviderKind;
use crate::shell;

/// The programs read here.
pub const PROGRAMS: [&str; 4] = ["dropdb", "pg_restore", "mysqladmin", "mariadb-admin"];

/// What an admin tool in `inv` would do, as SQL to a target; `None` when it destroys nothing
/// (`pg_restore` without `--clean`, `mysqladmin status`) or is not one of [`PROGRAMS`].
pub fn call(inv: &Invocation, lookup: &dyn Fn(&str) -> Option<String>) -> Option<SqlCall> {
    let words: Vec<String> = inv.words[1..]
        .iter()
        .map(|w| shell::expand(w, lookup).unwrap_or_else(|| w.clone()))
        .collect();
    let var = |name: &str| inv.var(name).map(str::to_string).or_else(|| lookup(name));
    let (kind, sql, target) = match inv.program() {
        "dropdb" => dropdb(&words)?,
        "pg_restore" => pg_restore(&words)?,
        "mysqladmin" | "mariadb-admin" => mysqladmin(&words)?,
        _ => return None,
    };
    let mut target = target;
    let unknown = |w: &Option<String>| w.as_deref().is_some_and(|v| !shell::is_literal(v));
    target.unknown |= unknown(&target.database) || unknown(&target.host) || unknown(&target.url);
    let unknown_sql = !shell::is_literal(&sql);
    let show = |v: Option<String>| v.map(|v| shell::display(&v));
    target.database = show(target.database);
    target.host = show(target.host);
    target.url = show(target.url);
    defaults_from_vars(kind, &mut target, &var);
    Some(SqlCall {
        kind: Some(kind),
        texts: vec![shell::display(&sql)],
        files: Vec::new(),
        target,
        unknown_sql,
    })
}

/// `dropdb [OPTION]… DBNAME`: `DROP DATABASE DBNAME`, on its server.
fn dropdb(words: &[String]) -> Option<(ProviderKind, String, Target)> {
    let (options, positional) = split(
        words,
        "hpU",
        &["host", "port", "username", "maintenance-db"],
    );
    let mut target = pg_target(&options);
    let name = positional.into_iter().next()?;
    set_database(&mut target, name.clone());
    Some((
        ProviderKind::Postgres,
        format!("DROP DATABASE {name}"),
        target,
    ))
}

/// `pg_restore --clean -d DB ARCHIVE` (`-c`, or `--if-exists`, which only works with it): drops
/// every object of the archive from DB before it recreates them; with `-C` too, the database
/// itself. Without `-d` it only writes a script: nothing.
fn pg_restore(words: &[String]) -> Option<(ProviderKind, String, Target)> {
    const VALUES: &str = "dfFhIjLnNpPStTUW";
    let (options, _) = split(
        words,
        VALUES,
        &[
            "dbname",
            "file",
            "format",
            "host",
            "index",
            "jobs",
            "use-list",
            "schema",
            "exclude-schema",
            "port",
            "function",
            "superuser",
            "table",
            "trigger",
            "username",
            "role",
            "section",
        ],
    );
    let database = options
        .iter()
        .find(|(n, _)| n == "d" || n == "dbname")?
        .1
        .clone();
    let clean = flag(words, 'c', &["clean", "if-exists"], VALUES);
    if !clean {
        return None;
    }
    let create = flag(words, 'C', &["create"], VALUES);
    let mut target = pg_target(&options);
    set_database(&mut target, database.clone());
    let sql = if create {
        // With -C the database dropped is the one the archive names; -d is only where it
        // connects first: which one it is cannot be told from the words.
        target.unknown = true;
        "DROP DATABASE -- the one the archive names (pg_restore --clean --create)".to_string()
    } else {
        "DROP TABLE -- every table, view, function and type of the archive (pg_restore --clean)"
            .to_string()
    };
    Some((ProviderKind::Postgres, sql, target))
}

/// `mysqladmin [OPTION]… drop DB`: `DROP DATABASE DB`.
fn mysqladmin(words: &[String]) -> Option<(ProviderKind, String, Target)> {
    let (options, positional) = split(
        words,
        "hPuSOc",
        &[
            "host",
            "port",
            "user",
            "socket",
            "set-variable",
            "count",
            "sleep",
            "protocol",
        ],
    );
    let mut positional = positional.into_iter();
    positional
        .by_ref()
        .find(|w| w.eq_ignore_ascii_case("drop"))?;
    let name = positional.next()?;
    let mut target = Target::default();
    for (n, v) in options {
        match n.as_str() {
            "h" | "host" => target.host = Some(v),
            "P" | "port" => target.port = v.parse().ok(),
            _ => {}
        }
    }
    target.database = Some(name.clone());
    Some((ProviderKind::Mysql, format!("DROP DATABASE {name}"), target))
}

fn pg_target(options: &[(String, String)]) -> Target {
    let mut target = Target::default();
    for (n, v) in options {
        match n.as_str() {
            "h" | "host" => target.host = Some(v.clone()),
            "p" | "port" => target.port = v.parse().ok(),
            // `--maintenance-db=URL`: the server it names.
            "maintenance-db" => {
                if let Ok(url) = url::Url::parse(v) {
                    target.host = url.host_str().map(str::to_string).or(target.host.take());
                    target.port = url.port().or(target.port);
                }
            }
            _ => {}
        }
    }
    target
}

/// Whether the words give flag `short` (alone or in a cluster, before any letter that takes a
/// value) or one of `long`.
fn flag(words: &[String], short: char, long: &[&str], takes_value: &str) -> bool {
    words.iter().any(|w| {
        if let Some(body) = w.strip_prefix("--") {
            return long.contains(&body.split('=').next().unwrap_or(body));
        }
        let Some(body) = w.strip_prefix('-') else {
            return false;
        };
        for c in body.chars() {
            if c == short {
                return true;
            }
            if takes_value.contains(c) {
                return false;
            }
        }
        false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(line: &str) -> Invocation {
        super::super::invocations(line).remove(0)
    }

    fn said(line: &str) -> Option<(String, Option<String>)> {
        call(&inv(line), &|_| None).map(|c| (c.texts[0].clone(), c.target.database))
    }

    #[test]
    fn admin_tools_read_as_the_statements_they_amount_to() {
        let drop = |db: &str| Some((format!("DROP DATABASE {db}"), Some(db.to_string())));
        assert_eq!(
            said("dropdb -h 127.0.0.1 -U postgres app_prod"),
            drop("app_prod")
        );
        assert_eq!(
            said("dropdb --if-exists --force app_prod"),
            drop("app_prod")
        );
        assert_eq!(said("mysqladmin -u root -h db drop shop -f"), drop("shop"));
        assert_eq!(said("mysqladmin --user=root DROP shop"), drop("shop"));
        let create = call(&inv("pg_restore -c -C -d postgres dump.pgc"), &|_| None).unwrap();
        assert!(create.target.unknown && create.texts[0].starts_with("DROP DATABASE"));
        assert_eq!(said("mariadb-admin -u root drop shop"), drop("shop"));
        let clean = said("pg_restore --clean --if-exists -j 4 -d app_prod dump.pgc").unwrap();
        assert!(clean.0.starts_with("DROP TABLE"), "{clean:?}");
        assert_eq!(clean.1.as_deref(), Some("app_prod"));
        assert!(said("pg_restore -cd app_prod dump.pgc").is_some());
        // What destroys nothing.
        assert_eq!(said("pg_restore -d app_prod dump.pgc"), None);
        assert_eq!(said("pg_restore --clean -f out.sql dump.pgc"), None);
        assert_eq!(said("pg_restore -f clean.sql dump.pgc"), None);
        assert_eq!(said("mysqladmin -u root status"), None);
        assert_eq!(said("dropdb --help"), None);
        // A URL as the database.
        let url = call(
            &inv("pg_restore --clean --dbname=postgres://h/app x.pgc"),
            &|_| None,
        );
        assert_eq!(url.unwrap().target.url.as_deref(), Some("postgres://h/app"));
    }
}
