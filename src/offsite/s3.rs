//! The S3-compatible bucket of `[storage.offsite]` (`s3://bucket/prefix`): AWS S3, MinIO, R2,
//! Google Cloud Storage's XML API. Credentials come from the standard AWS variables, files and
//! roles ([`super::credentials`]), never from faber-db's config.

use std::sync::Arc;

use object_store::Certificate;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};

use super::bucket::{Connected, client_options, retry, unusable};
use super::credentials::Credentials;
use crate::config::Offsite;
use crate::error::{Error, Result};
use crate::vars::Vars;

/// The bucket `config` names, with credentials from `vars`. Nothing is sent yet.
pub(super) fn connect(config: &Offsite, vars: &Vars) -> Result<Connected> {
    let credentials = Credentials::find(vars)?;
    let region = config
        .region
        .clone()
        .or_else(|| vars.get("AWS_REGION").map(str::to_string))
        .or_else(|| vars.get("AWS_DEFAULT_REGION").map(str::to_string))
        .or_else(|| super::aws_config::profile_region(vars))
        .unwrap_or_else(|| "us-east-1".to_string());
    let endpoint = config.endpoint.clone().or_else(|| {
        vars.get("AWS_ENDPOINT_URL_S3")
            .or_else(|| vars.get("AWS_ENDPOINT_URL"))
            .map(str::to_string)
    });
    let mut client = client_options(endpoint.as_deref());
    // A private CA (a company's proxy, a self-hosted store, a local STS): `AWS_CA_BUNDLE`, as
    // the AWS tools read it.
    if let Some(bundle) = vars.get("AWS_CA_BUNDLE") {
        let pem = std::fs::read(bundle).map_err(|e| {
            Error::config(format!("AWS_CA_BUNDLE {bundle} cannot be read")).caused_by(e)
        })?;
        for cert in Certificate::from_pem_bundle(&pem).map_err(|e| {
            Error::config(format!("AWS_CA_BUNDLE {bundle} holds no PEM certificate")).caused_by(e)
        })? {
            client = client.with_root_certificate(cert);
        }
    }
    let builder = AmazonS3Builder::new()
        .with_bucket_name(&config.bucket)
        .with_region(region)
        .with_virtual_hosted_style_request(!config.path_style)
        .with_client_options(client)
        .with_retry(retry());
    let (mut builder, secrets) = with_credentials(builder, &credentials);
    if let Some(endpoint) = endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    let store = builder.build().map_err(|e| unusable(config, e))?;
    Ok(Connected {
        store: Arc::new(store),
        secrets,
        credentials: credentials.describe(),
        sas_delete: None,
    })
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
