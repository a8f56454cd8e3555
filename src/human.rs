//! Numbers as people read them in messages: counts with their noun, byte sizes, ages and
//! durations. Plain functions over plain values, used by every layer.

/// A count and its noun, plural but for one: `1 backup`, `2 backups`, `0 tables`.
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Human-readable byte sizes: `912 B`, `1.4 KiB`, `3.2 MiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// An age precise enough to compare with a limit: hours below three days (`26h`), else days.
pub fn age(secs: u64) -> String {
    match secs {
        s if s >= 3 * 86_400 => format!("{}d", s / 86_400),
        s if s >= 3_600 => format!("{}h", s / 3_600),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A duration in whole milliseconds, as recorded in events and manifests (saturating: no
/// duration faber-db measures comes near 584 million years).
pub fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Human-readable durations: `80 ms`, `4.2 s`, `12 s`, `4 min 12 s`, `2 h 05 min`.
pub fn duration_ms(ms: u64) -> String {
    let secs = ms / 1000;
    match secs {
        0 if ms < 1000 => format!("{ms} ms"),
        0..10 => format!("{:.1} s", ms as f64 / 1000.0),
        10..60 => format!("{secs} s"),
        60..3600 => format!("{} min {:02} s", secs / 60, secs % 60),
        _ => format!("{} h {:02} min", secs / 3600, secs % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_of_one_are_singular() {
        assert_eq!(count(1u64, "backup"), "1 backup");
        assert_eq!(count(0u64, "backup"), "0 backups");
        assert_eq!(count(2u32, "table"), "2 tables");
    }
}
