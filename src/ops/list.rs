//! What `list` shows: the registry's backups of one environment or all, newest first, each
//! marked missing when its file is gone and no off-site copy can bring it back; and the
//! off-site objects, each with the backup it belongs to.

use std::collections::HashMap;

use crate::error::Result;
use crate::offsite;
use crate::registry::{self, BackupRecord, EntryView, Status};
use crate::session::Session;

/// The backups listed, and the totals of all that matched.
pub struct Listing<'a> {
    /// Newest first, at most the limit asked for.
    pub backups: Vec<EntryView<'a>>,
    /// Whether each backup's data file is here, in the same order.
    pub here: Vec<bool>,
    /// How many backups matched, shown or not.
    pub total: usize,
    /// Their size together.
    pub total_bytes: u64,
}

/// The backups of `env` (all environments when `None`) in the registry `text` (as read by
/// `Store::read_text`), newest first, at most `limit` of them. Entries are read as borrowed
/// views: a registry of 10,000 backups lists in a few milliseconds.
pub fn backups<'a>(
    session: &Session,
    text: Option<&'a str>,
    env: Option<&str>,
    limit: Option<usize>,
) -> Result<Listing<'a>> {
    let mut backups: Vec<EntryView<'a>> = session
        .store
        .views(text)?
        .into_iter()
        .filter(|b| env.is_none_or(|e| b.environment == e))
        .collect();
    if let Some(env) = env {
        // An environment no longer in the config may still have backups: list them, but name a
        // typo as such.
        if !session.config.environments.contains_key(env) && backups.is_empty() {
            session.env(env)?;
        }
    }
    backups.sort_by(|a, b| registry::newest_first((a.timestamp, &a.id), (b.timestamp, &b.id)));
    let total = backups.len();
    let total_bytes: u64 = backups.iter().map(|b| b.size_bytes).sum();
    backups.truncate(limit.unwrap_or(total));
    // The registry says what was last verified; a file that is gone is missing now, unless its
    // off-site copy is there to be fetched.
    let mut here = Vec::with_capacity(backups.len());
    let locator = session.store.locator();
    let listing = crate::locate::Listing::default();
    for b in &mut backups {
        // An entry whose path is refused names nothing here (`doctor` says more).
        let found = locator
            .locate_listed(&b.id, &b.environment, &b.file, &listing)
            .is_ok_and(|(_, here)| here);
        if b.status != Status::Missing && !found && !b.has_offsite_copy() {
            b.status = Status::Missing;
        }
        here.push(found);
    }
    Ok(Listing {
        backups,
        here,
        total,
        total_bytes,
    })
}

/// The whole records of the backups listed, with the status the listing gave them.
pub fn records(
    session: &Session,
    text: Option<&str>,
    listing: &Listing,
) -> Result<Vec<BackupRecord>> {
    let entries = session.store.entries(text)?;
    listing
        .backups
        .iter()
        .map(|b| {
            let mut record: BackupRecord =
                serde_json::from_str(entries[b.index]).map_err(|e| session.store.malformed(e))?;
            record.status = b.status;
            Ok(record)
        })
        .collect()
}

/// One object below the off-site prefix.
pub struct Object {
    pub name: String,
    pub url: String,
    pub size_bytes: u64,
    pub last_modified: chrono::DateTime<chrono::Utc>,
    /// The backup it belongs to; `None` when the registry does not know it.
    pub backup: Option<String>,
}

/// The off-site objects of `env` (all when `None`), and the location they are listed from.
pub fn offsite_objects(session: &Session, env: Option<&str>) -> Result<(Vec<Object>, String)> {
    let bucket = offsite::open(session)?;
    let reg = session.store.load()?;
    let mut known = HashMap::new();
    for b in &reg.backups {
        for name in offsite::object_names(b) {
            known.insert(name, b.id.as_str());
        }
    }
    let objects = bucket
        .list()?
        .into_iter()
        .filter(|o| env.is_none_or(|e| o.name.split('/').next() == Some(e)))
        .map(|o| Object {
            url: bucket.url(&o.name),
            backup: known.get(&o.name).map(|id| (*id).to_string()),
            size_bytes: o.size_bytes,
            last_modified: o.last_modified,
            name: o.name,
        })
        .collect();
    Ok((objects, bucket.base_url()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testkit::{Project, at, backed_up};

    #[test]
    fn newest_first_limited_and_a_gone_file_is_missing() {
        let p = Project::new();
        let mut ids = Vec::new();
        for minutes in 0..3 {
            let ctx = p.ctx(at() + chrono::Duration::minutes(minutes));
            ids.push(backed_up(&ctx.session().unwrap(), "dev"));
        }
        let ctx = p.ctx(at() + chrono::Duration::hours(1));
        let session = ctx.session().unwrap();
        let locator = session.store.locator();
        let oldest = &ids[0];
        std::fs::remove_file(
            locator
                .locate(&oldest.id, &oldest.environment, &oldest.file)
                .unwrap()
                .data,
        )
        .unwrap();
        let text = session.store.read_text().unwrap();
        let all = backups(&session, text.as_deref(), Some("dev"), None).unwrap();
        let listed: Vec<&str> = all.backups.iter().map(|b| &*b.id).collect();
        let newest_first: Vec<&str> = ids.iter().rev().map(|r| r.id.as_str()).collect();
        assert_eq!(listed, newest_first);
        assert_eq!(all.here, [true, true, false]);
        assert_eq!(all.backups[2].status, Status::Missing);
        assert_eq!(
            all.total_bytes,
            ids.iter().map(|r| r.size_bytes).sum::<u64>()
        );
        let records = records(&session, text.as_deref(), &all).unwrap();
        assert_eq!(
            records[2].status,
            Status::Missing,
            "the record says what the listing saw"
        );

        let two = backups(&session, text.as_deref(), None, Some(2)).unwrap();
        assert_eq!((two.backups.len(), two.total), (2, 3));
    }

    #[test]
    fn an_unknown_environment_with_no_backups_is_a_config_error() {
        let p = Project::new();
        let ctx = p.ctx(at());
        let session = ctx.session().unwrap();
        let text = session.store.read_text().unwrap();
        let err = backups(&session, text.as_deref(), Some("prodution"), None)
            .err()
            .expect("a typo is named");
        assert_eq!(err.kind(), crate::error::Kind::Config, "{err:?}");
        let none = backups(&session, text.as_deref(), Some("production"), None).unwrap();
        assert_eq!(none.total, 0);
    }
}
