//! `faber-db init [--force]`: writes a commented config with dev, staging and production.

use clap::Args;

use crate::Report;
use crate::config::PLUGIN_DIR;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::session::Ctx;

/// The annotated example config, written as the starting point.
pub const TEMPLATE: &str = include_str!("../../config/config.example.toml");

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Overwrite an existing config
    #[arg(long)]
    pub force: bool,
}

pub fn run(ctx: &Ctx, args: InitArgs) -> Result<Report> {
    let dir = ctx.root.join(PLUGIN_DIR);
    let path = dir.join("config.toml");
    let existing = ["config.toml", "config.json"]
        .map(|n| dir.join(n))
        .into_iter()
        .find(|p| p.exists());
    if let (Some(existing), false) = (&existing, args.force) {
        return Err(
            Error::config(format!("{} already exists", ctx.show(existing)))
                .with_hint("pass --force to replace it with a fresh config"),
        );
    }
    fsutil::create_private_dir(&dir)?;
    fsutil::write_atomic(&path, TEMPLATE.as_bytes())?;
    let ui = &ctx.ui;
    ui.ok(format!("Wrote {}", ctx.show(&path)));
    if existing
        .as_ref()
        .is_some_and(|p| p.extension().is_some_and(|e| e == "json"))
    {
        ui.warn("config.json is still there; config.toml is read first");
    }
    ui.line("");
    ui.line("Next:");
    ui.line("  1. Set DEV_DATABASE_URL (in the environment or .env), e.g. DEV_DATABASE_URL=sqlite:db/dev.sqlite3");
    ui.line("  2. Add the backup directory to .gitignore: .fractary/plugins/faber-db/backups/");
    ui.line("  3. Take a first backup: faber-db backup dev");
    Ok(Report::new().with("config", path.display().to_string()))
}
