//! Adversarial checks of `restore --table` and `restore --into`: hostile and look-alike table
//! names, unusual table kinds, runs stopped or killed midway, paths that are links or hold URL
//! characters, and what the output says. Each test names the guarantee it attacks; the ones that
//! fail today are the review's findings.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{BACKUPS, Project};
use crate::mysql::{self, MyDb};
use crate::postgres::{self, PgDb};

/// `data` without the table `but`.
fn without(data: &BTreeMap<String, String>, but: &str) -> BTreeMap<String, String> {
    data.iter()
        .filter(|(k, _)| k.as_str() != but)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Polls `cond` every 10 ms for up to `secs` seconds.
fn eventually(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: a signal to a child this test started and has not waited for.
    assert_eq!(unsafe { libc::kill(child.id().cast_signed(), sig) }, 0);
}

/// A session of its own that holds an ACCESS SHARE lock on `table` of `db` until
/// [`Holder::release`]: a table restore's `DROP TABLE` waits behind it.
struct Holder {
    child: Child,
    app: String,
}

impl Holder {
    fn on(db: &PgDb, table: &str) -> Holder {
        let app = format!("faber_attack_{}", db.name);
        let child = Command::new("psql")
            .args([
                "-X",
                "-q",
                &db.url(),
                "-c",
                &format!("BEGIN; LOCK TABLE {table} IN ACCESS SHARE MODE; SELECT pg_sleep(300);"),
            ])
            .env("PGAPPNAME", &app)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        eventually(20, "the holder's lock", || {
            postgres::psql(
                &postgres::admin_url(),
                &format!(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = '{app}' AND wait_event = 'PgSleep'"
                ),
            ) == "1"
        });
        Holder { child, app }
    }

    fn release(mut self) {
        postgres::psql(
            &postgres::admin_url(),
            &format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{}'",
                self.app
            ),
        );
        let _ = self.child.wait();
    }
}

/// Sessions on `db` other than the holder's that wait for a lock.
fn lock_waiters(db: &PgDb) -> String {
    postgres::psql(
        &postgres::admin_url(),
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND wait_event_type = 'Lock'",
            db.name
        ),
    )
}

/// Sessions on `db`, the test's own psql not counted.
fn sessions(name: &str) -> String {
    postgres::psql(
        &postgres::admin_url(),
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ),
    )
}

/// faber-db's scratch databases for `db` on the server.
fn scratch_dbs(db: &PgDb) -> String {
    postgres::psql(
        &postgres::admin_url(),
        &format!(
            "SELECT count(*) FROM pg_database WHERE starts_with(datname, '{}__faber_')",
            db.name
        ),
    )
}

/// A checksum of every user table's rows (the parent of partitions or INHERITS counting its
/// own rows only), keyed by `schema.table` as `%I.%I` writes it: unlike [`PgDb::data`], names
/// holding a newline are read back whole.
fn pg_data(db: &PgDb) -> BTreeMap<String, String> {
    let out = db.exec(
        "SELECT encode(convert_to(format('%I.%I', n.nspname, c.relname), 'UTF8'), 'hex') || ' ' || \
         md5(coalesce((xpath('/row/s/text()', query_to_xml(format( \
           'SELECT string_agg(x::text, ''|'' ORDER BY x::text) AS s FROM ONLY %I.%I x', n.nspname, c.relname), \
           false, true, '')))[1]::text, '')) \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
         AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1",
    );
    out.lines()
        .map(|l| {
            let (hex, sum) = l.split_once(' ').unwrap();
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            (String::from_utf8(bytes).unwrap(), sum.to_string())
        })
        .collect()
}

fn history_lines(p: &Project) -> usize {
    std::fs::read_to_string(p.path(&format!("{BACKUPS}/history.jsonl")))
        .map_or(0, |s| s.lines().count())
}

/// Guarantee 1 on PostgreSQL: a name with pattern characters (`*`, `?`), a look-alike, a name
/// that differs only in case, a leading dash, a quote, a dot, a newline — each put back alone,
/// every other table left as it is.
#[test]
fn pg_hostile_and_look_alike_table_names_touch_only_the_named_table() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("names");
    let names = [
        "events",
        "ev?nts",
        "evXnts",
        "events2",
        "Events",
        "ev*",
        "-dash",
        "quo\"te",
        "dot.ted",
        "new\nline",
    ];
    let mut sql = String::from(
        "CREATE SCHEMA \"Sch.ema\"; CREATE TABLE \"Sch.ema\".\"ev?nts\" (id int PRIMARY KEY); INSERT INTO \"Sch.ema\".\"ev?nts\" VALUES (1);",
    );
    for n in names {
        let q = format!("\"{}\"", n.replace('"', "\"\""));
        sql.push_str(&format!(
            "CREATE TABLE {q} (id int PRIMARY KEY, v text); INSERT INTO {q} SELECT g, 'v' || g FROM generate_series(1, 5) g;"
        ));
    }
    db.exec(&sql);
    let p = postgres::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    let original = pg_data(&db);
    let mut touch = String::new();
    for n in names {
        let q = format!("\"{}\"", n.replace('"', "\"\""));
        touch.push_str(&format!("INSERT INTO {q} VALUES (99, 'later');"));
    }
    touch.push_str("INSERT INTO \"Sch.ema\".\"ev?nts\" VALUES (99);");
    db.exec(&touch);
    let mut expected = pg_data(&db);
    // The manifest's key of each (public: the name, quoted when it holds a dot or a quote).
    let keys = [
        ("events", "public.events"),
        ("ev?nts", "public.\"ev?nts\""),
        ("Events", "public.\"Events\""),
        ("ev*", "public.\"ev*\""),
        ("-dash", "public.\"-dash\""),
        ("\"quo\"\"te\"", "public.\"quo\"\"te\""),
        ("\"dot.ted\"", "public.\"dot.ted\""),
        ("new\nline", "public.\"new\nline\""),
        ("\"Sch.ema\".ev?nts", "\"Sch.ema\".\"ev?nts\""),
    ];
    for (key, data_key) in keys {
        assert!(expected.contains_key(data_key), "{data_key}: {expected:?}");
        let arg = format!("--table={key}");
        let doc = p.json(&["restore", "dev", "--from", &id, &arg], 0);
        assert_eq!(
            doc["row_count_differences"],
            serde_json::json!([]),
            "{key}: {doc}"
        );
        let now = pg_data(&db);
        assert_eq!(now[data_key], original[data_key], "{key} is put back");
        assert_eq!(
            without(&now, data_key),
            without(&expected, data_key),
            "{key}: every other table is left as it was"
        );
        expected = now;
    }
}

