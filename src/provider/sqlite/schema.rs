//! An SQLite database's shape, read from `sqlite_schema` and the `table_xinfo`, `index_list` and
//! `index_info` pragmas: its own tables (not SQLite's `sqlite_*` ones), their columns in order,
//! the indexes made by `CREATE INDEX` or a `UNIQUE` constraint (the primary key's own index is
//! the columns' `primary_key`), and the foreign keys (`foreign_key_list`). SQLite names no
//! foreign key: each is named by its columns and the table it references
//! (`FOREIGN KEY (account_id) REFERENCES accounts`). Generated columns are columns; a virtual
//! table's hidden ones are not. Its `CHECK` constraints are only in the table's SQL, and are
//! not read.

use rusqlite::Connection;

use crate::schema::{Column, Index, Schema, Table};

/// What an expression index covers where a column name would be.
const EXPRESSION: &str = "<expression>";

/// The schema of the database `conn` is open on.
pub fn read(conn: &Connection) -> rusqlite::Result<Schema> {
    let mut names = conn.prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
    )?;
    let tables = names
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    let mut schema = Schema::default();
    for name in tables {
        let table = Table {
            columns: columns(conn, &name)?,
            indexes: indexes(conn, &name)?,
            constraints: foreign_keys(conn, &name)?,
        };
        schema.tables.insert(name, table);
    }
    Ok(schema)
}

fn columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<Column>> {
    let mut info = conn.prepare(
        "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_xinfo(?1) \
         WHERE hidden <> 1 ORDER BY cid",
    )?;
    info.query_map([table], |row| {
        Ok(Column {
            name: row.get(0)?,
            data_type: row.get(1)?,
            nullable: row.get::<_, i64>(2)? == 0,
            default: row.get(3)?,
            primary_key: row.get::<_, i64>(4)? > 0,
        })
    })?
    .collect()
}

fn indexes(
    conn: &Connection,
    table: &str,
) -> rusqlite::Result<std::collections::BTreeMap<String, Index>> {
    let mut list = conn.prepare(
        "SELECT name, \"unique\", partial FROM pragma_index_list(?1) WHERE origin <> 'pk' \
         ORDER BY name",
    )?;
    let found = list
        .query_map([table], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)? != 0,
                row.get::<_, i64>(2)? != 0,
            ))
        })?
        .collect::<rusqlite::Result<Vec<(String, bool, bool)>>>()?;
    // The key columns (not the rowid `index_xinfo` adds), each marked when it sorts descending.
    let mut info = conn.prepare(
        "SELECT name, \"desc\" FROM pragma_index_xinfo(?1) WHERE key = 1 ORDER BY seqno",
    )?;
    // A partial index's `WHERE` is only in its SQL.
    let mut sql =
        conn.prepare("SELECT sql FROM sqlite_schema WHERE type = 'index' AND name = ?1")?;
    let mut out = std::collections::BTreeMap::new();
    for (name, unique, partial) in found {
        let columns = info
            .query_map([&name], |row| {
                let column = row
                    .get::<_, Option<String>>(0)?
                    .unwrap_or_else(|| EXPRESSION.to_string());
                Ok(if row.get::<_, i64>(1)? == 0 {
                    column
                } else {
                    format!("{column} DESC")
                })
            })?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        let definition = if partial {
            sql.query_row([&name], |row| row.get::<_, Option<String>>(0))?
        } else {
            None
        };
        let index = Index {
            columns,
            unique,
            definition,
        };
        out.insert(name, index);
    }
    Ok(out)
}

