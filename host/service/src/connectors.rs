//! Connector versions as operators see and steer them: the list with canaries marked,
//! refused candidates, installation (one path for the CLI, the API and the watched
//! directory; its checks live in [`crate::plugins`]), activation, approval, rollback,
//! canaries, and the drift loop's paused accounts and quarantined items.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{ServiceError, ServiceResult};
use crate::app::Passerelle;
use crate::plugins::Installed;
use passerelle_model::connector::{Activation, Escalation, Outcome};
use passerelle_model::connector::{Canary, Rejection};
use passerelle_model::pause::Pause;
use passerelle_model::quarantine::{QuarantineFilter, QuarantinedItem};
use passerelle_store::connectors::ConnectorVersion;
use passerelle_store::notify::Change;

/// An installed connector version, as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConnectorView {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub active: bool,
    pub installed_at: String,
    pub activated_at: Option<String>,
    /// Set while the version waits for approval: what it asks for beyond the version
    /// that was active when it arrived.
    pub pending_approval: Option<Escalation>,
    /// Set while the version runs as a canary: for these practices only.
    #[serde(default)]
    pub canary: Option<Vec<String>>,
}

impl ConnectorView {
    fn new(v: ConnectorVersion, canaries: &[Canary]) -> ConnectorView {
        let canary = canaries
            .iter()
            .find(|c| c.name == v.name && c.version == v.version)
            .map(|c| c.practices.clone());
        ConnectorView {
            pending_approval: v
                .pending_approval
                .as_deref()
                .and_then(|p| serde_json::from_str(p).ok()),
            name: v.name,
            version: v.version,
            sha256: v.sha256,
            active: v.active,
            installed_at: v.installed_at,
            activated_at: v.activated_at,
            canary,
        }
    }
}

/// What an installation did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InstallAnswer {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub outcome: Outcome,
    /// The version active when the candidate arrived.
    pub previous: Option<String>,
    pub escalation: Option<Escalation>,
}

impl From<Installed> for InstallAnswer {
    fn from(i: Installed) -> Self {
        InstallAnswer {
            name: i.manifest.name,
            version: i.manifest.version,
            sha256: i.sha256,
            outcome: i.outcome,
            previous: i.previous,
            escalation: i.escalation,
        }
    }
}

fn not_installed(name: &str) -> ServiceError {
    ServiceError::not_found(format!(
        "connector `{name}` is not installed (see `passerelle plugins list`)"
    ))
}

fn no_version(name: &str, version: &str) -> ServiceError {
    ServiceError::conflict(
        "conflict",
        format!("connector `{name}` has no installed version `{version}` (see `passerelle plugins list`)"),
    )
}

fn no_canary(name: &str) -> ServiceError {
    ServiceError::conflict(
        "conflict",
        format!("connector `{name}` has no canary running"),
    )
}

impl Passerelle {
    /// Installed versions, newest first per connector, with running canaries marked.
    pub async fn connector_views(&self) -> ServiceResult<Vec<ConnectorView>> {
        let canaries = self.store.canaries().await?;
        Ok(self
            .store
            .connector_versions(None)
            .await?
            .into_iter()
            .map(|v| ConnectorView::new(v, &canaries))
            .collect())
    }

    /// Refused candidates, newest first.
    pub async fn rejections(&self, limit: Option<i64>) -> ServiceResult<Vec<Rejection>> {
        let limit = super::limit(limit, 50, 1000)?;
        Ok(self.store.rejections(limit).await?)
    }

    /// `NotFound` unless some version of `name` is installed.
    async fn known_connector(&self, name: &str) -> ServiceResult<()> {
        if self.store.connector_versions(Some(name)).await?.is_empty() {
            return Err(not_installed(name));
        }
        Ok(())
    }

    /// Accounts paused by drift, with the drift report.
    pub async fn paused(&self, connector: Option<&str>) -> ServiceResult<Vec<Pause>> {
        Ok(self.store.pauses(connector).await?)
    }

    /// Items set aside under the `quarantine` drift policy, newest first (the items
    /// themselves only when `filter.with_items`).
    pub async fn quarantined(
        &self,
        filter: QuarantineFilter,
    ) -> ServiceResult<Vec<QuarantinedItem>> {
        let limit = super::limit(filter.limit, 100, 10_000)?;
        if filter.with_items {
            super::principal::require(
                super::principal::Scope::PatientsRead,
                "reading quarantined items (they may hold patient data)",
            )?;
        }
        let mut items = self
            .store
            .quarantined(&QuarantineFilter {
                limit: Some(limit),
                ..filter.clone()
            })
            .await?;
        if !super::principal::current().allows(super::principal::Scope::PatientsRead) {
            items.iter_mut().for_each(|q| q.item_sha256 = None);
        }
        if filter.with_items && !items.is_empty() {
            // The items may hold patient data: who read which is recorded.
            self.audit(
                "read.quarantined-items",
                filter.account_id.as_deref().unwrap_or("*"),
                serde_json::json!({
                    "items": items.iter().map(|q| &q.item_sha256).collect::<Vec<_>>(),
                    "connector": filter.connector,
                }),
            )
            .await?;
        }
        Ok(items)
    }

