//! What a backup or a restore is expected to cost before it runs: its size and duration,
//! estimated from the environment's earlier backups when there are any, else from conservative
//! defaults — and always labelled with which.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::format::Format;
use crate::pipeline::Compression;
use crate::registry::BackupRecord;

/// What an estimate needs of an earlier backup: read from the registry without the rest of the
/// entry (tables, manifests of migrations), so that planning stays cheap with many backups.
#[derive(Debug, Clone, Deserialize)]
pub struct Sample {
    pub environment: String,
    pub timestamp: DateTime<Utc>,
    pub format: Format,
    pub compression: Compression,
    pub size_bytes: u64,
    #[serde(default)]
    pub database_size_bytes: Option<u64>,
    pub duration_ms: u64,
    /// The dump's size before compression.
    #[serde(default)]
    pub raw_size_bytes: u64,
}

/// How many of the newest comparable backups an estimate is made from.
const SAMPLE: usize = 5;
/// Without history: bytes of database dumped per second. Dump tools do several times this on
/// our machines (docs/performance.md); an estimate that errs long is the useful kind.
const DEFAULT_THROUGHPUT: u64 = 20 * 1_000_000;
/// Without history: the time any backup takes whatever its size (connecting, the tools
/// starting, the read-back, the registry).
const DEFAULT_FIXED_MS: u64 = 1_000;
/// How much longer than its backup a restore of the same data is taken to be: loading rebuilds
/// indexes and checks constraints a dump never touches.
const RESTORE_FACTOR: u64 = 2;
/// What a restore adds whatever its size: the checksum pass, staging, the row counts after.
const RESTORE_FIXED_MS: u64 = 500;

/// An expected size and duration, and what they were estimated from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Estimate {
    pub size_bytes: u64,
    pub duration_ms: u64,
    /// `history`: from earlier backups of the environment; `defaults`: from fixed, pessimistic
    /// ratios; `restores`: from earlier restores of the environment; `backup`: from the chosen
    /// backup's own record (restores without earlier ones).
    pub basis: &'static str,
    /// How many earlier backups (or restores) the estimate was made from (0 for defaults).
    pub backups: usize,
}

impl Estimate {
    /// How it was made, for people: `from 3 earlier backups`, `from defaults (no earlier backup
    /// with this format)`.
    pub fn describe(&self) -> String {
        match self.basis {
            "history" if self.backups == 1 => "from 1 earlier backup".to_string(),
            "history" => format!("from {} earlier backups", self.backups),
            "backup" => format!("from the time the backup took ×{RESTORE_FACTOR}, plus checks"),
            "restores" if self.backups == 1 => "from 1 earlier restore".to_string(),
            "restores" => format!("from {} earlier restores", self.backups),
            _ => "from defaults: no earlier backup with this format and compression".to_string(),
        }
    }
}

/// The size and duration of a backup of a database of `db_size` bytes in `format` and
/// `compression`, from `history` (any backups: those of `env` with the same format and
/// compression, newest first, are used): the median ratio of stored size to database size, and
/// the median time per database byte, of the newest few.
pub fn backup<'a>(
    history: impl IntoIterator<Item = &'a Sample>,
    env: &str,
    format: Format,
    compression: Compression,
    db_size: u64,
) -> Estimate {
    let mut sample: Vec<&Sample> = history
        .into_iter()
        .filter(|b| b.environment == env && b.format == format && b.compression == compression)
        .filter(|b| b.database_size_bytes.is_some_and(|s| s > 0) && b.duration_ms > 0)
        .collect();
    sample.sort_by_key(|b| std::cmp::Reverse(b.timestamp));
    sample.truncate(SAMPLE);
    if sample.is_empty() {
        let ratio = match compression {
            Compression::None => 1.0,
            _ => 0.5,
        };
        return Estimate {
            size_bytes: scale(db_size, ratio),
            duration_ms: DEFAULT_FIXED_MS + db_size.saturating_mul(1000) / DEFAULT_THROUGHPUT,
            basis: "defaults",
            backups: 0,
        };
    }
    let per_byte = |f: &dyn Fn(&Sample) -> u64| {
        median(
            sample
                .iter()
                .map(|b| f(b) as f64 / b.database_size_bytes.unwrap_or(1) as f64)
                .collect(),
        )
    };
    Estimate {
        size_bytes: scale(db_size, per_byte(&|b| b.size_bytes)),
        duration_ms: scale(db_size, per_byte(&|b| b.duration_ms)).max(1),
        basis: "history",
        backups: sample.len(),
    }
}

