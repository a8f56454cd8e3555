//! Names that end up in paths: backup IDs, labels, reasons and environment names. Everything a
//! user types here is checked so that no path can leave the backup directory.

use chrono::{DateTime, Utc};

use crate::error::{Error, Remedy, Result};

pub const MAX_LABEL_LEN: usize = 64;

fn is_label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// A label or reason: `[A-Za-z0-9._-]`, 1 to 64 characters, not starting with a dot.
pub fn validate_label(what: &str, value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= MAX_LABEL_LEN
        && !value.starts_with('.')
        && value.chars().all(is_label_char);
    if ok {
        Ok(())
    } else {
        Err(Error::config(format!("invalid {what} `{}`", shorten(value)))
            .with_hint(format!("a {what} uses only A-Z a-z 0-9 . _ - (at most {MAX_LABEL_LEN} characters, not starting with a dot)")))
    }
}

/// An environment name: `[A-Za-z0-9_-]`, 1 to 64 characters.
pub fn is_valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_LABEL_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}

/// A backup ID as given by a user: `backup-YYYYMMDD-HHMMSS[-LABEL][-N]`.
pub fn validate_id(id: &str) -> Result<()> {
    let valid = id.len() <= 128
        && id.strip_prefix("backup-").is_some_and(|rest| {
            let (stamp, label) = rest.split_at(rest.len().min(15));
            let stamp_ok = stamp.len() == 15
                && stamp
                    .char_indices()
                    .all(|(i, c)| if i == 8 { c == '-' } else { c.is_ascii_digit() });
            let label_ok = label.is_empty()
                || label.strip_prefix('-').is_some_and(|l| {
                    !l.is_empty() && !l.starts_with('.') && l.chars().all(is_label_char)
                });
            stamp_ok && label_ok
        });
    if valid {
        Ok(())
    } else {
        Err(
            Error::config(format!("invalid backup ID `{}`", shorten(id)))
                .with_hint(Remedy::BackupIdForm),
        )
    }
}

/// The ID for a backup taken at `at` with an optional label, before collision suffixes.
pub fn base_id(at: DateTime<Utc>, label: Option<&str>) -> String {
    let mut id = format!("backup-{}", at.format("%Y%m%d-%H%M%S"));
    if let Some(l) = label {
        id.push('-');
        id.push_str(l);
    }
    id
}

/// The first of `base`, `base-2`, `base-3`, … for which `taken` says no.
#[allow(
    clippy::maybe_infinite_iter,
    reason = "`find` stops at the first free suffix"
)]
pub fn unique_id(base: &str, taken: impl Fn(&str) -> bool) -> String {
    if !taken(base) {
        return base.to_string();
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|id| !taken(id))
        .expect("an unbounded range always yields a free suffix")
}

/// Input echoed back in an error: printable, and short enough to read.
pub fn shorten(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if clean.chars().count() > 80 {
        format!("{}…", clean.chars().take(77).collect::<String>())
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(validate_id("backup-20250124-140000").is_ok());
        assert!(validate_id("backup-20250124-140000-pre-v2.1").is_ok());
        assert!(validate_id("backup-20250124-140000-2").is_ok());
        for bad in [
            "",
            "backup-",
            "backup-2025012-140000",
            "backup-20250124-140000-",
            "backup-20250124-140000-../x",
            "../backup-20250124-140000",
            "backup-20250124-140000/..",
            "backup-20250124x140000",
            "backup-20250124-140000-.hidden",
        ] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn labels() {
        assert!(validate_label("label", "pre-v2.0_rc1").is_ok());
        for bad in [
            "",
            "../../x",
            "a/b",
            "a b",
            "a\nb",
            ".hidden",
            &"x".repeat(65),
        ] {
            assert!(validate_label("label", bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        /// Whatever a user types, an accepted label or ID is one plain path component.
        #[test]
        fn accepted_input_stays_inside_its_directory(s in "\\PC{0,80}") {
            for ok in [validate_label("label", &s).is_ok(), validate_id(&s).is_ok()] {
                if ok {
                    proptest::prop_assert!(!s.contains('/') && !s.contains('\\') && !s.contains('\0'));
                    proptest::prop_assert!(!s.starts_with('.') && !s.chars().any(char::is_whitespace));
                }
            }
        }

        /// Every ID faber-db makes from an accepted label is accepted back as input.
        #[test]
        fn generated_ids_validate(label in "[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}", secs in 0i64..4_102_444_800, n in 2u32..50) {
            let at = chrono::DateTime::from_timestamp(secs, 0).unwrap();
            proptest::prop_assert!(validate_label("label", &label).is_ok());
            let id = base_id(at, Some(&label));
            proptest::prop_assert!(validate_id(&id).is_ok(), "{}", id);
            let suffixed = format!("{id}-{n}");
            proptest::prop_assert!(validate_id(&suffixed).is_ok());
            proptest::prop_assert!(validate_id(&base_id(at, None)).is_ok());
        }
    }

    #[test]
    fn collisions_get_suffixes() {
        let taken = ["backup-1", "backup-1-2"];
        assert_eq!(
            unique_id("backup-1", |id| taken.contains(&id)),
            "backup-1-3"
        );
        assert_eq!(unique_id("backup-9", |id| taken.contains(&id)), "backup-9");
    }
}
