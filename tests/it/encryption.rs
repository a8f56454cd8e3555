//! Client-side encryption with age: what is stored is ciphertext, it restores only with the
//! identity, and encryption that is asked for but not set up refuses the backup.

use std::fs;

use age::secrecy::ExposeSecret;

use crate::harness::{BACKUPS, DEFAULT_CONFIG, Project, dump_tables};

const MARKER: &str = "faber-plaintext-marker-5e1d";

struct Keys {
    public: String,
    secret: String,
}

fn keys() -> Keys {
    let key = age::x25519::Identity::generate();
    Keys {
        public: key.to_public().to_string(),
        secret: key.to_string().expose_secret().to_string(),
    }
}

/// The default config, every environment encrypted to `public`, the identity in a file.
fn project(k: &Keys) -> Project {
    let p = Project::with_config(&format!(
        "{DEFAULT_CONFIG}\n[encryption]\nencrypt = true\nage_recipients = [\"{}\"]\n\
         age_identity_file = \"keys/backup.key\"\n",
        k.public
    ));
    p.write(
        "keys/backup.key",
        &format!("# public key: {}\n{}\n", k.public, k.secret),
    );
    p
}

#[test]
fn sqlite_backups_are_stored_encrypted_and_restore_only_with_the_identity() {
    let k = keys();
    let p = project(&k).seeded("db/dev.sqlite3");
    p.sqlite("db/dev.sqlite3")
        .execute(&format!("INSERT INTO t VALUES ('{MARKER}')"), [])
        .unwrap();
    let before = dump_tables(&p.sqlite("db/dev.sqlite3"));

    // Uncompressed, a plaintext image would show the marker as it is.
    let doc = p.json(&["backup", "dev", "--compression", "none"], 0);
    let b = &doc["backup"];
    let id = b["id"].as_str().unwrap().to_string();
    assert_eq!(b["encrypted"], true);
    assert!(b["file"].as_str().unwrap().ends_with(".sqlite3.age"), "{b}");
    let plain = b["plaintext_sha256"].as_str().unwrap();
    assert_ne!(plain, b["sha256"].as_str().unwrap());
    let stored = fs::read(p.data_file(&id)).unwrap();
    assert!(stored.starts_with(b"age-encryption.org/v1"));
    assert!(!String::from_utf8_lossy(&stored).contains(MARKER));
    assert!(!String::from_utf8_lossy(&stored).contains("SQLite format"));
    // The secret key is in no file faber-db wrote.
    for f in p.backup_files() {
        let text = fs::read(p.path(&format!("{BACKUPS}/{f}"))).unwrap();
        assert!(!String::from_utf8_lossy(&text).contains(&k.secret), "{f}");
    }

    p.run(&["verify", &id]).code(0).stdout_has("integrity ok");
    p.sqlite("db/dev.sqlite3")
        .execute_batch("DELETE FROM t;")
        .unwrap();
    // With its safety backup: that one is encrypted too.
    p.run(&["-y", "restore", "dev", "--from", &id]).code(0);
    assert_eq!(dump_tables(&p.sqlite("db/dev.sqlite3")), before);
    let safety = p
        .backups()
        .into_iter()
        .find(|b| b["reason"] == "pre-restore")
        .expect("a safety backup");
    assert_eq!(safety["encrypted"], true);
    let safety_file = p.data_file(safety["id"].as_str().unwrap());
    assert!(safety_file.to_str().unwrap().ends_with(".age"));
    assert!(
        fs::read(&safety_file)
            .unwrap()
            .starts_with(b"age-encryption.org/v1")
    );

    // The identity may also be given as an identity file's whole text.
    let text = fs::read_to_string(p.path("keys/backup.key")).unwrap();
    let p = p.with_var("FABER_AGE_IDENTITY", &text);
    p.run(&["verify", &id]).code(0);

    // Another identity, given by the variable (which takes precedence): exit 5, said plainly,
    // and nothing restored.
    p.sqlite("db/dev.sqlite3")
        .execute_batch("DELETE FROM t;")
        .unwrap();
    let other = keys();
    let wrong = p.with_var("FABER_AGE_IDENTITY", &other.secret);
    assert_eq!(wrong.backups().len(), 2);
    wrong
        .run(&["-y", "restore", "dev", "--from", &id, "--no-safety-backup"])
        .code(5)
        .stderr_has("none of the age identities given can decrypt it");
    wrong
        .run(&["verify", &id])
        .code(5)
        .stdout_has("none of the age identities");
    assert_eq!(
        dump_tables(&wrong.sqlite("db/dev.sqlite3"))["t"].len(),
        0,
        "nothing was restored"
    );
    assert_eq!(
        wrong.backups()[0]["status"],
        "valid",
        "a wrong key says nothing of the backup"
    );
}