/// The free space a backup of a database of `db_size` bytes is asked for before it starts: the
/// database's size times a factor of its format — 1 for an uncompressed dump (a dump leaves out
/// the indexes and free space the size includes, but text can outgrow binary data), ½ for a
/// compressed one, 1 for an SQLite image whatever its compression, 2 for one made through a
/// working snapshot (`copied_first`: the snapshot plus the stored copy) — plus 1 MiB. An
/// estimate, not a promise: a dump that outgrows it fails cleanly when the disk fills.
pub fn space_needed(
    format: Format,
    compression: Compression,
    db_size: u64,
    copied_first: bool,
) -> u64 {
    let (num, den) = match (format, compression) {
        (Format::Sqlite, _) if copied_first => (2, 1),
        // An image leaves nothing out, and pages of blobs may not compress at all.
        (Format::Sqlite, _) | (_, Compression::None) => (1, 1),
        _ => (1, 2),
    };
    (db_size / den).saturating_mul(num).saturating_add(1 << 20)
}

/// The time a restore of `record` takes to load: from the environment's newest (up to 5) earlier
/// restores and rollbacks in `history` (its audit events) that recorded their time, as the
/// median time per byte; without any, from the time its backup took.
pub fn restore(record: &BackupRecord, history: &[serde_json::Value]) -> Estimate {
    let per_byte: Vec<f64> = history
        .iter()
        .rev()
        .filter(|e| matches!(e["event"].as_str(), Some("restore" | "rollback")) && e["ok"] == true)
        .filter_map(|e| {
            let ms = e["timing"]["duration_ms"].as_u64()?;
            let bytes = e["timing"]["bytes"].as_u64().filter(|b| *b > 0)?;
            Some(ms as f64 / bytes as f64)
        })
        .take(SAMPLE)
        .collect();
    if !per_byte.is_empty() {
        let restores = per_byte.len();
        return Estimate {
            size_bytes: record.raw_size_bytes,
            duration_ms: scale(record.raw_size_bytes, median(per_byte)).max(1),
            basis: "restores",
            backups: restores,
        };
    }
    Estimate {
        size_bytes: record.raw_size_bytes,
        duration_ms: record
            .duration_ms
            .saturating_mul(RESTORE_FACTOR)
            .saturating_add(RESTORE_FIXED_MS),
        basis: "backup",
        backups: 1,
    }
}

/// The bytes a dump of a database of `db_size` bytes is expected to stream before compression —
/// what a progress bar counts to: from the environment's newest comparable backups (a dump
/// leaves indexes and free space out, so it is often well under the database's size), else
/// the database's size.
pub fn dump_bytes<'a>(
    history: impl IntoIterator<Item = &'a Sample>,
    env: &str,
    format: Format,
    db_size: u64,
) -> u64 {
    let mut sample: Vec<&Sample> = history
        .into_iter()
        .filter(|b| b.environment == env && b.format == format && b.raw_size_bytes > 0)
        .filter(|b| b.database_size_bytes.is_some_and(|s| s > 0))
        .collect();
    sample.sort_by_key(|b| std::cmp::Reverse(b.timestamp));
    sample.truncate(SAMPLE);
    if sample.is_empty() {
        return db_size;
    }
    let ratio = median(
        sample
            .iter()
            .map(|b| b.raw_size_bytes as f64 / b.database_size_bytes.unwrap_or(1) as f64)
            .collect(),
    );
    scale(db_size, ratio).max(1)
}

#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "an estimate: `as` saturates, and a negative ratio gives 0"
)]
fn scale(n: u64, ratio: f64) -> u64 {
    (n as f64 * ratio).round() as u64
}

