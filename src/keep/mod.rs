//! Which backups `cleanup` keeps, why, and which it removes: a pure function of the registry, the
//! rule and the clock, so the dry run, the real run (again under the registry lock) and the tests
//! all judge the same way.
//!
//! The keep rules are grandfather-father-son, as restic and borg users know them, per
//! environment, over the backups someone asked for: `last N` keeps the newest N of them; `daily
//! N`, `weekly N` and `monthly N` keep the newest valid one of each of the newest N UTC calendar
//! days, ISO weeks and calendar months that have one. The automatic safety backups faber-db
//! takes itself ([`BackupRecord::is_automatic`]) are counted apart, by [`Automatic`]: so a
//! release's labelled backup is never pushed out by the pre-migration, pre-rollback and
//! pre-restore backups taken after it. A backup is kept when any rule keeps it; the floor keeps the rest of
//! what must never go: the newest valid backup, the one `restore --from latest` picks, backups
//! kept forever, and `mismatch` backups (their data is intact but not what the manifest says:
//! someone must look at them, and only `delete` removes one). See docs/user-guide.md, "Cleaning
//! up".

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Serialize, Serializer};

use crate::registry::{BackupRecord, RegistryFile, Status};

/// How many of each kind of backup a keep rule keeps, per environment; 0 keeps none of that kind.
/// `last` and the calendar slots count the backups someone asked for; `automatic` says which of
/// faber-db's own safety backups stay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    pub last: usize,
    pub daily: usize,
    pub weekly: usize,
    pub monthly: usize,
    pub automatic: Automatic,
}

/// Which automatic safety backups a keep rule keeps, per environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Automatic {
    /// Those taken less than this many days before now (`cleanup` without `--keep-automatic`).
    WithinDays(u32),
    /// The newest N (`--keep-automatic N`), whatever their age.
    Last(usize),
}

impl Automatic {
    /// Without `--keep-automatic`: a week of them, long enough to undo last week's release.
    pub const DEFAULT: Automatic = Automatic::WithinDays(7);
}

impl Default for Automatic {
    fn default() -> Automatic {
        Automatic::DEFAULT
    }
}

/// What decides which backups go.
#[derive(Debug, Clone, Copy)]
pub enum Rule {
    /// Backups past their retention go.
    Expired,
    /// Backups taken longer ago than this go.
    OlderThan(chrono::Duration),
    /// Backups no part of the policy keeps go.
    Keep(Policy),
}

/// Why a backup is kept. Shown as `last 1`, `daily 2026-11-23`, `weekly 2026-W47`,
/// `monthly 2026-11`, `automatic 1`, `automatic within 7 days`, `forever`, `newest valid`, `restore latest`, `rollback latest`, `mismatch`, `not expired`,
/// `newer than cutoff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The backup's place (1 = newest) among the newest N of its environment's backups someone
    /// asked for.
    Last(usize),
    /// The backup's place (1 = newest) among the newest N automatic backups of its environment.
    Automatic(usize),
    /// An automatic backup taken less than this many days ago.
    AutomaticWithin(u32),
    /// The newest valid backup of this UTC day.
    Daily(NaiveDate),
    /// The newest valid backup of this ISO week (year, week).
    Weekly(i32, u32),
    /// The newest valid backup of this calendar month (year, month).
    Monthly(i32, u32),
    /// Not past its retention (`--expired`).
    NotExpired,
    /// Not older than `--older-than`.
    NewerThanCutoff,
    /// Kept with `retention = "forever"`.
    Forever,
    /// The floor: the newest valid backup of its environment.
    NewestValid,
    /// The floor: the backup `restore --from latest` picks.
    RestoreLatest,
    /// The floor: the backup a plain `rollback` picks (the newest pre-migration backup).
    RollbackLatest,
    /// The floor: a deep check found row counts that differ from the manifest while the
    /// checksum held. Kept until someone looks: `verify --deep` clears it, `delete` removes it.
    Mismatch,
    /// The rule would remove it now, but it was not in the plan that was shown and confirmed
    /// (the registry changed in between): left for the next cleanup.
    NotConfirmed,
    /// Another run reads it (a restore, verify or upload): left for the next cleanup.
    InUse,
    /// Its entry names a file where faber-db keeps no backups: nothing of it is touched
    /// (`doctor` reports it).
    PathRefused,
    /// Its files cannot be reached or its removal recorded now (its `--output-dir` is not there,
    /// no room for its tombstone): left for a later cleanup.
    Unavailable,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Last(n) => write!(f, "last {n}"),
            Reason::Automatic(n) => write!(f, "automatic {n}"),
            Reason::AutomaticWithin(days) => write!(f, "automatic within {days} days"),
            Reason::Daily(d) => write!(f, "daily {}", d.format("%Y-%m-%d")),
            Reason::Weekly(y, w) => write!(f, "weekly {y:04}-W{w:02}"),
            Reason::Monthly(y, m) => write!(f, "monthly {y:04}-{m:02}"),
            Reason::NotExpired => f.write_str("not expired"),
            Reason::NewerThanCutoff => f.write_str("newer than cutoff"),
            Reason::Forever => f.write_str("forever"),
            Reason::NotConfirmed => f.write_str("not in the confirmed plan"),
            Reason::NewestValid => f.write_str("newest valid"),
            Reason::RestoreLatest => f.write_str("restore latest"),
            Reason::RollbackLatest => f.write_str("rollback latest"),
            Reason::Mismatch => f.write_str("mismatch"),
            Reason::InUse => f.write_str("in use by another run"),
            Reason::PathRefused => f.write_str("its file path is refused"),
            Reason::Unavailable => f.write_str("its files cannot be removed now"),
        }
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A calendar slot kind of the policy.
#[derive(Debug, Clone, Copy)]
enum Calendar {
    Daily,
    Weekly,
    Monthly,
}