#[test]
fn a_damaged_encrypted_backup_is_corrupt_and_never_restored() {
    let k = keys();
    let p = project(&k).seeded("db/dev.sqlite3");
    let id = p.backup(&["dev"]);
    let path = p.data_file(&id);
    let mut bytes = fs::read(&path).unwrap();
    let at = bytes.len() - 20;
    bytes[at] ^= 0x40;
    fs::write(&path, bytes).unwrap();
    p.run(&["-y", "restore", "dev", "--from", &id, "--no-safety-backup"])
        .code(5);
    p.run(&["verify", &id]).code(5);
    assert_eq!(p.backups()[0]["status"], "corrupt");

    // Damage in the header (where the file key is wrapped) looks like a wrong key to age;
    // verify tells them apart by the file's hash.
    let id = p.backup(&["dev"]);
    let path = p.data_file(&id);
    let mut bytes = fs::read(&path).unwrap();
    bytes[40] ^= 0x01;
    fs::write(&path, bytes).unwrap();
    p.run(&["verify", &id]).code(5).stdout_has("checksum");
    let e = p
        .backups()
        .into_iter()
        .find(|b| b["id"] == id.as_str())
        .unwrap();
    assert_eq!(e["status"], "corrupt");
}

#[test]
fn secret_keys_in_the_wrong_place_are_refused_and_never_echoed() {
    let k = keys();
    // A secret key pasted into age_recipients.
    let p = Project::with_config(&format!(
        "{DEFAULT_CONFIG}\n[encryption]\nencrypt = true\nage_recipients = [\"{}\"]\n",
        k.secret
    ))
    .seeded("db/dev.sqlite3");
    let run = p
        .run(&["backup", "dev"])
        .code(1)
        .stderr_has("holds a secret key");
    assert!(!run.stderr.contains(&k.secret[20..]), "{}", run.stderr);
    p.assert_nothing_left("dev");
    // A malformed identity in the variable: said so, not shown, not logged.
    let p = project(&k).seeded("db/dev.sqlite3");
    let id = p.backup(&["dev"]);
    let broken = format!("# created today\n{}XYZ\n", k.secret);
    let p = p.with_var("FABER_AGE_IDENTITY", &broken);
    let run = p
        .run(&["-y", "restore", "dev", "--from", &id, "--no-safety-backup"])
        .code(1)
        .stderr_has("FABER_AGE_IDENTITY holds no usable age identity");
    let history = fs::read_to_string(p.path(&format!("{BACKUPS}/history.jsonl"))).unwrap();
    for seen in [&run.stderr, &run.stdout, &history] {
        assert!(!seen.contains(&k.secret[20..]), "the key was shown: {seen}");
    }
}

#[test]
fn encryption_asked_for_but_not_set_up_refuses_the_backup() {
    let cases = [
        (
            "\n[encryption]\nencrypt = true\n",
            "age_recipients is empty",
        ),
        (
            "\n[encryption]\nencrypt = true\nage_recipients = [\"age1nope\"]\n",
            "is not an age recipient",
        ),
    ];
    for (section, says) in cases {
        let p =
            Project::with_config(&format!("{DEFAULT_CONFIG}{section}")).seeded("db/dev.sqlite3");
        p.run(&["backup", "dev"])
            .code(1)
            .stderr_has(says)
            .stderr_has("nothing was backed up");
        p.assert_nothing_left("dev");
    }
    // encrypt = true on an environment with no [encryption] at all.
    let config = DEFAULT_CONFIG.replace(
        "[environments.dev]\n",
        "[environments.dev]\nencrypt = true\n",
    );
    let p = Project::with_config(&config).seeded("db/dev.sqlite3");
    p.run(&["backup", "dev"])
        .code(1)
        .stderr_has("there is no [encryption] section");
    p.assert_nothing_left("dev");
    // An encrypted environment whose default format is directory: refused when the config loads.
    let config = DEFAULT_CONFIG.replace(
        "[environments.dev]\n",
        "[environments.dev]\nencrypt = true\nformat = \"directory\"\n",
    );
    Project::with_config(&config)
        .run(&["list"])
        .code(1)
        .stderr_has("cannot be encrypted yet");
    // No identity anywhere: a restore says where one is looked for.
    let k = keys();
    let p = project(&k).seeded("db/dev.sqlite3");
    let id = p.backup(&["dev"]);
    fs::remove_file(p.path("keys/backup.key")).unwrap();
    p.run(&["-y", "restore", "dev", "--from", &id, "--no-safety-backup"])
        .code(1)
        .stderr_has("cannot read the age identity file");
}

