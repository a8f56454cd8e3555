//! MySQL/MariaDB, against the real server and the real mysqldump / mysql clients. Each test works
//! in databases of its own, dropped afterwards. Skipped when the server is absent, unless
//! FABER_REQUIRE_SERVICES=1.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::harness::Project;
use crate::services;

pub fn server_up() -> bool {
    services::available("MariaDB", "127.0.0.1:3306")
}

/// Runs `sql` as root in `db` (or in none) with the real client; tab-separated output.
pub fn mysql(db: Option<&str>, sql: &str) -> String {
    let mut cmd = Command::new("mysql");
    cmd.args([
        "-h",
        "127.0.0.1",
        "-P",
        "3306",
        "-u",
        "root",
        "--batch",
        "--skip-column-names",
        "--default-character-set=utf8mb4",
    ]);
    if let Some(db) = db {
        cmd.arg(format!("--database={db}"));
    }
    let out = cmd.arg("-e").arg(sql).output().unwrap();
    assert!(
        out.status.success(),
        "mysql failed on {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

/// A database of the test's own, dropped when it goes.
pub struct MyDb {
    pub name: String,
}

impl MyDb {
    pub fn new(tag: &str) -> MyDb {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "faber_it_{tag}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        mysql(
            None,
            &format!(
                "DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}` CHARACTER SET utf8mb4"
            ),
        );
        MyDb { name }
    }

    /// A name for a database that does not exist yet (dropped at the end if it came to be).
    pub fn unborn(tag: &str) -> MyDb {
        let db = MyDb::new(tag);
        mysql(None, &format!("DROP DATABASE `{}`", db.name));
        db
    }

    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:3306/{}", self.name)
    }

    pub fn exec(&self, sql: &str) -> String {
        mysql(Some(&self.name), sql)
    }

    /// `SHOW CREATE` of every table, view, trigger, procedure, function and event, with the
    /// database's name and the definer's host left out.
    pub fn schema(&self) -> String {
        let mut out = Vec::new();
        let objects = [
            (
                "TABLE",
                format!(
                    "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{}' AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1",
                    self.name
                ),
            ),
            (
                "VIEW",
                format!(
                    "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = '{}' ORDER BY 1",
                    self.name
                ),
            ),
            (
                "TRIGGER",
                format!(
                    "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '{}' ORDER BY 1",
                    self.name
                ),
            ),
            (
                "PROCEDURE",
                format!(
                    "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = '{}' AND ROUTINE_TYPE = 'PROCEDURE' ORDER BY 1",
                    self.name
                ),
            ),
            (
                "FUNCTION",
                format!(
                    "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = '{}' AND ROUTINE_TYPE = 'FUNCTION' ORDER BY 1",
                    self.name
                ),
            ),
            (
                "EVENT",
                format!(
                    "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = '{}' ORDER BY 1",
                    self.name
                ),
            ),
        ];
        for (kind, list) in objects {
            for name in mysql(None, &list).lines().filter(|l| !l.is_empty()) {
                let mut created = self.exec(&format!("SHOW CREATE {kind} `{name}`"));
                if kind == "TRIGGER" {
                    // The last column is when the trigger was created.
                    created.truncate(created.rfind('\t').unwrap_or(created.len()));
                }
                out.push(format!(
                    "{kind} {name}: {}",
                    created.replace(&self.name, "DB")
                ));
            }
        }
        // The order in which triggers of one table and event fire.
        out.push(mysql(
            None,
            &format!(
                "SELECT GROUP_CONCAT(TRIGGER_NAME ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER) \
                 FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '{}'",
                self.name
            ),
        ));
        out.join("\n")
    }

    /// Row count and a checksum of the rows of every base table. Not `CHECKSUM TABLE`, which
    /// MariaDB computes over whatever bytes a VIRTUAL column's slot holds.
    pub fn data(&self) -> BTreeMap<String, String> {
        let tables = mysql(
            None,
            &format!(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{}' AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1",
                self.name
            ),
        );
        tables
            .lines()
            .filter(|l| !l.is_empty())
            .map(|t| {
                let columns = mysql(
                    None,
                    &format!(
                        "SELECT GROUP_CONCAT(CONCAT('IFNULL(HEX(CONCAT(`', COLUMN_NAME, '`)), ''-'')') ORDER BY ORDINAL_POSITION) \
                         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{}' AND TABLE_NAME = '{t}'",
                        self.name
                    ),
                );
                let sum = self.exec(&format!(
                    "SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT_WS('|', {columns}))), 0) FROM `{t}`"
                ));
                (t.to_string(), sum)
            })
            .collect()
    }
}

impl Drop for MyDb {
    fn drop(&mut self) {
        let _ = Command::new("mysql")
            .args(["-h", "127.0.0.1", "-u", "root", "-e"])
            .arg(format!("DROP DATABASE IF EXISTS `{}`", self.name))
            .output();
    }
}

pub const SCHEMA: &str = r#"
CREATE TABLE accounts (
    id int AUTO_INCREMENT PRIMARY KEY,
    name varchar(100) NOT NULL,
    bio text,
    avatar blob,
    balance decimal(12, 2),
    seen datetime(6),
    profile json,
    KEY accounts_name (name)
) CHARACTER SET utf8mb4;
CREATE TABLE events (
    id bigint AUTO_INCREMENT PRIMARY KEY,
    account_id int,
    kind varchar(20),
    CONSTRAINT events_account FOREIGN KEY (account_id) REFERENCES accounts (id)
);
CREATE TABLE empty_one (x int);
CREATE TABLE audit (account_id int);
CREATE TABLE `NULL` (x int);
INSERT INTO `NULL` VALUES (1), (2);
CREATE TRIGGER accounts_audit AFTER INSERT ON accounts FOR EACH ROW
INSERT INTO `audit` VALUES (NEW.id);
CREATE PROCEDURE make_scratch()
CREATE TABLE `not_dumped_data` (x int);
CREATE VIEW rich AS SELECT name FROM accounts WHERE balance > 100;
CREATE TRIGGER events_touch BEFORE INSERT ON events FOR EACH ROW SET NEW.kind = COALESCE(NEW.kind, 'touched');
CREATE PROCEDURE add_event(IN who int) INSERT INTO events (account_id) VALUES (who);
INSERT INTO accounts (name, bio, avatar, balance, seen, profile)
    SELECT CONCAT('user ', seq, ' 🎉 ✓'), CONCAT('it''s (line one)\nline;two\t', seq), UNHEX(MD5(seq)), seq * 1.25,
           TIMESTAMP('2024-01-01 10:00:00.123456') + INTERVAL seq SECOND, JSON_OBJECT('n', seq, 'tags', JSON_ARRAY('a', seq))
    FROM seq_1_to_300;
INSERT INTO events (account_id, kind) SELECT 1 + seq % 300, IF(seq % 2 = 0, 'login', NULL) FROM seq_1_to_700;
CALL add_event(5);
ALTER TABLE accounts AUTO_INCREMENT = 5000;
CREATE TABLE shapes (
    id int AUTO_INCREMENT PRIMARY KEY,
    w int,
    h int,
    area int AS (w * h) STORED,
    perim int AS (2 * (w + h)) VIRTUAL,
    KEY shapes_area (area)
);
INSERT INTO shapes (w, h) SELECT seq, seq + 1 FROM seq_1_to_50;
CREATE TABLE counters (k varchar(20) PRIMARY KEY, n int NOT NULL);
INSERT INTO counters VALUES ('shapes', 50);
DELIMITER ;;
CREATE TRIGGER shapes_count AFTER INSERT ON shapes FOR EACH ROW BEGIN
    UPDATE counters SET n = n + 1 WHERE k = 'shapes';
    UPDATE counters SET n = n WHERE k = 'größe; ✓';
