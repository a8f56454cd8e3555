//! Notification formats and targets: each service's payload as its documentation has it, the
//! `on` filters of several targets, the stale-backup notice of `status`, and the config errors.
//! A small HTTP listener on 127.0.0.1 plays every service.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{BACKUPS, DEFAULT_CONFIG, Project};

/// One request as the listener read it.
#[derive(Debug)]
struct Received {
    path: String,
    /// Header names in lower case.
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Received {
    fn json(&self) -> Value {
        assert_eq!(
            self.headers["content-type"], "application/json",
            "{}",
            self.path
        );
        serde_json::from_slice(&self.body).unwrap()
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
}

/// A listener answering every request with `status`. Each request is on the channel before it
/// is answered, so all of a finished run's requests are there when the run returns.
fn listener(status: &'static str) -> (String, mpsc::Receiver<Received>) {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", server.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in server.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut headers = BTreeMap::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                }
            }
            let length = headers
                .get("content-length")
                .map_or(0, |v| v.parse().unwrap());
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let path = request_line.split(' ').nth(1).unwrap_or("").to_string();
            let _ = tx.send(Received {
                path,
                headers,
                body,
            });
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    (url, rx)
}

/// What arrived since the last call, by path.
fn arrived(rx: &mpsc::Receiver<Received>) -> BTreeMap<String, Received> {
    let mut out = BTreeMap::new();
    while let Ok(r) = rx.recv_timeout(Duration::from_millis(200)) {
        assert!(
            out.insert(r.path.clone(), r).is_none(),
            "one request per target"
        );
    }
    out
}

fn paths(got: &BTreeMap<String, Received>) -> Vec<&str> {
    got.keys().map(String::as_str).collect()
}

/// `[notify]` and a `[[notify.targets]]` per `(path, format, on)`, all on the listener at `url`.
fn targets(url: &str, list: &[(&str, &str, &str)]) -> String {
    let mut config = String::from("\n[notify]\n");
    for (path, format, on) in list {
        config.push_str(&format!(
            "\n[[notify.targets]]\nwebhook_url = \"{url}{path}\"\nformat = \"{format}\"\n{on}\n"
        ));
    }
    config
}

fn notify_events(p: &Project) -> Vec<Value> {
    std::fs::read_to_string(p.path(&format!("{BACKUPS}/history.jsonl")))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "notify")
        .collect()
}

