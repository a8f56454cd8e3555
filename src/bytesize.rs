//! Sizes written by people: `512MiB`, `2GB`, `1.5 GiB`, or a plain number of bytes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// A number of bytes, parsed from `<number>[unit]` with units B, kB/KB, MB, GB, TB (powers of
/// 1000) and KiB, MiB, GiB, TiB (powers of 1024), case-insensitive, or from a plain integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        let unit = unit.trim().to_ascii_lowercase();
        let scale: u64 = match unit.as_str() {
            "" | "b" => 1,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            "tb" => 1_000_000_000_000,
            "kib" => 1 << 10,
            "mib" => 1 << 20,
            "gib" => 1 << 30,
            "tib" => 1 << 40,
            _ => return Err(bad(s)),
        };
        let value: f64 = number.parse().map_err(|_| bad(s))?;
        let bytes = value * scale as f64;
        if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
            return Err(bad(s));
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "finite, not negative and at most u64::MAX: checked above"
        )]
        Ok(ByteSize(bytes.round() as u64))
    }
}

fn bad(s: &str) -> String {
    format!("invalid size `{s}` (expected a number of bytes or e.g. 512MiB, 2GB)")
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::human::size(self.0))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Bytes(u64),
            Text(String),
        }
        match Written::deserialize(d)? {
            Written::Bytes(n) => Ok(ByteSize(n)),
            Written::Text(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_both_unit_systems() {
        let p = |s: &str| s.parse::<ByteSize>().map(|b| b.0);
        assert_eq!(p("0"), Ok(0));
        assert_eq!(p("1024"), Ok(1024));
        assert_eq!(p("2GB"), Ok(2_000_000_000));
        assert_eq!(p("1.5 GiB"), Ok(3 << 29));
        assert_eq!(p("512mib"), Ok(512 << 20));
        assert_eq!(p("10 kB"), Ok(10_000));
        for bad in ["", "GB", "-1GB", "1 XB", "1.2.3MB", "1e3"] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }
}