END;;
CREATE FUNCTION double_it(x int) RETURNS int DETERMINISTIC BEGIN DECLARE y int; SET y = x * 2; RETURN y; END;;
DELIMITER ;
CREATE TRIGGER shapes_first AFTER INSERT ON shapes FOR EACH ROW PRECEDES shapes_count UPDATE counters SET n = n WHERE k = 'first';
CREATE VIEW a_rich_names AS SELECT name FROM rich;
CREATE VIEW doubled AS SELECT id, double_it(id) AS twice FROM shapes;
CREATE VIEW wide_shapes AS SELECT id, w, h FROM shapes WHERE w > 10 WITH CASCADED CHECK OPTION;
SET time_zone = '+02:00';
CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 03:00:00' ON COMPLETION PRESERVE DISABLE COMMENT 'tidy up' DO DELETE FROM audit WHERE account_id < 0;
SET time_zone = DEFAULT;
SET sql_mode = 'ANSI_QUOTES';
CREATE PROCEDURE quoted() SELECT "name" FROM accounts LIMIT 1;
SET sql_mode = DEFAULT;
SET character_set_client = latin1, collation_connection = latin1_swedish_ci;
CREATE TRIGGER events_latin1 BEFORE UPDATE ON events FOR EACH ROW SET NEW.kind = 'café';
CREATE VIEW latin1_words AS SELECT 'naïve' AS word;
SET NAMES utf8mb4;
"#;

pub fn project_with(envs: &[(&str, &MyDb)]) -> Project {
    let mut config = String::from("[defaults]\ncompression = \"gzip\"\n");
    let mut vars = Vec::new();
    for (env, db) in envs {
        let var = format!("{}_DATABASE_URL", env.to_uppercase());
        config.push_str(&format!("[environments.{env}]\nurl_env = \"{var}\"\n"));
        vars.push((var, db.url()));
    }
    let mut p = Project::with_config(&config);
    for (k, v) in vars {
        p = p.with_var(&k, &v);
    }
    p
}

fn round_trip(compression: &str) {
    if !server_up() {
        return;
    }
    let source = MyDb::new("src");
    source.exec(SCHEMA);
    let target = MyDb::unborn("dst");
    let p = project_with(&[("dev", &source), ("copy", &target)]);
    let doc = p.json(&["backup", "dev", "--compression", compression], 0);
    let b = &doc["backup"];
    assert_eq!(b["provider"], "mysql");
    assert_eq!(b["format"], "sql");
    assert_eq!(b["compression"], compression);
    assert!(
        b["server_version"]
            .as_str()
            .unwrap()
            .starts_with("MariaDB ")
            || b["server_version"].as_str().unwrap().starts_with("MySQL "),
        "{b}"
    );
    assert_eq!(b["tables"]["accounts"]["rows"], 300);
    assert_eq!(b["tables"]["events"]["rows"], 701);
    assert_eq!(b["tables"]["empty_one"]["rows"], 0);
    assert_eq!(
        b["tables"]["audit"]["rows"], 300,
        "the trigger's INSERT line is no row"
    );
    assert_eq!(b["tables"]["NULL"]["rows"], 2);
    assert!(b["tables"].get("not_dumped_data").is_none(), "{b}");
    assert!(b["tables"].get("rich").is_none(), "views are not tables");
    let id = b["id"].as_str().unwrap().to_string();
    p.run(&["verify", &id, "--deep"])
        .code(0)
        .stdout_has("row counts match");

    // Into a database that does not exist yet: created by the restore.
    p.run(&["restore", "copy", "--from", &id, "--yes"])
        .code(0)
        .stderr_has("restoring a backup of `dev` into `copy`")
        .stdout_has("row counts match the manifest");
    assert_eq!(target.schema(), source.schema());
    assert_eq!(target.data(), source.data());
    assert!(source.schema().contains("AUTO_INCREMENT=5000"));

    // Over the original after damage: the same again, and a safety backup of the damage. What
    // the backup lacks goes; a view that is a table in the backup, and the other way round,
    // change places.
    source.exec(
        "DELETE FROM events WHERE id > 10; CREATE OR REPLACE VIEW rich AS SELECT name FROM accounts WHERE balance > 200; \
         DROP VIEW doubled; CREATE TABLE doubled (x int); DROP TABLE empty_one; CREATE VIEW empty_one AS SELECT 1 AS x; \
         DROP TRIGGER shapes_first; DROP EVENT nightly; DROP PROCEDURE quoted; CREATE TABLE extra (x int); \
         CREATE VIEW extra_v AS SELECT x FROM extra; CREATE PROCEDURE extra_p() SELECT 1; \
         CREATE EVENT extra_e ON SCHEDULE EVERY 1 HOUR DO SELECT 1; \
         CREATE TRIGGER extra_t BEFORE INSERT ON extra FOR EACH ROW SET NEW.x = 1;",
    );
    let damaged = source.data();
    p.run(&["restore", "dev", "--from", &id, "--yes"])
        .code(0)
        .stdout_has("row counts match the manifest");
    assert_eq!(source.schema(), target.schema());
    assert_eq!(source.data(), target.data());
    let safety = p
        .backups()
        .into_iter()
        .find(|b| b["reason"] == "pre-restore")
        .expect("a safety backup");
    assert_eq!(safety["tables"]["events"]["rows"], 10);
    assert_ne!(damaged, source.data());
    // The restored objects work: the views over a view and a function, the triggers in order.
    assert_eq!(
        source.exec("SELECT COUNT(*) FROM a_rich_names"),
        source.exec("SELECT COUNT(*) FROM accounts WHERE balance > 100")
    );
    assert_eq!(source.exec("SELECT twice FROM doubled WHERE id = 3"), "6");
    source.exec("INSERT INTO shapes (w, h) VALUES (2, 3)");
    assert_eq!(
        source.exec("SELECT n FROM counters WHERE k = 'shapes'"),
        "51"
    );
    // No scratch databases are left behind.
    let leftovers = mysql(
        None,
        &format!(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '{}\\_\\_faber%'",
            source.name
        ),
    );
    assert_eq!(leftovers, "0");
}

#[test]
fn mysql_round_trip_gzip() {
    round_trip("gzip");
}

#[test]
fn mysql_round_trip_zstd() {
    round_trip("zstd");
}

#[test]
fn mysql_round_trip_uncompressed() {
    round_trip("none");
}

#[test]
fn mysql_migration_state_of_the_known_layouts() {
    if !server_up() {
        return;
    }
    let layouts = [
        (
            "prisma",
            "CREATE TABLE _prisma_migrations (id varchar(36) PRIMARY KEY, checksum varchar(64) NOT NULL, finished_at datetime(3), migration_name varchar(255) NOT NULL, logs text, rolled_back_at datetime(3), started_at datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), applied_steps_count int NOT NULL DEFAULT 0); INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name) VALUES ('a', 'x', NOW(), '20240101_init'), ('b', 'x', NOW(), '20240201_users'), ('c', 'x', NULL, '20240301_failed');",
            "20240201_users",
            2,
        ),
        (
            "flyway",
            "CREATE TABLE flyway_schema_history (installed_rank int PRIMARY KEY, version varchar(50), description varchar(200), type varchar(20), script varchar(1000), checksum int, installed_by varchar(100), installed_on timestamp DEFAULT CURRENT_TIMESTAMP, execution_time int, success tinyint(1)); INSERT INTO flyway_schema_history (installed_rank, version, description, success) VALUES (1, '1', 'init', 1), (2, '2', 'users', 1), (3, '3', 'broken', 0);",
            "2__users",
            2,
        ),
        (
            "knex",
            "CREATE TABLE knex_migrations (id int AUTO_INCREMENT PRIMARY KEY, name varchar(255), batch int, migration_time timestamp NULL); INSERT INTO knex_migrations (name, batch) VALUES ('001_init.js', 1), ('002_users.js', 1);",
            "002_users.js",
            2,
        ),
        (
            "schema_migrations",
            "CREATE TABLE schema_migrations (version varchar(255) PRIMARY KEY); INSERT INTO schema_migrations VALUES ('20230101120000'), ('20230215093000');",
            "20230215093000",
            2,
        ),
        (
            "sqlx",
            "CREATE TABLE _sqlx_migrations (version bigint PRIMARY KEY, description text NOT NULL, installed_on timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP, success tinyint(1) NOT NULL, checksum blob NOT NULL, execution_time bigint NOT NULL); INSERT INTO _sqlx_migrations VALUES (1, 'init', NOW(), 1, x'00', 1), (2, 'users', NOW(), 1, x'00', 1);",
            "2_users",
            2,
        ),
        (
            "django",
            "CREATE TABLE django_migrations (id int AUTO_INCREMENT PRIMARY KEY, app varchar(255), name varchar(255), applied datetime(6)); INSERT INTO django_migrations (app, name) VALUES ('auth', '0001_initial'), ('blog', '0002_post');",
            "blog.0002_post",
            2,
        ),
    ];
    for (tool, sql, last, count) in layouts {
        let db = MyDb::new("mig");
        db.exec(sql);
        let p = project_with(&[("dev", &db)]);
        let doc = p.json(&["backup", "dev"], 0);
        let m = &doc["backup"]["migrations"];
        assert_eq!(m["tool"], tool, "{m}");
        assert_eq!(m["last_migration"], last, "{tool}");
        assert_eq!(m["applied_count"], count, "{tool}");
    }
}

