//! The other sessions connected to a database, as a restore finds them in its way.

use serde::Serialize;

use crate::error::Error;

/// A session connected to a database, as the server lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OtherSession {
    /// The server's id of it (PostgreSQL's backend pid, MySQL's connection id).
    pub id: String,
    pub user: Option<String>,
    /// The name the client gave itself (PostgreSQL's `application_name`), if any.
    pub application: Option<String>,
    /// Where it connects from (an address, a host:port, or none for a local socket).
    pub client: Option<String>,
}

impl OtherSession {
    /// `pid 4711 (app_user, psql, 10.0.0.5)`: what a person needs to find it.
    pub fn describe(&self) -> String {
        let about: Vec<&str> = [&self.user, &self.application, &self.client]
            .into_iter()
            .filter_map(|v| v.as_deref().filter(|v| !v.is_empty()))
            .collect();
        if about.is_empty() {
            format!("session {}", self.id)
        } else {
            format!("session {} ({})", self.id, about.join(", "))
        }
    }
}

/// `sessions` said for a message: the first few described, and how many more.
pub fn describe_sessions(sessions: &[OtherSession]) -> String {
    const SHOWN: usize = 3;
    let mut text = sessions
        .iter()
        .take(SHOWN)
        .map(OtherSession::describe)
        .collect::<Vec<_>>()
        .join(", ");
    if sessions.len() > SHOWN {
        text.push_str(&format!(" and {} more", sessions.len() - SHOWN));
    }
    text
}

/// The error of a restore that finds other sessions on its target and may not end them.
pub fn sessions_busy(target: &str, sessions: &[OtherSession]) -> Error {
    Error::new(
        crate::error::Kind::Busy,
        format!(
            "{} connected to {target}: {}; nothing was restored",
            crate::human::count(sessions.len() as u64, "other session"),
            describe_sessions(sessions)
        ),
    )
    .with_hint("stop the application, or pass --terminate-connections to end its sessions, then restore again")
}
