//! Restores without CREATEDB: a role that only owns its database (as managed PostgreSQL services
//! hand out) and a MariaDB user whose privileges end at its own database restore in place; the
//! plan says which method and why; a failed in-place load leaves the database as it was (one
//! transaction on PostgreSQL, the safety backup put back on MariaDB); objects of other roles are
//! never dropped; `verify --deep` says it needs a scratch server instead of failing with exit 6.
//! Real servers, real tools; every role, user and database is the test's own, dropped after.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

use crate::harness::Project;
use crate::mysql::{self, MyDb};
use crate::postgres::{self, PgDb, admin_url, psql};

/// A login role without CREATEDB owning a fresh database: `faber_owner_<unique>`, with the
/// database `PgDb` gives (dropped first, then the role).
struct OwnerRole {
    role: String,
    db: PgDb,
}

impl OwnerRole {
    fn new(tag: &str) -> OwnerRole {
        static N: AtomicU32 = AtomicU32::new(0);
        let role = format!(
            "faber_owner_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let db = PgDb::new(tag);
        psql(
            &admin_url(),
            &format!("DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN NOCREATEDB NOSUPERUSER"),
        );
        psql(
            &admin_url(),
            &format!("ALTER DATABASE {} OWNER TO {role}", db.name),
        );
        OwnerRole { role, db }
    }

    /// The database's URL as the role (trust authentication: no password).
    fn url(&self) -> String {
        let mut u = url::Url::parse(&self.db.url()).unwrap();
        u.set_username(&self.role).unwrap();
        u.to_string()
    }

    /// Runs `sql` in the database as the role.
    fn exec(&self, sql: &str) -> String {
        psql(&self.url(), sql)
    }

    /// A project whose `dev` environment connects as the role.
    fn project(&self, extra: &str) -> Project {
        Project::with_config(&format!(
            "[defaults]\ncompression = \"gzip\"\n[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\n{extra}"
        ))
        .with_var("DEV_DATABASE_URL", &self.url())
    }
}

impl Drop for OwnerRole {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                "-X",
                "-q",
                &admin_url(),
                "-c",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db.name),
                "-c",
                &format!("DROP ROLE IF EXISTS {}", self.role),
            ])
            .output();
    }
}

/// The test schema, made by the role, with a schema of its own besides `public`.
fn owned_schema(owner: &OwnerRole) {
    owner.exec(postgres::SCHEMA);
    owner.exec(
        "CREATE SCHEMA audit; CREATE TABLE audit.log (id int PRIMARY KEY, msg text); \
         INSERT INTO audit.log SELECT g, 'entry ' || g FROM generate_series(1, 40) g;",
    );
}

/// Changes the data and the schema after the backup, as the role.
fn drift(owner: &OwnerRole) {
    owner.exec(
        "DELETE FROM events WHERE id > 100; INSERT INTO audit.log VALUES (999, 'late'); \
         CREATE TABLE extra (x int); CREATE SCHEMA scratchpad; CREATE TABLE scratchpad.t (y int);",
    );
}

fn scratch_databases(db: &PgDb) -> String {
    psql(
        &admin_url(),
        &format!(
            "SELECT string_agg(datname, ',') FROM pg_database WHERE datname LIKE '{}\\_\\_faber%'",
            db.name
        ),
    )
}

