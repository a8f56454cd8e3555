//! The hints that name commands: the command layer's words for each [`Remedy`] an engine error
//! (or finding) carries — the engine picks what the user can do; only this layer knows the
//! commands' names. `ui` prints an error's hints after `hint:`, and `--json` puts them in the
//! error document.
//!
//! Hints that repeat this run's own command line (with its `--config` and `--yes`) are built
//! here too, from what the engine's refusals say: [`restore`] and [`migrate`].

pub mod migrate;
pub mod restore;
pub mod rollback;

use crate::error::{Error, Hint, Remedy};
use crate::session::Session;
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
    if let Remedy::UndoTableRestore {
        env,
        safety,
        tables,
    } = remedy
    {
        return undo_tables(env, safety, tables);
    }
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

/// `faber-db ARGS` as the user would run it again, with this run's `--config` and `--yes`: the
/// command a hint names. Each argument is quoted for a POSIX shell where it needs it.
pub fn command_line(session: &Session, args: &[&str]) -> String {
    let mut words = vec!["faber-db".to_string()];
    if let Some(config) = &session.ctx.config_path {
        words.push("--config".into());
        words.push(shell_word(&config.to_string_lossy()));
    }
    if session.ctx.yes {
        words.push("--yes".into());
    }
    words.extend(args.iter().map(|a| shell_word(a)));
    words.join(" ")
}

/// What undoes a table restore: those tables put back from the safety backup.
fn undo_tables(env: &str, safety: &str, tables: &[String]) -> String {
    let mut args = vec!["restore", env, "--from", safety];
    for t in tables {
        args.extend(["--table", t.as_str()]);
    }
    format!(
        "those tables may be left dropped or half loaded; {safety} holds them as they were: `{}`",
        args_line(&args)
    )
}

/// `faber-db ARGS`, each argument quoted for a POSIX shell where it needs it.
fn args_line(args: &[&str]) -> String {
    std::iter::once("faber-db".to_string())
        .chain(args.iter().map(|a| shell_word(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `word` as a POSIX shell reads it back: as it is when that is safe, else in single quotes.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests;
