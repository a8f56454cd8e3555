//! The S3-compatible bucket of `[storage.offsite]`: uploads streamed in bounded parts and hashed
//! as they go, downloads hashed as they are written, deletions, and the bucket's listing.
//! Credentials come from the standard AWS variables or the shared credentials file only
//! ([`super::credentials`]), never from faber-db's config.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as Key;
use object_store::{
    BackoffConfig, Certificate, ClientConfigKey, ClientOptions, ObjectStore, ObjectStoreExt,
    PutPayload, RetryConfig, WriteMultipart,
};
use sha2::{Digest, Sha256};

use super::credentials::Credentials;
use super::storage::{Object, Storage, Stored};
use crate::config::Offsite;
use crate::error::{Error, Kind, Remedy, Result};
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
    /// Where the credentials come from, as `doctor` says it.
    credentials: String,
    runtime: tokio::runtime::Runtime,
    config: Offsite,
}

/// `builder` given `credentials`, and the secrets among them to keep out of error texts.
fn with_credentials(
    builder: AmazonS3Builder,
    credentials: &Credentials,
) -> (AmazonS3Builder, Vec<String>) {
    match credentials {
        Credentials::Keys {
            access_key_id,
            secret_access_key,
            session_token,
            ..
        } => {
            let mut builder = builder
                .with_access_key_id(access_key_id)
                .with_secret_access_key(secret_access_key);
            if let Some(token) = session_token {
                builder = builder.with_token(token);
            }
            let secrets = std::iter::once(secret_access_key.clone())
                .chain(session_token.clone())
                .collect();
            (builder, secrets)
        }
        Credentials::WebIdentity {
            token_file,
            role_arn,
            session_name,
            sts_endpoint,
        } => {
            let mut builder = builder
                .with_config(AmazonS3ConfigKey::WebIdentityTokenFile, token_file)
                .with_config(AmazonS3ConfigKey::RoleArn, role_arn);
            if let Some(name) = session_name {
                builder = builder.with_config(AmazonS3ConfigKey::RoleSessionName, name);
            }
            if let Some(endpoint) = sts_endpoint {
                builder = builder.with_config(AmazonS3ConfigKey::StsEndpoint, endpoint);
            }
            (builder, Vec::new())
        }
        Credentials::Container {
            relative_uri,
            full_uri,
            token_file,
        } => {
            let mut builder = builder;
            if let Some(uri) = relative_uri {
                builder =
                    builder.with_config(AmazonS3ConfigKey::ContainerCredentialsRelativeUri, uri);
            }
            if let Some(uri) = full_uri {
                builder = builder.with_config(AmazonS3ConfigKey::ContainerCredentialsFullUri, uri);
            }
            if let Some(file) = token_file {
                builder =
                    builder.with_config(AmazonS3ConfigKey::ContainerAuthorizationTokenFile, file);
            }
            (builder, Vec::new())
        }
        Credentials::InstanceMetadata { endpoint } => {
            let builder = match endpoint {
                Some(e) => builder.with_config(AmazonS3ConfigKey::MetadataEndpoint, e),
                None => builder,
            };
            (builder, Vec::new())
        }
    }
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
        let mut client = ClientOptions::new();
        // A private CA (a company's proxy, a self-hosted store, a local STS): `AWS_CA_BUNDLE`,
        // as the AWS tools read it.
        if let Some(bundle) = vars.get("AWS_CA_BUNDLE") {
            let pem = std::fs::read(bundle).map_err(|e| {
                Error::config(format!("AWS_CA_BUNDLE {bundle} cannot be read")).caused_by(e)
            })?;
            for cert in Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::config(format!("AWS_CA_BUNDLE {bundle} holds no PEM certificate"))
                    .caused_by(e)
            })? {
                client = client.with_root_certificate(cert);
            }
        }
        let client = client
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
        let builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(region)
            .with_virtual_hosted_style_request(!config.path_style)
            .with_client_options(client)
            .with_retry(retry);
        let (builder, secrets) = with_credentials(builder, &credentials);
        let mut builder = builder;
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
            credentials: credentials.describe(),
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
        match self.runtime.block_on(self.store.delete(&self.key(name))) {
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
                    .with_hint("it was removed from the bucket; use another backup")
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
        format!("s3://{}/", self.config.bucket)
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
