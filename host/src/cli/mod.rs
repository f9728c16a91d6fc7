//! The `passerelle` command line: arguments ([`args`]) are resolved once into an
//! invocation ([`resolve`]: where the command runs — standalone, the daemon, this
//! machine's service or a daemon's API with `--server`), run by one dispatch
//! ([`dispatch`], over the one [`admin::Admin`] interface both ways), and printed by one
//! renderer ([`render`]). Long commands show [`progress`] on a terminal; the connector
//! kit's commands are [`connector`].

pub mod admin;
pub mod args;
pub mod connector;
pub mod dispatch;
pub mod manual;
pub mod printable;
pub mod progress;
pub mod render;
pub mod render_kit;
pub mod render_plugins;
pub mod render_practices;
pub mod render_records;
pub mod resolve;
pub mod validate;

use std::io::IsTerminal;

use anyhow::{bail, Result};

pub use self::args::{
    AccountsCmd, AuditCmd, Cli, Command, ExportCmd, Global, LogFormat, PluginsCmd, PracticesCmd,
    SecretsCmd, SubscriptionsCmd, TokensCmd,
};
use self::render::Output;

/// Sets up logging to stderr. One-shot commands log warnings only (their output is the
/// point); the daemon and the simulator log what they do. `-v` adds a level each time.
/// With an OTLP endpoint, traces go there too (whatever the log level); the handle
/// returned flushes them at exit.
pub fn init_logging(
    format: LogFormat,
    verbose: u8,
    long_running: bool,
    otlp_endpoint: Option<&str>,
) -> Result<Option<crate::telemetry::Traces>> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let level = verbose + u8::from(long_running);
    let default = match level {
        0 => "warn",
        1 => "info,sqlx=warn",
        2 => "debug,sqlx=warn,wasmtime=info,cranelift=info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let logs = match format {
        LogFormat::Human => logs.boxed(),
        LogFormat::Json => logs.json().boxed(),
    };
    let (traces, handle) = match otlp_endpoint.filter(|e| !e.is_empty()) {
        Some(endpoint) => {
            let (layer, handle) = crate::telemetry::otlp_layer(endpoint)?;
            (Some(layer), Some(handle))
        }
        None => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(traces)
        .try_init();
    Ok(handle)
}

/// Runs a parsed command line: resolve, dispatch, render.
pub async fn run(cli: Cli) -> Result<()> {
    let json = cli.global.json;
    let invocation = resolve::resolve(cli)?;
    finish(dispatch::dispatch(invocation).await?, json)
}

/// Prints the output; an error (non-zero exit) if the command did not fully succeed.
fn finish(output: Output, json: bool) -> Result<()> {
    output.print(json)?;
    match output.failure() {
        Some(why) => bail!(why),
        None => Ok(()),
    }
}
