//! Downloads of a release archive, by the plugin's launcher (`bin/faber-db`, step 4) and by
//! scripts/install.sh, from a local HTTP server serving a real archive (the one `.ci/run` builds
//! with scripts/dist.sh, else the suite's binary packaged by the same script): checked against
//! SHA256SUMS before anything is installed; a tampered archive refused with nothing installed
//! (and, by the launcher, no build); a missing archive or a server that hangs answered by the
//! launcher with a build with cargo, saying why, and by the install script with an error.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::harness::BIN;
use crate::launcher::{Plugin, VERSION, run, show, stderr, stdout, version_line, write_exe};

/// What the launcher needs to download and unpack, beyond what it always uses.
const DOWNLOAD_TOOLS: &[&str] = &["curl", "uname", "tar", "gzip", "sha256sum", "cut", "chmod"];

/// How the server answers a path.
#[derive(Clone)]
enum Answer {
    Body(Vec<u8>),
    /// Reads the request and never answers.
    Hang,
}

/// An HTTP server on 127.0.0.1 answering GETs from a table (404 for anything else), noting
/// each path asked for.
struct Server {
    port: u16,
    asked: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start(routes: HashMap<String, Answer>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopped) = (Arc::clone(&asked), Arc::clone(&stop));
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (routes, seen, stopped) =
                    (routes.clone(), Arc::clone(&seen), Arc::clone(&stopped));
                thread::spawn(move || answer(conn, &routes, &seen, &stopped));
            }
        });
        Server { port, asked, stop }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread so that it sees the stop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn answer(
    mut conn: TcpStream,
    routes: &HashMap<String, Answer>,
    seen: &Mutex<Vec<String>>,
    stop: &AtomicBool,
) {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request);
    let path = text.split_whitespace().nth(1).unwrap_or("").to_string();
    seen.lock().unwrap().push(path.clone());
    match routes.get(&path) {
        Some(Answer::Body(body)) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(body);
        }
        Some(Answer::Hang) => {
            while !stop.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(50));
            }
        }
        None => {
            let _ = conn.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    }
}

/// The release target the launcher computes for this machine.
fn this_target() -> &'static str {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => "x86_64-unknown-linux-gnu",
        ("linux", "aarch64") => "aarch64-unknown-linux-gnu",
        ("macos", "x86_64") => "x86_64-apple-darwin",
        ("macos", "aarch64") => "aarch64-apple-darwin",
        other => panic!("no release target for {other:?}"),
    }
}

fn archive_name() -> String {
    format!("faber-db-{VERSION}-{}.tar.gz", this_target())
}

