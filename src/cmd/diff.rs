//! `faber-db diff ID [--env ENV]`: what changed since a backup — per-table row counts, tables
//! added and removed, the schema's changes, migrations applied since — as [`crate::ops::diff`]
//! finds it, shown.

use clap::Args;

use crate::Report;
use crate::error::Result;
use crate::ops::diff::{self, SchemaDiff};
use crate::session::Session;
use crate::ui::Ui;

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Backup ID to compare with
    pub id: String,

    /// Environment whose live database to compare (default: the backup's)
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,

    /// When the backup's manifest records no schema, load the backup into a scratch database
    /// to read it (as verify --deep does)
    #[arg(long)]
    pub deep: bool,
}

pub fn run(session: &Session, ui: &Ui, args: DiffArgs) -> Result<Report> {
    let d = diff::diff(session, &args.id, args.env.as_deref(), args.deep)?;
    crate::ui::diff::show(ui, &d);
    let (env, record) = (d.env, &d.record);
    let (schema_changes, schema_unread) = match &d.schema {
        SchemaDiff::Compared(changes) => (Some(changes), None),
        SchemaDiff::NotRecorded => (None, Some("the backup's manifest records no schema")),
        SchemaDiff::Unreadable(why) => (None, Some(why.as_str())),
    };
    Ok(Report::new()
        .with("backup", &record.id)
        .with("environment", &env.name)
        .with("tables", &d.tables)
        .with("migrations_applied_since", &d.applied_since)
        .with("migrations_missing", &d.missing)
        .with("migrations_backup", &record.migrations)
        .with("migrations_live", &d.live_migrations)
        .with("schema_changes", schema_changes)
        .with("schema_not_compared", schema_unread)
        .with("schema_from_scratch_copy", d.schema_from_copy))
}
