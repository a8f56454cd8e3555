//! What `doctor` checks: each environment's URL, connection, tools and what a restore into it
//! would meet; the backup directory's free space; the off-site storage; scratch databases left by
//! killed runs; whether the faber-db plugin Claude Code has installed is this binary's version;
//! and whether the registry, the manifests and the files agree. With `repair`, the
//! registry is rebuilt from the manifests.

mod files;
mod plugin;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fs;

use serde::Serialize;

use crate::error::{Remedy, Result};
use crate::locate::Located;
use crate::provider::{Provider, ProviderKind};
use crate::registry::{BackupRecord, RegistryFile, Status};
use crate::session::Session;

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    /// Worth knowing; nothing to fix.
    Warning,
    /// Fails the check.
    Problem,
}

/// One finding.
#[derive(Debug)]
pub struct Finding {
    pub level: Level,
    pub check: String,
    pub detail: String,
    /// What to do about it, when that is a command: the command layer says it after the detail.
    pub remedy: Option<Remedy>,
}

/// What the examination found, and what a repair did.
#[derive(Debug)]
pub struct Examination {
    pub findings: Vec<Finding>,
    /// The registry was rebuilt.
    pub repaired: bool,
    /// How many problems a repair fixes (or fixed): the registry itself, entries without data,
    /// manifests without entries, entries outside the backup directories.
    pub fixable: usize,
    /// The problems still there after this run.
    pub problems_left: usize,
}

