//! The databases faber-db creates for itself on a server — a restore's staging copy, a deep
//! verify's trial load, a migration's rehearsal, the data a restore replaced — and the
//! project's ledger of them.
//!
//! An SQLite rehearsal's copy is a file in the ledger's own directory, recorded the same way.
//!
//! A name is no proof: a user's `shop__faber_archive_2023` looks like ours. So every scratch
//! database is recorded in `<backup dir>/.scratch/<token>.json` before it is created, and the
//! database itself carries the record's random token (its marker). The run that made it holds
//! the record locked for as long as it lives. A database is dropped by a sweep only when the
//! project's ledger has it, the run that made it is dead (its record is not locked), and the
//! database still carries that record's marker.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Kind, Result};
use crate::fsutil;

/// The ledger's directory in the backup directory (no environment's name begins with a dot).
pub const LEDGER_DIR: &str = ".scratch";

/// What a scratch database is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    /// A restore's staging copy, swapped in at commit.
    Restore,
    /// A deep verify's trial load.
    Verify,
    /// The data a restore replaced, set aside until its safety backup is taken.
    Replaced,
    /// A migration's rehearsal: a backup loaded for the migrate command to run against, dropped
    /// when the rehearsal ends.
    Rehearse,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Restore => "restore",
            Purpose::Verify => "verify",
            Purpose::Replaced => "replaced",
            Purpose::Rehearse => "rehearse",
        }
    }

    /// The part of a scratch database's name that says what it is for:
    /// `<target>__faber_<part>_<random>`.
    pub fn name_part(self) -> &'static str {
        match self {
            Purpose::Replaced => "old",
            other => other.as_str(),
        }
    }
}

/// One scratch database, as its record says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The database's name on the server.
    pub name: String,
    /// Which server: `postgres://user@host:port`, no password.
    pub server: String,
    pub purpose: Purpose,
    /// The random marker the database carries.
    pub token: String,
    pub created_at: DateTime<Utc>,
    pub pid: u32,
    pub host: Option<String>,
    /// For replaced data: whether it is safe elsewhere (its safety backup registered, or none
    /// was asked for). Until then no sweep drops it.
    #[serde(default)]
    pub disposable: bool,
}

impl Entry {
    /// The text a database carries to show it is this record's.
    pub fn marker(&self) -> String {
        marker(&self.token)
    }

    /// Whether a sweep may drop it once its run is dead.
    pub fn may_drop(&self) -> bool {
        self.purpose != Purpose::Replaced || self.disposable
    }
}

/// What a server says of a recorded scratch database that exists.
#[derive(Debug)]
pub struct Seen {
    /// Its comment, where the marker is (`None` on a server that keeps no comments).
    pub comment: Option<String>,
    /// Whether a session uses it.
    pub in_use: bool,
}

/// What a sweep of a server's scratch databases found.
#[derive(Debug, Default)]
pub struct Sweep {
    /// Dropped: the ledger's, dead, marked, unused, not the only copy of anything.
    pub dropped: Vec<String>,
    /// Recorded by a run killed before it could mark them: they cannot be proved faber-db's, so
    /// they are never dropped.
    pub unmarked: Vec<String>,
    /// To be dropped, but the server refused (name, why): left for a later run, never a reason
    /// for this one to fail.
    pub failed: Vec<(String, String)>,
}

/// The marker text for `token`.
pub fn marker(token: &str) -> String {
    format!("faber-db scratch {token}")
}

/// The project's ledger of scratch databases.
#[derive(Debug, Clone)]
pub struct Ledger {
    dir: PathBuf,
}

/// A record this run holds: the database it names is this run's until the record is released.
#[derive(Debug)]
pub struct Claim {
    entry: Entry,
    path: PathBuf,
    file: File,
}

impl Ledger {
    /// The ledger of the backup directory `backup_dir`.
    pub fn new(backup_dir: &Path) -> Ledger {
        Ledger {
            dir: backup_dir.join(LEDGER_DIR),
        }
    }

    /// The ledger's directory: faber-db's own, where nothing else is kept (an SQLite
    /// rehearsal's copy is made there).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The ledger a provider was given, or the error that says why it may create no scratch
    /// database without one (outside a project).
    pub fn required(ledger: Option<&Ledger>) -> Result<&Ledger> {
        ledger.ok_or_else(|| {
            Error::config("scratch databases are created only for a project's environment")
        })
    }

