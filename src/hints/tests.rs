use super::*;

/// Each remedy in the words the engine used to write itself, byte for byte.
#[test]
fn remedies_read_as_before() {
    let id = "backup-20250124-140000".to_string();
    let cases = [
        (
            Remedy::PickAnother,
            "pick another backup (see `faber-db list`)".to_string(),
        ),
        (
            Remedy::TakeBackup { env: "dev".into() },
            "take one with `faber-db backup dev`, or name another with --from ID".to_string(),
        ),
        (
            Remedy::CheckOrPickAnother,
            "check it with `faber-db verify` or pick another backup".to_string(),
        ),
        (
            Remedy::RestoreKind { kind: "postgres".into() },
            "restore a backup taken from a postgres database (see `faber-db list`)".to_string(),
        ),
        (
            Remedy::ShowBackups,
            "`faber-db list` shows the backups".to_string(),
        ),
        (
            Remedy::VerifyFirst { id: id.clone() },
            format!("run `faber-db verify {id}` first"),
        ),
        (
            Remedy::Verify { id: id.clone() },
            format!("run `faber-db verify {id}`"),
        ),
        (
            Remedy::PushLater { id: id.clone() },
            format!("the local backup is registered and valid; copy it later with `faber-db push {id}`"),
        ),
        (
            Remedy::RetryPush,
            "retry with `faber-db push`; check the storage's health".to_string(),
        ),
        (
            Remedy::CheckStorage,
            "check the endpoint, the bucket and the AWS credentials; `faber-db push` retries uploads later".to_string(),
        ),
        (
            Remedy::DiskFull,
            "free some space on that filesystem; for the backup directory, `faber-db cleanup --expired` may help".to_string(),
        ),
        (
            Remedy::DumpDirFull,
            "free some space there; `faber-db cleanup --expired` may help".into(),
        ),
        (
            Remedy::MakeRoom { there: false },
            "free some space, or remove old backups with `faber-db cleanup --expired`".into(),
        ),
        (
            Remedy::MakeRoom { there: true },
            "free some space there, or remove old backups with `faber-db cleanup --expired`"
                .into(),
        ),
        (
            Remedy::RetryFromOffsite { id: id.clone() },
            format!(
                "the local copy failed its checksum; the off-site copy can be tried again with `faber-db restore … --from {id}`"
            ),
        ),
        (
            Remedy::RestoreAnotherBackup {
                marked_corrupt: true,
            },
            "it was marked corrupt; restore another backup (see `faber-db list`)".into(),
        ),
        (
            Remedy::FinishRestore {
                kept_in: "db__old".into(),
            },
            "restore again to finish; the replaced data is kept in db__old (`faber-db doctor` lists it)".into(),
        ),
        (
            Remedy::StopStrayMigration {
                holders: vec![(41, "rails".into()), (42, "ruby".into())],
            },
            "it is held by rails (pid 41), ruby (pid 42), left running by a faber-db migrate that was stopped: wait for it to finish, or stop it (kill 41 42) and check the database with `faber-db status`".into(),
        ),
        (
            Remedy::BackUpAheadOrMigrate {
                env: "prod".into(),
                within_minutes: 60,
            },
            "take it first, in the background: `faber-db backup prod --reason pre-migration --label pre-migration`; within 60 minutes, and while no migration runs in between, the hook counts it as the pre-migration backup. Or migrate with `faber-db migrate prod`, which backs up first".into(),
        ),
        (
            Remedy::BackUpAheadThenRetry { env: "prod".into() },
            "take it first, in the background: `faber-db backup prod --reason pre-migration --label pre-migration`; then run the migration again".into(),
        ),
        (
            Remedy::RollBackTo {
                env: "dev".into(),
                id: id.clone(),
            },
            format!(
                "`faber-db rollback dev --to {id}` restores {id}, the backup taken before it"
            ),
        ),
        (
            Remedy::RestoreOlder { env: "dev".into() },
            "no pre-migration backup was taken: check it, or restore an older backup (`faber-db list dev`)".into(),
        ),
        (
            Remedy::RepairRefusedEntry,
            "faber-db did not write this entry as it is; nothing was touched. `faber-db doctor` lists such entries, and `faber-db doctor --repair` rebuilds them from the backup's own manifest, or takes them out of the registry (their files are left alone)".into(),
        ),
    ];
    for (remedy, expected) in cases {
        assert_eq!(words(&remedy), expected);
    }
}

