//! One [`Message`] in the shape each service documents: faber-db's JSON document, a Slack
//! incoming webhook, a Discord webhook, a Microsoft Teams Workflows webhook (an Adaptive Card),
//! an ntfy topic. Each service's length limits are kept by cutting text on a character
//! boundary, never inside one.

use serde_json::{Value, json};

use super::message::Message;
use crate::config::{NotifyFormat, NotifyOn};

/// What is POSTed: the body, its content type and any headers the format adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Request {
    fn json(doc: &Value) -> Request {
        Request {
            content_type: "application/json",
            headers: Vec::new(),
            body: serde_json::to_vec(doc).expect("payloads serialize"),
        }
    }
}

/// Slack: a section block's text holds at most 3000 characters.
const SLACK_SECTION: usize = 3000;
/// Discord: `content` 2000; an embed's title 256, description 4096, field name 256, field
/// value 1024, and all of an embed's text together 6000.
const DISCORD_CONTENT: usize = 2000;
const DISCORD_TITLE: usize = 256;
const DISCORD_DESCRIPTION: usize = 4096;
const DISCORD_FIELD_VALUE: usize = 1024;
const DISCORD_EMBED_TOTAL: usize = 6000;
/// ntfy: a body over 4096 bytes becomes an attachment, not a message.
const NTFY_BODY_BYTES: usize = 4000;

/// `message` as `format` sends it.
pub fn request(format: NotifyFormat, message: &Message) -> Request {
    match format {
        NotifyFormat::Json => Request::json(&json_document(message)),
        NotifyFormat::Slack => Request::json(&slack(message)),
        NotifyFormat::Discord => Request::json(&discord(message)),
        NotifyFormat::Teams => Request::json(&teams(message)),
        NotifyFormat::Ntfy => ntfy(message),
    }
}

/// faber-db's own document, as before formats, with `backup_size_bytes` (and `stale` for a
/// stale notification) added.
pub fn json_document(m: &Message) -> Value {
    let mut doc = json!({
        "event": m.event_name(),
        "command": m.command,
        "ok": m.event == NotifyOn::Success,
        "environment": m.environment,
        "backup_id": m.backup_id,
        "backup_size_bytes": m.backup_size_bytes,
        "error": m.error,
        "duration_ms": m.duration_ms.unwrap_or(0),
        "time": m.time,
        "host": m.host,
        "faber_db_version": env!("CARGO_PKG_VERSION"),
    });
    if m.event == NotifyOn::Stale {
        doc["stale"] = json!(m.stale);
    }
    doc
}

/// Slack's mrkdwn treats `&`, `<` and `>` as markup (`<!channel>` pings a whole channel): each
/// is written as its entity.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `{"text": …, "blocks": [section]}`: `text` is the fallback notifications show, the section
/// the message.
fn slack(m: &Message) -> Value {
    let mut body = format!("*{}*", slack_escape(&m.title()));
    for (label, value) in m.lines() {
        body.push_str(&format!(
            "\n*{}:* {}",
            slack_escape(&label),
            slack_escape(&value)
        ));
    }
    json!({
        "text": slack_escape(&format!("faber-db: {}", m.title())),
        "blocks": [{
            "type": "section",
            "text": {"type": "mrkdwn", "text": truncate(&body, SLACK_SECTION)},
        }],
    })
}

/// A colour per event: red, green, amber.
fn colour(event: NotifyOn) -> u32 {
    match event {
        NotifyOn::Failure => 0x00D9_3025,
        NotifyOn::Success => 0x002E_A043,
        NotifyOn::Stale => 0x00E3_A008,
    }
}

/// `{"content": …, "embeds": [{title, description, color, fields}]}`, mentions turned off so
/// that an `@everyone` in an error pings nobody.
fn discord(m: &Message) -> Value {
    let title = truncate(&format!("faber-db: {}", m.title()), DISCORD_TITLE).into_owned();
    let facts: Vec<(&str, String)> = m
        .facts()
        .into_iter()
        .map(|(name, value)| (name, truncate(&value, DISCORD_FIELD_VALUE).into_owned()))
        .collect();
    let fields_len: usize = facts.iter().map(|(n, v)| units(n) + units(v)).sum();
    let fields: Vec<Value> = facts
        .iter()
        .map(|(name, value)| json!({"name": name, "value": value, "inline": true}))
        .collect();
    let description: Vec<String> = m
        .details()
        .into_iter()
        .map(|(label, value)| format!("**{label}:** {value}"))
        .collect();
    let room =
        DISCORD_DESCRIPTION.min(DISCORD_EMBED_TOTAL.saturating_sub(units(&title) + fields_len));
    json!({
        "content": truncate(&title, DISCORD_CONTENT),
        "embeds": [{
            "title": title,
            "description": truncate(&description.join("\n"), room),
            "color": colour(m.event),
            "fields": fields,
            "timestamp": m.time,
        }],
        "allowed_mentions": {"parse": []},
    })
}