/// Guarantees 1 and 2 on PostgreSQL: an identity column and a row-level security policy come
/// back whole; a table dropped since is made again; one whose schema was dropped since fails
/// with nothing changed; a child of INHERITS alone; the parent of INHERITS is refused.
#[test]
fn pg_identity_policy_inherits_and_dropped_objects() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("kinds");
    db.exec(
        "CREATE TABLE ident (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, owner text); \
         INSERT INTO ident (owner) SELECT 'o' || g FROM generate_series(1, 20) g; \
         ALTER TABLE ident ENABLE ROW LEVEL SECURITY; \
         CREATE POLICY mine ON ident USING (owner = current_user); \
         CREATE TABLE parent (id int, v text); CREATE TABLE child (extra int) INHERITS (parent); \
         INSERT INTO parent VALUES (1, 'p'); INSERT INTO child VALUES (2, 'c', 7); \
         CREATE TABLE m (at date NOT NULL, v int) PARTITION BY RANGE (at); \
         CREATE INDEX m_at ON m (at); \
         CREATE TABLE m_2024 PARTITION OF m FOR VALUES FROM ('2024-01-01') TO ('2025-01-01'); \
         CREATE TABLE m_2025 PARTITION OF m FOR VALUES FROM ('2025-01-01') TO ('2026-01-01'); \
         INSERT INTO m SELECT date '2024-01-01' + g, g FROM generate_series(0, 700) g; \
         CREATE TABLE gone (id int PRIMARY KEY); INSERT INTO gone VALUES (1), (2); \
         CREATE SCHEMA arch; CREATE TABLE arch.log (id int); INSERT INTO arch.log VALUES (1);",
    );
    let p = postgres::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    let (data, shape) = (db.data(), db.schema());
    db.exec(
        "DELETE FROM ident WHERE id > 10; INSERT INTO ident (owner) VALUES ('late'); \
         DROP POLICY mine ON ident; UPDATE parent SET v = 'P'; UPDATE child SET v = 'C'; \
         DELETE FROM m WHERE at < '2024-02-01'; DROP TABLE gone;",
    );
    // Identity and policy.
    p.json(&["restore", "dev", "--from", &id, "--table", "ident"], 0);
    assert_eq!(db.data()["public.ident"], data["public.ident"]);
    assert!(
        db.schema().contains("CREATE POLICY mine"),
        "the policy is back"
    );
    assert_eq!(
        db.exec("INSERT INTO ident (owner) VALUES ('next') RETURNING id"),
        "21",
        "the identity goes on from the backup's"
    );
    // A table dropped since.
    p.json(&["restore", "dev", "--from", &id, "--table", "gone"], 0);
    assert_eq!(db.exec("SELECT count(*) FROM gone"), "2");
    // The child of INHERITS alone: the parent's own rows stay changed.
    p.json(&["restore", "dev", "--from", &id, "--table", "child"], 0);
    assert_eq!(db.exec("SELECT v FROM ONLY parent"), "P");
    assert_eq!(db.exec("SELECT v FROM child"), "c");
    // The parent of INHERITS: its child depends on it; refused, nothing changed.
    let before = (db.data(), db.schema());
    let doc = p.json(&["restore", "dev", "--from", &id, "--table", "parent"], 6);
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing was changed"),
        "{doc}"
    );
    assert_eq!((db.data(), db.schema()), before);
    // A schema dropped since: the table cannot be made; nothing changed, the error says why.
    db.exec("DROP SCHEMA arch CASCADE");
    let before = (db.data(), db.schema());
    let doc = p.json(&["restore", "dev", "--from", &id, "--table", "arch.log"], 6);
    let text = doc["error"].to_string();
    assert!(text.contains("schema") && text.contains("arch"), "{doc}");
    assert_eq!((db.data(), db.schema()), before);
    drop(shape);
}

/// Guarantee 1: a leaf partition is refused by name (its indexes and constraints are its
/// parent's; the dump's `CREATE INDEX` would collide with those `ATTACH PARTITION` makes), before
/// anything is loaded or backed up, with nothing changed.
#[test]
fn pg_a_leaf_partition_is_refused_before_anything_is_done() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("leaf");
    db.exec(
        "CREATE TABLE m (at date NOT NULL, v int) PARTITION BY RANGE (at); \
         CREATE INDEX m_at ON m (at); \
         CREATE TABLE m_2024 PARTITION OF m FOR VALUES FROM ('2024-01-01') TO ('2025-01-01'); \
         CREATE TABLE m_2025 PARTITION OF m FOR VALUES FROM ('2025-01-01') TO ('2026-01-01'); \
         INSERT INTO m SELECT date '2024-01-01' + g, g FROM generate_series(0, 700) g;",
    );
    let p = postgres::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    db.exec("DELETE FROM m WHERE at < '2024-02-01';");
    let (changed, shape) = (db.data(), db.schema());
    let before = p.backups().len();
    let run = p
        .run(&["restore", "dev", "--from", &id, "--table", "m_2024"])
        .code(1);
    assert!(run.stderr.contains("partition"), "{}", run.stderr);
    assert!(run.stderr.contains("--into"), "{}", run.stderr);
    assert_eq!((db.data(), db.schema()), (changed, shape));
    assert_eq!(p.backups().len(), before, "no safety backup for a refusal");
}