/// A real release archive of this version for this machine: the one `.ci/run` built
/// (FABER_DIST_DIR), else the suite's binary packaged by scripts/dist.sh. Its bytes, and the
/// binary it holds.
fn release_archive(tmp: &Path) -> (Vec<u8>, Vec<u8>) {
    let archive = if let Some(dir) = std::env::var_os("FABER_DIST_DIR") {
        PathBuf::from(dir).join(archive_name())
    } else {
        let out = tmp.join("dist");
        let run = Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/dist.sh"))
            .args(["--binary", BIN, "--target", this_target(), "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(run.status.success(), "{run:?}");
        out.join(archive_name())
    };
    let bytes = fs::read(&archive).unwrap_or_else(|e| panic!("{}: {e}", archive.display()));
    let unpacked = tmp.join("unpacked");
    fs::create_dir_all(&unpacked).unwrap();
    let tar = Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(&unpacked)
        .status()
        .unwrap();
    assert!(tar.success());
    let name = archive_name();
    let dir = name.strip_suffix(".tar.gz").unwrap();
    let binary = fs::read(unpacked.join(dir).join("faber-db")).unwrap();
    (bytes, binary)
}

/// The routes of a release under `base`: its SHA256SUMS and this machine's archive.
fn good_routes(base: &str, archive: &[u8]) -> HashMap<String, Answer> {
    let name = archive_name();
    HashMap::from([
        (
            format!("{base}/SHA256SUMS"),
            Answer::Body(sums_of(&[(archive, &name)])),
        ),
        (format!("{base}/{name}"), Answer::Body(archive.to_vec())),
    ])
}

/// A release of this version for this machine, served from 127.0.0.1 (for the plugin's
/// end-to-end test too).
pub(super) struct Release {
    server: Server,
    /// The binary its archive holds.
    pub(super) binary: Vec<u8>,
}

impl Release {
    pub(super) fn serve(tmp: &Path) -> Release {
        let (archive, binary) = release_archive(tmp);
        let server = Server::start(good_routes("/v", &archive));
        Release { server, binary }
    }

    /// The URL to give as FABER_DB_RELEASE_URL.
    pub(super) fn url(&self) -> String {
        self.server.url("/v")
    }

    /// The paths asked for so far.
    pub(super) fn asked(&self) -> Vec<String> {
        self.server.asked()
    }

    /// The paths one download asks for, in order.
    pub(super) fn paths() -> Vec<String> {
        vec![
            "/v/SHA256SUMS".to_string(),
            format!("/v/{}", archive_name()),
        ]
    }
}

fn sums_of(entries: &[(&[u8], &str)]) -> Vec<u8> {
    let mut text = String::new();
    for (bytes, name) in entries {
        text.push_str(&format!("{}  {name}\n", hex::encode(Sha256::digest(bytes))));
    }
    text.into_bytes()
}

/// A plugin that can download (curl and friends on its PATH) and, with `cargo`, build.
fn plugin(cargo: bool) -> Plugin {
    let mut p = Plugin::new();
    p.add_tools(DOWNLOAD_TOOLS);
    if cargo {
        p.fake_cargo();
    }
    p
}

fn installed(p: &Plugin) -> PathBuf {
    p.cache_dir().join("bin/faber-db")
}

/// What the data directory holds besides bin/ and the build's own files: a download left
/// behind would show here.
fn leftovers(p: &Plugin) -> Vec<String> {
    fs::read_dir(p.cache_dir())
        .map(|d| {
            d.map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.starts_with(".download"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_release_archive_is_downloaded_checked_and_installed() {
    let tmp = tempfile::tempdir().unwrap();
    let release = Release::serve(tmp.path());
    // No cargo: only the download can make a binary.
    let p = plugin(false);
    let out = run(p
        .command(&["--version"])
        .env("FABER_DB_RELEASE_URL", release.url()));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        stdout(&out).starts_with(&format!("faber-db {VERSION} (")),
        "{}",
        show(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "downloading the release archive for {}",
            this_target()
        )) && err.contains("SHA256SUMS"),
        "{err}"
    );
    assert!(
        err.contains("is ready: ") && err.contains(&format!("(downloaded {}", release.url())),
        "{err}"
    );
    assert_eq!(fs::read(installed(&p)).unwrap(), release.binary);
    assert_eq!(release.asked(), Release::paths());
    assert!(leftovers(&p).is_empty(), "{:?}", leftovers(&p));

    // The next run finds it: nothing is downloaded again.
    let out = run(p
        .command(&["--version"])
        .env("FABER_DB_RELEASE_URL", release.url()));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(release.asked().len(), 2);
}

#[test]
fn the_release_url_comes_from_the_plugins_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let (archive, _) = release_archive(tmp.path());
    let base = format!("/acme/faber-db/releases/download/v{VERSION}");
    let server = Server::start(good_routes(&base, &archive));
    let p = plugin(false);
    fs::write(
        p.root().join(".claude-plugin/plugin.json"),
        format!(
            "{{\n  \"name\": \"faber-db\",\n  \"version\": \"{VERSION}\",\n  \"repository\": \"{}\"\n}}\n",
            server.url("/acme/faber-db")
        ),
    )
    .unwrap();
    let out = run(p.command(&["--version"]));
    assert_eq!(stdout(&out), version_line(), "{}", show(&out));
    assert_eq!(server.asked()[0], format!("{base}/SHA256SUMS"));
    // FABER_DB_RELEASE_URL=off: no download, and without cargo no binary either.
    let q = plugin(false);
    fs::copy(
        p.root().join(".claude-plugin/plugin.json"),
        q.root().join(".claude-plugin/plugin.json"),
    )
    .unwrap();
    let out = run(q.command(&["--version"]).env("FABER_DB_RELEASE_URL", "off"));
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert!(
        stderr(&out).contains("cannot be downloaded (no release URL"),
        "{}",
        show(&out)
    );
    assert_eq!(server.asked().len(), 2);
}

#[test]
fn a_tampered_archive_is_refused_and_nothing_is_installed() {
    let tmp = tempfile::tempdir().unwrap();
    let (archive, _) = release_archive(tmp.path());
    let name = archive_name();
    let mut tampered = archive.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x40;
    let mut routes = good_routes("/v", &archive);
    routes.insert(format!("/v/{name}"), Answer::Body(tampered));
    let server = Server::start(routes);
    // cargo is there, and must not be used: a refusal is not a reason to build.
    let p = plugin(true);
    for _ in 0..2 {
        let out = run(p
            .command(&["--version"])
            .env("FABER_DB_RELEASE_URL", server.url("/v")));
        assert_eq!(out.status.code(), Some(5), "{}", show(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "error: refused the faber-db {VERSION} release archive"
            )) && err.contains("does not match its SHA-256")
                && err.contains("nothing was installed"),
            "{err}"
        );
        assert!(
            err.contains("hint: ") && err.contains("FABER_DB_RELEASE_URL=off"),
            "{err}"
        );
        assert!(stdout(&out).is_empty());
        assert!(!installed(&p).exists());
        assert!(p.cargo_runs().is_empty(), "{:?}", p.cargo_runs());
        assert!(leftovers(&p).is_empty(), "{:?}", leftovers(&p));
    }
    // Each run downloaded it again: a refusal is not remembered as a verdict.
    assert_eq!(server.asked().len(), 4, "{:?}", server.asked());
}

#[test]
fn no_archive_for_this_platform_falls_back_to_cargo() {
    let tmp = tempfile::tempdir().unwrap();
    let (archive, _) = release_archive(tmp.path());
    let other = format!("faber-db-{VERSION}-riscv64gc-unknown-linux-gnu.tar.gz");
    let routes = HashMap::from([(
        "/v/SHA256SUMS".to_string(),
        Answer::Body(sums_of(&[(&archive, &other)])),
    )]);
    let server = Server::start(routes);
    let p = plugin(true);
    let out = run(p
        .command(&["--version"])
        .env("FABER_DB_RELEASE_URL", server.url("/v")));
    assert_eq!(stdout(&out), version_line(), "{}", show(&out));
    let err = stderr(&out);
    assert!(
        err.contains("(built with cargo install from ")
            && err.contains("because it could not be downloaded: the release has no archive for"),
        "{err}"
    );
    assert_eq!(p.cargo_runs().len(), 1);

    // No SHA256SUMS at all (404): the same.
    let server = Server::start(HashMap::new());
    let q = plugin(true);
    let out = run(q
        .command(&["--version"])
        .env("FABER_DB_RELEASE_URL", server.url("/v")));
    assert_eq!(stdout(&out), version_line(), "{}", show(&out));
    assert!(stderr(&out).contains("404"), "{}", show(&out));
    assert_eq!(q.cargo_runs().len(), 1);
}

#[test]
fn a_server_that_hangs_times_out_and_falls_back() {
    let routes = HashMap::from([("/v/SHA256SUMS".to_string(), Answer::Hang)]);
    let server = Server::start(routes);
    let p = plugin(true);
    let out = run(p
        .command(&["--version"])
        .env("FABER_DB_RELEASE_URL", server.url("/v"))
        .env("FABER_DB_DOWNLOAD_TIMEOUT", "2"));
    assert_eq!(stdout(&out), version_line(), "{}", show(&out));
    let err = stderr(&out);
    assert!(
        err.contains("(built with cargo install from ")
            && err.contains("could not be downloaded: cannot download ")
            && err.contains("SHA256SUMS: no answer for 2 s"),
        "{err}"
    );
    assert_eq!(p.cargo_runs().len(), 1);
}

#[test]
fn credentials_in_the_release_url_stay_out_of_argv_and_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let release = Release::serve(tmp.path());
    let mut p = plugin(false);
    // curl, through a stand-in that notes its arguments first.
    let argv = p.path("curl.argv");
    let real = which::which("curl").unwrap();
    write_exe(
        &p.path("spy/curl"),
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" >>'{}'\nexec '{}' \"$@\"\n",
            argv.display(),
            real.display()
        ),
    );
    p.path_front.push(p.path("spy"));
    let url = release
        .url()
        .replacen("http://", "http://mirror-user:s3cr3t-pw@", 1);
    let out = run(p.command(&["--version"]).env("FABER_DB_RELEASE_URL", &url));
    assert_eq!(stdout(&out), version_line(), "{}", show(&out));
    let argv = fs::read_to_string(&argv).unwrap();
    assert!(argv.contains("-K"), "{argv}");
    let log = fs::read_to_string(p.cache_dir().join("build.log")).unwrap();
    let origin = fs::read_to_string(p.cache_dir().join("origin")).unwrap();
    for text in [&argv, &stderr(&out), &log, &origin] {
        assert!(!text.contains("s3cr3t-pw"), "{text}");
    }
    assert!(stderr(&out).contains(&release.url()), "{}", show(&out));
}

