//! An object store holding off-site copies — an S3-compatible bucket ([`super::s3`]) or an
//! Azure Blob container ([`super::azure`]), both through `object_store`: uploads streamed in
//! bounded parts and hashed as they go, downloads hashed as they are written, deletions, and
//! the listing. Credentials come from the provider's standard variables, files and identities
//! only, never from faber-db's config.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::path::Path as Key;
use object_store::{
    BackoffConfig, ClientConfigKey, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload,
    RetryConfig, WriteMultipart,
};
use sha2::{Digest, Sha256};

use super::storage::{Object, Storage, Stored};
use crate::config::{Backend, Offsite};
use crate::error::{Error, Kind, Remedy, Result};
use crate::vars::Vars;

/// Size of each part of a multipart upload, and the largest object uploaded in one request.
const PART_SIZE: usize = 8 << 20;
/// Parts in flight at once: memory stays under `PART_SIZE × (MAX_PARTS_IN_FLIGHT + 1)`.
const MAX_PARTS_IN_FLIGHT: usize = 2;
/// Reads from disk feed the upload this much at a time.
const READ_SIZE: usize = 1 << 20;

/// An open connection to the configured bucket or container.
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    /// Secret values (a secret key, a session token, an account key), kept out of every error
    /// text.
    secrets: Vec<String>,
    /// Where the credentials come from, as `doctor` says it.
    credentials: String,
    sas_delete: Option<super::azure::SasDelete>,
    runtime: tokio::runtime::Runtime,
    config: Offsite,
}

/// A connected store, before it becomes a [`Bucket`]: what [`super::s3`] and
/// [`super::azure`] build.
pub(super) struct Connected {
    pub store: Arc<dyn ObjectStore>,
    pub secrets: Vec<String>,
    pub credentials: String,
    /// Azure with a SAS token: deletions by the plain request, not the batch one.
    pub sas_delete: Option<super::azure::SasDelete>,
}

/// How the store's HTTP client behaves: uploads are long requests, so no overall timeout, but
/// a dead endpoint is noticed quickly; plain `http://` only for an endpoint that says so.
pub(super) fn client_options(endpoint: Option<&str>) -> ClientOptions {
    ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(10))
        .with_timeout_disabled()
        .with_config(ClientConfigKey::ReadTimeout, "120s")
        .with_allow_http(endpoint.is_some_and(|e| e.starts_with("http://")))
}

/// A failed request is retried a few times, not for minutes.
pub(super) fn retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: 3,
        retry_timeout: Duration::from_secs(60),
    }
}

/// The error for a store `object_store` would not build.
pub(super) fn unusable(config: &Offsite, e: object_store::Error) -> Error {
    Error::config(format!("cannot use the off-site storage {}", config.url()))
        .caused_by(e)
        .with_hint("check [storage.offsite] in the config")
}

impl Bucket {
    /// Connects to the configured bucket (`s3://`) or container (`az://`) with credentials
    /// from `vars`. Nothing is sent to the storage yet (finding the credentials may ask an SSO
    /// portal or a metadata service).
    pub fn open(config: &Offsite, vars: &Vars) -> Result<Bucket> {
        // Every HTTPS client of the off-site storage (S3, Azure, the AWS SSO portal, metadata
        // services) is built from here on.
        crate::tls::ready();
        let connected = match config.backend {
            Backend::Azure => super::azure::connect(config, vars)?,
            Backend::S3 => super::s3::connect(config, vars)?,
            Backend::Directory(_) => {
                return Err(Error::config(format!(
                    "{} is a directory, not a bucket",
                    config.url()
                )));
            }
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::tool("cannot start the off-site client").caused_by(e))?;
        Ok(Bucket {
            store: connected.store,
            secrets: connected.secrets,
            credentials: connected.credentials,
            sas_delete: connected.sas_delete,
            runtime,
            config: config.clone(),
        })
    }

    /// `s3://` or `az://`.
    fn scheme(&self) -> &'static str {
        match self.config.backend {
            Backend::Azure => "az",
            Backend::S3 | Backend::Directory(_) => "s3",
        }
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

    /// `s3://bucket/key` (`az://container/key`) of `name`.
    pub fn url(&self, name: &str) -> String {
        format!(
            "{}://{}/{}",
            self.scheme(),
            self.config.bucket,
            self.key(name)
        )
    }

    /// The storage's URL as configured (`s3://bucket/prefix`).
    pub fn base_url(&self) -> String {
        self.config.url()
    }

    /// Uploads one file under `name`: in one request when small, else as a multipart upload of
    /// `PART_SIZE` parts with at most `MAX_PARTS_IN_FLIGHT` in flight. The object's size is
    /// checked once it is complete.
    fn upload_file(&self, path: &Path, name: &str) -> Result<Stored> {
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
            .with_hint(Remedy::RetryPush));
        }
        Ok(Stored {
            size_bytes: read,
            sha256: hex::encode(hasher.finalize()),
        })
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

    /// The whole of object `name`.
    fn get_bytes(&self, name: &str) -> Result<Vec<u8>> {
        let key = self.key(name);
        let bytes = self
            .runtime
            .block_on(async {
                let got = self.store.get(&key).await?;
                got.bytes().await
            })
            .map_err(|e| self.request_failed("download from", name, e))?;
        Ok(bytes.to_vec())
    }

    /// Removes object `name`; one already gone is not an error.
    fn delete_object(&self, name: &str) -> Result<()> {
        let key = self.key(name);
        let deleted = match &self.sas_delete {
            Some(sas) => self.runtime.block_on(sas.delete(&key)),
            None => self.runtime.block_on(self.store.delete(&key)),
        };
        match deleted {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.request_failed("delete", name, e)),
        }
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
                    .with_hint("it was removed from the off-site storage; use another backup")
            }
            e => Error::tool(format!("off-site storage: cannot {what} {url}"))
                .caused_by(scrub(&e.to_string(), &self.secrets))
                .with_hint(Remedy::CheckStorage),
        }
    }
}

impl Storage for Bucket {
    fn base_url(&self) -> String {
        Bucket::base_url(self)
    }

    fn credentials(&self) -> Option<String> {
        Some(self.credentials.clone())
    }

    fn root_url(&self) -> String {
        format!("{}://{}/", self.scheme(), self.config.bucket)
    }

    fn prefix(&self) -> &str {
        &self.config.prefix
    }

    fn url(&self, name: &str) -> String {
        Bucket::url(self, name)
    }

    fn put_file(&self, name: &str, path: &Path) -> Result<Stored> {
        self.upload_file(path, name)
    }

    fn get_file(&self, name: &str, file: &File, path: &Path) -> Result<String> {
        self.download(name, file, path)
    }

    fn get(&self, name: &str) -> Result<Vec<u8>> {
        self.get_bytes(name)
    }

    fn delete(&self, name: &str) -> Result<()> {
        self.delete_object(name)
    }

    fn list(&self) -> Result<Vec<Object>> {
        Bucket::list(self)
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

#[cfg(test)]
mod tests {
    use super::scrub;

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
}
