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

/// Where the container's credentials come from.
#[derive(Debug, PartialEq, Eq)]
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
            _ => {}
        }
    }
    parts
}

/// The metadata service's address when no variable names another.
const IMDS: &str = "http://169.254.169.254";

impl Credentials {
    fn find(vars: &Vars, connection: &ConnectionString) -> Result<Credentials> {
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
        let endpoint = get("AZURE_MSI_ENDPOINT");
        if answers(endpoint.as_deref().unwrap_or(IMDS)) {
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
    let account = config
        .account
        .clone()
        .or_else(|| connection.account.clone())
        .or_else(|| vars.get("AZURE_STORAGE_ACCOUNT").map(str::to_string))
        .or_else(|| vars.get("AZURE_STORAGE_ACCOUNT_NAME").map(str::to_string))
        .ok_or_else(|| {
            Error::config("no Azure storage account is named for the off-site storage")
                .with_hint("set account = \"…\" in [storage.offsite], or AZURE_STORAGE_ACCOUNT")
        })?;
    let endpoint = config
        .endpoint
        .clone()
        .or_else(|| connection.blob_endpoint.clone());
    let credentials = Credentials::find(vars, &connection)?;
    let described = credentials.describe();
    let builder = MicrosoftAzureBuilder::new()
        .with_account(account)
        .with_container_name(&config.bucket)
        .with_client_options(client_options(endpoint.as_deref()))
        .with_retry(retry());
    let (mut builder, secrets) = credentials.apply(builder);
    if let Some(endpoint) = endpoint {
        builder = builder.with_endpoint(endpoint.trim_end_matches('/').to_string());
    }
    let store = builder.build().map_err(|e| unusable(config, e))?;
    Ok(Connected {
        store: Arc::new(store),
        secrets,
        credentials: described,
    })
}

/// Whether Azure's instance metadata service at `url` answers within a second or two: off
/// Azure nothing answers, and the search ends there instead of failing at every request.
fn answers(url: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    let Ok(addrs) = parsed.socket_addrs(|| Some(80)) else {
        return false;
    };
    let host = parsed.host_str().unwrap_or_default();
    addrs.iter().any(|a| {
        let Ok(mut stream) = std::net::TcpStream::connect_timeout(a, Duration::from_secs(1)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
        let request = format!(
            "GET /metadata/instance?api-version=2021-02-01 HTTP/1.1\r\nHost: {host}\r\n\
             Metadata: true\r\nConnection: close\r\n\r\n"
        );
        let mut head = [0u8; 12];
        stream.write_all(request.as_bytes()).is_ok()
            && stream.read_exact(&mut head).is_ok()
            && head.starts_with(b"HTTP/1.")
            && &head[9..12] == b"200"
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
        // Nothing set and no metadata service at the address given: a config error naming
        // every way in.
        let err = Credentials::find(
            &vars(&[("AZURE_MSI_ENDPOINT", "http://127.0.0.1:9")]),
            &none,
        )
        .unwrap_err();
        assert!(err.to_string().contains("no Azure credentials"), "{err}");
    }
}
