//! Off-site copies against a real S3-compatible server on 127.0.0.1: `s3s-fs`, which checks
//! SigV4 signatures and keeps each object as a plain file under its root (ROOT/BUCKET/KEY), so
//! the tests can read what was stored. `.ci/run` installs it (scripts/services.sh); a test skips
//! without it unless FABER_REQUIRE_SERVICES=1.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{BACKUPS, DEFAULT_CONFIG, Project, dump_tables, walk};
use crate::services;

const ACCESS_KEY: &str = "faber-test-access";
const SECRET_KEY: &str = "faber-test-secret-Zq8Vw3";
const BUCKET: &str = "faber-it";

/// One s3s-fs server of a test: its own port and root, stopped on drop.
struct S3Server {
    binary: PathBuf,
    root: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl S3Server {
    /// Starts a server with an empty bucket, or `None` (a skip) when s3s-fs is not installed.
    fn start() -> Option<S3Server> {
        let Some(binary) = find_binary() else {
            services::skip("s3s-fs is not installed (scripts/services.sh installs it)");
            return None;
        };
        let root = tempfile::Builder::new()
            .prefix("faber-s3-")
            .tempdir()
            .unwrap();
        fs::create_dir(root.path().join(BUCKET)).unwrap();
        let port = crate::harness::free_port();
        let mut server = S3Server {
            binary,
            root,
            port,
            child: None,
        };
        server.resume();
        Some(server)
    }

    /// (Re)starts the server on the same port and root.
    fn resume(&mut self) {
        let child = Command::new(&self.binary)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(self.root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs starts");
        self.child = Some(child);
        crate::harness::wait_listening(self.port, "s3s-fs", 20);
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The stored object `key` (below the bucket), as a file.
    fn object(&self, key: &str) -> PathBuf {
        self.root.path().join(BUCKET).join(key)
    }

    /// Every object key below `prefix/`, sorted.
    fn keys(&self, prefix: &str) -> Vec<String> {
        let base = self.root.path().join(BUCKET);
        let mut out = Vec::new();
        walk(&base, &base.join(prefix), &mut out);
        out.sort();
        out
    }

    /// A project whose dev environment is copied off-site under `team/`.
    fn project(&self) -> Project {
        let config = format!(
            "{}\n[storage.offsite]\nurl = \"s3://{BUCKET}/team\"\nendpoint = \"{}\"\n",
            dev_offsite(),
            self.endpoint()
        );
        Project::with_config(&config)
            .with_var("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .with_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .seeded("db/dev.sqlite3")
    }
}

/// Where off-site copies go in a test, and how the test reads what was stored: an S3 bucket,
/// or a directory (`file://`, a mounted share).
pub(crate) trait Remote {
    /// A project whose dev environment is copied off-site under `team/`.
    fn project(&self) -> Project;
    /// Every object key below `prefix/`, sorted.
    fn keys(&self, prefix: &str) -> Vec<String>;
    /// The URL the registry records for object `key`.
    fn url(&self, key: &str) -> String;
    /// The file the server keeps object `key` (`team/dev/…`) in, for a server that keeps
    /// objects as plain files; one that does not overrides the four methods below.
    fn path(&self, key: &str) -> PathBuf {
        unreachable!("{key}: this remote does not keep objects as files")
    }
    /// The bytes of object `key`, which must exist.
    fn read(&self, key: &str) -> Vec<u8> {
        fs::read(self.path(key)).unwrap()
    }
    /// Whether object `key` exists.
    fn exists(&self, key: &str) -> bool {
        self.path(key).is_file()
    }
    /// Stores `bytes` as object `key`, behind faber-db's back.
    fn write(&self, key: &str, bytes: &[u8]) {
        let path = self.path(key);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }
    /// Removes object `key`, behind faber-db's back.
    fn remove(&self, key: &str) {
        fs::remove_file(self.path(key)).unwrap();
    }
}

impl Remote for S3Server {
    fn project(&self) -> Project {
        S3Server::project(self)
    }
    fn path(&self, key: &str) -> PathBuf {
        S3Server::object(self, key)
    }
    fn keys(&self, prefix: &str) -> Vec<String> {
        S3Server::keys(self, prefix)
    }
    fn url(&self, key: &str) -> String {
        format!("s3://{BUCKET}/{key}")
    }
}

/// Off-site copies in a directory of the test's own: `file://ROOT/team`.
struct DirRemote {
    root: tempfile::TempDir,
}

impl DirRemote {
    fn new() -> DirRemote {
        let root = tempfile::Builder::new()
            .prefix("faber-nas-")
            .tempdir()
            .unwrap();
        fs::create_dir(root.path().join("team")).unwrap();
        DirRemote { root }
    }
}

impl Remote for DirRemote {
    fn project(&self) -> Project {
        let config = format!(
            "{}\n[storage.offsite]\nurl = \"file://{}/team\"\n",
            dev_offsite(),
            self.root.path().display()
        );
        Project::with_config(&config).seeded("db/dev.sqlite3")
    }
    fn path(&self, key: &str) -> PathBuf {
        self.root.path().join(key)
    }
    fn keys(&self, prefix: &str) -> Vec<String> {
        let base = self.root.path();
        let mut out = Vec::new();
        walk(base, &base.join(prefix), &mut out);
        out.retain(|k| !k.contains(".partial"));
        out.sort();
        out
    }
    fn url(&self, key: &str) -> String {
        let key = key.strip_prefix("team/").unwrap_or(key);
        format!("file://{}/team/{key}", self.root.path().display())
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The default test config with `offsite = true` in its dev environment.
fn dev_offsite() -> String {
    let config = DEFAULT_CONFIG.replace(
        "[environments.dev]\n",
        "[environments.dev]\noffsite = true\n",
    );
    assert_ne!(config, DEFAULT_CONFIG);
    config
}

fn find_binary() -> Option<PathBuf> {
    if let Ok(p) = which::which("s3s-fs") {
        return Some(p);
    }
    let home = std::env::var_os("HOME")?;
    let p = Path::new(&home).join(".cargo/bin/s3s-fs");
    p.is_file().then_some(p)
}

fn entry(p: &Project, id: &str) -> serde_json::Value {
    p.backups().into_iter().find(|b| b["id"] == id).unwrap()
}

#[test]
fn a_backup_goes_off_site_and_comes_back_when_the_local_file_is_gone() {
    if let Some(s3) = S3Server::start() {
        a_backup_goes_off_site_and_comes_back_when_the_local_file_is_gone_on(&s3);
    }
}

#[test]
fn a_backup_goes_off_site_and_comes_back_when_the_local_file_is_gone_in_a_directory() {
    a_backup_goes_off_site_and_comes_back_when_the_local_file_is_gone_on(&DirRemote::new());
}

pub(crate) fn a_backup_goes_off_site_and_comes_back_when_the_local_file_is_gone_on(
    s3: &dyn Remote,
) {
    let p = s3.project();
    p.sqlite("db/dev.sqlite3")
        .execute_batch("INSERT INTO t SELECT x + 1 FROM t; INSERT INTO t VALUES ('marker');")
        .unwrap();
    let before = dump_tables(&p.sqlite("db/dev.sqlite3"));

    let id = p.backup(&["dev"]);
    let local = p.data_file(&id);
    let name = local.file_name().unwrap().to_str().unwrap().to_string();
    // The object holds the very bytes of the local file, and the manifest is beside it.
    assert_eq!(
        s3.read(&format!("team/dev/{name}")),
        fs::read(&local).unwrap()
    );
    assert!(s3.exists(&format!("team/dev/{id}.manifest.json")));
    let e = entry(&p, &id);
    assert_eq!(e["remote"]["status"], "uploaded");
    assert_eq!(e["remote"]["url"], s3.url(&format!("team/dev/{name}")));
    assert_eq!(e["remote"]["sha256"], e["sha256"]);
    assert_eq!(e["remote"]["size_bytes"], e["size_bytes"]);
    // The manifest beside the local file says the same.
    let manifest: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(p.path(&format!("{BACKUPS}/dev/{id}.manifest.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["remote"], e["remote"]);
    p.run(&["list"])
        .code(0)
        .stdout_has("WHERE")
        .stdout_has("both");

    // The local copy is lost: list says where the backup still is, and restore fetches it.
    fs::remove_file(&local).unwrap();
    p.run(&["list"]).code(0).stdout_has("remote");
    p.sqlite("db/dev.sqlite3")
        .execute_batch("DELETE FROM t;")
        .unwrap();
    p.run(&["-y", "restore", "dev", "--from", &id])
        .code(0)
        .stdout_has("Fetched");
    assert_eq!(dump_tables(&p.sqlite("db/dev.sqlite3")), before);
    assert!(local.is_file(), "the fetched file stays in place");

    // verify fetches too, and a fetched copy checks out.
    fs::remove_file(&local).unwrap();
    let doc = p.json(&["verify", &id], 0);
    assert_eq!(doc["results"][0]["status"], "valid", "{doc}");
    assert!(local.is_file());
}

#[test]
fn a_damaged_remote_copy_is_refused_and_nothing_is_left_behind() {
    if let Some(s3) = S3Server::start() {
        a_damaged_remote_copy_is_refused_and_nothing_is_left_behind_on(&s3);
    }
}

#[test]
fn a_damaged_remote_copy_is_refused_and_nothing_is_left_behind_in_a_directory() {
    a_damaged_remote_copy_is_refused_and_nothing_is_left_behind_on(&DirRemote::new());
}

pub(crate) fn a_damaged_remote_copy_is_refused_and_nothing_is_left_behind_on(s3: &dyn Remote) {
    let p = s3.project();
    let id = p.backup(&["dev"]);
    let local = p.data_file(&id);
    let name = local.file_name().unwrap().to_str().unwrap().to_string();
    let object = format!("team/dev/{name}");
    let mut bytes = s3.read(&object);
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    s3.write(&object, &bytes);
    fs::remove_file(&local).unwrap();

    p.run(&["-y", "restore", "dev", "--from", &id, "--no-safety-backup"])
        .code(5)
        .stderr_has("does not match the SHA-256");
    assert!(!local.exists(), "no damaged file takes the backup's place");
    let leftovers: Vec<String> = p
        .backup_files()
        .into_iter()
        .filter(|f| f.contains(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn an_upload_failure_keeps_the_local_backup_and_push_finishes_it_later() {
    let Some(mut s3) = S3Server::start() else {
        return;
    };
    let p = s3.project();
    s3.stop();

    let run = p
        .run(&["backup", "dev"])
        .code(6)
        .stderr_has("off-site copy failed")
        .stderr_has("faber-db push");
    assert!(!run.stderr.contains(SECRET_KEY));
    let ids = p.ids();
    assert_eq!(ids.len(), 1, "the local backup is registered");
    let id = &ids[0];
    let e = entry(&p, id);
    assert_eq!(e["status"], "valid");
    assert_eq!(e["remote"]["status"], "failed");
    assert!(e["remote"]["error"].as_str().unwrap().contains("upload"));
    assert!(p.data_file(id).is_file());
    p.run(&["verify", id]).code(0);
    p.run(&["list"]).code(0).stdout_has("upload failed");

    // --json reports the failure as one document with exit 6.
    let doc = p.json(&["backup", "dev"], 6);
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["error"]["code"], 6);

    s3.resume();
    let doc = p.json(&["push"], 0);
    assert_eq!(doc["pushed"].as_array().unwrap().len(), 2, "{doc}");
    for id in p.ids() {
        let e = entry(&p, &id);
        assert_eq!(e["remote"]["status"], "uploaded", "{e}");
        let name = p
            .data_file(&id)
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(
            fs::read(s3.object(&format!("team/dev/{name}"))).unwrap(),
            fs::read(p.data_file(&id)).unwrap()
        );
    }
    p.run(&["push"])
        .code(0)
        .stdout_has("Nothing to push: every valid backup of the environments with offsite on");

    // Nothing secret was written anywhere.
    for f in p.backup_files() {
        let text = fs::read(p.path(&format!("{BACKUPS}/{f}"))).unwrap();
        assert!(
            !String::from_utf8_lossy(&text).contains(SECRET_KEY),
            "{f} holds the secret key"
        );
    }
}

#[test]
fn cleanup_and_delete_remove_the_off_site_copies_and_list_remote_shows_strays() {
    if let Some(s3) = S3Server::start() {
        cleanup_and_delete_remove_the_off_site_copies_and_list_remote_shows_strays_on(&s3);
    }
}

#[test]
fn cleanup_and_delete_remove_the_off_site_copies_and_list_remote_shows_strays_in_a_directory() {
    cleanup_and_delete_remove_the_off_site_copies_and_list_remote_shows_strays_on(&DirRemote::new());
}

pub(crate) fn cleanup_and_delete_remove_the_off_site_copies_and_list_remote_shows_strays_on(
    s3: &dyn Remote,
) {
    let mut p = s3.project();
    let mut ids = Vec::new();
    for day in ["2026-01-01", "2026-01-02", "2026-01-03"] {
        p.at(&format!("{day}T10:00:00Z"));
        ids.push(p.backup(&["dev"]));
    }
    assert_eq!(s3.keys("team/dev").len(), 6, "{:?}", s3.keys("team/dev"));
    s3.write("team/dev/stray.bin", b"not ours");

    let doc = p.json(&["list", "--remote"], 0);
    assert_eq!(doc["unknown"], 1);
    let stray: Vec<_> = doc["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["backup"].is_null())
        .collect();
    assert_eq!(stray.len(), 1);
    assert_eq!(stray[0]["name"], "dev/stray.bin");

    // The dry run names the remote deletions and changes nothing.
    let doc = p.json(&["cleanup", "--keep-last", "1", "--dry-run"], 0);
    let removed = doc["removed"].as_array().unwrap();
    assert_eq!(removed.len(), 2);
    assert!(removed.iter().all(|r| {
        r["remote_url"]
            .as_str()
            .unwrap()
            .starts_with(&s3.url("team/dev/"))
    }));
    assert_eq!(s3.keys("team/dev").len(), 7);

    p.run(&["-y", "cleanup", "--keep-last", "1"])
        .code(0)
        .stdout_has("Removed off-site copy");
    let left = s3.keys("team/dev");
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(
        left.iter()
            .all(|k| k.contains(&ids[2]) || k.ends_with("stray.bin"))
    );

    // The newest valid backup stays whatever the rule; delete takes its remote copy with it.
    p.run(&["-y", "delete", &ids[2], "--force"]).code(0);
    assert_eq!(s3.keys("team/dev"), vec!["team/dev/stray.bin".to_string()]);
}

#[test]
fn offsite_settings_are_checked_and_credentials_come_only_from_the_environment() {
    // offsite = true needs storage.
    let p =
        Project::with_config(&format!("{DEFAULT_CONFIG}offsite = true\n")).seeded("db/dev.sqlite3");
    p.run(&["backup", "dev"])
        .code(1)
        .stderr_has("no [storage.offsite] is configured");
    // A key in the config file is refused, not used.
    let p = Project::with_config(&format!(
        "{DEFAULT_CONFIG}\n[storage.offsite]\nurl = \"s3://bucket-x/p\"\nsecret_access_key = \"x\"\n"
    ));
    p.run(&["list"]).code(1).stderr_has("secret_access_key");
    // Not an s3:// URL.
    let p = Project::with_config(&format!(
        "{DEFAULT_CONFIG}\n[storage.offsite]\nurl = \"https://bucket-x/p\"\n"
    ));
    p.run(&["list"]).code(1).stderr_has("is not an s3:// URL");
    // A directory must be named absolutely and plainly, without the bucket's settings; an
    // Azure container by Azure's rules, with an account name (not a key) and no S3 settings.
    for (url, extra, said) in [
        ("file://mnt/nas", "", "absolute directory"),
        ("file:///mnt/../etc", "", "no empty"),
        (
            "file:///mnt/nas",
            "endpoint = \"http://x\"\n",
            "for s3:// and az:// URLs",
        ),
        ("az://Backups/p", "", "not a container name"),
        ("az://back--ups/p", "", "not a container name"),
        ("az://backups/p", "region = \"eu\"\n", "not az://"),
        (
            "az://backups/p",
            "account = \"Acme_Key==\"\n",
            "not a storage account",
        ),
        ("az://backups/p", "account_key = \"x\"\n", "account_key"),
        ("s3://backups/p", "account = \"acme\"\n", "for az:// URLs"),
        (
            "az://backups/team?sv=1&sig=SECRETSIG",
            "",
            "no query string",
        ),
        ("s3://backups/a~b", "", "may hold only"),
    ] {
        let p = Project::with_config(&format!(
            "{DEFAULT_CONFIG}\n[storage.offsite]\nurl = \"{url}\"\n{extra}"
        ));
        p.run(&["list"])
            .code(1)
            .stderr_has(said)
            .stderr_lacks("SECRETSIG");
    }
    // An unmounted share (its directory absent) is an error, never a copy on the local disk.
    let gone = tempfile::tempdir().unwrap();
    let share = gone.path().join("faber");
    let p = Project::with_config(&format!(
        "{}\n[storage.offsite]\nurl = \"file://{}\"\n",
        dev_offsite(),
        share.display()
    ))
    .seeded("db/dev.sqlite3");
    let run = p.run(&["backup", "dev"]).code(6);
    assert!(run.stderr.contains("does not exist"), "{}", run.stderr);
    assert!(!share.exists(), "the share's directory is never made");
    assert_eq!(p.backups().len(), 1, "the local backup is kept");
    // Protected environments go off-site by default once storage is configured; push with no
    // credentials anywhere says where they come from.
    let p = Project::with_config(&format!(
        "{DEFAULT_CONFIG}\n[storage.offsite]\nurl = \"s3://bucket-x/p\"\nendpoint = \"http://127.0.0.1:9\"\n"
    ))
    .with_var("HOME", "/nonexistent")
    .seeded("db/prod.sqlite3");
    let run = p.run(&["-y", "backup", "production"]).code(6);
    assert!(run.stderr.contains("AWS_ACCESS_KEY_ID"), "{}", run.stderr);
    assert_eq!(p.backups().len(), 1, "the local backup is kept");
    p.run(&["push"]).code(1).stderr_has("no AWS credentials");
}

#[test]
fn a_large_backup_goes_up_in_parts_and_comes_back_whole() {
    if let Some(s3) = S3Server::start() {
        a_large_backup_goes_up_in_parts_and_comes_back_whole_on(&s3);
    }
}

pub(crate) fn a_large_backup_goes_up_in_parts_and_comes_back_whole_on(s3: &dyn Remote) {
    let p = s3.project();
    // About 12 MiB of incompressible rows: more than one 8 MiB part.
    p.sqlite("db/dev.sqlite3")
        .execute_batch(
            "CREATE TABLE blobs (b BLOB);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 12000)
             INSERT INTO blobs SELECT randomblob(1000) FROM n;",
        )
        .unwrap();
    let before = dump_tables(&p.sqlite("db/dev.sqlite3"));
    let id = p.backup(&["dev", "--compression", "none"]);
    let local = p.data_file(&id);
    assert!(fs::metadata(&local).unwrap().len() > 10 << 20);
    let name = local.file_name().unwrap().to_str().unwrap().to_string();
    assert_eq!(
        s3.read(&format!("team/dev/{name}")),
        fs::read(&local).unwrap()
    );
    fs::remove_file(&local).unwrap();
    p.sqlite("db/dev.sqlite3")
        .execute_batch("DELETE FROM blobs;")
        .unwrap();
    p.run(&["-y", "restore", "dev", "--from", &id, "--no-safety-backup"])
        .code(0)
        .stdout_has("Fetched");
    assert_eq!(dump_tables(&p.sqlite("db/dev.sqlite3")), before);

    // Ctrl-C during an upload: exit 8 (interrupted), the local backup registered and valid, its
    // off-site copy recorded as failed and not left half-written in the bucket.
    p.sqlite("db/dev.sqlite3")
        .execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 12000)
             INSERT INTO blobs SELECT randomblob(1000) FROM n;",
        )
        .unwrap();
    let out = p
        .paused_at(
            &["--json", "backup", "dev", "--compression", "none"],
            "upload:part",
        )
        .signal(libc::SIGINT);
    assert_eq!(
        out.status.code(),
        Some(8),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"]["kind"], "aborted", "{doc}");
    let interrupted = doc["backup"]["id"].as_str().unwrap().to_string();
    let e = entry(&p, &interrupted);
    assert_eq!(e["status"], "valid");
    assert_eq!(e["remote"]["status"], "failed");
    let name = p
        .data_file(&interrupted)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        !s3.keys("team/dev").iter().any(|k| k.ends_with(&name)),
        "{:?}",
        s3.keys("team/dev")
    );
    p.run(&["push", &interrupted]).code(0);
}

#[test]
fn doctor_checks_the_off_site_storage() {
    let Some(mut s3) = S3Server::start() else {
        return;
    };
    let p = s3.project().seeded("db/prod.sqlite3");
    p.run(&["doctor"]).code(0).stdout_has(&format!(
        "off-site storage: s3://{BUCKET}/team reachable, 0 objects"
    ));
    s3.stop();
    let run = p.run(&["doctor"]);
    assert_ne!(run.code, 0);
    let doc = p.json(&["doctor"], run.code);
    let finding = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "off-site storage")
        .cloned()
        .unwrap();
    assert_eq!(finding["level"], "problem");
    assert!(!doc.to_string().contains(SECRET_KEY));
}

#[test]
fn a_lost_or_rotten_copy_never_replaces_a_good_one() {
    if let Some(s3) = S3Server::start() {
        a_lost_or_rotten_copy_never_replaces_a_good_one_on(&s3);
    }
}

#[test]
fn a_lost_or_rotten_copy_never_replaces_a_good_one_in_a_directory() {
    a_lost_or_rotten_copy_never_replaces_a_good_one_on(&DirRemote::new());
}

pub(crate) fn a_lost_or_rotten_copy_never_replaces_a_good_one_on(s3: &dyn Remote) {
    let mut p = s3.project();
    p.at("2026-02-01T10:00:00Z");
    let older = p.backup(&["dev"]);
    p.at("2026-02-02T10:00:00Z");
    let newer = p.backup(&["dev"]);
    let name = |id: &str| {
        let f = p.data_file(id);
        format!("team/dev/{}", f.file_name().unwrap().to_str().unwrap())
    };

    // The local file of `older` rots: pushing it again is refused before anything is sent,
    // and the good off-site copy and its record stay.
    let good = s3.read(&name(&older));
    let mut rotten = fs::read(p.data_file(&older)).unwrap();
    rotten[10] ^= 0x01;
    fs::write(p.data_file(&older), rotten).unwrap();
    p.run(&["push", &older]).code(6);
    assert_eq!(s3.read(&name(&older)), good);
    assert_eq!(entry(&p, &older)["remote"]["status"], "uploaded");

    // `newer` is lost here and off-site: restoring it fails, marks it missing with its
    // off-site copy failed, and `latest` then falls back to `older` (fetched whole from the
    // bucket, since its local file is bad).
    fs::remove_file(p.data_file(&newer)).unwrap();
    s3.remove(&name(&newer));
    p.run(&[
        "-y",
        "restore",
        "dev",
        "--from",
        &newer,
        "--no-safety-backup",
    ])
    .code(5)
    .stderr_has("does not exist");
    let e = entry(&p, &newer);
    assert_eq!(e["status"], "missing");
    assert_eq!(e["remote"]["status"], "failed");
    // The floor now protects `older`: cleanup keeps it.
    let doc = p.json(&["cleanup", "--keep-last", "1", "--dry-run"], 0);
    let removed: Vec<&str> = crate::harness::ids_in(&doc, "removed");
    assert!(!removed.contains(&older.as_str()), "{doc}");

    // Restoring `older`, whose local copy rotted — found by verify first, which marks it
    // corrupt: named, its off-site copy replaces it, checked first.
    p.run(&["verify", &older]).code(5);
    assert_eq!(entry(&p, &older)["status"], "corrupt");
    let restore_older = || {
        p.run(&[
            "-y",
            "restore",
            "dev",
            "--from",
            &older,
            "--no-safety-backup",
        ])
    };
    restore_older()
        .code(0)
        .stderr_has("fetching its off-site copy");
    assert_eq!(fs::read(p.data_file(&older)).unwrap(), good);
    assert_eq!(entry(&p, &older)["status"], "valid");
    p.run(&["verify", &older]).code(0);
    // Rotten in both places: refused, marked corrupt, nothing restored.
    let mut rotten = good.clone();
    rotten[10] ^= 0x01;
    fs::write(p.data_file(&older), &rotten).unwrap();
    s3.write(&name(&older), &rotten);
    restore_older().code(5).stderr_has("cannot be used either");
    let e = entry(&p, &older);
    assert_eq!(e["status"], "corrupt");
    assert_eq!(e["remote"]["status"], "failed");
    assert_eq!(fs::read(p.data_file(&older)).unwrap(), rotten);
}

#[test]
fn safety_backups_stay_local_until_push_and_no_token_leaks_on_a_refused_signature() {
    let Some(s3) = S3Server::start() else { return };
    let p = s3.project();
    let id = p.backup(&["dev"]);
    p.run(&["-y", "restore", "dev", "--from", &id]).code(0);
    let safety: Vec<serde_json::Value> = p
        .backups()
        .into_iter()
        .filter(|b| b["reason"] == "pre-restore")
        .collect();
    assert_eq!(safety.len(), 1);
    assert!(safety[0]["remote"].is_null(), "{}", safety[0]);
    let doc = p.json(&["push"], 0);
    assert_eq!(doc["pushed"].as_array().unwrap().len(), 1);
    assert_eq!(doc["pushed"][0]["id"], safety[0]["id"]);

    // Wrong secret, with a session token: the server refuses the signature, and neither the
    // token nor the secret appears in any output or file.
    let token = "FaberSessionToken-9f8e7d6c";
    let wrong = p
        .with_var("AWS_SECRET_ACCESS_KEY", "wrong-secret-0123456789")
        .with_var("AWS_SESSION_TOKEN", token);
    let run = wrong.run(&["backup", "dev"]).code(6);
    let doc = wrong.json(&["backup", "dev"], 6);
    assert_eq!(doc["backup"]["remote"]["status"], "failed", "{doc}");
    let mut seen = format!("{}{}{doc}", run.stdout, run.stderr);
    for f in wrong.backup_files() {
        seen.push_str(&String::from_utf8_lossy(
            &fs::read(wrong.path(&format!("{BACKUPS}/{f}"))).unwrap(),
        ));
    }
    for secret in [token, "wrong-secret-0123456789", SECRET_KEY] {
        assert!(!seen.contains(secret), "{secret} was shown or stored");
    }
}

#[test]
fn a_postgres_directory_dump_goes_off_site_file_by_file_and_comes_back() {
    use crate::postgres::{PgDb, SCHEMA, server_up};
    if !server_up() {
        return;
    }
    let Some(s3) = S3Server::start() else { return };
    let source = PgDb::new("offsite");
    source.exec(SCHEMA);
    let config = format!(
        "[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\noffsite = true\n\n\
         [storage.offsite]\nurl = \"s3://{BUCKET}/team\"\nendpoint = \"{}\"\n",
        s3.endpoint()
    );
    let p = Project::with_config(&config)
        .with_var("DEV_DATABASE_URL", &source.url())
        .with_var("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .with_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    let doc = p.json(&["backup", "dev", "--format", "directory"], 0);
    let b = &doc["backup"];
    let id = b["id"].as_str().unwrap().to_string();
    let files = b["files"].as_array().unwrap();
    assert!(files.len() > 2, "{b}");
    let dir = p.data_file(&id);
    let dir_name = dir.file_name().unwrap().to_str().unwrap().to_string();
    // Every file of the dump is an object of its own, with the same bytes.
    for f in files {
        let name = f["name"].as_str().unwrap();
        assert_eq!(
            fs::read(s3.object(&format!("team/dev/{dir_name}/{name}"))).unwrap(),
            fs::read(dir.join(name)).unwrap(),
            "{name}"
        );
    }
    let before = source.data();
    // The directory is lost here: restore fetches it file by file, each checked.
    fs::remove_dir_all(&dir).unwrap();
    source.exec("DELETE FROM events;");
    p.run(&["-y", "restore", "dev", "--from", &id, "--no-safety-backup"])
        .code(0)
        .stdout_has("Fetched");
    assert_eq!(source.data(), before);
    // One file of the directory rots here: the restore fetches the whole dump again, checked,
    // in the damaged directory's place.
    let toc = dir.join("toc.dat");
    let mut bytes = fs::read(&toc).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    fs::write(&toc, bytes).unwrap();
    source.exec("DELETE FROM events;");
    p.run(&["-y", "restore", "dev", "--from", &id, "--no-safety-backup"])
        .code(0)
        .stderr_has("fetching its off-site copy");
    assert_eq!(source.data(), before);
    p.run(&["verify", &id]).code(0);
    // Delete takes every object with it.
    p.run(&["-y", "delete", &id, "--force"]).code(0);
    assert!(s3.keys("team/dev").is_empty(), "{:?}", s3.keys("team/dev"));
}

#[test]
fn after_the_disk_is_lost_pull_registers_the_off_site_backups_and_restore_fetches_them() {
    if let Some(s3) = S3Server::start() {
        after_the_disk_is_lost_pull_registers_the_off_site_backups_and_restore_fetches_them_on(&s3);
    }
}

#[test]
fn after_the_disk_is_lost_pull_registers_the_off_site_backups_and_restore_fetches_them_in_a_directory()
 {
    after_the_disk_is_lost_pull_registers_the_off_site_backups_and_restore_fetches_them_on(
        &DirRemote::new(),
    );
}

pub(crate) fn after_the_disk_is_lost_pull_registers_the_off_site_backups_and_restore_fetches_them_on(
    s3: &dyn Remote,
) {
    let mut p = s3.project().seeded("db/prod.sqlite3");
    p.sqlite("db/dev.sqlite3")
        .execute_batch("INSERT INTO t VALUES ('before the loss');")
        .unwrap();
    let before = dump_tables(&p.sqlite("db/dev.sqlite3"));
    p.at("2026-03-01T10:00:00Z");
    let first = p.backup(&["dev"]);
    p.at("2026-03-02T10:00:00Z");
    let second = p.backup(&["dev"]);
    // A manifest that does not parse is reported and skipped, never registered.
    s3.write(
        "team/dev/backup-20260303-100000.manifest.json",
        b"{ not a manifest",
    );

    // The whole backup directory is gone: registry, files, manifests.
    fs::remove_dir_all(p.path(BACKUPS)).unwrap();
    p.run(&["list"]).code(0).stdout_has("No backups yet");
    let doc = p.json(&["pull"], 0);
    let registered: Vec<&str> = doc["registered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(registered, vec![first.as_str(), second.as_str()], "{doc}");
    assert_eq!(doc["skipped"].as_array().unwrap().len(), 1, "{doc}");
    p.run(&["list"]).code(0).stdout_has("remote");
    p.run(&["doctor"]).code(0);
    // A second pull finds nothing new.
    assert!(
        p.json(&["pull"], 0)["registered"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    p.sqlite("db/dev.sqlite3")
        .execute_batch("DELETE FROM t;")
        .unwrap();
    p.run(&[
        "-y",
        "restore",
        "dev",
        "--from",
        "latest",
        "--no-safety-backup",
    ])
    .code(0)
    .stdout_has("Fetched");
    assert_eq!(dump_tables(&p.sqlite("db/dev.sqlite3")), before);
    p.run(&["verify", "--all"]).code(0);

    // `pull --fetch` brings the data of every backup back at once, each checked.
    for id in [&first, &second] {
        let _ = fs::remove_file(p.data_file(id));
    }
    let doc = p.json(&["pull", "--fetch"], 0);
    assert!(doc["registered"].as_array().unwrap().is_empty(), "{doc}");
    let mut fetched: Vec<&str> = doc["fetched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    fetched.sort_unstable();
    assert_eq!(fetched, vec![first.as_str(), second.as_str()], "{doc}");
    for id in [&first, &second] {
        assert!(p.data_file(id).is_file());
    }
    p.run(&["verify", "--all"]).code(0).stdout_lacks("Fetched");
    // One damaged off-site and gone here: the others come, the failure is exit 5.
    fs::remove_file(p.data_file(&second)).unwrap();
    let object = format!(
        "team/dev/{}",
        p.data_file(&second).file_name().unwrap().to_str().unwrap()
    );
    let mut bytes = s3.read(&object);
    bytes[20] ^= 0x01;
    s3.write(&object, &bytes);
    let doc = p.json(&["pull", "--fetch"], 5);
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not every backup"),
        "{doc}"
    );
    assert_eq!(entry(&p, &second)["status"], "missing");
}

#[test]
fn a_killed_fetch_is_never_taken_for_the_backup() {
    let Some(s3) = S3Server::start() else { return };
    let p = s3.project();
    let id = p.backup(&["dev"]);
    let data = p.data_file(&id);
    let good = fs::read(&data).unwrap();
    fs::remove_file(&data).unwrap();
    // Killed in the middle of fetching it back: what it wrote is a `.fetch.partial`, which the
    // next run removes rather than finishing it as the backup.
    p.paused_at(&["verify", &id], "fetch:during")
        .signal(libc::SIGKILL);
    let mut fetching = data.clone().into_os_string();
    fetching.push(".fetch.partial");
    let fetching = std::path::PathBuf::from(fetching);
    assert!(fetching.exists());
    p.run(&["list"]).code(0);
    assert!(!fetching.exists());
    assert!(!data.exists());
    // Fetched whole the next time.
    p.run(&["verify", &id]).code(0).stdout_has("Fetched");
    assert_eq!(fs::read(&data).unwrap(), good);
}

#[test]
fn a_manifest_planted_off_site_never_writes_outside_the_backup_directory() {
    let Some(s3) = S3Server::start() else { return };
    let p = s3.project();
    let id = p.backup(&["dev"]);
    let data = fs::read(p.data_file(&id)).unwrap();
    let name = p
        .data_file(&id)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let suffix = name.strip_prefix(&id).unwrap().to_string();
    let outside = p.path("outside");
    fs::create_dir(&outside).unwrap();
    let victim = outside.join("victim.txt");
    fs::write(&victim, "precious").unwrap();
    // Someone who may write to the bucket plants backups whose manifests name files on the host
    // that restores: a file of its own, and a path named like the backup's data.
    let plant = |planted: &str, file: String, object: &str| {
        let mut manifest = entry(&p, &id);
        manifest["id"] = serde_json::Value::from(planted);
        manifest["file"] = serde_json::Value::from(file);
        manifest.as_object_mut().unwrap().remove("remote");
        fs::write(s3.object(&format!("team/dev/{object}")), &data).unwrap();
        fs::write(
            s3.object(&format!("team/dev/{planted}.manifest.json")),
            serde_json::to_vec_pretty(&manifest).unwrap(),
        )
        .unwrap();
    };
    let first = "backup-20200101-000000";
    plant(first, victim.display().to_string(), "victim.txt");
    let second = "backup-20200101-000001";
    let elsewhere = outside.join(format!("{second}{suffix}"));
    plant(
        second,
        elsewhere.display().to_string(),
        &format!("{second}{suffix}"),
    );
    let third = "backup-20200101-000002";
    plant(
        third,
        format!("../../../../outside/{third}{suffix}"),
        &format!("{third}{suffix}"),
    );

    let doc = p.json(&["pull"], 0);
    let registered: Vec<&str> = doc["registered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(!registered.contains(&first), "{doc}");
    assert!(
        doc["skipped"].to_string().contains(first),
        "said why it is not registered: {doc}"
    );
    p.run(&["-y", "restore", "dev", "--from", first])
        .code(1)
        .stderr_has("no backup");
    // Named like data, they come back into the environment's directory here, nowhere else.
    for planted in [second, third] {
        p.run(&[
            "-y",
            "restore",
            "dev",
            "--from",
            planted,
            "--no-safety-backup",
        ])
        .code(0);
        assert!(
            p.data_file(planted)
                .starts_with(p.path(BACKUPS).join("dev"))
        );
    }
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    let outside_now: Vec<_> = fs::read_dir(&outside).unwrap().flatten().collect();
    assert_eq!(outside_now.len(), 1, "{outside_now:?}");
}

#[test]
fn a_removal_whose_off_site_copy_could_not_go_is_finished_later_and_never_pulled_back() {
    let Some(mut s3) = S3Server::start() else {
        return;
    };
    let mut p = s3.project().seeded("db/prod.sqlite3");
    p.at("2026-01-01T10:00:00Z");
    let old = p.backup(&["dev"]);
    p.at("2026-01-02T10:00:00Z");
    let newer = p.backup(&["dev"]);
    s3.stop();
    // The local copy and the entry go; the off-site copy cannot, and is remembered.
    p.run(&["-y", "delete", &old])
        .code(1)
        .stderr_has("off-site copy of");
    assert_eq!(p.ids(), vec![newer.clone()]);
    s3.resume();
    assert!(s3.keys("team/dev").iter().any(|k| k.contains(&old)));
    // A pull does not bring back what is being removed; doctor says what is left.
    let doc = p.json(&["pull"], 0);
    assert!(doc["registered"].as_array().unwrap().is_empty(), "{doc}");
    p.run(&["doctor"])
        .code(0)
        .stderr_has("its off-site copy is still to be removed");
    // The next removal finishes it.
    p.run(&["-y", "cleanup", "--expired"]).code(0);
    assert!(
        s3.keys("team/dev").iter().all(|k| !k.contains(&old)),
        "{:?}",
        s3.keys("team/dev")
    );
    p.run(&["doctor"])
        .code(0)
        .stderr_lacks("still to be removed");
    assert!(
        p.json(&["pull"], 0)["registered"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn verify_all_says_an_off_site_backup_removed_meanwhile_was_removed_not_missing() {
    let Some(s3) = S3Server::start() else { return };
    let p = s3.project();
    let old = p.backup(&["dev", "--label", "old"]);
    let newer = p.backup(&["dev", "--label", "newer"]);
    // Paused after checking the newest, before the older one; a cleanup then removes the older
    // one here and off-site.
    let verify = p.paused_at(&["--json", "verify", "--all"], "verify:after-one");
    p.run(&["-y", "cleanup", "--keep-last", "1"]).code(0);
    assert!(s3.keys("team/dev").iter().all(|k| !k.contains(&old)));
    let out = verify.resume();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{doc}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results[0]["id"], newer.as_str());
    assert_eq!(results[1]["id"], old.as_str());
    assert_eq!(results[1]["removed"], true, "{doc}");
}

#[test]
fn an_entry_whose_off_site_url_names_other_objects_never_removes_them() {
    let Some(s3) = S3Server::start() else { return };
    let p = s3.project();
    let old = p.backup(&["dev", "--label", "old"]);
    let _newer = p.backup(&["dev", "--label", "newer"]);
    // Another team's objects in the same bucket, under a prefix of their own.
    fs::create_dir_all(s3.object("other-team/prod")).unwrap();
    fs::write(s3.object("other-team/prod/precious.tar"), "theirs").unwrap();
    fs::write(
        s3.object(&format!("other-team/prod/{old}.manifest.json")),
        "theirs too",
    )
    .unwrap();
    // The registry entry's off-site URL is data, like its `file`.
    let path = p.path(&format!("{BACKUPS}/backups.json"));
    let mut reg: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    for b in reg["backups"].as_array_mut().unwrap() {
        if b["id"] == old.as_str() {
            b["remote"]["url"] =
                serde_json::Value::from(format!("s3://{BUCKET}/other-team/prod/precious.tar"));
        }
    }
    fs::write(&path, serde_json::to_string_pretty(&reg).unwrap()).unwrap();

    let run = p.run(&["-y", "delete", &old]);
    assert_eq!(
        fs::read_to_string(s3.object("other-team/prod/precious.tar")).ok(),
        Some("theirs".to_string()),
        "{run:?}"
    );
    assert!(
        s3.object(&format!("other-team/prod/{old}.manifest.json"))
            .is_file(),
        "{run:?}"
    );
}

#[test]
fn a_copy_sent_off_site_but_not_yet_recorded_is_not_left_behind_by_a_delete() {
    let Some(s3) = S3Server::start() else { return };
    let p = s3.project().seeded("db/prod.sqlite3");
    // Production's backups go off-site with `push` only.
    let config = p.path(".fractary/plugins/faber-db/config.toml");
    let text = fs::read_to_string(&config).unwrap().replace(
        "[environments.production]\n",
        "[environments.production]\noffsite = false\n",
    );
    fs::write(&config, text).unwrap();
    let id = p.json(&["-y", "backup", "production"], 0)["backup"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The registry is busy (another run holds its lock) when the upload ends: the push waits to
    // record the copy, and is killed there — or gives up after a minute, which ends the same.
    // (The push says it is trying before it sends anything: the lock is taken once it has.)
    let lock = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(p.path(&format!("{BACKUPS}/backups.json.lock")))
        .unwrap();
    let marker = p.path("paused");
    let mut push = p
        .command(&["push", &id])
        .env("FABER_TEST_PAUSE_AT", "upload:started")
        .env("FABER_TEST_PAUSE_MARKER", &marker)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    crate::harness::wait_for(&marker);
    assert_eq!(
        entry(&p, &id)["remote"]["status"],
        "failed",
        "said before sending"
    );
    lock.lock().unwrap();
    fs::remove_file(&marker).unwrap();
    let manifest = s3.object(&format!("team/production/{id}.manifest.json"));
    let started = Instant::now();
    while !manifest.is_file() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never uploaded"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    push.kill().unwrap();
    push.wait().unwrap();
    lock.unlock().unwrap();
    // The backup is deleted: here, and its copy off-site, which this project put there.
    p.run(&["-y", "delete", &id, "--force"]).code(0);
    assert!(p.ids().is_empty());
    let doc = p.json(&["pull"], 0);
    assert!(
        doc["registered"].as_array().unwrap().is_empty(),
        "the deleted backup came back from its off-site copy: {doc}; left off-site: {:?}",
        s3.keys("team/production")
    );
}
