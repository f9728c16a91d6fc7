//! The audit trail's vocabulary: an entry (who did what to what, chained by hash) and
//! what verifying the chain found.

use serde::Serialize;

/// One entry.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: String,
    /// `token:<name>` (the admin API), `local:<user>` (the CLI on the machine), `daemon`.
    pub actor: String,
    pub action: String,
    pub target: String,
    /// What else the action concerned, as JSON (never a secret or patient value).
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// What [`Store::verify_audit`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditReport {
    pub entries: u64,
    /// The newest entry's sequence number and hash (keep them elsewhere to detect a cut
    /// tail).
    pub head_seq: i64,
    pub head_hash: String,
    /// Each break in the chain, in order; empty when the trail is intact.
    pub problems: Vec<String>,
}
