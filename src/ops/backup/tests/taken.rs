//! Backups that work: what is registered, written and reported.

use super::*;

#[test]
fn a_backup_is_registered_with_its_file_checksum_and_contents() {
    let p = Project::new();
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let env = session.env("dev").unwrap();
    let record = take(&session, env, &request(env)).unwrap();

    assert_eq!(record.id, "backup-20260301-102030");
    assert_eq!(record.environment, "dev");
    assert_eq!(record.database, "dev.sqlite3");
    assert_eq!(record.provider, ProviderKind::Sqlite);
    assert_eq!(record.format, Format::Sqlite);
    assert_eq!(record.compression, Compression::Gzip);
    assert!(record.compressed && !record.encrypted);
    assert_eq!(record.timestamp, at());
    assert_eq!(record.reason.as_deref(), Some("test"));
    assert_eq!(record.label, None);
    assert_eq!(record.retention_days, Some(30));
    assert_eq!(record.expires_at, Some(at() + Duration::days(30)));
    assert_eq!(record.file, format!("dev/{}.sqlite3.gz", record.id));
    assert_eq!(record.tables["notes"].rows, 3);
    let verification = record.verification.as_ref().unwrap();
    assert_eq!(verification.integrity_check, "quick");
    assert_eq!(verification.verified_at, at());

    // The file on disk is what the record says, and the registry and the manifest hold it.
    let data = p.backups().join(&record.file);
    assert_eq!(hashed(&data), (record.sha256.clone(), record.size_bytes));
    assert!(record.raw_size_bytes >= fs::metadata(p.root().join("db/dev.sqlite3")).unwrap().len());
    let registry = session.store.load().unwrap();
    assert_eq!(registry.backups.len(), 1);
    assert_eq!(registry.backups[0].id, record.id);
    assert_eq!(registry.backups[0].sha256, record.sha256);
    let manifest = crate::registry::manifest_path_for(&data, &record.id);
    assert!(manifest.is_file(), "{}", manifest.display());
    assert_eq!(
        p.history(),
        [format!("\"backup\" true \"{}\" \"test\"", record.id)]
    );
    assert!(
        p.files().iter().all(|f| !f.ends_with(".partial")),
        "{:?}",
        p.files()
    );
}

#[test]
fn the_steps_are_reported_as_events_in_order() {
    let p = Project::new();
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let env = session.env("dev").unwrap();
    let record = take(
        &session,
        env,
        &Request {
            jobs: Some(2),
            ..request(env)
        },
    )
    .unwrap();
    let seen = p.seen();
    let db = p.root().join("db/dev.sqlite3");
    let connected = format!("ok: Connected to sqlite:{} (", db.display());
    assert!(seen[0].starts_with(&connected), "{seen:#?}");
    let kinds: Vec<&str> = seen.iter().map(|s| s.split(':').next().unwrap()).collect();
    assert_eq!(
        kinds,
        ["ok", "warn", "detail", "ok", "ok", "detail", "ok"],
        "{seen:#?}"
    );
    assert_eq!(
        seen[1],
        "warn: --jobs applies to directory dumps only; ignored"
    );
    assert!(seen[2].starts_with("detail: database size "), "{}", seen[2]);
    assert!(seen[2].ends_with(" needed)"), "{}", seen[2]);
    assert!(
        seen[3].starts_with("ok: Dumped dev.sqlite3 ("),
        "{}",
        seen[3]
    );
    assert!(seen[3].ends_with(" gzip)"), "{}", seen[3]);
    assert_eq!(
        seen[4],
        format!(
            "ok: Verified SHA-256 {}…, integrity ok (quick check)",
            &record.sha256[..12]
        )
    );
    assert!(seen[5].starts_with("detail: registered in "), "{}", seen[5]);
    assert_eq!(seen[6], format!("ok: Registered {}", record.id));
}

#[test]
fn backups_at_the_same_instant_get_ids_of_their_own() {
    let p = Project::new();
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let env = session.env("dev").unwrap();
    let labelled = Request {
        label: Some("nightly".into()),
        ..request(env)
    };
    let first = take(&session, env, &labelled).unwrap();
    let second = take(&session, env, &labelled).unwrap();
    assert_eq!(first.id, "backup-20260301-102030-nightly");
    assert_eq!(second.id, "backup-20260301-102030-nightly-2");

    // A file with an ID, even another environment's and unregistered, makes the ID taken.
    let prod = p.backups().join("production");
    fs::create_dir_all(&prod).unwrap();
    fs::write(prod.join("backup-20260301-102030-nightly-3.sql.gz"), b"x").unwrap();
    let third = take(&session, env, &labelled).unwrap();
    assert_eq!(third.id, "backup-20260301-102030-nightly-4");

    let ids: Vec<String> = session
        .store
        .load()
        .unwrap()
        .backups
        .into_iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(ids, [first.id, second.id, third.id]);
}

