//! The `passerelle` binary: parses the command line and runs it.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // `FAILPOINTS` is read only in a build with the `failpoints` feature (the tests').
    #[cfg(feature = "failpoints")]
    let _fail_points = fail::FailScenario::setup();
    let cli = passerelle::cli::Cli::parse();
    passerelle::cli::init_logging(
        cli.global.log_format,
        cli.global.verbose,
        cli.command.is_long_running(),
    );
    match passerelle::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The message may carry text from outside (an id typed, an answer of a
            // remote daemon): no control character reaches the terminal.
            eprintln!(
                "error: {}",
                passerelle::cli::printable::printable(&format!("{e:#}"))
            );
            std::process::ExitCode::FAILURE
        }
    }
}
