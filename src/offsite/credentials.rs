//! AWS credentials for the off-site bucket: the standard variables, else a profile of the shared
//! credentials file. Never faber-db's config.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::vars::Vars;

/// AWS credentials: the standard variables, else a profile of the shared credentials file.
pub(super) struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl Credentials {
    pub fn find(vars: &Vars) -> Result<Credentials> {
        if let (Some(id), Some(secret)) = (
            vars.get("AWS_ACCESS_KEY_ID"),
            vars.get("AWS_SECRET_ACCESS_KEY"),
        ) {
            return Ok(Credentials {
                access_key_id: id.to_string(),
                secret_access_key: secret.to_string(),
                session_token: vars.get("AWS_SESSION_TOKEN").map(str::to_string),
            });
        }
        let profile = vars.get("AWS_PROFILE").unwrap_or("default");
        let file = vars
            .get("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .or_else(|| {
                vars.get("HOME")
                    .map(|h| Path::new(h).join(".aws/credentials"))
            });
        let missing = || {
            Error::config("no AWS credentials for the off-site storage").with_hint(
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE naming a \
                 profile of ~/.aws/credentials; credentials are never read from faber-db's config",
            )
        };
        let Some(file) = file else {
            return Err(missing());
        };
        let Ok(text) = std::fs::read_to_string(&file) else {
            return Err(missing());
        };
        let section = profile_section(&text, profile);
        match (
            section.get("aws_access_key_id"),
            section.get("aws_secret_access_key"),
        ) {
            (Some(id), Some(secret)) => Ok(Credentials {
                access_key_id: id.clone(),
                secret_access_key: secret.clone(),
                session_token: section.get("aws_session_token").cloned(),
            }),
            _ => Err(missing().add_hint(format!(
                "{} has no keys for profile `{profile}`",
                file.display()
            ))),
        }
    }
}

/// The `key = value` pairs of `[profile]` in an INI-style credentials file.
fn profile_section(text: &str, profile: &str) -> std::collections::BTreeMap<String, String> {
    let mut pairs = std::collections::BTreeMap::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == profile;
            continue;
        }
        if inside && let Some((k, v)) = line.split_once('=') {
            pairs.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::profile_section;

    #[test]
    fn a_profile_is_read_from_its_own_section_only() {
        let text = "[default]\naws_access_key_id = A\naws_secret_access_key = B\n\n\
                    # comment\n[ci]\nAWS_ACCESS_KEY_ID=C\naws_secret_access_key= D \n";
        let ci = profile_section(text, "ci");
        assert_eq!(ci.get("aws_access_key_id").map(String::as_str), Some("C"));
        assert_eq!(
            ci.get("aws_secret_access_key").map(String::as_str),
            Some("D")
        );
        assert_eq!(profile_section(text, "default").len(), 2);
        assert!(profile_section(text, "other").is_empty());
    }
}
