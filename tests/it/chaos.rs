//! Random kills (issue 16): backups, restores, cleanups, deletes and deep verifies of SQLite and
//! PostgreSQL killed at random moments — at a test point or after a random delay — each followed
//! by what a user would run next. After every kill: the registry parses, nothing in the backup
//! directory is unaccounted for, no valid backup was lost (but those a killed removal was
//! removing), every backup verifies, the database holds either what it held or what was being
//! restored, and a fresh backup and restore work.
//!
//! The seed is printed; `FABER_CHAOS_SEED=<n> cargo test --test it chaos` replays a run.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{BACKUPS, Project, dump_tables};

/// xorshift64*: enough randomness for choosing, and replayable from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[usize::try_from(self.below(items.len() as u64)).unwrap()]
    }
}

fn seed() -> u64 {
    std::env::var("FABER_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
                .try_into()
                .unwrap_or(u64::MAX)
                | 1
        })
}

/// The database under test, whichever provider it is.
trait Target {
    /// Its content, rendered exactly.
    fn content(&self) -> String;
    /// Adds a row, so that the next backup differs from the last.
    fn write(&self, n: u64);
    /// Scratch databases kept as the only copy of replaced data: a human's decision, made
    /// here after checking they hold `expected`. Returns how many there were.
    fn settle_replaced(&self, expected: &[String]) -> usize;
    /// After `doctor --repair`: no scratch database the ledger proved ours is left on the
    /// server. One killed between its creation and its marker cannot be proved ours and stays
    /// (the documented gap): the test drops those itself.
    fn no_scratch_left(&self) {}
}

struct Sqlite<'a>(&'a Project);

impl Target for Sqlite<'_> {
    fn content(&self) -> String {
        format!("{:?}", dump_tables(&self.0.sqlite("db/dev.sqlite3")))
    }
    fn write(&self, n: u64) {
        self.0
            .sqlite("db/dev.sqlite3")
            .execute("INSERT INTO t VALUES (?1)", [n.cast_signed()])
            .unwrap();
    }
    fn settle_replaced(&self, _: &[String]) -> usize {
        0
    }
}

struct Pg<'a>(&'a crate::postgres::PgDb);

impl Target for Pg<'_> {
    fn content(&self) -> String {
        self.0
            .exec("SELECT coalesce(string_agg(x::text, ',' ORDER BY x), '') FROM t")
    }
    fn write(&self, n: u64) {
        self.0.exec(&format!("INSERT INTO t VALUES ({n})"));
    }
    fn settle_replaced(&self, expected: &[String]) -> usize {
        let admin = crate::postgres::PgDb {
            name: "postgres".into(),
        };
        let names = admin.exec(&format!(
            "SELECT coalesce(string_agg(datname, ','), '') FROM pg_database \
             WHERE starts_with(datname, '{}__faber_old_')",
            self.0.name
        ));
        std::mem::forget(admin);
        let names: Vec<&str> = names.split(',').filter(|n| !n.is_empty()).collect();
        for name in &names {
            let kept = crate::postgres::PgDb {
                name: (*name).to_string(),
            };
            let held = kept.exec("SELECT coalesce(string_agg(x::text, ',' ORDER BY x), '') FROM t");
            assert!(
                expected.contains(&held),
                "the replaced data kept in {name} is what the database held: {held}"
            );
            drop(kept);
        }
        names.len()
    }

    fn no_scratch_left(&self) {
        let admin = crate::postgres::PgDb {
            name: "postgres".into(),
        };
        let left = admin.exec(&format!(
            "SELECT coalesce(string_agg(datname || '=' || coalesce(shobj_description(oid, 'pg_database'), ''), ','), '') \
             FROM pg_database WHERE starts_with(datname, '{}__faber_')",
            self.0.name
        ));
        std::mem::forget(admin);
        for item in left.split(',').filter(|i| !i.is_empty()) {
            let (name, comment) = item.split_once('=').unwrap();
            assert!(
                !comment.starts_with("faber-db scratch"),
                "{name} is marked as this project's and should have been dropped"
            );
            drop(crate::postgres::PgDb {
                name: name.to_string(),
            });
        }
    }
}

/// Where each kind of run can be stopped.
fn points(op: &str) -> &'static [&'static str] {
    match op {
        "backup" => &[
            "backup:after-reserve",
            "backup:before-publish",
            "backup:after-manifest",
            "backup:after-commit",
        ],
        "restore" => &["restore:before-commit", "restore:swapped"],
        "cleanup" => &[
            "cleanup:before-lock",
            "remove:after-tombstone",
            "remove:before-registry",
        ],
        "delete" => &["remove:after-tombstone", "remove:before-registry"],
        _ => &["verify:deep-loaded", "verify:after-one"],
    }
}

