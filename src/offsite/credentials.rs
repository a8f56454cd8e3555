//! AWS credentials for the off-site bucket, found as the AWS SDKs find them — never in
//! faber-db's config: the standard variables; a profile of the shared credentials file
//! (`AWS_PROFILE`, else `default`), then of the shared config file (its keys, its
//! `credential_process`, or its SSO role's: [`super::aws_config`]); a web identity token exchanged at STS for a role
//! (`AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN`: EKS's IRSA, GitHub's OIDC); the container's
//! credentials endpoint (ECS, `AWS_CONTAINER_CREDENTIALS_*`); the instance's metadata service
//! (EC2), when it answers. The last three give short-lived keys, which `object_store` fetches
//! and renews itself.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::vars::Vars;

/// Where the bucket's credentials come from.
pub(super) enum Credentials {
    /// Keys given as they are: from the variables or a profile.
    Keys {
        access_key_id: String,
        secret_access_key: String,
        session_token: Option<String>,
        /// `AWS_ACCESS_KEY_ID`, `profile ci of ~/.aws/credentials`.
        from: String,
    },
    /// A token file exchanged at STS for the role's keys.
    WebIdentity {
        token_file: String,
        role_arn: String,
        session_name: Option<String>,
        sts_endpoint: Option<String>,
    },
    /// The container's credentials endpoint.
    Container {
        relative_uri: Option<String>,
        full_uri: Option<String>,
        token_file: Option<String>,
    },
    /// The instance's metadata service.
    InstanceMetadata { endpoint: Option<String> },
}

/// The metadata service's address when no variable names another.
const IMDS: &str = "http://169.254.169.254";

impl Credentials {
    pub fn find(vars: &Vars) -> Result<Credentials> {
        if let (Some(id), Some(secret)) = (
            vars.get("AWS_ACCESS_KEY_ID"),
            vars.get("AWS_SECRET_ACCESS_KEY"),
        ) {
            return Ok(Credentials::Keys {
                access_key_id: id.to_string(),
                secret_access_key: secret.to_string(),
                session_token: vars.get("AWS_SESSION_TOKEN").map(str::to_string),
                from: "AWS_ACCESS_KEY_ID".into(),
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
        let section = file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .map(|text| profile_section(&text, profile))
            .unwrap_or_default();
        if let (Some(id), Some(secret), Some(file)) = (
            section.get("aws_access_key_id"),
            section.get("aws_secret_access_key"),
            &file,
        ) {
            return Ok(Credentials::Keys {
                access_key_id: id.clone(),
                secret_access_key: secret.clone(),
                session_token: section.get("aws_session_token").cloned(),
                from: format!("profile {profile} of {}", file.display()),
            });
        }
        if let Some(found) = super::aws_config::profile_credentials(vars, profile)? {
            return Ok(found);
        }
        if let (Some(token_file), Some(role_arn)) = (
            vars.get("AWS_WEB_IDENTITY_TOKEN_FILE"),
            vars.get("AWS_ROLE_ARN"),
        ) {
            return Ok(Credentials::WebIdentity {
                token_file: token_file.to_string(),
                role_arn: role_arn.to_string(),
                session_name: vars.get("AWS_ROLE_SESSION_NAME").map(str::to_string),
                sts_endpoint: vars.get("AWS_ENDPOINT_URL_STS").map(str::to_string),
            });
        }
        let relative_uri = vars.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
        let full_uri = vars.get("AWS_CONTAINER_CREDENTIALS_FULL_URI");
        if relative_uri.is_some() || full_uri.is_some() {
            return Ok(Credentials::Container {
                relative_uri: relative_uri.map(str::to_string),
                full_uri: full_uri.map(str::to_string),
                token_file: vars
                    .get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
                    .map(str::to_string),
            });
        }
        let disabled = vars
            .get("AWS_EC2_METADATA_DISABLED")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let endpoint = vars.get("AWS_EC2_METADATA_SERVICE_ENDPOINT");
        if !disabled && answers(endpoint.unwrap_or(IMDS)) {
            return Ok(Credentials::InstanceMetadata {
                endpoint: endpoint.map(str::to_string),
            });
        }
        Err(
            Error::config("no AWS credentials for the off-site storage").with_hint(format!(
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE naming a profile of \
             ~/.aws/credentials{} or ~/.aws/config (keys, credential_process or SSO), or \
             AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN; on ECS or EC2 \
             the container's or instance's role is used; credentials are never read from \
             faber-db's config",
                match &file {
                    Some(f) if f.is_file() =>
                        format!(" ({} has no keys for profile `{profile}`)", f.display()),
                    _ => String::new(),
                }
            )),
        )
    }

    /// Where they come from, as `doctor` says it: never a secret.
    pub fn describe(&self) -> String {
        match self {
            Credentials::Keys { from, .. } => from.clone(),
            Credentials::WebIdentity { role_arn, .. } => {
                format!("a web identity token exchanged for role {role_arn}")
            }
            Credentials::Container { .. } => "the container's credentials endpoint".into(),
            Credentials::InstanceMetadata { .. } => "the instance's metadata service".into(),
        }
    }
}

/// Whether the metadata service at `url` hands out a session token (IMDSv2) within a second or
/// two: off EC2 nothing answers, or something else does (a proxy that denies the address), and
/// the search ends there instead of failing at every request.
fn answers(url: &str) -> bool {
    answers_200(url, |host| {
        format!(
            "PUT /latest/api/token HTTP/1.1\r\nHost: {host}\r\n\
             X-aws-ec2-metadata-token-ttl-seconds: 60\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n"
        )
    })
}

/// Whether the HTTP service at `url` answers the request `request(host)` makes with 200,
/// within a second to connect and a second per read or write: how a cloud's metadata service is
/// told from an address where nothing (or something else) listens.
pub(super) fn answers_200(url: &str, request: impl Fn(&str) -> String) -> bool {
    use std::io::{Read, Write};
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    let Ok(addrs) = parsed.socket_addrs(|| Some(80)) else {
        return false;
    };
    let request = request(parsed.host_str().unwrap_or_default());
    addrs.iter().any(|a| {
        let Ok(mut stream) = std::net::TcpStream::connect_timeout(a, Duration::from_secs(1)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
        let mut head = [0u8; 12];
        stream.write_all(request.as_bytes()).is_ok()
            && stream.read_exact(&mut head).is_ok()
            && head.starts_with(b"HTTP/1.")
            && &head[9..12] == b"200"
    })
}

/// The `key = value` pairs of `[profile]` in an INI-style credentials file.
pub(super) fn profile_section(
    text: &str,
    profile: &str,
) -> std::collections::BTreeMap<String, String> {
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