/// A Teams Workflows webhook's message: one Adaptive Card 1.4 with the title, the details and a
/// FactSet.
fn teams(m: &Message) -> Value {
    let colour = match m.event {
        NotifyOn::Failure => "Attention",
        NotifyOn::Success => "Good",
        NotifyOn::Stale => "Warning",
    };
    let mut body = vec![json!({
        "type": "TextBlock",
        "text": format!("faber-db: {}", m.title()),
        "weight": "Bolder",
        "size": "Medium",
        "color": colour,
        "wrap": true,
    })];
    for (label, value) in m.details() {
        body.push(
            json!({"type": "TextBlock", "text": format!("**{label}:** {value}"), "wrap": true}),
        );
    }
    let facts: Vec<Value> = m
        .facts()
        .into_iter()
        .map(|(title, value)| json!({"title": title, "value": value}))
        .collect();
    body.push(json!({"type": "FactSet", "facts": facts}));
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
            },
        }],
    })
}

/// ntfy: the text as the body; the title, priority and an emoji tag as headers.
fn ntfy(m: &Message) -> Request {
    let (priority, tag) = match m.event {
        NotifyOn::Failure => ("high", "warning"),
        NotifyOn::Success => ("default", "white_check_mark"),
        NotifyOn::Stale => ("default", "hourglass"),
    };
    let text = m.text();
    let body = text
        .split_once('\n')
        .map_or(text.as_str(), |(_, rest)| rest);
    Request {
        content_type: "text/plain; charset=utf-8",
        headers: vec![
            ("Title", header_text(&format!("faber-db: {}", m.title()))),
            ("Priority", priority.to_string()),
            ("Tags", tag.to_string()),
        ],
        body: truncate_by(body, NTFY_BODY_BYTES, char::len_utf8)
            .into_owned()
            .into_bytes(),
    }
}

/// `text` as an HTTP header may carry it: printable ASCII, anything else as `?`.
fn header_text(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// The length of `text` in UTF-16 units: never fewer than its characters, so a limit kept in
/// these units holds whichever of the two a service counts.
fn units(text: &str) -> usize {
    text.encode_utf16().count()
}

/// `text` cut to at most `max` UTF-16 units, ending in `…` when cut (see [`units`]).
pub fn truncate(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    truncate_by(text, max, char::len_utf16)
}

/// `text` cut on a character boundary so that its size, each character measured by `size`,
/// is at most `max`, `…` included when it is cut.
fn truncate_by(text: &str, max: usize, size: fn(char) -> usize) -> std::borrow::Cow<'_, str> {
    if text.chars().map(size).sum::<usize>() <= max {
        return std::borrow::Cow::Borrowed(text);
    }
    let budget = max.saturating_sub(size('…'));
    let mut used = 0;
    let mut end = 0;
    for (at, c) in text.char_indices() {
        if used + size(c) > budget {
            break;
        }
        used += size(c);
        end = at + c.len_utf8();
    }
    let mut cut = text[..end].to_string();
    if max >= size('…') {
        cut.push('…');
    }
    std::borrow::Cow::Owned(cut)
}

#[cfg(test)]
mod tests {
    use super::super::message::tests::{failed_backup, stale_two};
    use super::*;

