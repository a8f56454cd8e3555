//! Backups that fail: what is said, and that nothing is left behind or registered.

use super::*;

#[test]
fn a_missing_database_file_fails_before_anything_is_written() {
    let p = Project::new();
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let env = session.env("production").unwrap();
    let err = take(&session, env, &request(env)).unwrap_err();
    assert_eq!(err.exit_code(), 3, "{}", err.one_line());
    assert!(
        err.one_line().contains("does not exist"),
        "{}",
        err.one_line()
    );
    assert!(!p.root().join("db/prod.sqlite3").exists(), "not created");
    assert!(session.store.load().unwrap().backups.is_empty());
    assert!(!p.backups().join("production").exists(), "{:?}", p.files());
    assert_eq!(p.history().len(), 1);
    assert!(p.history()[0].starts_with("\"backup\" false null "));
    // Nothing was reported as done.
    assert!(
        p.seen().iter().all(|s| !s.starts_with("ok: ")),
        "{:?}",
        p.seen()
    );
}

#[test]
fn a_file_where_the_backup_directory_should_be_fails_and_registers_nothing() {
    let p = Project::new();
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let env = session.env("dev").unwrap();
    fs::create_dir_all(p.backups()).unwrap();
    fs::write(p.backups().join("dev"), b"planted").unwrap();
    let err = take(&session, env, &request(env)).unwrap_err();
    assert!(
        err.one_line().contains("cannot create directory"),
        "{}",
        err.one_line()
    );
    assert_eq!(fs::read(p.backups().join("dev")).unwrap(), b"planted");
    assert!(
        !p.registry_text().contains("backup-"),
        "{}",
        p.registry_text()
    );
}

/// The SQLite database, whose dump streams the start of an image and then fails, as a dump tool
/// killed midway would; it notes the files it saw in its work directory while dumping.
struct DiesMidway {
    seen: Arc<Mutex<Vec<String>>>,
}

impl Twist for DiesMidway {
    fn dump(
        &self,
        _db: &dyn Provider,
        _options: &crate::provider::DumpOptions<'_>,
        work_dir: &Path,
        to: DumpTo<'_, '_>,
    ) -> Result<Dumped> {
        if let DumpTo::Stream(sink) = to {
            let _ = sink(&mut &b"SQLite format 3\0 and then nothing"[..]);
        }
        let mut seen = self.seen.lock().unwrap();
        for entry in fs::read_dir(work_dir).unwrap().flatten() {
            seen.push(entry.file_name().to_string_lossy().into_owned());
        }
        Err(Error::tool("the dump tool died midway"))
    }
}

#[test]
fn a_failed_dump_removes_its_partial_file_and_leaves_the_registry_as_it_was() {
    let p = Project::new();
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let env = session.env("dev").unwrap();
    take(&session, env, &request(env)).unwrap();
    let registry = p.registry_text();
    let files = p.written();

    let later = p.ctx(at() + Duration::hours(1));
    let session = later.session().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let db = Box::new(Twisted {
        db: session.provider(env).unwrap().1,
        twist: DiesMidway { seen: seen.clone() },
    });
    let req = request(env);
    let prepared = prepare::prepare_from(&session, env, &req, db, "the test database".into());
    let err = write(&session, env, &req, prepared.unwrap()).unwrap_err();
    assert_eq!(err.one_line(), "the dump tool died midway");

    // The dump was written into its reserved `.partial` file, which is gone with the failure.
    let partial = "backup-20260301-112030.sqlite3.gz.partial".to_string();
    assert!(seen.lock().unwrap().contains(&partial), "{seen:?}");
    assert_eq!(p.registry_text(), registry);
    assert_eq!(p.written(), files, "nothing left behind");
    let history = p.history();
    assert_eq!(
        history.last().unwrap(),
        "\"backup\" false null \"the dump tool died midway\""
    );
}

