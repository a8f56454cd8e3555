//! Off-site copies in an Azure Blob container (`az://container/prefix`): the same test set the
//! S3 bucket and the directory pass (offsite.rs), against Azurite, Microsoft's own emulator of
//! the Blob service, on 127.0.0.1. `scripts/services.sh` installs it into `.ci/azurite/`; a test
//! skips without it unless FABER_REQUIRE_SERVICES=1.
//!
//! The test reads and damages what was stored through the Blob API (Azurite keeps blobs in
//! extent files of its own, not one file per object); the container itself is made with one
//! signed REST call, since `object_store` does not make containers.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::StreamExt;
use hmac::{Hmac, KeyInit, Mac};
use object_store::azure::{MicrosoftAzure, MicrosoftAzureBuilder};
use object_store::path::Path as Key;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload};
use sha2::Sha256;

use crate::harness::{DEFAULT_CONFIG, Project};
use crate::offsite::{self, Remote};
use crate::services;

/// Azurite's one account and its key: public, the same in every copy of the emulator.
const ACCOUNT: &str = "devstoreaccount1";
const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const CONTAINER: &str = "faber-it";

/// One Azurite of a test: its own port and data directory, stopped on drop.
struct Azurite {
    child: Child,
    port: u16,
    _data: tempfile::TempDir,
    store: MicrosoftAzure,
    runtime: tokio::runtime::Runtime,
}

fn binary() -> PathBuf {
    match std::env::var_os("FABER_AZURITE_BIN") {
        Some(b) => PathBuf::from(b),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join(".ci/azurite/node_modules/.bin/azurite-blob"),
    }
}