/// scripts/install.sh run as `curl … | sh -s -- ARGS` runs it: the script on stdin.
fn install_sh(args: &[&str], home: &Path, env: &[(&str, &str)]) -> std::process::Output {
    let script =
        fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install.sh")).unwrap();
    let mut cmd = Command::new("sh");
    cmd.arg("-s")
        .arg("--")
        .args(args)
        .env("HOME", home)
        .env_remove("FABER_DB_RELEASE_URL")
        .env_remove("FABER_DB_VERSION")
        .env_remove("FABER_DB_INSTALL_DIR")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(&script).unwrap();
    child.wait_with_output().unwrap()
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn install_sh_installs_the_checked_binary_and_refuses_a_tampered_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (archive, binary) = release_archive(tmp.path());
    let name = archive_name();
    let mut tampered = archive.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let mut routes = good_routes("/good", &archive);
    routes.extend(good_routes("/bad", &archive));
    routes.insert(format!("/bad/{name}"), Answer::Body(tampered));
    routes.insert("/slow/SHA256SUMS".to_string(), Answer::Hang);
    let server = Server::start(routes);
    let home = tmp.path().join("home");
    let dir = tmp.path().join("bin");
    let dir_arg = dir.to_str().unwrap();

    let out = install_sh(
        &[
            "--version",
            VERSION,
            "--dir",
            dir_arg,
            "--url",
            &server.url("/good"),
        ],
        &home,
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(fs::read(dir.join("faber-db")).unwrap(), binary);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("Installed faber-db {VERSION} (")) && err.contains("SHA-256"),
        "{err}"
    );
    assert!(err.contains("is not on PATH"), "{err}");
    assert_eq!(names_in(&dir), ["faber-db"]);

    // A tampered archive: exit 5, and the binary installed before stays as it was.
    let out = install_sh(
        &[
            "--version",
            VERSION,
            "--dir",
            dir_arg,
            "--url",
            &server.url("/bad"),
        ],
        &home,
        &[],
    );
    assert_eq!(out.status.code(), Some(5), "{}", show(&out));
    let err = stderr(&out);
    assert!(
        err.contains("error: ")
            && err.contains("does not match its SHA-256")
            && err.contains("nothing was installed")
            && err.contains("hint: "),
        "{err}"
    );
    assert_eq!(fs::read(dir.join("faber-db")).unwrap(), binary);
    assert_eq!(names_in(&dir), ["faber-db"]);

    // A server that never answers: exit 1 after the timeout, saying so; nothing changed.
    let out = install_sh(
        &["--dir", dir_arg],
        &home,
        &[
            ("FABER_DB_RELEASE_URL", &server.url("/slow")),
            ("FABER_DB_DOWNLOAD_TIMEOUT", "2"),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains("SHA256SUMS: no answer for 2 s"),
        "{}",
        show(&out)
    );
    assert_eq!(names_in(&dir), ["faber-db"]);

    // A release without this platform's archive, and a version that is not one.
    let out = install_sh(
        &[
            "--version",
            "9.9.9",
            "--dir",
            dir_arg,
            "--url",
            &server.url("/good"),
        ],
        &home,
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains("the release has no archive for"),
        "{}",
        show(&out)
    );
    let out = install_sh(&["--version", "1.0;rm -rf /", "--dir", dir_arg], &home, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains("error: not a version"),
        "{}",
        show(&out)
    );
    assert_eq!(names_in(&dir), ["faber-db"]);
}

