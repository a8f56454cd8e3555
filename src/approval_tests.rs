use std::os::unix::fs::PermissionsExt;

use super::*;

fn at() -> DateTime<Utc> {
    "2026-12-07T10:00:00Z".parse().unwrap()
}

fn restore() -> Binding {
    Binding {
        args: ["restore", "production", "--yes"]
            .map(String::from)
            .to_vec(),
        subcommand: "restore".into(),
        environment: Some("production".into()),
        database: Some("d1".into()),
        backup: Some(BackupRef {
            id: "backup-20261207-095900".into(),
            sha256: "aa".repeat(32),
        }),
    }
}

fn setup() -> (tempfile::TempDir, Approvals) {
    let dir = tempfile::tempdir().unwrap();
    let approvals = Approvals::new(dir.path());
    (dir, approvals)
}

fn refusal(r: Result<()>) -> String {
    let e = r.unwrap_err();
    assert_eq!(e.kind(), Kind::Aborted, "{}", e.message());
    e.message().to_string()
}

fn files_in(a: &Approvals) -> Vec<String> {
    fsutil::file_names(&a.dir)
}

#[test]
fn an_approval_is_taken_once_by_the_command_it_was_given_for() {
    let (_d, a) = setup();
    let id = a.issue(restore(), Some("s1"), at()).unwrap();
    assert!(is_id(&id), "{id}");
    let file = a.path_of(&id);
    assert_eq!(fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
    assert_eq!(fs::metadata(&a.dir).unwrap().mode() & 0o777, 0o700);
    a.consume(
        &id,
        &restore(),
        Some("s1"),
        at() + Duration::minutes(LIFETIME_MINUTES - 1),
    )
    .unwrap();
    assert!(files_in(&a).is_empty(), "{:?}", files_in(&a));
    let replay = refusal(a.consume(&id, &restore(), Some("s1"), at()));
    assert!(replay.contains("used already"), "{replay}");
}

#[test]
fn an_expired_approval_is_refused_and_gone() {
    let (_d, a) = setup();
    let id = a.issue(restore(), None, at()).unwrap();
    let late = at() + Duration::minutes(LIFETIME_MINUTES);
    assert!(refusal(a.consume(&id, &restore(), None, late)).contains("expired"));
    assert!(files_in(&a).is_empty());
    // Issued "in the future" (a clock set back, or a planted file): refused too.
    let id = a
        .issue(restore(), None, at() + Duration::minutes(5))
        .unwrap();
    assert!(refusal(a.consume(&id, &restore(), None, at())).contains("expired"));
}

#[test]
fn an_approval_unlocks_its_own_command_only_and_is_spent_by_a_wrong_try() {
    let (_d, a) = setup();
    let other_args = Binding {
        args: ["restore", "production", "--yes", "--no-safety-backup"]
            .map(String::from)
            .to_vec(),
        ..restore()
    };
    let other_sub = Binding {
        subcommand: "rollback".into(),
        ..restore()
    };
    let other_env = Binding {
        environment: Some("staging".into()),
        ..restore()
    };
    let other_db = Binding {
        database: Some("d2".into()),
        ..restore()
    };
    let changed_backup = Binding {
        backup: Some(BackupRef {
            sha256: "bb".repeat(32),
            ..restore().backup.unwrap()
        }),
        ..restore()
    };
    let newer_backup = Binding {
        backup: Some(BackupRef {
            id: "backup-20261207-095959".into(),
            sha256: "aa".repeat(32),
        }),
        ..restore()
    };
    for (wanted, says) in [
        (other_args, "--no-safety-backup"),
        (other_sub, "not for this command"),
        (other_env, "changes `staging`"),
        (other_db, "database URL"),
        (changed_backup, "changed since"),
        (newer_backup, "backup-20261207-095959"),
    ] {
        let id = a.issue(restore(), None, at()).unwrap();
        let why = refusal(a.consume(&id, &wanted, None, at()));
        assert!(why.contains(says), "{says}: {why}");
        // The wrong try spent it: the command it was given for is refused now too.
        assert!(refusal(a.consume(&id, &restore(), None, at())).contains("used already"));
    }
}

#[test]
fn an_approval_from_another_session_is_refused() {
    let (_d, a) = setup();
    let id = a.issue(restore(), Some("s1"), at()).unwrap();
    assert!(refusal(a.consume(&id, &restore(), Some("s2"), at())).contains("another"));
    // A run that says no session is not in the one it was given in.
    let id = a.issue(restore(), Some("s1"), at()).unwrap();
    assert!(refusal(a.consume(&id, &restore(), None, at())).contains("another"));
    // One given where the hook was told no session is taken in any.
    let id = a.issue(restore(), None, at()).unwrap();
    a.consume(&id, &restore(), Some("s2"), at()).unwrap();
}

#[test]
fn an_id_that_is_not_one_is_refused_before_any_path_is_made_of_it() {
    let (d, a) = setup();
    let outside = d.path().join("victim.json");
    fs::write(&outside, "keep").unwrap();
    a.issue(restore(), None, at()).unwrap();
    for id in [
        "",
        "../victim",
        "../../etc/passwd",
        "0123456789abcdef0123456789ABCDEF",
        "0123456789abcdef0123456789abcde",
        "0123456789abcdef0123456789abcdef0",
        "0123456789abcdef/123456789abcdef",
        "0123456789abcdef0123456789abcde\n",
    ] {
        let why = refusal(a.consume(id, &restore(), None, at()));
        assert!(why.contains("not an approval"), "{id:?}: {why}");
    }
    assert_eq!(fs::read_to_string(&outside).unwrap(), "keep");
    assert_eq!(files_in(&a).len(), 1, "the real approval is untouched");
}

#[test]
fn a_planted_link_or_a_file_others_can_read_is_no_approval() {
    let (d, a) = setup();
    // A valid approval's content, kept outside, and a link to it under a fresh ID.
    let real = a.issue(restore(), None, at()).unwrap();
    let elsewhere = d.path().join("elsewhere.json");
    fs::copy(a.path_of(&real), &elsewhere).unwrap();
    let text = fs::read_to_string(&elsewhere).unwrap();
    let planted = "0123456789abcdef0123456789abcdef";
    fs::write(&elsewhere, text.replace(&real, planted)).unwrap();
    fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&elsewhere, a.path_of(planted)).unwrap();
    assert!(refusal(a.consume(planted, &restore(), None, at())).contains("link"));
    assert!(elsewhere.exists(), "the link's target is never removed");

    // The same record as a file of its own, readable by others.
    let loose = "fedcba9876543210fedcba9876543210";
    fs::write(a.path_of(loose), text.replace(&real, loose)).unwrap();
    fs::set_permissions(a.path_of(loose), fs::Permissions::from_mode(0o644)).unwrap();
    assert!(refusal(a.consume(loose, &restore(), None, at())).contains("private"));

    // Written by hand with mode 0600, it is taken: the same user can always do this, which is
    // why the guard is against accidents, not a hostile process (module docs).
    let by_hand = "00000000000000000000000000000001";
    fs::write(a.path_of(by_hand), text.replace(&real, by_hand)).unwrap();
    fs::set_permissions(a.path_of(by_hand), fs::Permissions::from_mode(0o600)).unwrap();
    a.consume(by_hand, &restore(), None, at()).unwrap();
}