impl Azurite {
    /// Starts Azurite with an empty container, or `None` (a skip) when it is not installed.
    fn start() -> Option<Azurite> {
        let bin = binary();
        if !bin.is_file() {
            services::skip(&format!(
                "Azurite is not installed at {} (run scripts/services.sh, or set FABER_AZURITE_BIN)",
                bin.display()
            ));
            return None;
        }
        let data = tempfile::Builder::new()
            .prefix("faber-azurite-")
            .tempdir()
            .unwrap();
        let port = crate::harness::free_port();
        let child = Command::new(&bin)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .arg("--location")
            .arg(data.path())
            .args(["--silent", "--disableTelemetry", "--skipApiVersionCheck"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Azurite starts");
        crate::harness::wait_listening(port, "Azurite", 30);
        let endpoint = format!("http://127.0.0.1:{port}/{ACCOUNT}");
        // The test's own client to the emulator needs the TLS provider faber-db installs.
        faber_db::tls::ready();
        let store = MicrosoftAzureBuilder::new()
            .with_account(ACCOUNT)
            .with_access_key(KEY)
            .with_container_name(CONTAINER)
            .with_endpoint(endpoint)
            .with_client_options(ClientOptions::new().with_allow_http(true))
            .build()
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let azurite = Azurite {
            child,
            port,
            _data: data,
            store,
            runtime,
        };
        azurite.create_container();
        Some(azurite)
    }

    /// `PUT /ACCOUNT/CONTAINER?restype=container`, signed with the account key (SharedKey).
    fn create_container(&self) {
        let date = chrono::Utc::now()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let version = "2021-08-06";
        let to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n\
             /{ACCOUNT}/{ACCOUNT}/{CONTAINER}\nrestype:container"
        );
        let signature = sign(&to_sign);
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            stream,
            "PUT /{ACCOUNT}/{CONTAINER}?restype=container HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             x-ms-date: {date}\r\nx-ms-version: {version}\r\n\
             Authorization: SharedKey {ACCOUNT}:{signature}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    }

    /// An account SAS token for the blob service: read, write, delete, list, add, create on
    /// every container and object, until 2099.
    fn sas_token() -> String {
        let (version, expiry) = ("2019-12-12", "2099-01-01T00:00:00Z");
        let to_sign = format!("{ACCOUNT}\nrwdlac\nb\nsco\n\n{expiry}\n\nhttps,http\n{version}\n");
        let sig: String = url::form_urlencoded::byte_serialize(sign(&to_sign).as_bytes()).collect();
        format!("sv={version}&ss=b&srt=sco&sp=rwdlac&se={expiry}&spr=https,http&sig={sig}")
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{ACCOUNT}", self.port)
    }

    /// The default test config with the dev environment copied to `az://faber-it/team`.
    fn config(&self, endpoint: bool) -> String {
        let config = DEFAULT_CONFIG.replace(
            "[environments.dev]\n",
            "[environments.dev]\noffsite = true\n",
        );
        let mut config = format!("{config}\n[storage.offsite]\nurl = \"az://{CONTAINER}/team\"\n");
        if endpoint {
            config.push_str(&format!("endpoint = \"{}\"\n", self.endpoint()));
        }
        config
    }
}

/// The base64 HMAC-SHA256 of `text` under the account key: a SharedKey or SAS signature.
fn sign(text: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&BASE64.decode(KEY).unwrap()).unwrap();
    mac.update(text.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Remote for Azurite {
    fn project(&self) -> Project {
        Project::with_config(&self.config(true))
            .with_var("AZURE_STORAGE_ACCOUNT", ACCOUNT)
            .with_var("AZURE_STORAGE_KEY", KEY)
            .seeded("db/dev.sqlite3")
    }

    fn keys(&self, prefix: &str) -> Vec<String> {
        let prefix = Key::from(prefix);
        let mut keys: Vec<String> = self.runtime.block_on(async {
            let mut listing = self.store.list(Some(&prefix));
            let mut keys = Vec::new();
            while let Some(meta) = listing.next().await {
                keys.push(meta.unwrap().location.to_string());
            }
            keys
        });
        keys.sort();
        keys
    }

    fn url(&self, key: &str) -> String {
        format!("az://{CONTAINER}/{key}")
    }

    fn read(&self, key: &str) -> Vec<u8> {
        self.runtime
            .block_on(async { self.store.get(&Key::from(key)).await?.bytes().await })
            .unwrap_or_else(|e| panic!("{key}: {e}"))
            .to_vec()
    }

    fn exists(&self, key: &str) -> bool {
        match self.runtime.block_on(self.store.head(&Key::from(key))) {
            Ok(_) => true,
            Err(object_store::Error::NotFound { .. }) => false,
            Err(e) => panic!("{key}: {e}"),
        }
    }

    fn write(&self, key: &str, bytes: &[u8]) {
        self.runtime
            .block_on(
                self.store
                    .put(&Key::from(key), PutPayload::from(bytes.to_vec())),
            )
            .unwrap();
    }

    fn remove(&self, key: &str) {
        self.runtime
            .block_on(self.store.delete(&Key::from(key)))
            .unwrap();
    }
}

#[test]
fn a_backup_goes_to_azure_blob_and_comes_back_when_the_local_file_is_gone() {
    if let Some(azurite) = Azurite::start() {
        offsite::a_backup_goes_off_site_and_comes_back_when_the_local_file_is_gone_on(&azurite);
    }
}

#[test]
fn a_damaged_azure_blob_is_refused_and_nothing_is_left_behind() {
    if let Some(azurite) = Azurite::start() {
        offsite::a_damaged_remote_copy_is_refused_and_nothing_is_left_behind_on(&azurite);
    }
}

#[test]
fn cleanup_and_delete_remove_the_azure_blobs_and_list_remote_shows_strays() {
    if let Some(azurite) = Azurite::start() {
        offsite::cleanup_and_delete_remove_the_off_site_copies_and_list_remote_shows_strays_on(
            &azurite,
        );
    }
}

#[test]
fn a_large_backup_goes_to_azure_in_blocks_and_comes_back_whole() {
    if let Some(azurite) = Azurite::start() {
        offsite::a_large_backup_goes_up_in_parts_and_comes_back_whole_on(&azurite);
    }
}

#[test]
fn a_lost_or_rotten_azure_blob_never_replaces_a_good_one() {
    if let Some(azurite) = Azurite::start() {
        offsite::a_lost_or_rotten_copy_never_replaces_a_good_one_on(&azurite);
    }
}

#[test]
fn after_the_disk_is_lost_pull_registers_the_azure_backups_and_restore_fetches_them() {
    if let Some(azurite) = Azurite::start() {
        offsite::after_the_disk_is_lost_pull_registers_the_off_site_backups_and_restore_fetches_them_on(
            &azurite,
        );
    }
}

/// A connection string (the portal's, Azurite's docs') names the account, the key and the
/// endpoint at once; `doctor` says where the credentials came from, never the key; a wrong key
/// is a clear failure that shows no secret.
#[test]
fn azure_credentials_come_from_a_connection_string_and_a_wrong_key_is_refused_without_showing_it() {
    let Some(azurite) = Azurite::start() else {
        return;
    };
    let connection = format!(
        "DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={};",
        azurite.endpoint()
    );
    let p = Project::with_config(&azurite.config(false))
        .with_var("AZURE_STORAGE_CONNECTION_STRING", &connection)
        .seeded("db/dev.sqlite3")
        .seeded("db/prod.sqlite3");
    let id = p.backup(&["dev"]);
    let name = p
        .data_file(&id)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(azurite.exists(&format!("team/dev/{name}")));
    let out = p.run(&["doctor"]);
    out.code(0)
        .stdout_has("the account key in AZURE_STORAGE_CONNECTION_STRING")
        .stdout_lacks(KEY);

    // The config names another account: the connection string is refused, not followed to
    // the account it names.
    let other = Project::with_config(&format!(
        "{}account = \"otheracct\"\n",
        azurite.config(false)
    ))
    .with_var("AZURE_STORAGE_CONNECTION_STRING", &connection)
    .seeded("db/dev.sqlite3");
    other
        .run(&["list", "--remote"])
        .code(1)
        .stderr_has("names devstoreaccount1")
        .stderr_lacks(KEY);

    // The same key with one character changed: the upload is refused, the backup stays local
    // and valid, its copy is marked failed, and no text shows the key.
    let wrong = format!("{}A{}", &KEY[..10], &KEY[11..]);
    let p = Project::with_config(&azurite.config(true))
        .with_var("AZURE_STORAGE_ACCOUNT", ACCOUNT)
        .with_var("AZURE_STORAGE_KEY", &wrong)
        .seeded("db/dev.sqlite3");
    let out = p.run(&["--json", "backup", "dev"]).code(6);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(!text.contains(&wrong) && !text.contains(KEY), "{text}");
    let id = doc["backup"]["id"].as_str().unwrap();
    let e = p.backups().into_iter().find(|b| b["id"] == id).unwrap();
    assert_eq!(e["status"], "valid");
    assert_eq!(e["remote"]["status"], "failed", "{doc}");
    assert!(
        !std::fs::read_to_string(p.path(crate::harness::BACKUPS).join("backups.json"))
            .unwrap()
            .contains(&wrong)
    );
    p.run(&["doctor"]).stdout_lacks(&wrong);

    // A SAS token instead of the key: named by doctor, its signature never shown.
    let token = Azurite::sas_token();
    let sig = token.rsplit("sig=").next().unwrap().to_string();
    let p = Project::with_config(&azurite.config(true))
        .with_var("AZURE_STORAGE_ACCOUNT", ACCOUNT)
        .with_var("AZURE_STORAGE_SAS_TOKEN", &format!("?{token}"))
        .seeded("db/dev.sqlite3")
        .seeded("db/prod.sqlite3");
    let id = p.backup(&["dev"]);
    let e = p
        .backups()
        .into_iter()
        .find(|b| b["id"] == id.as_str())
        .unwrap();
    assert_eq!(e["remote"]["status"], "uploaded", "{e}");
    std::fs::remove_file(p.data_file(&id)).unwrap();
    p.run(&["verify", &id]).code(0).stdout_has("Fetched");
    p.run(&["doctor"])
        .code(0)
        .stdout_has("the SAS token in AZURE_STORAGE_SAS_TOKEN")
        .stdout_lacks(&sig);
    // Removing the backup removes its blob, through the same token.
    let name = p
        .data_file(&id)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(azurite.exists(&format!("team/dev/{name}")));
    p.run(&["-y", "delete", &id, "--force"])
        .code(0)
        .stdout_has("Removed off-site copy");
    assert!(!azurite.exists(&format!("team/dev/{name}")));
    assert!(!azurite.exists(&format!("team/dev/{id}.manifest.json")));

    // No account anywhere: a config error naming where one goes.
    let p = Project::with_config(&azurite.config(true))
        .with_var("AZURE_STORAGE_KEY", KEY)
        .seeded("db/dev.sqlite3");
    p.run(&["list", "--remote"])
        .code(1)
        .stderr_has("no Azure storage account")
        .stderr_has("AZURE_STORAGE_ACCOUNT");
}
