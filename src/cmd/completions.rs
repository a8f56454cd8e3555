//! `faber-db completions bash|zsh|fish|elvish|powershell`: the shell's completion script.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::Report;
use crate::error::Result;
use crate::ui::Ui;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in: bash, zsh, fish, elvish or powershell
    pub shell: Shell,
}

pub fn run(ui: &Ui, args: CompletionsArgs) -> Result<Report> {
    let mut script = Vec::new();
    clap_complete::generate(
        args.shell,
        &mut crate::cmd::cli::Cli::command(),
        "faber-db",
        &mut script,
    );
    let script = String::from_utf8_lossy(&script).into_owned();
    if ui.json {
        return Ok(Report::new().with("script", script));
    }
    print!("{script}");
    Ok(Report::new())
}