/// The table's foreign keys, by their columns and the table they reference:
/// `FOREIGN KEY (a, b) REFERENCES t` → `FOREIGN KEY (a, b) REFERENCES t(x, y) ON UPDATE … ON
/// DELETE …` (two keys from the same columns may reference two tables).
fn foreign_keys(
    conn: &Connection,
    table: &str,
) -> rusqlite::Result<std::collections::BTreeMap<String, String>> {
    /// One foreign key, gathered from its rows (one per column).
    struct Key {
        id: i64,
        parent: String,
        from: Vec<String>,
        to: Vec<String>,
        actions: String,
    }
    let mut list = conn.prepare(
        "SELECT id, \"table\", \"from\", \"to\", on_update, on_delete \
         FROM pragma_foreign_key_list(?1) ORDER BY id, seq",
    )?;
    let mut keys: Vec<Key> = Vec::new();
    let mut rows = list.query([table])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let from: String = row.get(2)?;
        // No `to` when the key references the parent's primary key implicitly.
        let to: Option<String> = row.get(3)?;
        match keys.last_mut() {
            Some(key) if key.id == id => {
                key.from.push(from);
                key.to.extend(to);
            }
            _ => keys.push(Key {
                id,
                parent: row.get(1)?,
                from: vec![from],
                to: to.into_iter().collect(),
                actions: format!(
                    "ON UPDATE {} ON DELETE {}",
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?
                ),
            }),
        }
    }
    let named: Vec<(String, String)> = keys
        .into_iter()
        .map(|k| {
            let name = format!(
                "FOREIGN KEY ({}) REFERENCES {}",
                k.from.join(", "),
                k.parent
            );
            let definition = format!("{name}({}) {}", k.to.join(", "), k.actions);
            (name, definition)
        })
        .collect();
    // Two keys from the same columns to the same table: each named by all it says.
    let shared = |name: &String| named.iter().filter(|(n, _)| n == name).count() > 1;
    Ok(named
        .iter()
        .map(|(name, definition)| {
            let name = if shared(name) { definition } else { name };
            (name.clone(), definition.clone())
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Change, changes};

    fn db(sql: &str) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(sql).unwrap();
        conn
    }

    const BEFORE: &str = "
        CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, age INT DEFAULT 0);
        CREATE UNIQUE INDEX users_email ON users (email);
        CREATE INDEX users_lower ON users (lower(email));
        CREATE TABLE old_log (line TEXT);
    ";

    #[test]
    fn tables_columns_and_indexes_are_read_as_declared() {
        let schema = read(&db(BEFORE)).unwrap();
        assert_eq!(
            schema.tables.keys().collect::<Vec<_>>(),
            ["old_log", "users"]
        );
        let users = &schema.tables["users"];
        let id = users.column("id").unwrap();
        assert!(id.primary_key && id.data_type == "INTEGER");
        let email = users.column("email").unwrap();
        assert!(!email.nullable && !email.primary_key);
        assert_eq!(users.column("age").unwrap().default.as_deref(), Some("0"));
        assert_eq!(
            users.indexes["users_email"],
            Index {
                columns: vec!["email".into()],
                unique: true,
                definition: None,
            }
        );
        assert_eq!(users.indexes["users_lower"].columns, [EXPRESSION]);
        assert!(!users.indexes["users_lower"].unique);
        // SQLite's own tables are not the database's.
        let with_sequence = read(&db(
            "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT); INSERT INTO t DEFAULT VALUES;",
        ))
        .unwrap();
        assert_eq!(with_sequence.tables.keys().collect::<Vec<_>>(), ["t"]);
    }

    #[test]
    fn a_migration_is_seen_as_the_changes_it_made() {
        let conn = db(BEFORE);
        let before = read(&conn).unwrap();
        conn.execute_batch(
            "ALTER TABLE users ADD COLUMN name TEXT;
             DROP INDEX users_lower;
             DROP INDEX users_email;
             CREATE INDEX users_email ON users (email, name);
             DROP TABLE old_log;
             CREATE TABLE audit (at TEXT NOT NULL, what TEXT);
             CREATE TABLE t2 (age TEXT);",
        )
        .unwrap();
        // A type change is a table rebuilt, in SQLite.
        conn.execute_batch(
            "CREATE TABLE users_new (id INTEGER PRIMARY KEY, email TEXT NOT NULL, age TEXT DEFAULT 0, name TEXT);
             INSERT INTO users_new SELECT * FROM users;
             DROP TABLE users;
             ALTER TABLE users_new RENAME TO users;
             CREATE INDEX users_email ON users (email, name);
             DROP TABLE t2;",
        )
        .unwrap();
        let after = read(&conn).unwrap();
        let found = changes(&before, &after);
        let added = after.tables["users"].column("name").unwrap().clone();
        let mut age = before.tables["users"].column("age").unwrap().clone();
        let was = age.clone();
        age.data_type = "TEXT".into();
        assert_eq!(
            found,
            [
                Change::TableAdded {
                    table: "audit".into()
                },
                Change::TableDropped {
                    table: "old_log".into()
                },
                Change::ColumnAltered {
                    table: "users".into(),
                    before: was,
                    after: age,
                },
                Change::ColumnAdded {
                    table: "users".into(),
                    column: added,
                },
                Change::IndexAltered {
                    table: "users".into(),
                    index: "users_email".into(),
                    before: Index {
                        columns: vec!["email".into()],
                        unique: true,
                        definition: None,
                    },
                    after: Index {
                        columns: vec!["email".into(), "name".into()],
                        unique: false,
                        definition: None,
                    },
                },
                Change::IndexDropped {
                    table: "users".into(),
                    index: "users_lower".into(),
                },
            ]
        );
        assert!(changes(&after, &after).is_empty(), "a schema equals itself");
    }

    #[test]
    fn foreign_keys_are_named_by_their_columns_and_parent_and_a_changed_action_is_an_alteration() {
        let conn = db(
            "CREATE TABLE accounts (id INTEGER PRIMARY KEY);
             CREATE TABLE events (id INTEGER PRIMARY KEY, account_id INTEGER REFERENCES accounts(id));",
        );
        let before = read(&conn).unwrap();
        let name = "FOREIGN KEY (account_id) REFERENCES accounts";
        assert_eq!(
            before.tables["events"].constraints[name],
            "FOREIGN KEY (account_id) REFERENCES accounts(id) ON UPDATE NO ACTION ON DELETE NO ACTION"
        );
        conn.execute_batch(
            "CREATE TABLE events_new (id INTEGER PRIMARY KEY,
                 account_id INTEGER REFERENCES accounts(id) ON DELETE CASCADE);
             DROP TABLE events;
             ALTER TABLE events_new RENAME TO events;",
        )
        .unwrap();
        let after = read(&conn).unwrap();
        assert_eq!(
            changes(&before, &after),
            [Change::ConstraintAltered {
                table: "events".into(),
                constraint: name.into(),
                before: before.tables["events"].constraints[name].clone(),
                after: after.tables["events"].constraints[name].clone(),
            }]
        );
        assert!(after.tables["events"].constraints[name].ends_with("ON DELETE CASCADE"));
    }

    #[test]
    fn two_foreign_keys_on_the_same_columns_are_two_constraints() {
        let conn = db("CREATE TABLE p (id INTEGER PRIMARY KEY);
             CREATE TABLE q (id INTEGER PRIMARY KEY);
             CREATE TABLE c (a INT REFERENCES p(id), FOREIGN KEY (a) REFERENCES q(id));");
        let before = read(&conn).unwrap();
        let keys: Vec<&String> = before.tables["c"].constraints.values().collect();
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert!(
            keys.iter().any(|k| k.contains("REFERENCES p(id)")),
            "{keys:?}"
        );
        assert!(
            keys.iter().any(|k| k.contains("REFERENCES q(id)")),
            "{keys:?}"
        );
        // Dropping one of them is a change.
        conn.execute_batch(
            "CREATE TABLE c2 (a INT REFERENCES p(id));
             DROP TABLE c;
             ALTER TABLE c2 RENAME TO c;",
        )
        .unwrap();
        let after = read(&conn).unwrap();
        assert_eq!(changes(&before, &after).len(), 1, "{before:?} {after:?}");
    }

    #[test]
    fn generated_columns_are_columns_and_a_virtual_tables_hidden_ones_are_not() {
        let conn = db(
            "CREATE TABLE t (a INT, b INT GENERATED ALWAYS AS (a * 2) VIRTUAL,
                 c TEXT AS (a || 'x') STORED);
             CREATE VIRTUAL TABLE ft USING fts5(body);",
        );
        let schema = read(&conn).unwrap();
        let names: Vec<&str> = schema.tables["t"]
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
        let names: Vec<&str> = schema.tables["ft"]
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["body"]);
    }

    #[test]
    fn a_partial_index_made_whole_and_an_order_reversed_are_changes() {
        let conn = db("CREATE TABLE t (a INT, b INT);
             CREATE UNIQUE INDEX t_a ON t (a) WHERE a > 0;
             CREATE INDEX t_b ON t (b);");
        let before = read(&conn).unwrap();
        let t_a = &before.tables["t"].indexes["t_a"];
        assert!(t_a.definition.as_deref().unwrap().ends_with("WHERE a > 0"));
        conn.execute_batch(
            "DROP INDEX t_a; CREATE UNIQUE INDEX t_a ON t (a);
             DROP INDEX t_b; CREATE INDEX t_b ON t (b DESC);",
        )
        .unwrap();
        let after = read(&conn).unwrap();
        assert_eq!(after.tables["t"].indexes["t_b"].columns, ["b DESC"]);
        let altered: Vec<_> = changes(&before, &after)
            .into_iter()
            .map(|c| match c {
                Change::IndexAltered { index, .. } => index,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(altered, ["t_a", "t_b"]);
    }
}
