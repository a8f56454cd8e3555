//! What one backup is: its registry entry, which its manifest mirrors.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::AUTOMATIC_REASONS;
use crate::format::Format;
use crate::migrations::MigrationState;
use crate::pipeline::Compression;
use crate::provider::{ProviderKind, Tables};

/// What the last check found of a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Valid,
    /// The stored bytes are not the ones written, or the data in them is unreadable.
    Corrupt,
    Missing,
    /// The bytes are the ones written, but a deep check's row counts differ from the manifest:
    /// the data may not be what the manifest says. Never picked on its own (`latest`, a
    /// rollback's choice) and never removed by a cleanup rule; restored only when named.
    Mismatch,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Valid => "valid",
            Status::Corrupt => "corrupt",
            Status::Missing => "missing",
            Status::Mismatch => "mismatch",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub integrity_check: String,
    pub file_readable: bool,
    pub verified_at: DateTime<Utc>,
    /// Whether the last verification also restored the data and compared row counts.
    #[serde(default)]
    pub deep: bool,
    /// Whether the last verification checked the SHA-256 only (`verify --checksum-only`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub checksum_only: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitState {
    pub commit: Option<String>,
    pub branch: Option<String>,
}

/// One backup: the registry entry, and the manifest written beside its file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupRecord {
    pub id: String,
    pub environment: String,
    pub database: String,
    pub provider: ProviderKind,
    pub timestamp: DateTime<Utc>,
    pub label: Option<String>,
    pub reason: Option<String>,
    /// The command this backup was taken before, secrets blanked out: a migration an agent ran,
    /// seen by the Claude Code hook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The data file, relative to the backup directory (or absolute when stored elsewhere).
    pub file: String,
    pub size_bytes: u64,
    /// Size of the dump before compression.
    pub raw_size_bytes: u64,
    pub format: Format,
    pub compression: Compression,
    pub compressed: bool,
    pub encrypted: bool,
    /// SHA-256 of the file; of a directory dump, SHA-256 of its sorted `sha256sum` listing.
    pub sha256: String,
    /// Of an encrypted backup: SHA-256 of the bytes encrypted, checked after decryption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plaintext_sha256: Option<String>,
    /// The files of a directory dump, each with its own SHA-256.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<crate::dirdump::FileDigest>,
    pub tool_version: String,
    /// The database server's version (`PostgreSQL 15.4 …`, `SQLite 3.45.0`) when backed up.
    #[serde(default)]
    pub server_version: Option<String>,
    /// The database's own size when backed up (`pg_database_size`, the SQLite file and WAL).
    #[serde(default)]
    pub database_size_bytes: Option<u64>,
    pub migrations: Option<MigrationState>,
    pub tables: Tables,
    /// Whole days the backup is kept; `null` for forever.
    pub retention_days: Option<u64>,
    pub expires_at: Option<DateTime<Utc>>,
    pub status: Status,
    pub verification: Option<Verification>,
    pub host: Option<String>,
    pub user: Option<String>,
    pub git: Option<GitState>,
    pub duration_ms: u64,
    /// The off-site copy, when the environment has one configured.
    /// (Written as `remote`, the key every version has used.)
    #[serde(rename = "remote", default, skip_serializing_if = "Option::is_none")]
    pub offsite: Option<OffsiteCopy>,
    /// The last restore drill of this backup (`verify --drill`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_drill: Option<Drill>,
}

/// A restore drill: the backup loaded into a scratch database and its row counts compared with
/// the manifest, as `verify --drill` does on a schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drill {
    pub at: DateTime<Utc>,
    /// Whether it loaded and its counts matched.
    pub ok: bool,
    pub duration_ms: u64,
    /// What went wrong, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// A backup's off-site copy: uploaded (with what was uploaded), or the last upload failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum OffsiteCopy {
    Uploaded {
        /// `s3://bucket/key` of the data file (of a directory dump: its key prefix).
        url: String,
        size_bytes: u64,
        sha256: String,
        uploaded_at: DateTime<Utc>,
    },
    Failed {
        url: String,
        error: String,
        attempted_at: DateTime<Utc>,
    },
}

impl OffsiteCopy {
    pub fn is_uploaded(&self) -> bool {
        matches!(self, OffsiteCopy::Uploaded { .. })
    }
}

impl BackupRecord {
    /// Valid, or missing here with an off-site copy to fetch (checked against the same SHA-256):
    /// what may be picked without being named. A `mismatch` backup is restored only when named.
    pub fn is_restorable(&self) -> bool {
        match self.status {
            Status::Valid => true,
            Status::Missing => self.offsite.as_ref().is_some_and(OffsiteCopy::is_uploaded),
            Status::Corrupt | Status::Mismatch => false,
        }
    }

    /// Taken by faber-db itself before a risky step (see [`AUTOMATIC_REASONS`]), not asked for
    /// by a person or a pipeline: its reason is one of those, and its label is that reason or
    /// none.
    pub fn is_automatic(&self) -> bool {
        self.reason
            .as_deref()
            .is_some_and(|r| AUTOMATIC_REASONS.contains(&r))
            && self
                .label
                .as_deref()
                .is_none_or(|l| Some(l) == self.reason.as_deref())
    }

    pub fn is_forever(&self) -> bool {
        self.retention_days.is_none()
    }

    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}