#[test]
fn install_sh_defaults_to_its_own_version_and_home_local_bin() {
    // The script's default version is the one it ships with.
    let script =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install.sh"))
            .unwrap();
    assert!(
        script.contains(&format!("\nfdb_default_version={VERSION}\n")),
        "scripts/install.sh's fdb_default_version is not {VERSION}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let release = Release::serve(tmp.path());
    let home = tmp.path().join("home");
    let out = install_sh(&[], &home, &[("FABER_DB_RELEASE_URL", &release.url())]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(
        fs::read(home.join(".local/bin/faber-db")).unwrap(),
        release.binary
    );
}

/// An archive that matches its SHA256SUMS — whoever serves both can make both — but whose
/// `faber-db` is a link to a file of the user's: nothing is installed, and the file keeps its
/// mode and bytes (nothing the archive says is followed).
#[test]
fn an_archive_whose_binary_is_a_link_changes_nothing_it_points_at() {
    use std::os::unix::fs::PermissionsExt;

    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("id_ed25519");
    fs::write(&secret, "PRIVATE KEY\n").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let name = archive_name();
    let dir = name.strip_suffix(".tar.gz").unwrap();
    let staging = tmp.path().join("staging");
    fs::create_dir_all(staging.join(dir)).unwrap();
    std::os::unix::fs::symlink(&secret, staging.join(dir).join("faber-db")).unwrap();
    let made = Command::new("tar")
        .arg("-czf")
        .arg(tmp.path().join(&name))
        .arg("-C")
        .arg(&staging)
        .arg(dir)
        .status()
        .unwrap();
    assert!(made.success());
    let archive = fs::read(tmp.path().join(&name)).unwrap();
    let server = Server::start(good_routes("/v", &archive));

    let p = plugin(false);
    let out = run(p
        .command(&["--version"])
        .env("FABER_DB_RELEASE_URL", server.url("/v")));
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let log = fs::read_to_string(p.cache_dir().join("build.log")).unwrap();
    assert!(log.contains(&format!("holds no {dir}/faber-db")), "{log}");
    assert!(!installed(&p).exists());

    let bin = tmp.path().join("bin");
    let out = install_sh(
        &["--dir", bin.to_str().unwrap(), "--url", &server.url("/v")],
        &tmp.path().join("home"),
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(!bin.join("faber-db").exists());

    let mode = fs::metadata(&secret).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(fs::read_to_string(&secret).unwrap(), "PRIVATE KEY\n");
}

/// A release URL carrying a newline (each line of curl's config is an option): refused as no
/// URL at all, by the launcher and by the install script, and nothing it names is written.
#[test]
fn a_release_url_with_a_newline_is_refused_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let release = Release::serve(tmp.path());
    let planted = tmp.path().join("planted");
    let url = format!(
        "{}\noutput = \"{}\"\nurl = \"{}/SHA256SUMS\"",
        release.url(),
        planted.display(),
        release.url()
    );
    let p = plugin(false);
    let out = run(p.command(&["--version"]).env("FABER_DB_RELEASE_URL", &url));
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert!(
        stderr(&out).contains("FABER_DB_RELEASE_URL is not a plain http(s) URL"),
        "{}",
        show(&out)
    );
    let bin = tmp.path().join("bin");
    let out = install_sh(
        &["--dir", bin.to_str().unwrap()],
        &tmp.path().join("home"),
        &[("FABER_DB_RELEASE_URL", &url)],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains("error: not an http(s) URL"),
        "{}",
        show(&out)
    );
    assert!(!planted.exists());
    assert!(release.asked().is_empty(), "{:?}", release.asked());
}

#[test]
fn install_sh_hides_a_password_with_an_at_sign_and_never_replaces_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let bin = tmp.path().join("bin");
    // Port 1: nothing listens; the error names the host, never the password.
    let out = install_sh(
        &["--dir", bin.to_str().unwrap()],
        &home,
        &[(
            "FABER_DB_RELEASE_URL",
            "http://mirror:p@ss-s3cr3t@127.0.0.1:1/v",
        )],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(!stderr(&out).contains("s3cr3t"), "{}", show(&out));
    assert!(
        stderr(&out).contains("http://127.0.0.1:1/v"),
        "{}",
        show(&out)
    );

    // A directory where the binary would go is left alone.
    let release = Release::serve(tmp.path());
    fs::create_dir_all(bin.join("faber-db/keep")).unwrap();
    let out = install_sh(
        &["--dir", bin.to_str().unwrap(), "--url", &release.url()],
        &home,
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(stderr(&out).contains("is a directory"), "{}", show(&out));
    assert!(bin.join("faber-db/keep").is_dir());
}