#[test]
fn pg_a_database_owner_without_createdb_restores_in_place() {
    if !postgres::server_up() {
        return;
    }
    let owner = OwnerRole::new("owned");
    owned_schema(&owner);
    let p = owner.project("");
    let id = p.backup(&["dev"]);
    let (schema, data) = (owner.db.schema(), owner.db.data());
    drift(&owner);
    assert_ne!(owner.db.data(), data);

    // The plan says how, and why.
    let doc = p.json(&["restore", "dev", "--from", &id, "--dry-run"], 0);
    assert_eq!(doc["plan"]["method"], "in-place", "{doc}");
    let why = doc["plan"]["method_why"].as_str().unwrap();
    assert!(why.contains("CREATEDB"), "{why}");
    assert_eq!(doc["plan"]["safety_backup"]["after_swap"], false, "{doc}");
    p.run(&["restore", "dev", "--from", &id, "--dry-run"])
        .code(0)
        .stdout_has("Method:")
        .stdout_has("in-place");

    let doc = p.json(&["restore", "dev", "--from", &id, "--yes"], 0);
    assert_eq!(doc["method"], "in-place", "{doc}");
    assert_eq!(doc["row_count_differences"], Value::Array(vec![]), "{doc}");
    assert_eq!(owner.db.data(), data);
    assert_eq!(owner.db.schema(), schema);
    // The safety backup holds the drifted data, and restores the same way.
    let safety = doc["safety_backup"].as_str().unwrap().to_string();
    let entry = p
        .backups()
        .into_iter()
        .find(|b| b["id"] == safety.as_str())
        .unwrap();
    assert_eq!(entry["reason"], "pre-restore");
    assert_eq!(entry["tables"]["extra"]["rows"], 0, "{entry}");
    p.json(
        &[
            "restore",
            "dev",
            "--from",
            &safety,
            "--no-safety-backup",
            "--yes",
        ],
        0,
    );
    assert_eq!(owner.exec("SELECT count(*) FROM scratchpad.t"), "0");
    assert_eq!(owner.exec("SELECT count(*) FROM audit.log"), "41");
    // Objects stay the role's, and no scratch database was ever made.
    assert_eq!(
        owner.exec("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'accounts'"),
        owner.role
    );
    assert_eq!(scratch_databases(&owner.db), "");
}

#[test]
fn pg_a_failing_in_place_load_leaves_the_database_exactly_as_before() {
    if !postgres::server_up() {
        return;
    }
    let owner = OwnerRole::new("owned_fail");
    owned_schema(&owner);
    let p = owner.project("");
    let id = p.backup(&["dev"]);
    drift(&owner);
    // Another role's table now has the name of an object the backup makes: the load fails
    // after the drops and halfway through the dump.
    owner.exec("DROP SEQUENCE tickets");
    psql(
        &owner.db.url(),
        &format!(
            "CREATE TABLE public.tickets (x int); INSERT INTO public.tickets VALUES (7); \
             GRANT SELECT ON public.tickets TO {}",
            owner.role
        ),
    );
    let (schema, data) = (owner.db.schema(), owner.db.data());
    let before = p.backups().len();
    p.run(&["restore", "dev", "--from", &id, "--yes"])
        .code(6)
        .stderr_has("error: the in-place restore")
        .stderr_has("already exists")
        .stderr_has("nothing was changed")
        .stderr_has("hint:");
    assert_eq!(owner.db.schema(), schema);
    assert_eq!(owner.db.data(), data);
    assert_eq!(owner.exec("SELECT count(*) FROM extra"), "0");
    // The safety backup was taken first, as before any restore, and is kept.
    assert_eq!(p.backups().len(), before + 1);
}

#[test]
fn pg_an_in_place_restore_never_drops_objects_of_other_roles() {
    if !postgres::server_up() {
        return;
    }
    let owner = OwnerRole::new("owned_hostile");
    owned_schema(&owner);
    let p = owner.project("");
    let id = p.backup(&["dev"]);
    drift(&owner);
    // Objects of the superuser, in `public` and in a schema of its own, none in the backup:
    // they survive the restore, with their data.
    // (Readable by the role: backups, the safety backup among them, read every table.)
    psql(
        &owner.db.url(),
        &format!(
            "CREATE TABLE public.keep_me (x int); INSERT INTO public.keep_me VALUES (1), (2); \
             CREATE SCHEMA ops; CREATE TABLE ops.jobs (id int); INSERT INTO ops.jobs VALUES (3); \
             GRANT SELECT ON public.keep_me TO {r}; GRANT USAGE ON SCHEMA ops TO {r}; \
             GRANT SELECT ON ops.jobs TO {r}",
            r = owner.role
        ),
    );
    let doc = p.json(&["restore", "dev", "--from", &id, "--yes"], 0);
    assert_eq!(doc["method"], "in-place");
    let admin = |sql: &str| psql(&owner.db.url(), sql);
    assert_eq!(admin("SELECT count(*) FROM public.keep_me"), "2");
    assert_eq!(admin("SELECT count(*) FROM ops.jobs"), "1");
    assert_eq!(owner.exec("SELECT count(*) FROM events"), "700");

    // A view of the superuser's over one of the role's tables: dropping the table would take
    // it along. The restore refuses in its transaction; nothing changes.
    admin(&format!(
        "CREATE VIEW public.watch AS SELECT count(*) AS n FROM public.accounts; \
         GRANT SELECT ON public.watch TO {}",
        owner.role
    ));
    owner.exec("DELETE FROM events WHERE id > 10");
    let (schema, data) = (owner.db.schema(), owner.db.data());
    p.run(&["restore", "dev", "--from", &id, "--yes"])
        .code(6)
        .stderr_has("objects of other roles")
        .stderr_has("view public.watch")
        .stderr_has("nothing was changed");
    assert_eq!(owner.db.schema(), schema);
    assert_eq!(owner.db.data(), data);
    assert_eq!(admin("SELECT n FROM public.watch"), "300");

    // An object of another role inside the role's own schema: that schema cannot be made again
    // in place, so the method is refused before anything happens (no safety backup).
    admin("DROP VIEW public.watch; CREATE TABLE audit.foreign_note (x int)");
    let before = p.backups().len();
    p.run(&["restore", "dev", "--from", &id, "--yes"])
        .code(6)
        .stderr_has("audit.foreign_note")
        .stderr_has("hint:");
    assert_eq!(p.backups().len(), before);
    p.run(&["restore", "dev", "--from", &id, "--dry-run"])
        .code(6)
        .stderr_has("CREATEDB");
}

