//! Installed connectors: the one path every candidate takes (file, watched directory,
//! API upload), activation, approval, rollback, and handing the runner the active
//! version of a connector, linked once per process.
//!
//! A candidate is compiled off the async executor and validated: a component of a
//! supported contract version, the connector world, a `describe()` that answers in a
//! sandbox without network, a sane manifest, the expected name, a version that is new and
//! newer than the active one. A refused candidate is recorded with its reason and the
//! active version keeps serving. A candidate that asks for more than the active version
//! (new allowed hosts, new secrets) is kept but waits for `plugins approve`. Activation
//! is one database transaction: runs already started keep the version they linked, runs
//! that start afterwards get the new one. A canary runs a kept version for chosen
//! practices only, until it is promoted or stopped.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::app::Passerelle;
use crate::{ServiceError, ServiceResult};
use passerelle_model::connector::Rejection;
use passerelle_model::connector::{Escalation, Manifest, Outcome, Rejected};
use passerelle_model::ids::validate_id;
use passerelle_model::limits::Limits;
use passerelle_model::sha256_hex;
use passerelle_runtime::capabilities::allowlist::Allowlist;
use passerelle_runtime::sandbox::{Call, CallOutput, LoadedConnector, RunParts};
use passerelle_store::connectors::ConnectorVersion;
use passerelle_store::now_text;

/// Checks what the host relies on in a manifest; the error says what is wrong.
pub fn validate_manifest(manifest: &Manifest) -> Result<()> {
    let name_ok = !manifest.name.is_empty()
        && manifest.name.len() <= 64
        && manifest
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !name_ok {
        bail!(
            "connector name `{}` must be 1-64 characters among a-z 0-9 -",
            manifest.name
        );
    }
    semver::Version::parse(&manifest.version).with_context(|| {
        format!(
            "connector version `{}` is not a semantic version (1.2.3)",
            manifest.version
        )
    })?;
    Allowlist::parse(&manifest.allowed_hosts)?;
    // What the manifest says reaches terminals, pages and the audit trail: names are
    // identifiers, free text is bounded and holds no control or bidirectional mark.
    let plain = |what: &str, text: &str, max: usize| -> Result<()> {
        let bad = text.chars().any(passerelle_model::text::is_display_unsafe);
        if bad || text.chars().count() > max {
            bail!("{what} must be at most {max} characters, without control characters or bidirectional marks");
        }
        Ok(())
    };
    plain("the platform's name", &manifest.platform, 100)?;
    for (kind, params) in [
        ("setting", &manifest.settings),
        ("secret", &manifest.secrets),
    ] {
        for p in params.iter() {
            validate_id(kind, &p.name)?;
            plain(
                &format!("{kind} `{}`'s description", p.name),
                &p.description,
                500,
            )?;
        }
    }
    if manifest.rate_limit.requests_per_second == 0 {
        bail!("rate-limit.requests-per-second must be at least 1");
    }
    Ok(())
}

/// A component offered for installation.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub bytes: Vec<u8>,
    /// Where it came from (`cli:FILE`, `api`, `watched:FILE`), for the log and the
    /// rejection record.
    pub source: String,
    /// The connector it must be, when the way it arrived says (API path, file name).
    pub expected_name: Option<String>,
}

impl Candidate {
    pub fn from_file(path: &Path, source: &str) -> Result<Candidate> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Ok(Candidate {
            bytes,
            source: format!("{source}:{}", path.display()),
            expected_name: None,
        })
    }
}

/// What the checks found about a candidate.
pub enum Examined {
    /// These exact bytes are installed already.
    Installed(Installed),
    /// A valid new version: linked, described, and what installing it would do.
    New {
        loaded: LoadedConnector,
        manifest: Manifest,
        /// The version active now.
        previous: Option<String>,
        /// Set when it would wait for approval.
        escalation: Option<Escalation>,
    },
}

/// What `install` did.
#[derive(Debug, Clone, Serialize)]
pub struct Installed {
    pub manifest: Manifest,
    pub sha256: String,
    pub path: PathBuf,
    pub outcome: Outcome,
    /// The version that was active when the candidate arrived.
    pub previous: Option<String>,
    /// Set when the candidate waits for approval.
    pub escalation: Option<Escalation>,
    /// Its shadow replay, when `plugins.shadow_gate` names the connector.
    pub shadow: Option<crate::flight::shadow::ShadowReport>,
}

