//! Where a command runs, decided once (ripgrep's low-level arguments → high-level
//! request): the parsed arguments and the configuration become one [`Invocation`], and
//! nothing after this looks at `--server`, `--data-dir` or the command's kind again.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use super::args::{Cli, Command, PluginsCmd};
use crate::client::Client;
use passerelle_service::config::{default_data_dir, Config};

/// Where a kind of command can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Needs neither a database nor a daemon.
    Standalone,
    /// Is the daemon.
    Serve,
    /// Against the service: on this machine's database or a daemon's API (`--server`).
    Anywhere,
    /// Reads or changes this machine's files or database directly: never `--server`.
    HereOnly(&'static str),
}

impl Command {
    /// Where this command can run: the one classification the CLI has.
    pub fn place(&self) -> Place {
        match self {
            Command::Connector(_)
            | Command::Completions { .. }
            | Command::Man { .. }
            | Command::Restore { .. } => Place::Standalone,
            Command::Serve { check_config: true } => Place::Standalone,
            #[cfg(feature = "dev")]
            Command::Demo { .. } | Command::Sim { .. } => Place::Standalone,
            Command::Serve { .. } => Place::Serve,
            Command::Plugins(PluginsCmd::Validate { .. }) => Place::HereOnly("plugins validate"),
            Command::Sync {
                record: Some(_), ..
            } => Place::HereOnly("sync --record"),
            Command::Secrets(_) => Place::HereOnly("secrets"),
            Command::Audit(_) => Place::HereOnly("audit"),
            Command::Tokens(_) => Place::HereOnly("tokens"),
            Command::Export(_) => Place::HereOnly("export"),
            Command::Backup { .. } => Place::HereOnly("backup"),
            _ => Place::Anywhere,
        }
    }

    /// Whether the command keeps running (and so logs what it does at INFO).
    pub fn is_long_running(&self) -> bool {
        match self {
            Command::Serve { check_config } => !check_config,
            #[cfg(feature = "dev")]
            Command::Sim { .. } => true,
            _ => false,
        }
    }
}

/// One command, with where it runs and what it runs with.
pub enum Invocation {
    /// `connector …`, `serve --check-config`, and with the `dev` feature `demo` and `sim`.
    Standalone {
        command: Command,
        config: Config,
        /// The configuration file named on the command line.
        config_path: Option<PathBuf>,
        /// `--data-dir` as given (the demo keeps its own default).
        data_dir: Option<PathBuf>,
    },
    /// `passerelle serve` on this data directory.
    Serve { data_dir: PathBuf, config: Config },
    /// Against a daemon's admin API.
    Remote { client: Client, command: Command },
    /// Against the service on this machine's database.
    Local {
        data_dir: PathBuf,
        config: Config,
        command: Command,
        /// Set for the commands that only exist here.
        here_only: bool,
    },
}

/// Resolves the parsed command line: the configuration (file, environment, then the
/// command line's `--database-url`), the data directory, and where the command runs. A
/// here-only command with `--server` is refused here, with why.
pub fn resolve(cli: Cli) -> Result<Invocation> {
    let Cli { global, command } = cli;
    let mut config = Config::load(global.config.as_deref())?;
    if let Some(url) = &global.database_url {
        config.database_url = Some(url.clone());
    }
    let place = command.place();
    if place == Place::Standalone {
        return Ok(Invocation::Standalone {
            command,
            config,
            config_path: global.config,
            data_dir: global.data_dir,
        });
    }
    let data_dir = global
        .data_dir
        .or_else(|| config.data_dir.clone())
        .unwrap_or_else(default_data_dir);
    match (&global.server, place) {
        (Some(_), Place::HereOnly(name)) => bail!(
            "`{name}` reads or changes files on the daemon's machine: run it there, without --server"
        ),
        (Some(_), Place::Serve) => {
            bail!("`serve` starts a daemon on this machine: run it without --server")
        }
        (Some(server), _) => {
            let token = match global.token {
                Some(t) => t,
                None => {
                    let path = passerelle_daemon::token::token_path(&data_dir);
                    std::fs::read_to_string(&path)
                        .map(|t| t.trim().to_string())
                        .with_context(|| {
                            format!(
                                "no --token given and {} cannot be read (PASSERELLE_TOKEN works too)",
                                path.display()
                            )
                        })?
                }
            };
            Ok(Invocation::Remote {
                client: Client::new(server, &token)?,
                command,
            })
        }
        (None, Place::Serve) => Ok(Invocation::Serve { data_dir, config }),
        (None, place) => Ok(Invocation::Local {
            data_dir,
            config,
            command,
            here_only: matches!(place, Place::HereOnly(_)),
        }),
    }
}
