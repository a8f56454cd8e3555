//! Off-site copies on S3-compatible object storage (`[storage.offsite]`): uploads streamed in
//! bounded parts and hashed as they go, downloads checked against the registry's SHA-256,
//! deletions, and the bucket's listing. Credentials come from the standard AWS variables or the
//! shared credentials file only, never from faber-db's config.
//!
//! Object keys mirror the backup directory: `PREFIX/ENV/FILE` for the data file,
//! `PREFIX/ENV/ID.manifest.json` for its manifest, and `PREFIX/ENV/DIR/NAME` for each file of a
//! directory dump.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{
    BackoffConfig, ClientConfigKey, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload,
    RetryConfig, WriteMultipart,
};
use sha2::{Digest, Sha256};

use crate::config::Offsite;
use crate::error::{Error, Kind, Result};
use crate::fsutil::{PartialDir, PartialFile};
use crate::locate::Located;
use crate::registry::{BackupRecord, Remote};
use crate::vars::Vars;

/// Size of each part of a multipart upload, and the largest object uploaded in one request.
const PART_SIZE: usize = 8 << 20;
/// Parts in flight at once: memory stays under `PART_SIZE × (MAX_PARTS_IN_FLIGHT + 1)`.
const MAX_PARTS_IN_FLIGHT: usize = 2;
/// Reads from disk feed the upload this much at a time.
const READ_SIZE: usize = 1 << 20;

/// An open connection to the configured bucket.
pub struct Bucket {
    store: Arc<AmazonS3>,
    /// The secret key and session token, kept out of every error text.
    secrets: Vec<String>,
    runtime: tokio::runtime::Runtime,
    config: Offsite,
}

/// What an upload stored.
#[derive(Debug, Clone)]
pub struct Uploaded {
    pub size_bytes: u64,
    pub sha256: String,
}

/// One object of the bucket, as `list --remote` shows it.
#[derive(Debug, Clone)]
pub struct Object {
    /// The key below the configured prefix (`dev/backup-….sql.zst`).
    pub name: String,
    pub size_bytes: u64,
    pub last_modified: DateTime<Utc>,
}

