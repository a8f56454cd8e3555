//! `[storage.offsite]` resolved: the URL's scheme picks the backend (`s3://`, `az://`,
//! `file://`), each checked by its own rules, and a setting that belongs to another backend is
//! refused rather than ignored.

use std::path::PathBuf;

use super::raw;
use super::{Backend, Offsite};

impl Offsite {
    pub(super) fn parse(raw: raw::RawOffsite) -> std::result::Result<Offsite, String> {
        if let Some(path) = raw.url.strip_prefix("file://") {
            return Offsite::directory(path, &raw);
        }
        let (backend, rest) = if let Some(rest) = raw.url.strip_prefix("s3://") {
            (Backend::S3, rest)
        } else if let Some(rest) = raw.url.strip_prefix("az://") {
            (Backend::Azure, rest)
        } else {
            return Err(format!(
                "storage.offsite.url `{}` is not an s3:// URL (s3://bucket/prefix), an az:// one (az://container/prefix) or a file:// one (file:///mnt/nas/faber)",
                raw.url.split('?').next().unwrap_or_default()
            ));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        check_bucket(&backend, bucket)?;
        let prefix = prefix.trim_matches('/').to_string();
        // Other characters are stored percent-encoded, and a pasted `?…` would be a SAS token
        // or presigned query, a secret: refused, and not echoed.
        if !prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-=+@,".contains(&b))
        {
            return Err(
                "storage.offsite.url: the prefix may hold only a-z A-Z 0-9 / . _ - = + @ , \
                 (no query string: credentials never go in the URL)"
                    .to_string(),
            );
        }
        if prefix
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
            && !prefix.is_empty()
        {
            return Err(format!(
                "storage.offsite.url: the prefix `{prefix}` has an empty or dot segment"
            ));
        }
        if let Some(e) = &raw.endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(format!(
                "storage.offsite.endpoint `{e}` must start with http:// or https://"
            ));
        }
        match backend {
            Backend::Azure if raw.region.is_some() || raw.path_style.is_some() => {
                return Err(
                    "storage.offsite: region and path_style are for s3:// URLs, not az://"
                        .to_string(),
                );
            }
            Backend::S3 if raw.account.is_some() => {
                return Err(
                    "storage.offsite: account is for az:// URLs (the Azure storage account), not s3://"
                        .to_string(),
                );
            }
            _ => {}
        }
        if let Some(account) = &raw.account
            && !valid_account(account)
        {
            return Err(format!(
                "storage.offsite.account: `{account}` is not a storage account name (3-24 of a-z 0-9)"
            ));
        }
        Ok(Offsite {
            bucket: bucket.to_string(),
            prefix,
            path_style: raw.path_style.unwrap_or(raw.endpoint.is_some()),
            endpoint: raw.endpoint,
            region: raw.region,
            account: raw.account,
            backend,
        })
    }
}

/// An S3 bucket name (3-63 of a-z 0-9 . -), or an Azure container name (3-63 of a-z 0-9 -,
/// starting with a letter or digit, no `--`).
fn check_bucket(backend: &Backend, name: &str) -> std::result::Result<(), String> {
    let sized = (3..=63).contains(&name.len());
    let valid = match backend {
        Backend::Azure => {
            sized
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !name.starts_with('-')
                && !name.ends_with('-')
                && !name.contains("--")
        }
        _ => {
            sized
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        }
    };
    if valid {
        return Ok(());
    }
    // Not the part after a `?`: a pasted SAS token or presigned query is a secret.
    let name = name.split('?').next().unwrap_or_default();
    Err(match backend {
        Backend::Azure => format!(
            "storage.offsite.url: `{name}` is not a container name (3-63 of a-z 0-9 -, no leading, trailing or double -)"
        ),
        _ => format!("storage.offsite.url: `{name}` is not a bucket name (3-63 of a-z 0-9 . -)"),
    })
}

/// An Azure storage account name: 3-24 lowercase letters and digits.
pub(crate) fn valid_account(name: &str) -> bool {
    (3..=24).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

impl Offsite {
    /// `file:///path`: an absolute directory, without `.` or `..` segments, and none of the
    /// bucket's settings.
    fn directory(path: &str, raw: &raw::RawOffsite) -> std::result::Result<Offsite, String> {
        if !path.starts_with('/') {
            return Err(format!(
                "storage.offsite.url `{}` must name an absolute directory: file:///mnt/nas/faber (three slashes)",
                raw.url
            ));
        }
        let trimmed = path.trim_end_matches('/');
        if trimmed.is_empty()
            || trimmed[1..]
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..")
            || path.contains(['?', '#'])
        {
            return Err(format!(
                "storage.offsite.url `{}`: name a directory plainly (no empty, `.` or `..` segments, no `?` or `#`)",
                raw.url
            ));
        }
        if raw.endpoint.is_some()
            || raw.region.is_some()
            || raw.path_style.is_some()
            || raw.account.is_some()
        {
            return Err(
                "storage.offsite: endpoint, region, path_style and account are for s3:// and az:// URLs, not file://"
                    .to_string(),
            );
        }
        Ok(Offsite {
            backend: Backend::Directory(PathBuf::from(trimmed)),
            bucket: String::new(),
            prefix: String::new(),
            endpoint: None,
            region: None,
            path_style: false,
            account: None,
        })
    }
}