    fn doc(format: NotifyFormat, m: &Message) -> Value {
        let r = request(format, m);
        assert_eq!(r.content_type, "application/json");
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn truncation_cuts_on_a_character_boundary() {
        assert_eq!(truncate("short", 5), "short");
        assert_eq!(truncate("abcdef", 4), "abc…");
        // 'é' is two bytes, one unit; '😀' two units: neither is split.
        assert_eq!(truncate("éééé", 3), "éé…");
        assert_eq!(truncate("a😀b", 3), "a…");
        assert_eq!(units(&truncate(&"😀".repeat(3000), 4096)), 4095);
        assert_eq!(truncate("abc", 0), "");
        // By bytes, as ntfy counts.
        assert_eq!(truncate_by("ééé", 5, char::len_utf8), "é…");
    }

    #[test]
    fn json_keeps_the_documented_keys() {
        let d = doc(NotifyFormat::Json, &failed_backup());
        assert_eq!(d["event"], "backup.failed");
        assert_eq!(d["ok"], false);
        assert_eq!(d["error"]["code"], 3);
        assert_eq!(d["error"]["hint"], "check that the server runs");
        assert_eq!(d["backup_size_bytes"], 12_897_484);
        assert_eq!(d["duration_ms"], 4200);
        assert!(d.get("stale").is_none());
        let d = doc(NotifyFormat::Json, &stale_two());
        assert_eq!(d["event"], "status.stale");
        assert_eq!(d["stale"][1]["environment"], "staging");
        assert!(d["stale"][1]["newest_valid_backup_age_secs"].is_null());
    }

    #[test]
    fn slack_is_text_and_one_escaped_mrkdwn_section() {
        let d = doc(NotifyFormat::Slack, &failed_backup());
        assert_eq!(d["text"], "faber-db: backup of production failed");
        let section = &d["blocks"][0];
        assert_eq!(section["type"], "section");
        assert_eq!(section["text"]["type"], "mrkdwn");
        let text = section["text"]["text"].as_str().unwrap();
        assert!(
            text.starts_with("*backup of production failed*\n"),
            "{text}"
        );
        assert!(
            text.contains("*Error:* cannot connect to production &lt;db.internal&gt; &amp; co")
        );
        assert!(text.contains("*Size:* 12.3 MiB"));
        let mut long = failed_backup();
        long.error.as_mut().unwrap().message = "x".repeat(10_000);
        let d = doc(NotifyFormat::Slack, &long);
        assert_eq!(
            units(d["blocks"][0]["text"]["text"].as_str().unwrap()),
            SLACK_SECTION
        );
    }

    #[test]
    fn discord_keeps_its_limits() {
        let d = doc(NotifyFormat::Discord, &failed_backup());
        assert_eq!(d["content"], "faber-db: backup of production failed");
        let embed = &d["embeds"][0];
        assert_eq!(embed["title"], d["content"]);
        assert_eq!(embed["color"], 0x00D9_3025);
        assert!(
            embed["description"]
                .as_str()
                .unwrap()
                .starts_with("**Error:** cannot connect")
        );
        assert_eq!(embed["fields"][0]["name"], "Environment");
        assert_eq!(embed["fields"][0]["value"], "production");
        assert_eq!(embed["fields"][0]["inline"], true);
        assert_eq!(d["allowed_mentions"]["parse"], json!([]));
        let mut long = failed_backup();
        long.error.as_mut().unwrap().message = "é".repeat(9000);
        let d = doc(NotifyFormat::Discord, &long);
        let description = d["embeds"][0]["description"].as_str().unwrap();
        assert_eq!(units(description), DISCORD_DESCRIPTION);
        assert!(description.ends_with('…'));
    }

    #[test]
    fn teams_is_an_adaptive_card_in_a_message() {
        let d = doc(NotifyFormat::Teams, &stale_two());
        assert_eq!(d["type"], "message");
        let attachment = &d["attachments"][0];
        assert_eq!(
            attachment["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        let card = &attachment["content"];
        assert_eq!(
            (card["type"].as_str(), card["version"].as_str()),
            (Some("AdaptiveCard"), Some("1.4"))
        );
        let body = card["body"].as_array().unwrap();
        assert_eq!(body[0]["type"], "TextBlock");
        assert_eq!(body[0]["color"], "Warning");
        assert!(
            body[1]["text"]
                .as_str()
                .unwrap()
                .starts_with("**production:** newest valid backup 3d old")
        );
        let facts = &body.last().unwrap()["facts"];
        assert_eq!(facts[0], json!({"title": "Command", "value": "status"}));
    }

    #[test]
    fn ntfy_is_plain_text_with_headers() {
        let r = request(NotifyFormat::Ntfy, &failed_backup());
        assert!(r.content_type.starts_with("text/plain"));
        assert_eq!(
            r.headers,
            vec![
                ("Title", "faber-db: backup of production failed".to_string()),
                ("Priority", "high".to_string()),
                ("Tags", "warning".to_string()),
            ]
        );
        let body = String::from_utf8(r.body).unwrap();
        assert!(body.starts_with("Error: cannot connect"), "{body}");
        assert!(body.contains("Size: 12.3 MiB\n"));
        let mut ok = failed_backup();
        ok.event = NotifyOn::Success;
        ok.error = None;
        let r = request(NotifyFormat::Ntfy, &ok);
        assert_eq!(r.headers[1], ("Priority", "default".to_string()));
        assert_eq!(r.headers[2], ("Tags", "white_check_mark".to_string()));
        assert_eq!(header_text("naïve\nline"), "na?ve?line");
    }
}