#[test]
fn a_backup_asked_for_in_another_compression_is_written_so() {
    let p = Project::new();
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let env = session.env("dev").unwrap();
    let record = take(
        &session,
        env,
        &Request {
            compression: Some(Compression::Zstd),
            ..request(env)
        },
    )
    .unwrap();
    assert_eq!(record.compression, Compression::Zstd);
    assert_eq!(record.file, format!("dev/{}.sqlite3.zst", record.id));
    assert_eq!(hashed(&p.backups().join(&record.file)).0, record.sha256);
}

#[test]
fn an_encrypted_backup_is_stored_encrypted_and_checked() {
    let key = age::x25519::Identity::generate();
    let config = format!(
        "[encryption]\nage_recipients = [\"{}\"]\n{}",
        key.to_public(),
        CONFIG.replace("retention = \"30d\"", "retention = \"30d\"\nencrypt = true")
    );
    let p = Project::with_config(&config);
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let env = session.env("dev").unwrap();
    let record = take(&session, env, &request(env)).unwrap();
    assert!(record.encrypted);
    assert_eq!(record.file, format!("dev/{}.sqlite3.gz.age", record.id));
    let plaintext = record.plaintext_sha256.as_deref().unwrap();
    assert_ne!(plaintext, record.sha256);
    let data = p.backups().join(&record.file);
    assert_eq!(hashed(&data).0, record.sha256);
    let head = fs::read(&data).unwrap();
    assert!(head.starts_with(b"age-encryption.org/v1"), "age file");
}

#[test]
fn a_backup_written_elsewhere_is_recorded_there_and_claims_nothing_after() {
    let p = Project::new();
    let elsewhere = tempfile::tempdir().unwrap();
    let out = elsewhere.path().join("out");
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let env = session.env("dev").unwrap();
    let record = take(
        &session,
        env,
        &Request {
            output_dir: Some(out.clone()),
            ..request(env)
        },
    )
    .unwrap();
    let out = out.canonicalize().unwrap();
    let data = out.join(format!("{}.sqlite3.gz", record.id));
    assert_eq!(record.file, data.to_string_lossy());
    assert_eq!(hashed(&data).0, record.sha256);
    assert!(out.join(format!("{}.manifest.json", record.id)).is_file());
    // The claim in the environment's own directory is gone with the run.
    assert!(
        p.files().iter().all(|f| !f.contains(&record.id)),
        "{:?}",
        p.files()
    );
    assert_eq!(session.store.load().unwrap().backups[0].file, record.file);
}

#[test]
fn automatic_backups_are_labelled_by_their_reason_and_checking_one_writes_nothing() {
    let p = Project::new();
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let env = session.env("dev").unwrap();

    check_automatic(&session, env, "pre-restore").unwrap();
    assert!(p.files().is_empty(), "{:?}", p.files());

    let record = take_automatic(&session, env, "pre-restore").unwrap();
    assert_eq!(record.id, "backup-20260301-102030-pre-restore");
    assert_eq!(record.label.as_deref(), Some("pre-restore"));
    assert_eq!(record.reason.as_deref(), Some("pre-restore"));
    assert_eq!(record.retention_days, Some(30));

    // The estimate of the next one learns from this one.
    let (_, db) = session.provider(env).unwrap();
    let estimate = estimate(&session, env, db.as_ref()).unwrap();
    assert_eq!((estimate.basis, estimate.backups), ("history", 1));
}

/// The SQLite database, whose dump first runs `ddl` on it (a migration meanwhile), and whose
/// schema cannot be read when `unreadable`.
struct SchemaTwist {
    live: std::path::PathBuf,
    ddl: Option<&'static str>,
    unreadable: bool,
}

impl Twist for SchemaTwist {
    fn schema(&self, db: &dyn Provider) -> Result<crate::schema::Schema> {
        if self.unreadable {
            return Err(crate::error::Error::tool(
                "permission denied for pg_attrdef",
            ));
        }
        db.schema()
    }

    fn dump(
        &self,
        db: &dyn Provider,
        options: &crate::provider::DumpOptions<'_>,
        work_dir: &Path,
        to: DumpTo<'_, '_>,
    ) -> Result<Dumped> {
        if let Some(ddl) = self.ddl {
            rusqlite::Connection::open(&self.live)
                .unwrap()
                .execute_batch(ddl)
                .unwrap();
        }
        db.dump(options, work_dir, to)
    }
}

/// The schema the manifest of a backup of `dev` taken through `twist` records.
fn schema_recorded_through(p: &Project, twist: SchemaTwist) -> Option<crate::schema::Schema> {
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let env = session.env("dev").unwrap();
    let db = Box::new(Twisted {
        db: session.provider(env).unwrap().1,
        twist,
    });
    let req = request(env);
    let prepared = prepare::prepare_from(&session, env, &req, db, "the test database".into());
    let record = write(&session, env, &req, prepared.unwrap()).unwrap();
    assert_eq!(session.store.load().unwrap().backups.len(), 1);
    session.store.recorded_schema(&record)
}