/// The remedies of the rollback and removal engines, in the words the commands wrote.
#[test]
fn rollback_and_removal_remedies_read_as_before() {
    let id = "backup-20250124-140000".to_string();
    let cases = [
        (
            Remedy::RestoreOtherEnvironment {
                env: "dev".into(),
                id: id.clone(),
            },
            format!(
                "a rollback returns an environment to one of its own backups; to copy another environment's data, use `faber-db restore dev --from {id}`"
            ),
        ),
        (
            Remedy::ListMigrations { env: "dev".into() },
            "see the migrations of each backup with `faber-db list dev`".into(),
        ),
        (
            Remedy::MigrateTakesBackup { env: "dev".into() },
            "`faber-db migrate dev` takes a pre-migration backup when backup_before_migrate is set".into(),
        ),
        (
            Remedy::RollBackAnyway {
                env: "dev".into(),
                id: id.clone(),
                since: chrono::DateTime::parse_from_rfc3339("2025-01-24T14:00:00Z")
                    .unwrap()
                    .with_timezone(&chrono::Utc),
            },
            format!(
                "to return to that backup anyway, losing what was written since 2025-01-24 14:00 UTC, name it: faber-db rollback dev --to {id}"
            ),
        ),
        (
            Remedy::CleanupLeftFiles,
            "they are no longer in the registry, and their tombstones remain: the next cleanup or delete tries again (`faber-db doctor` shows what is left)".into(),
        ),
        (
            Remedy::DeleteLeftFiles,
            "its tombstone remains: the next faber-db run tries again (`faber-db doctor` shows what is left)".into(),
        ),
    ];
    for (remedy, expected) in cases {
        assert_eq!(words(&remedy), expected);
    }
}

#[test]
fn the_restore_and_verify_remedies_read_as_they_did_in_the_engine() {
    let id = "backup-20250124-140000".to_string();
    let cases = [
        (
            Remedy::RestoreInPlaceToFinish {
                env: "dev".into(),
                id: id.clone(),
            },
            format!(
                "no safety backup was taken, so the database stays incomplete until a restore finishes: once the cause is fixed, `faber-db restore dev --from {id} --in-place`, or restore another backup the same way"
            ),
        ),
        (
            Remedy::RestoreSafetyInPlace {
                env: "dev".into(),
                safety: id.clone(),
            },
            format!(
                "the database is incomplete; restore it with `faber-db restore dev --from {id} --in-place --no-safety-backup`"
            ),
        ),
        (
            Remedy::UndoRestore {
                env: "dev".into(),
                safety: id.clone(),
            },
            format!(
                "the data was replaced; check it, and undo with `faber-db restore dev --from {id}`"
            ),
        ),
        (
            Remedy::BackUpReplacedByHand {
                kept_in: "db__old".into(),
            },
            "that data is kept in db__old: back it up by hand (or drop it once it is not needed); `faber-db doctor` lists it".into(),
        ),
        (
            Remedy::StaysLocal { id: id.clone() },
            format!("{id} stays local until `faber-db push` copies it off-site"),
        ),
        (
            Remedy::VerifyFully,
            "run `faber-db verify` without --checksum-only to check it again".into(),
        ),
        (
            Remedy::VerifyDeepAgain,
            "run `faber-db verify --deep` to compare them again".into(),
        ),
    ];
    for (remedy, expected) in cases {
        assert_eq!(words(&remedy), expected);
    }
}

/// The remedies of a migration the engine leaves to the command, in the words the command
/// wrote itself.
#[test]
fn migration_remedies_read_as_before() {
    let id = "backup-20250124-140000".to_string();
    let cases = [
        (
            Remedy::RollBackHalfMigrated {
                env: "dev".into(),
                id: id.clone(),
            },
            format!(
                "the database may be half-migrated; restore the pre-migration backup with `faber-db rollback dev --to {id}`"
            ),
        ),
        (
            Remedy::RestoreIfNeeded,
            "the database is as the migration left it; restore a backup with `faber-db restore` if needed".into(),
        ),
        (
            Remedy::VerifyOrRestoreAnother {
                id: id.clone(),
                env: "dev".into(),
            },
            format!(
                "check it with `faber-db verify {id}`, or restore another backup (`faber-db list dev`)"
            ),
        ),
    ];
    for (remedy, expected) in cases {
        assert_eq!(words(&remedy), expected);
    }
}

#[test]
fn an_errors_hints_are_its_lines_in_order() {
    let e = Error::config("x");
    assert_eq!(text(&e), None);
    let e = e
        .with_hint("first\nsecond")
        .add_hint(Remedy::ListBackups)
        .add_hint("");
    assert_eq!(
        text(&e).unwrap(),
        "first\nsecond\nlist the backups with `faber-db list`\n"
    );
}