impl Passerelle {
    /// Links a component, reusing this process's copy for the same content. Its bytes
    /// are this daemon's file at `path` when that file holds them (and they are then
    /// kept in the database if a daemon from before components were stored there
    /// installed it), else the database's copy — a daemon on another machine has no
    /// file. Compiling (when the version is not linked yet) runs on a blocking thread,
    /// once: runs that need the version meanwhile wait for that compile. (Without this,
    /// a PostgreSQL daemon's first 256 runs at a shared slot compiled the connector
    /// 256 times at once: 4 GiB and a minute of CPU.)
    pub async fn link(&self, path: &Path, expected_sha256: &str) -> Result<LoadedConnector> {
        if let Some(l) = self.linked_copy(expected_sha256) {
            return Ok(l);
        }
        let lock = self
            .linking
            .lock()
            .expect("not poisoned")
            .entry(expected_sha256.to_string())
            .or_default()
            .clone();
        let linked = {
            let _one_at_a_time = lock.lock().await;
            match self.linked_copy(expected_sha256) {
                Some(l) => Ok(l),
                None => self.link_now(path, expected_sha256).await,
            }
        };
        let mut linking = self.linking.lock().expect("not poisoned");
        // The last one out forgets the lock (the map holds one, this call another).
        if std::sync::Arc::strong_count(&lock) <= 2 {
            linking.remove(expected_sha256);
        }
        linked
    }

    /// This process's linked copy of a version, if it has one.
    fn linked_copy(&self, sha256: &str) -> Option<LoadedConnector> {
        self.loaded
            .lock()
            .expect("not poisoned")
            .get(sha256)
            .cloned()
    }

    /// [`Self::link`] for a version not linked yet, under its lock.
    async fn link_now(&self, path: &Path, expected_sha256: &str) -> Result<LoadedConnector> {
        let file = tokio::fs::read(path).await;
        let bytes = match file {
            Ok(bytes) if passerelle_model::sha256_hex(&bytes) == expected_sha256 => {
                self.store.keep_component(expected_sha256, &bytes).await?;
                bytes
            }
            file => match self.store.component(expected_sha256).await? {
                Some(bytes) => bytes,
                None => match file {
                    Ok(_) => bail!(
                        "{} changed on disk (it is not the installed component {expected_sha256}) and the database has no copy; reinstall the connector",
                        path.display()
                    ),
                    Err(e) => bail!(
                        "the installed component {expected_sha256} is neither in the database nor readable at {}: {e}; reinstall the connector",
                        path.display()
                    ),
                },
            },
        };
        let runtime = self.runtime.clone();
        let loaded = tokio::task::spawn_blocking(move || runtime.load_bytes(&bytes))
            .await
            .context("compiling a component")?
            .map_err(anyhow::Error::from)
            .with_context(|| format!("loading component {expected_sha256}"))?;
        if loaded.sha256 != expected_sha256 {
            bail!(
                "component {expected_sha256} is stored with other content (sha256 {}); reinstall the connector",
                loaded.sha256
            );
        }
        self.loaded
            .lock()
            .expect("not poisoned")
            .insert(loaded.sha256.clone(), loaded.clone());
        Ok(loaded)
    }

    /// Calls `describe()` in a sandbox with no network and a short deadline (10 s, or
    /// the runs' deadline if shorter); the runs' other limits apply.
    pub async fn describe(&self, loaded: &LoadedConnector) -> Result<Manifest> {
        let limits = Limits {
            deadline_secs: self.runtime.default_limits().deadline_secs.min(10.0),
            ..self.runtime.default_limits().clone()
        };
        let finished = self
            .runtime
            .execute(
                loaded,
                RunParts::bare(
                    tracing::info_span!("describe", sha256 = %&loaded.sha256[..12]),
                    limits,
                ),
                Call::Describe,
            )
            .await;
        match finished.output {
            Ok(CallOutput::Manifest(m)) => Ok(m.into()),
            Ok(other) => bail!("unexpected answer to describe(): {other:?}"),
            Err(f) => bail!("describe() failed ({}): {}", f.kind(), f.detail()),
        }
    }

    /// Installs a component file from the command line (see [`Self::install`]).
    pub async fn install_plugin(&self, file: &Path) -> ServiceResult<Installed> {
        let candidate = Candidate::from_file(file, "cli")
            .map_err(|e| ServiceError::invalid(format!("{e:#}")))?;
        self.install(candidate).await
    }

