//! The message a notification carries, said once and in no service's shape: what happened, to
//! which environment, by which command, the error and its hint, the backup and its size. Each
//! format in [`super::format`] is built from it.

use serde::Serialize;

use crate::config::NotifyOn;
use crate::human;

/// A failed command's error, as `--json` prints errors: `{code, kind, message, hint}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub code: u8,
    pub kind: String,
    pub message: String,
    pub hint: Option<String>,
}

impl Problem {
    pub fn of(err: &crate::Error) -> Problem {
        Problem {
            code: err.exit_code(),
            kind: err.kind().name().to_string(),
            message: err.one_line(),
            hint: crate::hints::text(err),
        }
    }
}

/// An environment whose newest valid backup is older than its `max_backup_age`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stale {
    pub environment: String,
    /// The newest valid backup's age in seconds; `None` when there is no valid backup.
    pub newest_valid_backup_age_secs: Option<u64>,
    pub max_backup_age_secs: u64,
}

impl Stale {
    /// `newest valid backup 3d old (max_backup_age 24h)`.
    pub fn describe(&self) -> String {
        let max = human::age(self.max_backup_age_secs);
        match self.newest_valid_backup_age_secs {
            Some(age) => format!(
                "newest valid backup {} old (max_backup_age {max})",
                human::age(age)
            ),
            None => format!("no valid backup (max_backup_age {max})"),
        }
    }
}

/// What happened, for every format to say.
#[derive(Debug, Clone)]
pub struct Message {
    /// Which of the events a target can ask for this is.
    pub event: NotifyOn,
    /// `backup`, `restore`, `rollback`, `migrate`; `status` for a stale backup.
    pub command: String,
    pub environment: Option<String>,
    pub backup_id: Option<String>,
    pub backup_size_bytes: Option<u64>,
    pub error: Option<Problem>,
    /// The environments found stale (event `Stale` only).
    pub stale: Vec<Stale>,
    pub duration_ms: Option<u64>,
    pub time: chrono::DateTime<chrono::Utc>,
    pub host: Option<String>,
}

impl Message {
    /// `backup.failed`, `restore.succeeded`, `status.stale`: the JSON document's `event`.
    pub fn event_name(&self) -> String {
        let what = match self.event {
            NotifyOn::Failure => "failed",
            NotifyOn::Success => "succeeded",
            NotifyOn::Stale => "stale",
        };
        format!("{}.{what}", self.command)
    }

    /// One line saying it all: `backup of production failed`.
    pub fn title(&self) -> String {
        let env = self.environment.as_deref().unwrap_or("?");
        match (self.event, self.stale.as_slice()) {
            (NotifyOn::Failure, _) => format!("{} of {env} failed", self.command),
            (NotifyOn::Success, _) => format!("{} of {env} succeeded", self.command),
            (NotifyOn::Stale, [one]) => {
                format!("{}: no backup within max_backup_age", one.environment)
            }
            (NotifyOn::Stale, many) => format!(
                "{} without a backup within max_backup_age",
                human::count(u64::try_from(many.len()).unwrap_or(u64::MAX), "environment")
            ),
        }
    }

    /// The backup's size as people read it: `12.3 MiB`.
    pub fn size(&self) -> Option<String> {
        self.backup_size_bytes.map(human::size)
    }

    /// The short facts, label and value, in the order shown: environment, command, backup,
    /// size, duration, host. The error, its hint and the stale environments are the body
    /// ([`Message::details`]).
    pub fn facts(&self) -> Vec<(&'static str, String)> {
        let mut facts = Vec::new();
        if let Some(env) = &self.environment {
            facts.push(("Environment", env.clone()));
        }
        facts.push(("Command", self.command.clone()));
        if let Some(id) = &self.backup_id {
            facts.push(("Backup", id.clone()));
        }
        if let Some(size) = self.size() {
            facts.push(("Size", size));
        }
        if let Some(ms) = self.duration_ms {
            facts.push(("Duration", human::duration_ms(ms)));
        }
        if let Some(host) = &self.host {
            facts.push(("Host", host.clone()));
        }
        facts
    }

    /// The longer part, label and value: the error and its hint, or each stale environment.
    pub fn details(&self) -> Vec<(String, String)> {
        let mut details = Vec::new();
        if let Some(e) = &self.error {
            details.push(("Error".to_string(), e.message.clone()));
            if let Some(hint) = &e.hint {
                details.push(("Hint".to_string(), hint.clone()));
            }
        }
        for s in &self.stale {
            details.push((s.environment.clone(), s.describe()));
        }
        details
    }

    /// The details, then the facts.
    pub fn lines(&self) -> Vec<(String, String)> {
        let mut lines = self.details();
        lines.extend(self.facts().into_iter().map(|(l, v)| (l.to_string(), v)));
        lines
    }

    /// The whole message as plain text: the title, then one `Label: value` line each.
    pub fn text(&self) -> String {
        let mut text = format!("faber-db: {}\n", self.title());
        for (label, value) in self.lines() {
            text.push_str(&format!("{label}: {value}\n"));
        }
        text
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A failed backup of production with a long error, as every format test uses it.
    pub fn failed_backup() -> Message {
        Message {
            event: NotifyOn::Failure,
            command: "backup".into(),
            environment: Some("production".into()),
            backup_id: Some("production-20260101T120000Z".into()),
            backup_size_bytes: Some(12_897_484),
            error: Some(Problem {
                code: 3,
                kind: "connection".into(),
                message: "cannot connect to production <db.internal> & co".into(),
                hint: Some("check that the server runs".into()),
            }),
            stale: Vec::new(),
            duration_ms: Some(4200),
            time: chrono::DateTime::from_timestamp(1_767_268_800, 0).unwrap(),
            host: Some("ci-7".into()),
        }
    }

    pub fn stale_two() -> Message {
        Message {
            event: NotifyOn::Stale,
            command: "status".into(),
            environment: None,
            backup_id: None,
            backup_size_bytes: None,
            error: None,
            stale: vec![
                Stale {
                    environment: "production".into(),
                    newest_valid_backup_age_secs: Some(3 * 86_400 + 5),
                    max_backup_age_secs: 86_400,
                },
                Stale {
                    environment: "staging".into(),
                    newest_valid_backup_age_secs: None,
                    max_backup_age_secs: 7200,
                },
            ],
            duration_ms: None,
            time: chrono::DateTime::from_timestamp(1_767_268_800, 0).unwrap(),
            host: None,
        }
    }

    #[test]
    fn the_text_names_everything_once() {
        let m = failed_backup();
        assert_eq!(m.event_name(), "backup.failed");
        assert_eq!(m.size().as_deref(), Some("12.3 MiB"));
        assert_eq!(
            m.text(),
            "faber-db: backup of production failed\n\
             Error: cannot connect to production <db.internal> & co\n\
             Hint: check that the server runs\n\
             Environment: production\n\
             Command: backup\n\
             Backup: production-20260101T120000Z\n\
             Size: 12.3 MiB\n\
             Duration: 4.2 s\n\
             Host: ci-7\n"
        );
        let s = stale_two();
        assert_eq!(s.event_name(), "status.stale");
        assert_eq!(
            s.title(),
            "2 environments without a backup within max_backup_age"
        );
        assert_eq!(
            s.details(),
            vec![
                (
                    "production".to_string(),
                    "newest valid backup 3d old (max_backup_age 24h)".to_string()
                ),
                (
                    "staging".to_string(),
                    "no valid backup (max_backup_age 2h)".to_string()
                ),
            ]
        );
    }
}
