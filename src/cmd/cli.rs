//! The command line: global flags and one subcommand, each defined in its module under `cmd/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::cmd;

/// Back up, verify, restore and clean up a project's databases, environment by environment.
#[derive(Debug, Parser)]
#[command(
    name = "faber-db",
    version = crate::build_info::version_line(),
    about,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Project root (default: the nearest ancestor holding .fractary/, else the current directory)
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Config file to read instead of .fractary/plugins/faber-db/config.{toml,json}
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Print one JSON document on stdout, errors included
    #[arg(long, global = true)]
    pub json: bool,

    /// Answer yes to confirmations (for scripts and pipelines)
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,

    /// Print only errors and warnings (and, from `backup`, the ID of the backup taken)
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more detail
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// Never colour the output (NO_COLOR is honoured too)
    #[arg(long, global = true)]
    pub no_color: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented config with dev, staging and production environments
    Init(cmd::init::InitArgs),
    /// Back up an environment's database
    Backup(cmd::backup::BackupArgs),
    /// List backups, newest first
    List(cmd::list::ListArgs),
    /// Check backups: checksum and structure, or a full trial restore with --deep
    Verify(cmd::verify::VerifyArgs),
    /// Restore an environment's database from a backup (a safety backup is taken first)
    Restore(cmd::restore::RestoreArgs),
    /// Remove backups by retention, age, count or day/week/month (never the newest valid one of an environment)
    Cleanup(cmd::cleanup::CleanupArgs),
    /// Remove one backup: its file, manifest and registry entry
    Delete(cmd::delete::DeleteArgs),
    /// Copy backups to the off-site storage: one, or those without an off-site copy yet
    Push(cmd::offsite::PushArgs),
    /// Register the backups found off-site that the registry does not know (after losing the disk)
    Pull(cmd::offsite::PullArgs),
    /// Show each environment's database, reachability, migration state and backups
    Status(cmd::status::StatusArgs),
    /// Run the environment's migrations: list pending ones, back up, migrate, restore on failure
    Migrate(cmd::migrate::MigrateArgs),
    /// Undo a release: restore the newest pre-migration backup (or the one named)
    Rollback(cmd::rollback::RollbackArgs),
    /// Compare a backup with the live database: row counts, tables, migrations applied since
    Diff(cmd::diff::DiffArgs),
    /// Check environments, tools, free space and the registry; --repair rebuilds the registry
    Doctor(cmd::doctor::DoctorArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions(cmd::completions::CompletionsArgs),
    /// Claude Code hooks: `hook pre-tool-use` decides on the agent's Bash commands
    Hook(cmd::hook::HookArgs),
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Init(_) => "init",
            Command::Backup(a) if a.list => "list",
            Command::Backup(_) => "backup",
            Command::List(_) => "list",
            Command::Verify(_) => "verify",
            Command::Restore(_) => "restore",
            Command::Cleanup(_) => "cleanup",
            Command::Delete(_) => "delete",
            Command::Push(_) => "push",
            Command::Pull(_) => "pull",
            Command::Status(_) => "status",
            Command::Migrate(_) => "migrate",
            Command::Rollback(_) => "rollback",
            Command::Diff(_) => "diff",
            Command::Completions(_) => "completions",
            Command::Doctor(_) => "doctor",
            Command::Hook(_) => "hook",
        }
    }
}

impl Command {
    /// The environment a command that changes or saves a database acts on: what a webhook
    /// notification is about.
    pub fn environment(&self) -> Option<&str> {
        match self {
            Command::Backup(a) if !a.list && !a.dry_run.dry_run => a.env.as_deref(),
            Command::Restore(a) if !a.dry_run.dry_run => a.env.as_deref(),
            Command::Rollback(a) if !a.dry_run.dry_run => a.env.as_deref(),
            Command::Migrate(a) if !a.dry_run.dry_run => a.env.as_deref(),
            _ => None,
        }
    }

    /// Whether this is a dry run, which must leave every file as it was.
    pub fn is_dry_run(&self) -> bool {
        match self {
            Command::Backup(a) => a.dry_run.dry_run,
            Command::Restore(a) => a.dry_run.dry_run,
            Command::Rollback(a) => a.dry_run.dry_run,
            Command::Migrate(a) => a.dry_run.dry_run,
            Command::Cleanup(a) => a.dry_run.dry_run,
            _ => false,
        }
    }
}

/// The environment of a command's arguments, filled in by `cmd::dispatch` before the
/// command runs.
pub fn env_name(env: &Option<String>) -> &str {
    env.as_deref().unwrap_or_default()
}

/// `--wait`, shared by the commands that take an environment's database lock.
#[derive(Debug, Clone, Copy, Args)]
pub struct Wait {
    /// If another restore, rollback or migrate of the environment is running, wait this long
    /// (e.g. 10m) for it instead of failing with exit 7
    #[arg(long, value_name = "DUR", value_parser = parse_wait)]
    pub wait: Option<std::time::Duration>,
}

fn parse_wait(s: &str) -> Result<std::time::Duration, String> {
    crate::retention::parse_duration(s)
}

/// `--dry-run`, shared by the commands that can show what they would do.
#[derive(Debug, Clone, Copy, Args)]
pub struct DryRun {
    /// Show what would be done and change nothing
    #[arg(long)]
    pub dry_run: bool,
}