    /// The one installation path. A refusal is [`ServiceError::Rejected`] (recorded in
    /// the database and logged); other errors are the host's own.
    pub async fn install(&self, candidate: Candidate) -> ServiceResult<Installed> {
        let _one_at_a_time = self.install_lock.lock().await;
        let sha256 = sha256_hex(&candidate.bytes);
        match self.install_checked(&candidate, &sha256).await? {
            // Its audit entry was committed with the version (`keep`).
            Ok(installed) => Ok(installed),
            Err(rejected) => {
                tracing::warn!(
                    source = %rejected.origin,
                    kind = rejected.kind,
                    sha256 = %&sha256[..12],
                    "connector candidate rejected: {}",
                    rejected.reason
                );
                self.metrics.candidate_rejected(rejected.kind);
                self.store
                    .add_rejection(&Rejection {
                        at: now_text(),
                        source: rejected.origin.clone(),
                        sha256: rejected.sha256.clone(),
                        name: rejected.name.clone(),
                        version: rejected.version.clone(),
                        kind: rejected.kind.into(),
                        reason: rejected.reason.clone(),
                    })
                    .await?;
                Err(ServiceError::Rejected(Box::new(rejected)))
            }
        }
    }

    async fn install_checked(
        &self,
        candidate: &Candidate,
        sha256: &str,
    ) -> Result<Result<Installed, Rejected>> {
        let (loaded, manifest, previous, escalation) = match self.examine(candidate, sha256).await?
        {
            Err(rejected) => return Ok(Err(rejected)),
            Ok(Examined::Installed(i)) => return Ok(Ok(i)),
            Ok(Examined::New {
                loaded,
                manifest,
                previous,
                escalation,
            }) => (loaded, manifest, previous, escalation),
        };
        let mut escalation = escalation;
        let mut shadow = None;
        if previous.is_some() && self.config.plugins.shadow_gate.contains(&manifest.name) {
            // Replayed on the recorded traffic before it may take over.
            let report = self
                .shadow_bytes(&manifest.name, &manifest.version, &candidate.bytes)
                .await
                .map_err(anyhow::Error::from)?;
            if report.unexpected > 0 {
                escalation.get_or_insert_with(Escalation::default).shadow = Some(report.summary());
            }
            shadow = Some(report);
        }
        let installed = self
            .keep(candidate, sha256, loaded, manifest, previous, escalation)
            .await?;
        Ok(Ok(Installed {
            shadow,
            ..installed
        }))
    }

    /// Every check of the installation path, with nothing written: `passerelle plugins
    /// validate` and the first half of [`Self::install`].
    pub async fn examine(
        &self,
        candidate: &Candidate,
        sha256: &str,
    ) -> Result<Result<Examined, Rejected>> {
        let reject = |kind: &'static str, reason: String, manifest: Option<&Manifest>| Rejected {
            kind,
            reason,
            origin: candidate.source.clone(),
            sha256: sha256.to_string(),
            name: manifest.map(|m| m.name.clone()),
            version: manifest.map(|m| m.version.clone()),
        };
        let all = self.store.connector_versions(None).await?;
        if let Some(same) = all.iter().find(|v| v.sha256 == sha256) {
            let manifest: Manifest = serde_json::from_value(same.manifest.clone())
                .context("stored manifest is unreadable")?;
            return Ok(Ok(Examined::Installed(Installed {
                manifest,
                sha256: sha256.to_string(),
                path: PathBuf::from(&same.path),
                outcome: Outcome::AlreadyInstalled,
                previous: all
                    .iter()
                    .find(|v| v.active && v.name == same.name)
                    .map(|v| v.version.clone()),
                escalation: same
                    .pending_approval
                    .as_deref()
                    .and_then(|p| serde_json::from_str(p).ok()),
                shadow: None,
            })));
        }

