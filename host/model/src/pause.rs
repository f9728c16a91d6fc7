//! A paused account: a run ended `drift` (or a `security` event), and what it found.

use serde::{Deserialize, Serialize};

use crate::run::{DriftReport, PauseReason};

/// One paused account.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Pause {
    pub account_id: String,
    pub reason: PauseReason,
    pub connector: String,
    /// The run that paused it.
    pub run_id: i64,
    /// The connector version and hash that run used.
    pub version: String,
    pub sha256: String,
    /// What drifted; for a security event, where the secret came back (`found`).
    pub drift: DriftReport,
    pub paused_at: String,
}
