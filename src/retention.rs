//! How long a backup is kept: a duration (`30d`, `12h`, `2weeks`) or `forever`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    Forever,
    For(Duration),
}

/// The longest retention faber-db accepts short of `forever`: 1000 years.
pub const MAX_DAYS: u64 = 365_000;

impl Retention {
    /// A retention of `days` whole days; `None` when it is zero or longer than [`MAX_DAYS`].
    pub fn days(days: u64) -> Option<Retention> {
        (1..=MAX_DAYS)
            .contains(&days)
            .then(|| Retention::For(Duration::from_secs(days * 86_400)))
    }

    /// Whole days, rounded up, or `None` for forever (the registry's `retention_days`).
    pub fn as_days(self) -> Option<u64> {
        match self {
            Retention::Forever => None,
            Retention::For(d) => Some(d.as_secs().div_ceil(86_400)),
        }
    }

    /// When a backup taken at `at` expires, or `None` for forever.
    pub fn expiry(self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Retention::Forever => None,
            Retention::For(d) => chrono::Duration::from_std(d)
                .ok()
                .and_then(|d| at.checked_add_signed(d)),
        }
    }
}

impl FromStr for Retention {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("forever") {
            return Ok(Retention::Forever);
        }
        // A bare number is days, as the original plugin's `--retention 90` and
        // `backup_retention_days` meant.
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            let days: u64 = s
                .parse()
                .map_err(|_| format!("`{s}` days is out of range"))?;
            return Retention::days(days).ok_or_else(|| {
                format!("a retention of {days} days is out of range (1 to {MAX_DAYS}); use \"forever\" to keep backups for good")
            });
        }
        let d = parse_duration(s)?;
        if d.is_zero() {
            return Err("a retention of zero would expire a backup at once; use a positive duration or \"forever\"".into());
        }
        if d.as_secs() > MAX_DAYS * 86_400 {
            return Err(format!(
                "a retention of `{s}` is longer than 1000 years; use \"forever\" to keep a backup for good"
            ));
        }
        Ok(Retention::For(d))
    }
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Retention::Forever => f.write_str("forever"),
            Retention::For(d) => match d.as_secs() {
                s if s % 86_400 == 0 => write!(f, "{}d", s / 86_400),
                s if s % 3_600 == 0 => write!(f, "{}h", s / 3_600),
                _ => write!(f, "{}", humantime::format_duration(*d)),
            },
        }
    }
}

impl<'de> Deserialize<'de> for Retention {
    /// `"30d"`, `"forever"`, or a number of days (`retention = 90`).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Written;
        impl serde::de::Visitor<'_> for Written {
            type Value = Retention;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as \"30d\", \"forever\", or a number of days")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Retention, E> {
                s.parse().map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Retention, E> {
                n.to_string().parse().map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Retention, E> {
                n.to_string().parse().map_err(E::custom)
            }
        }
        d.deserialize_any(Written)
    }
}

/// A humantime duration such as `30d`, `12h`, `2weeks 3days`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("invalid duration `{s}`: {e} (examples: 30d, 12h, 2weeks)"))
}

/// A positive duration written by people (`24h`, `2d`), such as `max_backup_age`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Age(pub Duration);

impl FromStr for Age {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let d = parse_duration(s)?;
        if d.is_zero() {
            return Err(format!(
                "`{s}` is no age: use a positive duration such as 24h"
            ));
        }
        Ok(Age(d))
    }
}

impl<'de> Deserialize<'de> for Age {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A short human form of a remaining or elapsed time: `29d`, `5h`, `12m`, `40s`.
pub fn short(d: chrono::Duration) -> String {
    let secs = d.num_seconds().unsigned_abs();
    let (n, unit) = match secs {
        s if s >= 86_400 => (s / 86_400, "d"),
        s if s >= 3_600 => (s / 3_600, "h"),
        s if s >= 60 => (s / 60, "m"),
        s => (s, "s"),
    };
    format!("{n}{unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_and_forever() {
        assert_eq!("forever".parse::<Retention>(), Ok(Retention::Forever));
        assert_eq!("30d".parse::<Retention>().unwrap().as_days(), Some(30));
        assert_eq!("36h".parse::<Retention>().unwrap().as_days(), Some(2));
        assert!("0d".parse::<Retention>().is_err());
        assert_eq!("90".parse::<Retention>().unwrap().as_days(), Some(90));
        assert!("0".parse::<Retention>().is_err());
        assert!("99999999999999999999".parse::<Retention>().is_err());
        assert!("100000000000y".parse::<Retention>().is_err());
        assert!(Retention::days(0).is_none() && Retention::days(u64::MAX).is_none());
        assert_eq!(Retention::days(7).and_then(Retention::as_days), Some(7));
        assert!("soon".parse::<Retention>().is_err());
    }
}