#[test]
fn formats_and_compressions_are_resolved_or_refused() {
    let p = Project::new();
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let env = session.env("dev").unwrap();
    let (_, db) = session.provider(env).unwrap();

    assert_eq!(
        resolve_format(None, env, db.as_ref()).unwrap(),
        Format::Sqlite
    );
    assert_eq!(
        resolve_format(Some(Format::Sqlite), env, db.as_ref()).unwrap(),
        Format::Sqlite
    );
    for asked in [Format::Sql, Format::Custom, Format::Directory] {
        let err = resolve_format(Some(asked), env, db.as_ref()).unwrap_err();
        assert_eq!(err.kind(), Kind::Config);
        assert_eq!(
            err.one_line(),
            "SQLite backups are images of the database file, in no other format"
        );
        assert!(
            err.hints()
                .iter()
                .filter_map(Hint::as_text)
                .any(|h| h.contains("leave it out for SQLite"))
        );
    }

    assert_eq!(
        resolve_compression(None, Format::Sqlite, env),
        Compression::Gzip
    );
    assert_eq!(
        resolve_compression(None, Format::Sql, env),
        Compression::Gzip
    );
    assert_eq!(
        resolve_compression(None, Format::Custom, env),
        Compression::Zstd
    );
    assert_eq!(
        resolve_compression(None, Format::Directory, env),
        Compression::Gzip
    );
    assert_eq!(
        resolve_compression(Some(Compression::None), Format::Custom, env),
        Compression::None
    );

    // A backup asked for in a format SQLite has not fails before it connects.
    let err = take(
        &session,
        env,
        &Request {
            format: Some(Format::Custom),
            ..request(env)
        },
    )
    .unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert!(p.seen().is_empty(), "{:?}", p.seen());
    assert!(p.written().is_empty(), "{:?}", p.files());
    // The failure is in the audit log.
    assert_eq!(
        p.history(),
        [format!("\"backup\" false null \"{}\"", err.one_line())]
    );
}

#[test]
fn a_backup_that_would_not_fit_is_refused_before_anything_is_written() {
    let p = Project::new();
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let env = session.env("dev").unwrap();
    let req = request(env);

    // The plan of a dry run says how much is needed and how much is free.
    let plan = preview(&session, env, &req).unwrap();
    assert!(plan.enough_space);
    assert!(plan.space_shortfall().is_none());
    assert!(plan.space_needed_bytes > plan.database_size_bytes);
    assert_eq!(plan.destination, session.store.dir().join("dev"));
    assert_eq!(
        plan.steps,
        [
            "validate connection",
            "check tools",
            "estimate",
            "dump",
            "compress",
            "checksum",
            "verify",
            "register"
        ]
    );

    // With less room than that, the prepared backup is refused (exit 2).
    let mut prepared = prepare::prepare(&session, env, &req).unwrap();
    prepared.preview.free_bytes = prepared.preview.space_needed_bytes - 1;
    prepared.preview.enough_space = false;
    let err = prepare::fits(prepared).err().unwrap();
    assert_eq!(err.kind(), Kind::DiskSpace);
    assert_eq!(err.exit_code(), 2);
    assert!(
        err.one_line().starts_with("not enough free space in "),
        "{}",
        err.one_line()
    );
    assert!(err.one_line().ends_with(" needed"), "{}", err.one_line());
    assert_eq!(
        err.hints(),
        [Hint::Remedy(Remedy::MakeRoom { there: false })]
    );
    assert!(p.files().is_empty(), "{:?}", p.files());
}

#[test]
fn an_encrypted_environment_without_keys_backs_nothing_up() {
    let p = Project::with_config(
        &CONFIG.replace("retention = \"30d\"", "retention = \"30d\"\nencrypt = true"),
    );
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let env = session.env("dev").unwrap();
    let err = take(&session, env, &request(env)).unwrap_err();
    assert_eq!(err.kind(), Kind::Config);
    assert!(
        err.one_line().contains("there is no [encryption] section"),
        "{}",
        err.one_line()
    );
    assert!(p.written().is_empty(), "{:?}", p.files());
}
