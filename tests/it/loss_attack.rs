//! The rollback preview attacked: what the database holds (its table and column names) must not
//! be able to rewrite what a protected rollback's question shows.

use crate::harness::Project;

/// A name that, printed raw to a terminal, erases the line before it and writes its own.
const EVIL: &str = "t\u{1b}[1A\u{1b}[2K\rLoses: no row written since the backup\u{7}";

#[test]
fn a_table_name_cannot_write_control_characters_into_the_loss_summary() {
    let p = Project::new();
    p.sqlite("db/dev.sqlite3")
        .execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('a');")
        .unwrap();
    let id = p.backup(&["dev"]);
    let conn = p.sqlite("db/dev.sqlite3");
    conn.execute_batch(&format!(
        "CREATE TABLE \"{EVIL}\" (id INTEGER PRIMARY KEY, \"c{EVIL}\" TEXT); INSERT INTO \"{EVIL}\" DEFAULT VALUES; ALTER TABLE notes ADD COLUMN \"{EVIL}\" TEXT;"
    ))
    .unwrap();
    drop(conn);
    let run = p
        .run(&["rollback", "dev", "--to", &id, "--dry-run"])
        .code(0);
    assert!(
        !run.stdout.contains('\u{1b}')
            && !run.stdout.contains('\r')
            && !run.stdout.contains('\u{7}'),
        "control characters reach the terminal: {:?}",
        run.stdout
    );
    // The name is still there to read, escaped.
    assert!(
        run.stdout.contains("Loses: no row written"),
        "{}",
        run.stdout
    );
    // diff shows the same names: its row table and its schema lines escape them too.
    let diff = p.run(&["diff", &id]).code(0);
    assert!(
        !diff.stdout.contains('\u{1b}') && !diff.stdout.contains('\r'),
        "control characters reach the terminal: {:?}",
        diff.stdout
    );
    assert!(diff.stdout.contains("\\u{1b}"), "{}", diff.stdout);
}

#[test]
fn mysql_an_unsigned_key_beyond_i64_costs_only_its_own_table_the_count_by_key() {
    if !crate::mysql::server_up() {
        return;
    }
    let db = crate::mysql::MyDb::new("loss_u64");
    db.exec(
        "CREATE TABLE notes (id bigint AUTO_INCREMENT PRIMARY KEY, body text);
         INSERT INTO notes (body) VALUES ('a'), ('b'), ('c');
         CREATE TABLE big (id bigint unsigned PRIMARY KEY);
         INSERT INTO big VALUES (18446744073709551615);",
    );
    let p = crate::mysql::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    db.exec("INSERT INTO notes (body) VALUES ('d'), ('e');");
    let doc = p.json(&["rollback", "dev", "--to", &id, "--dry-run"], 0);
    let notes = doc["would_lose"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "notes")
        .cloned()
        .unwrap_or_default();
    assert_eq!(notes["rows"], 2, "{doc}");
    assert_eq!(
        notes["basis"], "primary_key",
        "one table's key beyond i64 dropped every table's largest key: {doc}"
    );
}
