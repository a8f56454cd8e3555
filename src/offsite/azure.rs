//! The Azure Blob container of `[storage.offsite]` (`az://container/prefix`). Credentials are
//! found as Azure's own tools find them — never in faber-db's config: a connection string
//! (`AZURE_STORAGE_CONNECTION_STRING`), the account key (`AZURE_STORAGE_KEY`), a SAS token
//! (`AZURE_STORAGE_SAS_TOKEN`), a service principal's secret (`AZURE_CLIENT_ID`,
//! `AZURE_CLIENT_SECRET`, `AZURE_TENANT_ID`), a federated token exchanged for one (AKS workload
//! identity: `AZURE_FEDERATED_TOKEN_FILE`), or the VM's managed identity when its metadata
//! service answers. The last three give short-lived tokens, which `object_store` fetches and
//! renews itself.

use std::sync::Arc;
use std::time::Duration;

use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};

use super::bucket::{Connected, client_options, retry, unusable};
use crate::config::Offsite;
use crate::error::{Error, Result};
use crate::vars::Vars;

/// Where the container's credentials come from. `Debug` names the kind only: the fields hold
/// secrets.
#[derive(PartialEq, Eq)]
enum Credentials {
    /// The storage account's key.
    AccountKey { key: String, from: &'static str },
    /// A shared access signature (the query string, with or without its `?`).
    Sas { token: String, from: &'static str },
    /// A service principal's client secret, exchanged for a token.
    ClientSecret {
        client_id: String,
        secret: String,
        tenant_id: String,
    },
    /// A federated token file (AKS workload identity, GitHub's OIDC) exchanged for a token.
    WorkloadIdentity {
        client_id: String,
        tenant_id: String,
        token_file: String,
    },
    /// The VM's managed identity, from its metadata service.
    ManagedIdentity {
        client_id: Option<String>,
        endpoint: Option<String>,
    },
}

/// The parts of `AZURE_STORAGE_CONNECTION_STRING` faber-db uses.
#[derive(Debug, Default, PartialEq, Eq)]
struct ConnectionString {
    account: Option<String>,
    key: Option<String>,
    sas: Option<String>,
    blob_endpoint: Option<String>,
    endpoint_suffix: Option<String>,
}

/// `Key=Value;Key=Value` pairs, as the Azure portal and Azurite's docs give them. Values keep
/// any `=` of their own (account keys end in `==`).
fn parse_connection_string(text: &str) -> ConnectionString {
    let mut parts = ConnectionString::default();
    for pair in text.split(';') {
        let Some((name, value)) = pair.split_once('=') else {
            continue;
        };
        let value = Some(value.trim().to_string());
        match name.trim().to_ascii_lowercase().as_str() {
            "accountname" => parts.account = value,
            "accountkey" => parts.key = value,
            "sharedaccesssignature" => parts.sas = value,
            "blobendpoint" => parts.blob_endpoint = value,
            "endpointsuffix" => parts.endpoint_suffix = value,
            _ => {}
        }
    }
    parts
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The metadata service's address when no variable names another.
const IMDS: &str = "http://169.254.169.254";

impl Credentials {
    fn find(vars: &Vars, connection: &ConnectionString) -> Result<Credentials> {
        Credentials::find_at(vars, connection, IMDS)
    }

    /// [`Credentials::find`], with the metadata service probed at `imds`.
    fn find_at(vars: &Vars, connection: &ConnectionString, imds: &str) -> Result<Credentials> {
        let get = |name: &str| vars.get(name).map(str::to_string);
        if let Some(key) = &connection.key {
            return Ok(Credentials::AccountKey {
                key: key.clone(),
                from: "AZURE_STORAGE_CONNECTION_STRING",
            });
        }
        if let Some(token) = &connection.sas {
            return Ok(Credentials::Sas {
                token: token.clone(),
                from: "AZURE_STORAGE_CONNECTION_STRING",
            });
        }
        for from in ["AZURE_STORAGE_KEY", "AZURE_STORAGE_ACCOUNT_KEY"] {
            if let Some(key) = get(from) {
                return Ok(Credentials::AccountKey { key, from });
            }
        }
        if let Some(token) = get("AZURE_STORAGE_SAS_TOKEN") {
            return Ok(Credentials::Sas {
                token,
                from: "AZURE_STORAGE_SAS_TOKEN",
            });
        }
        let client_id = get("AZURE_CLIENT_ID");
        let tenant_id = get("AZURE_TENANT_ID");
        if let (Some(client_id), Some(tenant_id)) = (&client_id, &tenant_id) {
            if let Some(secret) = get("AZURE_CLIENT_SECRET") {
                return Ok(Credentials::ClientSecret {
                    client_id: client_id.clone(),
                    secret,
                    tenant_id: tenant_id.clone(),
                });
            }
            if let Some(token_file) = get("AZURE_FEDERATED_TOKEN_FILE") {
                return Ok(Credentials::WorkloadIdentity {
                    client_id: client_id.clone(),
                    tenant_id: tenant_id.clone(),
                    token_file,
                });
            }
        }
        // An endpoint named is trusted as it is (a sidecar's token endpoint need not answer
        // the metadata service's probe); else the metadata service must answer.
        let endpoint = get("AZURE_MSI_ENDPOINT");
        if endpoint.is_some() || answers(imds) {
            return Ok(Credentials::ManagedIdentity {
                client_id,
                endpoint,
            });
        }
        Err(
            Error::config("no Azure credentials for the off-site storage").with_hint(
                "set AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY, or AZURE_STORAGE_SAS_TOKEN; \
                 or AZURE_CLIENT_ID and AZURE_TENANT_ID with AZURE_CLIENT_SECRET or \
                 AZURE_FEDERATED_TOKEN_FILE; on an Azure VM its managed identity is used; \
                 credentials are never read from faber-db's config",
            ),
        )
    }

    /// Where they come from, as `doctor` says it: never a secret.
    fn describe(&self) -> String {
        match self {
            Credentials::AccountKey { from, .. } => format!("the account key in {from}"),
            Credentials::Sas { from, .. } => format!("the SAS token in {from}"),
            Credentials::ClientSecret { client_id, .. } => {
                format!("the client secret of service principal {client_id}")
            }
            Credentials::WorkloadIdentity { client_id, .. } => {
                format!("a federated token exchanged for service principal {client_id}")
            }
            Credentials::ManagedIdentity { .. } => "the VM's managed identity".into(),
        }
    }

    /// `builder` given these credentials, and the secrets among them to keep out of error
    /// texts.
    fn apply(self, builder: MicrosoftAzureBuilder) -> (MicrosoftAzureBuilder, Vec<String>) {
        match self {
            Credentials::AccountKey { key, .. } => {
                (builder.with_access_key(key.clone()), vec![key])
            }
            Credentials::Sas { token, .. } => {
                let token = token.trim_start_matches('?').to_string();
                // The signature is the secret part, and a request URL may carry it re-encoded.
                let mut secrets = vec![token.clone()];
                for (name, value) in url::form_urlencoded::parse(token.as_bytes()) {
                    if name == "sig" {
                        secrets.push(value.to_string());
                        secrets.extend(
                            url::form_urlencoded::byte_serialize(value.as_bytes())
                                .map(str::to_string)
                                .reduce(|a, b| a + &b),
                        );
                    }
                }
                (
                    builder.with_config(AzureConfigKey::SasKey, token.clone()),
                    secrets,
                )
            }
            Credentials::ClientSecret {
                client_id,
                secret,
                tenant_id,
            } => (
                builder.with_client_secret_authorization(client_id, secret.clone(), tenant_id),
                vec![secret],
            ),
            Credentials::WorkloadIdentity {
                client_id,
                tenant_id,
                token_file,
            } => (
                builder
                    .with_client_id(client_id)
                    .with_tenant_id(tenant_id)
                    .with_federated_token_file(token_file),
                Vec::new(),
            ),
            Credentials::ManagedIdentity {
                client_id,
                endpoint,
            } => {
                let mut builder =
                    builder.with_config(AzureConfigKey::CredentialType, "managed_identity");
                if let Some(id) = client_id {
                    builder = builder.with_client_id(id);
                }
                if let Some(e) = endpoint {
                    builder = builder.with_msi_endpoint(e);
                }
                (builder, Vec::new())
            }
        }
    }
}

/// The container `config` names, with credentials from `vars`. Nothing is sent yet.
pub(super) fn connect(config: &Offsite, vars: &Vars) -> Result<Connected> {
    let connection = vars
        .get("AZURE_STORAGE_CONNECTION_STRING")
        .map(parse_connection_string)
        .unwrap_or_default();
    let (account, endpoint) = account_and_endpoint(config, vars, &connection)?;
    let credentials = Credentials::find(vars, &connection)?;
    let described = credentials.describe();
    let container_url = format!(
        "{}/{}",
        endpoint
            .clone()
            .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"))
            .trim_end_matches('/'),
        config.bucket
    );
    let sas_delete = match &credentials {
        Credentials::Sas { token, .. } => Some(SasDelete {
            container_url,
            token: token.trim_start_matches('?').to_string(),
            // One client for every deletion of the run (a cleanup removes many objects).
            client: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .timeout(Duration::from_secs(60))
                .build()
                .map_err(|e| {
                    Error::tool("cannot start the off-site client").caused_by(e.without_url())
                })?,
        }),
        _ => None,
    };
    let mut builder = MicrosoftAzureBuilder::new()
        .with_account(account)
        .with_container_name(&config.bucket)
        .with_client_options(client_options(endpoint.as_deref()))
        .with_retry(retry());
    // A sovereign cloud's sign-in host, for a service principal or workload identity.
    if let Some(host) = vars.get("AZURE_AUTHORITY_HOST") {
        builder = builder.with_config(AzureConfigKey::AuthorityHost, host);
    }
    let (mut builder, secrets) = credentials.apply(builder);
    if let Some(endpoint) = endpoint {
        builder = builder.with_endpoint(endpoint.trim_end_matches('/').to_string());
    }
    let store = builder.build().map_err(|e| unusable(config, e))?;
    Ok(Connected {
        store: Arc::new(store),
        secrets,
        credentials: described,
        sas_delete,
    })
}

/// Deletion of one blob with a SAS token, by the plain Delete Blob request. `object_store`
/// deletes through the Blob Batch API, which takes no service SAS (a container's token, the
/// least a team hands out) and which Azurite refuses with any SAS.
pub(super) struct SasDelete {
    /// `https://ACCOUNT.blob.core.windows.net/CONTAINER`.
    container_url: String,
    token: String,
    client: reqwest::Client,
}

impl SasDelete {
    /// Deletes blob `key`; one already gone is not an error.
    pub(super) async fn delete(&self, key: &object_store::path::Path) -> object_store::Result<()> {
        let failed =
            |source: Box<dyn std::error::Error + Send + Sync>| object_store::Error::Generic {
                store: "MicrosoftAzure",
                source,
            };
        // Object names are kept to URL-safe characters by the config's checks and the backup
        // names, and `Path` encodes any other; the key goes into the URL as it is stored.
        let url = format!("{}/{key}?{}", self.container_url, self.token);
        let answer = self
            .client
            .delete(url)
            .header("x-ms-version", "2021-08-06")
            .header(
                "x-ms-date",
                chrono::Utc::now()
                    .format("%a, %d %b %Y %H:%M:%S GMT")
                    .to_string(),
            )
            .send()
            .await
            .map_err(|e| failed(Box::new(e.without_url())))?;
        match answer.status().as_u16() {
            200..=299 | 404 => Ok(()),
            status => Err(failed(
                format!("the Delete Blob request was answered {status}").into(),
            )),
        }
    }
}

/// The storage account and the endpoint: from the config, else the connection string (its
/// `AccountName`, or the account its `BlobEndpoint`'s host names), else the variables. Two
/// places naming different accounts are refused: a connection string left from another account
/// would otherwise send the copies there, and a SAS token does not say which account it is for.
fn account_and_endpoint(
    config: &Offsite,
    vars: &Vars,
    connection: &ConnectionString,
) -> Result<(String, Option<String>)> {
    let endpoint = config
        .endpoint
        .clone()
        .or_else(|| connection.blob_endpoint.clone());
    if let Some(e) = &endpoint
        && !(e.starts_with("http://") || e.starts_with("https://"))
    {
        return Err(Error::config(
            "the BlobEndpoint of AZURE_STORAGE_CONNECTION_STRING does not start with http:// or https://",
        )
        .with_hint("copy the connection string again from the storage account's Access keys"));
    }
    let named: Vec<(&str, String)> = [
        ("storage.offsite.account", config.account.clone()),
        (
            "the AccountName of AZURE_STORAGE_CONNECTION_STRING",
            connection.account.clone(),
        ),
        (
            "the endpoint's host",
            endpoint.as_deref().and_then(endpoint_account),
        ),
    ]
    .into_iter()
    .filter_map(|(place, account)| Some((place, account?)))
    .collect();
    let account = match named.first() {
        Some((_, account)) => account.clone(),
        None => vars
            .get("AZURE_STORAGE_ACCOUNT")
            .or_else(|| vars.get("AZURE_STORAGE_ACCOUNT_NAME"))
            .map(str::to_string)
            .ok_or_else(|| {
                Error::config("no Azure storage account is named for the off-site storage")
                    .with_hint("set account = \"…\" in [storage.offsite], or AZURE_STORAGE_ACCOUNT")
            })?,
    };
    if let Some((place, other)) = named.iter().find(|(_, a)| *a != account) {
        return Err(Error::config(format!(
            "the off-site storage account is {account} ({}), but {place} names {other}",
            named[0].0
        ))
        .with_hint(
            "make them name one storage account, or unset the one left from another account",
        ));
    }
    if !crate::config::valid_account(&account) {
        return Err(Error::config(format!(
            "the Azure storage account `{account}` is not a storage account name (3-24 of a-z 0-9)"
        ))
        .with_hint("check AZURE_STORAGE_ACCOUNT, or set account in [storage.offsite]"));
    }
    let endpoint = endpoint.or_else(|| {
        connection
            .endpoint_suffix
            .as_ref()
            .map(|suffix| format!("https://{account}.blob.{suffix}"))
    });
    Ok((account, endpoint))
}

/// The account an endpoint's host names: `acme` of `https://acme.blob.core.windows.net`.
fn endpoint_account(endpoint: &str) -> Option<String> {
    let url = url::Url::parse(endpoint).ok()?;
    let (first, rest) = url.host_str()?.split_once('.')?;
    rest.starts_with("blob.").then(|| first.to_string())
}

/// Whether Azure's instance metadata service at `url` answers within a second or two: off
/// Azure nothing answers, and the search ends there instead of failing at every request.
fn answers(url: &str) -> bool {
    super::credentials::answers_200(url, |host| {
        format!(
            "GET /metadata/instance?api-version=2021-02-01 HTTP/1.1\r\nHost: {host}\r\n\
             Metadata: true\r\nConnection: close\r\n\r\n"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn a_connection_string_gives_account_key_and_endpoint() {
        let parsed = parse_connection_string(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;\
             AccountKey=abc+/def==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;",
        );
        assert_eq!(parsed.account.as_deref(), Some("devstoreaccount1"));
        assert_eq!(parsed.key.as_deref(), Some("abc+/def=="));
        assert_eq!(
            parsed.blob_endpoint.as_deref(),
            Some("http://127.0.0.1:10000/devstoreaccount1")
        );
    }

    #[test]
    fn credentials_are_found_in_azure_s_order_and_described_without_secrets() {
        let none = ConnectionString::default();
        let key = Credentials::find(
            &vars(&[
                ("AZURE_STORAGE_KEY", "k3y"),
                ("AZURE_STORAGE_SAS_TOKEN", "sv=1"),
            ]),
            &none,
        )
        .unwrap();
        assert_eq!(
            key,
            Credentials::AccountKey {
                key: "k3y".into(),
                from: "AZURE_STORAGE_KEY"
            }
        );
        assert!(!key.describe().contains("k3y"));
        let principal = Credentials::find(
            &vars(&[
                ("AZURE_CLIENT_ID", "app"),
                ("AZURE_TENANT_ID", "t"),
                ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
            ]),
            &none,
        )
        .unwrap();
        assert!(matches!(principal, Credentials::WorkloadIdentity { .. }));
        assert!(principal.describe().contains("app"));
        // A managed identity endpoint named is trusted without a probe.
        let named = Credentials::find(
            &vars(&[("AZURE_MSI_ENDPOINT", "http://127.0.0.1:9")]),
            &none,
        )
        .unwrap();
        assert!(matches!(named, Credentials::ManagedIdentity { .. }));
        assert!(!format!("{key:?}").contains("k3y"));
        // Nothing set and no metadata service: a config error naming every way in.
        let err = Credentials::find_at(&vars(&[]), &none, "http://127.0.0.1:9").unwrap_err();
        assert!(err.to_string().contains("no Azure credentials"), "{err}");
    }

    fn offsite(account: Option<&str>, endpoint: Option<&str>) -> Offsite {
        Offsite {
            backend: crate::config::Backend::Azure,
            bucket: "backups".into(),
            prefix: String::new(),
            endpoint: endpoint.map(str::to_string),
            region: None,
            path_style: false,
            account: account.map(str::to_string),
        }
    }

    #[test]
    fn the_account_is_one_account_wherever_it_is_named() {
        let none = Vars::default();
        // The portal's SAS connection string names its account only in the endpoint's host.
        let sas = parse_connection_string(
            "BlobEndpoint=https://devacct.blob.core.windows.net/;SharedAccessSignature=sv=1&sig=x",
        );
        let (account, endpoint) = account_and_endpoint(&offsite(None, None), &none, &sas).unwrap();
        assert_eq!(account, "devacct");
        assert_eq!(
            endpoint.as_deref(),
            Some("https://devacct.blob.core.windows.net/")
        );
        // The config names prod: a string left from dev is refused, not followed to dev.
        let err = account_and_endpoint(&offsite(Some("prodacct"), None), &none, &sas).unwrap_err();
        assert!(err.to_string().contains("devacct"), "{err}");
        let named = parse_connection_string("AccountName=devacct;AccountKey=k");
        assert!(account_and_endpoint(&offsite(Some("prodacct"), None), &none, &named).is_err());
        // A suffix gives a sovereign cloud's endpoint; a bad account name from a variable is
        // refused.
        let gov = parse_connection_string(
            "AccountName=gov1;AccountKey=k;EndpointSuffix=core.usgovcloudapi.net",
        );
        let (_, endpoint) = account_and_endpoint(&offsite(None, None), &none, &gov).unwrap();
        assert_eq!(
            endpoint.as_deref(),
            Some("https://gov1.blob.core.usgovcloudapi.net")
        );
        let bad = vars(&[("AZURE_STORAGE_ACCOUNT", "Not_An/Account")]);
        assert!(
            account_and_endpoint(&offsite(None, None), &bad, &ConnectionString::default()).is_err()
        );
        // Azurite's path-style endpoint names no account in its host.
        let (account, _) = account_and_endpoint(
            &offsite(
                Some("devstoreaccount1"),
                Some("http://127.0.0.1:10000/devstoreaccount1"),
            ),
            &none,
            &ConnectionString::default(),
        )
        .unwrap();
        assert_eq!(account, "devstoreaccount1");
    }
}
