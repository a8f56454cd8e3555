//! `faber-db doctor [--repair]`: checks what faber-db depends on — each environment's URL
//! variable, connection and tools, the backup directory's free space — and whether the registry
//! and the files agree. `--repair` rebuilds `backups.json` from the manifests beside the backups
//! (keeping a malformed one as `backups.json.corrupt-<time>`) and marks entries whose files are
//! gone as `missing`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;

use crate::Report;
use crate::error::{Error, Kind, Result};
use crate::fsutil;
use crate::locate::Located;
use crate::registry::{BackupRecord, RegistryFile, Status};
use crate::removal;
use crate::session::Session;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Rebuild the registry from the manifests and mark entries whose files are gone as missing
    #[arg(long)]
    pub repair: bool,
}

/// One finding.
#[derive(Debug, Serialize)]
struct Finding {
    /// `ok`, `warning` or `problem`.
    level: &'static str,
    check: String,
    detail: String,
}

pub fn run(session: &Session, args: DoctorArgs) -> Result<Report> {
    let ui = &session.ctx.ui;
    let mut findings = Vec::new();
    let mut say = |level: &'static str, check: String, detail: String| {
        match level {
            "ok" => ui.ok(format!("{check}: {detail}")),
            "warning" => ui.warn(format!("{check}: {detail}")),
            _ => ui.fail(format!("{check}: {detail}")),
        }
        findings.push(Finding {
            level,
            check,
            detail,
        });
    };

    for env in session.config.environments.values() {
        let check = format!("environment {}", env.name);
        match session.provider(env) {
            Err(e) => say("problem", check, e.one_line()),
            Ok((url, db)) => match db.check_connection() {
                Err(e) => say(
                    "problem",
                    check,
                    format!("{}: {}", url.redacted(), e.one_line()),
                ),
                Ok(version) => {
                    let tools = db.tools_report();
                    match tools {
                        Ok(Some(t)) => {
                            say("ok", check, format!("{} ({version}); {t}", url.redacted()))
                        }
                        Ok(None) => say("ok", check, format!("{} ({version})", url.redacted())),
                        Err(e) => say(
                            "problem",
                            check,
                            format!("{}: {}", url.redacted(), e.one_line()),
                        ),
                    }
                    // What a restore into it would meet now: the pre-flight's restore tools and
                    // other sessions. A connected application is how things normally are: a
                    // warning, not a problem.
                    let needs = crate::preflight::Needs {
                        migrate_command: None,
                        method: (db.kind() != crate::provider::ProviderKind::Sqlite).then(|| {
                            crate::provider::method::shown(db.restore_privileges(), false)
                        }),
                        backs_up: false,
                        restore_tools: true,
                        writes: Vec::new(),
                        staging: None,
                        sessions: crate::preflight::Sessions::Refuse,
                    };
                    match crate::preflight::run(db.as_ref(), needs) {
                        Ok(preflight) => {
                            for c in preflight.checks.iter().filter(|c| c.name != "connection") {
                                let (level, detail) = match (c.ok, c.name) {
                                    (true, _) => ("ok", c.detail.clone()),
                                    (false, "sessions") => (
                                        "warning",
                                        format!(
                                            "{}; a restore, a rollback or migrate's automatic \
                                             restore must end them (--terminate-connections, \
                                             terminate_connections_on_rollback)",
                                            c.detail
                                        ),
                                    ),
                                    (false, _) => ("problem", c.detail.clone()),
                                };
                                say(
                                    level,
                                    format!("restore into {}: {}", env.name, c.name),
                                    detail,
                                );
                            }
                        }
                        Err(e) => say(
                            "problem",
                            format!("restore into {}", env.name),
                            e.one_line(),
                        ),
                    }
                }
            },
        }
    }

    let dir = session.store.dir().to_path_buf();
    match fs4::available_space(existing_ancestor(&dir)) {
        Ok(free) => say(
            if free < 1 << 30 { "warning" } else { "ok" },
            "free space".into(),
            format!(
                "{} free at {}",
                crate::ui::size(free),
                session.ctx.show(&dir)
            ),
        ),
        Err(e) => say("problem", "free space".into(), e.to_string()),
    }

    // The off-site storage: credentials found, bucket reachable and listable.
    if let Some(offsite) = &session.config.offsite {
        let listed =
            crate::offsite::Bucket::open(offsite, &session.vars).and_then(|bucket| bucket.list());
        match listed {
            Ok(objects) => say(
                "ok",
                "off-site storage".into(),
                format!(
                    "{} reachable, {} objects ({})",
                    offsite.url(),
                    objects.len(),
                    crate::ui::size(objects.iter().map(|o| o.size_bytes).sum())
                ),
            ),
            Err(e) => say("problem", "off-site storage".into(), e.one_line()),
        }
    }

    // Scratch databases that killed runs left on the servers (see crate::scratch). A repair
    // drops those the ledger proves ours; data a restore set aside without its safety backup is
    // never dropped: it is the only copy.
    // What is gone is forgotten first (a human dropped it); only a repair drops anything. A
    // server that cannot be reached was reported above.
    let mut unmarked = Vec::new();
    {
        for env in session.config.environments.values() {
            let Ok((_, db)) = session.provider(env) else {
                continue;
            };
            if db.check_connection().is_err() {
                continue;
            }
            match db.sweep_scratch(args.repair) {
                Ok(swept) => {
                    for name in swept.dropped {
                        ui.ok(format!(
                            "Dropped database {name}, left by an interrupted run"
                        ));
                    }
                    unmarked.extend(swept.unmarked);
                    for (name, why) in swept.failed {
                        ui.warn(format!("database {name} could not be dropped: {why}"));
                    }
                }
                Err(e) => say(
                    "problem",
                    format!("scratch databases of {}", env.name),
                    e.one_line(),
                ),
            }
        }
    }
    for (entry, alive) in crate::scratch::Ledger::new(session.store.dir()).all() {
        if alive {
            continue;
        }
        let check = format!("database {} on {}", entry.name, entry.server);
        if unmarked.contains(&entry.name) {
            say(
                "warning",
                check,
                "recorded by a run killed before it could mark it as faber-db's: it is never \
                 dropped, since nothing proves it is ours. If it is, drop it by hand; faber-db \
                 forgets it once it is gone"
                    .into(),
            );
        } else if entry.may_drop() {
            say(
                "warning",
                check,
                format!(
                    "a scratch database ({}) left by a killed run; the next restore or verify \
                     --deep on that server, or `faber-db doctor --repair`, drops it",
                    entry.purpose.as_str()
                ),
            );
        } else {
            say(
                "problem",
                check,
                "holds the data a restore replaced, set aside before its safety backup was \
                 taken (the run was stopped): the only copy of it. Back it up, rename it to keep \
                 it, or drop it; faber-db forgets it once it is gone"
                    .into(),
            );
        }
    }

    // The registry, and what lies in the backup directory.
    let manifests = read_manifests(session);
    let registry = session.store.load();
    let mut repaired = false;
    // A registry of a newer faber-db is not broken: it is not this one's to rewrite.
    let newer = newer_registry(&session.store.registry_path());
    match (&registry, newer) {
        (Ok(reg), _) => say(
            "ok",
            "registry".into(),
            format!("{} entries", reg.backups.len()),
        ),
        (Err(e), Some(v)) => say(
            "problem",
            "registry".into(),
            format!(
                "{} (version {v}: upgrade faber-db; --repair leaves it alone)",
                e.one_line()
            ),
        ),
        (Err(e), None) => say("problem", "registry".into(), e.one_line()),
    }
    let entries: Vec<BackupRecord> = match &registry {
        Ok(reg) => reg.backups.clone(),
        Err(_) => Vec::new(),
    };
    let known: BTreeSet<&str> = entries.iter().map(|b| b.id.as_str()).collect();
    // Entries naming a file where faber-db keeps no backups: nothing of them is touched, and a
    // repair takes them out of the registry.
    let locator = session.store.locator();
    let mut refused = Vec::new();
    let located: Vec<(&BackupRecord, Located)> = entries
        .iter()
        .filter_map(|b| match locator.locate(&b.id, &b.environment, &b.file) {
            Ok(l) => Some((b, l)),
            Err(e) => {
                refused.push(b.id.clone());
                say(
                    "problem",
                    format!("backup {}", b.id),
                    e.message().to_string(),
                );
                None
            }
        })
        .collect();
    let mut missing = Vec::new();
    for (b, l) in &located {
        let off_site = b.remote.as_ref().is_some_and(|r| r.is_uploaded());
        if b.status != Status::Missing && !off_site && fs::symlink_metadata(&l.data).is_err() {
            missing.push(b.id.clone());
            say(
                "problem",
                format!("backup {}", b.id),
                format!("its data {} is gone", b.file),
            );
        }
    }
    // A backup a check found damaged, or whose file is no longer the size it was written at
    // (a cheap look: `verify` reads it whole).
    for (b, l) in &located {
        if b.status == Status::Corrupt {
            say(
                "problem",
                format!("backup {}", b.id),
                format!(
                    "it is marked corrupt; `faber-db verify {}` checks it again",
                    b.id
                ),
            );
        } else if b.status == Status::Valid
            && b.files.is_empty()
            && let Ok(meta) = fs::metadata(&l.data)
            && meta.is_file()
            && meta.len() != b.size_bytes
        {
            say(
                "problem",
                format!("backup {}", b.id),
                format!(
                    "its file is {} bytes, not the {} it was written with; `faber-db verify {}` tells whether it is damaged",
                    meta.len(),
                    b.size_bytes,
                    b.id
                ),
            );
        }
    }
    // A registered backup whose manifest is gone: the registry is then its only record.
    let mut no_manifest = Vec::new();
    for (b, l) in &located {
        let has_data = fs::symlink_metadata(&l.data).is_ok();
        if has_data && !l.manifest.exists() {
            no_manifest.push(b.id.clone());
            say(
                "problem",
                format!("backup {}", b.id),
                "its manifest is gone (the registry holds its only record)".into(),
            );
        }
    }
    let unregistered: Vec<&BackupRecord> = manifests
        .values()
        .filter(|m| !known.contains(m.id.as_str()))
        .collect();
    for m in &unregistered {
        say(
            "problem",
            format!("backup {}", m.id),
            "a manifest with no registry entry".into(),
        );
    }
    // Removals that did not finish: the sweep at the start of this run tried those that were
    // left here; what an off-site copy still holds waits for the storage.
    let tombstoned = removal::tombstoned(&session.store);
    for id in &tombstoned {
        let here = known.contains(id.as_str());
        let detail = if here {
            "its removal was interrupted and could not be finished yet (see the warnings above)"
        } else {
            "removed here; its off-site copy is still to be removed (the next `cleanup` or \
             `delete` does it)"
        };
        say(
            if here { "problem" } else { "warning" },
            format!("backup {id}"),
            detail.into(),
        );
    }
    for f in orphan_data(session, &entries, &manifests) {
        say(
            "warning",
            "backup directory".into(),
            format!(
                "{} is neither registered nor described by a manifest",
                session.ctx.show(&f)
            ),
        );
    }

    let problems = findings.iter().filter(|f| f.level == "problem").count();
    let registry_broken = registry.is_err() && newer.is_none();
    // The problems a repair fixes: the registry itself, entries without data, manifests
    // without entries. Anything else is still a problem after it.
    let fixable = usize::from(registry_broken)
        + missing.len()
        + unregistered.len()
        + no_manifest.len()
        + refused.len();
    if args.repair && fixable > 0 && (registry.is_ok() || registry_broken) {
        let rebuilt = repair(session, &dir, registry_broken)?;
        ui.ok(format!(
            "Registry rebuilt: {} entries ({} marked missing)",
            rebuilt.backups.len(),
            rebuilt
                .backups
                .iter()
                .filter(|b| b.status == Status::Missing)
                .count()
        ));
        repaired = true;
    }
    let mut report = Report::new()
        .with("findings", &findings)
        .with("repaired", repaired);
    let left = if repaired {
        problems - fixable
    } else {
        problems
    };
    if left > 0 {
        report.failure = Some(
            Error::new(
                Kind::Verification,
                format!(
                    "doctor found {}{}",
                    crate::ui::count(left as u64, "problem"),
                    if repaired { " the repair does not fix" } else { "" }
                ),
            )
            .with_hint(if fixable > 0 && !repaired {
                "`faber-db doctor --repair` rebuilds the registry from the manifests; the other problems are in the messages above"
            } else {
                "see the messages above"
            }),
        );
    }
    Ok(report)
}