#[test]
fn mysql_connection_failures_are_exit_3() {
    if !server_up() {
        return;
    }
    let missing = MyDb::unborn("absent");
    let p = project_with(&[("dev", &missing)]);
    p.run(&["backup", "dev"])
        .code(3)
        .stderr_has(&missing.name)
        .stderr_has("hint: create the database");
    let p = Project::with_config("[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\n")
        .with_var("DEV_DATABASE_URL", "mysql://root@127.0.0.1:1/nothing");
    p.run(&["backup", "dev"])
        .code(3)
        .stderr_has("cannot connect")
        .stderr_has("hint:");
    assert!(p.backups().is_empty());
}

/// A user with a password, allowed everything on `db` (and to create scratch databases named
/// after it), dropped when it goes.
struct PwUser {
    name: String,
}

impl PwUser {
    fn new(db: &MyDb, password: &str) -> PwUser {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "faber_pw_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        mysql(
            None,
            &format!(
                "DROP USER IF EXISTS '{name}'@'%'; CREATE USER '{name}'@'%' IDENTIFIED BY '{password}'; \
                 GRANT ALL ON `{db}`.* TO '{name}'@'%'; GRANT ALL ON `{db}\\_\\_faber\\_%`.* TO '{name}'@'%'; \
                 GRANT PROCESS ON *.* TO '{name}'@'%';",
                db = db.name
            ),
        );
        PwUser { name }
    }
}

impl Drop for PwUser {
    fn drop(&mut self) {
        let _ = Command::new("mysql")
            .args(["-h", "127.0.0.1", "-u", "root", "-e"])
            .arg(format!("DROP USER IF EXISTS '{}'@'%'", self.name))
            .output();
    }
}

#[test]
fn mysql_wrong_password_is_exit_3_and_the_right_one_never_shows() {
    if !server_up() {
        return;
    }
    let db = MyDb::new("secret");
    db.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2);");
    let secret = "s3cr3t-Pa55";
    let user = PwUser::new(&db, secret);
    let url = |pw: &str| format!("mysql://{}:{pw}@127.0.0.1:3306/{}", user.name, db.name);

    // Wrappers in front of the real tools record every argument list they are given.
    let mut p = project_with(&[("dev", &db)]);
    let (path, log) = p.argv_wrappers(&["mysqldump", "mariadb-dump", "mysql", "mariadb"]);

    p.set_var("DEV_DATABASE_URL", &url("not-it"))
        .set_var("PATH", &path);
    p.run(&["backup", "dev"])
        .code(3)
        .stderr_has("Access denied")
        .stderr_has("hint: check the user and password");
    assert!(p.backups().is_empty());

    p.set_var("DEV_DATABASE_URL", &url(secret));
    let backup = p.run(&["backup", "dev"]).code(0);
    let id = p.ids()[0].clone();
    let verify = p.run(&["verify", &id, "--deep"]).code(0);
    let restore = p.run(&["restore", "dev", "--yes"]).code(0);
    let status = p.run(&["--json", "status"]).code(0);
    assert_eq!(db.exec("SELECT COUNT(*) FROM t"), "2");
    let argv = std::fs::read_to_string(&log).unwrap();
    assert!(
        argv.contains("dump") && argv.contains("--user="),
        "the wrappers ran: {argv}"
    );
    for (what, text) in [
        ("argv", argv),
        ("backup output", backup.stdout + &backup.stderr),
        ("verify output", verify.stdout + &verify.stderr),
        ("restore output", restore.stdout + &restore.stderr),
        ("status output", status.stdout + &status.stderr),
    ] {
        assert!(!text.contains(secret), "the password appears in {what}");
    }
    for f in p.backup_files() {
        let bytes = std::fs::read(p.path(&format!("{}/{f}", crate::harness::BACKUPS))).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(secret),
            "the password appears in {f}"
        );
    }
    let doc = p.json(&["status"], 0);
    assert!(
        doc["environments"][0]["url"]
            .as_str()
            .is_some_and(|u| u.contains(":***@")),
        "{doc}"
    );
}

fn write_script(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

/// A PATH directory with the real client and `dump_script` as both dump tools (or none).
fn fake_dump(p: &Project, dump_script: Option<&str>) -> String {
    let bin = p.path("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["mysql", "mariadb"] {
        if let Ok(real) = which::which(tool) {
            std::os::unix::fs::symlink(real, bin.join(tool)).unwrap();
        }
    }
    if let Some(script) = dump_script {
        for tool in ["mysqldump", "mariadb-dump"] {
            write_script(&bin.join(tool), script);
        }
    }
    bin.display().to_string()
}

#[test]
fn mysql_dump_killed_midway_registers_nothing_and_a_missing_client_is_exit_4() {
    if !server_up() {
        return;
    }
    let db = MyDb::new("killed");
    db.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1);");
    let mut p = project_with(&[("dev", &db)]);
    let script = crate::harness::stand_in(
        "mysqldump",
        "echo '-- MariaDB dump'\necho 'CREATE TABLE `t` (x int);'\nkill -9 $$\n",
    );
    let path = fake_dump(&p, Some(&script));
    p.set_var("PATH", &path);
    p.run(&["backup", "dev"])
        .code(6)
        .stderr_has("mysqldump was killed");
    p.assert_nothing_left("dev");

    // A dump that ends early without failing is no backup either.
    let script = crate::harness::stand_in(
        "mysqldump",
        "echo '-- MariaDB dump'\necho 'CREATE TABLE `t` (x int);'\n",
    );
    let mut short = Project::with_config("[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\n")
        .with_var("DEV_DATABASE_URL", &db.url());
    let path = fake_dump(&short, Some(&script));
    short
        .set_var("PATH", &path)
        .run(&["backup", "dev"])
        .code(6)
        .stderr_has("completion trailer");
    short.assert_nothing_left("dev");

    let mut bare = Project::with_config("[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\n")
        .with_var("DEV_DATABASE_URL", &db.url());
    let empty = bare.path("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    bare.set_var("PATH", &empty.display().to_string())
        .run(&["backup", "dev"])
        .code(4)
        .stderr_has("not installed")
        .stderr_has("mariadb-client");
    bare.assert_nothing_left("dev");
}

#[test]
fn mysql_restore_refuses_connected_sessions_unless_told_to_end_them() {
    if !server_up() {
        return;
    }
    let db = MyDb::new("busy");
    db.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2), (3);");
    let p = project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    db.exec("DELETE FROM t");
    // A session in a database whose name differs only in case is not in the way.
    let twin = db.name.to_uppercase();
    mysql(None, &format!("CREATE DATABASE `{twin}`"));
    let other = Command::new("mysql")
        .args([
            "-h",
            "127.0.0.1",
            "-u",
            "root",
            &format!("--database={twin}"),
        ])
        .arg("-e")
        .arg("SELECT SLEEP(60)")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_session(&twin);
    p.run(&["restore", "dev", "--from", &id, "--yes"]).code(0);
    assert_eq!(db.exec("SELECT COUNT(*) FROM t"), "3");
    db.exec("DELETE FROM t");
    // An application session holding the database open.
    let app = Command::new("mysql")
        .args([
            "-h",
            "127.0.0.1",
            "-u",
            "root",
            &format!("--database={}", db.name),
        ])
        .arg("-e")
        .arg("SELECT SLEEP(60)")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_session(&db.name);
    p.run(&["restore", "dev", "--from", &id, "--yes"])
        .code(7)
        .stderr_has("1 other session connected to")
        .stderr_has("--terminate-connections");
    assert_eq!(
        db.exec("SELECT COUNT(*) FROM t"),
        "0",
        "nothing was touched"
    );
    p.run(&[
        "restore",
        "dev",
        "--from",
        &id,
        "--yes",
        "--terminate-connections",
    ])
    .code(0);
    assert_eq!(db.exec("SELECT COUNT(*) FROM t"), "3");
    for mut child in [app, other] {
        let _ = child.kill();
        let _ = child.wait();
    }
    mysql(None, &format!("DROP DATABASE IF EXISTS `{twin}`"));
}

