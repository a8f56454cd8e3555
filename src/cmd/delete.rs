//! `faber-db delete ID`: removes one backup — file, manifest, registry entry, off-site copy —
//! through [`crate::ops::cleanup::delete`], once a protected environment's name is typed.

use clap::Args;

use crate::Report;
use crate::approval::{self, Change};
use crate::confirm::{self, Ask};
use crate::error::Result;
use crate::ops::cleanup;
use crate::session::Session;
use crate::ui;
use crate::ui::Ui;

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Backup ID to remove
    pub id: String,

    /// Allow removing the last valid backup of an environment
    #[arg(long)]
    pub force: bool,
}

pub fn run(session: &Session, ui: &Ui, args: DeleteArgs) -> Result<Report> {
    let record = cleanup::prepare_delete(session, &args.id, args.force)?;
    if let Some(env) = session.config.environments.get(&record.environment) {
        if env.protected && !session.ctx.yes {
            ui.note(format!(
                "delete will remove this backup of `{}`:\n  {}",
                record.environment,
                crate::keep::Removal::of(&record).describe(session.ctx.now)
            ));
        }
        let change = Change {
            action: "delete",
            scope: Some(&env.name),
            backup: None,
        };
        approval::gate(session, env, &change)?;
        confirm::confirm(env, "delete", Ask::TypeName, session.ctx.yes)?;
    }
    let deleted = cleanup::delete(session, &record, args.force)?;
    let record = deleted.record;
    ui.ok(format!(
        "Deleted {} ({}, {})",
        record.id,
        record.environment,
        ui::size(record.size_bytes)
    ));
    let mut report = Report::new().with("deleted", &record);
    report.failure = deleted.failure;
    Ok(report)
}
