//! The AWS tools' shared config file (`AWS_CONFIG_FILE`, else `~/.aws/config`): a profile's
//! keys, the keys its `credential_process` prints, the role keys of an SSO profile
//! ([`super::aws_sso`]), and its region. A profile that assumes a role from another profile is
//! not followed here; the error says how to get its keys through the AWS CLI instead (`aws
//! configure export-credentials`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::credentials::{Credentials, profile_section};
use crate::error::{Error, Result};
use crate::vars::Vars;

/// How long a `credential_process` may take: it may refresh a token over the network, never
/// wait for a person (its stdin is closed). Past it, it and what it started get SIGTERM, then
/// SIGKILL after `PROCESS_GRACE`.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);
const PROCESS_GRACE: Duration = Duration::from_secs(5);
/// Keys that expire sooner than this are refused: they are not renewed during a run, and an
/// upload would fail midway.
const MIN_VALIDITY: Duration = Duration::from_secs(5 * 60);
/// The most of a failed process's stderr shown: its last line, cut to this many characters.
const STDERR_SHOWN: usize = 200;

/// The config file's path.
fn config_file(vars: &Vars) -> Option<PathBuf> {
    vars.get("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .or_else(|| vars.get("HOME").map(|h| Path::new(h).join(".aws/config")))
}

/// The pairs of `profile` in the config file (`[default]`, or `[profile NAME]`), and the file.
fn section(vars: &Vars, profile: &str) -> Option<(BTreeMap<String, String>, PathBuf)> {
    let file = config_file(vars)?;
    let text = std::fs::read_to_string(&file).ok()?;
    let mut pairs = profile_section(&text, &format!("profile {profile}"));
    if pairs.is_empty() && profile == "default" {
        pairs = profile_section(&text, "default");
    }
    (!pairs.is_empty()).then_some((pairs, file))
}

/// The region of `profile` in the config file, for a bucket whose region nothing else names.
pub(super) fn profile_region(vars: &Vars) -> Option<String> {
    let profile = vars.get("AWS_PROFILE").unwrap_or("default");
    section(vars, profile).and_then(|(pairs, _)| pairs.get("region").cloned())
}

/// The credentials `profile` of the config file gives: its keys, those its
/// `credential_process` prints, or its SSO role's; `None` when it has none of them; an error
/// for a profile that needs what faber-db does not do itself (a role to assume).
pub(super) fn profile_credentials(vars: &Vars, profile: &str) -> Result<Option<Credentials>> {
    let Some((pairs, file)) = section(vars, profile) else {
        return Ok(None);
    };
    if let (Some(id), Some(secret)) = (
        pairs.get("aws_access_key_id"),
        pairs.get("aws_secret_access_key"),
    ) {
        return Ok(Some(Credentials::Keys {
            access_key_id: id.clone(),
            secret_access_key: secret.clone(),
            session_token: pairs.get("aws_session_token").cloned(),
            from: format!("profile {profile} of {}", file.display()),
        }));
    }
    if let Some(command) = pairs.get("credential_process") {
        return run_process(command, profile, &file, vars).map(Some);
    }
    if pairs.contains_key("sso_session") || pairs.contains_key("sso_start_url") {
        return super::aws_sso::credentials(vars, profile, &pairs, &file).map(Some);
    }
    let needs = if pairs.contains_key("credential_source")
        || pairs.contains_key("web_identity_token_file")
    {
        // The role is assumed from the instance, the container or a token: the sources after
        // this one find those credentials, as before this file was read.
        return Ok(None);
    } else if pairs.contains_key("role_arn") {
        "assumes a role"
    } else {
        return Ok(None);
    };
    Err(Error::config(format!(
        "profile {profile} of {} {needs}, which faber-db does not do itself",
        file.display()
    ))
    .with_hint(format!(
        "let the AWS CLI give its keys: add a profile with `credential_process = aws configure \
         export-credentials --profile {profile} --format process` and name it in AWS_PROFILE, or \
         run `eval \"$(aws configure export-credentials --profile {profile} --format env)\"` first"
    )))
}

/// Runs a profile's `credential_process` (split as a shell would, never run by one) and reads
/// the keys it prints: `{"Version": 1, "AccessKeyId", "SecretAccessKey", "SessionToken",
/// "Expiration"}`. What it printed is never shown: it holds the secret.
fn run_process(command: &str, profile: &str, file: &Path, vars: &Vars) -> Result<Credentials> {
    let what = format!(
        "the credential_process of profile {profile} in {}",
        file.display()
    );
    if command.trim().is_empty() {
        return Err(Error::config(format!("{what} is empty"))
            .with_hint("name the command that prints the keys, or remove the line"));
    }
    let simple = crate::shell::parse(command);
    let words = match simple.as_slice() {
        [one]
            if one.assigns.is_empty()
                && one.stdin.is_none()
                && one.writes.is_empty()
                && !one.words.is_empty()
                && one.words.iter().all(|w| crate::shell::is_literal(w)) =>
        {
            &one.words
        }
        _ => {
            // The line is not shown: what is refused here (`TOKEN=… creds`) may carry a secret.
            return Err(
                Error::config(format!("{what} is not one plain command")).with_hint(
                    "it is run without a shell: no variables, pipes, redirections or `&&`; put \
                     those in a script and name the script",
                ),
            );
        }
    };
    // `~/bin/creds`, as the AWS SDKs that run it through a shell take it.
    let program = match (words[0].strip_prefix("~/"), vars.get("HOME")) {
        (Some(rest), Some(home)) => Path::new(home).join(rest),
        _ => PathBuf::from(&words[0]),
    };
    let mut cmd = Command::new(&program);
    cmd.args(&words[1..]);
    let run = crate::child::run_bounded_group(cmd, Instant::now() + PROCESS_TIMEOUT, PROCESS_GRACE)
        .map_err(|e| {
            Error::config(format!("{what} cannot be started: {}", program.display())).caused_by(e)
        })?;
    let see_why = "run it by hand to see why (an expired SSO session wants `aws sso login`)";
    if run.overran {
        return Err(Error::config(format!(
            "{what} did not answer within {} s",
            PROCESS_TIMEOUT.as_secs()
        ))
        .with_hint("run it by hand to see what it waits for"));
    }
    if !run.success {
        let mut err = Error::config(format!("{what} failed"));
        if let Some(said) = shown_stderr(&run.stderr, &run.stdout) {
            err = err.caused_by(said);
        }
        return Err(err.with_hint(see_why));
    }
    let keys = parse_process_output(&run.stdout).ok_or_else(|| {
        Error::config(format!(
            "{what} did not print credentials as AWS's credential_process gives them"
        ))
        .with_hint(
            "it must print JSON with Version 1, AccessKeyId and SecretAccessKey (and \
             SessionToken, Expiration for temporary ones)",
        )
    })?;
    if let Some(expires) = keys.expiration
        && expires <= chrono::Utc::now() + MIN_VALIDITY
    {
        return Err(Error::config(format!(
            "{what} gave credentials that expire at {}, within {} minutes",
            expires.to_rfc3339(),
            MIN_VALIDITY.as_secs() / 60
        ))
        .with_hint(see_why));
    }
    Ok(Credentials::Keys {
        access_key_id: keys.access_key_id,
        secret_access_key: keys.secret_access_key,
        session_token: keys.session_token,
        from: what,
    })
}

/// What a `credential_process` prints. Not `Debug`: it holds the secret.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ProcessOutput {
    version: u32,
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    expiration: Option<chrono::DateTime<chrono::Utc>>,
}