pub fn wait_for_session(db: &str) {
    let started = std::time::Instant::now();
    while mysql(
        None,
        &format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = BINARY '{db}'"),
    ) == "0"
    {
        assert!(started.elapsed().as_secs() < 10, "the session never showed");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn mysql_a_dump_that_cannot_load_here_leaves_the_target_untouched() {
    if !server_up() {
        return;
    }
    let db = MyDb::new("definer");
    // A view whose DEFINER only a privileged user may name.
    db.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2), (3); CREATE VIEW v AS SELECT x FROM t;");
    let mut p = project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    db.exec("DELETE FROM t WHERE x > 1");
    let user = PwUser::new(&db, "limited-pw");
    p.set_var(
        "DEV_DATABASE_URL",
        &format!(
            "mysql://{}:limited-pw@127.0.0.1:3306/{}",
            user.name, db.name
        ),
    );
    p.run(&["restore", "dev", "--from", &id, "--yes"])
        .code(6)
        .stderr_has("DEFINER")
        .stderr_has("not changed");
    assert_eq!(
        db.exec("SELECT COUNT(*) FROM t"),
        "1",
        "nothing was dropped"
    );
    assert_eq!(db.exec("SELECT COUNT(*) FROM v"), "1");
    assert!(
        !p.backups().iter().any(|b| b["reason"] == "pre-restore"),
        "it stopped before the safety backup"
    );
    let leftovers = mysql(
        None,
        &format!(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '{}\\_\\_faber%'",
            db.name
        ),
    );
    assert_eq!(leftovers, "0");
}

/// How many databases faber-db made for itself beside `db` are there (`<db>__faber…`).
fn scratch_databases(db: &MyDb) -> String {
    mysql(
        None,
        &format!(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '{}\\_\\_faber%'",
            db.name
        ),
    )
}

/// Waits (up to 10 s) until no session uses one of `db`'s scratch databases: the server ends
/// the session of a killed client in its own time.
fn wait_for_no_scratch_sessions(db: &MyDb) {
    let started = std::time::Instant::now();
    while mysql(
        None,
        &format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB LIKE '{}\\_\\_faber%'",
            db.name
        ),
    ) != "0"
    {
        assert!(started.elapsed().as_secs() < 10, "a session stayed");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn mysql_a_restore_killed_during_its_load_leaves_the_target_as_it_was() {
    if !server_up() {
        return;
    }
    let db = MyDb::new("killload");
    db.exec(SCHEMA);
    // Enough data that the load is under way, and far from done, where it is stopped.
    db.exec(
        "CREATE TABLE bulk (id int PRIMARY KEY, pad varchar(200)); \
         INSERT INTO bulk SELECT seq, REPEAT(MD5(seq), 6) FROM seq_1_to_20000;",
    );
    let p = project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    let (backed_up_schema, backed_up_data) = (db.schema(), db.data());
    db.exec(
        "DELETE FROM bulk WHERE id > 100; INSERT INTO events (account_id) VALUES (1); \
         CREATE TABLE newer (x int); CREATE VIEW newer_v AS SELECT x FROM newer;",
    );
    let (schema, data) = (db.schema(), db.data());
    p.paused_at(
        &["restore", "dev", "--from", &id, "--yes"],
        "restore:during-load",
    )
    .signal(libc::SIGKILL);
    assert_eq!(
        db.schema(),
        schema,
        "every table, view, trigger, routine and event is still there"
    );
    assert_eq!(db.data(), data, "the old data is complete");
    // The next restore drops what the killed one left, and restores.
    wait_for_no_scratch_sessions(&db);
    p.run(&["restore", "dev", "--from", &id, "--yes"])
        .code(0)
        .stderr_has("left by an interrupted restore");
    assert_eq!(db.schema(), backed_up_schema);
    assert_eq!(db.data(), backed_up_data);
    assert_eq!(scratch_databases(&db), "0");
}

#[test]
fn mysql_a_restore_whose_file_is_removed_before_the_commit_restores_what_it_checked() {
    if !server_up() {
        return;
    }
    let db = MyDb::new("gone");
    db.exec(SCHEMA);
    let p = project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    let (schema, data) = (db.schema(), db.data());
    db.exec("DELETE FROM events WHERE id > 10; DROP VIEW doubled;");
    let file = p.data_file(&id);
    let paused = p.paused_at(
        &["restore", "dev", "--from", &id, "--yes"],
        "restore:before-commit",
    );
    // Someone else removes the file the restore checked and loaded (`delete`, `cleanup`, a
    // person) while it waits to commit.
    std::fs::remove_file(&file).unwrap();
    let out = paused.resume();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(db.schema(), schema);
    assert_eq!(db.data(), data);
    assert_eq!(scratch_databases(&db), "0");
}

#[test]
fn mysql_a_restore_killed_after_swapping_the_tables_is_reported_and_the_next_one_finishes_it() {
    if !server_up() {
        return;
    }
    let db = MyDb::new("window");
    db.exec(SCHEMA);
    let p = project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    let (schema, data) = (db.schema(), db.data());
    db.exec("DELETE FROM events WHERE id > 10; DROP VIEW doubled;");
    p.paused_at(
        &["restore", "dev", "--from", &id, "--yes"],
        "restore:tables-swapped",
    )
    .signal(libc::SIGKILL);
    // The tables are the backup's, all at once; the views, triggers, routines and events were
    // not made again yet, and the replaced tables wait in a database of their own.
    assert_eq!(db.data(), data);
    assert_ne!(db.schema(), schema);
    let old = mysql(
        None,
        &format!(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '{}\\_\\_faber\\_old\\_%'",
            db.name
        ),
    );
    assert_eq!(
        mysql(Some(&old), "SELECT COUNT(*) FROM events"),
        "10",
        "the replaced rows"
    );
    p.run(&["status", "dev"])
        .code(0)
        .stderr_has("did not finish")
        .stderr_has(&format!("faber-db restore dev --from {id}"));
    wait_for_no_scratch_sessions(&db);
    p.run(&["restore", "dev", "--from", &id, "--yes"])
        .code(0)
        .stderr_has("left by an interrupted restore");
    assert_eq!(db.schema(), schema);
    assert_eq!(db.data(), data);
    let after = p.run(&["status", "dev"]).code(0);
    assert!(!after.stderr.contains("did not finish"), "{}", after.stderr);
    // The replaced tables had no safety backup yet: they are the only copy, which no sweep
    // drops, and doctor says where they are until a human decides.
    assert_eq!(scratch_databases(&db), "1");
    assert_eq!(mysql(Some(&old), "SELECT COUNT(*) FROM events"), "10");
    p.run(&["doctor"])
        .code(5)
        .stdout_has(&format!("database {old}"))
        .stdout_has("the only copy");
    mysql(None, &format!("DROP DATABASE `{old}`"));
    p.run(&["restore", "dev", "--from", &id, "--yes"]).code(0);
    assert_eq!(scratch_databases(&db), "0");
    p.run(&["doctor"]).code(0).stdout_lacks("the only copy");
}

#[test]
fn mysql_a_swap_that_fails_leaves_the_target_as_it_was() {
    if !server_up() {
        return;
    }
    let db = MyDb::new("swapfail");
    let user = PwUser::new(&db, "swap-pw");
    // A user without the ALTER privilege on the target may not move its tables: the swap
    // fails after the target's views and triggers were dropped to make way.
    mysql(
        None,
        &format!("REVOKE ALTER ON `{}`.* FROM '{}'@'%'", db.name, user.name),
    );
    let definer = format!("DEFINER = '{}'@'%'", user.name);
    db.exec(&format!(
        "CREATE TABLE t (x int); CREATE TABLE log (x int); INSERT INTO t VALUES (1), (2), (3); \
         CREATE {definer} VIEW v AS SELECT x FROM t; CREATE {definer} VIEW w AS SELECT x FROM v; \
         CREATE {definer} TRIGGER t_log AFTER INSERT ON t FOR EACH ROW INSERT INTO log VALUES (NEW.x);"
    ));
    let mut p = project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    db.exec("DELETE FROM t WHERE x > 1");
    let (schema, data) = (db.schema(), db.data());
    p.set_var(
        "DEV_DATABASE_URL",
        &format!("mysql://{}:swap-pw@127.0.0.1:3306/{}", user.name, db.name),
    );
    p.run(&["restore", "dev", "--from", &id, "--yes"])
        .code(6)
        .stderr_has("could not be swapped; nothing was restored")
        .stderr_has("ALTER command denied");
    assert_eq!(
        db.schema(),
        schema,
        "the dropped views and trigger are back"
    );
    assert_eq!(db.data(), data);
    assert_eq!(scratch_databases(&db), "0");
    let status = p.run(&["status", "dev"]).code(0);
    assert!(
        !status.stderr.contains("did not finish"),
        "{}",
        status.stderr
    );
}

#[test]
fn mysql_a_damaged_backup_is_caught_and_never_loaded() {
    if !server_up() {
        return;
    }
    let db = MyDb::new("damaged");
    db.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2), (3);");
    let p = project_with(&[("dev", &db)]);
    let id = p.backup(&["dev", "--compression", "none"]);
    let path = p.data_file(&id);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("-- Dump completed"));
    std::fs::write(&path, text.replace("(3)", "(4)")).unwrap();
    p.run(&["verify", &id])
        .code(5)
        .stdout_has("checksum mismatch");
    db.exec("DELETE FROM t WHERE x > 1");
    p.run(&["restore", "dev", "--from", &id, "--yes"]).code(5);
    assert_eq!(db.exec("SELECT COUNT(*) FROM t"), "1");
}

