//! `exclude_table_data`: the tables whose rows a backup leaves out, keeping their schema.
//!
//! A pattern is a glob on a table's name as the manifest names it (`audit_log`; a PostgreSQL
//! table outside `public` as `schema.table`): `*` stands for any run of characters, none
//! included (a `.` too), and every other character for itself, case included. A pattern without
//! `*` names one table and no other (`sessions` is not `sessions_old` nor `user_sessions`).
//! Each provider resolves the patterns against the live database's tables before it dumps
//! ([`resolve`]) and leaves out exactly those, named in full; their counts in the manifest are
//! marked ([`mark`]).

use super::Tables;

/// Whether `pattern` matches the table `name`.
pub fn matches(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    // The classic one-star backtracking: where the last `*` was, and where in the name its
    // match ended so far.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// The tables among `names` that any of `patterns` matches, in the order given.
pub fn resolve<'a>(patterns: &[String], names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    if patterns.is_empty() {
        return Vec::new();
    }
    names
        .into_iter()
        .filter(|name| patterns.iter().any(|p| matches(p, name)))
        .map(str::to_string)
        .collect()
}

/// Marks the tables `excluded` in `tables` as tables whose data the backup left out: no rows,
/// counted exactly, never compared. A table the dump's counts lack (no data block at all) is
/// added.
pub fn mark(tables: &mut Tables, excluded: &[String]) {
    for name in excluded {
        let stats = tables
            .entry(name.clone())
            .or_insert(super::TableStats::exact(0));
        stats.rows = 0;
        stats.estimated = false;
        stats.data_excluded = true;
    }
}

/// The patterns of `patterns` that match none of the tables `excluded` (already resolved).
pub fn unmatched<'a>(patterns: &'a [String], excluded: &[&str]) -> Vec<&'a str> {
    patterns
        .iter()
        .filter(|p| !excluded.iter().any(|t| matches(p, t)))
        .map(String::as_str)
        .collect()
}

/// Why `pattern` cannot be one: empty, or holding a control character.
pub fn check(pattern: &str) -> std::result::Result<(), String> {
    if pattern.trim().is_empty() {
        Err("a pattern is empty".into())
    } else if pattern.chars().any(char::is_control) {
        Err(format!("the pattern {pattern:?} holds a control character"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_matches_any_run_and_every_other_character_itself() {
        for (pattern, name, expected) in [
            ("sessions*", "sessions", true),
            ("sessions*", "sessions_old", true),
            ("sessions*", "user_sessions", false),
            ("*sessions", "user_sessions", true),
            ("*sessions", "sessions_old", false),
            ("*", "anything", true),
            ("*", "", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("a*b", "abab", true),
            ("a**b", "ab", true),
            ("audit.*", "audit.log", true),
            ("audit.*", "audit_log", false),
            ("*log", "audit.log", true),
            ("ünï*", "ünïcödé", true),
        ] {
            assert_eq!(matches(pattern, name), expected, "{pattern} ~ {name}");
        }
    }

    #[test]
    fn a_plain_name_matches_that_table_alone() {
        for name in [
            "audit_log",
            "audit_log2",
            "my_audit_log",
            "Audit_Log",
            "audit-log",
            "audit_lo",
        ] {
            assert_eq!(matches("audit_log", name), name == "audit_log", "{name}");
        }
        // `_`, `%`, `?` and `.` are no wildcards here (they are in SQL LIKE and pg_dump).
        assert!(!matches("a_c", "abc"));
        assert!(!matches("a%", "abc"));
        assert!(!matches("a?c", "abc"));
        assert!(!matches("a.c", "abc"));
        assert!(matches("a?c", "a?c"));
    }

    #[test]
    fn patterns_resolve_against_the_tables_and_mark_their_counts() {
        let patterns = vec![
            "sessions*".to_string(),
            "audit_log".to_string(),
            "gone".into(),
        ];
        let names = [
            "audit_log",
            "audit_log_old",
            "sessions",
            "sessions_old",
            "user_sessions",
        ];
        let excluded = resolve(&patterns, names);
        assert_eq!(excluded, ["audit_log", "sessions", "sessions_old"]);
        let found: Vec<&str> = excluded.iter().map(String::as_str).collect();
        assert_eq!(unmatched(&patterns, &found), ["gone"]);
        assert!(resolve(&[], names).is_empty());

        let mut tables: Tables = names
            .iter()
            .map(|n| (n.to_string(), crate::provider::TableStats::exact(7)))
            .collect();
        tables.remove("sessions_old");
        tables.get_mut("sessions").unwrap().estimated = true;
        mark(&mut tables, &excluded);
        for (name, stats) in &tables {
            let out = excluded.contains(name);
            assert_eq!(stats.data_excluded, out, "{name}");
            assert_eq!(stats.rows, if out { 0 } else { 7 }, "{name}");
            assert!(!stats.estimated, "{name}");
            assert_eq!(stats.is_comparable(), !out, "{name}");
        }
        assert!(
            tables.contains_key("sessions_old"),
            "added though the dump had no data of it"
        );
    }

    #[test]
    fn empty_patterns_and_control_characters_are_refused() {
        assert!(check("audit_log").is_ok());
        assert!(check("sessions*").is_ok());
        assert!(check("").is_err());
        assert!(check("  ").is_err());
        assert!(check("a\nb").is_err());
    }

    #[test]
    fn manifests_without_the_flag_still_load_and_the_flag_is_written_only_when_set() {
        let old: crate::provider::TableStats = serde_json::from_str(r#"{"rows": 3}"#).unwrap();
        assert_eq!(old, crate::provider::TableStats::exact(3));
        assert_eq!(serde_json::to_string(&old).unwrap(), r#"{"rows":3}"#);
        let mut tables = Tables::new();
        mark(&mut tables, &["t".to_string()]);
        assert_eq!(
            serde_json::to_string(&tables).unwrap(),
            r#"{"t":{"rows":0,"data_excluded":true}}"#
        );
    }
}
