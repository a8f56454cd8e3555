//! A backup loaded into a scratch database for a migration's rehearsal: created and recorded as
//! every scratch database is (`restore::ScratchDb`), and dropped with the sessions the rehearsal
//! left on it ended first — it is this run's own, so nobody else's session is cut.

use super::restore::ScratchDb;
use super::{MAINTENANCE_DB, Postgres, literal};
use crate::error::Result;
use crate::format::Format;
use crate::provider::{Provider, ScratchCopy, Source};
use crate::scratch::Purpose;

/// Loads the dump into a new scratch database on `pg`'s server.
pub(super) fn scratch_copy<'a>(
    pg: &'a Postgres,
    format: Format,
    source: Source<'_>,
    jobs: u32,
) -> Result<Box<dyn ScratchCopy + 'a>> {
    let scratch = ScratchDb::create(pg, Purpose::Rehearse)?;
    // A rehearsal counts what it needs itself, after the migration.
    scratch.load(format, source, jobs)?;
    let mut at = pg.clone();
    at.recorded_as = None;
    at.conn.dbname.clone_from(&scratch.name);
    Ok(Box::new(PgCopy { pg, at, scratch }))
}

struct PgCopy<'a> {
    pg: &'a Postgres,
    at: Postgres,
    scratch: ScratchDb<'a>,
}

impl ScratchCopy for PgCopy<'_> {
    fn name(&self) -> &str {
        &self.scratch.name
    }

    fn provider(&self) -> &dyn Provider {
        &self.at
    }
}

impl Drop for PgCopy<'_> {
    fn drop(&mut self) {
        // A process the migrate command left behind must not keep the copy alive.
        let _ = self.pg.query_in(
            MAINTENANCE_DB,
            &format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = {} \
                 AND pid <> pg_backend_pid()",
                literal(&self.scratch.name)
            ),
        );
        // The scratch database itself goes as `scratch` is dropped, just after this.
    }
}