#[test]
fn mysql_too_little_free_space_is_exit_2() {
    if !server_up() {
        return;
    }
    let Some(fs) = crate::services::Tmpfs::mount("1m") else {
        return;
    };
    let db = MyDb::new("space");
    db.exec("CREATE TABLE t (b longblob); INSERT INTO t SELECT RANDOM_BYTES(1024) FROM seq_1_to_3000; ANALYZE TABLE t;");
    let backups = fs.dir.path().join("backups");
    let p = project_with(&[("dev", &db)]);
    p.use_backup_dir(&backups);
    p.run(&["backup", "dev", "--compression", "none"])
        .code(2)
        .stderr_has("not enough free space")
        .stderr_has("needed");
    // Refused before its directory is even made: nothing there, if it is there at all.
    assert!(!std::fs::read_dir(backups.join("dev")).is_ok_and(|mut d| d.next().is_some()));
}

#[test]
fn mysql_dry_runs_plan_and_change_nothing() {
    if !server_up() {
        return;
    }
    let source = MyDb::new("plan");
    source.exec(SCHEMA);
    let p = project_with(&[("dev", &source)]);
    let doc = p.json(&["backup", "dev", "--dry-run"], 0);
    let plan = &doc["plan"];
    assert_eq!(plan["provider"], "mysql");
    assert!(plan["tools"].as_str().unwrap().contains("dump"), "{plan}");
    assert_eq!(plan["estimate"]["basis"], "defaults");
    assert!(!p.path(crate::harness::BACKUPS).exists());
    let id = p.backup(&["dev"]);
    let registry =
        std::fs::read(p.path(&format!("{}/backups.json", crate::harness::BACKUPS))).unwrap();
    let history =
        std::fs::read(p.path(&format!("{}/history.jsonl", crate::harness::BACKUPS))).unwrap();
    let doc = p.json(&["backup", "dev", "--dry-run"], 0);
    assert_eq!(doc["plan"]["estimate"]["basis"], "history");
    let doc = p.json(&["restore", "dev", "--dry-run"], 0);
    assert_eq!(doc["plan"]["backup"], id.as_str());
    assert_eq!(doc["plan"]["safety_backup"]["reason"], "pre-restore");
    let doc = p.json(&["rollback", "dev", "--dry-run"], 0);
    assert_eq!(doc["plan"]["backup"], id.as_str());
    assert_eq!(
        registry,
        std::fs::read(p.path(&format!("{}/backups.json", crate::harness::BACKUPS))).unwrap()
    );
    assert_eq!(
        history,
        std::fs::read(p.path(&format!("{}/history.jsonl", crate::harness::BACKUPS))).unwrap()
    );
    assert_eq!(p.ids(), vec![id]);
}

/// Tables under names MySQL allows that line-based parsing would garble (issue 16.9): a newline
/// (in a table and a column), a tab, quotes, a backquote, a dot, unicode, each with its own
/// number of rows. A trigger and a routine hold, in a string, lines that end their `DELIMITER`
/// block and insert rows, as the dump shows them.
const ODD_NAMES: &str = "CREATE TABLE `line\nbreak` (id int, `co\nl` text); INSERT INTO `line\nbreak` VALUES (1, 'a\\nb'); \
     CREATE TABLE `quo\"te` (x int); INSERT INTO `quo\"te` VALUES (1), (2); \
     CREATE TABLE `it's` (x int); INSERT INTO `it's` VALUES (1), (2), (3); \
     CREATE TABLE `dot.ted` (x int); INSERT INTO `dot.ted` VALUES (1), (2), (3), (4); \
     CREATE TABLE `ünïcödé` (x int); INSERT INTO `ünïcödé` SELECT seq FROM seq_1_to_5; \
     CREATE TABLE `tab\there` (x int); INSERT INTO `tab\there` SELECT seq FROM seq_1_to_6; \
     CREATE TABLE `back``tick` (x int); INSERT INTO `back``tick` SELECT seq FROM seq_1_to_7; \
     CREATE TRIGGER odd_trigger BEFORE INSERT ON `it's` FOR EACH ROW \
     SET @a = '\nDELIMITER ;\nINSERT INTO `it''s` VALUES (7),(8);\nDELIMITER ;;\n'; \
     CREATE PROCEDURE odd_routine() SELECT '\nDELIMITER ;\nCREATE TABLE `ghost` (x int);\nINSERT INTO `ghost` VALUES (1);\nDELIMITER ;;\n';";

fn odd_names_expected() -> BTreeMap<String, u64> {
    [
        ("line\nbreak", 1),
        ("quo\"te", 2),
        ("it's", 3),
        ("dot.ted", 4),
        ("ünïcödé", 5),
        ("tab\there", 6),
        ("back`tick", 7),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_string(), n))
    .collect()
}

/// `CHECKSUM TABLE` of every base table, by its hex-encoded name: names with newlines and tabs
/// cannot travel through the client's output as they are.
fn fingerprint(db: &MyDb) -> BTreeMap<String, String> {
    let names = mysql(
        None,
        &format!(
            "SELECT HEX(TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{}' AND TABLE_TYPE = 'BASE TABLE'",
            db.name
        ),
    );
    names
        .lines()
        .map(|hex_name| {
            let bytes: Vec<u8> = (0..hex_name.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex_name[i..i + 2], 16).unwrap())
                .collect();
            let name = String::from_utf8(bytes).unwrap().replace('`', "``");
            let row = db.exec(&format!("CHECKSUM TABLE `{name}` EXTENDED"));
            let sum = row.rsplit('\t').next().unwrap_or("").to_string();
            (hex_name.to_string(), sum)
        })
        .collect()
}

