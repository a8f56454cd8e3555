//! PostgreSQL globals (`include_globals`): the server's roles and tablespaces kept in each
//! backup's manifest (no password hashes unless asked for, and then only encrypted), and made on a
//! server that lacks them before `restore --into … --with-globals` loads the backup — never
//! touching a role the server has.

use crate::harness::{DEFAULT_CONFIG, Project};
use crate::postgres::{self, PgDb, psql};

/// Roles of the test's own, dropped when it goes (after the databases that use them).
struct Roles(Vec<String>);

impl Drop for Roles {
    fn drop(&mut self) {
        for role in &self.0 {
            let _ = std::process::Command::new("psql")
                .args(["-X", "-q", &postgres::admin_url(), "-c"])
                .arg(format!(
                    "DROP ROLE IF EXISTS \"{}\"",
                    role.replace('"', "\"\"")
                ))
                .output();
        }
    }
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[test]
fn globals_make_the_roles_a_restore_into_a_new_server_needs() {
    if !postgres::server_up() {
        return;
    }
    let pid = std::process::id();
    let reader = format!("faber_it_reader_{pid}");
    let owner = format!("Faber \"odd\" owner {pid}");
    let roles = Roles(vec![reader.clone(), owner.clone()]);
    let admin = postgres::admin_url();
    psql(
        &admin,
        &format!(
            "CREATE ROLE {} NOLOGIN PASSWORD 'hunter2-{pid}'; CREATE ROLE {} NOLOGIN; GRANT {} TO {}",
            quoted(&reader),
            quoted(&owner),
            quoted(&reader),
            quoted(&owner)
        ),
    );
    let db = PgDb::new("globals");
    db.exec(&format!(
        "CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 5); \
         GRANT SELECT ON t TO {}; ALTER TABLE t OWNER TO {}",
        quoted(&reader),
        quoted(&owner)
    ));
    let p = postgres::project_with(&[("dev", &db)]);
    let config = std::fs::read_to_string(p.path(".fractary/plugins/faber-db/config.toml")).unwrap();
    p.write(
        ".fractary/plugins/faber-db/config.toml",
        &format!("{config}include_globals = true\n"),
    );
    let id = p.backup(&["dev", "--format", "custom"]);
    assert_manifest_keeps_roles(&p, &id, &reader);
    // The server loses the roles, as a new server would not have them.
    db.exec(&format!(
        "DROP OWNED BY {}, {}",
        quoted(&reader),
        quoted(&owner)
    ));
    psql(
        &admin,
        &format!(
            "DROP ROLE {}; DROP ROLE {}",
            quoted(&owner),
            quoted(&reader)
        ),
    );
    let side = PgDb::unborn("side");
    // Without them the load fails, and leaves no database behind.
    p.run(&["restore", "dev", "--from", &id, "--into", &side.name])
        .code(6);
    let count = |name: &str| {
        psql(
            &admin,
            &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
        )
    };
    assert_eq!(count(&side.name), "0");
    let doc = p.json(
        &[
            "restore",
            "dev",
            "--from",
            &id,
            "--into",
            &side.name,
            "--with-globals",
        ],
        0,
    );
    let made: Vec<&str> = doc["globals"]["made"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    forget_made_by_others(&doc, &[&reader, &owner]);
    assert!(
        made.contains(&reader.as_str()) && made.contains(&owner.as_str()),
        "{doc}"
    );
    assert!(
        doc["globals"]["kept"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "postgres"),
        "the server's own roles are kept as they are: {doc}"
    );
    assert_eq!(side.exec("SELECT count(*) FROM t"), "5");
    assert_eq!(
        side.exec("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 't'"),
        owner
    );
    assert_eq!(
        side.exec(&format!(
            "SELECT has_table_privilege({}, 't', 'SELECT')",
            postgres_literal(&reader)
        )),
        "t"
    );
    assert_eq!(
        psql(
            &admin,
            &format!(
                "SELECT pg_has_role({}, {}, 'MEMBER')",
                postgres_literal(&owner),
                postgres_literal(&reader)
            )
        ),
        "t",
        "the membership is made again"
    );
    let again = assert_a_role_the_server_has_is_left_alone(&p, &id, &reader);
    drop((again, side, db));
    drop(roles);
}

/// The manifest keeps the script, without password hashes.
fn assert_manifest_keeps_roles(p: &Project, id: &str, reader: &str) {
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            p.data_file(id)
                .with_file_name(format!("{id}.manifest.json")),
        )
        .unwrap(),
    )
    .unwrap();
    let script = manifest["globals"]["script"].as_str().unwrap();
    assert!(script.contains(reader), "{script}");
    assert_eq!(manifest["globals"]["role_passwords"], false);
    assert!(
        !script.contains("SCRAM") && !script.contains("PASSWORD"),
        "{script}"
    );
}

