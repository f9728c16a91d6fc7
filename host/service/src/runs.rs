//! Runs as operators see them: which accounts a sync of a practice covers, the sync log
//! with its filters, one run, and lifting a pause by hand (the requests for runs
//! themselves are [`crate::requests`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ServiceError, ServiceResult};
use crate::app::Passerelle;
use passerelle_model::run::{Mode, Run, RunFilter, Status, Trigger};
use passerelle_store::practices::Account;

/// Filters of the sync log, as the CLI and the API take them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub practice: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Only this connector's (platform's) runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    /// Runs older than this run id: the next page after a page ending at it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(minimum = 1)]
    pub before: Option<i64>,
    /// Runs started (or queued) at or after this RFC 3339 instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// 1 to 10,000; default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<i64>,
}

/// What "sync" asks for: a practice's accounts (or one), incremental or full.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// Only this account of the practice.
    #[serde(default)]
    pub account: Option<String>,
    /// Re-read the whole window and tombstone what the platform no longer returns.
    #[serde(default)]
    pub full: bool,
}

/// One account's answer to "Sync now".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Requested {
    pub account_id: String,
    pub run_id: i64,
    /// True when the account already had this run queued or running.
    pub coalesced: bool,
}

/// The answer to "Sync now": one run per account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SyncAccepted {
    pub runs: Vec<Requested>,
}

/// The answer to a resume: the `redrive` run queued (or already queued).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Resumed {
    pub account_id: String,
    pub run_id: i64,
    pub coalesced: bool,
}

impl SyncRequest {
    pub fn mode(&self) -> Mode {
        if self.full {
            Mode::Full
        } else {
            Mode::Incremental
        }
    }
}

impl Passerelle {
    /// The accounts a sync of `practice_id` covers: all of them, or the one named.
    pub async fn accounts_to_sync(
        &self,
        practice_id: &str,
        account_id: Option<&str>,
    ) -> ServiceResult<Vec<Account>> {
        self.practice(practice_id).await?;
        let mut accounts = self.store.list_accounts(Some(practice_id)).await?;
        if let Some(id) = account_id {
            accounts.retain(|a| a.id == id);
            if accounts.is_empty() {
                return Err(ServiceError::not_found(format!(
                    "practice `{practice_id}` has no account `{id}` (see `passerelle accounts list --practice {practice_id}`)"
                )));
            }
        }
        if accounts.is_empty() {
            return Err(ServiceError::conflict(
                "no-accounts",
                format!("practice `{practice_id}` has no accounts: add one with `passerelle accounts add`"),
            ));
        }
        Ok(accounts)
    }

    /// The sync log, newest first.
    pub async fn runs(&self, query: &RunQuery) -> ServiceResult<Vec<Run>> {
        let since = query
            .since
            .as_deref()
            .map(|s| {
                DateTime::parse_from_rfc3339(s)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| {
                        ServiceError::invalid(format!(
                            "`since` must be an RFC 3339 instant such as 2026-03-29T03:00:00+02:00: {e}"
                        ))
                    })
            })
            .transpose()?;
        let limit = super::limit(query.limit, 100, 10_000)?;
        if query.before.is_some_and(|b| b < 1) {
            return Err(ServiceError::invalid(
                "`before` must be a run id (1 or more)",
            ));
        }
        let mut runs = self
            .store
            .list_runs(&RunFilter {
                practice_id: query.practice.clone(),
                account_id: query.account.clone(),
                status: query.status,
                since,
                connector: query.connector.clone(),
                trigger: query.trigger,
                before: query.before,
                limit: Some(limit),
            })
            .await?;
        runs.iter_mut().for_each(withhold_cursors);
        Ok(runs)
    }

    /// One run of the sync log.
    pub async fn run(&self, id: i64) -> ServiceResult<Run> {
        let mut run = self
            .store
            .run(id)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("no run {id}")))?;
        withhold_cursors(&mut run);
        Ok(run)
    }

    /// Lifts an account's pause (drift or security) by the operator's hand, recorded in
    /// the audit trail; the caller re-drives it (here, or queued by the daemon).
    pub async fn lift_pause(&self, id: &str) -> ServiceResult<Account> {
        let account = self.account(id).await?;
        let pause = self.store.pause(id).await?.ok_or_else(|| not_paused(id))?;
        if !self.store.resume_account(id).await? {
            return Err(not_paused(id));
        }
        tracing::info!(account = %id, connector = %account.connector, reason = %pause.reason, "pause lifted by the operator");
        self.audit(
            "account.resume",
            id,
            serde_json::json!({"reason": pause.reason, "paused_by_run": pause.run_id}),
        )
        .await?;
        Ok(account)
    }
}

/// Resuming an account that is not paused.
pub(crate) fn not_paused(id: &str) -> ServiceError {
    ServiceError::conflict("conflict", format!("account `{id}` is not paused"))
}

/// A cursor is the connector's own state, opaque to the host and never scrubbed (the
/// next run needs it as it was written): it may hold anything the platform answered,
/// so only a principal allowed patient fields sees it; others get `null`.
fn withhold_cursors(run: &mut Run) {
    if !super::principal::current().allows(super::principal::Scope::PatientsRead) {
        run.cursor_before = None;
        run.cursor_after = None;
    }
}
