use clap::Parser;
use clap::error::ErrorKind;

fn main() -> std::process::ExitCode {
    let code = match faber_db::cli::Cli::try_parse() {
        Ok(cli) => faber_db::run(cli),
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            0
        }
        // Usage errors are invalid input: exit 1, not clap's 2 (which means "disk full" here).
        Err(e) => faber_db::usage_error(
            &e.render().to_string(),
            std::env::args_os().any(|a| a == "--json"),
        ),
    };
    std::process::ExitCode::from(code)
}