#[test]
fn pg_deep_verify_without_createdb_needs_a_scratch_server_and_uses_one() {
    if !postgres::server_up() {
        return;
    }
    let owner = OwnerRole::new("owned_verify");
    owned_schema(&owner);
    let mut p = owner.project("");
    let id = p.backup(&["dev"]);
    // Not configured: exit 1 and what to set, never a misleading exit 6.
    p.run(&["verify", &id, "--deep"])
        .code(1)
        .stderr_has("verify_url_env")
        .stderr_lacks("permission denied");
    // Configured but unset: said so.
    p.write(
        ".fractary/plugins/faber-db/config.toml",
        "[defaults]\ncompression = \"gzip\"\n[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\n\
         verify_url_env = \"FABER_SCRATCH_URL\"\n",
    );
    p.run(&["verify", &id, "--deep"])
        .code(1)
        .stderr_has("FABER_SCRATCH_URL");
    // Pointed at a server where faber-db may create databases: verified there.
    p.set_var("FABER_SCRATCH_URL", &admin_url());
    let doc = p.json(&["verify", &id, "--deep"], 0);
    assert_eq!(doc["backup"]["status"], "valid", "{doc}");
    assert_eq!(scratch_databases(&owner.db), "");
}

#[test]
fn pg_in_place_can_be_forced_by_a_superuser_and_loads_custom_archives() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("forced");
    db.exec(postgres::SCHEMA);
    let p = postgres::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev", "--format", "custom"]);
    let (schema, data) = (db.schema(), db.data());
    db.exec("DELETE FROM accounts WHERE id > 250 AND id NOT IN (SELECT account_id FROM events); CREATE TABLE extra (x int);");
    // By default a superuser swaps.
    let doc = p.json(&["restore", "dev", "--from", &id, "--dry-run"], 0);
    assert_eq!(doc["plan"]["method"], "swap", "{doc}");
    let doc = p.json(
        &["restore", "dev", "--from", &id, "--dry-run", "--in-place"],
        0,
    );
    assert_eq!(doc["plan"]["method"], "in-place", "{doc}");
    let doc = p.json(&["restore", "dev", "--from", &id, "--in-place", "--yes"], 0);
    assert_eq!(doc["method"], "in-place", "{doc}");
    assert!(
        doc["method_why"].as_str().unwrap().contains("--in-place"),
        "{doc}"
    );
    assert_eq!(db.data(), data);
    assert_eq!(db.schema(), schema);
    // rollback takes the flag too.
    let doc = p.json(
        &[
            "rollback",
            "dev",
            "--to",
            &id,
            "--in-place",
            "--yes",
            "--force",
        ],
        0,
    );
    assert_eq!(doc["method"], "in-place", "{doc}");
    assert_eq!(db.data(), data);
}

