//! A profile that signs in through IAM Identity Center (SSO): the token `aws sso login` left in
//! the SSO cache (`~/.aws/sso/cache/`) exchanged at the SSO portal for the role's short-lived
//! keys, as the AWS SDKs do. faber-db never signs in itself and never refreshes the token: an
//! expired one is an error that says to run `aws sso login` again.
//!
//! Both forms of profile are read: `sso_session = NAME` with an `[sso-session NAME]` section
//! (the cache file is named by the SHA-1 of the session's name), and the older one with
//! `sso_start_url` and `sso_region` in the profile itself (named by the SHA-1 of the URL).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha1::{Digest, Sha1};

use super::credentials::{Credentials, profile_section};
use crate::error::{Error, Result};
use crate::vars::Vars;

/// How the error of a sign-in the portal refused begins.
const REFUSED: &str = "the SSO portal refused the cached sign-in";

/// Where a profile's role keys come from (no secret in it).
#[derive(Debug)]
struct Sso {
    /// `[sso-session NAME]`'s name, or the start URL of an older profile: what names the
    /// cache file.
    cache_key: String,
    region: String,
    account_id: String,
    role_name: String,
}

/// The keys `profile` (its `pairs`, in `file`) gets from the SSO portal.
pub(super) fn credentials(
    vars: &Vars,
    profile: &str,
    pairs: &BTreeMap<String, String>,
    file: &Path,
) -> Result<Credentials> {
    let sso = read_profile(profile, pairs, file)?;
    let login = format!("run `aws sso login --profile {profile}`, then run faber-db again");
    let cache = cache_dir(vars)
        .ok_or_else(|| Error::config("no HOME to find the SSO cache in").with_hint(login.clone()))?
        .join(format!(
            "{}.json",
            hex::encode(Sha1::digest(sso.cache_key.as_bytes()))
        ));
    let token = cached_token(&cache).map_err(|e| e.with_hint(login.clone()))?;
    let endpoint = vars.get("AWS_ENDPOINT_URL_SSO").map_or_else(
        || format!("https://portal.sso.{}.amazonaws.com", sso.region),
        str::to_string,
    );
    // Only a refused sign-in wants a new one; a network failure or a bad endpoint does not.
    let keys = role_credentials(&endpoint, &token, &sso, vars).map_err(|e| {
        if e.message().starts_with(REFUSED) {
            e.with_hint(login)
        } else {
            e
        }
    })?;
    Ok(Credentials::Keys {
        access_key_id: keys.access_key_id,
        secret_access_key: keys.secret_access_key,
        session_token: Some(keys.session_token),
        from: format!(
            "SSO profile {profile} of {} (role {} in account {})",
            file.display(),
            sso.role_name,
            sso.account_id
        ),
    })
}

/// The SSO settings of `profile`, from itself and its `[sso-session]`.
fn read_profile(profile: &str, pairs: &BTreeMap<String, String>, file: &Path) -> Result<Sso> {
    let missing = |key: &str| {
        Error::config(format!(
            "SSO profile {profile} of {} has no {key}",
            file.display()
        ))
        .with_hint("`aws configure sso` writes a complete profile")
    };
    let (cache_key, region) = if let Some(session) = pairs.get("sso_session") {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let section = profile_section(&text, &format!("sso-session {session}"));
        let region = section
            .get("sso_region")
            .cloned()
            .ok_or_else(|| missing(&format!("[sso-session {session}] with sso_region")))?;
        (session.clone(), region)
    } else {
        let url = pairs
            .get("sso_start_url")
            .ok_or_else(|| missing("sso_session"))?;
        let region = pairs
            .get("sso_region")
            .cloned()
            .ok_or_else(|| missing("sso_region"))?;
        (url.clone(), region)
    };
    // The region goes into the portal's host name: letters, digits and dashes only.
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(missing("valid sso_region"));
    }
    Ok(Sso {
        cache_key,
        region,
        account_id: pairs
            .get("sso_account_id")
            .cloned()
            .ok_or_else(|| missing("sso_account_id"))?,
        role_name: pairs
            .get("sso_role_name")
            .cloned()
            .ok_or_else(|| missing("sso_role_name"))?,
    })
}

/// `~/.aws/sso/cache`.
fn cache_dir(vars: &Vars) -> Option<PathBuf> {
    vars.get("HOME")
        .map(|h| Path::new(h).join(".aws/sso/cache"))
}

/// The access token cached at `path`, while it is valid.
fn cached_token(path: &Path) -> Result<String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Cached {
        access_token: String,
        expires_at: chrono::DateTime<chrono::Utc>,
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::config(format!("no SSO sign-in is cached ({})", path.display())).caused_by(e)
    })?;
    // What does not parse is not shown: the file holds the token.
    let cached: Cached = serde_json::from_str(&text).map_err(|_| {
        Error::config(format!(
            "the SSO cache file {} holds no access token and expiry",
            path.display()
        ))
    })?;
    if cached.expires_at <= chrono::Utc::now() {
        return Err(Error::config(format!(
            "the SSO sign-in expired at {}",
            cached.expires_at.to_rfc3339()
        )));
    }
    Ok(cached.access_token)
}

/// The role keys the portal hands out.
struct RoleKeys {
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
}