impl Bucket {
    /// Connects to the configured storage with credentials from `vars`. Nothing is sent yet.
    pub fn open(config: &Offsite, vars: &Vars) -> Result<Bucket> {
        let credentials = Credentials::find(vars)?;
        let region = config
            .region
            .clone()
            .or_else(|| vars.get("AWS_REGION").map(str::to_string))
            .or_else(|| vars.get("AWS_DEFAULT_REGION").map(str::to_string))
            .unwrap_or_else(|| "us-east-1".to_string());
        let endpoint = config.endpoint.clone().or_else(|| {
            vars.get("AWS_ENDPOINT_URL_S3")
                .or_else(|| vars.get("AWS_ENDPOINT_URL"))
                .map(str::to_string)
        });
        // Uploads are long requests: no overall timeout, but a dead endpoint is noticed quickly
        // and a failure is retried a few times, not for minutes.
        let client = ClientOptions::new()
            .with_connect_timeout(Duration::from_secs(10))
            .with_timeout_disabled()
            .with_config(ClientConfigKey::ReadTimeout, "120s")
            .with_allow_http(
                endpoint
                    .as_deref()
                    .is_some_and(|e| e.starts_with("http://")),
            );
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
                base: 2.0,
            },
            max_retries: 3,
            retry_timeout: Duration::from_secs(60),
        };
        let secrets: Vec<String> = [
            Some(credentials.secret_access_key.clone()),
            credentials.session_token.clone(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(region)
            .with_access_key_id(credentials.access_key_id)
            .with_secret_access_key(credentials.secret_access_key)
            .with_virtual_hosted_style_request(!config.path_style)
            .with_client_options(client)
            .with_retry(retry);
        if let Some(token) = credentials.session_token {
            builder = builder.with_token(token);
        }
        if let Some(endpoint) = endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let store = builder.build().map_err(|e| {
            Error::config(format!("cannot use the off-site storage {}", config.url()))
                .caused_by(e)
                .with_hint("check [storage.offsite] in the config")
        })?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::tool("cannot start the off-site client").caused_by(e))?;
        Ok(Bucket {
            store: Arc::new(store),
            secrets,
            runtime,
            config: config.clone(),
        })
    }

    /// The object key of `name` (a path below the prefix, `/`-separated).
    fn key(&self, name: &str) -> Key {
        if let Some(full) = name.strip_prefix('/') {
            Key::from(full)
        } else if self.config.prefix.is_empty() {
            Key::from(name)
        } else {
            Key::from(format!("{}/{name}", self.config.prefix))
        }
    }

    /// `s3://bucket/key` of `name`.
    pub fn url(&self, name: &str) -> String {
        format!("s3://{}/{}", self.config.bucket, self.key(name))
    }

    /// The storage's URL as configured (`s3://bucket/prefix`).
    pub fn base_url(&self) -> String {
        self.config.url()
    }

    /// Uploads a registered backup: its data (file, or each file of a directory dump), then its
    /// manifest, so a manifest in the bucket always names complete data. The bytes read are
    /// hashed as they go and must be the registered SHA-256, or nothing is kept.
    pub fn upload_backup(&self, located: &Located, record: &BackupRecord) -> Result<Uploaded> {
        let data = &located.data;
        let name = data_name(record);
        let uploaded = if record.files.is_empty() {
            let uploaded = self.upload_file(data, &name)?;
            if uploaded.sha256 != record.sha256 {
                let _ = self.delete_names(std::slice::from_ref(&name));
                return Err(Error::verification(format!(
                    "{} no longer matches its registered SHA-256; nothing was kept off-site",
                    data.display()
                ))
                .with_hint(format!("run `faber-db verify {}`", record.id)));
            }
            uploaded
        } else {
            for f in &record.files {
                let path = crate::dirdump::member(data, &f.name)?;
                let uploaded = self.upload_file(&path, &format!("{name}/{}", f.name))?;
                if uploaded.sha256 != f.sha256 {
                    let _ = self.delete_names(&object_names(record));
                    return Err(Error::verification(format!(
                        "{} of {} no longer matches its registered SHA-256; nothing was kept off-site",
                        f.name, record.id
                    ))
                    .with_hint(format!("run `faber-db verify {}`", record.id)));
                }
            }
            Uploaded {
                size_bytes: record.size_bytes,
                sha256: record.sha256.clone(),
            }
        };
        self.upload_file(&located.manifest, &manifest_name(record))?;
        Ok(uploaded)
    }

    /// Uploads one file under `name`: in one request when small, else as a multipart upload of
    /// `PART_SIZE` parts with at most `MAX_PARTS_IN_FLIGHT` in flight. The object's size is
    /// checked once it is complete.
    fn upload_file(&self, path: &Path, name: &str) -> Result<Uploaded> {
        let key = self.key(name);
        let failed = |e: object_store::Error| self.request_failed("upload to", name, e);
        let mut file =
            File::open(path).map_err(|e| Error::io(Kind::Tool, "cannot read", path, e))?;
        let size = file
            .metadata()
            .map_err(|e| Error::io(Kind::Tool, "cannot read", path, e))?
            .len();
        let read_failed = |e| Error::io(Kind::Tool, "cannot read", path, e);
        let mut hasher = Sha256::new();
        let mut read = 0u64;
        self.runtime.block_on(async {
            if size <= PART_SIZE as u64 {
                let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                file.read_to_end(&mut bytes).map_err(read_failed)?;
                hasher.update(&bytes);
                read = bytes.len() as u64;
                self.store
                    .put(&key, PutPayload::from(bytes))
                    .await
                    .map_err(failed)?;
                return Ok(());
            }
            let upload = self.store.put_multipart(&key).await.map_err(failed)?;
            let mut parts = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            let mut buf = vec![0u8; READ_SIZE];
            loop {
                crate::testpoint::pause("upload:part");
                if let Err(e) = crate::interrupt::check() {
                    let _ = parts.abort().await;
                    return Err(Error::aborted("interrupted").caused_by(e));
                }
                let n = match file.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let _ = parts.abort().await;
                        return Err(read_failed(e));
                    }
                };
                hasher.update(&buf[..n]);
                read += n as u64;
                if let Err(e) = parts.wait_for_capacity(MAX_PARTS_IN_FLIGHT).await {
                    let _ = parts.abort().await;
                    return Err(failed(e));
                }
                parts.put(Bytes::copy_from_slice(&buf[..n]));
            }
            parts.finish().await.map_err(failed)?;
            Ok(())
        })?;
        let stored = self
            .runtime
            .block_on(self.store.head(&key))
            .map_err(failed)?;
        if stored.size != read {
            return Err(Error::tool(format!(
                "the off-site copy {} holds {} bytes, not the {read} sent",
                self.url(name),
                stored.size
            ))
            .with_hint("retry with `faber-db push`; check the storage's health"));
        }
        Ok(Uploaded {
            size_bytes: read,
            sha256: hex::encode(hasher.finalize()),
        })
    }

    /// Downloads a backup's data into its place in `backup_dir`, through a `.partial` that
    /// becomes the file only when its SHA-256 is the registered one — replacing what is there
    /// then (a local copy that failed its checksum).
    pub fn fetch_backup(&self, located: &Located, record: &BackupRecord) -> Result<PathBuf> {
        let data = located.data.clone();
        if let Some(parent) = data.parent() {
            crate::fsutil::create_private_dir(parent)?;
        }
        let name = self.recorded_name(record);
        let create_failed = |e| Error::io(Kind::Tool, "cannot create", &data, e);
        // Downloaded under a name of its own (see FETCH_SUFFIX); one a killed fetch left goes.
        let fetching = crate::fsutil::fetching_path(&data);
        crate::fsutil::remove_if_stale(&crate::fsutil::partial_path(&fetching));
        if record.files.is_empty() {
            let partial = PartialFile::create(&fetching).map_err(create_failed)?;
            let sha256 = self.download(&name, partial.file(), partial.path())?;
            self.check_fetched(record, &record.id, &sha256, &record.sha256)?;
            partial.persist(&data).map_err(create_failed)?;
        } else {
            let partial = PartialDir::create(&fetching).map_err(create_failed)?;
            let content = partial.content();
            crate::fsutil::create_private_dir(&content)?;
            for f in &record.files {
                let path = crate::dirdump::member(&content, &f.name)?;
                let file = crate::fsutil::create_new_private(&path)
                    .map_err(|e| Error::io(Kind::Tool, "cannot create", &path, e))?;
                let sha256 = self.download(&format!("{name}/{}", f.name), &file, &path)?;
                file.sync_all()
                    .map_err(|e| Error::io(Kind::Tool, "cannot write", &path, e))?;
                self.check_fetched(record, &f.name, &sha256, &f.sha256)?;
            }
            // A directory cannot be renamed over another: a damaged one goes first. Killed in
            // between, the backup is missing here (the sweep removes the `.fetch.partial`) and
            // is fetched again when next needed; its off-site copy is untouched.
            crate::fsutil::remove_backup_data(&data).map_err(create_failed)?;
            partial.persist(&data).map_err(create_failed)?;
        }
        Ok(data)
    }

    #[allow(
        clippy::unused_self,
        reason = "a step of the bucket's fetch, beside the others"
    )]
    fn check_fetched(
        &self,
        record: &BackupRecord,
        what: &str,
        got: &str,
        want: &str,
    ) -> Result<()> {
        if got == want {
            return Ok(());
        }
        Err(Error::verification(format!(
            "the off-site copy of {what} does not match the SHA-256 registered for {}",
            record.id
        ))
        .with_hint("the remote object is damaged or was replaced; use another backup"))
    }

    /// Streams object `name` into `file`, returning the SHA-256 of what was written.
    fn download(&self, name: &str, mut file: &File, path: &Path) -> Result<String> {
        let key = self.key(name);
        let failed = |e: object_store::Error| self.request_failed("download from", name, e);
        let write_failed = |e| Error::io(Kind::Tool, "cannot write", path, e);
        let mut hasher = Sha256::new();
        self.runtime.block_on(async {
            let got = self.store.get(&key).await.map_err(failed)?;
            let mut stream = got.into_stream();
            while let Some(chunk) = stream.next().await {
                crate::testpoint::pause("fetch:during");
                crate::interrupt::check()
                    .map_err(|e| Error::aborted("interrupted").caused_by(e))?;
                let chunk = chunk.map_err(failed)?;
                hasher.update(&chunk);
                file.write_all(&chunk).map_err(write_failed)?;
            }
            Ok::<_, Error>(())
        })?;
        Ok(hex::encode(hasher.finalize()))
    }

    /// The backup record stored as manifest `name` (below the prefix).
    pub fn read_manifest(&self, name: &str) -> Result<BackupRecord> {
        let key = self.key(name);
        let bytes = self
            .runtime
            .block_on(async {
                let got = self.store.get(&key).await?;
                got.bytes().await
            })
            .map_err(|e| self.request_failed("download from", name, e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::verification(format!("{} is not a backup manifest", self.url(name))).caused_by(e)
        })
    }

    /// Removes a backup's objects (data and manifest). Objects already gone are not an error.
    pub fn delete_backup(&self, record: &BackupRecord) -> Result<()> {
        for f in &record.files {
            crate::dirdump::member(Path::new(""), &f.name)?;
        }
        self.delete_names(&names_at(record, self.recorded_name(record)))
    }

    /// The name (below the prefix, or `/`-rooted when the prefix changed since) of a backup's
    /// data off-site: where its registry entry says it was put, when in this bucket; else where
    /// an upload puts it now.
    fn recorded_name(&self, record: &BackupRecord) -> String {
        let recorded = match &record.remote {
            Some(Remote::Uploaded { url, .. } | Remote::Failed { url, .. }) => Some(url),
            None => None,
        };
        let in_bucket = format!("s3://{}/", self.config.bucket);
        let prefix = if self.config.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.config.prefix)
        };
        // The URL in the entry is data too: it counts only when it names this backup's own
        // object (`…/<ENV>/<ID>.<extension>`), under whatever prefix it was uploaded, never
        // another object of the bucket.
        let own = data_name(record);
        recorded
            .and_then(|url| url.strip_prefix(&in_bucket))
            .filter(|key| *key == own || key.ends_with(&format!("/{own}")))
            .map_or_else(
                || data_name(record),
                |key| match key.strip_prefix(&prefix) {
                    Some(name) if !prefix.is_empty() => name.to_string(),
                    _ if prefix.is_empty() => key.to_string(),
                    _ => format!("/{key}"),
                },
            )
    }

    fn delete_names(&self, names: &[String]) -> Result<()> {
        self.runtime.block_on(async {
            for name in names {
                match self.store.delete(&self.key(name)).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(self.request_failed("delete", name, e)),
                }
            }
            Ok(())
        })
    }

    /// Every object below the prefix, names relative to it, sorted.
    pub fn list(&self) -> Result<Vec<Object>> {
        let prefix =
            (!self.config.prefix.is_empty()).then(|| Key::from(self.config.prefix.as_str()));
        let strip = if self.config.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.config.prefix)
        };
        let mut objects = self.runtime.block_on(async {
            let mut listing = self.store.list(prefix.as_ref());
            let mut objects = Vec::new();
            while let Some(meta) = listing.next().await {
                let meta = meta.map_err(|e| self.request_failed("list", "", e))?;
                let key = meta.location.to_string();
                objects.push(Object {
                    name: key.strip_prefix(&strip).unwrap_or(&key).to_string(),
                    size_bytes: meta.size,
                    last_modified: meta.last_modified,
                });
            }
            Ok::<_, Error>(objects)
        })?;
        objects.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(objects)
    }

    fn request_failed(&self, what: &str, name: &str, e: object_store::Error) -> Error {
        let url = self.url(name);
        match e {
            object_store::Error::NotFound { .. } => {
                Error::verification(format!("the off-site object {url} does not exist"))
                    .with_hint("it was removed from the bucket; use another backup")
            }
            e => Error::tool(format!("off-site storage: cannot {what} {url}"))
                .caused_by(scrub(&e.to_string(), &self.secrets))
                .with_hint(
                    "check the endpoint, the bucket and the AWS credentials; \
                     `faber-db push` retries uploads later",
                ),
        }
    }
}

