//! The hints that name commands: the command layer's words for each [`Remedy`] an engine error
//! (or finding) carries — the engine picks what the user can do; only this layer knows the
//! commands' names. `ui` prints an error's hints after `hint:`, and `--json` puts them in the
//! error document.

use crate::error::{Error, Hint, Remedy};
use crate::unfinished::{self, Interrupted};

/// An error's advice as printed: its hints in order, one or more lines each; `None` without any.
pub fn text(err: &Error) -> Option<String> {
    if err.hints().is_empty() {
        return None;
    }
    let lines: Vec<String> = err.hints().iter().map(hint).collect();
    Some(lines.join("\n"))
}

/// One hint in words.
pub fn hint(hint: &Hint) -> String {
    match hint {
        Hint::Text(text) => text.clone(),
        Hint::Remedy(remedy) => words(remedy),
    }
}

/// A remedy in words.
pub fn words(remedy: &Remedy) -> String {
    with_values(remedy).unwrap_or_else(|| fixed(remedy).to_string())
}

/// The words of a remedy that carries values (an ID, an environment, a place); `None` for one
/// in fixed words.
fn with_values(remedy: &Remedy) -> Option<String> {
    Some(match remedy {
        Remedy::MakeRoom { there } => {
            format!(
                "free some space{}, or remove old backups with `faber-db cleanup --expired`",
                if *there { " there" } else { "" }
            )
        }
        Remedy::RetryFromOffsite { id } => {
            format!(
                "the local copy failed its checksum; the off-site copy can be tried again with \
                 `faber-db restore … --from {id}`"
            )
        }
        Remedy::RestoreInPlaceToFinish { env, id } => format!(
            "no safety backup was taken, so the database stays incomplete until a restore \
             finishes: once the cause is fixed, `faber-db restore {env} --from {id} --in-place`, \
             or restore another backup the same way"
        ),
        Remedy::RestoreSafetyInPlace { env, safety } => format!(
            "the database is incomplete; restore it with `faber-db restore {env} --from {safety} --in-place --no-safety-backup`"
        ),
        Remedy::UndoRestore { env, safety } => format!(
            "the data was replaced; check it, and undo with `faber-db restore {env} --from {safety}`"
        ),
        Remedy::BackUpReplacedByHand { kept_in } => format!(
            "that data is kept in {kept_in}: back it up by hand (or drop it once it is not needed); \
             `faber-db doctor` lists it"
        ),
        Remedy::StaysLocal { id } => {
            format!("{id} stays local until `faber-db push` copies it off-site")
        }
        Remedy::FinishRestore { kept_in } => {
            format!(
                "restore again to finish; the replaced data is kept in {kept_in} (`faber-db doctor` lists it)"
            )
        }
        Remedy::RollBackTo { env, id } => {
            format!("`faber-db rollback {env} --to {id}` restores {id}, the backup taken before it")
        }
        Remedy::RestoreOlder { env } => {
            format!(
                "no pre-migration backup was taken: check it, or restore an older backup (`faber-db list {env}`)"
            )
        }
        Remedy::StopStrayMigration { holders } => {
            let named: Vec<String> = holders
                .iter()
                .map(|(pid, name)| format!("{name} (pid {pid})"))
                .collect();
            let pids: Vec<String> = holders.iter().map(|(pid, _)| pid.to_string()).collect();
            format!(
                "it is held by {}, left running by a faber-db migrate that was stopped: wait for it to finish, or stop it (kill {}) and check the database with `faber-db status`",
                named.join(", "),
                pids.join(" ")
            )
        }
        Remedy::BackUpAheadOrMigrate {
            env,
            within_minutes,
        } => {
            format!(
                "take it first, in the background: `faber-db backup {env} --reason pre-migration --label pre-migration`; \
                 within {within_minutes} minutes, and while no migration runs in between, the hook counts it as the \
                 pre-migration backup. Or migrate with `faber-db migrate {env}`, which backs up first"
            )
        }
        Remedy::BackUpAheadThenRetry { env } => {
            format!(
                "take it first, in the background: `faber-db backup {env} --reason pre-migration --label pre-migration`; then run the migration again"
            )
        }
        Remedy::RollBackHalfMigrated { env, id } => {
            format!(
                "the database may be half-migrated; restore the pre-migration backup with `faber-db rollback {env} --to {id}`"
            )
        }
        Remedy::VerifyOrRestoreAnother { id, env } => {
            format!(
                "check it with `faber-db verify {id}`, or restore another backup (`faber-db list {env}`)"
            )
        }
        Remedy::VerifyAgain { id } => format!("`faber-db verify {id}` checks it again"),
        Remedy::VerifyDamage { id } => {
            format!("`faber-db verify {id}` tells whether it is damaged")
        }
        Remedy::TakeBackup { env } => {
            format!("take one with `faber-db backup {env}`, or name another with --from ID")
        }
        Remedy::RestoreKind { kind } => {
            format!("restore a backup taken from a {kind} database (see `faber-db list`)")
        }
        Remedy::VerifyFirst { id } => format!("run `faber-db verify {id}` first"),
        Remedy::Verify { id } => format!("run `faber-db verify {id}`"),
        Remedy::PushLater { id } => {
            format!(
                "the local backup is registered and valid; copy it later with `faber-db push {id}`"
            )
        }
        Remedy::RestoreOtherEnvironment { env, id } => {
            format!(
                "a rollback returns an environment to one of its own backups; to copy another environment's data, use `faber-db restore {env} --from {id}`"
            )
        }
        Remedy::ListMigrations { env } => {
            format!("see the migrations of each backup with `faber-db list {env}`")
        }
        Remedy::MigrateTakesBackup { env } => {
            format!(
                "`faber-db migrate {env}` takes a pre-migration backup when backup_before_migrate is set"
            )
        }
        Remedy::RollBackAnyway { env, id, since } => {
            format!(
                "to return to that backup anyway, losing what was written since {}, name it: faber-db rollback {env} --to {id}",
                since.format("%Y-%m-%d %H:%M UTC")
            )
        }
        _ => return None,
    })
}

