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
}