/// An error text of the storage client, safe to show and store: the server's answer may echo
/// the signed request (AWS's SignatureDoesNotMatch carries the canonical request, session token
/// included), so that part is cut off and any secret value left is blanked out.
fn scrub(text: &str, secrets: &[String]) -> String {
    let mut text = text.to_string();
    for tag in ["<StringToSign", "<CanonicalRequest", "<StringToSignBytes"] {
        if let Some(i) = text.find(tag) {
            text.truncate(i);
            text.push_str("[the rest of the server's answer is not shown]");
        }
    }
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        text = text.replace(secret.as_str(), "***");
    }
    text
}

/// The registry's record of a finished upload.
pub fn uploaded(bucket: &Bucket, record: &BackupRecord, u: Uploaded, at: DateTime<Utc>) -> Remote {
    Remote::Uploaded {
        url: bucket.url(&data_name(record)),
        size_bytes: u.size_bytes,
        sha256: u.sha256,
        uploaded_at: at,
    }
}

/// The object name of a backup's data: `ENV/FILE`.
pub fn data_name(record: &BackupRecord) -> String {
    let file = Path::new(&record.file)
        .file_name()
        .map_or_else(|| record.file.clone(), |f| f.to_string_lossy().into_owned());
    format!("{}/{file}", record.environment)
}