/// A MariaDB user with every privilege on `db` and none elsewhere (no scratch databases).
pub struct DbUser {
    name: String,
}

impl DbUser {
    pub fn new(db: &MyDb) -> DbUser {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "faber_own_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        mysql::mysql(
            None,
            &format!(
                "DROP USER IF EXISTS '{name}'@'%'; CREATE USER '{name}'@'%' IDENTIFIED BY 'own-pw'; \
                 GRANT ALL ON `{}`.* TO '{name}'@'%';",
                db.name
            ),
        );
        DbUser { name }
    }

    pub fn url(&self, db: &MyDb) -> String {
        format!("mysql://{}:own-pw@127.0.0.1:3306/{}", self.name, db.name)
    }
}

impl Drop for DbUser {
    fn drop(&mut self) {
        let _ = Command::new("mysql")
            .args(["-h", "127.0.0.1", "-u", "root", "-e"])
            .arg(format!("DROP USER IF EXISTS '{}'@'%'", self.name))
            .output();
    }
}

#[test]
fn mysql_a_user_limited_to_its_database_restores_in_place_and_a_failure_puts_the_safety_backup_back()
 {
    if !mysql::server_up() {
        return;
    }
    let db = MyDb::new("owned");
    db.exec(
        "CREATE TABLE t (id int PRIMARY KEY, v varchar(20)); \
         INSERT INTO t VALUES (1, 'one'), (2, 'two'), (3, 'three'); \
         CREATE TABLE child (id int PRIMARY KEY, t_id int, FOREIGN KEY (t_id) REFERENCES t(id)); \
         INSERT INTO child VALUES (10, 1), (20, 2);",
    );
    let user = DbUser::new(&db);
    let p = mysql::project_with(&[("dev", &db)]).with_var("DEV_DATABASE_URL", &user.url(&db));
    let id = p.backup(&["dev"]);
    let data = db.data();
    db.exec("DELETE FROM child WHERE id = 20; INSERT INTO t VALUES (4, 'four'); CREATE TABLE extra (x int);");

    let doc = p.json(&["restore", "dev", "--from", &id, "--dry-run"], 0);
    assert_eq!(doc["plan"]["method"], "in-place", "{doc}");
    let doc = p.json(&["restore", "dev", "--from", &id, "--yes"], 0);
    assert_eq!(doc["method"], "in-place", "{doc}");
    assert_eq!(db.data(), data);
    assert_eq!(db.exec("SHOW TABLES LIKE 'extra'"), "");
    assert_eq!(
        mysql::mysql(
            None,
            &format!(
                "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '{}\\_\\_faber%'",
                db.name
            )
        ),
        "0"
    );

    // A backup holding a view whose DEFINER this user may not name: its tables load, then the
    // view fails — midway. The safety backup is put back in place.
    db.exec("CREATE VIEW v AS SELECT id FROM t");
    let bad = p.backup(&["dev"]);
    db.exec("DROP VIEW v; INSERT INTO t VALUES (5, 'five');");
    let before = db.data();
    p.run(&["restore", "dev", "--from", &bad, "--yes"])
        .code(6)
        .stderr_has("failed midway")
        .stderr_has("restored in place")
        .stderr_has("hint:");
    assert_eq!(db.data(), before);
    assert_eq!(db.exec("SELECT COUNT(*) FROM t"), "4");
}

#[test]
fn a_role_that_can_use_no_method_is_told_which_grant_is_missing_before_anything_happens() {
    if !postgres::server_up() {
        return;
    }
    // A role that neither owns the database nor may create databases.
    let owner = OwnerRole::new("notmine");
    owned_schema(&owner);
    let p = owner.project("");
    let id = p.backup(&["dev"]);
    psql(
        &admin_url(),
        &format!(
            "ALTER DATABASE {} OWNER TO postgres; REVOKE CREATE ON DATABASE {} FROM PUBLIC",
            owner.db.name, owner.db.name
        ),
    );
    let before = p.backups().len();
    p.run(&["restore", "dev", "--from", &id, "--yes"])
        .code(6)
        .stderr_has("CREATEDB")
        .stderr_has("GRANT CREATE ON DATABASE")
        .stderr_has("nothing was changed");
    assert_eq!(p.backups().len(), before);
    // The dry run shows the plan and the failing `privileges` check, and fails as the run would.
    let doc = p.json(&["restore", "dev", "--from", &id, "--dry-run"], 6);
    assert_eq!(doc["plan"]["method"], Value::Null, "{doc}");
    let privileges = doc["preflight"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "privileges")
        .unwrap_or_else(|| panic!("no privileges check: {doc}"));
    assert_eq!(privileges["ok"], false, "{doc}");
    p.run(&["restore", "dev", "--from", &id, "--dry-run"])
        .code(6)
        .stdout_has("Method:     none possible")
        .stderr_has("GRANT CREATE ON DATABASE");
}