/// The middle value (the mean of the two middle ones for an even count); `values` is not empty.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        f64::midpoint(values[mid - 1], values[mid])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_doubles_an_sqlite_backups_room_and_nothing_else() {
        const MIB: u64 = 1 << 20;
        let gib = 1024 * MIB;
        let need = |f, c, copied| space_needed(f, c, gib, copied);
        assert_eq!(need(Format::Sqlite, Compression::Zstd, true), 2 * gib + MIB);
        assert_eq!(need(Format::Sqlite, Compression::None, true), 2 * gib + MIB);
        assert_eq!(need(Format::Sqlite, Compression::Zstd, false), gib + MIB);
        assert_eq!(need(Format::Sqlite, Compression::None, false), gib + MIB);
        for copied in [true, false] {
            assert_eq!(need(Format::Sql, Compression::Gzip, copied), gib / 2 + MIB);
            assert_eq!(need(Format::Custom, Compression::None, copied), gib + MIB);
        }
    }

    fn record(env: &str, minute: u32, db: u64, size: u64, ms: u64) -> Sample {
        Sample {
            environment: env.to_string(),
            timestamp: format!("2026-11-23T10:{minute:02}:00Z").parse().unwrap(),
            format: Format::Sqlite,
            compression: Compression::Zstd,
            size_bytes: size,
            database_size_bytes: Some(db),
            duration_ms: ms,
            raw_size_bytes: size * 4,
        }
    }

    #[test]
    fn a_dump_is_expected_at_the_size_earlier_dumps_had_beside_their_database() {
        // No history: the database's size.
        assert_eq!(dump_bytes([], "dev", Format::Sqlite, 1_000), 1_000);
        // Dumps of 4 × 300, 4 × 200 and 4 × 250 bytes of a 1000-byte database: 1000 of 1000.
        let history = [
            record("dev", 1, 1000, 300, 10),
            record("dev", 2, 1000, 200, 20),
            record("dev", 3, 1000, 250, 20),
            record("prod", 4, 1000, 10, 20),
        ];
        assert_eq!(dump_bytes(&history, "dev", Format::Sqlite, 2000), 2000);
        let smaller = [record("dev", 1, 1000, 150, 10)];
        assert_eq!(dump_bytes(&smaller, "dev", Format::Sqlite, 2000), 1200);
        // Another format's dumps say nothing.
        assert_eq!(dump_bytes(&smaller, "dev", Format::Sql, 2000), 2000);
    }

    #[test]
    fn without_history_the_defaults_are_labelled_and_pessimistic() {
        let e = backup([], "dev", Format::Sqlite, Compression::Zstd, 100_000_000);
        assert_eq!(e.basis, "defaults");
        assert_eq!(e.size_bytes, 50_000_000);
        assert_eq!(e.duration_ms, 6_000);
        assert!(e.describe().contains("defaults"));
    }

    #[test]
    fn history_scales_the_median_of_the_newest_comparable_backups() {
        let history = [
            record("dev", 1, 1000, 300, 10),
            record("dev", 2, 1000, 200, 20),
            record("dev", 3, 2000, 500, 60),
            // Another environment, and an outlier too old to be among the newest five.
            record("prod", 4, 1000, 900, 900),
            record("dev", 0, 1000, 1000, 1000),
            record("dev", 5, 1000, 250, 20),
            record("dev", 6, 1000, 250, 20),
        ];
        let e = backup(&history, "dev", Format::Sqlite, Compression::Zstd, 10_000);
        assert_eq!((e.basis, e.backups), ("history", 5));
        // Ratios 0.3 0.2 0.25 0.25 0.25 → 0.25; times 0.01 0.02 0.03 0.02 0.02 → 0.02.
        assert_eq!(e.size_bytes, 2_500);
        assert_eq!(e.duration_ms, 200);
        let other = backup(&history, "dev", Format::Sqlite, Compression::Gzip, 10_000);
        assert_eq!(other.basis, "defaults");
    }

    #[test]
    fn restores_are_estimated_from_earlier_restores_else_from_the_backup() {
        let record: BackupRecord = serde_json::from_value(serde_json::json!({
            "id": "backup-1", "environment": "dev", "database": "app", "provider": "sqlite",
            "timestamp": "2026-11-23T10:00:00Z", "label": null, "reason": null, "file": "x",
            "size_bytes": 10, "raw_size_bytes": 1000, "format": "sqlite", "compression": "zstd",
            "compressed": true, "encrypted": false, "sha256": "0", "tool_version": "sqlite",
            "migrations": null, "tables": {}, "retention_days": 30, "expires_at": null,
            "status": "valid", "verification": null, "host": null, "user": null, "git": null,
            "duration_ms": 300
        }))
        .unwrap();
        let e = restore(&record, &[]);
        assert_eq!((e.basis, e.duration_ms), ("backup", 1_100));
        let event = |event: &str, ok: bool, ms: u64, bytes: u64| {
            serde_json::json!({"event": event, "ok": ok,
                "timing": {"duration_ms": ms, "bytes": bytes}})
        };
        let history = [
            event("restore", true, 200, 100),  // 2 ms a byte
            event("rollback", true, 400, 100), // 4
            event("restore", false, 9_000, 100),
            event("backup", true, 9_000, 100),
            serde_json::json!({"event": "restore", "ok": true}),
        ];
        let e = restore(&record, &history);
        // The two timed successes: a median of 3 ms a byte, for 1000 bytes.
        assert_eq!((e.basis, e.backups, e.duration_ms), ("restores", 2, 3_000));
        assert!(e.describe().contains("2 earlier restores"));
    }

    #[test]
    #[allow(clippy::float_cmp, reason = "halves and whole numbers are exact")]
    fn median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(vec![7.0]), 7.0);
    }
}
