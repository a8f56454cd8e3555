//! `[notify]` resolved: the webhooks told of what faber-db did, each with the format its service
//! reads and the events it asked for. The single `[notify]` form of earlier versions is one
//! `json` target; `[[notify.targets]]` add more.

use super::raw::{RawNotify, RawNotifyTarget};

/// The body a target receives, as its service documents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyFormat {
    /// faber-db's own JSON document (the default, and the only one before formats).
    Json,
    /// A Slack incoming webhook: `text` and a mrkdwn section block.
    Slack,
    /// A Discord webhook: `content` and one embed.
    Discord,
    /// A Microsoft Teams Workflows webhook: an Adaptive Card.
    Teams,
    /// An ntfy topic URL: plain text, with `Title`, `Priority` and `Tags` headers.
    Ntfy,
}

impl NotifyFormat {
    pub const ALL: [NotifyFormat; 5] = [
        NotifyFormat::Json,
        NotifyFormat::Slack,
        NotifyFormat::Discord,
        NotifyFormat::Teams,
        NotifyFormat::Ntfy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            NotifyFormat::Json => "json",
            NotifyFormat::Slack => "slack",
            NotifyFormat::Discord => "discord",
            NotifyFormat::Teams => "teams",
            NotifyFormat::Ntfy => "ntfy",
        }
    }
}

/// What a target is told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NotifyOn {
    /// A backup, restore, rollback or migrate that failed.
    Failure,
    /// One that succeeded.
    Success,
    /// `status` found an environment whose newest valid backup is older than its
    /// `max_backup_age`.
    Stale,
}

impl NotifyOn {
    pub const ALL: [NotifyOn; 3] = [NotifyOn::Failure, NotifyOn::Success, NotifyOn::Stale];

    pub fn name(self) -> &'static str {
        match self {
            NotifyOn::Failure => "failure",
            NotifyOn::Success => "success",
            NotifyOn::Stale => "stale",
        }
    }
}

/// One webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyTarget {
    /// Where it is configured, as warnings and the audit log name it: `notify`, or
    /// `notify.targets #2` (counted from 1).
    pub name: String,
    /// The URL given inline. With neither this nor `url_var`, the URL is read from
    /// `FABER_WEBHOOK_URL` (the single `[notify]` form only).
    pub url: Option<String>,
    /// The variable holding the URL.
    pub url_var: Option<String>,
    pub format: NotifyFormat,
    /// The events it is told of, sorted, without repeats.
    pub on: Vec<NotifyOn>,
}

impl NotifyTarget {
    pub fn wants(&self, event: NotifyOn) -> bool {
        self.on.contains(&event)
    }
}

/// Every webhook `[notify]` names, in the order written: the one in `[notify]` itself first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    pub targets: Vec<NotifyTarget>,
}

/// `raw` resolved, or what is wrong with it, its key named. `[notify]`'s own `format` and `on`
/// are those of its webhook and the defaults of each target; `on_success = true` adds
/// `success` to them. `[notify]` has a webhook of its own when it names a URL or a variable, or
/// when it has no targets (then the URL is in `FABER_WEBHOOK_URL`, as before targets).
pub(super) fn resolve(raw: RawNotify) -> Result<Notify, String> {
    let format = match &raw.format {
        Some(f) => parse_format(f).map_err(|e| format!("notify.format = {e}"))?,
        None => NotifyFormat::Json,
    };
    let mut on = match &raw.on {
        Some(list) => parse_on(list).map_err(|e| format!("notify.on: {e}"))?,
        None => vec![NotifyOn::Failure],
    };
    if raw.on_success && !on.contains(&NotifyOn::Success) {
        on.push(NotifyOn::Success);
        on.sort();
    }
    if raw.webhook_url.is_some() && raw.webhook_url_env.is_some() {
        return Err("notify: both webhook_url and webhook_url_env are set; keep one".into());
    }
    let mut targets = Vec::new();
    if raw.webhook_url.is_some() || raw.webhook_url_env.is_some() || raw.targets.is_empty() {
        targets.push(NotifyTarget {
            name: "notify".into(),
            url: raw.webhook_url,
            url_var: raw.webhook_url_env,
            format,
            on: on.clone(),
        });
    }
    for (i, t) in raw.targets.into_iter().enumerate() {
        targets.push(target(
            &format!("notify.targets #{}", i + 1),
            t,
            format,
            &on,
        )?);
    }
    Ok(Notify { targets })
}