/// Examines the project; `seen` is told each finding as it is made. With `repair`, rebuilds
/// the registry when that fixes something.
pub fn examine(
    session: &Session,
    repair: bool,
    seen: &mut dyn FnMut(&Finding),
) -> Result<Examination> {
    let mut d = Doctor {
        session,
        findings: Vec::new(),
        seen,
    };
    for env in session.config.environments.values() {
        d.environment(env);
    }
    d.free_space();
    d.offsite();
    d.plugin();
    d.scratch_databases(repair);
    let registry = d.registry();
    let problems = d
        .findings
        .iter()
        .filter(|f| f.level == Level::Problem)
        .count();
    let fixable = registry.fixable();
    let registry_broken = registry.broken();
    let mut repaired = false;
    if repair && fixable > 0 && (registry.loaded || registry_broken) {
        let dir = session.store.dir().to_path_buf();
        let rebuilt = files::repair(session, &dir, registry_broken)?;
        session.events().ok(&format!(
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
    let problems_left = if repaired {
        problems - fixable
    } else {
        problems
    };
    Ok(Examination {
        findings: d.findings,
        repaired,
        fixable,
        problems_left,
    })
}

struct Doctor<'s, 'f> {
    session: &'s Session<'s>,
    findings: Vec<Finding>,
    seen: &'f mut dyn FnMut(&Finding),
}

/// What the registry check found that a repair fixes.
struct RegistryState {
    loaded: bool,
    /// Written by a newer faber-db: not this one's to rewrite.
    newer: bool,
    missing: usize,
    unregistered: usize,
    no_manifest: usize,
    refused: usize,
}

impl RegistryState {
    fn broken(&self) -> bool {
        !self.loaded && !self.newer
    }

    fn fixable(&self) -> usize {
        usize::from(self.broken())
            + self.missing
            + self.unregistered
            + self.no_manifest
            + self.refused
    }
}

impl Doctor<'_, '_> {
    fn say(&mut self, level: Level, check: String, detail: String) {
        self.advise(level, check, detail, None);
    }

    /// [`say`](Self::say), with what to do about it.
    fn advise(&mut self, level: Level, check: String, detail: String, remedy: Option<Remedy>) {
        let finding = Finding {
            level,
            check,
            detail,
            remedy,
        };
        (self.seen)(&finding);
        self.findings.push(finding);
    }

    /// The environment's URL, connection and tools, and what a restore into it would meet.
    fn environment(&mut self, env: &crate::config::Environment) {
        let check = format!("environment {}", env.name);
        let (url, db) = match self.session.provider(env) {
            Ok(opened) => opened,
            Err(e) => return self.say(Level::Problem, check, e.one_line()),
        };
        let shown = url.redacted();
        let version = match db.check_connection() {
            Ok(version) => version,
            Err(e) => return self.say(Level::Problem, check, format!("{shown}: {}", e.one_line())),
        };
        match db.tools_report() {
            Ok(Some(t)) => self.say(Level::Ok, check, format!("{shown} ({version}); {t}")),
            Ok(None) => self.say(Level::Ok, check, format!("{shown} ({version})")),
            Err(e) => self.say(Level::Problem, check, format!("{shown}: {}", e.one_line())),
        }
        self.restore_into(env, db.as_ref());
    }

    /// What a restore into `db` would meet now: the pre-flight's restore tools and other
    /// sessions. A connected application is how things normally are: a warning, not a problem.
    fn restore_into(&mut self, env: &crate::config::Environment, db: &dyn Provider) {
        let needs = crate::preflight::Needs {
            migrate_command: None,
            method: (db.kind() != ProviderKind::Sqlite)
                .then(|| crate::provider::method::shown(db.restore_privileges(), false)),
            backs_up: false,
            restore_tools: true,
            writes: Vec::new(),
            staging: None,
            sessions: crate::preflight::Sessions::Refuse,
        };
        let preflight = match crate::preflight::run(db, needs) {
            Ok(p) => p,
            Err(e) => {
                return self.say(
                    Level::Problem,
                    format!("restore into {}", env.name),
                    e.one_line(),
                );
            }
        };
        for c in preflight.checks.iter().filter(|c| c.name != "connection") {
            let (level, detail) = match (c.ok, c.name) {
                (true, _) => (Level::Ok, c.detail.clone()),
                (false, "sessions") => (
                    Level::Warning,
                    format!(
                        "{}; a restore, a rollback or migrate's automatic restore must end them \
                         (--terminate-connections, terminate_connections_on_rollback)",
                        c.detail
                    ),
                ),
                (false, _) => (Level::Problem, c.detail.clone()),
            };
            self.say(
                level,
                format!("restore into {}: {}", env.name, c.name),
                detail,
            );
        }
    }

    fn free_space(&mut self) {
        let dir = self.session.store.dir().to_path_buf();
        match fs4::available_space(files::existing_ancestor(&dir)) {
            Ok(free) => self.say(
                if free < 1 << 30 {
                    Level::Warning
                } else {
                    Level::Ok
                },
                "free space".into(),
                format!(
                    "{} free at {}",
                    crate::human::size(free),
                    self.session.ctx.show(&dir)
                ),
            ),
            Err(e) => self.say(Level::Problem, "free space".into(), e.to_string()),
        }
    }

    /// Whether this binary is the version of the faber-db plugin Claude Code has installed.
    fn plugin(&mut self) {
        let Some(dir) = plugin::config_dir() else {
            return;
        };
        let check = "Claude Code plugin";
        match plugin::installed(&dir, &self.session.config.root) {
            Ok(list) => {
                for (level, detail) in plugin::findings(&list, crate::build_info::VERSION) {
                    self.say(level, check.into(), detail);
                }
            }
            Err(e) => self.say(Level::Warning, check.into(), e),
        }
    }

    /// The off-site storage: credentials found, bucket reachable and listable.
    fn offsite(&mut self) {
        let Some(offsite) = &self.session.config.offsite else {
            return;
        };
        let listed = crate::offsite::open_config(offsite, &self.session.vars)
            .and_then(|bucket| Ok((bucket.list()?, bucket.credentials())));
        match listed {
            Ok((objects, credentials)) => self.say(
                Level::Ok,
                "off-site storage".into(),
                format!(
                    "{} reachable, {} objects ({}){}",
                    offsite.url(),
                    objects.len(),
                    crate::human::size(objects.iter().map(|o| o.size_bytes).sum()),
                    credentials
                        .map(|c| format!("; credentials from {c}"))
                        .unwrap_or_default()
                ),
            ),
            Err(e) => self.say(Level::Problem, "off-site storage".into(), e.one_line()),
        }
    }

    /// Scratch databases that killed runs left on the servers (see crate::scratch). A repair
    /// drops those the ledger proves ours; data a restore set aside without its safety backup
    /// is never dropped: it is the only copy. What is gone is forgotten first (a human dropped
    /// it); only a repair drops anything. A server that cannot be reached was reported above.
    fn scratch_databases(&mut self, repair: bool) {
        let events = self.session.events();
        let mut unmarked = Vec::new();
        for env in self.session.config.environments.values() {
            let Ok((_, db)) = self.session.provider(env) else {
                continue;
            };
            if db.check_connection().is_err() {
                continue;
            }
            match db.sweep_scratch(repair) {
                Ok(swept) => {
                    for name in swept.dropped {
                        events.ok(&format!(
                            "Dropped database {name}, left by an interrupted run"
                        ));
                    }
                    unmarked.extend(swept.unmarked);
                    for (name, why) in swept.failed {
                        events.warn(&format!("database {name} could not be dropped: {why}"));
                    }
                }
                Err(e) => self.say(
                    Level::Problem,
                    format!("scratch databases of {}", env.name),
                    e.one_line(),
                ),
            }
        }
        for (entry, alive) in crate::scratch::Ledger::new(self.session.store.dir()).all() {
            if alive {
                continue;
            }
            let check = format!("database {} on {}", entry.name, entry.server);
            if unmarked.contains(&entry.name) {
                self.say(
                    Level::Warning,
                    check,
                    "recorded by a run killed before it could mark it as faber-db's: it is \
                     never dropped, since nothing proves it is ours. If it is, drop it by hand; \
                     faber-db forgets it once it is gone"
                        .into(),
                );
            } else if entry.may_drop() {
                self.advise(
                    Level::Warning,
                    check,
                    format!(
                        "a scratch database ({}) left by a killed run",
                        entry.purpose.as_str()
                    ),
                    Some(Remedy::DropScratch),
                );
            } else {
                self.say(
                    Level::Problem,
                    check,
                    "holds the data a restore replaced, set aside before its safety backup was \
                     taken (the run was stopped): the only copy of it. Back it up, rename it to \
                     keep it, or drop it; faber-db forgets it once it is gone"
                        .into(),
                );
            }
        }
    }

    /// The registry, and what lies in the backup directory.
    fn registry(&mut self) -> RegistryState {
        let session = self.session;
        let manifests = files::read_manifests(session);
        let registry = session.store.load();
        let newer = files::newer_registry(&session.store.registry_path());
        match (&registry, newer) {
            (Ok(reg), _) => self.say(
                Level::Ok,
                "registry".into(),
                format!("{} entries", reg.backups.len()),
            ),
            (Err(e), Some(v)) => self.say(
                Level::Problem,
                "registry".into(),
                format!(
                    "{} (version {v}: upgrade faber-db; --repair leaves it alone)",
                    e.one_line()
                ),
            ),
            (Err(e), None) => self.say(Level::Problem, "registry".into(), e.one_line()),
        }
        let entries: Vec<BackupRecord> = registry
            .as_ref()
            .map(|reg: &RegistryFile| reg.backups.clone())
            .unwrap_or_default();
        let (located, refused) = self.locate(&entries);
        let missing = self.gone(&located);
        self.damaged(&located);
        let no_manifest = self.without_manifest(&located);
        let known: BTreeSet<&str> = entries.iter().map(|b| b.id.as_str()).collect();
        let unregistered: Vec<&BackupRecord> = manifests
            .values()
            .filter(|m| !known.contains(m.id.as_str()))
            .collect();
        for m in &unregistered {
            self.say(
                Level::Problem,
                format!("backup {}", m.id),
                "a manifest with no registry entry".into(),
            );
        }
        self.unfinished_removals(&known);
        for f in files::orphan_data(session, &entries, &manifests) {
            self.say(
                Level::Warning,
                "backup directory".into(),
                format!(
                    "{} is neither registered nor described by a manifest",
                    session.ctx.show(&f)
                ),
            );
        }
        RegistryState {
            loaded: registry.is_ok(),
            newer: newer.is_some(),
            missing,
            unregistered: unregistered.len(),
            no_manifest,
            refused,
        }
    }

    /// Where each entry's files are. Entries naming a file where faber-db keeps no backups
    /// are problems: nothing of them is touched, and a repair takes them out of the registry.
    fn locate<'e>(
        &mut self,
        entries: &'e [BackupRecord],
    ) -> (Vec<(&'e BackupRecord, Located)>, usize) {
        let locator = self.session.store.locator();
        let mut refused = 0;
        let mut located = Vec::new();
        for b in entries {
            match locator.locate(&b.id, &b.environment, &b.file) {
                Ok(l) => located.push((b, l)),
                Err(e) => {
                    refused += 1;
                    self.say(
                        Level::Problem,
                        format!("backup {}", b.id),
                        e.message().to_string(),
                    );
                }
            }
        }
        (located, refused)
    }

    /// Entries whose data is gone with no off-site copy to fetch it from.
    fn gone(&mut self, located: &[(&BackupRecord, Located)]) -> usize {
        let mut missing = 0;
        for (b, l) in located {
            let off_site = b.offsite.as_ref().is_some_and(|r| r.is_uploaded());
            if b.status != Status::Missing && !off_site && fs::symlink_metadata(&l.data).is_err() {
                missing += 1;
                self.say(
                    Level::Problem,
                    format!("backup {}", b.id),
                    format!("its data {} is gone", b.file),
                );
            }
        }
        missing
    }

    /// A backup a check found damaged, or whose file is no longer the size it was written at
    /// (a cheap look: `verify` reads it whole).
    fn damaged(&mut self, located: &[(&BackupRecord, Located)]) {
        for (b, l) in located {
            if b.status == Status::Corrupt {
                self.advise(
                    Level::Problem,
                    format!("backup {}", b.id),
                    "it is marked corrupt".into(),
                    Some(Remedy::VerifyAgain { id: b.id.clone() }),
                );
            } else if b.status == Status::Valid
                && b.files.is_empty()
                && let Ok(meta) = fs::metadata(&l.data)
                && meta.is_file()
                && meta.len() != b.size_bytes
            {
                self.advise(
                    Level::Problem,
                    format!("backup {}", b.id),
                    format!(
                        "its file is {} bytes, not the {} it was written with",
                        meta.len(),
                        b.size_bytes,
                    ),
                    Some(Remedy::VerifyDamage { id: b.id.clone() }),
                );
            }
        }
    }

    /// Registered backups whose manifest is gone: the registry is then their only record.
    fn without_manifest(&mut self, located: &[(&BackupRecord, Located)]) -> usize {
        let mut count = 0;
        for (b, l) in located {
            let has_data = fs::symlink_metadata(&l.data).is_ok();
            if has_data && !l.manifest.exists() {
                count += 1;
                self.say(
                    Level::Problem,
                    format!("backup {}", b.id),
                    "its manifest is gone (the registry holds its only record)".into(),
                );
            }
        }
        count
    }

    /// Removals that did not finish: the sweep at the start of this run tried those that were
    /// left here; what an off-site copy still holds waits for the storage.
    fn unfinished_removals(&mut self, known: &BTreeSet<&str>) {
        for id in &crate::removal::tombstoned(&self.session.store) {
            let here = known.contains(id.as_str());
            let detail = if here {
                "its removal was interrupted and could not be finished yet (see the warnings above)"
            } else {
                "removed here; its off-site copy is still to be removed (the next `cleanup` or \
                 `delete` does it)"
            };
            self.say(
                if here { Level::Problem } else { Level::Warning },
                format!("backup {id}"),
                detail.into(),
            );
        }
    }
}
