//! The `passerelle` binary: parses the command line and runs it.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // `FAILPOINTS` is read only in a build with the `failpoints` feature (the tests').
    #[cfg(feature = "failpoints")]
    let _fail_points = fail::FailScenario::setup();
    let cli = passerelle::cli::Cli::parse();
    let traces = match passerelle::cli::init_logging(
        cli.global.log_format,
        cli.global.verbose,
        cli.command.is_long_running(),
        cli.global.otlp_endpoint.as_deref(),
    ) {
        Ok(traces) => traces,
        Err(e) => {
            eprintln!("error: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = passerelle::cli::run(cli).await;
    if let Some(traces) = traces {
        // The batch is sent from its own thread, which blocks: not on a runtime worker.
        let _ = tokio::task::spawn_blocking(move || traces.shutdown()).await;
    }
    match result {
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
