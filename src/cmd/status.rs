//! `faber-db status [ENV]`: per environment, the database, whether it answers, its migration
//! state and its backups, gathered by [`crate::ops::status`] and printed here. Environments
//! without a backup within `max_backup_age` are told to the `[notify]` targets that asked for
//! `stale`.

use clap::Args;

use crate::Report;
use crate::config::Environment;
use crate::error::Result;
use crate::ops::status::{self};
use crate::session::Session;
use crate::ui;
use crate::ui::Ui;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this environment
    pub env: Option<String>,
}

pub fn run(session: &Session, ui: &Ui, args: StatusArgs) -> Result<Report> {
    let envs: Vec<&Environment> = match &args.env {
        Some(name) => vec![session.env(name)?],
        None => session.config.environments.values().collect(),
    };
    let reg = session.store.load()?;
    let mut out = Vec::new();
    for env in envs {
        let s = status::of(session, &reg, env);
        ui::status::environment(ui, session, env, &s);
        out.push(s);
    }
    let overdue: Vec<&status::EnvStatus> = out.iter().filter(|s| s.backup_overdue).collect();
    crate::notify::stale(session, &overdue);
    Ok(Report::new().with("environments", &out))
}
