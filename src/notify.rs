//! Webhook notifications (`[notify]`): a JSON POST when a backup, restore, rollback or migrate
//! fails (and, with `on_success`, when it succeeds). A webhook that fails is reported as a
//! warning and in the audit log; it never changes the command's outcome.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::Report;
use crate::config::Notify;
use crate::error::{Error, Result};
use crate::session::Session;

/// The variable read for the webhook URL when the config names none.
pub const DEFAULT_URL_VAR: &str = "FABER_WEBHOOK_URL";
/// How long one delivery may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What the webhook receives.
#[derive(Debug, Serialize)]
pub struct Payload<'a> {
    /// `backup.failed`, `restore.succeeded`, …
    pub event: String,
    pub command: &'a str,
    pub ok: bool,
    pub environment: Option<&'a str>,
    /// The backup taken or restored, when the command got that far.
    pub backup_id: Option<String>,
    /// `{code, kind, message, hint}`, as `--json` prints errors; null on success.
    pub error: Option<Value>,
    pub duration_ms: u64,
    pub time: chrono::DateTime<chrono::Utc>,
    pub host: Option<String>,
    pub faber_db_version: &'static str,
}

/// Sends the notification of a finished command, when the config asks for one.
pub fn after(
    session: &Session,
    command: &'static str,
    env: Option<&str>,
    result: &Result<Report>,
    duration: Duration,
) {
    let Some(config) = &session.config.notify else {
        return;
    };
    let failure = match result {
        Ok(report) => report.failure.as_ref(),
        Err(e) => Some(e),
    };
    if failure.is_none() && !config.on_success {
        return;
    }
    let Some(url) = webhook_url(config, session) else {
        session.events().warn(&format!(
            "no webhook notification: variable {} is not set",
            config.url_var.as_deref().unwrap_or(DEFAULT_URL_VAR)
        ));
        return;
    };
    let backup_id = result.as_ref().ok().and_then(backup_id);
    let payload = Payload {
        event: format!(
            "{command}.{}",
            if failure.is_none() {
                "succeeded"
            } else {
                "failed"
            }
        ),
        command,
        ok: failure.is_none(),
        environment: env,
        backup_id,
        error: failure.map(crate::ui::error_json),
        duration_ms: crate::human::millis(duration),
        time: chrono::Utc::now(),
        host: crate::audit::host(),
        faber_db_version: env!("CARGO_PKG_VERSION"),
    };
    let sent = post(&url, &payload);
    if let Err(e) = &sent {
        session.events().warn(&format!(
            "the webhook notification was not delivered: {}",
            e.one_line()
        ));
    }
    crate::audit::log_event(
        session,
        "notify",
        env,
        payload.backup_id.as_deref(),
        sent.is_ok(),
        Some(match &sent {
            Ok(()) => payload.event.clone(),
            Err(e) => format!("{}: {}", payload.event, e.one_line()),
        }),
    );
}

/// The webhook's URL: inline in the config, else from the variable it names, else from
/// `FABER_WEBHOOK_URL`.
fn webhook_url(config: &Notify, session: &Session) -> Option<String> {
    config.url.clone().or_else(|| {
        session
            .vars
            .get(config.url_var.as_deref().unwrap_or(DEFAULT_URL_VAR))
            .map(str::to_string)
    })
}

/// The backup a command's report names: the one taken, restored or rolled back to (`backup`,
/// an entry or an ID).
fn backup_id(report: &Report) -> Option<String> {
    match report.body.get("backup")? {
        Value::String(id) => Some(id.clone()),
        Value::Object(o) => o.get("id").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// One POST of `payload` as JSON. The URL is never part of the error: webhook URLs often carry
/// their token in the path.
fn post(url: &str, payload: &Payload<'_>) -> Result<()> {
    let parsed = url::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| {
            Error::config("the webhook URL is not an http:// or https:// URL")
                .with_hint("check [notify] in the config, or the variable that holds the URL")
        })?;
    let where_to = format!("{}://{}", parsed.scheme(), parsed.host_str().unwrap_or("?"));
    let body = serde_json::to_vec(payload).expect("payloads serialize");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::tool("cannot start the webhook client").caused_by(e))?;
    let failed = |e: reqwest::Error| {
        Error::tool(format!("POST to {where_to} failed")).caused_by(e.without_url())
    };
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .user_agent(concat!("faber-db/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(failed)?;
        let response = client
            .post(parsed)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(failed)?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(Error::tool(format!("POST to {where_to} answered {status}")))
        }
    })
}