    /// Records scratch database `name` on `server` for `purpose`, held by this run, before it is
    /// created. Fails (and nothing is to be created) when the record cannot be written.
    pub fn claim(&self, server: &str, purpose: Purpose, name: &str) -> Result<Claim> {
        fsutil::create_private_dir(&self.dir)?;
        let token = random_token()?;
        let path = self.dir.join(format!("{token}.json"));
        let entry = Entry {
            name: name.to_string(),
            server: server.to_string(),
            purpose,
            token,
            created_at: Utc::now(),
            pid: std::process::id(),
            host: gethostname::gethostname().into_string().ok(),
            disposable: false,
        };
        let failed = |e| Error::io(Kind::Tool, "cannot record a scratch database in", &path, e);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(failed)?;
        file.lock().map_err(failed)?;
        let shown = path.clone();
        let mut claim = Claim { entry, path, file };
        claim
            .write()
            .map_err(|e| Error::io(Kind::Tool, "cannot record a scratch database in", &shown, e))?;
        Ok(claim)
    }

    /// The records of `server` whose runs are dead, each now held by this run. A run is dead
    /// when its record is not locked, it ran on this host, and its process is gone: a lock says
    /// nothing across hosts, or of a record copied from another checkout.
    pub fn dead(&self, server: &str) -> Vec<Claim> {
        self.records()
            .into_iter()
            .filter_map(|path| {
                let file = OpenOptions::new().read(true).write(true).open(&path).ok()?;
                file.try_lock().ok()?;
                let entry = read_entry(&file)?;
                (entry.server == server && run_is_gone(&entry)).then_some(Claim {
                    entry,
                    path,
                    file,
                })
            })
            .collect()
    }

    /// The sweep of `server`'s scratch databases that killed runs left: each record of a dead
    /// run is looked up with `look`; one whose database is gone is forgotten, one whose database
    /// does not carry the record's marker is reported (never dropped), and — with `drop` — one
    /// that is marked, unused and not the only copy of anything is dropped with `drop_db` and
    /// forgotten.
    pub fn sweep(
        &self,
        server: &str,
        drop: bool,
        look: impl Fn(&str) -> Result<Option<Seen>>,
        drop_db: impl Fn(&str) -> Result<()>,
    ) -> Result<Sweep> {
        let mut swept = Sweep::default();
        for claim in self.dead(server) {
            let entry = claim.entry().clone();
            let Some(seen) = look(&entry.name)? else {
                // Gone already: dropped, or it became the target at a swap.
                claim.release();
                continue;
            };
            if seen.comment.as_deref() != Some(entry.marker().as_str()) {
                swept.unmarked.push(entry.name);
                continue;
            }
            if !drop || seen.in_use || !entry.may_drop() {
                continue;
            }
            match drop_db(&entry.name) {
                Ok(()) => {
                    claim.release();
                    swept.dropped.push(entry.name);
                }
                Err(e) => swept.failed.push((entry.name, e.one_line())),
            }
        }
        Ok(swept)
    }

    /// Every record, and whether its run may still be alive (its record locked, its process
    /// there, or it ran on another host): what `doctor` shows.
    pub fn all(&self) -> Vec<(Entry, bool)> {
        self.records()
            .into_iter()
            .filter_map(|path| {
                let file = File::open(&path).ok()?;
                let locked = file.try_lock().is_err();
                let entry = read_entry(&file)?;
                let alive = locked || !run_is_gone(&entry);
                Some((entry, alive))
            })
            .collect()
    }

    /// The attachment kept beside `entry`'s record, if any.
    pub fn attachment_of(&self, entry: &Entry) -> Option<PathBuf> {
        let path = self.dir.join(format!("{}.sql", entry.token));
        path.is_file().then_some(path)
    }

    fn records(&self) -> Vec<PathBuf> {
        fsutil::file_names(&self.dir)
            .into_iter()
            .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
            .map(|n| self.dir.join(n))
            .collect()
    }
}

impl Claim {
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// The replaced data is safe elsewhere now: a sweep may drop it after this run.
    pub fn mark_disposable(&mut self) -> io::Result<()> {
        self.entry.disposable = true;
        self.write()
    }