/// `GET /federation/credentials` of the SSO portal at `endpoint`, with the access token.
fn role_credentials(endpoint: &str, token: &str, sso: &Sso, vars: &Vars) -> Result<RoleKeys> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer {
        role_credentials: Keys,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Keys {
        access_key_id: String,
        secret_access_key: String,
        session_token: String,
    }
    let mut url = url::Url::parse(endpoint).map_err(|e| {
        Error::tool(format!("AWS_ENDPOINT_URL_SSO is not a URL ({e})"))
            .with_hint("name the portal as https://HOST[/PATH]")
    })?;
    // Shown without any user:password of the URL.
    let _ = url.set_password(None);
    let _ = url.set_username("");
    let shown = url.to_string();
    let failed = |what: &str| Error::tool(format!("the SSO portal {shown}: {what}"));
    // The portal's path below the endpoint's own, as the SDKs append it.
    let path = format!(
        "{}/federation/credentials",
        url.path().trim_end_matches('/')
    );
    url.set_path(&path);
    url.query_pairs_mut()
        .append_pair("account_id", &sso.account_id)
        .append_pair("role_name", &sso.role_name);
    // A private CA (a company's TLS proxy), as for the bucket.
    let mut roots = Vec::new();
    if let Some(bundle) = vars.get("AWS_CA_BUNDLE") {
        let pem = std::fs::read(bundle).map_err(|e| {
            Error::config(format!("AWS_CA_BUNDLE {bundle} cannot be read")).caused_by(e)
        })?;
        roots = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            Error::config(format!("AWS_CA_BUNDLE {bundle} holds no PEM certificate")).caused_by(e)
        })?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::tool("cannot start the SSO client").caused_by(e))?;
    let (status, body) = runtime
        .block_on(async {
            // No redirect: the token is a header of our own, which reqwest would carry along
            // to any host.
            let mut client = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .timeout(Duration::from_secs(30))
                .redirect(reqwest::redirect::Policy::none());
            for root in roots {
                client = client.add_root_certificate(root);
            }
            let answer = client
                .build()?
                .get(url)
                .header("x-amz-sso_bearer_token", token)
                .send()
                .await?;
            let status = answer.status().as_u16();
            Ok::<_, reqwest::Error>((status, answer.bytes().await?))
        })
        .map_err(|e| failed("no answer").caused_by(e.without_url()))?;
    match status {
        200 => {}
        401 | 403 => {
            return Err(Error::config(format!(
                "{REFUSED} for role {} in account {} ({status})",
                sso.role_name, sso.account_id
            )));
        }
        _ => return Err(failed(&format!("answered {status}"))),
    }
    // The answer holds the keys: a body that does not parse is not shown.
    let keys = serde_json::from_slice::<Answer>(&body)
        .ok()
        .map(|a| a.role_credentials)
        .filter(|k| !k.access_key_id.is_empty() && !k.secret_access_key.is_empty())
        .ok_or_else(|| failed("answered without role credentials"))?;
    Ok(RoleKeys {
        access_key_id: keys.access_key_id,
        secret_access_key: keys.secret_access_key,
        session_token: keys.session_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> BTreeMap<String, String> {
        profile_section(text, "profile p")
    }

    #[test]
    fn both_forms_of_sso_profile_are_read_and_a_bad_region_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config");
        let text = "[profile p]\nsso_session = corp\nsso_account_id = 111\nsso_role_name = Backups\n\
                    [sso-session corp]\nsso_region = eu-west-1\nsso_start_url = https://x/start\n";
        std::fs::write(&file, text).unwrap();
        let sso = read_profile("p", &pairs(text), &file).unwrap();
        assert_eq!(
            (sso.cache_key.as_str(), sso.region.as_str()),
            ("corp", "eu-west-1")
        );
        let old = "[profile p]\nsso_start_url = https://x/start\nsso_region = us-east-1\n\
                   sso_account_id = 1\nsso_role_name = R\n";
        let sso = read_profile("p", &pairs(old), &file).unwrap();
        assert_eq!(sso.cache_key, "https://x/start");
        let bad = "[profile p]\nsso_start_url = u\nsso_region = evil.com/x\nsso_account_id = 1\n\
                   sso_role_name = R\n";
        assert!(read_profile("p", &pairs(bad), &file).is_err());
        let partial = "[profile p]\nsso_session = corp\n";
        let err = read_profile("p", &pairs(partial), &file).unwrap_err();
        assert!(err.to_string().contains("sso_account_id"), "{err}");
    }

    #[test]
    fn an_expired_or_unreadable_cached_sign_in_is_refused_without_showing_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        std::fs::write(
            &path,
            r#"{"accessToken": "tok-secret", "expiresAt": "2001-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        let err = cached_token(&path).unwrap_err();
        assert!(err.to_string().contains("expired at 2001"), "{err}");
        std::fs::write(&path, r#"{"accessToken": "tok-secret"}"#).unwrap();
        let err = cached_token(&path).unwrap_err();
        assert!(!format!("{err:?}").contains("tok-secret"));
        std::fs::write(
            &path,
            r#"{"accessToken": "tok", "expiresAt": "2099-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(cached_token(&path).unwrap(), "tok");
    }
}
