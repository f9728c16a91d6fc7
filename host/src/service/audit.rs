//! The audit trail as the service keeps it: every admin action and every read of patient
//! data is recorded by the service method that does it (never by a front end), with the
//! actor the front end named for the request ([`as_actor`]: the admin API's token, the
//! CLI's local user), and verified with [`Passerelle::verify_audit`].

use std::future::Future;

use super::ServiceResult;
use crate::app::Passerelle;
use crate::store::audit::{AuditEntry, AuditReport};

tokio::task_local! {
    static ACTOR: String;
}

/// Runs `work` on behalf of `actor` (`token:<name>`, `local:<user>`): what it records in
/// the audit trail names them. Outside any such scope the actor is `daemon`.
pub async fn as_actor<F: Future>(actor: String, work: F) -> F::Output {
    ACTOR.scope(actor, work).await
}

/// The actor of the current request.
pub fn current_actor() -> String {
    ACTOR
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "daemon".to_string())
}

/// The CLI's actor on this machine: `local:<login name>`.
pub fn local_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("local:{user}")
}

impl Passerelle {
    /// Records `action` on `target` by the current actor. `detail` is JSON and never
    /// holds a secret or patient value.
    pub async fn audit(
        &self,
        action: &str,
        target: &str,
        detail: serde_json::Value,
    ) -> ServiceResult<()> {
        self.store
            .append_audit(&current_actor(), action, target, &detail.to_string())
            .await?;
        Ok(())
    }

    /// The newest entries, newest first (at most 10,000).
    pub async fn audit_entries(&self, limit: Option<i64>) -> ServiceResult<Vec<AuditEntry>> {
        let limit = super::limit(limit, 100, 10_000)?;
        Ok(self.store.audit_entries(limit).await?)
    }

    /// Checks the whole chain.
    pub async fn verify_audit(&self) -> ServiceResult<AuditReport> {
        Ok(self.store.verify_audit().await?)
    }
}