/// Runs `args`, killing it at test point `point` when it gets there, or after `delay`: whichever
/// comes first (it may also finish before either). Returns how it ended.
fn run_and_kill(p: &Project, args: &[&str], point: Option<&str>, delay: Duration) -> String {
    let marker = p.path("paused");
    let _ = std::fs::remove_file(&marker);
    let mut cmd = p.command(args);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    if let Some(point) = point {
        cmd.env("FABER_TEST_PAUSE_AT", point)
            .env("FABER_TEST_PAUSE_MARKER", &marker);
    }
    let mut child = cmd.spawn().unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return format!("finished ({status})");
        }
        let at_point = point.is_some() && marker.exists();
        if at_point || (point.is_none() && started.elapsed() >= delay) {
            // SAFETY: a signal to the child this test started, not yet waited for.
            unsafe { libc::kill(child.id().cast_signed(), libc::SIGKILL) };
            child.wait().unwrap();
            return if at_point {
                format!("killed at {}", point.unwrap())
            } else {
                format!("killed after {delay:?}")
            };
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{args:?} hung");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn valid_ids(backups_json: &std::path::Path) -> BTreeSet<String> {
    let Ok(text) = std::fs::read_to_string(backups_json) else {
        return BTreeSet::new();
    };
    let reg: Value = serde_json::from_str(&text).expect("the registry parses");
    reg["backups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["status"] == "valid")
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect()
}

/// `kills` random kills of runs against `target`'s environment `dev` of project `p`.
fn chaos(p: &Project, target: &dyn Target, rng: &mut Rng, kills: usize, pg: bool) {
    let registry = p.path(&format!("{BACKUPS}/backups.json"));
    // What each backup holds, to know what a restore may leave behind.
    let mut held = std::collections::BTreeMap::<String, String>::default();
    let id = p.backup(&["dev"]);
    held.insert(id, target.content());
    for n in 0..kills {
        target.write(1000 + n as u64);
        let before = valid_ids(&registry);
        let ids: Vec<String> = before.iter().cloned().collect();
        let mut op = *rng.pick(&["backup", "restore", "cleanup", "delete", "verify"]);
        if ids.is_empty() {
            op = "backup";
        }
        let victim = ids
            .get(usize::try_from(rng.below(ids.len().max(1) as u64)).unwrap())
            .cloned()
            .unwrap_or_default();
        let args: Vec<&str> = match op {
            "backup" => vec!["backup", "dev"],
            "restore" => vec!["restore", "dev", "--from", &victim, "--yes"],
            "cleanup" => vec!["cleanup", "dev", "--keep-last", "2", "--yes"],
            "delete" => vec!["delete", &victim, "--force", "--yes"],
            _ => vec!["verify", &victim, "--deep"],
        };
        let point = (rng.below(5) < 3).then(|| *rng.pick(points(op)));
        let delay = Duration::from_millis(rng.below(150));
        let content_before = target.content();
        let how = run_and_kill(p, &args, point, delay);
        let context = format!("kill {n}: {args:?} {how}");
        eprintln!("{context}");

        // The next run finishes or undoes what was left, and says what it did.
        let listed = p.run(&["--json", "list", "--all"]);
        assert_eq!(listed.code, 0, "{context}: {listed:?}");
        let after = valid_ids(&registry);
        let removing: BTreeSet<String> = match op {
            "delete" => [victim.clone()].into(),
            "cleanup" => before.clone(),
            _ => BTreeSet::new(),
        };
        let lost: Vec<&String> = before
            .iter()
            .filter(|id| !after.contains(*id) && !removing.contains(*id))
            .collect();
        assert!(lost.is_empty(), "{context}: valid backups lost: {lost:?}");
        // The database: as it was, or as the backup being restored holds it.
        let now = target.content();
        let mut allowed = vec![content_before.clone()];
        if op == "restore" {
            allowed.push(held[&victim].clone());
        }
        assert!(
            allowed.contains(&now),
            "{context}: the database is neither as it was nor as restored: {now}"
        );
        if pg {
            target.settle_replaced(std::slice::from_ref(&content_before));
        }
        let doctor = p.run(&["doctor"]);
        assert!(
            !doctor.stderr.contains("neither registered")
                && !doctor.stdout.contains("is gone")
                && !doctor.stdout.contains("with no registry entry")
                && !doctor.stdout.contains("the only copy"),
            "{context}: doctor finds debris: {doctor:?}"
        );
        let verify = p.run(&["verify", "--all"]);
        assert_eq!(verify.code, 0, "{context}: {verify:?}");
        // Remember what the backups registered meanwhile hold. An ID freed by a removal may be
        // given again to a later backup within the same second: forgotten with its backup.
        let now_valid = valid_ids(&registry);
        held.retain(|id, _| now_valid.contains(id));
        for id in now_valid {
            // Taken during this iteration: by the killed backup, or a restore's safety backup,
            // which hold the content before the restore.
            held.entry(id).or_insert_with(|| content_before.clone());
        }
    }
    // A fresh backup and restore work, and give back what was backed up.
    target.write(9999);
    let expected = target.content();
    let id = p.backup(&["dev"]);
    target.write(10000);
    p.run(&["restore", "dev", "--from", &id, "--yes"]).code(0);
    assert_eq!(target.content(), expected);
    if pg {
        target.settle_replaced(&[]);
    }
    p.run(&["doctor", "--repair"]);
    target.no_scratch_left();
}

#[test]
fn random_kills_lose_nothing_and_leave_nothing_behind() {
    let seed = seed();
    eprintln!("chaos seed: {seed} (replay with FABER_CHAOS_SEED={seed})");
    let mut rng = Rng(seed);
    let p = Project::with_config(
        "[defaults]\ncompression = \"zstd\"\n[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\n",
    )
    .seeded("db/dev.sqlite3");
    chaos(&p, &Sqlite(&p), &mut rng, 12, false);
    if !crate::postgres::server_up() {
        return;
    }
    let db = crate::postgres::PgDb::new("chaos");
    db.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1);");
    let p = Project::with_config(
        "[defaults]\ncompression = \"gzip\"\n[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\n",
    )
    .with_var("DEV_DATABASE_URL", &db.url());
    chaos(&p, &Pg(&db), &mut rng, 8, true);
}
