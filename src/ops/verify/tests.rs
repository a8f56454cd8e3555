//! The verify engine driven as library calls on SQLite backups: the verdicts it reaches, what it
//! writes back, and a check by path. No binary is spawned.

use std::fs;

use super::*;
use crate::ops::testkit::{Project, at, backed_up};

/// Flips one byte in the middle of the file at `path`.
fn damage(path: &Path) {
    let mut bytes = fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(path, bytes).unwrap();
}

#[test]
fn a_sound_backup_is_valid_at_every_depth() {
    let p = Project::new();
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let record = backed_up(&session, "dev");
    for depth in [Depth::Checksum, Depth::Structure, Depth::Deep] {
        let checked = check(&session, &record, depth);
        assert_eq!(checked.status, Status::Valid, "{depth:?}: {checked:?}");
        assert!(checked.verified && checked.problem.is_none(), "{checked:?}");
        assert_eq!(checked.verification.verified_at, at());
        assert_eq!(checked.verification.deep, depth == Depth::Deep);
        assert_eq!(checked.verification.checksum_only, depth == Depth::Checksum);
    }
    let structure = check(&session, &record, Depth::Structure);
    assert_eq!(structure.verification.integrity_check, "ok");
}

#[test]
fn a_damaged_file_is_corrupt_and_the_verdict_is_written_back() {
    let p = Project::new();
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let record = backed_up(&session, "dev");
    let data = session.store.locate(&record).unwrap().data;
    damage(&data);

    let checksum = checksum_ok(&session, &record).unwrap_err();
    assert_eq!(checksum.0.exit_code(), 5, "{}", checksum.0.one_line());
    assert_eq!(checksum.1, Some(Status::Corrupt));

    let checked = check(&session, &record, Depth::Structure);
    assert_eq!(checked.status, Status::Corrupt, "{checked:?}");
    assert!(checked.verified);
    record_results(&session, std::slice::from_ref(&checked)).unwrap();
    let registry = session.store.load().unwrap();
    assert_eq!(registry.find(&record.id).unwrap().status, Status::Corrupt);
    // The manifest beside the data says so too.
    let manifest = crate::registry::manifest_path_for(&data, &record.id);
    let text = fs::read_to_string(manifest).unwrap();
    assert!(text.contains("\"corrupt\""), "{text}");
}

#[test]
fn a_file_gone_with_no_offsite_copy_is_missing() {
    let p = Project::new();
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let record = backed_up(&session, "dev");
    fs::remove_file(session.store.locate(&record).unwrap().data).unwrap();
    let checked = check(&session, &record, Depth::Structure);
    assert_eq!(checked.status, Status::Missing, "{checked:?}");
    assert!(
        checked.problem.as_deref().unwrap().contains("missing"),
        "{checked:?}"
    );
    assert!(!checked.verification.file_readable);
}

#[test]
fn a_checksum_only_check_never_clears_a_corrupt_verdict() {
    let p = Project::new();
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let mut record = backed_up(&session, "dev");
    record.status = Status::Corrupt;
    let checked = check(&session, &record, Depth::Checksum);
    assert_eq!(checked.status, Status::Corrupt, "{checked:?}");
    assert_eq!(checked.verification.integrity_check, "not checked");
    // The verdict says what would clear it; the command layer words it.
    assert_eq!(checked.remedy, Some(Remedy::VerifyFully));
    // A full check of the same sound bytes clears it.
    assert_eq!(
        check(&session, &record, Depth::Structure).status,
        Status::Valid
    );
}

#[test]
fn a_backup_removed_meanwhile_is_not_checked_and_nothing_is_wrong() {
    let p = Project::new();
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let record = backed_up(&session, "dev");
    session
        .store
        .update(|reg| {
            reg.backups.retain(|b| b.id != record.id);
            Ok(())
        })
        .unwrap();
    fs::remove_file(session.store.locate(&record).unwrap().data).unwrap();
    assert!(removed_meanwhile(&session, &record.id));
    let checked = check(&session, &record, Depth::Structure);
    assert!(checked.removed && !checked.verified, "{checked:?}");
    assert!(checked.problem.is_none());
}