#[test]
fn a_migrate_whose_restore_could_use_no_method_stops_before_the_migration() {
    if !postgres::server_up() {
        return;
    }
    let owner = OwnerRole::new("notmine_migrate");
    owned_schema(&owner);
    let p = owner.project(
        "migrate_command = \"touch migrated\"\nbackup_before_migrate = true\nrollback_on_failure = true\n",
    );
    psql(
        &admin_url(),
        &format!(
            "ALTER DATABASE {} OWNER TO postgres; REVOKE CREATE ON DATABASE {} FROM PUBLIC",
            owner.db.name, owner.db.name
        ),
    );
    p.run(&["migrate", "dev", "--yes"])
        .code(6)
        .stderr_has("could not be restored if the migration failed")
        .stderr_has("GRANT CREATE ON DATABASE")
        .stderr_has("rollback_on_failure = false");
    assert!(!p.path("migrated").exists(), "the migration did not run");
    assert!(p.backups().is_empty(), "no pre-migration backup was taken");
    // Without the automatic restore there is nothing to restore, and nothing to check.
    let q = owner.project("migrate_command = \"touch migrated\"\nrollback_on_failure = false\n");
    q.run(&["migrate", "dev", "--yes"]).code(0);
    assert!(q.path("migrated").exists());
}

#[test]
fn pg_a_backup_with_large_objects_never_commits_half_an_in_place_restore() {
    if !postgres::server_up() {
        return;
    }
    // pg_dump writes large objects' data between a BEGIN and a COMMIT of its own: run as it is
    // inside the in-place transaction, that COMMIT would make everything loaded before it
    // permanent, and a failure after it (a post-data statement, a count, a kill) would leave the
    // database half-restored while faber-db says nothing was changed.
    let owner = OwnerRole::new("owned_lo");
    owned_schema(&owner);
    owner.exec("SELECT lo_from_bytea(0, 'a large object')");
    let p = owner.project("");
    let id = p.backup(&["dev"]);
    let custom = p.backup(&["dev", "--format", "custom"]);
    drift(&owner);
    // Another role's table now has the name of the index the backup makes after its data: the
    // load fails in its post-data part, after the large objects.
    owner.exec("DROP INDEX events_kind");
    psql(
        &owner.db.url(),
        &format!(
            "CREATE TABLE public.events_kind (x int); GRANT SELECT ON public.events_kind TO {}",
            owner.role
        ),
    );
    for backup in [&id, &custom] {
        let (schema, data) = (owner.db.schema(), owner.db.data());
        p.run(&["restore", "dev", "--from", backup, "--yes"])
            .code(6)
            .stderr_has("nothing was changed");
        assert_eq!(owner.db.schema(), schema, "{backup}");
        assert_eq!(owner.db.data(), data, "{backup}");
        assert_eq!(owner.exec("SELECT count(*) FROM extra"), "0");
        assert_eq!(owner.exec("SELECT count(*) FROM events"), "100");
    }
    // Without the conflict, both restore in place, large object and all.
    psql(&owner.db.url(), "DROP TABLE public.events_kind");
    for backup in [&id, &custom] {
        owner.exec("DELETE FROM events WHERE id > 100");
        let doc = p.json(&["restore", "dev", "--from", backup, "--yes"], 0);
        assert_eq!(doc["method"], "in-place", "{doc}");
        assert_eq!(owner.exec("SELECT count(*) FROM events"), "700");
        assert_eq!(
            owner.exec("SELECT string_agg(convert_from(lo_get(oid), 'UTF8'), ',') FROM pg_largeobject_metadata"),
            "a large object"
        );
    }
}

