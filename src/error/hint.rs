//! What the user can do about a failure. Advice that names no command is words; advice that
//! names one is a [`Remedy`], a typed value the engine picks and the command layer words (in its
//! `hints` module): the engine does not know the command names.

/// One piece of advice on an error: a `hint:` line (several for words holding newlines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// Advice in words, naming no command.
    Text(String),
    /// Advice that names a command.
    Remedy(Remedy),
}

impl Hint {
    /// The words, when the hint is words.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Hint::Text(text) => Some(text),
            Hint::Remedy(_) => None,
        }
    }
}

impl From<&str> for Hint {
    fn from(text: &str) -> Hint {
        Hint::Text(text.to_string())
    }
}

impl From<String> for Hint {
    fn from(text: String) -> Hint {
        Hint::Text(text)
    }
}

impl From<Remedy> for Hint {
    fn from(remedy: Remedy) -> Hint {
        Hint::Remedy(remedy)
    }
}

/// What the user can do, by way of a command. Each is one piece of advice, worded by the command
/// layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remedy {
    // Space.
    /// A write failed on a full filesystem: free space; expired backups may go.
    DiskFull,
    /// pg_dump filled the backup directory: free space there; expired backups may go.
    DumpDirFull,
    /// Not enough room for a backup or a fetch: free some (`there`: at the place just named), or
    /// remove old backups.
    MakeRoom { there: bool },

    // Picking a backup.
    /// A backup's data cannot be opened: pick another, or look at the backup directory.
    PickAnotherBackup,
    /// Restore another backup than this damaged one (`marked_corrupt`: it was marked so).
    RestoreAnotherBackup { marked_corrupt: bool },
    /// The local copy of backup `id` was bad and its off-site copy could not be fetched for a
    /// reason that may pass: the fetch can be tried again.
    RetryFromOffsite { id: String },
    /// No backup has that ID: list them.
    ListBackups,
    /// Neither a backup file nor a backup ID was named.
    NameBackup,
    /// What a backup ID looks like, and where the IDs are.
    BackupIdForm,
    /// A deep check of a file given by path: without --deep, or by ID once registered.
    VerifyByIdDeep,

    // The registry and the backup directory.
    /// A registry entry was edited by hand: rebuild it.
    RepairEntry,
    /// A registry entry names a file faber-db did not write: nothing was touched; the doctor
    /// lists such entries and a repair rebuilds or drops them.
    RepairRefusedEntry,
    /// A publish could not take the registry back: check it.
    CheckRegistry,

    // Choosing what to restore.
    /// The backup chosen was removed meanwhile: pick another.
    PickAnother,
    /// Environment `env` has no valid backup: take one, or name another.
    TakeBackup { env: String },
    /// The backup chosen is marked bad: check it, or pick another.
    CheckOrPickAnother,
    /// The backup is of another kind of database (`kind`): restore one of that kind.
    RestoreKind { kind: String },

    // Rolling back.
    /// A rollback named a backup of another environment: a restore copies it (`id` into `env`).
    RestoreOtherEnvironment { env: String, id: String },
    /// No valid backup of `env` ends at the migration named: the list shows each one's.
    ListMigrations { env: String },
    /// `env` has no backup to roll back to: a migrate takes one before it when set to.
    MigrateTakesBackup { env: String },
    /// The default rollback would undo no migration: name backup `id` (taken `since`) to return
    /// to it all the same.
    RollBackAnyway {
        env: String,
        id: String,
        since: chrono::DateTime<chrono::Utc>,
    },

    // Removing backups.
    /// Backups a cleanup removed left files behind: their tombstones stay for the next run.
    CleanupLeftFiles,
    /// A deleted backup left files behind: its tombstone stays for the next run.
    DeleteLeftFiles,

    // Off-site copies.
    /// A backup named by ID that is not in the registry: the list shows them.
    ShowBackups,
    /// Backup `id` is not known to be sound: verify it before copying it off-site.
    VerifyFirst { id: String },
    /// Backup `id` (local or fetched) differs from its record: verify it.
    Verify { id: String },
    /// The upload of backup `id` failed after it was registered: it can be pushed later.
    PushLater { id: String },
    /// The stored copy is not what was sent: push again, and look at the storage.
    RetryPush,
    /// The storage could not be reached or refused: check it; push retries later.
    CheckStorage,

    // Restores left midway.
    /// A MySQL restore could not set the replaced views, triggers, routines and events aside:
    /// where their definitions are, and restore again.
    DefinitionsKept,
    /// The restore is in place; the data it replaced is kept where the doctor says.
    ReplacedDataKept,
    /// An in-place restore of backup `id` into `env` left the database incomplete and no safety
    /// backup was taken: the same restore, once the cause is fixed, finishes it.
    RestoreInPlaceToFinish { env: String, id: String },
    /// An in-place restore failed and putting safety backup `safety` back failed too: restoring
    /// it in place (without another safety backup) makes the database whole.
    RestoreSafetyInPlace { env: String, safety: String },
    /// The restored data differs from the manifest: check it; safety backup `safety` undoes it.
    UndoRestore { env: String, safety: String },
    /// A table restore left `tables` changed (or differing from the manifest): safety backup
    /// `safety` puts those tables back as they were.
    UndoTableRestore {
        env: String,
        safety: String,
        tables: Vec<String>,
    },
    /// The safety backup of the data a swap replaced failed: that data is kept in `kept_in`.
    BackUpReplacedByHand { kept_in: String },
    /// A safety or pre-migration backup `id` of an environment with off-site copies is not
    /// copied there by the step that took it: it is pushed later.
    StaysLocal { id: String },
    /// Restore again to finish; the replaced data is kept in `kept_in`.
    FinishRestore { kept_in: String },
    /// A migrate did not finish: `id`, the backup taken before it, restores the database.
    RollBackTo { env: String, id: String },
    /// A migrate did not finish and no backup was taken before it: check the database, or
    /// restore an older backup of `env`.
    RestoreOlder { env: String },
    /// A migration tool a stopped migrate left running holds the environment's lock: the
    /// processes (`(pid, program)`), to wait for or stop, then check the database.
    StopStrayMigration { holders: Vec<(u32, String)> },

    // The pre-migration backup of an agent's migration (the Claude Code hook).
    /// The backup of `env` would take longer than the hook may wait: take it first, in the
    /// background (the hook counts one taken within `within_minutes`, no migration since), or
    /// migrate with faber-db, which backs up first.
    BackUpAheadOrMigrate { env: String, within_minutes: i64 },
    /// The backup of `env` ran past the hook's time and was stopped: take it first, in the
    /// background, then run the migration again.
    BackUpAheadThenRetry { env: String },

    // Migrations.
    /// A migrate of `env` was stopped part-way and nothing was restored: `id`, its
    /// pre-migration backup, restores the database.
    RollBackHalfMigrated { env: String, id: String },
    /// A migrate failed and nothing was restored: the database is as it left it; a restore
    /// goes back if needed.
    RestoreIfNeeded,
    /// Backup `id`, which a resumed migrate of `env` would go back to, is gone or not valid:
    /// verify it, or list the others.
    VerifyOrRestoreAnother { id: String, env: String },

    // Doctor's findings: said after what was found, following a `; `.
    /// A scratch database a killed run left: what drops it.
    DropScratch,
    /// A checksum-only check cannot clear a backup an earlier full check found corrupt: a full
    /// check can.
    VerifyFully,
    /// A check without row counts cannot clear a backup an earlier deep check found mismatched:
    /// a deep check can.
    VerifyDeepAgain,
    /// A backup marked corrupt: verify `id` again.
    VerifyAgain { id: String },
    /// A backup whose file changed size: verifying `id` tells whether it is damaged.
    VerifyDamage { id: String },

    // Configuration and databases.
    /// The config file named by --config is not there: check the path, or create one.
    CheckConfigPath,
    /// No config file in the project: create one, or name the project or the file.
    CreateConfig,
    /// The config defines no environments: add one, or start over.
    StartOver,
    /// An SQLite database is not there: check the URL, or restore a backup into it.
    RestoreInto,
}
