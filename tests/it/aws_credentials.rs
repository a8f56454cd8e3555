//! Off-site credentials without long-lived keys in the environment: a profile of a shared
//! credentials file, and a web identity token (EKS's IRSA, GitHub's OIDC) exchanged at STS for a
//! role's keys — against moto's server on 127.0.0.1, which speaks STS and S3. `doctor` says where
//! the credentials came from, never what they are.

use std::process::{Child, Command, Stdio};

use crate::harness::{DEFAULT_CONFIG, Project};
use crate::services;

const BUCKET: &str = "faber-moto";

/// One moto server of a test, over TLS with a CA of the test's own (object_store exchanges a
/// web identity token over HTTPS only), stopped on drop.
struct Moto {
    child: Child,
    port: u16,
    certs: tempfile::TempDir,
}

/// moto's server, as `moto_server` runs it, over TLS — with one shim: object_store sends STS's
/// AssumeRoleWithWebIdentity as a POST with its parameters in the query string (as AWS takes
/// it), and moto tells an unsigned STS call from an S3 one by the parameters in the body, so
/// they are moved there. Arguments: host, port, certificate, key.
const SERVE: &str = r#"
import io, sys
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple
app = DomainDispatcherApplication(create_backend_app)
def shim(environ, start_response):
    query = environ.get("QUERY_STRING", "")
    if "Action=AssumeRoleWithWebIdentity" in query and not environ.get("CONTENT_LENGTH"):
        body = query.encode()
        environ["QUERY_STRING"] = ""
        environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
        environ["CONTENT_LENGTH"] = str(len(body))
        environ["wsgi.input"] = io.BytesIO(body)
    return app(environ, start_response)
run_simple(sys.argv[1], int(sys.argv[2]), shim, threaded=True, ssl_context=(sys.argv[3], sys.argv[4]))
"#;

/// Writes a CA (`ca.pem`) and a certificate for 127.0.0.1 signed by it (`cert.pem`, `key.pem`)
/// into the directory given.
const MAKE_CERTS: &str = r#"
import datetime, ipaddress, sys
from cryptography import x509
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
out = sys.argv[1]
now = datetime.datetime.now(datetime.timezone.utc)
def valid(b):
    return b.not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1)).serial_number(x509.random_serial_number())
ca_key = ec.generate_private_key(ec.SECP256R1())
ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "faber test CA")])
ca = valid(x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key()))     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256())
key = ec.generate_private_key(ec.SECP256R1())
leaf = valid(x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
    .issuer_name(ca_name).public_key(key.public_key()))     .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)     .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)     .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False).sign(ca_key, hashes.SHA256())
open(f"{out}/ca.pem", "wb").write(ca.public_bytes(serialization.Encoding.PEM))
open(f"{out}/cert.pem", "wb").write(leaf.public_bytes(serialization.Encoding.PEM))
open(f"{out}/key.pem", "wb").write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
"#;

