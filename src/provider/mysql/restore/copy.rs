//! A backup loaded into a scratch database for a migration's rehearsal: created, recorded and
//! marked as every scratch database is (`scratch::ScratchDb`), dropped when the copy goes.

use super::super::Mysql;
use super::scratch::ScratchDb;
use crate::error::{Error, Result};
use crate::format::Format;
use crate::provider::{Provider, ScratchCopy, Source};
use crate::scratch::Purpose;

/// Loads the dump into a new scratch database on `my`'s server.
pub(in crate::provider::mysql) fn scratch_copy<'a>(
    my: &'a Mysql,
    format: Format,
    source: Source<'_>,
) -> Result<Box<dyn ScratchCopy + 'a>> {
    if format != Format::Sql {
        return Err(Error::config(format!(
            "cannot load a {format} backup into MySQL"
        )));
    }
    let scratch = ScratchDb::create(my, Purpose::Rehearse)?;
    my.load(&scratch.name, source)?;
    my.disable_events(&scratch.name)?;
    let mut at = my.clone();
    at.recorded_as = None;
    at.conn.dbname.clone_from(&scratch.name);
    Ok(Box::new(MyCopy { at, scratch }))
}

struct MyCopy<'a> {
    at: Mysql,
    /// Dropped with this value.
    scratch: ScratchDb<'a>,
}

impl ScratchCopy for MyCopy<'_> {
    fn name(&self) -> &str {
        &self.scratch.name
    }

    fn provider(&self) -> &dyn Provider {
        &self.at
    }
}