#[test]
fn a_linked_or_shared_approvals_directory_is_refused() {
    let (d, a) = setup();
    let away = d.path().join("away");
    fs::create_dir(&away).unwrap();
    std::os::unix::fs::symlink(&away, &a.dir).unwrap();
    assert!(a.issue(restore(), None, at()).is_err());
    let why = refusal(a.consume("0123456789abcdef0123456789abcdef", &restore(), None, at()));
    assert!(why.contains("private directory"), "{why}");
    fs::remove_file(&a.dir).unwrap();
    fs::create_dir(&a.dir).unwrap();
    fs::set_permissions(&a.dir, fs::Permissions::from_mode(0o777)).unwrap();
    assert!(a.issue(restore(), None, at()).is_err());
}

#[test]
fn of_many_runs_racing_for_one_approval_exactly_one_gets_it() {
    let (_d, a) = setup();
    for _ in 0..20 {
        let id = a.issue(restore(), None, at()).unwrap();
        let won: usize = std::thread::scope(|s| {
            let runs: Vec<_> = (0..8)
                .map(|_| s.spawn(|| a.consume(&id, &restore(), None, at()).is_ok()))
                .collect();
            runs.into_iter()
                .map(|r| usize::from(r.join().unwrap()))
                .sum()
        });
        assert_eq!(won, 1);
    }
    assert!(files_in(&a).is_empty(), "{:?}", files_in(&a));
}

#[test]
fn issuing_removes_the_approvals_that_expired() {
    let (_d, a) = setup();
    let old = a.issue(restore(), None, at()).unwrap();
    let fresh = a
        .issue(restore(), None, at() + Duration::minutes(5))
        .unwrap();
    let later = at() + Duration::minutes(LIFETIME_MINUTES + 1);
    let newest = a.issue(restore(), None, later).unwrap();
    let left = files_in(&a);
    assert!(!left.contains(&format!("{old}.json")), "{left:?}");
    assert!(left.contains(&format!("{fresh}.json")), "{left:?}");
    assert!(left.contains(&format!("{newest}.json")), "{left:?}");
}