/// Guarantees 2 and 5 on PostgreSQL: a table restore stopped by SIGTERM while its transaction
/// waits for a lock is reported as interrupted (exit 8, as a whole restore is), and changes
/// nothing; its scratch copy is dropped.
#[test]
fn pg_table_restore_stopped_by_sigterm_midway_says_interrupted_and_changes_nothing() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("sigterm");
    db.exec(postgres::SCHEMA);
    let p = postgres::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    db.exec("DELETE FROM events WHERE id > 10");
    let before = db.data();
    let holder = Holder::on(&db, "events");
    let child = p
        .command(&[
            "--json", "restore", "dev", "--from", &id, "--table", "events",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually(60, "the table restore to wait for the lock", || {
        lock_waiters(&db) != "0"
    });
    signal(&child, libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    holder.release();
    eventually(30, "faber-db's sessions to end", || {
        sessions(&db.name) == "0"
    });
    assert_eq!(db.data(), before, "nothing changed");
    assert_eq!(scratch_dbs(&db), "0", "the scratch copy is dropped");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(8),
        "an interrupted table restore exits 8, as an interrupted restore does\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("interrupted"), "{stdout}");
}

/// Guarantee 2 on PostgreSQL: faber-db killed outright while the table restore's transaction
/// waits for a lock must not leave a psql behind that commits the restore later, on its own.
#[test]
fn pg_table_restore_killed_while_waiting_for_a_lock_changes_nothing_later() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("sigkill");
    db.exec(postgres::SCHEMA);
    let p = postgres::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    db.exec("DELETE FROM events WHERE id > 10");
    let before = db.data();
    let holder = Holder::on(&db, "events");
    let mut child = p
        .command(&["restore", "dev", "--from", &id, "--table", "events"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually(60, "the table restore to wait for the lock", || {
        lock_waiters(&db) != "0"
    });
    signal(&child, libc::SIGKILL);
    child.wait().unwrap();
    // faber-db is gone; the lock goes too.
    holder.release();
    eventually(30, "the sessions faber-db started to end", || {
        sessions(&db.name) == "0"
    });
    assert_eq!(
        db.data(),
        before,
        "a killed table restore must change nothing, not commit after faber-db died"
    );
    // Its scratch copy is swept by the next run on that server.
    p.json(&["verify", &id, "--deep"], 0);
    assert_eq!(scratch_dbs(&db), "0");
}

/// Guarantee 3 on PostgreSQL: a restore --into killed while it loads leaves a marked database
/// that the next sweeping run drops; one that finished survives `verify --deep` and `doctor
/// --repair`.
#[test]
fn pg_into_killed_midload_is_swept_and_a_finished_one_survives_sweeps() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("intokill");
    db.exec(
        "CREATE TABLE big (id int, pad text); \
         INSERT INTO big SELECT g, repeat('x', 40) FROM generate_series(1, 1500000) g;",
    );
    let p = postgres::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev", "--format", "sql"]);
    let side = PgDb::unborn("iside");
    let mut child = p
        .command(&["restore", "dev", "--from", &id, "--into", &side.name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually(120, "the load into the new database", || {
        postgres::psql(
            &postgres::admin_url(),
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND query LIKE 'COPY%'",
                side.name
            ),
        ) != "0"
    });
    signal(&child, libc::SIGKILL);
    child.wait().unwrap();
    eventually(60, "the load's session to end", || {
        sessions(&side.name) == "0"
    });
    let exists = || {
        postgres::psql(
            &postgres::admin_url(),
            &format!(
                "SELECT count(*) FROM pg_database WHERE datname = '{}'",
                side.name
            ),
        )
    };
    assert_eq!(
        exists(),
        "1",
        "the half-made database is there until a sweep"
    );
    p.json(&["verify", &id, "--deep"], 0);
    assert_eq!(exists(), "0", "the next run on that server drops it");
    // A finished one is the user's: no sweep drops it.
    p.json(&["restore", "dev", "--from", &id, "--into", &side.name], 0);
    p.json(&["verify", &id, "--deep"], 0);
    p.run(&["doctor", "--repair"]);
    assert_eq!(exists(), "1");
    assert_eq!(side.exec("SELECT count(*) FROM big"), "1500000");
}

/// Guarantees 4 and 5 on PostgreSQL: the URL's password is never printed, whether the run
/// succeeds or fails; --dry-run makes no scratch database, no safety backup and no audit
/// event; clap keeps the flags apart.
#[test]
fn pg_secrets_dry_runs_and_flag_conflicts() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("secret");
    db.exec(postgres::SCHEMA);
    let mut url = url::Url::parse(&db.url()).unwrap();
    url.set_password(Some("s3cr3t-pw")).unwrap();
    let p = Project::with_config(
        "[defaults]\ncompression = \"gzip\"\n[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\n",
    )
    .with_var("DEV_DATABASE_URL", url.as_str());
    let id = p.backup(&["dev"]);
    let side = PgDb::unborn("sside");
    let runs = [
        p.run(&["restore", "dev", "--from", &id, "--table", "events"]),
        p.run(&[
            "--json", "restore", "dev", "--from", &id, "--table", "events",
        ]),
        p.run(&["restore", "dev", "--from", &id, "--table", "accounts"]),
        p.run(&["restore", "dev", "--from", &id, "--into", &side.name]),
        p.run(&[
            "--json", "restore", "dev", "--from", &id, "--into", &side.name,
        ]),
        p.run(&[
            "restore",
            "dev",
            "--from",
            &id,
            "--into",
            &db.name,
            "--dry-run",
        ]),
    ];
    for run in &runs {
        assert!(
            !run.stdout.contains("s3cr3t") && !run.stderr.contains("s3cr3t"),
            "{:?}\n{}\n{}",
            run.args,
            run.stdout,
            run.stderr
        );
    }
    // Dry runs: nothing made, nothing logged.
    let (events, backups, scratch) = (history_lines(&p), p.backups().len(), scratch_dbs(&db));
    assert!(events > 0, "the runs above are in the audit log");
    let dry = p.json(
        &[
            "restore",
            "dev",
            "--from",
            &id,
            "--table",
            "events",
            "--dry-run",
        ],
        0,
    );
    assert_eq!(dry["dry_run"], true);
    let other = PgDb::unborn("dry");
    p.json(
        &[
            "restore",
            "dev",
            "--from",
            &id,
            "--into",
            &other.name,
            "--dry-run",
        ],
        0,
    );
    assert_eq!(history_lines(&p), events, "a dry run logs no audit event");
    assert_eq!(
        p.backups().len(),
        backups,
        "a dry run takes no safety backup"
    );
    assert_eq!(
        scratch_dbs(&db),
        scratch,
        "a dry run makes no scratch database"
    );
    // Flags that make no sense together are refused before anything is done.
    for args in [
        vec!["--table", "events", "--in-place"],
        vec!["--into", "x", "--table", "events"],
        vec!["--into", "x", "--schema", "public"],
        vec!["--into", "x", "--no-safety-backup"],
        vec!["--into", "x", "--terminate-connections"],
    ] {
        let mut all = vec!["restore", "dev", "--from", id.as_str()];
        all.extend(args.iter().copied());
        p.run(&all).code(1).stderr_has("cannot be used with");
    }
}

/// Guarantee 5: `--terminate-connections` with `--table` is accepted and silently ignored (the
/// table restore never ends sessions; it waits up to 60 s for their locks, then says "stop the
/// application"). It should be refused as `--into` refuses it, or honoured.
#[test]
fn pg_table_restore_refuses_terminate_connections_it_would_ignore() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("term");
    db.exec("CREATE TABLE t (id int); INSERT INTO t VALUES (1);");
    let p = postgres::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    p.run(&[
        "restore",
        "dev",
        "--from",
        &id,
        "--table",
        "t",
        "--terminate-connections",
    ])
    .code(1)
    .stderr_has("cannot be used with");
}

/// Guarantee 5 on MySQL: a table restore that fails midway (a trigger of the backup's table
/// whose name another table's trigger took since) leaves the table half restored; the hint
/// must name the safety backup with the tables to put back, not a whole-database restore, and
/// nothing else is dropped.
#[test]
fn mysql_table_restore_failing_midway_points_at_the_safety_backup_for_those_tables() {
    if !mysql::server_up() {
        return;
    }
    let db = MyDb::new("midway");
    db.exec(
        "CREATE TABLE a (id int PRIMARY KEY, v text); INSERT INTO a VALUES (1, 'a1'), (2, 'a2'); \
         CREATE TABLE b (id int PRIMARY KEY, v text); \
         CREATE TRIGGER b_first BEFORE INSERT ON b FOR EACH ROW SET NEW.v = coalesce(NEW.v, 'first'); \
         INSERT INTO b VALUES (1, 'b1'); CREATE TABLE c (id int PRIMARY KEY); INSERT INTO c VALUES (1);",
    );
    let p = mysql::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    // Since: b's trigger goes, and c takes its name.
    db.exec(
        "DROP TRIGGER b_first; INSERT INTO b VALUES (2, 'later'); UPDATE a SET v = 'changed'; \
         CREATE TRIGGER b_first BEFORE INSERT ON c FOR EACH ROW SET NEW.id = NEW.id;",
    );
    let before = db.data();
    let doc = p.json(&["restore", "dev", "--from", &id, "--table", "b"], 6);
    let hint = doc["error"]["hint"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let safety = p
        .backups()
        .iter()
        .filter_map(|b| b["id"].as_str().map(str::to_string))
        .find(|b| *b != id)
        .expect("a safety backup was taken");
    assert!(hint.contains(&safety), "{doc}");
    let now = db.data();
    assert_eq!(now.get("c"), before.get("c"), "c is untouched");
    assert_eq!(now.get("a"), before.get("a"), "a is untouched");
    assert!(
        db.exec("SELECT count(*) FROM information_schema.TRIGGERS WHERE TRIGGER_NAME = 'b_first' AND EVENT_OBJECT_TABLE = 'c'")
            == "1",
        "c's trigger is untouched"
    );
    // The remedy puts back that table only, as the success output's `Undo with:` does.
    assert!(hint.contains("--table b"), "{hint}");
}

/// Guarantee 1 on MySQL: a name with a leading dash, one with a dot, and a look-alike differing
/// in case only.
#[test]
fn mysql_hostile_table_names_touch_only_the_named_table() {
    if !mysql::server_up() {
        return;
    }
    let db = MyDb::new("mnames");
    db.exec(
        "CREATE TABLE `-dash` (id int PRIMARY KEY); INSERT INTO `-dash` VALUES (1); \
         CREATE TABLE `dot.ted` (id int PRIMARY KEY); INSERT INTO `dot.ted` VALUES (1); \
         CREATE TABLE `Ev` (id int PRIMARY KEY); INSERT INTO `Ev` VALUES (1); \
         CREATE TABLE `ev` (id int PRIMARY KEY); INSERT INTO `ev` VALUES (1);",
    );
    let p = mysql::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    let original = db.data();
    db.exec("INSERT INTO `-dash` VALUES (2); INSERT INTO `dot.ted` VALUES (2); INSERT INTO `Ev` VALUES (2); INSERT INTO `ev` VALUES (2);");
    let mut expected = db.data();
    for name in ["-dash", "dot.ted", "Ev"] {
        let arg = format!("--table={name}");
        p.json(&["restore", "dev", "--from", &id, &arg], 0);
        let now = db.data();
        let key = now
            .keys()
            .find(|k| k.as_str() == name || k.ends_with(&format!(".{name}")))
            .unwrap_or_else(|| panic!("{name} in {now:?}"))
            .clone();
        assert_eq!(now[&key], original[&key], "{name} is put back");
        assert_eq!(
            without(&now, &key),
            without(&expected, &key),
            "{name}: others untouched"
        );
        expected = now;
    }
}

fn rows_with_rowid(conn: &rusqlite::Connection, table: &str) -> Vec<String> {
    let mut stmt = conn
        .prepare(&format!("SELECT rowid, * FROM \"{table}\" ORDER BY rowid"))
        .unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        Ok((0..n)
            .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
            .collect::<Vec<_>>()
            .join("|"))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Guarantee 1 on SQLite: a table without an INTEGER PRIMARY KEY is put back with the rowids
/// the backup holds (other tables, an FTS index, the application may point at them), not
/// numbered anew.
#[test]
fn sqlite_rowid_table_keeps_its_rowids() {
    let p = Project::new();
    p.sqlite("db/dev.sqlite3")
        .execute_batch(
            "CREATE TABLE plain (name TEXT);
             INSERT INTO plain VALUES ('a'), ('b'), ('c'), ('d');
             DELETE FROM plain WHERE name IN ('a', 'c');",
        )
        .unwrap();
    let id = p.backup(&["dev"]);
    let before = rows_with_rowid(&p.sqlite("db/dev.sqlite3"), "plain");
    assert_eq!(before, ["Integer(2)|Text([98])", "Integer(4)|Text([100])"]);
    p.sqlite("db/dev.sqlite3")
        .execute_batch("DELETE FROM plain;")
        .unwrap();
    p.json(&["restore", "dev", "--from", &id, "--table", "plain"], 0);
    assert_eq!(
        rows_with_rowid(&p.sqlite("db/dev.sqlite3"), "plain"),
        before,
        "the rowids are the backup's"
    );
}

/// Guarantee 1 on SQLite: WITHOUT ROWID, a view over the table, a trigger of another table that
/// writes into it, sqlite_sequence — all still there and working, the other tables untouched.
#[test]
fn sqlite_without_rowid_views_and_triggers_of_other_tables_survive() {
    let p = Project::new();
    p.sqlite("db/dev.sqlite3")
        .execute_batch(
            "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;
             INSERT INTO kv VALUES ('a', '1'), ('b', '2');
             CREATE TABLE log (id INTEGER PRIMARY KEY AUTOINCREMENT, what TEXT);
             CREATE TABLE other (id INTEGER PRIMARY KEY AUTOINCREMENT, x TEXT);
             INSERT INTO other (x) VALUES ('o1'), ('o2'), ('o3');
             CREATE TRIGGER other_logs AFTER INSERT ON other BEGIN INSERT INTO log (what) VALUES (NEW.x); END;
             CREATE VIEW kv_view AS SELECT k || '=' || v AS pair FROM kv;",
        )
        .unwrap();
    let id = p.backup(&["dev"]);
    let conn = p.sqlite("db/dev.sqlite3");
    conn.execute_batch(
        "UPDATE kv SET v = 'x'; INSERT INTO other (x) VALUES ('o4'); DELETE FROM other WHERE id = 1;",
    )
    .unwrap();
    let other_before = rows_with_rowid(&conn, "other");
    let seq_other: i64 = conn
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'other'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    drop(conn);
    p.json(
        &[
            "restore", "dev", "--from", &id, "--table", "kv", "--table", "log",
        ],
        0,
    );
    let conn = p.sqlite("db/dev.sqlite3");
    let pairs: String = conn
        .query_row("SELECT group_concat(pair, ',') FROM kv_view", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(pairs, "a=1,b=2");
    assert_eq!(rows_with_rowid(&conn, "other"), other_before);
    let seq_after: i64 = conn
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'other'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        seq_after, seq_other,
        "another table's AUTOINCREMENT counter is untouched"
    );
    // The other table's trigger writes into the restored `log`.
    conn.execute("INSERT INTO other (x) VALUES ('o5')", [])
        .unwrap();
    let logged: i64 = conn
        .query_row("SELECT count(*) FROM log WHERE what = 'o5'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(logged, 1);
}

/// Guarantee 3 on SQLite: a restore --into killed while it writes leaves nothing behind once the
/// next run comes — and, above all, does not keep the next --into of that path from working.
#[test]
fn sqlite_into_killed_midway_leaves_nothing_behind() {
    let p = Project::new();
    p.sqlite("db/dev.sqlite3")
        .execute_batch(
            "CREATE TABLE big (b BLOB);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
             INSERT INTO big SELECT zeroblob(1048576) FROM n;",
        )
        .unwrap();
    let id = p.backup(&["dev"]);
    let partial = p.path("db/side.sqlite3.partial");
    let mut child = p
        .command(&["restore", "dev", "--from", &id, "--into", "db/side.sqlite3"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually(60, "the new file to be written", || partial.exists());
    signal(&child, libc::SIGKILL);
    child.wait().unwrap();
    assert!(!p.path("db/side.sqlite3").exists());
    // The next run: the same --into works, and leaves no debris or record behind.
    let run = p.run(&["restore", "dev", "--from", &id, "--into", "db/side.sqlite3"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(!partial.exists(), "the killed run's .partial is removed");
    let records: Vec<String> = std::fs::read_dir(p.path(&format!("{BACKUPS}/.scratch")))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default();
    assert!(records.is_empty(), "no ledger record left: {records:?}");
}

/// Guarantee 3 on SQLite: a dangling link, a directory that links into the backup directory; a
/// protected environment without `--yes`.
#[test]
fn sqlite_into_links_and_a_protected_environment() {
    let p = Project::new();
    p.sqlite("db/dev.sqlite3")
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    let id = p.backup(&["dev"]);
    let outside = tempfile::tempdir().unwrap();
    let aimed = outside.path().join("aimed.sqlite3");
    // A dangling link: refused, and nothing made where it points.
    std::os::unix::fs::symlink(&aimed, p.path("db/dangling.sqlite3")).unwrap();
    let doc = p.json(
        &[
            "restore",
            "dev",
            "--from",
            &id,
            "--into",
            "db/dangling.sqlite3",
        ],
        1,
    );
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already exists"),
        "{doc}"
    );
    assert!(!aimed.exists());
    // A directory that is a link into the backup directory.
    std::os::unix::fs::symlink(p.path(BACKUPS), p.path("db/backups-link")).unwrap();
    let doc = p.json(
        &[
            "restore",
            "dev",
            "--from",
            &id,
            "--into",
            "db/backups-link/x.sqlite3",
        ],
        1,
    );
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("backup directory"),
        "{doc}"
    );
    assert!(!p.path(&format!("{BACKUPS}/x.sqlite3")).exists());
    // A protected environment asks; without --yes nothing is made.
    p.sqlite("db/prod.sqlite3")
        .execute_batch("CREATE TABLE t (x);")
        .unwrap();
    let pid = p.backup(&["production", "--yes"]);
    let run = p.run(&[
        "restore",
        "production",
        "--from",
        &pid,
        "--into",
        "db/p2.sqlite3",
    ]);
    assert_eq!(run.code, 8, "{}", run.stderr);
    assert!(!p.path("db/p2.sqlite3").exists());
}

/// Guarantee 5 on SQLite: a path holding `?` or `#` could not be named by the SQLite URL the
/// output gives to connect with (the URL ends there), so it is refused, and no file is made.
#[test]
fn sqlite_into_a_path_with_url_characters_is_refused() {
    let p = Project::new();
    p.sqlite("db/dev.sqlite3")
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    let id = p.backup(&["dev"]);
    for path in ["db/a?b.sqlite3", "db/a#c.sqlite3"] {
        let doc = p.json(&["restore", "dev", "--from", &id, "--into", path], 1);
        assert!(
            doc["error"]["message"]
                .as_str()
                .unwrap()
                .contains("SQLite URL"),
            "{doc}"
        );
        assert!(!p.path(path).exists());
    }
}

/// Guarantee 5 on SQLite: `--into ""` is refused saying the name is empty (as PostgreSQL and
/// MySQL say), not "--into  cannot be resolved as a path".
#[test]
fn sqlite_into_an_empty_name_says_it_is_empty() {
    let p = Project::new();
    p.sqlite("db/dev.sqlite3")
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    let id = p.backup(&["dev"]);
    let doc = p.json(&["restore", "dev", "--from", &id, "--into", ""], 1);
    assert!(
        doc["error"]["message"].as_str().unwrap().contains("empty"),
        "{doc}"
    );
}

/// A project whose SQLite database is 300 MiB, backed up, and a `restore --into db/side.sqlite3`
/// of that backup started and seen writing its `.partial` file.
fn sqlite_into_under_way(p: &Project) -> (std::process::Child, std::path::PathBuf) {
    p.sqlite("db/dev.sqlite3")
        .execute_batch(
            "CREATE TABLE big (b BLOB);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
             INSERT INTO big SELECT zeroblob(1048576) FROM n;",
        )
        .unwrap();
    let id = p.backup(&["dev"]);
    let partial = p.path("db/side.sqlite3.partial");
    let child = p
        .command(&[
            "--json",
            "restore",
            "dev",
            "--from",
            &id,
            "--into",
            "db/side.sqlite3",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually(60, "the new file to be written", || partial.exists());
    (child, partial)
}

/// Guarantee 5 on SQLite: a restore --into stopped by SIGTERM while it writes removes what it
/// wrote and says it was interrupted (exit 8), as an interrupted restore does.
#[test]
fn sqlite_into_stopped_by_sigterm_says_interrupted_and_leaves_nothing() {
    let p = Project::new();
    let (child, partial) = sqlite_into_under_way(&p);
    signal(&child, libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!partial.exists(), "what it wrote is removed");
    assert!(!p.path("db/side.sqlite3").exists());
    assert_eq!(out.status.code(), Some(8), "{stdout}");
    assert!(stdout.contains("interrupted"), "{stdout}");
}

/// Guarantee 1/5 on MySQL: a parent table put back while another table's rows point at rows
/// the backup lacks. PostgreSQL refuses it (exit 6, nothing changed); MySQL (mysqldump turns
/// FOREIGN_KEY_CHECKS off) puts it back and leaves the other table's rows pointing at nothing,
/// silently — neither refused nor said, and the user guide only speaks of PostgreSQL and SQLite.
#[test]
fn mysql_parent_table_restore_does_not_silently_orphan_other_tables_rows() {
    if !mysql::server_up() {
        return;
    }
    let db = MyDb::new("orphans");
    db.exec(
        "CREATE TABLE parents (id int PRIMARY KEY) ENGINE=InnoDB; INSERT INTO parents VALUES (1), (2); \
         CREATE TABLE kids (id int PRIMARY KEY, parent int, FOREIGN KEY (parent) REFERENCES parents (id)) ENGINE=InnoDB; \
         INSERT INTO kids VALUES (1, 1);",
    );
    let p = mysql::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    db.exec("INSERT INTO parents VALUES (3); INSERT INTO kids VALUES (2, 3);");
    let run = p.run(&["restore", "dev", "--from", &id, "--table", "parents"]);
    let orphans = db.exec(
        "SELECT count(*) FROM kids k LEFT JOIN parents p ON p.id = k.parent WHERE p.id IS NULL",
    );
    let said = format!("{}{}", run.stdout, run.stderr).contains("foreign key");
    assert!(
        (run.code != 0 && orphans == "0") || said,
        "exit {}, {orphans} orphaned kids, and nothing said:\n{}\n{}",
        run.code,
        run.stdout,
        run.stderr
    );
}

/// Guarantee 3 on MySQL: a restore --into killed while it loads is dropped by the next run that
/// sweeps the server; a finished one survives.
#[test]
fn mysql_into_killed_midload_is_swept() {
    if !mysql::server_up() {
        return;
    }
    let db = MyDb::new("mkill");
    db.exec(
        "CREATE TABLE big (id int PRIMARY KEY, pad varchar(64)); \
         SET SESSION max_recursive_iterations = 1000000; \
         INSERT INTO big WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400000) \
         SELECT i, repeat('x', 60) FROM n;",
    );
    let p = mysql::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    let side = MyDb::unborn("mside");
    let exists = || {
        mysql::mysql(
            None,
            &format!(
                "SELECT count(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{}'",
                side.name
            ),
        )
    };
    let mut child = p
        .command(&["restore", "dev", "--from", &id, "--into", &side.name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually(120, "the load into the new database", || {
        mysql::mysql(
            None,
            &format!(
                "SELECT count(*) FROM information_schema.PROCESSLIST WHERE DB = '{}' AND INFO LIKE 'INSERT%'",
                side.name
            ),
        ) != "0"
    });
    signal(&child, libc::SIGKILL);
    child.wait().unwrap();
    eventually(60, "the load's session to end", || {
        mysql::mysql(
            None,
            &format!(
                "SELECT count(*) FROM information_schema.PROCESSLIST WHERE DB = '{}'",
                side.name
            ),
        ) == "0"
    });
    assert_eq!(
        exists(),
        "1",
        "the half-made database is there until a sweep"
    );
    p.json(&["verify", &id, "--deep"], 0);
    assert_eq!(exists(), "0", "the next run on that server drops it");
    p.json(&["restore", "dev", "--from", &id, "--into", &side.name], 0);
    p.json(&["verify", &id, "--deep"], 0);
    assert_eq!(exists(), "1", "a finished one is the user's");
}

/// Guarantees 3 and 5 on PostgreSQL: a restore --into stopped by SIGTERM while it loads drops
/// the half-made database at once and says it was interrupted (exit 8).
#[test]
fn pg_into_stopped_by_sigterm_drops_it_and_says_interrupted() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("intoterm");
    db.exec(
        "CREATE TABLE big (id int, pad text); \
         INSERT INTO big SELECT g, repeat('x', 40) FROM generate_series(1, 1500000) g;",
    );
    let p = postgres::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev", "--format", "sql"]);
    let side = PgDb::unborn("tside");
    let child = p
        .command(&[
            "--json", "restore", "dev", "--from", &id, "--into", &side.name,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually(120, "the load into the new database", || {
        postgres::psql(
            &postgres::admin_url(),
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND query LIKE 'COPY%'",
                side.name
            ),
        ) != "0"
    });
    signal(&child, libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        postgres::psql(
            &postgres::admin_url(),
            &format!(
                "SELECT count(*) FROM pg_database WHERE datname = '{}'",
                side.name
            ),
        ),
        "0",
        "the half-made database is dropped"
    );
    assert_eq!(out.status.code(), Some(8), "{stdout}");
    assert!(stdout.contains("interrupted"), "{stdout}");
}

/// `--schema` over a schema holding a partitioned table is refused as a whole, before anything is
/// done: the partitioned table cannot be put back by a table restore, and the rest of the schema
/// without it would not be what was asked for.
#[test]
fn pg_schema_with_a_partitioned_table_is_refused_with_nothing_changed() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("schemapart");
    db.exec(
        "CREATE SCHEMA sales; \
         CREATE TABLE sales.orders (id int PRIMARY KEY, total int); \
         INSERT INTO sales.orders SELECT g, g FROM generate_series(1, 10) g; \
         CREATE TABLE sales.m (at date NOT NULL, v int) PARTITION BY RANGE (at); \
         CREATE TABLE sales.m_2024 PARTITION OF sales.m FOR VALUES FROM ('2024-01-01') TO ('2025-01-01'); \
         INSERT INTO sales.m SELECT date '2024-01-01' + g, g FROM generate_series(0, 300) g;",
    );
    let p = postgres::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    db.exec("DELETE FROM sales.orders; DELETE FROM sales.m;");
    let changed = db.data();
    let run = p
        .run(&["restore", "dev", "--from", &id, "--schema", "sales"])
        .code(1);
    assert!(run.stderr.contains("partition"), "{}", run.stderr);
    assert_eq!(db.data(), changed);
}

/// Guarantee 5: a dry run of `--into` an existing database promises "Would restore … into a new
/// database" that the real run then refuses; the dry run should refuse it the same way.
#[test]
fn pg_into_dry_run_refuses_a_name_that_exists() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("dryexists");
    db.exec("CREATE TABLE t (id int); INSERT INTO t VALUES (1);");
    let p = postgres::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    let doc = p.json(
        &[
            "restore",
            "dev",
            "--from",
            &id,
            "--into",
            &db.name,
            "--dry-run",
        ],
        1,
    );
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("already exists"),
        "{doc}"
    );
}

/// Guarantee 5 on PostgreSQL: a partitioned table is refused (exit 1) — but only after the
/// whole backup was loaded into a scratch copy and a full safety backup of the live database
/// taken and registered, for a restore that was never going to run. The check reads the live
/// database and the manifest; it can come first.
#[test]
fn pg_partitioned_table_is_refused_before_a_safety_backup_is_taken() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("partfirst");
    db.exec(
        "CREATE TABLE m (at date NOT NULL, v int) PARTITION BY RANGE (at); \
         CREATE TABLE m_2024 PARTITION OF m FOR VALUES FROM ('2024-01-01') TO ('2025-01-01'); \
         INSERT INTO m SELECT date '2024-01-01' + g, g FROM generate_series(0, 300) g;",
    );
    let p = postgres::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    let backups = p.backups().len();
    p.json(&["restore", "dev", "--from", &id, "--table", "m"], 1);
    assert_eq!(
        p.backups().len(),
        backups,
        "no safety backup for a refused restore"
    );
}

/// Guarantee 3 on SQLite: a file made at the --into path while the restore writes (after its
/// "does it exist" check, before its link) is never replaced: the run refuses, the file keeps
/// its content, and the run's own `.partial` is removed.
#[test]
fn sqlite_into_never_replaces_a_file_made_while_it_writes() {
    let p = Project::new();
    let (child, partial) = sqlite_into_under_way(&p);
    std::fs::write(p.path("db/side.sqlite3"), b"mine").unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("already exists"), "{stdout}");
    assert_eq!(std::fs::read(p.path("db/side.sqlite3")).unwrap(), b"mine");
    assert!(!partial.exists());
}

/// Guarantee 5 on PostgreSQL: a new database whose name holds a space, `?`, `#` or `/` is made
/// under that name, and the URL given to connect with reaches that database.
#[test]
fn pg_into_a_name_with_url_characters_gives_the_url_of_that_database() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("urlname");
    db.exec("CREATE TABLE t (id int); INSERT INTO t VALUES (1);");
    let p = postgres::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    let side = PgDb {
        name: format!("{} a?b#c/d%20", db.name),
    };
    let doc = p.json(&["restore", "dev", "--from", &id, "--into", &side.name], 0);
    assert_eq!(doc["into"]["name"], side.name.as_str(), "{doc}");
    let url = doc["into"]["url"].as_str().unwrap();
    // The URL's database, as libpq reads it.
    let reached = Command::new("psql")
        .args(["-X", "-A", "-t", url, "-c", "SELECT current_database()"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&reached.stdout).trim_end(),
        side.name,
        "{url}: {}",
        String::from_utf8_lossy(&reached.stderr)
    );
}

/// `dev` with one table, backed up; then its rows changed but not their number.
fn sqlite_changed_since_backup() -> (Project, String) {
    let p = Project::new();
    p.sqlite("db/dev.sqlite3")
        .execute_batch(
            "CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT);
             INSERT INTO accounts (name) VALUES ('ann'), ('bob');
             CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
             INSERT INTO notes (body) VALUES ('n1');",
        )
        .unwrap();
    let id = p.backup(&["dev"]);
    p.sqlite("db/dev.sqlite3")
        .execute_batch("UPDATE accounts SET name = 'changed'; UPDATE notes SET body = 'x';")
        .unwrap();
    (p, id)
}

fn names(p: &Project) -> String {
    p.sqlite("db/dev.sqlite3")
        .query_row("SELECT group_concat(name, ',') FROM accounts", [], |r| {
            r.get(0)
        })
        .unwrap()
}

/// Guarantee 1/3, through the audit log: a restore --into logs a successful `restore` of the
/// backup into the environment, though the environment's database was never touched. `rollback
/// --to` that backup then takes the live database for "already restored from it" (its row
/// counts match) and skips the rollback: the changed rows stay.
#[test]
fn rollback_is_not_skipped_after_a_restore_into_left_the_database_alone() {
    let (p, id) = sqlite_changed_since_backup();
    p.json(
        &["restore", "dev", "--from", &id, "--into", "db/side.sqlite3"],
        0,
    );
    let doc = p.json(&["rollback", "dev", "--to", &id, "--yes"], 0);
    assert_eq!(
        names(&p),
        "ann,bob",
        "the rollback must put the backup's rows back: {doc}"
    );
}

/// The same through a table restore: only `notes` was put back, yet `rollback --to` the backup
/// takes the whole database for restored from it and skips; `accounts` stays changed.
#[test]
fn rollback_is_not_skipped_after_a_table_restore_of_another_table() {
    let (p, id) = sqlite_changed_since_backup();
    p.json(&["restore", "dev", "--from", &id, "--table", "notes"], 0);
    let doc = p.json(&["rollback", "dev", "--to", &id, "--yes"], 0);
    assert_eq!(
        names(&p),
        "ann,bob",
        "the rollback must put the backup's rows back: {doc}"
    );
}

/// Guarantee 5, through the audit log: a restore that was killed as it changed the database is
/// reported by `status` ("did not finish") until a restore finishes. A restore --into (which
/// never touched the database) or a table restore (which put back one table) must not clear it.
#[test]
fn a_restore_into_or_of_one_table_does_not_clear_an_unfinished_restore() {
    let (p, id) = sqlite_changed_since_backup();
    let paused = p.paused_at(
        &["restore", "dev", "--from", &id, "--yes"],
        "restore:before-commit",
    );
    paused.signal(libc::SIGKILL);
    p.run(&["status", "dev"])
        .code(0)
        .stderr_has("did not finish");
    p.json(
        &["restore", "dev", "--from", &id, "--into", "db/side.sqlite3"],
        0,
    );
    p.run(&["status", "dev"])
        .code(0)
        .stderr_has("did not finish");
    p.json(&["restore", "dev", "--from", &id, "--table", "notes"], 0);
    p.run(&["status", "dev"])
        .code(0)
        .stderr_has("did not finish");
}

/// Guarantee 1, through `status`: a table restore killed as it changed the database is
/// reported as an unfinished restore, whose remedy must put back those tables
/// (`--table events`), not the whole backup over every other table.
#[test]
fn a_killed_table_restore_is_reported_with_a_remedy_for_those_tables_only() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("killstatus");
    db.exec(postgres::SCHEMA);
    let p = postgres::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    let holder = Holder::on(&db, "events");
    let mut child = p
        .command(&["restore", "dev", "--from", &id, "--table", "events"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually(60, "the table restore to wait for the lock", || {
        lock_waiters(&db) != "0"
    });
    signal(&child, libc::SIGKILL);
    child.wait().unwrap();
    holder.release();
    eventually(30, "faber-db's sessions to end", || {
        sessions(&db.name) == "0"
    });
    let run = p.run(&["status", "dev"]).code(0);
    let said: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("faber-db restore dev"))
        .collect();
    // PostgreSQL's one transaction changed nothing: there may be nothing to report; what is
    // reported must never be a whole restore.
    assert!(
        said.iter().all(|l| l.contains("--table events")),
        "the remedy restores the whole backup: {}",
        run.stderr
    );
}

/// A role dropped when this goes.
struct DropRole(String);

impl Drop for DropRole {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                "-X",
                "-q",
                &postgres::admin_url(),
                "-c",
                &format!("DROP ROLE IF EXISTS {}", self.0),
            ])
            .output();
    }
}

/// Guarantee 5 on PostgreSQL: `--into` with a role that may not create databases fails with a
/// generic "a query in PostgreSQL database postgres failed … restores need ownership of the
/// database" (exit 6); the table restore says what it needs (exit 1). `--into` should say that
/// it makes a new database and the role lacks CREATEDB.
#[test]
fn pg_into_without_createdb_says_it_makes_a_database_the_role_may_not() {
    if !postgres::server_up() {
        return;
    }
    let role = format!("faber_nocreate_{}", std::process::id());
    // Dropped last, after the database it owns.
    let _role = DropRole(role.clone());
    let db = PgDb::new("nocreate");
    postgres::psql(
        &postgres::admin_url(),
        &format!("DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN NOCREATEDB NOSUPERUSER"),
    );
    postgres::psql(
        &postgres::admin_url(),
        &format!("ALTER DATABASE {} OWNER TO {role}", db.name),
    );
    let mut url = url::Url::parse(&db.url()).unwrap();
    url.set_username(&role).unwrap();
    postgres::psql(
        url.as_str(),
        "CREATE TABLE t (id int); INSERT INTO t VALUES (1);",
    );
    let p = Project::with_config(
        "[defaults]\ncompression = \"gzip\"\n[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\n",
    )
    .with_var("DEV_DATABASE_URL", url.as_str());
    let id = p.backup(&["dev"]);
    let side = PgDb::unborn("ncside");
    let doc = p.json(&["restore", "dev", "--from", &id, "--into", &side.name], 1);
    let text = doc["error"].to_string();
    assert!(
        text.contains("--into") || text.contains("new database"),
        "{doc}"
    );
    assert!(text.contains("CREATEDB"), "{doc}");
}

/// Guarantee 1 on SQLite: with the database file gone (moved, or a wrong path), a table
/// restore makes a new database holding that one table and reports success ("no safety backup:
/// database does not exist yet"). Putting back some tables needs a database to put them into.
#[test]
fn sqlite_table_restore_into_a_missing_database_is_refused() {
    let p = Project::new();
    p.sqlite("db/dev.sqlite3")
        .execute_batch("CREATE TABLE a (x); INSERT INTO a VALUES (1); CREATE TABLE b (y);")
        .unwrap();
    let id = p.backup(&["dev"]);
    std::fs::remove_file(p.path("db/dev.sqlite3")).unwrap();
    let run = p.run(&["restore", "dev", "--from", &id, "--table", "a"]);
    assert_ne!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        !p.path("db/dev.sqlite3").exists(),
        "no database made with one table"
    );
}

