//! What is found pending, and what the config's rules make of it, before anything is done.

use super::*;

#[test]
fn the_pending_migration_is_found_and_its_drop_described() {
    let p = Migrating::new("true", "");
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let env = session.env("dev").unwrap();
    let (_, db) = session.provider(env).unwrap();
    let outlook = plan(&session, env, db.as_ref()).unwrap();

    assert!(outlook.exists);
    assert!(outlook.listable);
    let before = outlook.before.unwrap();
    assert_eq!(before.tool, "schema_migrations");
    assert_eq!(before.applied_count, 1);
    assert_eq!(outlook.dir, Some(p.root().join("migrations")));
    let names: Vec<&str> = outlook.todo.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["002_drop_notes"]);
    let pending = &outlook.todo[0];
    assert_eq!(pending.file, "migrations/002_drop_notes.sql");
    assert_eq!(pending.destructive.len(), 1);
    let drop = &pending.destructive[0];
    assert_eq!(drop.kind, "drop_table");
    assert_eq!(drop.line, 1);
    assert!(drop.statement.contains("DROP TABLE notes"), "{drop:?}");
    // No rule forbids it or wants it backed up.
    assert_eq!((&drop.blocked, &drop.backup_required), (&None, &None));
    assert!(blocked(&session, &outlook.todo).is_none());
}

#[test]
fn a_drop_the_config_forbids_is_refused_before_anything_is_done() {
    let p = Migrating::new(
        "touch ran.txt",
        r#"
[safety.destructive_operations.drop_table]
allowed = false
block_reason = "tables are dropped by hand here"
"#,
    );
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let env = session.env("dev").unwrap();
    let (_, db) = session.provider(env).unwrap();
    let prepared = prepare(&session, env, db.as_ref(), &request(), None).unwrap();

    let refused = prepared.refused.unwrap();
    assert_eq!(refused.kind(), crate::error::Kind::Aborted);
    assert_eq!(
        refused.message(),
        "the pending migrations hold statements the config does not allow, so nothing was run: \
         002_drop_notes (migrations/002_drop_notes.sql line 1) holds DROP TABLE: tables are \
         dropped by hand here"
    );
    let hint = refused.hints()[0].as_text().unwrap();
    assert!(
        hint.starts_with("safety.destructive_operations.drop_table.allowed = false in "),
        "{hint}"
    );
    assert!(!p.root().join("ran.txt").exists());
    assert!(p.written().is_empty(), "{:?}", p.written());
}

#[test]
fn a_rule_that_wants_a_backup_takes_it_and_refuses_no_backup() {
    let p = Migrating::new(
        "true",
        r"
[safety.destructive_operations.drop_table]
allowed = true
require_backup = true
",
    );
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let env = session.env("dev").unwrap();
    let (_, db) = session.provider(env).unwrap();

    let prepared = prepare(&session, env, db.as_ref(), &request(), None).unwrap();
    let rule = prepared.backup_required.clone().unwrap();
    assert!(rule.contains("drop_table"), "{rule}");
    assert!(prepared.take_backup);
    assert!(prepared.refused.is_none());
    assert_eq!(prepared.destructive, 1);

    let no_backup = Request {
        no_backup: true,
        ..request()
    };
    let prepared = prepare(&session, env, db.as_ref(), &no_backup, None).unwrap();
    assert!(!prepared.take_backup);
    let refused = prepared.refused.unwrap();
    assert_eq!(
        refused.message(),
        format!("--no-backup is refused: {rule} wants a pre-migration backup of `dev`")
    );
}