/// The words of a remedy that carries no value.
fn fixed(remedy: &Remedy) -> &'static str {
    match remedy {
        Remedy::DiskFull => {
            "free some space on that filesystem; for the backup directory, `faber-db cleanup --expired` may help"
        }
        Remedy::DumpDirFull => "free some space there; `faber-db cleanup --expired` may help",
        Remedy::PickAnotherBackup => {
            "pick another backup (see `faber-db list`), or check the backup directory"
        }
        Remedy::RestoreAnotherBackup { marked_corrupt } => {
            if *marked_corrupt {
                "it was marked corrupt; restore another backup (see `faber-db list`)"
            } else {
                "restore another backup (see `faber-db list`)"
            }
        }
        Remedy::ListBackups => "list the backups with `faber-db list`",
        Remedy::NameBackup => "name a backup file, or a backup ID (see `faber-db list`)",
        Remedy::BackupIdForm => {
            "backup IDs look like backup-20250124-140000 or backup-20250124-140000-pre-v2; see `faber-db list`"
        }
        Remedy::VerifyByIdDeep => {
            "verify it without --deep, or register it and run `faber-db verify ID --deep`"
        }
        Remedy::RepairEntry => {
            "the entry was changed by hand; rebuild it with `faber-db doctor --repair`"
        }
        Remedy::RepairRefusedEntry => {
            "faber-db did not write this entry as it is; nothing was touched. `faber-db doctor` lists \
             such entries, and `faber-db doctor --repair` rebuilds them from the backup's own manifest, \
             or takes them out of the registry (their files are left alone)"
        }
        Remedy::CheckRegistry => {
            "the registry could not be put back either; run `faber-db doctor` to check it"
        }
        Remedy::DefinitionsKept => {
            "their definitions are kept beside the database's record; `faber-db doctor` says where. Restore again to finish the restore"
        }
        Remedy::VerifyFully => "run `faber-db verify` without --checksum-only to check it again",
        Remedy::VerifyDeepAgain => "run `faber-db verify --deep` to compare them again",
        Remedy::ReplacedDataKept => {
            "the restore is in place; the data it replaced is kept (`faber-db doctor` says where)"
        }
        Remedy::DropScratch => {
            "the next restore or verify --deep on that server, or `faber-db doctor --repair`, drops it"
        }
        Remedy::CheckConfigPath => {
            "check the --config path (relative paths start at the project root), or run `faber-db init`"
        }
        Remedy::CreateConfig => "run `faber-db init` to create one, or pass --root / --config",
        Remedy::StartOver => {
            "add an [environments.dev] table, or run `faber-db init --force` to start over"
        }
        Remedy::PickAnother => "pick another backup (see `faber-db list`)",
        Remedy::CheckOrPickAnother => "check it with `faber-db verify` or pick another backup",
        Remedy::ShowBackups => "`faber-db list` shows the backups",
        Remedy::RetryPush => "retry with `faber-db push`; check the storage's health",
        Remedy::CheckStorage => {
            "check the endpoint, the bucket and the AWS credentials; \
             `faber-db push` retries uploads later"
        }
        Remedy::RestoreIfNeeded => {
            "the database is as the migration left it; restore a backup with `faber-db restore` if needed"
        }
        Remedy::RestoreInto => {
            "check the environment's URL, or restore a backup into it with `faber-db restore`"
        }
        Remedy::CleanupLeftFiles => {
            "they are no longer in the registry, and their tombstones remain: the next cleanup \
             or delete tries again (`faber-db doctor` shows what is left)"
        }
        Remedy::DeleteLeftFiles => {
            "its tombstone remains: the next faber-db run tries again (`faber-db doctor` shows \
             what is left)"
        }
        _ => unreachable!("{remedy:?} is worded with its values"),
    }
}

/// What `status` and the next command on the environment say about an unfinished migrate: what
/// happened, and what to do.
pub fn unfinished_migrate(env: &str, i: &Interrupted) -> String {
    format!(
        "{}; {}",
        unfinished::summary(env, i),
        words(&unfinished::remedy(env, i))
    )
}

#[cfg(test)]
mod tests {
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
}
