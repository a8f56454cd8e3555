//! Webhook notifications, received by a small HTTP listener on 127.0.0.1 in the test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{BACKUPS, DEFAULT_CONFIG, Project};

/// A listener answering every request with `status`; each request's path and JSON body arrive
/// on the channel.
pub fn listener(status: &'static str) -> (String, mpsc::Receiver<(String, Value)>) {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", server.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in server.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            let path = request_line.split(' ').nth(1).unwrap_or("").to_string();
            let _ = tx.send((path, serde_json::from_slice(&body).unwrap_or(Value::Null)));
        }
    });
    (url, rx)
}

fn project(notify: &str) -> Project {
    Project::with_config(&format!("{DEFAULT_CONFIG}\n[notify]\n{notify}\n"))
}

pub fn history(p: &Project) -> Vec<Value> {
    std::fs::read_to_string(p.path(&format!("{BACKUPS}/history.jsonl")))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_failed_backup_posts_the_documented_json() {
    let (url, rx) = listener("200 OK");
    // The URL comes from the default variable; its token-bearing path is used as given.
    let p = project("").with_var("FABER_WEBHOOK_URL", &format!("{url}/hooks/T0K3N"));
    // dev's database does not exist: the backup fails with exit 3.
    p.run(&["backup", "dev"]).code(3);
    let (path, doc) = rx.recv_timeout(Duration::from_secs(10)).expect("a POST");
    assert_eq!(path, "/hooks/T0K3N");
    assert_eq!(doc["event"], "backup.failed");
    assert_eq!(doc["command"], "backup");
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["environment"], "dev");
    assert!(doc["backup_id"].is_null());
    assert_eq!(doc["error"]["code"], 3);
    assert_eq!(doc["error"]["kind"], "connection");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not exist")
    );
    assert!(doc["duration_ms"].is_u64());
    assert!(doc["time"].is_string());
    assert!(doc["faber_db_version"].is_string());

    // Success says nothing unless asked.
    let p = p.seeded("db/dev.sqlite3");
    p.run(&["backup", "dev"]).code(0);
    assert!(rx.recv_timeout(Duration::from_millis(500)).is_err());
    // Commands that change nothing never notify.
    p.run(&["list"]).code(0);
    p.run(&["backup", "nope"]).code(1);
    let (_, doc) = rx.recv_timeout(Duration::from_secs(10)).expect("a POST");
    assert_eq!(
        doc["environment"], "nope",
        "an unknown environment is a failed backup too"
    );
}

#[test]
fn on_success_reports_the_backup_and_the_restore() {
    let (url, rx) = listener("204 No Content");
    let p =
        project(&format!("webhook_url = \"{url}/ok\"\non_success = true")).seeded("db/dev.sqlite3");
    let id = p.backup(&["dev"]);
    let (_, doc) = rx.recv_timeout(Duration::from_secs(10)).expect("a POST");
    assert_eq!(doc["event"], "backup.succeeded");
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["backup_id"], id.as_str());
    assert!(doc["error"].is_null());

    p.run(&["-y", "restore", "dev", "--from", &id, "--no-safety-backup"])
        .code(0);
    let (_, doc) = rx.recv_timeout(Duration::from_secs(10)).expect("a POST");
    assert_eq!(doc["event"], "restore.succeeded");
    assert_eq!(doc["backup_id"], id.as_str());
    let notified: Vec<Value> = history(&p)
        .into_iter()
        .filter(|e| e["event"] == "notify")
        .collect();
    assert_eq!(notified.len(), 2);
    assert!(notified.iter().all(|e| e["ok"] == true));
}

#[test]
fn a_failing_webhook_is_a_warning_never_a_failure() {
    // A webhook that answers 500, and one where nothing listens.
    let (url, rx) = listener("500 Internal Server Error");
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    for (target, answered) in [
        (format!("{url}/s3cr3t-path"), true),
        (format!("{dead}/s3cr3t-path"), false),
    ] {
        let p = project("webhook_url_env = \"TEAM_HOOK\"\non_success = true")
            .with_var("TEAM_HOOK", &target)
            .seeded("db/dev.sqlite3");
        let run = p
            .run(&["backup", "dev"])
            .code(0)
            .stderr_has("the webhook notification was not delivered");
        assert!(!run.stderr.contains("s3cr3t-path"), "{}", run.stderr);
        assert_eq!(p.backups().len(), 1);
        if answered {
            rx.recv_timeout(Duration::from_secs(10)).expect("a POST");
            assert!(run.stderr.contains("500"), "{}", run.stderr);
        }
        let last = history(&p)
            .into_iter()
            .rfind(|e| e["event"] == "notify")
            .unwrap();
        assert_eq!(last["ok"], false);
        assert!(!last.to_string().contains("s3cr3t-path"));
    }
    // A variable that is not set is said so, and the backup stands.
    let p = project("webhook_url_env = \"TEAM_HOOK\"").seeded("db/dev.sqlite3");
    p.run(&["backup", "nope"])
        .code(1)
        .stderr_has("variable TEAM_HOOK is not set");
}
