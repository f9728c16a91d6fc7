//! The operator's configuration: one TOML file, every key optional with a documented
//! default (see `docs/configuration.md`), command-line flags and environment variables
//! (`PASSERELLE_DATA_DIR`, `PASSERELLE_DATABASE_URL`, `PASSERELLE_CONFIG`) on top.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::capabilities::http::HttpPolicy;
use crate::limits::Limits;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Data directory (database, installed plugins, compile cache).
    pub data_dir: Option<PathBuf>,
    /// `sqlite://…` or `postgres://…`; default: SQLite in the data directory.
    pub database_url: Option<String>,
    /// Per-run limits.
    pub limits: Limits,
    /// Outbound HTTP policy.
    pub http: HttpPolicy,
    pub sync: SyncConfig,
    pub runtime: RuntimeSection,
}

/// What a sync covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncConfig {
    /// Days before now that a sync window starts.
    pub window_past_days: u32,
    /// Days after now that a sync window ends.
    pub window_future_days: u32,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            window_past_days: 30,
            window_future_days: 90,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSection {
    /// Connector instances alive at once (sizes the instance pool).
    pub max_instances: u32,
    /// Keep precompiled components on disk so restarts do not recompile.
    pub compile_cache: bool,
}

impl Default for RuntimeSection {
    fn default() -> Self {
        RuntimeSection {
            max_instances: 256,
            compile_cache: true,
        }
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        let config: Config = toml::from_str(&text)
            .with_context(|| format!("invalid config file {}", path.display()))?;
        config
            .limits
            .validate()
            .with_context(|| format!("in {}", path.display()))?;
        Ok(config)
    }
}

/// The default data directory: `$XDG_DATA_HOME/passerelle` (or `~/.local/share/…`).
pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("passerelle")
}