/// Guarantee 5 on MySQL: a table restore behind a session that holds the table (an open
/// transaction that read it) must give up after a bounded wait, as PostgreSQL's does after 60 s
/// (exit 7, "stop the application"), and as MySQL's other restores do (`lock_wait_timeout =
/// 30`). The table restore sets no timeout: its DROP waits for the server's `lock_wait_timeout`
/// (a day here, a year by default) — while a first Ctrl-C is held back.
#[test]
fn mysql_table_restore_behind_an_open_transaction_gives_up_in_bounded_time() {
    if !mysql::server_up() {
        return;
    }
    let db = MyDb::new("mdl");
    db.exec("CREATE TABLE b (id int PRIMARY KEY); INSERT INTO b VALUES (1);");
    let p = mysql::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    let mut holder = Command::new("mysql")
        .args([
            "-h",
            "127.0.0.1",
            "-P",
            "3306",
            "-u",
            "root",
            &format!("--database={}", db.name),
        ])
        .args(["-e", "BEGIN; SELECT * FROM b; DO SLEEP(150);"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let holder_id = || {
        mysql::mysql(
            None,
            &format!(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = '{}' AND INFO LIKE 'DO SLEEP%'",
                db.name
            ),
        )
    };
    eventually(20, "the holder's transaction", || !holder_id().is_empty());
    let session = holder_id();
    let mut child = p
        .command(&["restore", "dev", "--from", &id, "--table", "b"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > Duration::from_secs(75) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if status.is_none() {
        signal(&child, libc::SIGKILL);
        let _ = child.wait();
    }
    let _ = mysql::mysql(None, &format!("KILL {session}"));
    let _ = holder.wait();
    let status = status.expect("the table restore still waits after 75 s");
    assert_eq!(status.code(), Some(7));
}

/// The `Undo with:` line after a table restore names only the tables the safety backup holds,
/// and runs; a table that did not exist before is said so (dropping it undoes it), never put in
/// a command that would fail.
#[test]
fn the_undo_command_of_a_table_restore_works_for_a_table_dropped_since() {
    let p = Project::new();
    p.sqlite("db/dev.sqlite3")
        .execute_batch(
            "CREATE TABLE keep (x); INSERT INTO keep VALUES (1); CREATE TABLE gone (y); INSERT INTO gone VALUES (1);",
        )
        .unwrap();
    let id = p.backup(&["dev"]);
    p.sqlite("db/dev.sqlite3")
        .execute_batch("DROP TABLE gone; INSERT INTO keep VALUES (2);")
        .unwrap();
    let run = p
        .run(&[
            "restore", "dev", "--from", &id, "--table", "gone", "--table", "keep",
        ])
        .code(0);
    assert!(
        run.stdout.contains("gone did not exist before"),
        "{}",
        run.stdout
    );
    let undo = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Undo with: "))
        .unwrap_or_else(|| panic!("no undo line: {}", run.stdout))
        .to_string();
    assert!(!undo.contains("gone"), "{undo}");
    let words: Vec<&str> = undo.split_whitespace().skip(1).collect();
    let again = p.run(&words);
    assert_eq!(
        again.code, 0,
        "`{undo}`:\n{}\n{}",
        again.stdout, again.stderr
    );
    let rows: i64 = p
        .sqlite("db/dev.sqlite3")
        .query_row("SELECT count(*) FROM keep", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 2, "undone: keep is as it was before the restore");
}

/// Guarantee 1 on SQLite: a view over a restored table that uses a column the backup's table
/// lacks (added since) is left broken ("no such column"), and the restore reports success.
/// PostgreSQL refuses the same restore (a view depends on the table), changing nothing.
#[test]
fn sqlite_table_restore_does_not_leave_a_view_broken() {
    let p = Project::new();
    p.sqlite("db/dev.sqlite3")
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    let id = p.backup(&["dev"]);
    p.sqlite("db/dev.sqlite3")
        .execute_batch("ALTER TABLE t ADD COLUMN extra; CREATE VIEW v AS SELECT extra FROM t;")
        .unwrap();
    let run = p.run(&["restore", "dev", "--from", &id, "--table", "t"]);
    let view_works = p
        .sqlite("db/dev.sqlite3")
        .prepare("SELECT * FROM v")
        .is_ok();
    assert!(
        view_works || run.code != 0,
        "exit {} and view v broken:\n{}\n{}",
        run.code,
        run.stdout,
        run.stderr
    );
}

/// Guarantee 1 on PostgreSQL: a table that a partitioned table's foreign key points at is put
/// back, the key made again. The key has a row in `pg_constraint` for the partitioned table and
/// one, inherited, for each partition: all of them are dropped and made again, where only the
/// partitioned table's should be (the partitions' go and come with it).
#[test]
fn pg_a_table_referenced_by_a_partitioned_tables_foreign_key_can_be_put_back() {
    if !postgres::server_up() {
        return;
    }
    let db = PgDb::new("fkpart");
    db.exec(
        "CREATE TABLE parents (id int PRIMARY KEY, name text); \
         INSERT INTO parents SELECT g, 'p' || g FROM generate_series(1, 10) g; \
         CREATE TABLE kids (at date NOT NULL, parent int REFERENCES parents (id)) PARTITION BY RANGE (at); \
         CREATE TABLE kids_2024 PARTITION OF kids FOR VALUES FROM ('2024-01-01') TO ('2025-01-01'); \
         INSERT INTO kids SELECT date '2024-01-01' + g, 1 + g % 10 FROM generate_series(0, 50) g;",
    );
    let p = postgres::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    let (data, shape) = (db.data(), db.schema());
    db.exec("UPDATE parents SET name = 'x'");
    let run = p.run(&["restore", "dev", "--from", &id, "--table", "parents"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(db.data(), data);
    assert_eq!(db.schema(), shape, "the foreign key is back as it was");
}

/// Guarantee 3 on MySQL: a restore --into is there "to look at old data or copy some rows back
/// by hand", but it brings the backup's events in ENABLED: with the event scheduler on, the
/// application's scheduled jobs run in the copy (a purge deletes the very rows one came for;
/// a job naming the live database by name writes to it). A whole restore's staging copy drops
/// its events for that reason; the new database's should at least be disabled.
#[test]
fn mysql_into_does_not_bring_the_backups_events_in_enabled() {
    if !mysql::server_up() {
        return;
    }
    let db = MyDb::new("events");
    db.exec(
        "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (200); \
         CREATE EVENT nightly_purge ON SCHEDULE EVERY 1 MINUTE DO DELETE FROM t WHERE id < 100;",
    );
    let p = mysql::project_with(&[("dev", &db)]);
    let id = p.backup(&["dev"]);
    let side = MyDb::unborn("eside");
    p.json(&["restore", "dev", "--from", &id, "--into", &side.name], 0);
    let enabled = mysql::mysql(
        None,
        &format!(
            "SELECT count(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = '{}' AND STATUS = 'ENABLED'",
            side.name
        ),
    );
    assert_eq!(enabled, "0", "the copy's events must not run");
}