#[test]
fn a_schema_that_changed_during_the_backup_or_cannot_be_read_is_not_recorded_and_the_backup_stands()
{
    for (ddl, unreadable, said) in [
        (
            Some("ALTER TABLE notes ADD COLUMN during TEXT"),
            false,
            "the schema changed while the backup was taken",
        ),
        (None, true, "the schema is not recorded: permission denied"),
    ] {
        let p = Project::new();
        let recorded = schema_recorded_through(
            &p,
            SchemaTwist {
                live: p.root().join("db/dev.sqlite3"),
                ddl,
                unreadable,
            },
        );
        assert_eq!(recorded, None, "{said}");
        assert!(p.seen().iter().any(|s| s.contains(said)), "{:?}", p.seen());
    }

    // And without either, it is.
    let p = Project::new();
    let recorded = schema_recorded_through(
        &p,
        SchemaTwist {
            live: p.root().join("db/dev.sqlite3"),
            ddl: None,
            unreadable: false,
        },
    );
    let schema = recorded.unwrap();
    assert!(schema.tables["notes"].column("during").is_none());
}

/// Makes `notes`' index stale behind SQLite's back: its entries were built for another
/// expression. `PRAGMA quick_check` does not match indexes against tables; the full
/// `integrity_check` does.
fn stale_index(p: &Project) {
    let c = rusqlite::Connection::open(p.root().join("db/dev.sqlite3")).unwrap();
    c.execute_batch("CREATE INDEX notes_body ON notes(body);")
        .unwrap();
    let version: i64 = c
        .query_row("PRAGMA schema_version", [], |r| r.get(0))
        .unwrap();
    c.execute_batch(&format!(
        "PRAGMA writable_schema = ON;
         UPDATE sqlite_master SET sql = 'CREATE INDEX notes_body ON notes(body || ''x'')'
          WHERE name = 'notes_body';
         PRAGMA schema_version = {};",
        version + 1
    ))
    .unwrap();
}

/// A backup of `dev` in a new project (with a stale index when `stale`), taken by `how`; and
/// whether the registry is still empty afterwards.
fn backup_of_dev(
    stale: bool,
    how: impl FnOnce(&crate::session::Session, &Environment) -> crate::error::Result<BackupRecord>,
) -> (crate::error::Result<BackupRecord>, bool) {
    let p = Project::new();
    if stale {
        stale_index(&p);
    }
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let env = session.env("dev").unwrap();
    let taken = how(&session, env);
    let empty = session.store.load().unwrap().backups.is_empty();
    (taken, empty)
}

/// A backup as `faber-db backup --full-check` asks for one.
fn full(env: &Environment) -> Request {
    Request {
        full_check: true,
        ..request(env)
    }
}

#[test]
fn a_snapshot_gets_the_quick_check_unless_the_full_one_is_asked_for() {
    // The quick check passes the stale index, and the backup records "quick".
    let (taken, _) = backup_of_dev(true, |s, env| take(s, env, &request(env)));
    assert_eq!(
        taken.unwrap().verification.unwrap().integrity_check,
        "quick"
    );

    // --full-check (or sqlite_full_check) runs the full check, which refuses it.
    let (taken, empty) = backup_of_dev(true, |s, env| take(s, env, &full(env)));
    let err = taken.unwrap_err();
    assert_eq!(err.kind(), crate::error::Kind::Verification);
    assert!(
        err.message()
            .contains("failed SQLite's integrity check: row 1 missing from index notes_body"),
        "{err}"
    );
    assert!(empty);

    // A sound database gets "ok" from the full check.
    let (taken, _) = backup_of_dev(false, |s, env| take(s, env, &full(env)));
    assert_eq!(taken.unwrap().verification.unwrap().integrity_check, "ok");
}

#[test]
fn a_backup_faber_db_takes_itself_gets_the_full_check_a_restore_will_make() {
    // A pre-migration backup of a database with a stale index would pass the quick check and
    // then be refused by the rollback that needs it: it is refused now, before the migration.
    let (taken, empty) = backup_of_dev(true, |s, env| take_automatic(s, env, "pre-migration"));
    let err = taken.unwrap_err();
    assert_eq!(err.kind(), crate::error::Kind::Verification);
    assert!(err.message().contains("integrity check"), "{err}");
    assert!(empty);
    // A sound one is recorded as fully checked.
    let (taken, _) = backup_of_dev(false, |s, env| take_automatic(s, env, "pre-migration"));
    assert_eq!(taken.unwrap().verification.unwrap().integrity_check, "ok");
}
