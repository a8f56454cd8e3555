//! The doctor driven as library calls on an SQLite project: what it finds, what a repair fixes,
//! and that each finding is told as it is made.

use std::fs;

use super::*;
use crate::ops::testkit::{Project, at, backed_up};

/// A project with one environment, whose database is there.
fn project() -> Project {
    Project::with_config(
        r#"
[environments.dev]
url = "sqlite:db/dev.sqlite3"
"#,
    )
}

/// Examines the project at `p`, collecting what the callback was told.
fn examined(p: &Project, repair: bool) -> (Examination, Vec<String>) {
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let mut told = Vec::new();
    let exam = examine(&session, repair, &mut |f| {
        told.push(format!("{:?} {}: {}", f.level, f.check, f.detail));
    })
    .unwrap();
    (exam, told)
}

fn problems(exam: &Examination) -> Vec<String> {
    exam.findings
        .iter()
        .filter(|f| f.level == Level::Problem)
        .map(|f| format!("{}: {}", f.check, f.detail))
        .collect()
}

#[test]
fn a_sound_project_has_no_problems_and_each_finding_is_told_as_it_is_made() {
    let p = project();
    backed_up(&p.ctx(at()).session().unwrap(), "dev");
    let (exam, told) = examined(&p, false);
    assert_eq!(problems(&exam), Vec::<String>::new());
    assert_eq!(exam.problems_left, 0);
    assert!(!exam.repaired);
    let listed: Vec<String> = exam
        .findings
        .iter()
        .map(|f| format!("{:?} {}: {}", f.level, f.check, f.detail))
        .collect();
    assert_eq!(told, listed, "told in the order found");
    assert!(
        listed
            .iter()
            .any(|f| f.starts_with("Ok environment dev: sqlite:")),
        "{listed:?}"
    );
    assert!(
        listed.contains(&"Ok registry: 1 entries".to_string()),
        "{listed:?}"
    );
}

#[test]
fn data_gone_is_a_problem_a_repair_fixes_by_marking_it_missing() {
    let p = project();
    let session_ctx = p.ctx(at());
    let session = session_ctx.session().unwrap();
    let record = backed_up(&session, "dev");
    fs::remove_file(session.store.locate(&record).unwrap().data).unwrap();

    let (exam, _) = examined(&p, false);
    assert_eq!(
        problems(&exam),
        [format!(
            "backup {}: its data {} is gone",
            record.id, record.file
        )]
    );
    assert_eq!((exam.problems_left, exam.fixable), (1, 1));

    let (repaired, _) = examined(&p, true);
    assert!(repaired.repaired);
    assert_eq!(repaired.problems_left, 0);
    let registry = session.store.load().unwrap();
    assert_eq!(registry.find(&record.id).unwrap().status, Status::Missing);
    assert!(
        p.seen()
            .contains(&"ok: Registry rebuilt: 1 entries (1 marked missing)".to_string()),
        "{:?}",
        p.seen()
    );
    assert!(
        p.history().iter().any(|h| h.starts_with("\"repair\" true")),
        "{:?}",
        p.history()
    );
}

#[test]
fn a_manifest_without_its_entry_is_registered_again_by_a_repair() {
    let p = project();
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let record = backed_up(&session, "dev");
    session
        .store
        .update(|reg| {
            reg.backups.clear();
            Ok(())
        })
        .unwrap();

    let (exam, _) = examined(&p, false);
    assert_eq!(
        problems(&exam),
        [format!(
            "backup {}: a manifest with no registry entry",
            record.id
        )]
    );
    let (repaired, _) = examined(&p, true);
    assert!(repaired.repaired && repaired.problems_left == 0);
    let registry = session.store.load().unwrap();
    assert_eq!(registry.find(&record.id).unwrap().sha256, record.sha256);
}

#[test]
fn a_malformed_registry_is_kept_aside_and_rebuilt_from_the_manifests() {
    let p = project();
    let ctx = p.ctx(at());
    let session = ctx.session().unwrap();
    let record = backed_up(&session, "dev");
    let registry = session.store.registry_path();
    fs::write(&registry, "{ not json").unwrap();

    let (exam, _) = examined(&p, false);
    assert!(
        problems(&exam).iter().any(|f| f.starts_with("registry: ")),
        "{:?}",
        problems(&exam)
    );
    let (repaired, _) = examined(&p, true);
    assert!(repaired.repaired, "{:?}", problems(&repaired));
    assert!(session.store.load().unwrap().find(&record.id).is_some());
    let aside = format!("backups.json.corrupt-{}", at().format("%Y%m%d-%H%M%S"));
    assert_eq!(
        fs::read_to_string(p.backups().join(aside)).unwrap(),
        "{ not json"
    );
}

#[test]
fn data_nobody_names_is_a_warning_and_never_removed() {
    let p = project();
    backed_up(&p.ctx(at()).session().unwrap(), "dev");
    let stray = p.backups().join("dev/backup-20200101-000000.sqlite3.gz");
    fs::write(&stray, "not ours to judge").unwrap();
    let (exam, _) = examined(&p, true);
    let warnings: Vec<&Finding> = exam
        .findings
        .iter()
        .filter(|f| f.level == Level::Warning && f.check == "backup directory")
        .collect();
    assert_eq!(warnings.len(), 1, "{:?}", exam.findings);
    assert!(
        warnings[0]
            .detail
            .ends_with("is neither registered nor described by a manifest"),
        "{:?}",
        warnings[0]
    );
    assert!(!exam.repaired, "a warning is nothing to repair");
    assert!(stray.exists());
}