    /// Keeps `bytes` beside the record (`<token>.sql`), synced: what must outlive a kill
    /// before it is in the database (the definitions of what a restore replaced). Goes with the
    /// record.
    pub fn attach(&self, bytes: &[u8]) -> io::Result<PathBuf> {
        let path = attachment(&self.path);
        fsutil::write_atomic(&path, bytes).map_err(|e| io::Error::other(e.one_line()))?;
        Ok(path)
    }

    /// The database is gone (or was never created): its record goes.
    pub fn release(self) {
        let _ = fs::remove_file(attachment(&self.path));
        let _ = fs::remove_file(&self.path);
    }

    /// Writes the record into its (locked) file, in place: replacing the file would lose the
    /// lock.
    fn write(&mut self) -> io::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(&self.entry).expect("records serialize");
        bytes.push(b'\n');
        self.file.set_len(0)?;
        self.file.rewind()?;
        self.file.write_all(&bytes)?;
        self.file.sync_all()
    }
}

/// A record released when this value goes: for what goes with it (a staging file removed when
/// its owner drops it).
#[derive(Debug)]
pub struct Released(pub Claim);

impl Drop for Released {
    fn drop(&mut self) {
        let _ = fs::remove_file(attachment(&self.0.path));
        let _ = fs::remove_file(&self.0.path);
    }
}

/// Where a record's attachment is kept.
fn attachment(record: &Path) -> PathBuf {
    record.with_extension("sql")
}

/// Whether the run that wrote `entry` is known to be gone: it ran on this host and no process
/// has its ID. (Another process given the same ID since counts as the run: nothing is dropped.)
fn run_is_gone(entry: &Entry) -> bool {
    let here = gethostname::gethostname().into_string().ok();
    if entry.host != here {
        return false;
    }
    let Ok(pid) = libc::pid_t::try_from(entry.pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let exists = unsafe { libc::kill(pid, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    !exists
}

fn read_entry(mut file: &File) -> Option<Entry> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// 16 random bytes as hex, from the kernel.
pub(crate) fn random_token() -> Result<String> {
    let mut bytes = [0u8; 16];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| Error::io(Kind::Tool, "cannot read", Path::new("/dev/urandom"), e))?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_records_of_dead_runs_are_handed_to_a_sweep() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path());
        let mut live = ledger
            .claim(
                "postgres://u@h:5432",
                Purpose::Replaced,
                "shop__faber_old_1",
            )
            .unwrap();
        assert!(!live.entry().may_drop());
        live.mark_disposable().unwrap();
        assert!(live.entry().may_drop());
        // Held by this run (a lock is per open file): not dead.
        assert!(ledger.dead("postgres://u@h:5432").is_empty());
        let all = ledger.all();
        assert_eq!(all.len(), 1);
        assert!(all[0].1, "alive");
        assert!(all[0].0.disposable, "rewritten in place");
        // The run ends without releasing it: its lock is gone, and so is its process (the
        // record is made to name one that ended), so it is dead, for its server only.
        let path = live.path.clone();
        drop(live);
        // Its lock is gone, but this process (its writer) still runs: alive.
        assert!(ledger.dead("postgres://u@h:5432").is_empty());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone_pid = child.id();
        child.wait().unwrap();
        let rewrite = |f: &dyn Fn(&mut Entry)| {
            let mut entry: Entry =
                serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
            f(&mut entry);
            fs::write(&path, serde_json::to_vec(&entry).unwrap()).unwrap();
        };
        // A record copied from another host says nothing of runs here: never dead.
        rewrite(&|e| {
            e.pid = gone_pid;
            e.host = Some("another-host".into());
        });
        assert!(ledger.dead("postgres://u@h:5432").is_empty());
        assert!(ledger.all()[0].1, "alive, as far as this host can tell");
        rewrite(&|e| e.host = gethostname::gethostname().into_string().ok());
        assert!(ledger.dead("mysql://u@h:3306").is_empty());
        let dead = ledger.dead("postgres://u@h:5432");
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].entry().name, "shop__faber_old_1");
        assert_eq!(
            dead[0].entry().marker(),
            format!("faber-db scratch {}", dead[0].entry().token)
        );
        dead.into_iter().for_each(Claim::release);
        assert!(!path.exists());
    }
}