#[test]
fn postgres_backups_round_trip_encrypted_in_both_single_file_formats() {
    use crate::postgres::{PgDb, SCHEMA, server_up};
    if !server_up() {
        return;
    }
    let k = keys();
    let source = PgDb::new("enc");
    source.exec(SCHEMA);
    source.exec(&format!(
        "CREATE TABLE secrets (note text); INSERT INTO secrets VALUES ('{MARKER}');"
    ));
    for format in ["sql", "custom"] {
        let target = PgDb::unborn("enc_copy");
        let p = Project::with_config(&format!(
            "[environments.dev]\nurl_env = \"DEV_DATABASE_URL\"\n\
             [environments.copy]\nurl_env = \"COPY_DATABASE_URL\"\n\
             [encryption]\nencrypt = true\nage_recipients = [\"{}\"]\n",
            k.public
        ))
        .with_var("DEV_DATABASE_URL", &source.url())
        .with_var("COPY_DATABASE_URL", &target.url())
        .with_var("FABER_AGE_IDENTITY", &k.secret);
        let doc = p.json(
            &["backup", "dev", "--format", format, "--compression", "none"],
            0,
        );
        let id = doc["backup"]["id"].as_str().unwrap().to_string();
        assert_eq!(doc["backup"]["encrypted"], true);
        let stored = fs::read(p.data_file(&id)).unwrap();
        assert!(
            !String::from_utf8_lossy(&stored).contains(MARKER),
            "{format}"
        );
        p.run(&["verify", &id]).code(0);
        p.run(&["-y", "restore", "copy", "--from", &id]).code(0);
        assert_eq!(target.data(), source.data(), "{format}");
        // Directory dumps are not encrypted yet: refused, not written in plaintext.
        p.run(&["backup", "dev", "--format", "directory"])
            .code(1)
            .stderr_has("directory dumps are not encrypted yet");
    }
}