/// One `[[notify.targets]]`, named `name`, with `[notify]`'s format and events as defaults.
fn target(
    name: &str,
    raw: RawNotifyTarget,
    format: NotifyFormat,
    on: &[NotifyOn],
) -> Result<NotifyTarget, String> {
    let format = match &raw.format {
        Some(f) => parse_format(f).map_err(|e| format!("{name}: format = {e}"))?,
        None => format,
    };
    let on = match &raw.on {
        Some(list) => parse_on(list).map_err(|e| format!("{name}: on: {e}"))?,
        None => on.to_vec(),
    };
    match (&raw.webhook_url, &raw.webhook_url_env) {
        (Some(_), Some(_)) => Err(format!(
            "{name}: both webhook_url and webhook_url_env are set; keep one"
        )),
        (None, None) => Err(format!(
            "{name}: neither webhook_url nor webhook_url_env is set; give one"
        )),
        _ => Ok(NotifyTarget {
            name: name.to_string(),
            url: raw.webhook_url,
            url_var: raw.webhook_url_env,
            format,
            on,
        }),
    }
}

fn parse_format(text: &str) -> Result<NotifyFormat, String> {
    NotifyFormat::ALL
        .into_iter()
        .find(|f| f.name() == text)
        .ok_or_else(|| {
            format!(
                "\"{}\" is not a notification format; use {}",
                crate::ids::shorten(text),
                one_of(&NotifyFormat::ALL.map(NotifyFormat::name))
            )
        })
}

fn parse_on(list: &[String]) -> Result<Vec<NotifyOn>, String> {
    let mut on = Vec::new();
    for text in list {
        let event = NotifyOn::ALL
            .into_iter()
            .find(|e| e.name() == text)
            .ok_or_else(|| {
                format!(
                    "\"{}\" is not an event to notify of; use {}",
                    crate::ids::shorten(text),
                    one_of(&NotifyOn::ALL.map(NotifyOn::name))
                )
            })?;
        on.push(event);
    }
    on.sort();
    on.dedup();
    Ok(on)
}

/// `a, b or c`.
fn one_of(names: &[&str]) -> String {
    match names.split_last() {
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<Notify, String> {
        resolve(toml::from_str(toml_text).unwrap())
    }

    #[test]
    fn the_single_form_is_one_json_target() {
        let n = parse("webhook_url_env = \"HOOK\"\non_success = true").unwrap();
        assert_eq!(
            n.targets,
            vec![NotifyTarget {
                name: "notify".into(),
                url: None,
                url_var: Some("HOOK".into()),
                format: NotifyFormat::Json,
                on: vec![NotifyOn::Failure, NotifyOn::Success],
            }]
        );
        // An empty [notify] reads FABER_WEBHOOK_URL, failures only.
        let n = parse("").unwrap();
        assert_eq!(n.targets.len(), 1);
        assert_eq!(
            (n.targets[0].url_var.as_deref(), &n.targets[0].on[..]),
            (None, &[NotifyOn::Failure][..])
        );
    }

    #[test]
    fn targets_inherit_the_format_and_name_their_place() {
        let n = parse(
            "format = \"slack\"\n\
             [[targets]]\nwebhook_url_env = \"A\"\n\
             [[targets]]\nwebhook_url = \"https://ntfy.sh/x\"\nformat = \"ntfy\"\n\
             on = [\"stale\", \"failure\", \"stale\"]\n",
        )
        .unwrap();
        assert_eq!(
            n.targets.len(),
            2,
            "no URL of its own: [notify] is only defaults"
        );
        assert_eq!(n.targets[0].name, "notify.targets #1");
        assert_eq!(n.targets[0].format, NotifyFormat::Slack);
        assert_eq!(n.targets[0].on, vec![NotifyOn::Failure]);
        assert_eq!(n.targets[1].format, NotifyFormat::Ntfy);
        assert_eq!(n.targets[1].on, vec![NotifyOn::Failure, NotifyOn::Stale]);
        assert!(n.targets[1].wants(NotifyOn::Stale) && !n.targets[1].wants(NotifyOn::Success));
    }

    #[test]
    fn wrong_values_are_refused_with_their_key() {
        for (text, said) in [
            (
                "format = \"email\"",
                "notify.format = \"email\" is not a notification format; use json, slack, discord, teams or ntfy",
            ),
            (
                "on = [\"sucess\"]",
                "notify.on: \"sucess\" is not an event to notify of; use failure, success or stale",
            ),
            (
                "[[targets]]\nwebhook_url_env = \"A\"\nformat = \"Slack\"",
                "notify.targets #1: format = \"Slack\"",
            ),
            (
                "[[targets]]\nwebhook_url_env = \"A\"\n[[targets]]\nwebhook_url_env = \"B\"\non = [\"always\"]",
                "notify.targets #2: on: \"always\"",
            ),
            (
                "[[targets]]\nwebhook_url_env = \"A\"\nwebhook_url = \"https://x\"",
                "notify.targets #1: both webhook_url and webhook_url_env",
            ),
            (
                "[[targets]]\nformat = \"teams\"",
                "notify.targets #1: neither webhook_url nor webhook_url_env",
            ),
            (
                "webhook_url_env = \"A\"\nwebhook_url = \"https://x\"",
                "notify: both webhook_url and webhook_url_env",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.starts_with(said), "{text}: {e}");
        }
    }
}