/// The manifests in the environment directories, and those of the backups written elsewhere
/// (`backup --output-dir`) as recorded, each if it describes the data beside it.
fn read_manifests(session: &Session) -> BTreeMap<String, BackupRecord> {
    let locator = session.store.locator();
    let tombstoned = removal::tombstoned(&session.store);
    let elsewhere = session
        .store
        .other_manifests()
        .into_iter()
        .filter_map(|path| {
            let name = path.file_name()?.to_string_lossy().into_owned();
            Some((name, path))
        });
    session
        .store
        .env_files()
        .into_iter()
        .chain(elsewhere)
        .filter(|(name, _)| name.ends_with(".manifest.json"))
        .filter_map(|(_, path)| {
            let text = fs::read_to_string(&path).ok()?;
            let record = serde_json::from_str::<BackupRecord>(&text).ok()?;
            // A manifest speaks for the data beside it, not for a copy of it elsewhere, and only
            // where this project keeps backups; a backup being removed is not brought back.
            let located = locator
                .locate(&record.id, &record.environment, &record.file)
                .ok()?;
            (fsutil::resolved(&located.manifest) == fsutil::resolved(&path)
                && !tombstoned.contains(&record.id))
            .then_some(record)
        })
        .map(|r| (r.id.clone(), r))
        .collect()
}

