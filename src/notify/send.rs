//! One POST of a notification. The URL is never part of an error: webhook URLs (and ntfy topic
//! URLs) often carry their token in the path, so only the scheme and host are named.

use std::time::Duration;

use super::format::Request;
use crate::error::{Error, Result};

/// How long one delivery may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(10);

/// POSTs `request` to `url`; an answer outside 2xx is an error.
pub fn post(url: &str, request: &Request) -> Result<()> {
    crate::tls::ready();
    let parsed = url::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| {
            Error::config("the webhook URL is not an http:// or https:// URL")
                .with_hint("check [notify] in the config, or the variable that holds the URL")
        })?;
    let where_to = format!("{}://{}", parsed.scheme(), parsed.host_str().unwrap_or("?"));
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
        let mut post = client
            .post(parsed)
            .header("content-type", request.content_type)
            .body(request.body.clone());
        for (name, value) in &request.headers {
            post = post.header(*name, value);
        }
        let response = post.send().await.map_err(failed)?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(Error::tool(format!("POST to {where_to} answered {status}")))
        }
    })
}