impl Moto {
    /// Starts a server with the bucket made, or `None` (a skip) when moto is not installed.
    fn start() -> Option<Moto> {
        if which::which("moto_server").is_err() {
            services::skip("moto is not installed (scripts/services.sh installs it)");
            return None;
        }
        let certs = tempfile::tempdir().unwrap();
        let made = Command::new("python3")
            .args(["-c", MAKE_CERTS])
            .arg(certs.path())
            .output()
            .unwrap();
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        let port = crate::harness::free_port();
        let child = Command::new("python3")
            .args(["-c", SERVE, "127.0.0.1", &port.to_string()])
            .arg(certs.path().join("cert.pem"))
            .arg(certs.path().join("key.pem"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let moto = Moto { child, port, certs };
        crate::harness::wait_listening(port, "moto", 30);
        let made = Command::new("python3")
            .args([
                "-c",
                &format!(
                    "import boto3; boto3.client('s3', endpoint_url='{}', region_name='us-east-1', \
                     verify='{}', aws_access_key_id='x', aws_secret_access_key='x').create_bucket(Bucket='{BUCKET}')",
                    moto.endpoint(),
                    moto.ca().display()
                ),
            ])
            .output()
            .unwrap();
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        Some(moto)
    }

    fn ca(&self) -> std::path::PathBuf {
        self.certs.path().join("ca.pem")
    }

    fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// A project whose dev environment goes off-site to this server, with no keys in its
    /// variables.
    fn project(&self) -> Project {
        let config = format!(
            "{}\n[storage.offsite]\nurl = \"s3://{BUCKET}/team\"\nendpoint = \"{}\"\n",
            DEFAULT_CONFIG.replace(
                "[environments.dev]\n",
                "[environments.dev]\noffsite = true\n"
            ),
            self.endpoint()
        );
        Project::with_config(&config)
            .with_var("HOME", "/nonexistent")
            .with_var("AWS_EC2_METADATA_DISABLED", "true")
            .with_var("AWS_CA_BUNDLE", self.ca().to_str().unwrap())
            .seeded("db/dev.sqlite3")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A backup goes off-site and comes back from there, and doctor says where the credentials came
/// from without them.
fn round_trip(p: &Project, from: &str, secret: &str) {
    let doc = p.json(&["backup", "dev"], 0);
    let id = doc["backup"]["id"].as_str().unwrap().to_string();
    let entry = p
        .backups()
        .into_iter()
        .find(|b| b["id"] == id.as_str())
        .unwrap();
    assert_eq!(entry["remote"]["status"], "uploaded", "{entry}");
    std::fs::remove_file(p.data_file(&id)).unwrap();
    p.run(&["verify", &id]).code(0).stdout_has("Fetched");
    let out = p.run(&["doctor"]);
    assert!(
        out.stdout.contains(&format!("credentials from {from}")),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret));
}

#[test]
fn credentials_from_a_profile_of_a_shared_credentials_file() {
    let Some(moto) = Moto::start() else { return };
    let p = moto.project();
    let secret = "profile-secret-Zq8";
    p.write(
        "aws/credentials",
        &format!(
            "[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n\
             [ci]\naws_access_key_id = AKIDCI\naws_secret_access_key = {secret}\n"
        ),
    );
    let file = p.path("aws/credentials");
    let p = p
        .with_var("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap())
        .with_var("AWS_PROFILE", "ci");
    round_trip(&p, &format!("profile ci of {}", file.display()), secret);
}

#[test]
fn credentials_from_a_web_identity_token_exchanged_at_sts() {
    let Some(moto) = Moto::start() else { return };
    let p = moto.project();
    let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJmYWJlciJ9.c2lnbmF0dXJl";
    p.write("token", token);
    let token_file = p.path("token");
    let role = "arn:aws:iam::123456789012:role/faber-backups";
    let p = p
        .with_var("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.to_str().unwrap())
        .with_var("AWS_ROLE_ARN", role)
        .with_var("AWS_ROLE_SESSION_NAME", "faber-it")
        .with_var("AWS_ENDPOINT_URL_STS", &moto.endpoint());
    round_trip(
        &p,
        &format!("a web identity token exchanged for role {role}"),
        token,
    );
    // A token file that is gone: the exchange fails, the local backup stays, no token shown.
    let gone = p.with_var("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/token");
    let out = gone.run(&["backup", "dev"]).code(6);
    assert!(!out.stderr.contains(token), "{}", out.stderr);
}

#[test]
fn without_any_credentials_the_error_names_every_source() {
    let p = Project::with_config(&format!(
        "{DEFAULT_CONFIG}\n[storage.offsite]\nurl = \"s3://{BUCKET}/team\"\nendpoint = \"http://127.0.0.1:9\"\n"
    ))
    .with_var("HOME", "/nonexistent")
    .with_var("AWS_EC2_METADATA_DISABLED", "true")
    .seeded("db/dev.sqlite3");
    let id = p.backup(&["dev"]);
    let out = p.run(&["push", &id]).code(1);
    assert!(
        out.stderr.contains("AWS_WEB_IDENTITY_TOKEN_FILE"),
        "{}",
        out.stderr
    );
}

/// A profile of the shared config file (`~/.aws/config`) whose `credential_process` prints the
/// keys — how SSO users get them through the AWS CLI (`aws configure export-credentials
/// --format process`). A process that fails or prints stale keys is a clear error that shows
/// nothing it printed; a role profile faber-db cannot follow says how to get its keys.
#[test]
fn credentials_from_the_credential_process_of_a_shared_config_profile() {
    let Some(moto) = Moto::start() else { return };
    let p = moto.project();
    let secret = "process-secret-Wq3";
    p.write(
        "bin/creds",
        &format!(
            "#!/bin/sh\n[ \"$1\" = --ok ] || {{ echo 'Error loading SSO Token: Token has expired' >&2; exit 255; }}\n\
             echo '{{\"Version\": 1, \"AccessKeyId\": \"AKIDPROC\", \"SecretAccessKey\": \"{secret}\", \
             \"SessionToken\": \"tok-{secret}\", \"Expiration\": \"'\"$2\"'\"}}'\n"
        ),
    );
    let script = p.path("bin/creds");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let script = script.to_str().unwrap();
    p.write(
        "aws/config",
        &format!(
            "[default]\nregion = us-east-1\n\n\
             [profile ci]\ncredential_process = {script} --ok 2099-01-01T00:00:00Z\n\n\
             [profile stale]\ncredential_process = \"{script}\" --ok 2001-01-01T00:00:00Z\n\n\
             [profile expired]\ncredential_process = {script}\n\n\
             [profile piped]\ncredential_process = {script} --ok | cat\n\n\
             [profile secret-in-line]\ncredential_process = TOKEN={secret} {script} --ok\n\n\
             [profile assume]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = ci\n\n\
             [profile from-instance]\nrole_arn = arn:aws:iam::1:role/x\ncredential_source = Ec2InstanceMetadata\n\n\
             [profile sso-dev]\nsso_session = acme\nsso_account_id = 123456789012\n"
        ),
    );
    let file = p.path("aws/config");
    let file_var = file.to_str().unwrap();
    let with = |profile: &str| {
        moto.project()
            .with_var("AWS_CONFIG_FILE", file_var)
            .with_var("AWS_PROFILE", profile)
    };
    round_trip(
        &with("ci"),
        &format!("the credential_process of profile ci in {}", file.display()),
        secret,
    );

    let refused = |profile: &str, says: &str, hint: &str| {
        // The backup stays here and valid (exit 6, as for any failed upload).
        let out = with(profile)
            .run(&["backup", "dev"])
            .code(6)
            .stderr_has(says)
            .stderr_has(hint);
        assert!(!out.stderr.contains(secret), "{}", out.stderr);
    };
    refused(
        "stale",
        "gave credentials that expire at 2001-01-01",
        "aws sso login",
    );
    let out = with("expired").run(&["backup", "dev"]).code(6);
    for said in ["failed", "Token has expired", "aws sso login"] {
        assert!(out.stderr.contains(said), "{said}: {}", out.stderr);
    }
    refused("piped", "is not one plain command", "without a shell");
    refused(
        "secret-in-line",
        "is not one plain command",
        "without a shell",
    );
    refused(
        "assume",
        "assumes a role",
        "export-credentials --profile assume",
    );
    // A role taken from the instance is left to the sources after the file: here none
    // answers, and the error names them all, as before the config file was read.
    refused(
        "from-instance",
        "no AWS credentials",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    );
    // An SSO profile whose session section is missing (the portal exchange is tested below).
    refused(
        "sso-dev",
        "has no [sso-session acme] with sso_region",
        "aws configure sso",
    );
}

/// IAM Identity Center's portal, as far as the SDKs use it for a role's keys: `GET
/// /federation/credentials?account_id=…&role_name=…` with the cached sign-in's token in
/// `x-amz-sso_bearer_token`. A listener on 127.0.0.1 that answers as the portal documents it
/// (moto has no SSO portal); the keys it hands out are then used against moto's S3.
const PORTAL: &str = r#"
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import urlparse, parse_qs
token = sys.argv[2]
class Portal(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlparse(self.path)
        q = parse_qs(url.query)
        ok = (url.path == "/federation/credentials"
              and self.headers.get("x-amz-sso_bearer_token") == token
              and q.get("account_id") == ["111122223333"] and q.get("role_name") == ["Backups"])
        body = json.dumps({"roleCredentials": {"accessKeyId": "ASIASSO", "secretAccessKey": "sso-secret-Kp2",
                "sessionToken": "sso-session-token", "expiration": 4102444800000}} if ok
               else {"message": "Session token not found or invalid"}).encode()
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
HTTPServer(("127.0.0.1", int(sys.argv[1])), Portal).serve_forever()
"#;

/// An SSO profile (`sso_session`, as `aws configure sso` writes it): the token `aws sso login`
/// cached is exchanged at the portal for the role's keys, which reach the bucket; `doctor` names
/// the profile and role, never a key or the token. An expired sign-in, a missing one and one
/// the portal refuses each say to sign in again.
#[test]
fn credentials_from_an_sso_profile_exchanged_at_the_portal() {
    use sha1::Digest;
    let Some(moto) = Moto::start() else { return };
    let port = crate::harness::free_port();
    let token = "sso-access-token-Zr7";
    let mut portal = Command::new("python3")
        .args(["-c", PORTAL, &port.to_string(), token])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    crate::harness::wait_listening(port, "the portal", 20);
    let home = tempfile::tempdir().unwrap();
    let cache = home.path().join(".aws/sso/cache");
    std::fs::create_dir_all(&cache).unwrap();
    let cache_file = cache.join(format!("{}.json", hex::encode(sha1::Sha1::digest(b"corp"))));
    let sign_in = |token: &str, expires: &str| {
        std::fs::write(
            &cache_file,
            format!(
                r#"{{"accessToken": "{token}", "expiresAt": "{expires}", "region": "eu-west-1"}}"#
            ),
        )
        .unwrap();
    };
    let config = home.path().join("aws-config");
    std::fs::write(
        &config,
        "[profile dev]\nsso_session = corp\nsso_account_id = 111122223333\n\
         sso_role_name = Backups\nregion = us-east-1\n\n\
         [sso-session corp]\nsso_region = eu-west-1\n\
         sso_start_url = https://corp.awsapps.com/start\n",
    )
    .unwrap();
    let project = || {
        moto.project()
            .with_var("HOME", home.path().to_str().unwrap())
            .with_var("AWS_CONFIG_FILE", config.to_str().unwrap())
            .with_var("AWS_PROFILE", "dev")
            .with_var("AWS_ENDPOINT_URL_SSO", &format!("http://127.0.0.1:{port}"))
    };
    sign_in(token, "2099-01-01T00:00:00Z");
    round_trip(
        &project(),
        &format!(
            "SSO profile dev of {} (role Backups in account 111122223333)",
            config.display()
        ),
        "sso-secret-Kp2",
    );
    let out = project().run(&["doctor"]);
    assert!(!out.stdout.contains(token) && !out.stderr.contains(token));

    // Each failure keeps the backup here (exit 6) and says to sign in again.
    let refused = |says: &str| {
        let out = project()
            .run(&["backup", "dev"])
            .code(6)
            .stderr_has(says)
            .stderr_has("aws sso login --profile dev");
        assert!(!out.stderr.contains(token), "{}", out.stderr);
    };
    sign_in(token, "2001-01-01T00:00:00Z");
    refused("the SSO sign-in expired at 2001-01-01");
    sign_in("a-token-the-portal-does-not-know", "2099-01-01T00:00:00Z");
    refused("the SSO portal refused the cached sign-in for role Backups in account 111122223333");
    std::fs::remove_file(&cache_file).unwrap();
    refused("no SSO sign-in is cached");
    let _ = portal.kill();
    let _ = portal.wait();
}