#[test]
fn pg_an_in_place_restore_never_drops_a_column_of_another_roles_table() {
    if !postgres::server_up() {
        return;
    }
    // Another role's table has a column of the role's enum type: dropping the type with CASCADE
    // (to make it again from the backup) would drop that column and its data, and no object of
    // the other role would be gone for the guard to see.
    let owner = OwnerRole::new("owned_col");
    owned_schema(&owner);
    let p = owner.project("");
    let id = p.backup(&["dev"]);
    drift(&owner);
    psql(
        &owner.db.url(),
        &format!(
            "CREATE TABLE public.survey (id int, answer public.mood); \
             INSERT INTO public.survey VALUES (1, 'happy'), (2, 'sad'); \
             GRANT SELECT ON public.survey TO {}",
            owner.role
        ),
    );
    let (schema, data) = (owner.db.schema(), owner.db.data());
    p.run(&["restore", "dev", "--from", &id, "--yes"])
        .code(6)
        .stderr_has("objects of other roles")
        .stderr_has("column answer of table public.survey")
        .stderr_has("nothing was changed");
    assert_eq!(owner.db.schema(), schema);
    assert_eq!(owner.db.data(), data);
    assert_eq!(
        psql(
            &owner.db.url(),
            "SELECT string_agg(answer::text, ',' ORDER BY id) FROM public.survey"
        ),
        "happy,sad"
    );
}

#[test]
fn mysql_an_in_place_restore_left_incomplete_is_reported_by_status_with_the_command_that_finishes_it()
 {
    if !mysql::server_up() {
        return;
    }
    let db = MyDb::new("owned_inc");
    db.exec(
        "CREATE TABLE t (id int PRIMARY KEY, v varchar(20)); \
         INSERT INTO t VALUES (1, 'one'), (2, 'two'), (3, 'three');",
    );
    let user = DbUser::new(&db);
    let p = mysql::project_with(&[("dev", &db)]).with_var("DEV_DATABASE_URL", &user.url(&db));
    let good = p.backup(&["dev"]);
    // A backup whose view names a DEFINER this user may not: its load fails midway.
    db.exec("CREATE VIEW v AS SELECT id FROM t");
    let bad = p.backup(&["dev"]);
    db.exec("DROP VIEW v");
    // Without a safety backup nothing can be put back: the database is left incomplete, and
    // both the error and `status` (until a restore succeeds) say so and what to run.
    let finish = format!("faber-db restore dev --from {bad} --in-place");
    p.run(&[
        "restore",
        "dev",
        "--from",
        &bad,
        "--no-safety-backup",
        "--yes",
    ])
    .code(6)
    .stderr_has("failed midway")
    .stderr_has("incomplete")
    .stderr_has("faber-db restore dev --from");
    p.run(&["status", "dev"])
        .code(0)
        .stderr_has("did not finish")
        .stderr_has(&finish[..finish.len() - " --in-place".len()]);
    let doc = p.json(&["status", "dev"], 0);
    assert_eq!(
        doc["environments"][0]["interrupted"]["backup"],
        bad.as_str(),
        "{doc}"
    );
    // With a safety backup whose own restore fails as well (it holds the same view), the same.
    db.exec("CREATE VIEW v AS SELECT id FROM t");
    p.run(&["restore", "dev", "--from", &bad, "--yes"])
        .code(6)
        .stderr_has("failed too")
        .stderr_has("--in-place --no-safety-backup");
    p.run(&["status", "dev"])
        .code(0)
        .stderr_has("did not finish")
        .stderr_has("holds the data from before");
    // A restore that succeeds clears it.
    p.json(&["restore", "dev", "--from", &good, "--yes"], 0);
    let after = p.run(&["status", "dev"]).code(0);
    assert!(!after.stderr.contains("did not finish"), "{}", after.stderr);
}

