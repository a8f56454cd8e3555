//! Notifications (`[notify]`): what is said, and to which webhooks. A backup, restore, rollback
//! or migrate that fails (or succeeds), and a `status` that finds a backup older than
//! `max_backup_age`, make one [`Message`]; each target that asked for that event gets it in its
//! own format. A delivery that fails is a warning and an audit event; it never changes the
//! command's outcome.
//!
//! The message is built in [`message`], shaped per service in [`format`], POSTed in [`send`].

pub mod format;
pub mod message;
mod send;

use std::time::Duration;

use serde_json::Value;

pub use message::{Message, Problem, Stale};

use crate::Report;
use crate::config::{NotifyFormat, NotifyOn, NotifyTarget};
use crate::error::Result;
use crate::ops::status::EnvStatus;
use crate::session::Session;

/// The variable read for the webhook URL when `[notify]` names none.
pub const DEFAULT_URL_VAR: &str = "FABER_WEBHOOK_URL";

/// Sends the notification of a finished command to the targets that asked for its outcome.
pub fn after(
    session: &Session,
    command: &'static str,
    env: Option<&str>,
    result: &Result<Report>,
    duration: Duration,
) {
    let failure = match result {
        Ok(report) => report.failure.as_ref(),
        Err(e) => Some(e),
    };
    let event = if failure.is_some() {
        NotifyOn::Failure
    } else {
        NotifyOn::Success
    };
    if !wanted(session, event) {
        return;
    }
    let backup = result
        .as_ref()
        .ok()
        .and_then(|r| r.body.get("backup"))
        .unwrap_or(&Value::Null);
    let message = Message {
        event,
        command: command.to_string(),
        environment: env.map(str::to_string),
        backup_id: backup_id(backup),
        backup_size_bytes: backup.get("size_bytes").and_then(Value::as_u64),
        error: failure.map(Problem::of),
        stale: Vec::new(),
        duration_ms: Some(crate::human::millis(duration)),
        time: chrono::Utc::now(),
        host: crate::audit::host(),
    };
    deliver(session, &message);
}

/// Tells the targets that asked for `stale` of the environments `status` found without a
/// valid backup within their `max_backup_age`, in one message.
pub fn stale(session: &Session, overdue: &[&EnvStatus]) {
    if overdue.is_empty() || !wanted(session, NotifyOn::Stale) {
        return;
    }
    let stale: Vec<Stale> = overdue
        .iter()
        .map(|s| Stale {
            environment: s.environment.clone(),
            newest_valid_backup_age_secs: s
                .newest_valid_backup_age_secs
                .map(|a| a.max(0).cast_unsigned()),
            max_backup_age_secs: s.max_backup_age_secs.unwrap_or(0),
        })
        .collect();
    let message = Message {
        event: NotifyOn::Stale,
        command: "status".into(),
        environment: match stale.as_slice() {
            [one] => Some(one.environment.clone()),
            _ => None,
        },
        backup_id: None,
        backup_size_bytes: None,
        error: None,
        stale,
        duration_ms: None,
        time: session.ctx.now,
        host: crate::audit::host(),
    };
    deliver(session, &message);
}

/// Whether any target asked for `event`.
fn wanted(session: &Session, event: NotifyOn) -> bool {
    session
        .config
        .notify
        .as_ref()
        .is_some_and(|n| n.targets.iter().any(|t| t.wants(event)))
}

/// `message` to each target that asked for its event, one after the other; each delivery is
/// an audit event, each failure a warning.
fn deliver(session: &Session, message: &Message) {
    let Some(config) = &session.config.notify else {
        return;
    };
    let event = message.event_name();
    for target in config.targets.iter().filter(|t| t.wants(message.event)) {
        let what = describe(target);
        let Some(url) = webhook_url(target, session) else {
            session.events().warn(&format!(
                "no {what}: variable {} is not set",
                target.url_var.as_deref().unwrap_or(DEFAULT_URL_VAR)
            ));
            continue;
        };
        let sent = send::post(&url, &format::request(target.format, message));
        if let Err(e) = &sent {
            session
                .events()
                .warn(&format!("the {what} was not delivered: {}", e.one_line()));
        }
        let detail = if target.name == "notify" {
            event.clone()
        } else {
            format!("{event} via {} ({})", target.name, target.format.name())
        };
        crate::audit::log_event(
            session,
            "notify",
            message.environment.as_deref(),
            message.backup_id.as_deref(),
            sent.is_ok(),
            Some(match &sent {
                Ok(()) => detail,
                Err(e) => format!("{detail}: {}", e.one_line()),
            }),
        );
    }
}

/// How warnings name a target: `webhook notification` for `[notify]`'s own JSON webhook, as
/// before targets; `slack notification (notify.targets #2)` otherwise.
fn describe(target: &NotifyTarget) -> String {
    let kind = match target.format {
        NotifyFormat::Json => "webhook",
        other => other.name(),
    };
    if target.name == "notify" {
        format!("{kind} notification")
    } else {
        format!("{kind} notification ({})", target.name)
    }
}

/// The target's URL: inline in the config, else from the variable it names, else from
/// `FABER_WEBHOOK_URL`.
fn webhook_url(target: &NotifyTarget, session: &Session) -> Option<String> {
    target.url.clone().or_else(|| {
        session
            .vars
            .get(target.url_var.as_deref().unwrap_or(DEFAULT_URL_VAR))
            .map(str::to_string)
    })
}

/// The backup a command's report names: the one taken, restored or rolled back to (`backup`,
/// an entry or an ID).
fn backup_id(backup: &Value) -> Option<String> {
    match backup {
        Value::String(id) => Some(id.clone()),
        Value::Object(o) => o.get("id").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}
