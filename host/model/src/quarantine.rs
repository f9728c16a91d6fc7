//! Items a connector set aside under the `quarantine` drift policy, and how to list them.

use serde::{Deserialize, Serialize};

use crate::run::DriftReport;

/// One item set aside. `item` may hold patient data: it is returned only on request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct QuarantinedItem {
    pub id: i64,
    pub connector: String,
    pub practice_id: String,
    pub account_id: String,
    pub drift: DriftReport,
    /// The item's SHA-256; `null` below `patients:read` (a hash of a patient-bearing
    /// item confirms a guess of its content).
    pub item_sha256: Option<String>,
    /// The item's size in bytes.
    pub item_bytes: i64,
    /// The item as received; None unless asked for.
    pub item: Option<String>,
    /// The connector version (content hash) that last set it aside.
    pub version_sha256: String,
    pub first_run_id: i64,
    pub last_run_id: i64,
    pub first_seen: String,
    pub last_seen: String,
    pub times_seen: i64,
}

/// Filters for [`Store::quarantined`].
#[derive(Debug, Clone, Default)]
pub struct QuarantineFilter {
    pub connector: Option<String>,
    pub account_id: Option<String>,
    pub with_items: bool,
    pub limit: Option<i64>,
}
