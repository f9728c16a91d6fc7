//! Installed connectors: installing a component file (compile, describe, validate, keep a
//! copy, record the version, activate), listing versions, and handing the runner the
//! active version of a connector, linked once per process.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::app::Passerelle;
use crate::capabilities::allowlist::Allowlist;
use crate::limits::Limits;
use crate::runtime::bindings::passerelle::connector::types as wit;
use crate::runtime::{sha256_hex, Call, CallOutput, LoadedConnector, RunParts};
use crate::scrub::Scrubber;
use crate::store::connectors::ConnectorVersion;

/// A connector's manifest as the host keeps it (what `describe()` returned).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub platform: String,
    pub allowed_hosts: Vec<String>,
    pub rate_limit: RateLimit,
    pub settings: Vec<Parameter>,
    pub secrets: Vec<Parameter>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateLimit {
    pub requests_per_second: u32,
    pub burst: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parameter {
    pub name: String,
    pub description: String,
    pub required: bool,
}

impl From<wit::Manifest> for Manifest {
    fn from(m: wit::Manifest) -> Self {
        let params = |ps: Vec<wit::Parameter>| {
            ps.into_iter()
                .map(|p| Parameter {
                    name: p.name,
                    description: p.description,
                    required: p.required,
                })
                .collect()
        };
        Manifest {
            name: m.name,
            version: m.version,
            platform: m.platform,
            allowed_hosts: m.allowed_hosts,
            rate_limit: RateLimit {
                requests_per_second: m.rate_limit.requests_per_second,
                burst: m.rate_limit.burst,
            },
            settings: params(m.settings),
            secrets: params(m.secrets),
        }
    }
}

impl Manifest {
    /// Checks what the host relies on; the error says what is wrong.
    pub fn validate(&self) -> Result<()> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !name_ok {
            bail!(
                "connector name `{}` must be 1-64 characters among a-z 0-9 -",
                self.name
            );
        }
        semver::Version::parse(&self.version).with_context(|| {
            format!(
                "connector version `{}` is not a semantic version (1.2.3)",
                self.version
            )
        })?;
        Allowlist::parse(&self.allowed_hosts)?;
        if self.rate_limit.requests_per_second == 0 {
            bail!("rate-limit.requests-per-second must be at least 1");
        }
        Ok(())
    }
}

/// What `install` did.
#[derive(Debug, Clone, Serialize)]
pub struct Installed {
    pub manifest: Manifest,
    pub sha256: String,
    pub path: PathBuf,
    pub activated: bool,
    /// The same bytes were installed already.
    pub already_installed: bool,
}

impl Passerelle {
    /// Links a component, reusing this process's copy for the same content.
    pub fn link(&self, path: &Path, expected_sha256: Option<&str>) -> Result<LoadedConnector> {
        if let Some(sha) = expected_sha256 {
            if let Some(l) = self.loaded.lock().expect("not poisoned").get(sha) {
                return Ok(l.clone());
            }
        }
        let loaded = self.runtime.load_file(path)?;
        if let Some(sha) = expected_sha256 {
            if loaded.sha256 != sha {
                bail!(
                    "{} changed on disk (sha256 {} instead of {sha}); reinstall the connector",
                    path.display(),
                    loaded.sha256
                );
            }
        }
        self.loaded
            .lock()
            .expect("not poisoned")
            .insert(loaded.sha256.clone(), loaded.clone());
        Ok(loaded)
    }

    /// Calls `describe()` in a sandbox with no network and a short deadline.
    pub async fn describe(&self, loaded: &LoadedConnector) -> Result<Manifest> {
        let limits = Limits {
            deadline_secs: 10.0,
            ..self.runtime.default_limits().clone()
        };
        let finished = self
            .runtime
            .execute(
                loaded,
                RunParts {
                    http: None,
                    records: None,
                    scrubber: Scrubber::new(),
                    span: tracing::info_span!("describe", sha256 = %&loaded.sha256[..12]),
                    limits,
                },
                Call::Describe,
            )
            .await;
        match finished.output {
            Ok(CallOutput::Manifest(m)) => Ok(m.into()),
            Ok(other) => bail!("unexpected answer to describe(): {other:?}"),
            Err(f) => bail!("describe() failed: {}", f.detail()),
        }
    }

    /// Installs a component file: validates it, keeps a copy in the data dir, records
    /// the version, and activates it if the connector has no newer active version.
    pub async fn install_plugin(&self, file: &Path) -> Result<Installed> {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let sha256 = sha256_hex(&bytes);
        let loaded = self
            .runtime
            .load_bytes(&bytes)
            .with_context(|| format!("rejected {}", file.display()))?;
        let manifest = self
            .describe(&loaded)
            .await
            .with_context(|| format!("rejected {}", file.display()))?;
        manifest
            .validate()
            .with_context(|| format!("rejected {}: invalid manifest", file.display()))?;

        let dir = self.plugins_dir().join(&manifest.name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{}-{}.wasm", manifest.version, &sha256[..12]));
        if !path.exists() {
            let tmp = dir.join(format!(".{}.tmp", &sha256[..12]));
            std::fs::write(&tmp, &bytes)?;
            std::fs::rename(&tmp, &path)?;
        }
        let manifest_json = serde_json::to_value(&manifest)?;
        let inserted = self
            .store
            .add_connector_version(
                &manifest.name,
                &manifest.version,
                &sha256,
                &path.to_string_lossy(),
                &manifest_json,
            )
            .await?;
        let existing = self.store.connector_versions(Some(&manifest.name)).await?;
        if !inserted {
            let same = existing
                .iter()
                .find(|v| v.version == manifest.version)
                .is_some_and(|v| v.sha256 == sha256);
            if !same {
                bail!(
                    "rejected {}: {} {} is already installed with different content; give the new build a new version",
                    file.display(),
                    manifest.name,
                    manifest.version
                );
            }
        }
        self.loaded
            .lock()
            .expect("not poisoned")
            .insert(sha256.clone(), loaded);
        let active = existing.iter().find(|v| v.active);
        let newer = match active {
            None => true,
            Some(a) => {
                semver::Version::parse(&manifest.version)?
                    > semver::Version::parse(&a.version).unwrap_or(semver::Version::new(0, 0, 0))
            }
        };
        if newer {
            self.store
                .activate_connector_version(&manifest.name, &manifest.version)
                .await?;
        }
        Ok(Installed {
            manifest,
            sha256,
            path,
            activated: newer,
            already_installed: !inserted,
        })
    }

    /// The active version of `connector`, linked, with its manifest.
    pub async fn active_connector(
        &self,
        connector: &str,
    ) -> Result<(ConnectorVersion, LoadedConnector, Manifest)> {
        let version = self.store.active_connector(connector).await?.with_context(|| {
            format!("no active version of connector `{connector}`: install one with `passerelle plugins install FILE.wasm`")
        })?;
        let loaded = self.link(Path::new(&version.path), Some(&version.sha256))?;
        let manifest: Manifest = serde_json::from_value(version.manifest.clone())
            .context("stored manifest is unreadable")?;
        Ok((version, loaded, manifest))
    }
}