        let runtime = self.runtime.clone();
        let bytes = candidate.bytes.clone();
        // Compiling cannot be interrupted: past the cap the install stops waiting and
        // the compiling thread, when done, keeps nothing.
        let secs = self.config.runtime.max_compile_secs.max(0.0);
        let cap = std::time::Duration::from_secs_f64(secs);
        let deadline = Some((std::time::Instant::now() + cap, secs));
        let compiling =
            tokio::task::spawn_blocking(move || runtime.load_bytes_within(&bytes, deadline));
        let compiled = match tokio::time::timeout(cap, compiling).await {
            Ok(joined) => joined.context("compiling a component")?,
            Err(_) => Err(passerelle_runtime::sandbox::LoadError::TooSlow { secs }),
        };
        let loaded = match compiled {
            Ok(l) => l,
            Err(e) => return Ok(Err(reject(e.kind(), e.to_string(), None))),
        };
        let manifest = match self.describe(&loaded).await {
            Ok(m) => m,
            Err(e) => return Ok(Err(reject("describe-failed", format!("{e:#}"), None))),
        };
        if let Err(e) = validate_manifest(&manifest) {
            return Ok(Err(reject(
                "invalid-manifest",
                format!("{e:#}"),
                Some(&manifest),
            )));
        }
        if let Some(expected) = &candidate.expected_name {
            if *expected != manifest.name {
                return Ok(Err(reject(
                    "name-mismatch",
                    format!(
                        "expected connector `{expected}`, the component describes itself as `{}`",
                        manifest.name
                    ),
                    Some(&manifest),
                )));
            }
        }
        let versions: Vec<&ConnectorVersion> =
            all.iter().filter(|v| v.name == manifest.name).collect();
        if versions.iter().any(|v| v.version == manifest.version) {
            return Ok(Err(reject(
                "duplicate-version",
                format!(
                    "{} {} is already installed with different content; give the new build a new version",
                    manifest.name, manifest.version
                ),
                Some(&manifest),
            )));
        }
        let active = versions.iter().find(|v| v.active).copied();
        let mut escalation = None;
        if let Some(a) = active {
            let theirs = semver::Version::parse(&manifest.version)?;
            let ours = semver::Version::parse(&a.version).unwrap_or(semver::Version::new(0, 0, 0));
            if theirs <= ours {
                return Ok(Err(reject(
                    "not-newer",
                    format!(
                        "{} {} is not newer than the active {}; to go back to a kept version use `passerelle plugins rollback {} VERSION`",
                        manifest.name, manifest.version, a.version, manifest.name
                    ),
                    Some(&manifest),
                )));
            }
            let active_manifest: Manifest = serde_json::from_value(a.manifest.clone())
                .context("stored manifest is unreadable")?;
            let mut e = Escalation::between(&active_manifest, &manifest);
            e.risky_hosts = self.risky_hosts(&e.new_hosts)?;
            if !e.is_empty() {
                escalation = Some(e);
            }
        } else {
            // A first install: hosts needing consent wait for approval, and so does
            // everything it asks for when accounts (with their secrets) already wait
            // for it — whoever installs a name must not simply inherit them.
            let mut e = Escalation {
                risky_hosts: self.risky_hosts(&manifest.allowed_hosts)?,
                ..Escalation::default()
            };
            let waiting = self
                .store
                .list_accounts(None)
                .await?
                .iter()
                .filter(|a| a.connector == manifest.name)
                .count() as u64;
            if waiting > 0 {
                e.accounts_waiting = waiting;
                e.new_hosts = manifest.allowed_hosts.clone();
                e.new_secrets = manifest.secrets.iter().map(|s| s.name.clone()).collect();
            }
            if !e.is_empty() {
                escalation = Some(e);
            }
        }
        Ok(Ok(Examined::New {
            loaded,
            manifest,
            previous: active.map(|a| a.version.clone()),
            escalation,
        }))
    }

    /// The patterns among `hosts` that need consent and the operator has not trusted in
    /// the configuration (`plugins.trusted_hosts`), each with why.
    fn risky_hosts(&self, hosts: &[String]) -> Result<Vec<String>> {
        let plugins = &self.config.plugins;
        if plugins.trust_every_host {
            return Ok(Vec::new());
        }
        Ok(
            passerelle_runtime::capabilities::allowlist::Allowlist::risky(hosts)?
                .into_iter()
                .filter(|(p, _)| !plugins.trusted_hosts.contains(p))
                .map(|(p, why)| format!("{p} ({why})"))
                .collect(),
        )
    }

    /// Keeps a new version that passed [`Self::examine`]: the file, the record, and the
    /// activation (or the wait for approval).
    async fn keep(
        &self,
        candidate: &Candidate,
        sha256: &str,
        loaded: LoadedConnector,
        manifest: Manifest,
        previous: Option<String>,
        escalation: Option<Escalation>,
    ) -> Result<Installed> {
        let dir = self.plugins_dir().join(&manifest.name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{}-{}.wasm", manifest.version, &sha256[..12]));
        if !path.exists() {
            let tmp = dir.join(format!(".{}.tmp", &sha256[..12]));
            std::fs::write(&tmp, &candidate.bytes)?;
            std::fs::rename(&tmp, &path)?;
        }
        let pending = escalation
            .as_ref()
            .map(|e| serde_json::to_string(e).expect("serialisable"));
        let outcome = match &escalation {
            Some(_) => Outcome::PendingApproval,
            None => Outcome::Activated,
        };
        // The version and its audit entry: one transaction (its activation, when it
        // activates, is a second audited action).
        let mut w = self.audited().await?;
        let added = self
            .store
            .add_connector_version_in(
                &mut w,
                &passerelle_store::connectors::NewVersion {
                    name: &manifest.name,
                    version: &manifest.version,
                    sha256,
                    path: &path.to_string_lossy(),
                    manifest: &serde_json::to_value(&manifest)?,
                    component: &candidate.bytes,
                },
                pending.as_deref(),
            )
            .await?;
        if added {
            self.commit_audited(
                w,
                "connector.install",
                &manifest.name,
                serde_json::json!({
                    "version": manifest.version,
                    "sha256": sha256,
                    "source": candidate.source,
                    "outcome": outcome,
                    "escalation": escalation,
                }),
            )
            .await?;
        }
        self.loaded
            .lock()
            .expect("not poisoned")
            .insert(sha256.to_string(), loaded);
        match &escalation {
            Some(e) => {
                tracing::warn!(
                    connector = %manifest.name,
                    version = %manifest.version,
                    source = %candidate.source,
                    "connector installed but not activated: it asks for more than the active version ({e}); approve with `passerelle plugins approve {} {}`",
                    manifest.name,
                    manifest.version
                );
            }
            None => {
                self.activate(&manifest.name, &manifest.version, "installed")
                    .await?;
            }
        }
        Ok(Installed {
            manifest,
            sha256: sha256.to_string(),
            path,
            outcome,
            previous,
            escalation,
            shadow: None,
        })
    }

    /// The version of the account's connector that runs for its practice (a canary, or
    /// the active version), linked, with its manifest.
    pub async fn connector_for(
        &self,
        account: &passerelle_store::practices::Account,
    ) -> ServiceResult<(ConnectorVersion, LoadedConnector, Manifest)> {
        let version = self
            .store
            .connector_for(&account.connector, &account.practice_id)
            .await?
            .ok_or_else(|| connector_not_installed(&account.connector, &account.id))?;
        Ok(self.linked(version).await?)
    }

    /// The version a claimed run runs on (the claim chose it with the rule of
    /// [`Self::connector_for`] and recorded it), linked, with its manifest: read from
    /// the store once per version and process, then from memory (what a run uses of a
    /// version — its component, path and manifest — never changes under its hash).
    pub async fn claimed_connector(
        &self,
        account: &passerelle_store::practices::Account,
        version: &str,
        sha256: &str,
    ) -> ServiceResult<(ConnectorVersion, LoadedConnector, Manifest)> {
        let key = format!("{}\n{version}\n{sha256}", account.connector);
        let cached = self
            .versions
            .lock()
            .expect("not poisoned")
            .get(&key)
            .cloned();
        let (row, manifest) = match cached {
            Some(known) => known,
            None => {
                let row = self
                    .store
                    .connector_version(&account.connector, version)
                    .await?
                    .filter(|v| v.sha256 == sha256)
                    .ok_or_else(|| connector_not_installed(&account.connector, &account.id))?;
                let manifest: Manifest = serde_json::from_value(row.manifest.clone())
                    .context("stored manifest is unreadable")?;
                self.versions
                    .lock()
                    .expect("not poisoned")
                    .insert(key, (row.clone(), manifest.clone()));
                (row, manifest)
            }
        };
        let loaded = self.link(Path::new(&row.path), &row.sha256).await?;
        Ok((row, loaded, manifest))
    }

    /// The active version of `connector`, linked, with its manifest.
    pub async fn active_connector(
        &self,
        connector: &str,
    ) -> ServiceResult<(ConnectorVersion, LoadedConnector, Manifest)> {
        let version = self
            .store
            .active_connector(connector)
            .await?
            .ok_or_else(|| {
                ServiceError::conflict(
                    "connector-not-installed",
                    format!("no active version of connector `{connector}`: install one with `passerelle plugins install FILE.wasm`"),
                )
            })?;
        Ok(self.linked(version).await?)
    }

    async fn linked(
        &self,
        version: ConnectorVersion,
    ) -> Result<(ConnectorVersion, LoadedConnector, Manifest)> {
        let loaded = self.link(Path::new(&version.path), &version.sha256).await?;
        let manifest: Manifest = serde_json::from_value(version.manifest.clone())
            .context("stored manifest is unreadable")?;
        Ok((version, loaded, manifest))
    }
}

/// An account whose connector has no version to run.
pub fn connector_not_installed(connector: &str, account: &str) -> ServiceError {
    ServiceError::conflict(
        "connector-not-installed",
        format!("no active version of connector `{connector}` (account `{account}`): install one with `passerelle plugins install FILE.wasm`"),
    )
}
