//! What `status` reports of one environment: its database, whether it answers, its migration
//! state, its backups and what did not finish — gathered, not printed.

use serde::Serialize;

use crate::config::Environment;
use crate::migrations::MigrationState;
use crate::registry::{Drill, RegistryFile, Status};
use crate::session::Session;
use crate::unfinished::{Interrupted, interrupted};

#[derive(Debug, Serialize)]
pub struct EnvStatus {
    pub environment: String,
    pub provider: Option<String>,
    pub url: Option<String>,
    pub url_problem: Option<String>,
    pub protected: bool,
    pub reachable: bool,
    pub server_version: Option<String>,
    pub problem: Option<String>,
    pub migrations: Option<MigrationState>,
    pub newest_backup: Option<String>,
    pub newest_backup_at: Option<chrono::DateTime<chrono::Utc>>,
    pub newest_backup_age_secs: Option<i64>,
    pub backups_count: usize,
    pub valid_backups: usize,
    /// Backups whose row counts differ from their manifests (`mismatch`): kept until looked at.
    pub mismatch_backups: usize,
    pub total_size_bytes: u64,
    pub retention: String,
    /// The configured `max_backup_age`, in seconds.
    pub max_backup_age_secs: Option<u64>,
    /// Age of the newest valid backup, in seconds.
    pub newest_valid_backup_age_secs: Option<i64>,
    /// No valid backup younger than `max_backup_age`.
    pub backup_overdue: bool,
    /// The newest restore drill (`verify --drill`) of any of its backups.
    pub last_drill: Option<Drill>,
    /// Age of the newest drill that passed, in seconds.
    pub last_good_drill_age_secs: Option<i64>,
    /// The configured `max_drill_age`, in seconds.
    pub max_drill_age_secs: Option<u64>,
    /// No drill passed within `max_drill_age`.
    pub drill_overdue: bool,
    /// A restore or rollback that started changing the database and never reported back, or a
    /// migrate that did not finish and was not undone.
    pub interrupted: Option<Interrupted>,
}

/// One environment's status, as of the session's clock. `reg` is the registry read once for all
/// the environments shown.
pub fn of(session: &Session, reg: &RegistryFile, env: &Environment) -> EnvStatus {
    let backups = reg.newest_first(Some(&env.name));
    let newest = backups.first();
    let mut s = EnvStatus {
        environment: env.name.clone(),
        provider: None,
        url: None,
        url_problem: None,
        protected: env.protected,
        reachable: false,
        server_version: None,
        problem: None,
        migrations: None,
        newest_backup: newest.map(|b| b.id.clone()),
        newest_backup_at: newest.map(|b| b.timestamp),
        newest_backup_age_secs: newest.map(|b| (session.ctx.now - b.timestamp).num_seconds()),
        backups_count: backups.len(),
        valid_backups: backups.iter().filter(|b| b.status == Status::Valid).count(),
        mismatch_backups: backups
            .iter()
            .filter(|b| b.status == Status::Mismatch)
            .count(),
        total_size_bytes: backups.iter().map(|b| b.size_bytes).sum(),
        retention: env.retention.to_string(),
        max_backup_age_secs: env.max_backup_age.map(|d| d.as_secs()),
        newest_valid_backup_age_secs: None,
        backup_overdue: false,
        last_drill: None,
        last_good_drill_age_secs: None,
        max_drill_age_secs: env.max_drill_age.map(|d| d.as_secs()),
        drill_overdue: false,
        interrupted: interrupted(&session.store, &env.name),
    };
    let (last, good) = crate::ops::verify::last_drills(&backups);
    s.last_drill = last;
    s.last_good_drill_age_secs = good.map(|d| (session.ctx.now - d.at).num_seconds());
    if let Some(max) = env.max_drill_age {
        s.drill_overdue = s
            .last_good_drill_age_secs
            .is_none_or(|age| age > i64::try_from(max.as_secs()).unwrap_or(i64::MAX));
    }
    let newest_valid = backups.iter().find(|b| b.status == Status::Valid);
    s.newest_valid_backup_age_secs =
        newest_valid.map(|b| (session.ctx.now - b.timestamp).num_seconds());
    if let Some(max) = env.max_backup_age {
        s.backup_overdue = s
            .newest_valid_backup_age_secs
            .is_none_or(|age| age > i64::try_from(max.as_secs()).unwrap_or(i64::MAX));
    }
    match session.provider(env) {
        Err(e) => s.url_problem = Some(e.one_line()),
        Ok((url, db)) => {
            s.provider = Some(db.kind().as_str().to_string());
            s.url = Some(url.redacted());
            match db.version_and_migrations(env.migrations_table.as_deref()) {
                Ok((version, migrations)) => {
                    s.reachable = true;
                    s.server_version = Some(version);
                    s.migrations = migrations;
                }
                Err(e) => s.problem = Some(e.one_line()),
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testkit::{Project, at, backed_up};

    #[test]
    fn an_environment_with_a_fresh_backup_answers_and_is_not_overdue() {
        let p = Project::new();
        let taken = p.ctx(at());
        backed_up(&taken.session().unwrap(), "dev");
        // An hour later.
        let ctx = p.ctx(at() + chrono::Duration::hours(1));
        let session = ctx.session().unwrap();
        let reg = session.store.load().unwrap();
        let s = of(&session, &reg, session.env("dev").unwrap());
        assert!(s.reachable, "{s:?}");
        assert_eq!(s.provider.as_deref(), Some("sqlite"));
        assert_eq!(
            (s.backups_count, s.valid_backups, s.mismatch_backups),
            (1, 1, 0)
        );
        assert_eq!(s.newest_backup_age_secs, Some(3600));
        assert_eq!(s.newest_valid_backup_age_secs, Some(3600));
        assert!(!s.backup_overdue && s.interrupted.is_none());
    }

    #[test]
    fn a_missing_database_and_an_old_backup_are_said() {
        let p = Project::with_config(&format!(
            "{}max_backup_age = \"1h\"\n",
            crate::ops::testkit::CONFIG
        ));
        let taken = p.ctx(at());
        backed_up(&taken.session().unwrap(), "dev");
        let ctx = p.ctx(at() + chrono::Duration::hours(2));
        let session = ctx.session().unwrap();
        let reg = session.store.load().unwrap();
        let dev = of(&session, &reg, session.env("dev").unwrap());
        assert_eq!(
            dev.max_backup_age_secs, None,
            "only production has the limit"
        );
        assert!(!dev.backup_overdue);
        let prod = of(&session, &reg, session.env("production").unwrap());
        assert!(!prod.reachable && prod.problem.is_some(), "{prod:?}");
        assert_eq!((prod.backups_count, prod.newest_backup), (0, None));
        assert_eq!(prod.max_backup_age_secs, Some(3600));
        assert!(prod.backup_overdue, "no valid backup at all is overdue");
    }
}