#[test]
fn pg_a_commit_inside_the_backup_that_is_not_recognised_rolls_the_in_place_restore_back() {
    if !postgres::server_up() {
        return;
    }
    // A sequence named to end a line in ` FROM stdin;` after the tables' data: the script's
    // large objects are not recognised as such, their BEGIN and COMMIT stay in, and the commit
    // guard fails that COMMIT: nothing is changed, and the error says why.
    let owner = OwnerRole::new("owned_guard");
    owned_schema(&owner);
    owner.exec("CREATE SEQUENCE \"odd FROM stdin;\nname\"; SELECT lo_from_bytea(0, 'x');");
    let p = owner.project("");
    let id = p.backup(&["dev"]);
    drift(&owner);
    let (schema, data) = (owner.db.schema(), owner.db.data());
    p.run(&["restore", "dev", "--from", &id, "--yes"])
        .code(6)
        .stderr_has("ends the transaction itself")
        .stderr_has("nothing was changed")
        .stderr_has("hint:");
    assert_eq!(owner.db.schema(), schema);
    assert_eq!(owner.db.data(), data);
    assert_eq!(owner.exec("SELECT count(*) FROM extra"), "0");
    // The guard is a temporary table's trigger: a role that may not make one is told before
    // anything happens, with the grant.
    psql(
        &admin_url(),
        &format!(
            "REVOKE TEMPORARY ON DATABASE {db} FROM PUBLIC; REVOKE TEMPORARY ON DATABASE {db} FROM {r}",
            db = owner.db.name,
            r = owner.role
        ),
    );
    let before = p.backups().len();
    p.run(&["restore", "dev", "--from", &id, "--yes"])
        .code(6)
        .stderr_has("GRANT TEMPORARY ON DATABASE")
        .stderr_has("nothing was changed");
    assert_eq!(p.backups().len(), before);
}

#[test]
fn pg_in_place_with_hostile_schema_and_table_names() {
    if !postgres::server_up() {
        return;
    }
    // Quotes, dots, a semicolon and non-ASCII in the role's own names: dropped, made again and
    // counted like any other; another role's table named like an injection is left alone.
    let owner = OwnerRole::new("owned_names");
    owner.exec(
        "CREATE SCHEMA \"we'ird.\"\"sch ✓\"; \
         CREATE TABLE \"we'ird.\"\"sch ✓\".\"t); DROP SCHEMA public CASCADE; --\" (id int); \
         INSERT INTO \"we'ird.\"\"sch ✓\".\"t); DROP SCHEMA public CASCADE; --\" SELECT generate_series(1, 5); \
         CREATE TABLE public.\"a.b\" (x text); INSERT INTO public.\"a.b\" VALUES ('x');",
    );
    let p = owner.project("");
    let id = p.backup(&["dev"]);
    let data = owner.db.data();
    owner.exec(
        "DELETE FROM \"we'ird.\"\"sch ✓\".\"t); DROP SCHEMA public CASCADE; --\" WHERE id > 2; \
         DELETE FROM public.\"a.b\"",
    );
    psql(
        &owner.db.url(),
        &format!(
            "CREATE TABLE public.\"x'); DROP TABLE public.\"\"a.b\"\"; --\" (y int); \
             INSERT INTO public.\"x'); DROP TABLE public.\"\"a.b\"\"; --\" VALUES (1); \
             GRANT SELECT ON public.\"x'); DROP TABLE public.\"\"a.b\"\"; --\" TO {}",
            owner.role
        ),
    );
    let doc = p.json(&["restore", "dev", "--from", &id, "--yes"], 0);
    assert_eq!(doc["method"], "in-place", "{doc}");
    assert_eq!(doc["row_count_differences"], Value::Array(vec![]), "{doc}");
    let mut after = owner.db.data();
    assert!(
        after
            .remove("public.\"x'); DROP TABLE public.\"\"a.b\"\"; --\"")
            .is_some(),
        "{after:?}"
    );
    assert_eq!(after, data);
}

#[test]
fn pg_faber_db_killed_during_an_in_place_load_changes_nothing() {
    if !postgres::server_up() {
        return;
    }
    let owner = OwnerRole::new("owned_kill");
    owned_schema(&owner);
    owner.exec("SELECT lo_from_bytea(0, 'x')");
    let p = owner.project("");
    let id = p.backup(&["dev"]);
    drift(&owner);
    let (schema, data) = (owner.db.schema(), owner.db.data());
    crate::reliability::kill_at(
        &p,
        &["restore", "dev", "--from", &id, "--yes"],
        "restore:in-place-load",
    );
    // psql, left with the end of its input inside the transaction, ends; the server rolls back.
    assert_eq!(owner.db.schema(), schema);
    assert_eq!(owner.db.data(), data);
    p.json(&["restore", "dev", "--from", &id, "--yes"], 0);
    assert_eq!(owner.exec("SELECT count(*) FROM events"), "700");
}