#[test]
fn each_format_posts_what_its_service_reads() {
    let (url, rx) = listener("200 OK");
    let all = "on = [\"failure\", \"success\"]";
    let p = Project::with_config(&format!(
        "{DEFAULT_CONFIG}{}",
        targets(
            &url,
            &[
                ("/json", "json", all),
                ("/slack", "slack", all),
                ("/discord", "discord", all),
                ("/teams", "teams", all),
                ("/ntfy/topic", "ntfy", all),
            ]
        )
    ));
    // dev's database does not exist: the backup fails with exit 3.
    p.run(&["backup", "dev"]).code(3);
    let got = arrived(&rx);
    assert_eq!(
        paths(&got),
        ["/discord", "/json", "/ntfy/topic", "/slack", "/teams"]
    );

    let json = got["/json"].json();
    assert_eq!(json["event"], "backup.failed");
    assert_eq!(json["environment"], "dev");
    assert_eq!(json["error"]["kind"], "connection");

    let slack = got["/slack"].json();
    assert_eq!(slack["text"], "faber-db: backup of dev failed");
    assert_eq!(slack["blocks"][0]["type"], "section");
    assert_eq!(slack["blocks"][0]["text"]["type"], "mrkdwn");
    let section = slack["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(section.contains("*Environment:* dev"), "{section}");
    assert!(section.contains("*Command:* backup"), "{section}");
    assert!(section.contains("*Error:* "), "{section}");
    assert!(section.contains("does not exist"), "{section}");

    let discord = got["/discord"].json();
    assert!(discord["content"].as_str().unwrap().chars().count() <= 2000);
    let embed = &discord["embeds"][0];
    assert_eq!(embed["title"], "faber-db: backup of dev failed");
    assert!(embed["color"].is_u64());
    assert!(
        embed["description"]
            .as_str()
            .unwrap()
            .contains("does not exist")
    );
    let field = &embed["fields"][0];
    assert_eq!(
        (&field["name"], &field["value"], &field["inline"]),
        (&"Environment".into(), &"dev".into(), &true.into())
    );

    let teams = got["/teams"].json();
    assert_eq!(teams["type"], "message");
    let attachment = &teams["attachments"][0];
    assert_eq!(
        attachment["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(attachment["content"]["type"], "AdaptiveCard");
    assert_eq!(attachment["content"]["version"], "1.4");
    let body = attachment["content"]["body"].as_array().unwrap();
    assert_eq!(body[0]["type"], "TextBlock");
    assert_eq!(body[0]["text"], "faber-db: backup of dev failed");
    let facts = &body.last().unwrap()["facts"];
    assert_eq!(facts[0]["title"], "Environment");
    assert_eq!(facts[0]["value"], "dev");

    let ntfy = &got["/ntfy/topic"];
    assert!(ntfy.headers["content-type"].starts_with("text/plain"));
    assert_eq!(ntfy.headers["title"], "faber-db: backup of dev failed");
    assert_eq!(ntfy.headers["priority"], "high");
    assert_eq!(ntfy.headers["tags"], "warning");
    let text = ntfy.text();
    assert!(
        text.starts_with("Error: ") && text.contains("does not exist"),
        "{text}"
    );
    assert!(
        text.contains("Environment: dev\nCommand: backup\n"),
        "{text}"
    );

    // A success names the backup and its size, in every format.
    let p = p.seeded("db/dev.sqlite3");
    let id = p.backup(&["dev"]);
    let size = p.backups()[0]["size_bytes"].as_u64().unwrap();
    let human = faber_db::human::size(size);
    let got = arrived(&rx);
    assert_eq!(got.len(), 5);
    let json = got["/json"].json();
    assert_eq!(
        (&json["event"], &json["backup_id"]),
        (&"backup.succeeded".into(), &id.as_str().into())
    );
    assert_eq!(json["backup_size_bytes"], size);
    let section = got["/slack"].json()["blocks"][0]["text"]["text"].clone();
    assert!(
        section
            .as_str()
            .unwrap()
            .contains(&format!("*Size:* {human}")),
        "{section}"
    );
    let fields = got["/discord"].json()["embeds"][0]["fields"].clone();
    assert!(
        fields
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "Backup" && f["value"] == id.as_str()),
        "{fields}"
    );
    let ntfy = &got["/ntfy/topic"];
    assert_eq!(ntfy.headers["priority"], "default");
    assert_eq!(ntfy.headers["tags"], "white_check_mark");
    assert!(ntfy.text().contains(&format!("Size: {human}\n")));
    assert_eq!(notify_events(&p).len(), 10, "one audit event per delivery");
}

#[test]
fn a_success_goes_only_to_the_targets_that_asked() {
    let (url, rx) = listener("204 No Content");
    let p = Project::with_config(&format!(
        "{DEFAULT_CONFIG}{}",
        targets(
            &url,
            &[
                ("/failures", "json", ""),
                ("/successes", "slack", "on = [\"success\"]"),
                ("/both", "discord", "on = [\"success\", \"failure\"]"),
                ("/stale", "ntfy", "on = [\"stale\"]"),
            ]
        )
    ))
    .seeded("db/dev.sqlite3");
    p.backup(&["dev"]);
    assert_eq!(paths(&arrived(&rx)), ["/both", "/successes"]);
    p.run(&["backup", "nope"]).code(1);
    assert_eq!(paths(&arrived(&rx)), ["/both", "/failures"]);
    // Commands that change nothing tell no one.
    p.run(&["list"]).code(0);
    assert!(arrived(&rx).is_empty());
    let details: Vec<String> = notify_events(&p)
        .iter()
        .map(|e| e["detail"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        details,
        [
            "backup.succeeded via notify.targets #2 (slack)",
            "backup.succeeded via notify.targets #3 (discord)",
            "backup.failed via notify.targets #1 (json)",
            "backup.failed via notify.targets #3 (discord)",
        ]
    );
}

#[test]
fn status_tells_the_stale_targets_of_old_backups() {
    let (url, rx) = listener("200 OK");
    let config = format!(
        "[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\nmax_backup_age = \"1h\"\n\
         [environments.production]\nurl_env = \"PROD_DATABASE_URL\"\n{}",
        targets(
            &url,
            &[
                ("/failures", "slack", ""),
                ("/stale", "json", "on = [\"stale\"]"),
                ("/phone", "ntfy", "on = [\"stale\", \"failure\"]"),
            ]
        )
    );
    let mut p = Project::with_config(&config).seeded("db/dev.sqlite3");
    p.at("2026-03-01T12:00:00Z");
    p.backup(&["dev"]);
    assert!(arrived(&rx).is_empty(), "a success nobody asked for");
    // Within the hour: nothing to say.
    p.at("2026-03-01T12:30:00Z");
    p.run(&["status"]).code(0);
    assert!(arrived(&rx).is_empty());
    // Three hours on, dev's newest backup is too old; production has no limit.
    p.at("2026-03-01T15:00:00Z");
    p.run(&["status"])
        .code(0)
        .stderr_has("dev: the newest valid backup is 3h old > 1h");
    let got = arrived(&rx);
    assert_eq!(paths(&got), ["/phone", "/stale"]);
    let doc = got["/stale"].json();
    assert_eq!(doc["event"], "status.stale");
    assert_eq!(doc["command"], "status");
    assert_eq!(doc["environment"], "dev");
    assert_eq!(doc["stale"][0]["environment"], "dev");
    assert_eq!(doc["stale"][0]["newest_valid_backup_age_secs"], 3 * 3600);
    assert_eq!(doc["stale"][0]["max_backup_age_secs"], 3600);
    let phone = &got["/phone"];
    assert_eq!(
        phone.headers["title"],
        "faber-db: dev: no backup within max_backup_age"
    );
    assert_eq!(phone.headers["priority"], "default");
    assert!(
        phone
            .text()
            .starts_with("dev: newest valid backup 3h old (max_backup_age 1h)\n"),
        "{}",
        phone.text()
    );
    let events = notify_events(&p);
    assert_eq!(events.len(), 2);
    assert!(
        events
            .iter()
            .all(|e| e["ok"] == true && e["environment"] == "dev")
    );
}

#[test]
fn a_failed_target_is_a_warning_naming_it_never_its_url() {
    let (url, rx) = listener("500 Internal Server Error");
    let p = Project::with_config(&format!(
        "{DEFAULT_CONFIG}\n[notify]\nformat = \"slack\"\non = [\"success\"]\n\
         [[notify.targets]]\nwebhook_url_env = \"SLACK_HOOK\"\n\
         [[notify.targets]]\nwebhook_url_env = \"NTFY_TOPIC\"\nformat = \"ntfy\"\n"
    ))
    .with_var("SLACK_HOOK", &format!("{url}/services/T0/B0/s3cr3t"))
    .seeded("db/dev.sqlite3");
    let run = p
        .run(&["backup", "dev"])
        .code(0)
        .stderr_has("the slack notification (notify.targets #1) was not delivered")
        .stderr_has("500")
        .stderr_has("no ntfy notification (notify.targets #2): variable NTFY_TOPIC is not set");
    assert!(!run.stderr.contains("s3cr3t"), "{}", run.stderr);
    assert_eq!(paths(&arrived(&rx)), ["/services/T0/B0/s3cr3t"]);
    let events = notify_events(&p);
    assert_eq!(events.len(), 1, "an unset variable sends nothing");
    assert_eq!(events[0]["ok"], false);
    assert!(!events[0].to_string().contains("s3cr3t"));
}

#[test]
fn wrong_notify_settings_are_config_errors_naming_the_key() {
    for (notify, said) in [
        (
            "[notify]\nformat = \"email\"\n",
            "notify.format = \"email\" is not a notification format; use json, slack, discord, teams or ntfy",
        ),
        (
            "[notify]\non = [\"failure\", \"always\"]\n",
            "notify.on: \"always\" is not an event to notify of; use failure, success or stale",
        ),
        (
            "[[notify.targets]]\nwebhook_url_env = \"A\"\n[[notify.targets]]\nwebhook_url_env = \"B\"\nformat = \"msteams\"\n",
            "notify.targets #2: format = \"msteams\" is not a notification format",
        ),
        (
            "[[notify.targets]]\nwebhook_url_env = \"A\"\non = [\"stale\", \"sucess\"]\n",
            "notify.targets #1: on: \"sucess\" is not an event",
        ),
        (
            "[[notify.targets]]\nwebhook_url = \"https://hooks.example.com/x\"\nwebhook_url_env = \"A\"\n",
            "notify.targets #1: both webhook_url and webhook_url_env are set; keep one",
        ),
        (
            "[[notify.targets]]\nformat = \"discord\"\n",
            "notify.targets #1: neither webhook_url nor webhook_url_env is set; give one",
        ),
        (
            "[[notify.targets]]\nwebhook_url_env = \"A\"\non_success = true\n",
            "on_success",
        ),
    ] {
        let p = Project::with_config(&format!("{DEFAULT_CONFIG}\n{notify}"));
        let run = p.run(&["list"]).code(1).stderr_has(said);
        assert!(run.stderr.contains("hint: "), "{}", run.stderr);
    }
}