/// The last line a failed process wrote to stderr, cut short — or nothing, when it holds what
/// looks like the keys (a script run with `set -x`, or one that echoes its answer there).
fn shown_stderr(stderr: &str, stdout: &str) -> Option<String> {
    let line = stderr.trim().lines().last()?.trim();
    let secret = parse_process_output(stdout).map(|k| k.secret_access_key);
    if line.is_empty()
        || line.contains("SecretAccessKey")
        || line.contains("SessionToken")
        || secret.is_some_and(|s| line.contains(&s))
    {
        return None;
    }
    let mut shown: String = line.chars().take(STDERR_SHOWN).collect();
    if shown.len() < line.len() {
        shown.push('…');
    }
    Some(shown)
}

fn parse_process_output(stdout: &str) -> Option<ProcessOutput> {
    let out: ProcessOutput = serde_json::from_str(stdout.trim()).ok()?;
    (out.version == 1 && !out.access_key_id.is_empty() && !out.secret_access_key.is_empty())
        .then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_process_answer_is_read_only_in_version_1() {
        let good = parse_process_output(
            r#"{"Version": 1, "AccessKeyId": "AK", "SecretAccessKey": "SK",
                "SessionToken": "T", "Expiration": "2030-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(good.access_key_id, "AK");
        assert_eq!(good.session_token.as_deref(), Some("T"));
        assert!(
            parse_process_output(r#"{"Version": 2, "AccessKeyId": "A", "SecretAccessKey": "S"}"#)
                .is_none()
        );
        assert!(
            parse_process_output(r#"{"Version": 1, "AccessKeyId": "", "SecretAccessKey": "S"}"#)
                .is_none()
        );
        assert!(parse_process_output("not json").is_none());
    }

    #[test]
    fn a_failed_process_s_stderr_is_shown_short_and_never_with_keys() {
        assert_eq!(
            shown_stderr("warming up\nError: Token has expired\n", "").as_deref(),
            Some("Error: Token has expired")
        );
        assert!(shown_stderr("+ echo {\"SecretAccessKey\": \"x\"}", "").is_none());
        let out = r#"{"Version": 1, "AccessKeyId": "A", "SecretAccessKey": "s3cr3t-value"}"#;
        assert!(shown_stderr("debug: s3cr3t-value", out).is_none());
        let long = "x".repeat(1000);
        assert_eq!(
            shown_stderr(&long, "").unwrap().chars().count(),
            STDERR_SHOWN + 1
        );
        assert!(shown_stderr("  \n", "").is_none());
    }
}
