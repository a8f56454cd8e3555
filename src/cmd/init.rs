//! `faber-db init [--force]`: writes a commented config with dev, staging and production.

use clap::Args;

use crate::Report;
use crate::config::PLUGIN_DIR;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::session::Ctx;
use crate::ui::Ui;

/// The annotated example config, written as the starting point.
pub const TEMPLATE: &str = include_str!("../../config/config.example.toml");

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Overwrite an existing config
    #[arg(long)]
    pub force: bool,
}

pub fn run(ctx: &Ctx, ui: &Ui, args: InitArgs) -> Result<Report> {
    // `--config PATH` says where the config lives; init writes it there.
    let (dir, path) = match &ctx.config_path {
        Some(p) => {
            let path = ctx.root.join(p);
            let dir = path
                .parent()
                .map_or_else(|| ctx.root.clone(), |d| d.to_path_buf());
            (dir, path)
        }
        None => (
            ctx.root.join(PLUGIN_DIR),
            ctx.root.join(PLUGIN_DIR).join("config.toml"),
        ),
    };
    let mut candidates = vec![path.clone()];
    if ctx.config_path.is_none() {
        candidates.push(dir.join("config.json"));
    }
    let existing = candidates.into_iter().find(|p| p.exists());
    if let (Some(existing), false) = (&existing, args.force) {
        return Err(
            Error::config(format!("{} already exists", ctx.show(existing)))
                .with_hint("pass --force to replace it with a fresh config"),
        );
    }
    fsutil::create_private_dir(&dir)?;
    fsutil::write_atomic(&path, TEMPLATE.as_bytes())?;
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
