//! The promises a plan keeps, over random registries and policies.

use super::*;

proptest::proptest! {
    /// Over random registries and policies: every backup is either kept or removed, the floor and
    /// forever backups are kept, slots go only to valid backups, each to the newest valid one of
    /// its period, no more slots than asked, and asking for more never removes more.
    #[test]
    fn plans_keep_their_promises(
        entries in proptest::collection::vec((0..2usize, 0..400 * 24i64, 0..5u8, proptest::bool::weighted(0.05), proptest::bool::weighted(0.3)), 0..80),
        counts in proptest::array::uniform4(0..6usize),
        more in 0..4usize,
    ) {
        let start = at("2025-01-01T00:00:00Z");
        let mut reg = RegistryFile::default();
        for (i, (env, hours, status, forever, automatic)) in entries.into_iter().enumerate() {
            let mut b = record(["dev", "prod"][env], start + Duration::hours(hours));
            b.id = format!("{}-{i}", b.id);
            b.status = [Status::Valid, Status::Valid, Status::Corrupt, Status::Missing, Status::Mismatch][status as usize];
            if automatic {
                b.reason = Some("pre-migration".into());
                b.label = Some("pre-migration".into());
            }
            if forever {
                b.retention_days = None;
                b.expires_at = None;
            }
            reg.backups.push(b);
        }
        let [last, daily, weekly, monthly] = counts;
        let policy = Policy { last, daily, weekly, monthly, ..Policy::default() };
        let now = at("2026-03-01T00:00:00Z");
        let p = select(&reg, None, Rule::Keep(policy), now);

        let kept: BTreeSet<&str> = p.kept.iter().map(|k| k.id.as_str()).collect();
        let removed: BTreeSet<&str> = p.removed.iter().map(|r| r.id.as_str()).collect();
        proptest::prop_assert_eq!(kept.len() + removed.len(), reg.backups.len());
        proptest::prop_assert!(kept.is_disjoint(&removed));
        for env in ["dev", "prod"] {
            for b in [reg.newest_valid(env), reg.newest_restorable(env)].into_iter().flatten() {
                proptest::prop_assert!(kept.contains(b.id.as_str()));
            }
        }
        for b in reg.backups.iter().filter(|b| b.is_forever() || b.status == Status::Mismatch) {
            proptest::prop_assert!(kept.contains(b.id.as_str()));
        }
        for k in &p.kept {
            let mut slots = [0usize; 3];
            for r in &k.reasons {
                let (kind, i) = match r {
                    Reason::Daily(_) => (Calendar::Daily, 0),
                    Reason::Weekly(..) => (Calendar::Weekly, 1),
                    Reason::Monthly(..) => (Calendar::Monthly, 2),
                    _ => continue,
                };
                slots[i] += 1;
                proptest::prop_assert_eq!(k.status, Status::Valid);
                let b = reg.backups.iter().find(|b| b.id == k.id).unwrap();
                proptest::prop_assert!(!b.is_automatic(), "automatic {} fills {}", k.id, r);
                proptest::prop_assert_eq!(kind.slot(k.timestamp), *r);
                // No newer valid backup of the environment falls in the same period.
                let newer = reg.backups.iter().any(|b| {
                    b.environment == k.environment
                        && b.status == Status::Valid
                        && !b.is_automatic()
                        && (b.timestamp, &b.id) > (k.timestamp, &k.id)
                        && kind.slot(b.timestamp) == *r
                });
                proptest::prop_assert!(!newer, "{} is not the newest of {}", k.id, r);
            }
            proptest::prop_assert!(slots.iter().all(|&n| n <= 1));
        }
        for env in ["dev", "prod"] {
            for (kind, count) in Calendar::ALL.into_iter().zip([daily, weekly, monthly]) {
                let in_env = p.kept.iter().filter(|k| k.environment == env);
                let filled = in_env
                    .flat_map(|k| &k.reasons)
                    .filter(|r| matches!((kind, r), (Calendar::Daily, Reason::Daily(_)) | (Calendar::Weekly, Reason::Weekly(..)) | (Calendar::Monthly, Reason::Monthly(..))))
                    .count();
                let periods: BTreeSet<String> = reg.backups.iter()
                    .filter(|b| b.environment == env && b.status == Status::Valid && !b.is_automatic())
                    .map(|b| kind.slot(b.timestamp).to_string())
                    .collect();
                proptest::prop_assert_eq!(filled, count.min(periods.len()));
            }
        }
        // The newest `last` backups someone asked for stay, however many automatic ones are newer.
        for env in ["dev", "prod"] {
            for b in reg.newest_first(Some(env)).into_iter().filter(|b| !b.is_automatic()).take(last) {
                proptest::prop_assert!(kept.contains(b.id.as_str()), "{} is among the last {}", b.id, last);
            }
        }
        // Asking for more of any kind keeps a superset.
        let bigger = Policy { last: last + more, daily: daily + more, weekly: weekly + more, monthly: monthly + more, ..Policy::default() };
        let q = select(&reg, None, Rule::Keep(bigger), now);
        let kept_more: BTreeSet<&str> = q.kept.iter().map(|k| k.id.as_str()).collect();
        proptest::prop_assert!(kept.is_subset(&kept_more));
    }
}