#[test]
fn mysql_any_identifier_is_counted_restored_and_verified() {
    if !server_up() {
        return;
    }
    let db = MyDb::new("idents");
    db.exec(ODD_NAMES);
    let target = MyDb::unborn("idents_dst");
    let p = project_with(&[("dev", &db), ("copy", &target)]);
    let doc = p.json(&["backup", "dev"], 0);
    let tables: BTreeMap<String, serde_json::Value> =
        serde_json::from_value(doc["backup"]["tables"].clone()).unwrap();
    let counted: BTreeMap<String, u64> = tables
        .iter()
        .map(|(k, v)| {
            assert!(v.get("estimated").is_none(), "{k:?} {v}");
            (k.clone(), v["rows"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(counted, odd_names_expected());
    let id = doc["backup"]["id"].as_str().unwrap().to_string();
    p.run(&["verify", &id, "--deep"])
        .code(0)
        .stdout_has("row counts match");
    assert_eq!(p.backups()[0]["status"], "valid");
    p.run(&["restore", "copy", "--from", &id, "--yes"])
        .code(0)
        .stdout_has("row counts match the manifest");
    assert_eq!(fingerprint(&target), fingerprint(&db));
    p.run(&["restore", "dev", "--from", "latest", "--yes"])
        .code(0)
        .stdout_has("row counts match the manifest");
}

/// Names of the databases whose names begin with `prefix`, comma-separated.
fn databases_like(prefix: &str) -> String {
    mysql(
        None,
        &format!(
            "SELECT COALESCE(GROUP_CONCAT(SCHEMA_NAME ORDER BY SCHEMA_NAME), '') FROM \
             information_schema.SCHEMATA WHERE LEFT(SCHEMA_NAME, {}) = '{prefix}'",
            prefix.len()
        ),
    )
}

#[test]
fn mysql_only_scratch_databases_of_this_project_are_dropped_never_a_look_alike_or_a_live_runs() {
    if !server_up() {
        return;
    }
    let db = MyDb::new("lookalike");
    db.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2);");
    // A user's database that merely looks like one of faber-db's.
    let archive = format!("{}__faber_archive_2023", db.name);
    mysql(None, &format!("CREATE DATABASE `{archive}`"));
    let _archive = MyDb {
        name: archive.clone(),
    };
    // Two environments of the same database: their restores do not wait for each other.
    let p = project_with(&[("dev", &db), ("twin", &db)]);
    let id = p.backup(&["dev"]);
    let twin = p.paused_at(
        &["restore", "twin", "--from", &id, "--yes"],
        "restore:before-commit",
    );
    assert!(databases_like(&format!("{}__faber_restore_", db.name)).contains("restore"));
    p.run(&["restore", "dev", "--from", &id, "--yes"]).code(0);
    let out = twin.resume();
    assert!(
        out.status.success(),
        "the other run's staged database was left alone: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(databases_like(&archive), archive, "the look-alike stays");
    p.run(&["verify", &id, "--deep"]).code(0);
    assert_eq!(databases_like(&archive), archive, "the look-alike stays");
    assert_eq!(databases_like(&format!("{}__faber_r", db.name)), "");
}

#[test]
fn mysql_a_killed_deep_verify_leaves_a_copy_that_doctor_reports_and_the_next_run_drops() {
    if !server_up() {
        return;
    }
    let db = MyDb::new("deepkill");
    db.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2);");
    let p = project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    crate::reliability::kill_at(&p, &["verify", &id, "--deep"], "verify:deep-loaded");
    let leftover = databases_like(&format!("{}__faber_verify_", db.name));
    assert!(!leftover.is_empty());
    p.run(&["doctor"])
        .code(0)
        .stderr_has(&format!("database {leftover}"))
        .stderr_has("left by a killed run");
    wait_for_no_scratch_sessions(&db);
    p.run(&["verify", &id, "--deep"])
        .code(0)
        .stderr_has(&format!("dropped database {leftover}"));
    assert_eq!(scratch_databases(&db), "0");
    p.run(&["doctor"])
        .code(0)
        .stderr_lacks("left by a killed run");
}

#[test]
fn mysql_no_write_made_before_the_swap_is_missing_from_the_safety_backup() {
    if !server_up() {
        return;
    }
    let db = MyDb::new("nolost");
    db.exec(SCHEMA);
    let p = project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    let restore = p.paused_at(
        &["--json", "restore", "dev", "--from", &id, "--yes"],
        "restore:before-commit",
    );
    // Acknowledged to a short-lived connection while the restore is staged and checked.
    db.exec("INSERT INTO events (account_id, kind) VALUES (1, 'after the backup');");
    let (schema, data) = (db.schema(), db.data());
    let out = restore.resume();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{doc}");
    assert_eq!(
        db.exec("SELECT COUNT(*) FROM events WHERE kind = 'after the backup'"),
        "0"
    );
    // The safety backup is the database as it was at the swap: that row, and every view,
    // trigger, routine and event.
    let safety = doc["safety_backup"].as_str().unwrap().to_string();
    p.run(&[
        "restore",
        "dev",
        "--from",
        &safety,
        "--yes",
        "--no-safety-backup",
    ])
    .code(0);
    assert_eq!(db.schema(), schema);
    assert_eq!(db.data(), data);
    assert_eq!(scratch_databases(&db), "0");
}

/// Drops the scratch databases (`<db>__faber_…`) a test left, whatever its outcome.
struct ScratchGuard(String);

impl Drop for ScratchGuard {
    fn drop(&mut self) {
        let names = Command::new("mysql")
            .args(["-h", "127.0.0.1", "-u", "root", "--batch", "--skip-column-names", "-e"])
            .arg(format!(
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '{}\\_\\_faber%'",
                self.0
            ))
            .output();
        if let Ok(out) = names {
            for name in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = Command::new("mysql")
                    .args(["-h", "127.0.0.1", "-u", "root", "-e"])
                    .arg(format!("DROP DATABASE IF EXISTS `{name}`"))
                    .output();
            }
        }
    }
}

/// Runs `sql` in `db` with the real client; the error text when it fails.
pub fn try_mysql(db: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("mysql")
        .args([
            "-h",
            "127.0.0.1",
            "-u",
            "root",
            "--batch",
            "--skip-column-names",
        ])
        .arg(format!("--database={db}"))
        .arg("-e")
        .arg(sql)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn mysql_a_table_named_like_its_database_does_not_cost_the_replaced_views_or_the_safety_backup() {
    if !server_up() {
        return;
    }
    // A database `shop` with a table `shop` (or a column `shop`): nothing unusual to MariaDB.
    let db = MyDb::new("samename");
    let _scratch = ScratchGuard(db.name.clone());
    let t = &db.name;
    db.exec(&format!(
        "CREATE TABLE `{t}` (id int PRIMARY KEY, v int); INSERT INTO `{t}` VALUES (1, 1), (2, 2); \
         CREATE VIEW summary AS SELECT count(*) AS n FROM `{t}`;"
    ));
    let p = project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    db.exec(&format!("INSERT INTO `{t}` VALUES (3, 3);"));
    let doc = p.json(&["restore", "dev", "--from", &id, "--yes"], 0);
    assert_eq!(db.exec(&format!("SELECT count(*) FROM `{t}`")), "2");
    // The replaced database, view and third row included, is in the safety backup.
    let safety = doc["safety_backup"].as_str().unwrap().to_string();
    p.run(&[
        "restore",
        "dev",
        "--from",
        &safety,
        "--yes",
        "--no-safety-backup",
    ])
    .code(0);
    assert_eq!(db.exec("SELECT n FROM summary"), "3");
    assert_eq!(scratch_databases(&db), "0");
}

#[test]
fn mysql_a_safety_backup_gives_back_triggers_that_name_their_own_database() {
    if !server_up() {
        return;
    }
    let db = MyDb::new("qualified");
    let _scratch = ScratchGuard(db.name.clone());
    let d = &db.name;
    // A trigger that spells its own database out, as generated code often does.
    db.exec(&format!(
        "CREATE TABLE items (id int PRIMARY KEY); CREATE TABLE audit (x int); \
         CREATE TRIGGER items_audit AFTER INSERT ON items FOR EACH ROW \
         INSERT INTO `{d}`.`audit` VALUES (NEW.id); \
         INSERT INTO items VALUES (1);"
    ));
    let p = project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    db.exec("INSERT INTO items VALUES (2);");
    let doc = p.json(&["restore", "dev", "--from", &id, "--yes"], 0);
    let safety = doc["safety_backup"].as_str().unwrap().to_string();
    // Undoing the restore with its safety backup gives the database back as it was…
    p.run(&[
        "restore",
        "dev",
        "--from",
        &safety,
        "--yes",
        "--no-safety-backup",
    ])
    .code(0);
    assert_eq!(db.exec("SELECT count(*) FROM items"), "2");
    // …and a working one: its trigger writes to this database, not to the dropped one the
    // restore had set the replaced data aside in.
    let trigger = db.exec("SELECT ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE TRIGGER_NAME = 'items_audit'");
    assert!(!trigger.contains("__faber_"), "{trigger}");
    try_mysql(d, "INSERT INTO items VALUES (3)").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(db.exec("SELECT count(*) FROM audit WHERE x = 3"), "1");
}

#[test]
fn mysql_a_restore_killed_after_its_swap_keeps_the_replaced_views_and_triggers() {
    if !server_up() {
        return;
    }
    let db = MyDb::new("swapobjs");
    let _scratch = ScratchGuard(db.name.clone());
    db.exec(
        "CREATE TABLE t (x int); CREATE TABLE audit (x int); INSERT INTO t VALUES (1); \
         CREATE VIEW v AS SELECT x FROM t; \
         CREATE TRIGGER t_audit AFTER INSERT ON t FOR EACH ROW INSERT INTO audit VALUES (NEW.x);",
    );
    let p = project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    // The live database moves on after the backup: a new row, a changed view and trigger.
    db.exec(
        "INSERT INTO t VALUES (2); CREATE OR REPLACE VIEW v AS SELECT x * 10 AS x FROM t; \
         DROP TRIGGER t_audit; \
         CREATE TRIGGER t_audit AFTER INSERT ON t FOR EACH ROW INSERT INTO audit VALUES (NEW.x * 10);",
    );
    p.paused_at(
        &["restore", "dev", "--from", &id, "--yes"],
        "restore:tables-swapped",
    )
    .signal(libc::SIGKILL);
    wait_for_no_scratch_sessions(&db);
    // Whatever the next run does about it, the replaced data — rows, views and triggers as they
    // were at the swap — is kept somewhere: it has no safety backup.
    let _ = p.run(&["doctor", "--repair"]);
    let old = mysql(
        None,
        &format!(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '{}\\_\\_faber\\_old\\_%'",
            db.name
        ),
    );
    assert!(!old.is_empty(), "the replaced tables are kept");
    assert_eq!(mysql(Some(&old), "SELECT count(*) FROM t"), "2");
    let kept = |kind: &str, table: &str, column: &str| {
        mysql(
            None,
            &format!("SELECT count(*) FROM information_schema.{table} WHERE {column} = '{old}'"),
        ) + " "
            + kind
    };
    assert_eq!(
        (
            kept("views", "VIEWS", "TABLE_SCHEMA"),
            kept("triggers", "TRIGGERS", "TRIGGER_SCHEMA")
        ),
        ("1 views".to_string(), "1 triggers".to_string()),
        "the replaced view and trigger are nowhere: not in {old}, not in the target, and no safety backup"
    );
}

/// A database `db` whose `accounts` table another database's foreign key references.
fn referenced_from_another_database(tag: &str) -> (MyDb, ScratchGuard, MyDb) {
    let db = MyDb::new(tag);
    let guard = ScratchGuard(db.name.clone());
    db.exec("CREATE TABLE accounts (id int PRIMARY KEY); INSERT INTO accounts VALUES (1), (2);");
    let other = MyDb::new(&format!("{tag}_other"));
    other.exec(&format!(
        "CREATE TABLE r (a int, CONSTRAINT r_account FOREIGN KEY (a) REFERENCES `{}`.accounts (id)) ENGINE = InnoDB; \
         INSERT INTO r VALUES (1);",
        db.name
    ));
    // Dropped in reverse: the other database first, then the scratch ones, then `db`.
    (db, guard, other)
}

#[test]
fn mysql_a_restore_never_rewrites_another_databases_foreign_keys() {
    if !server_up() {
        return;
    }
    let (db, _guard, other) = referenced_from_another_database("fkmove");
    let p = project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    db.exec("INSERT INTO accounts VALUES (3);");
    // Moving the tables would move the other database's foreign key to the replaced ones: the
    // restore refuses, before anything changes.
    p.run(&["restore", "dev", "--from", &id, "--yes"])
        .code(6)
        .stderr_has("foreign keys")
        .stderr_has("nothing was restored");
    // The other database is not this project's: its foreign key still names `db`'s table.
    let create = other.exec("SHOW CREATE TABLE r");
    assert!(
        create.contains(&format!("REFERENCES `{}`.`accounts`", db.name)),
        "{create}"
    );
    assert_eq!(db.exec("SELECT COUNT(*) FROM accounts"), "3");
    assert_eq!(scratch_databases(&db), "0");
}

#[test]
fn mysql_a_leftover_that_cannot_be_dropped_never_blocks_the_next_restore() {
    if !server_up() {
        return;
    }
    let db = MyDb::new("fkblock");
    let _guard = ScratchGuard(db.name.clone());
    db.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1);");
    let p = project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    // A scratch database a killed run left (recorded, marked, its run gone) that the server will
    // not drop: another database's foreign key references a table in it.
    let token = "00112233445566778899aabbccddeeff";
    let leftover = format!("{}__faber_verify_dead", db.name);
    mysql(
        None,
        &format!(
            "CREATE DATABASE `{leftover}` COMMENT 'faber-db scratch {token}'; \
             CREATE TABLE `{leftover}`.p (id int PRIMARY KEY) ENGINE = InnoDB;"
        ),
    );
    let other = MyDb::new("fkblock_other");
    other.exec(&format!(
        "CREATE TABLE r (a int, FOREIGN KEY (a) REFERENCES `{leftover}`.p (id)) ENGINE = InnoDB;"
    ));
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    p.write(
        &format!("{}/.scratch/{token}.json", crate::harness::BACKUPS),
        &serde_json::json!({
            "name": leftover, "server": "mysql://root@127.0.0.1:3306", "purpose": "verify",
            "token": token, "created_at": "2026-01-01T00:00:00Z", "pid": pid,
            "host": gethostname(), "disposable": false
        })
        .to_string(),
    );
    // The next restore and deep verify still work; the leftover is reported, not fatal.
    p.run(&["restore", "dev", "--from", &id, "--yes"]).code(0);
    p.run(&["verify", &id, "--deep"])
        .code(0)
        .stderr_has(&format!(
            "database {leftover}, left by an interrupted run, could not be dropped"
        ));
    drop(other);
    mysql(None, &format!("DROP DATABASE `{leftover}`"));
}

fn gethostname() -> String {
    String::from_utf8(
        std::process::Command::new("hostname")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string()
}

#[test]
fn mysql_a_view_this_user_could_not_make_again_is_never_dropped_for_good() {
    if !server_up() {
        return;
    }
    let db = MyDb::new("definer2");
    let _scratch = ScratchGuard(db.name.clone());
    db.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2);");
    let mut p = project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    // Later a DBA adds a view as root: a DEFINER the application's user may not name.
    db.exec("INSERT INTO t VALUES (3); CREATE VIEW v AS SELECT x FROM t;");
    let user = PwUser::new(&db, "limited-pw");
    p.set_var(
        "DEV_DATABASE_URL",
        &format!(
            "mysql://{}:limited-pw@127.0.0.1:3306/{}",
            user.name, db.name
        ),
    );
    // The backup itself loads as this user (it has no such view).
    let run = p.run(&["--json", "restore", "dev", "--from", &id, "--yes"]);
    if run.code != 0 {
        // Refused: then nothing may have changed.
        assert_eq!(db.exec("SELECT COUNT(*) FROM t"), "3", "{run:?}");
        assert_eq!(
            db.exec("SELECT COUNT(*) FROM v"),
            "3",
            "the view is gone: {run:?}"
        );
        return;
    }
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let safety = doc["safety_backup"].as_str().unwrap().to_string();
    p.set_var("DEV_DATABASE_URL", &db.url());
    p.run(&[
        "restore",
        "dev",
        "--from",
        &safety,
        "--yes",
        "--no-safety-backup",
    ])
    .code(0);
    assert_eq!(db.exec("SELECT COUNT(*) FROM v"), "3");
}

#[test]
fn mysql_a_restore_whose_staged_database_vanished_never_empties_the_target() {
    if !server_up() {
        return;
    }
    let db = MyDb::new("vanished");
    let _scratch = ScratchGuard(db.name.clone());
    db.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2);");
    let p = project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    db.exec("INSERT INTO t VALUES (3);");
    let restore = p.paused_at(
        &["restore", "dev", "--from", &id, "--yes"],
        "restore:before-commit",
    );
    // The staged database goes while the restore waits to commit: a sweep by another checkout
    // whose synced ledger holds its record, or a DBA tidying `__faber_` databases.
    let staged = mysql(
        None,
        &format!(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '{}\\_\\_faber\\_restore\\_%'",
            db.name
        ),
    );
    assert!(!staged.is_empty());
    mysql(None, &format!("DROP DATABASE `{staged}`"));
    let out = restore.resume();
    // Either restored or untouched — never a target without its tables.
    let tables = mysql(
        None,
        &format!(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{}'",
            db.name
        ),
    );
    assert_eq!(
        tables,
        "1",
        "exit {:?}: {}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn mysql_schema_is_read_from_information_schema_and_a_migration_is_its_changes() {
    use faber_db::schema::{Change, Index, changes};
    if !server_up() {
        return;
    }
    let db = MyDb::new("schema");
    db.exec(
        "CREATE TABLE users (id BIGINT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(80) NOT NULL, \
             age INT DEFAULT 0, note TEXT);
         CREATE UNIQUE INDEX users_email ON users (email);
         CREATE INDEX users_note ON users (note(10), age);
         CREATE TABLE `odd\tname` (`line\nx` TEXT);
         CREATE VIEW adults AS SELECT id FROM users WHERE age >= 18;",
    );
    let before = crate::harness::read_schema(&db.url());
    assert_eq!(
        before.tables.keys().collect::<Vec<_>>(),
        ["odd\tname", "users"],
        "a view is not a table"
    );
    assert_eq!(before.tables["odd\tname"].columns[0].name, "line\nx");
    let users = &before.tables["users"];
    let id = users.column("id").unwrap();
    assert!(id.primary_key && !id.nullable);
    assert!(id.data_type.starts_with("bigint"), "{}", id.data_type);
    let email = users.column("email").unwrap();
    assert_eq!(email.data_type, "varchar(80)");
    assert!(!email.nullable && !email.primary_key && email.default.is_none());
    assert_eq!(users.column("age").unwrap().default.as_deref(), Some("0"));
    assert!(users.column("note").unwrap().default.is_none());
    assert_eq!(
        users.indexes["users_email"],
        Index {
            columns: vec!["email".into()],
            unique: true,
            definition: None,
        }
    );
    assert_eq!(
        users.indexes["users_note"],
        Index {
            columns: vec!["note(10)".into(), "age".into()],
            unique: false,
            definition: None,
        }
    );
    assert!(
        !users.indexes.contains_key("PRIMARY"),
        "the primary key is the columns'"
    );

    db.exec(
        "ALTER TABLE users ADD COLUMN name TEXT;
         ALTER TABLE users MODIFY COLUMN age BIGINT DEFAULT 0;
         DROP INDEX users_note ON users;
         DROP TABLE `odd\tname`;
         CREATE TABLE sessions (token VARCHAR(64) NOT NULL);",
    );
    let after = crate::harness::read_schema(&db.url());
    let was = users.column("age").unwrap().clone();
    let now = after.tables["users"].column("age").unwrap().clone();
    assert!(now.data_type.starts_with("bigint"), "{}", now.data_type);
    assert_eq!(
        changes(&before, &after),
        [
            Change::TableAdded {
                table: "sessions".into()
            },
            Change::TableDropped {
                table: "odd\tname".into()
            },
            Change::ColumnAltered {
                table: "users".into(),
                before: was,
                after: now,
            },
            Change::ColumnAdded {
                table: "users".into(),
                column: after.tables["users"].column("name").unwrap().clone(),
            },
            Change::IndexDropped {
                table: "users".into(),
                index: "users_note".into(),
            },
        ]
    );
}

#[test]
fn mysql_diff_reports_an_added_column_a_changed_type_and_a_dropped_index_from_the_manifest() {
    if !server_up() {
        return;
    }
    let db = MyDb::new("schemadiff");
    db.exec(
        "CREATE TABLE users (id BIGINT AUTO_INCREMENT PRIMARY KEY, email TEXT NOT NULL, age INT);
         CREATE INDEX users_age ON users (age);
         CREATE TABLE orders (id INT PRIMARY KEY, user_id BIGINT,
             CONSTRAINT orders_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE);
         INSERT INTO users (email, age) VALUES ('a@x', 1), ('b@x', 2);",
    );
    let p = project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    assert_eq!(
        crate::harness::read_schema(&db.url()).tables["orders"].constraints["orders_user"],
        "FOREIGN KEY (user_id) REFERENCES users(id) ON UPDATE RESTRICT ON DELETE CASCADE"
    );
    db.exec(
        "ALTER TABLE users ADD COLUMN name VARCHAR(40) NOT NULL DEFAULT '';
         ALTER TABLE users MODIFY COLUMN age BIGINT;
         DROP INDEX users_age ON users;
         ALTER TABLE users ADD CONSTRAINT age_positive CHECK (age >= 0);
         ALTER TABLE orders DROP FOREIGN KEY orders_user;",
    );
    let doc = p.json(&["diff", &id], 0);
    assert_eq!(
        crate::harness::schema_changes(&doc["schema_changes"]),
        [
            "constraint_dropped orders.orders_user",
            "column_altered users.age",
            "column_added users.name",
            "index_dropped users.users_age",
            "constraint_added users.age_positive"
        ],
        "{doc}"
    );
    p.run(&["diff", &id])
        .code(0)
        .stdout_has("~ column users.age: type int")
        .stdout_has("+ column users.name: varchar(40) NOT NULL")
        .stdout_has("- index users_age on users")
        .stdout_has("+ constraint age_positive on users: CHECK (")
        .stdout_has("- constraint orders_user on orders");
}

#[test]
fn mysql_schema_keeps_tables_apart_that_information_schema_compares_as_equal() {
    if !server_up() {
        return;
    }
    let db = MyDb::new("schemanames");
    // information_schema compares names case- and accent-insensitively: `T` and `t`, `cafe`
    // and `café` are four tables all the same. `NULL` is a name, not a missing value. A
    // system-versioned table (MariaDB) is a table; a view named like a table is not.
    db.exec(
        "CREATE TABLE T (a INT, b INT);
         CREATE TABLE t (x INT, INDEX ix (x));
         CREATE TABLE cafe (p INT);
         CREATE TABLE `café` (q INT);
         CREATE TABLE `NULL` (`NULL` INT, y INT, INDEX `NULL` (`NULL`));
         CREATE TABLE v (own INT);
         CREATE VIEW V AS SELECT a AS from_view FROM T;",
    );
    let versioned = db.exec("SELECT VERSION()").contains("MariaDB");
    if versioned {
        db.exec("CREATE TABLE sv (id INT) WITH SYSTEM VERSIONING");
    }
    let schema = crate::harness::read_schema(&db.url());
    let names = |table: &str| -> Vec<String> {
        schema.tables[table]
            .columns
            .iter()
            .map(|c| c.name.clone())
            .collect()
    };
    assert_eq!(names("T"), ["a", "b"], "{schema:?}");
    assert_eq!(names("t"), ["x"], "{schema:?}");
    assert_eq!(
        schema.tables["t"].indexes["ix"].columns,
        ["x"],
        "{schema:?}"
    );
    assert_eq!(names("cafe"), ["p"], "{schema:?}");
    assert_eq!(names("café"), ["q"], "{schema:?}");
    assert_eq!(names("v"), ["own"], "{schema:?}");
    assert!(!schema.tables.contains_key("V"), "{schema:?}");
    assert_eq!(names("NULL"), ["NULL", "y"], "{schema:?}");
    assert_eq!(
        schema.tables["NULL"].indexes["NULL"].columns,
        ["NULL"],
        "{schema:?}"
    );
    if versioned {
        assert_eq!(names("sv"), ["id"], "{schema:?}");
    }
}