impl Calendar {
    const ALL: [Calendar; 3] = [Calendar::Daily, Calendar::Weekly, Calendar::Monthly];

    fn count(self, p: &Policy) -> usize {
        match self {
            Calendar::Daily => p.daily,
            Calendar::Weekly => p.weekly,
            Calendar::Monthly => p.monthly,
        }
    }

    /// The slot a backup taken at `at` falls in, as the reason it is kept for.
    fn slot(self, at: DateTime<Utc>) -> Reason {
        match self {
            Calendar::Daily => Reason::Daily(at.date_naive()),
            Calendar::Weekly => {
                let w = at.iso_week();
                Reason::Weekly(w.year(), w.week())
            }
            Calendar::Monthly => Reason::Monthly(at.year(), at.month()),
        }
    }
}

/// A backup the selection keeps, with every reason it is kept for (rules first, then the floor).
#[derive(Debug, Clone, Serialize)]
pub struct Kept {
    pub id: String,
    pub environment: String,
    pub timestamp: DateTime<Utc>,
    pub size_bytes: u64,
    pub status: Status,
    pub reasons: Vec<Reason>,
}

/// A backup the selection removes.
#[derive(Debug, Clone, Serialize)]
pub struct Removal {
    pub id: String,
    pub environment: String,
    pub timestamp: DateTime<Utc>,
    pub size_bytes: u64,
    pub status: Status,
    /// The off-site copy removed with it.
    #[serde(rename = "remote_url", skip_serializing_if = "Option::is_none")]
    pub offsite_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A safety backup faber-db took itself ([`BackupRecord::is_automatic`]).
    pub automatic: bool,
}

impl Removal {
    pub fn of(b: &BackupRecord) -> Removal {
        Removal {
            id: b.id.clone(),
            environment: b.environment.clone(),
            timestamp: b.timestamp,
            size_bytes: b.size_bytes,
            status: b.status,
            offsite_url: match &b.offsite {
                Some(crate::registry::OffsiteCopy::Uploaded { url, .. }) => Some(url.clone()),
                _ => None,
            },
            label: b.label.clone(),
            reason: b.reason.clone(),
            automatic: b.is_automatic(),
        }
    }

    /// One line of the plan shown before a protected removal is confirmed: `ID  size  age old`,
    /// its label and reason, and its off-site copy.
    pub fn describe(&self, now: DateTime<Utc>) -> String {
        let age = (now - self.timestamp).num_seconds().max(0).unsigned_abs();
        let mut text = format!(
            "{}  {}  {} old",
            self.id,
            crate::human::size(self.size_bytes),
            crate::human::age(age)
        );
        match self.status {
            Status::Valid => {}
            Status::Corrupt => text.push_str("  corrupt"),
            Status::Missing => text.push_str("  missing"),
            Status::Mismatch => text.push_str("  mismatch"),
        }
        if let Some(label) = &self.label {
            text.push_str(&format!("  label {label}"));
        }
        if let Some(reason) = &self.reason {
            text.push_str(&format!("  reason {reason}"));
        }
        if self.automatic {
            text.push_str(" (automatic)");
        }
        if let Some(url) = &self.offsite_url {
            text.push_str(&format!("  and its off-site copy {url}"));
        }
        text
    }
}

/// Which backups a cleanup keeps (and why) and which it removes: every backup considered, each
/// list newest first within an environment, environments in name order.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub kept: Vec<Kept>,
    pub removed: Vec<Removal>,
}

impl Selection {
    pub fn freed_bytes(&self) -> u64 {
        self.removed.iter().map(|r| r.size_bytes).sum()
    }
}