#[test]
fn a_file_checked_by_path_is_read_with_the_manifest_beside_it() {
    let p = Project::new();
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let record = backed_up(&session, "dev");
    let data = session.store.locate(&record).unwrap().data;
    // A copy somewhere else, with its manifest: checked as if registered there.
    let elsewhere = tempfile::tempdir().unwrap();
    let name = data.file_name().unwrap();
    fs::copy(&data, elsewhere.path().join(name)).unwrap();
    fs::copy(
        crate::registry::manifest_path_for(&data, &record.id),
        elsewhere
            .path()
            .join(format!("{}{MANIFEST_SUFFIX}", record.id)),
    )
    .unwrap();
    let copy = elsewhere.path().join(name);
    assert!(is_path(copy.to_str().unwrap()));
    let (found, checked) = by_path(&session, &copy, Depth::Structure).unwrap();
    assert_eq!(found.id, record.id);
    assert_eq!(found.file, copy.to_string_lossy());
    assert_eq!(checked.status, Status::Valid, "{checked:?}");

    // Without its manifest, the file cannot be checked.
    fs::remove_file(
        elsewhere
            .path()
            .join(format!("{}{MANIFEST_SUFFIX}", record.id)),
    )
    .unwrap();
    let err = by_path(&session, &copy, Depth::Structure).unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert!(err.message().starts_with("no manifest beside"), "{err:?}");
}

#[test]
fn row_counts_are_compared_by_name_and_estimates_and_excluded_data_are_not() {
    use crate::provider::{ProviderKind, TableStats, Tables};
    let table = |rows, estimated| TableStats {
        estimated,
        ..TableStats::exact(rows)
    };
    let excluded = TableStats {
        data_excluded: true,
        ..TableStats::exact(0)
    };
    let expected: Tables = [
        ("a".to_string(), table(3, false)),
        ("b".to_string(), table(5, true)),
        ("gone".to_string(), table(1, false)),
        ("sessions".to_string(), excluded),
        ("sessions_gone".to_string(), excluded),
    ]
    .into_iter()
    .collect();
    let found: Tables = [
        ("a".to_string(), table(2, false)),
        ("b".to_string(), table(9, false)),
        ("new one".to_string(), table(0, false)),
        ("sessions".to_string(), table(12, false)),
    ]
    .into_iter()
    .collect();
    // The backup holds the schema of an excluded table: it must be there, whatever its rows.
    assert_eq!(
        compare_tables(ProviderKind::Sqlite, &expected, &found),
        [
            "a 3 → 2",
            "gone missing",
            "sessions_gone missing",
            "\"new one\" unexpected"
        ]
    );
}

#[test]
fn only_a_deep_check_may_clear_a_mismatch_and_the_verdict_says_so() {
    let p = Project::new();
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let mut record = backed_up(&session, "dev");
    record.status = Status::Mismatch;
    for depth in [Depth::Checksum, Depth::Structure] {
        let checked = check(&session, &record, depth);
        assert_eq!(checked.status, Status::Mismatch, "{depth:?}");
        assert_eq!(checked.remedy, Some(Remedy::VerifyDeepAgain), "{depth:?}");
        assert!(!checked.problem.unwrap().contains("faber-db"));
    }
    let deep = check(&session, &record, Depth::Deep);
    assert_eq!((deep.status, deep.remedy), (Status::Valid, None));
}

#[test]
fn a_run_selects_one_backup_an_environment_or_all_and_names_what_is_not_there() {
    let p = Project::new();
    let first = backed_up(&p.ctx(at()).session().unwrap(), "dev");
    let later = at() + chrono::Duration::minutes(5);
    let ctx = p.ctx(later);
    let session = ctx.session().unwrap();
    let second = backed_up(&session, "dev");
    let ids = |v: Vec<BackupRecord>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(select(&session, Which::Id(&first.id)).unwrap()),
        [first.id.as_str()]
    );
    let newest_first = [second.id.clone(), first.id.clone()];
    assert_eq!(
        ids(select(&session, Which::Env("dev")).unwrap()),
        newest_first
    );
    assert_eq!(ids(select(&session, Which::All).unwrap()), newest_first);
    assert!(
        select(&session, Which::Env("production"))
            .unwrap()
            .is_empty()
    );
    // A typo of an environment, an unknown ID and a malformed one are errors, not empty runs.
    assert!(select(&session, Which::Env("prodution")).is_err());
    let unknown = first.id.replace(&first.id[first.id.len() - 4..], "0000");
    assert!(select(&session, Which::Id(&unknown)).is_err());
    assert!(select(&session, Which::Id("../x")).is_err());
}