/// The object name of a backup's manifest: `ENV/ID.manifest.json`.
pub fn manifest_name(record: &BackupRecord) -> String {
    format!("{}/{}.manifest.json", record.environment, record.id)
}

/// Every object a backup has off-site, where an upload puts them now.
pub fn object_names(record: &BackupRecord) -> Vec<String> {
    names_at(record, data_name(record))
}

/// A backup's objects when its data is named `data`: the data (each file of a directory dump
/// below it), then the manifest beside it.
fn names_at(record: &BackupRecord, data: String) -> Vec<String> {
    let dir = data.rsplit_once('/').map_or("", |(d, _)| d);
    let manifest = format!("{dir}/{}.manifest.json", record.id);
    let mut names: Vec<String> = if record.files.is_empty() {
        vec![data]
    } else {
        record
            .files
            .iter()
            .map(|f| format!("{data}/{}", f.name))
            .collect()
    };
    names.push(manifest);
    names
}

/// AWS credentials: the standard variables, else a profile of the shared credentials file.
struct Credentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

impl Credentials {
    fn find(vars: &Vars) -> Result<Credentials> {
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
    use super::{profile_section, scrub};

    #[test]
    fn secrets_and_echoed_requests_never_reach_an_error_text() {
        let answer = "Generic S3 error: 403 <Error><Code>SignatureDoesNotMatch</Code>\
                      <StringToSign>AWS4-HMAC-SHA256 …</StringToSign><CanonicalRequest>PUT /\
                      x-amz-security-token:TOKEN-abcdef123</CanonicalRequest></Error>";
        let shown = scrub(answer, &["TOKEN-abcdef123".to_string()]);
        assert!(shown.contains("SignatureDoesNotMatch"));
        assert!(!shown.contains("TOKEN-abcdef123"));
        assert!(!shown.contains("security-token"));
        let plain = scrub(
            "failed with secret-key-value in it",
            &["secret-key-value".into()],
        );
        assert_eq!(plain, "failed with *** in it");
    }

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
