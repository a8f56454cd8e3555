//! Whether two spellings name the same database, and whether a database client connects to an
//! environment's database or to its server: the same host, port, database or file, from the
//! words alone.

use std::path::Path;

use super::sql::SqlCall;
use crate::provider::{DatabaseUrl, ProviderKind};

/// Whether two URLs name the same database (users and passwords aside).
pub fn same_database(a: &DatabaseUrl, b: &DatabaseUrl) -> bool {
    match (a, b) {
        (DatabaseUrl::Sqlite(x), DatabaseUrl::Sqlite(y)) => same_file(x, y),
        (DatabaseUrl::Server { kind: k1, url: u1 }, DatabaseUrl::Server { kind: k2, url: u2 }) => {
            k1 == k2
                && same_host(u1.host_str(), u2.host_str())
                && u1.port_or_known_default().or(default_port(*k1))
                    == u2.port_or_known_default().or(default_port(*k2))
                && u1.path().trim_matches('/') == u2.path().trim_matches('/')
        }
        _ => false,
    }
}

fn default_port(kind: ProviderKind) -> Option<u16> {
    match kind {
        ProviderKind::Postgres => Some(5432),
        ProviderKind::Mysql => Some(3306),
        ProviderKind::Sqlite => None,
    }
}

fn same_host(a: Option<&str>, b: Option<&str>) -> bool {
    let norm = |h: Option<&str>| match h.unwrap_or("") {
        "" | "localhost" | "127.0.0.1" | "[::1]" | "::1" => "localhost".to_string(),
        h if h.starts_with('/') => "localhost".to_string(),
        h => h.to_ascii_lowercase(),
    };
    norm(a) == norm(b)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Whether the client call connects to the database of `url` (relative paths from `dir`).
pub fn target_is(call: &SqlCall, url: &DatabaseUrl, dir: &Path) -> bool {
    let target = &call.target;
    if let Some(raw) = &target.url {
        return DatabaseUrl::parse(raw, dir).is_ok_and(|t| same_database(&t, url));
    }
    match url {
        DatabaseUrl::Sqlite(path) => target
            .file
            .as_deref()
            .is_some_and(|f| same_file(&dir.join(f), path)),
        DatabaseUrl::Server { kind, url } => {
            Some(*kind) == call.kind
                && same_host(target.host.as_deref(), url.host_str())
                && target.port.or(default_port(*kind)) == url.port().or(default_port(*kind))
                && match target.database.as_deref() {
                    Some(d) => d == url.path().trim_matches('/'),
                    // mysql with no database reaches any of the server's: `DROP TABLE db.t`,
                    // `USE db`.
                    None => *kind == ProviderKind::Mysql,
                }
        }
    }
}

/// Whether the client call connects to the server of `url` (whichever of its databases): where
/// a `DROP DATABASE` reaches every database, the one connected to being the one it cannot drop.
pub fn server_is(call: &SqlCall, url: &DatabaseUrl, dir: &Path) -> bool {
    let DatabaseUrl::Server { kind, url } = url else {
        return false;
    };
    let target = &call.target;
    if let Some(raw) = &target.url {
        return match DatabaseUrl::parse(raw, dir) {
            Ok(DatabaseUrl::Server { kind: k, url: u }) => {
                k == *kind
                    && same_host(u.host_str(), url.host_str())
                    && u.port_or_known_default().or(default_port(k))
                        == url.port_or_known_default().or(default_port(*kind))
            }
            _ => false,
        };
    }
    Some(*kind) == call.kind
        && same_host(target.host.as_deref(), url.host_str())
        && target.port.or(default_port(*kind)) == url.port().or(default_port(*kind))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::{invocations, sql};

    fn url(raw: &str) -> DatabaseUrl {
        DatabaseUrl::parse(raw, Path::new("/")).unwrap()
    }

    /// The client call of `line`, its variables unknown.
    fn call(line: &str) -> SqlCall {
        let inv = invocations(line).remove(0);
        sql::call(&inv, &|_| None).unwrap()
    }

    #[test]
    fn two_spellings_of_one_postgres_database_are_the_same_database() {
        let a = url("postgres://app:secret@localhost/shop");
        for same in [
            "postgresql://other@127.0.0.1:5432/shop",
            "postgres://LOCALHOST:5432/shop/",
            "postgres://[::1]/shop?sslmode=disable",
        ] {
            assert!(same_database(&a, &url(same)), "{same}");
        }
        for other in [
            "postgres://app@localhost:5433/shop",
            "postgres://app@localhost/shop2",
            "postgres://app@db.internal/shop",
            "mysql://app@localhost/shop",
        ] {
            assert!(!same_database(&a, &url(other)), "{other}");
        }
    }

    #[test]
    fn sqlite_files_are_the_same_through_another_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("db")).unwrap();
        std::fs::write(dir.path().join("db/app.sqlite3"), "").unwrap();
        let a = DatabaseUrl::parse("sqlite:db/app.sqlite3", dir.path()).unwrap();
        let b = DatabaseUrl::parse("sqlite:db/../db/app.sqlite3", dir.path()).unwrap();
        let c = DatabaseUrl::parse("sqlite:db/other.sqlite3", dir.path()).unwrap();
        assert!(same_database(&a, &b));
        assert!(!same_database(&a, &c));
        let sqlite3 = call("sqlite3 db/./app.sqlite3 'DROP TABLE t'");
        assert!(target_is(&sqlite3, &a, dir.path()));
        assert!(!target_is(&sqlite3, &c, dir.path()));
    }

    #[test]
    fn psql_reaches_the_database_of_its_host_port_and_name() {
        let prod = url("postgres://app@127.0.0.1:5432/shop");
        let dir = Path::new("/");
        assert!(target_is(
            &call("psql -h localhost -d shop -c 'DROP TABLE t'"),
            &prod,
            dir
        ));
        assert!(target_is(
            &call("psql postgres://x@localhost/shop -c 'DROP TABLE t'"),
            &prod,
            dir
        ));
        assert!(!target_is(
            &call("psql -h localhost -p 5433 -d shop -c 'DROP TABLE t'"),
            &prod,
            dir
        ));
        assert!(!target_is(
            &call("psql -h localhost -d other -c 'DROP TABLE t'"),
            &prod,
            dir
        ));
        // The server of the database, whichever database of it is connected to.
        assert!(server_is(
            &call("psql -h localhost -d postgres -c 'DROP DATABASE shop'"),
            &prod,
            dir
        ));
        assert!(!server_is(
            &call("psql -h localhost -p 5433 -d postgres -c 'DROP DATABASE shop'"),
            &prod,
            dir
        ));
        assert!(!server_is(
            &call("sqlite3 shop.db 'DROP TABLE t'"),
            &prod,
            dir
        ));
    }

    #[test]
    fn mysql_without_a_database_reaches_every_database_of_its_server() {
        let prod = url("mysql://root@127.0.0.1:3306/shop");
        let target = |line: &str| target_is(&call(line), &prod, Path::new("/"));
        assert!(target("mysql -h127.0.0.1 -uroot -e 'DROP TABLE shop.t'"));
        assert!(target("mysql -h localhost shop -e 'DROP TABLE t'"));
        assert!(!target("mysql -h127.0.0.1 other -e 'DROP TABLE t'"));
        assert!(!target("mysql -h db.internal -e 'DROP TABLE shop.t'"));
    }
}