#[test]
fn pg_an_app_connecting_before_an_in_place_safety_backup_stops_the_restore_before_it() {
    if !postgres::server_up() {
        return;
    }
    let owner = OwnerRole::new("late_app");
    owned_schema(&owner);
    let p = owner.project("");
    let id = p.backup(&["dev"]);
    drift(&owner);
    let data = owner.db.data();
    let before = p.backups().len();
    // Past the pre-flight, an application connects.
    let paused = p.paused_at(
        &["restore", "dev", "--from", &id, "--yes"],
        "restore:in-place-before-safety",
    );
    let app = crate::preflight::App::on_postgres(&owner.db);
    let out = paused.resume();
    drop(app);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(stderr.contains("--terminate-connections"), "{stderr}");
    // No safety backup of a database the application could still write to, and no change.
    assert_eq!(p.backups().len(), before, "{stderr}");
    assert_eq!(owner.db.data(), data);
}

#[test]
fn pg_a_rehearsal_without_createdb_needs_a_scratch_server_and_uses_one() {
    if !postgres::server_up() {
        return;
    }
    let owner = OwnerRole::new("owned_rehearse");
    owner.exec(
        "CREATE TABLE users (id int PRIMARY KEY, name text); INSERT INTO users VALUES (1, 'ada');",
    );
    // The command notes the URLs it is given (their database only), then migrates.
    let command = "migrate_command = \"echo ${DATABASE_URL##*/} ${DEV_DATABASE_URL##*/} >> urls.txt; \
                   psql \\\"$DATABASE_URL\\\" -X -q -v ON_ERROR_STOP=1 -f migrations/002_email.sql\"\n";
    let mut p = owner.project(command);
    p.write(
        "migrations/002_email.sql",
        "ALTER TABLE users ADD COLUMN email text;",
    );
    let schema = owner.db.schema();
    p.run(&["migrate", "dev", "--rehearse"])
        .code(1)
        .stderr_has("verify_url_env")
        .stderr_has("production was not touched");
    assert_eq!(owner.db.schema(), schema);
    assert!(!p.path("urls.txt").exists(), "the command did not run");

    p.write(
        ".fractary/plugins/faber-db/config.toml",
        &format!(
            "[defaults]\ncompression = \"gzip\"\n[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\n\
             verify_url_env = \"FABER_SCRATCH_URL\"\n{command}"
        ),
    );
    p.set_var("FABER_SCRATCH_URL", &admin_url());
    let doc = p.json(&["migrate", "dev", "--rehearse"], 0);
    let r = &doc["rehearsal"];
    assert_eq!(r["passed"], true, "{doc}");
    // On the scratch server, named after the database (cut to 30 bytes).
    let stem: String = owner.db.name.chars().take(30).collect();
    assert!(
        r["scratch"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{stem}__faber_rehearse_")),
        "{doc}"
    );
    assert_eq!(
        r["variables"],
        serde_json::json!(["DATABASE_URL", "DEV_DATABASE_URL", "PGDATABASE"]),
        "{doc}"
    );
    assert!(
        r["schema_changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["change"] == "column_added" && c["column"]["name"] == "email"),
        "{doc}"
    );
    assert_eq!(doc["migrated"], true, "{doc}");
    // The rehearsal's command saw only the copy, in both variables; the real run the database.
    let urls = std::fs::read_to_string(p.path("urls.txt")).unwrap();
    let lines: Vec<&str> = urls.lines().collect();
    let copy = r["scratch"].as_str().unwrap();
    assert_eq!(
        lines,
        vec![format!("{copy} {copy}"), format!("{0} {0}", owner.db.name)]
    );
    assert_eq!(owner.exec("SELECT count(email) FROM users"), "0");
    assert_ne!(owner.db.schema(), schema, "migrated");
    assert_eq!(scratch_databases(&owner.db), "", "the copy was dropped");
}