/// A role the server has is never altered: the reader, made a login role meanwhile, stays one.
fn assert_a_role_the_server_has_is_left_alone(p: &Project, id: &str, reader: &str) -> PgDb {
    let admin = postgres::admin_url();
    psql(&admin, &format!("ALTER ROLE {} LOGIN", quoted(reader)));
    let again = PgDb::unborn("again");
    let doc = p.json(
        &[
            "restore",
            "dev",
            "--from",
            id,
            "--into",
            &again.name,
            "--with-globals",
        ],
        0,
    );
    forget_made_by_others(&doc, &[reader]);
    // Other tests share the server: only this test's roles are known to be there.
    assert!(
        doc["globals"]["kept"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == reader),
        "{doc}"
    );
    assert!(
        !doc["globals"]["made"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == reader),
        "{doc}"
    );
    assert_eq!(
        psql(
            &admin,
            &format!(
                "SELECT rolcanlogin FROM pg_roles WHERE rolname = {}",
                postgres_literal(reader)
            )
        ),
        "t"
    );
    again
}

/// Drops the roles a restore made that are not `ours`: roles other tests on this server had
/// when the backup was taken and dropped since, which the restore made again.
fn forget_made_by_others(doc: &serde_json::Value, ours: &[&str]) {
    let others: Vec<String> = doc["globals"]["made"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .filter(|r| !ours.contains(r))
        .map(str::to_string)
        .collect();
    drop(Roles(others));
}

fn postgres_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[test]
fn role_passwords_are_kept_only_in_encrypted_backups_and_globals_only_for_postgres() {
    let p = Project::with_config(&format!(
        "{DEFAULT_CONFIG}include_globals = true\ninclude_role_passwords = true\n"
    ));
    p.run(&["list"]).code(1).stderr_has("encrypt = true");
    let p = Project::with_config(&format!("{DEFAULT_CONFIG}include_role_passwords = true\n"));
    p.run(&["list"]).code(1).stderr_has("needs include_globals");
    // SQLite has no roles: asked for anyway, the backup says so and leaves nothing.
    let p = Project::with_config(&DEFAULT_CONFIG.replace(
        "[environments.dev]\n",
        "[environments.dev]\ninclude_globals = true\n",
    ))
    .seeded("db/dev.sqlite3");
    p.run(&["backup", "dev"]).code(1).stderr_has("PostgreSQL");
    assert!(p.backups().is_empty());
    // --with-globals goes with --into only.
    p.run(&["restore", "dev", "--with-globals"])
        .code(1)
        .stderr_has("--into");
}

/// With `include_role_passwords`, the hashes are kept sealed to the backup's recipients: the
/// manifest shows no role and no hash, and only the identity makes the role again, password
/// and all.
#[test]
fn role_password_hashes_are_sealed_and_come_back_with_the_identity() {
    if !postgres::server_up() {
        return;
    }
    let pid = std::process::id();
    let role = format!("faber_it_login_{pid}");
    let roles = Roles(vec![role.clone()]);
    let admin = postgres::admin_url();
    psql(
        &admin,
        &format!(
            "CREATE ROLE {} LOGIN PASSWORD 'sealed-{pid}'",
            quoted(&role)
        ),
    );
    let hash = || {
        psql(
            &admin,
            &format!(
                "SELECT coalesce(rolpassword, '') FROM pg_authid WHERE rolname = {}",
                postgres_literal(&role)
            ),
        )
    };
    let before = hash();
    assert!(before.starts_with("SCRAM"), "{before}");
    let db = PgDb::new("sealed");
    db.exec("CREATE TABLE t (x int)");
    let key = age::x25519::Identity::generate();
    let public = key.to_public().to_string();
    let secret = age::secrecy::ExposeSecret::expose_secret(&key.to_string()).to_string();
    let p = Project::with_config(&format!(
        "[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\ninclude_globals = true\ninclude_role_passwords = true\n\
         [encryption]\nencrypt = true\nage_recipients = [\"{public}\"]\n"
    ))
    .with_var("DEV_DATABASE_URL", &db.url());
    let id = p.backup(&["dev", "--format", "custom"]);
    let text = std::fs::read_to_string(
        p.data_file(&id)
            .with_file_name(format!("{id}.manifest.json")),
    )
    .unwrap();
    assert!(!text.contains(&role) && !text.contains("SCRAM"), "{text}");
    psql(&admin, &format!("DROP ROLE {}", quoted(&role)));
    let side = PgDb::unborn("sealed_side");
    // Without the identity nothing is made and nothing created.
    p.run(&[
        "restore",
        "dev",
        "--from",
        &id,
        "--into",
        &side.name,
        "--with-globals",
    ])
    .code(1)
    .stderr_has("no age identity");
    let p = p.with_var("FABER_AGE_IDENTITY", &secret);
    let doc = p.json(
        &[
            "restore",
            "dev",
            "--from",
            &id,
            "--into",
            &side.name,
            "--with-globals",
        ],
        0,
    );
    forget_made_by_others(&doc, &[&role]);
    assert_eq!(hash(), before, "the role is back with its password hash");
    drop((side, db));
    drop(roles);
}
