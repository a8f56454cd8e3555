//! faber-db: backs up, verifies, restores and rolls back a project's databases, environment by
//! environment. `main` parses the command line and calls [`run`]; everything else lives here.

pub mod agent;
pub mod approval;
pub mod audit;
pub mod build_info;
pub mod bytesize;
pub mod child;
pub mod cmd;
pub mod config;
pub mod confirm;
pub mod crypt;
pub mod dirdump;
pub mod error;
pub mod events;
pub mod format;
pub mod fsutil;
pub mod guard;
pub mod hints;
pub mod human;
pub mod ids;
pub mod interrupt;
pub mod keep;
pub mod locate;
pub mod migrations;
pub mod notify;
pub mod offsite;
pub mod ops;
pub mod pending;
pub mod pgarchive;
pub mod pipeline;
pub mod plan;
pub mod preflight;
pub mod progress;
pub mod provider;
pub mod registry;
pub mod removal;
pub mod retention;
pub mod schema;
pub mod scratch;
pub mod session;
pub mod shell;
pub mod sqlscan;
pub mod testpoint;
pub mod tls;
pub mod ui;
pub mod unfinished;
pub mod vars;

use serde_json::{Map, Value};

pub use cmd::cli;
pub use error::{Error, Kind, Result};

/// What a command reports: its JSON body, and a failure when some items failed while it went on
/// (`verify --all`, `cleanup`).
#[derive(Debug, Default)]
pub struct Report {
    pub body: Map<String, Value>,
    pub failure: Option<Error>,
}

impl Report {
    pub fn new() -> Report {
        Report::default()
    }

    pub fn with(mut self, key: &str, value: impl serde::Serialize) -> Report {
        self.body.insert(
            key.to_string(),
            serde_json::to_value(value).expect("report values serialize"),
        );
        self
    }
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: cli::Cli) -> u8 {
    // A Claude Code hook speaks Claude Code's protocol on stdout, whatever the flags.
    if let cli::Command::Hook(args) = cli.command {
        return cmd::hook::main(args);
    }
    let ui = ui::Ui::new(
        cli.global.json,
        cli.global.quiet,
        cli.global.verbose,
        cli.global.no_color,
    );
    let command = cli.command.name();
    let global = &cli.global;
    let result = session::Ctx::new(
        global.root.as_deref(),
        global.config.clone(),
        global.yes,
        std::sync::Arc::new(ui.clone()),
    )
    .and_then(|ctx| cmd::dispatch(&ctx, &ui, cli.command));
    let (report, failure) = match result {
        Ok(mut report) => {
            let failure = report.failure.take();
            (Some(report), failure)
        }
        Err(e) => (None, Some(e)),
    };
    if ui.json {
        let mut doc = Map::new();
        doc.insert("ok".into(), failure.is_none().into());
        doc.insert("command".into(), command.into());
        if let Some(report) = report {
            doc.extend(report.body);
        }
        if let Some(e) = &failure {
            doc.insert("error".into(), ui::error_json(e));
        }
        ui.print_json(&Value::Object(doc));
    }
    match failure {
        None => 0,
        Some(e) => {
            if !ui.json {
                ui.print_error(&e);
            }
            e.exit_code()
        }
    }
}

/// Reports a command-line usage error (exit 1), as JSON when `--json` was given.
pub fn usage_error(rendered: &str, json: bool) -> u8 {
    // clap's first paragraph is the whole message (`error: …` and any indented details).
    let message = rendered
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
        .trim_start_matches("error: ")
        .to_string();
    let err =
        Error::config(message).with_hint("run `faber-db --help` or `faber-db <command> --help`");
    if json {
        let doc = serde_json::json!({"ok": false, "command": null, "error": ui::error_json(&err)});
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("JSON values serialize")
        );
    } else {
        eprint!("{rendered}");
    }
    err.exit_code()
}