/// Backup data in the environment directories that no entry or manifest names.
fn orphan_data(
    session: &Session,
    entries: &[BackupRecord],
    manifests: &BTreeMap<String, BackupRecord>,
) -> Vec<PathBuf> {
    // Compared as they are on disk: an entry may name the directory through another spelling
    // (a linked backup directory).
    let locator = session.store.locator();
    let named: BTreeSet<PathBuf> = entries
        .iter()
        .chain(manifests.values())
        .filter_map(|b| locator.locate(&b.id, &b.environment, &b.file).ok())
        .map(|l| fsutil::resolved(&l.data))
        .collect();
    let mut out: Vec<PathBuf> = session
        .store
        .env_files()
        .into_iter()
        .filter(|(name, path)| {
            name.starts_with("backup-")
                && !name.ends_with(".manifest.json")
                && !name.ends_with(fsutil::PARTIAL_SUFFIX)
                && !named.contains(&fsutil::resolved(path))
        })
        .map(|(_, path)| path)
        .collect();
    out.sort();
    out
}

/// Rebuilds the registry: the entries it still holds (unless it is malformed) and every
/// manifest's, each marked `missing` when its data is gone. A malformed registry is kept aside.
/// Everything is read again under the lock: a backup published or deleted meanwhile counts.
fn repair(session: &Session, dir: &Path, registry_broken: bool) -> Result<RegistryFile> {
    let _lock = session.store.lock()?;
    let manifests = read_manifests(session);
    let entries = if registry_broken {
        Vec::new()
    } else {
        session.store.load()?.backups
    };
    let path = session.store.registry_path();
    if registry_broken && path.exists() {
        let aside = dir.join(format!(
            "{}.corrupt-{}",
            crate::registry::REGISTRY_FILE,
            session.ctx.now.format("%Y%m%d-%H%M%S")
        ));
        fs::rename(&path, &aside)
            .map_err(|e| Error::io(Kind::Config, "cannot move aside", &path, e))?;
        session.ctx.ui.warn(format!(
            "the malformed registry was kept as {}",
            session.ctx.show(&aside)
        ));
    }
    let locator = session.store.locator();
    // An entry counts over its manifest, unless it names a file where faber-db keeps no
    // backups: then the manifest beside the backup's own data (if any) says where it is.
    let mut by_id: BTreeMap<String, BackupRecord> = manifests;
    for b in entries {
        if by_id.contains_key(&b.id) && locator.locate(&b.id, &b.environment, &b.file).is_err() {
            continue;
        }
        by_id.insert(b.id.clone(), b);
    }
    let mut reg = RegistryFile::default();
    for (_, mut b) in by_id {
        let located = match locator.locate(&b.id, &b.environment, &b.file) {
            Ok(l) => l,
            Err(e) => {
                // Not a backup of this project's as it stands: out of the registry, its files
                // (wherever they are) untouched.
                session.ctx.ui.warn(format!(
                    "took {} out of the registry: {}",
                    b.id,
                    e.message()
                ));
                continue;
            }
        };
        if fs::symlink_metadata(&located.data).is_err() {
            b.status = Status::Missing;
        } else if !located.manifest.exists() {
            // The manifest beside the data is written again from the entry.
            fsutil::write_atomic(&located.manifest, &b.manifest_bytes())?;
        }
        reg.backups.push(b);
    }
    reg.backups
        .sort_by(|a, b| a.timestamp.cmp(&b.timestamp).then(a.id.cmp(&b.id)));
    let mut bytes = serde_json::to_vec_pretty(&reg).expect("the registry serializes");
    bytes.push(b'\n');
    fsutil::write_atomic(&path, &bytes)?;
    crate::cmd::log_event(
        session,
        "repair",
        None,
        None,
        true,
        Some(format!("{} entries", reg.backups.len())),
    );
    Ok(reg)
}

/// The version of a registry written by a newer faber-db, if that is what `path` holds.
fn newer_registry(path: &Path) -> Option<u64> {
    let text = fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["version"]
        .as_u64()
        .filter(|&n| n > crate::registry::REGISTRY_VERSION as u64)
}

/// The nearest existing ancestor of `dir` (the backup directory may not exist yet).
fn existing_ancestor(dir: &Path) -> &Path {
    dir.ancestors()
        .find(|d| d.exists())
        .unwrap_or(Path::new("/"))
}