/// Names of the files under `dir` (recursively) that start with `prefix`.
fn named(dir: &std::path::Path, prefix: &str) -> Vec<String> {
    let mut all = Vec::new();
    crate::harness::walk(dir, dir, &mut all);
    all.into_iter()
        .filter(|f| {
            std::path::Path::new(f)
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .collect()
}

#[test]
fn a_streamed_encrypted_sqlite_backup_needs_no_room_in_tmpdir() {
    let Some(tmp) = crate::services::Tmpfs::mount("1m") else {
        return;
    };
    let k = keys();
    let mut p = project(&k);
    p.set_var("TMPDIR", tmp.dir.path().to_str().unwrap());
    // 3 MB in WAL mode: streamed into age, no plain snapshot anywhere.
    crate::harness::three_random_megabytes(&p.sqlite("db/dev.sqlite3"), true);
    let id = p.backup(&["dev"]);
    p.run(&["verify", &id, "--checksum-only"]).code(0);
    // In rollback-journal mode the plain snapshot goes to TMPDIR, which has no room for it.
    p.sqlite("db/dev.sqlite3")
        .execute_batch("PRAGMA journal_mode=DELETE;")
        .unwrap();
    p.run(&["backup", "dev"])
        .code(2)
        .stderr_has("for the decrypted snapshot of an encrypted backup");
    assert_eq!(p.ids(), [id]);
}

#[test]
fn decrypted_work_files_never_lie_beside_the_encrypted_backups() {
    let k = keys();
    let tmp = tempfile::tempdir().unwrap();
    let mut p = project(&k).seeded("db/dev.sqlite3");
    p.set_var("TMPDIR", tmp.path().to_str().unwrap());
    // SAFETY: getuid() cannot fail.
    let private = tmp
        .path()
        .join(format!("faber-db-{}", unsafe { libc::getuid() }));
    let backups = p.path(BACKUPS);

    // A backup paused while its snapshot (the plain database) exists: it is in the private
    // directory, and nothing like it is in the backup directory.
    let backup = p.paused_at(&["backup", "dev"], "backup:during-dump");
    assert!(
        named(&backups, "snapshot-").is_empty(),
        "{:?}",
        named(&backups, "snapshot-")
    );
    assert_eq!(named(&private, "snapshot-").len(), 1);
    assert_eq!(crate::harness::mode(&private), 0o700);
    // Killed there, it leaves the snapshot behind; the next encrypted backup removes it.
    backup.signal(libc::SIGKILL);
    let id = p.backup(&["dev"]);
    assert!(
        named(&private, "snapshot-").is_empty(),
        "{:?}",
        named(&private, "snapshot-")
    );

    // verify decodes the image in the private directory too.
    let verify = p.paused_at(&["verify", &id], "verify:after-decode");
    assert!(
        named(&backups, "verify-").is_empty(),
        "{:?}",
        named(&backups, "verify-")
    );
    assert_eq!(named(&private, "verify-").len(), 1);
    assert_eq!(verify.resume().status.code(), Some(0));
    assert!(named(&private, "verify-").is_empty());

    // TMPDIR inside the backup directory is refused: decrypted data never goes there.
    p.set_var("TMPDIR", backups.join("dev").to_str().unwrap());
    p.run(&["backup", "dev"])
        .code(1)
        .stderr_has("inside the backup directory");
    p.set_var("TMPDIR", tmp.path().to_str().unwrap());
    // A private directory others can enter is refused, before anything is written.
    fs::set_permissions(
        &private,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    p.run(&["backup", "dev"])
        .code(1)
        .stderr_has("is not a private directory");
    assert_eq!(p.ids().len(), 1);
}

#[test]
fn doctor_finds_nothing_wrong_with_encrypted_backups() {
    let k = keys();
    let p = project(&k)
        .seeded("db/dev.sqlite3")
        .seeded("db/prod.sqlite3");
    p.backup(&["dev"]);
    p.backup(&["dev", "--compression", "none"]);
    p.run(&["doctor"]).code(0);
}

#[test]
fn a_migration_of_an_encrypted_environment_is_rehearsed_with_the_identity_and_not_without() {
    let k = keys();
    let p = Project::with_config(&format!(
        "[migrations]\ndirectory = \"migrations\"\n\
         [environments.production]\nurl_env = \"PROD_DATABASE_URL\"\n\
         migrate_command = \"sqlite3 -bail \\\"${{DATABASE_URL#sqlite:}}\\\" < migrations/$(ls migrations | tail -1)\"\n\
         [encryption]\nencrypt = true\nage_recipients = [\"{}\"]\n\
         age_identity_file = \"keys/backup.key\"\n",
        k.public
    ))
    .seeded("db/prod.sqlite3");
    p.write(
        "keys/backup.key",
        &format!("# public key: {}\n{}\n", k.public, k.secret),
    );
    p.write("migrations/001_u.sql", "CREATE TABLE u (y);");
    // With the identity, the encrypted pre-migration backup is decrypted into the copy.
    let doc = p.json(&["migrate", "production", "--yes"], 0);
    assert_eq!(doc["rehearsal"]["passed"], true, "{doc}");
    assert_eq!(doc["backup"]["encrypted"], true, "{doc}");
    assert!(
        doc["rehearsal"]["schema_changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["change"] == "table_added" && c["table"] == "u"),
        "{doc}"
    );
    // A pipeline that holds only the recipients: the configured rehearsal gives way, said so;
    // asked for with --rehearse, it cannot be made, and nothing is migrated.
    fs::remove_file(p.path("keys/backup.key")).unwrap();
    p.write("migrations/002_v.sql", "CREATE TABLE v (y);");
    let before = fs::read(p.path("db/prod.sqlite3")).unwrap();
    let doc = p.json(&["migrate", "production", "--yes", "--rehearse"], 1);
    assert!(
        doc["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("production was not touched"),
        "{doc}"
    );
    assert_eq!(fs::read(p.path("db/prod.sqlite3")).unwrap(), before);
    p.run(&["migrate", "production", "--yes"])
        .code(0)
        .stderr_has("not rehearsed: its backups are encrypted and no age identity is given");
    let tables: i64 = p
        .sqlite("db/prod.sqlite3")
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'v'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1);
}
