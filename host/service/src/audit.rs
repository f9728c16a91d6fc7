//! The audit trail as the service keeps it: every admin action and every read of patient
//! data is recorded by the service method that does it (never by a front end), with the
//! request's principal ([`super::principal`]: the admin API's token, the CLI's local
//! user, or the daemon), and verified with [`Passerelle::verify_audit`].

use super::ServiceResult;
use crate::app::Passerelle;
use passerelle_model::audit::{AuditEntry, AuditReport};

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
            .append_audit(
                &super::principal::current().name,
                action,
                target,
                &detail.to_string(),
            )
            .await?;
        Ok(())
    }

    /// Begins an audited action: its writes go in this transaction, which
    /// [`Self::commit_audited`] ends with the action's entry.
    pub(crate) async fn audited(&self) -> ServiceResult<passerelle_store::audit::Write> {
        Ok(self.store.audited_write().await?)
    }

    /// Commits an audited action with its entry (the current principal's): both or
    /// neither.
    pub(crate) async fn commit_audited(
        &self,
        w: passerelle_store::audit::Write,
        action: &str,
        target: &str,
        detail: serde_json::Value,
    ) -> ServiceResult<()> {
        self.store
            .commit_audited(
                w,
                passerelle_store::audit::Entry {
                    actor: &super::principal::current().name,
                    action,
                    target,
                    detail: &detail.to_string(),
                },
            )
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
