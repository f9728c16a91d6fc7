//! Whether an account can work: its settings against what its connector declares (a
//! setting the manifest does not declare is refused when the account is added or
//! changed), then the connector's own `check()` in the sandbox, with the network and the
//! account's secrets but no records. Run when an account is added or changed, and by
//! `passerelle accounts check` / `POST /v1/accounts/{id}/check`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ServiceError, ServiceResult};
use crate::app::Passerelle;
use passerelle_model::connector::Manifest;
use passerelle_model::run::ErrorKind;
use passerelle_runtime::contract::{describe_error, wit_account};
use passerelle_runtime::sandbox::{Call, CallOutput, RunParts};
use passerelle_store::practices::Account;

/// What checking an account found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccountCheck {
    pub account_id: String,
    /// The connector version that checked it; none when the connector is not installed.
    pub connector_version: Option<String>,
    /// The settings are complete and the connector's `check()` succeeded.
    pub ok: bool,
    /// Why not, as a run would say it (`invalid-config`, `unauthorized`, …).
    pub error_kind: Option<ErrorKind>,
    /// PII-free detail.
    pub detail: Option<String>,
}

/// Refuses settings the manifest does not declare (409 `undeclared-setting`), naming the
/// ones it does.
pub(crate) fn refuse_undeclared(
    settings: &BTreeMap<String, String>,
    manifest: &Manifest,
) -> ServiceResult<()> {
    let unknown: Vec<&str> = settings
        .keys()
        .filter(|k| !manifest.settings.iter().any(|p| &p.name == *k))
        .map(String::as_str)
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let declared: Vec<&str> = manifest.settings.iter().map(|p| p.name.as_str()).collect();
    // A conflict with the connector installed now (another version may declare it), not
    // a malformed request.
    Err(ServiceError::conflict(
        "undeclared-setting",
        format!(
            "connector `{}` declares no setting {}; its settings are: {}",
            manifest.name,
            unknown
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", "),
            if declared.is_empty() {
                "none".to_string()
            } else {
                declared.join(", ")
            }
        ),
    ))
}

impl Passerelle {
    /// The manifest of the version of `connector` that runs for `practice_id`, if any.
    pub(crate) async fn manifest_for(
        &self,
        connector: &str,
        practice_id: &str,
    ) -> ServiceResult<Option<Manifest>> {
        let Some(version) = self.store.connector_for(connector, practice_id).await? else {
            return Ok(None);
        };
        let manifest = serde_json::from_value(version.manifest)
            .map_err(|e| anyhow::anyhow!("stored manifest is unreadable: {e}"))?;
        Ok(Some(manifest))
    }

    /// Checks an account: its settings, then its connector's `check()`.
    pub async fn check_account(&self, id: &str) -> ServiceResult<AccountCheck> {
        let account = self.account(id).await?;
        self.check_candidate(&account, None).await
    }

    /// Checks an account as it is, or as it would be: `secrets` are the values of its
    /// secrets when they are not the stored ones (an account not stored yet); None
    /// reads the stored ones.
    pub(crate) async fn check_candidate(
        &self,
        account: &Account,
        secrets: Option<&BTreeMap<String, String>>,
    ) -> ServiceResult<AccountCheck> {
        let outcome = |version: Option<&str>, error: Option<(ErrorKind, String)>| AccountCheck {
            account_id: account.id.clone(),
            connector_version: version.map(str::to_string),
            ok: error.is_none(),
            error_kind: error.as_ref().map(|(k, _)| *k),
            detail: error.map(|(_, d)| d),
        };
        if self
            .store
            .connector_for(&account.connector, &account.practice_id)
            .await?
            .is_none()
        {
            return Ok(outcome(
                None,
                Some((
                    ErrorKind::InvalidConfig,
                    format!(
                        "connector `{}` is not installed (passerelle plugins install FILE.wasm)",
                        account.connector
                    ),
                )),
            ));
        }
        let (version, loaded, manifest) = self.connector_for(account).await?;
        if let Some(problem) = manifest.missing_configuration(account) {
            return Ok(outcome(
                Some(&version.version),
                Some((ErrorKind::InvalidConfig, problem)),
            ));
        }
        let error = self.run_check(account, &manifest, &loaded, secrets).await?;
        Ok(outcome(Some(&version.version), error))
    }

    /// Calls the connector's `check()` for `account`: None when it succeeded.
    async fn run_check(
        &self,
        account: &Account,
        manifest: &Manifest,
        loaded: &passerelle_runtime::sandbox::LoadedConnector,
        secrets: Option<&BTreeMap<String, String>>,
    ) -> ServiceResult<Option<(ErrorKind, String)>> {
        let limits = self.config.limits.clone();
        let (http, scrubber) = self
            .prepare_http(account, manifest, &limits, secrets)
            .await?;
        let span = tracing::info_span!(
            "check",
            practice = %account.practice_id,
            account = %account.id,
            connector = %manifest.name,
            version = %manifest.version,
        );
        let finished =
            self.runtime
                .execute(
                    loaded,
                    RunParts {
                        http: Some(http),
                        records: None,
                        scrubber,
                        clock: passerelle_runtime::capabilities::clock::RunClock::at(
                            chrono::Utc::now(),
                        ),
                        span,
                        limits,
                    },
                    Call::Check(wit_account(account)),
                )
                .await;
        let mut scrubber = finished.scrubber;
        Ok(match finished.output {
            Ok(CallOutput::Checked(Ok(()))) => None,
            Ok(CallOutput::Checked(Err(e))) => {
                let (_, kind, detail) = describe_error(&e);
                Some((kind, scrubber.scrub(&detail)))
            }
            Ok(_) => Some((ErrorKind::Host, "unexpected answer to check()".into())),
            Err(failure) => Some((failure.kind(), failure.detail().to_string())),
        })
    }
}
