//! The database servers later suites talk to. A test that needs one may skip when it is absent,
//! unless `FABER_REQUIRE_SERVICES=1` (set by `.ci/run`): then a missing server is a failure.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Whether `FABER_REQUIRE_SERVICES=1`: then a missing server or setup is a failure, not a skip.
pub fn required() -> bool {
    std::env::var("FABER_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// A test's tool or server that is not there (`why`): a skip, said on stderr — or a failure when
/// services are required.
pub fn skip(why: &str) {
    assert!(!required(), "{why}, and FABER_REQUIRE_SERVICES=1");
    eprintln!("skipping: {why}");
}

/// Whether a server answers at `addr`; panics when it does not and services are required.
pub fn available(name: &str, addr: &str) -> bool {
    let addr: SocketAddr = addr.parse().expect("a socket address");
    let up = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok();
    if !up {
        assert!(
            !required(),
            "{name} is not reachable at {addr}, and FABER_REQUIRE_SERVICES=1; run scripts/services.sh"
        );
        eprintln!("skipping: {name} is not reachable at {addr}");
    }
    up
}

#[test]
fn required_servers_answer() {
    // Every server suite skips quietly without its server; this says plainly which is missing.
    let pg = available("PostgreSQL", "127.0.0.1:5432");
    let my = available("MariaDB", "127.0.0.1:3306");
    if required() {
        assert!(pg && my);
    }
}

/// A small tmpfs mounted for one test (a filesystem that really fills up), unmounted on drop.
/// Mounting needs root; without it the test skips, unless services are required.
pub struct Tmpfs {
    pub dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::Builder::new()
            .prefix("faber-tmpfs-")
            .tempdir()
            .unwrap();
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { dir }),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
                    Err(e) => e.to_string(),
                };
                assert!(
                    !required(),
                    "cannot mount a tmpfs ({why}), and FABER_REQUIRE_SERVICES=1; run the tests as root"
                );
                eprintln!("skipping: cannot mount a tmpfs: {why}");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}