    /// Makes a kept version the active one: links it first (so the switch itself is one
    /// transaction), then tells the daemon, which re-drives drift-paused accounts.
    pub async fn activate(
        &self,
        name: &str,
        version: &str,
        why: &str,
    ) -> ServiceResult<Activation> {
        let versions = self.store.connector_versions(Some(name)).await?;
        let target = versions
            .iter()
            .find(|v| v.version == version)
            .ok_or_else(|| no_version(name, version))?;
        let from = versions
            .iter()
            .find(|v| v.active)
            .map(|v| v.version.clone());
        self.link(Path::new(&target.path), &target.sha256).await?;
        let canaries = self.store.canaries().await?;
        let started = std::time::Instant::now();
        // The switch, the end of a promoted canary and the audit entry: one transaction.
        let mut w = self.audited().await?;
        self.store
            .activate_connector_version_in(&mut w, name, version)
            .await?;
        if canaries
            .iter()
            .any(|c| c.name == name && c.version == version)
        {
            // Activating the canary's version is its promotion.
            self.store.clear_canary_in(&mut w, name).await?;
        }
        self.commit_audited(
            w,
            "connector.activate",
            name,
            serde_json::json!({"version": version, "sha256": target.sha256, "from": from, "why": why}),
        )
        .await?;
        let took = started.elapsed();
        self.metrics.activated(name);
        self.announce(Change::Activation).await;
        tracing::info!(
            connector = name,
            version,
            sha256 = %&target.sha256[..12],
            previous = from.as_deref().unwrap_or("none"),
            activation_ms = took.as_secs_f64() * 1000.0,
            "connector version activated ({why})"
        );
        Ok(Activation {
            name: name.to_string(),
            from,
            to: version.to_string(),
            sha256: target.sha256.clone(),
        })
    }

    /// Activates a version that waits for approval.
    pub async fn approve(&self, name: &str, version: &str) -> ServiceResult<Activation> {
        self.known_connector(name).await?;
        let versions = self.store.connector_versions(Some(name)).await?;
        let Some(v) = versions.iter().find(|v| v.version == version) else {
            return Err(no_version(name, version));
        };
        if v.pending_approval.is_none() {
            return Err(ServiceError::conflict(
                "conflict",
                format!("{name} {version} does not wait for approval"),
            ));
        }
        self.activate(name, version, "approved by the operator")
            .await
    }

    /// Activates `version`, or the version that was active before the current one.
    pub async fn rollback(&self, name: &str, version: Option<&str>) -> ServiceResult<Activation> {
        let versions = self.store.connector_versions(Some(name)).await?;
        if versions.is_empty() {
            return Err(not_installed(name));
        }
        let target = match version {
            Some(wanted) => {
                let Some(v) = versions.iter().find(|v| v.version == wanted) else {
                    return Err(no_version(name, wanted));
                };
                if v.active {
                    return Err(ServiceError::conflict(
                        "conflict",
                        format!("{name} {wanted} is already the active version"),
                    ));
                }
                if v.pending_approval.is_some() {
                    return Err(ServiceError::conflict(
                        "conflict",
                        format!("{name} {wanted} waits for approval: use `passerelle plugins approve {name} {wanted}`"),
                    ));
                }
                v
            }
            None => versions
                .iter()
                .filter(|v| !v.active && v.activated_at.is_some())
                .max_by(|a, b| a.activated_at.cmp(&b.activated_at))
                .ok_or_else(|| ServiceError::conflict("conflict", format!("no earlier version of `{name}` was ever active; name one: `passerelle plugins rollback {name} VERSION`")))?,
        };
        let target = target.version.clone();
        self.activate(name, &target, "rollback").await
    }

    /// Runs a kept version for the accounts of `practices` only (a canary), before
    /// promoting it (`promote`, or any activation of that version) or stopping it.
    /// Starting a canary is the operator's approval of that version for those practices.
    pub async fn start_canary(
        &self,
        name: &str,
        version: &str,
        practices: &[String],
    ) -> ServiceResult<Canary> {
        if practices.is_empty() {
            return Err(ServiceError::invalid(
                "name at least one practice for the canary",
            ));
        }
        let versions = self.store.connector_versions(Some(name)).await?;
        if versions.is_empty() {
            return Err(not_installed(name));
        }
        for p in practices {
            self.practice(p).await?;
        }
        let Some(target) = versions.iter().find(|v| v.version == version) else {
            return Err(no_version(name, version));
        };
        if target.active {
            return Err(ServiceError::conflict(
                "conflict",
                format!("{name} {version} is already the active version"),
            ));
        }
        self.link(Path::new(&target.path), &target.sha256).await?;
        let mut w = self.audited().await?;
        self.store
            .set_canary_in(&mut w, name, version, practices)
            .await?;
        self.commit_audited(
            w,
            "connector.canary-start",
            name,
            serde_json::json!({"version": version, "practices": practices}),
        )
        .await?;
        self.announce(Change::Activation).await;
        tracing::info!(
            connector = name,
            version,
            practices = %practices.join(","),
            "canary started: these practices' runs use this version"
        );
        self.store
            .canaries()
            .await?
            .into_iter()
            .find(|c| c.name == name)
            .ok_or_else(|| anyhow::anyhow!("the canary just recorded is missing").into())
    }

    /// Makes the canary's version active for every practice.
    pub async fn promote(&self, name: &str) -> ServiceResult<Activation> {
        self.known_connector(name).await?;
        let canary = self
            .store
            .canaries()
            .await?
            .into_iter()
            .find(|c| c.name == name)
            .ok_or_else(|| no_canary(name))?;
        self.activate(name, &canary.version, "canary promoted")
            .await
    }

    /// Stops a canary: its practices go back to the active version.
    pub async fn stop_canary(&self, name: &str) -> ServiceResult<()> {
        self.known_connector(name).await?;
        let mut w = self.audited().await?;
        if !self.store.clear_canary_in(&mut w, name).await? {
            return Err(no_canary(name));
        }
        self.commit_audited(w, "connector.canary-stop", name, serde_json::json!({}))
            .await?;
        self.announce(Change::Activation).await;
        tracing::info!(connector = name, "canary stopped");
        Ok(())
    }
}