/// The selection `rule` makes among the backups of `env` (every environment when `None`) at `now`.
///
/// Whatever the rule, five kinds of backup stay: the newest valid backup of each environment,
/// the one `restore --from latest` would pick (they differ when the newest is a `pre-restore`
/// safety backup), the one a plain `rollback` would pick (the newest pre-migration backup),
/// every backup kept forever, and every `mismatch` backup.
pub fn select(reg: &RegistryFile, env: Option<&str>, rule: Rule, now: DateTime<Utc>) -> Selection {
    let mut by_env: BTreeMap<&str, Vec<&BackupRecord>> = BTreeMap::new();
    for b in reg.newest_first(env) {
        by_env.entry(b.environment.as_str()).or_default().push(b);
    }
    let mut out = Selection::default();
    for (name, backups) in by_env {
        let newest_valid = reg.newest_valid(name).map(|b| b.id.as_str());
        let restore_latest = reg.newest_restorable(name).map(|b| b.id.as_str());
        let rollback_latest = reg.newest_pre_migration(name).map(|b| b.id.as_str());
        let mut reasons = by_rule(&backups, rule, now);
        for (b, reasons) in backups.iter().zip(&mut reasons) {
            if b.is_forever() {
                reasons.push(Reason::Forever);
            }
            if newest_valid == Some(b.id.as_str()) {
                reasons.push(Reason::NewestValid);
            }
            if restore_latest == Some(b.id.as_str()) {
                reasons.push(Reason::RestoreLatest);
            }
            if rollback_latest == Some(b.id.as_str()) {
                reasons.push(Reason::RollbackLatest);
            }
            if b.status == Status::Mismatch {
                reasons.push(Reason::Mismatch);
            }
        }
        for (b, reasons) in backups.into_iter().zip(reasons) {
            if reasons.is_empty() {
                out.removed.push(Removal::of(b));
            } else {
                out.kept.push(Kept {
                    id: b.id.clone(),
                    environment: b.environment.clone(),
                    timestamp: b.timestamp,
                    size_bytes: b.size_bytes,
                    status: b.status,
                    reasons,
                });
            }
        }
    }
    out
}

/// The reasons `rule` alone keeps each of one environment's backups (given newest first) for.
fn by_rule(backups: &[&BackupRecord], rule: Rule, now: DateTime<Utc>) -> Vec<Vec<Reason>> {
    let mut reasons = vec![Vec::new(); backups.len()];
    match rule {
        Rule::Expired => {
            for (b, r) in backups.iter().zip(&mut reasons) {
                if !b.is_forever() && !b.is_expired(now) {
                    r.push(Reason::NotExpired);
                }
            }
        }
        Rule::OlderThan(age) => {
            let cut = now.checked_sub_signed(age);
            for (b, r) in backups.iter().zip(&mut reasons) {
                if cut.is_none_or(|cut| b.timestamp >= cut) {
                    r.push(Reason::NewerThanCutoff);
                }
            }
        }
        Rule::Keep(policy) => {
            let asked = backups
                .iter()
                .zip(&mut reasons)
                .filter(|(b, _)| !b.is_automatic());
            for ((_, r), place) in asked.zip(1..=policy.last) {
                r.push(Reason::Last(place));
            }
            let automatic = backups
                .iter()
                .zip(&mut reasons)
                .filter(|(b, _)| b.is_automatic());
            match policy.automatic {
                Automatic::Last(n) => {
                    for ((_, r), place) in automatic.zip(1..=n) {
                        r.push(Reason::Automatic(place));
                    }
                }
                Automatic::WithinDays(days) => {
                    let cut = now.checked_sub_signed(chrono::Duration::days(days.into()));
                    for (b, r) in automatic {
                        if cut.is_none_or(|cut| b.timestamp >= cut) {
                            r.push(Reason::AutomaticWithin(days));
                        }
                    }
                }
            }
            for kind in Calendar::ALL {
                fill_slots(backups, kind, kind.count(&policy), &mut reasons);
            }
        }
    }
    reasons
}

/// Gives each of the newest `count` slots of `kind` that hold a valid backup someone asked for to
/// the newest such backup in it. A corrupt, missing or mismatch backup takes no slot: it could
/// not be restored (or not trusted), and a slot it took would push a restorable backup out; nor
/// does an automatic one, which would push out the release backup taken just before it. Backups come newest first, so a slot's backups are
/// adjacent and the first valid one met is its newest.
fn fill_slots(
    backups: &[&BackupRecord],
    kind: Calendar,
    count: usize,
    reasons: &mut [Vec<Reason>],
) {
    let mut filled: Option<Reason> = None;
    let mut left = count;
    for (b, r) in backups.iter().zip(reasons) {
        if left == 0 {
            break;
        }
        if b.status != Status::Valid || b.is_automatic() {
            continue;
        }
        let slot = kind.slot(b.timestamp);
        if filled != Some(slot) {
            r.push(slot);
            filled = Some(slot);
            left -= 1;
        }
    }
}

#[cfg(test)]
mod tests;
