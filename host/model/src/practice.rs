//! A practice and its accounts on platforms, as every layer names them (the store keeps
//! them; secrets are names here, never values).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A medical practice: every sync is scoped to one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Practice {
    pub id: String,
    pub name: String,
    pub timezone: String,
    /// Its own cron expression (in `timezone`); None: the default schedule.
    pub schedule: Option<String>,
    /// What the open-data export publishes about it; None: not published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<crate::public::PublicInfo>,
}

/// One practice's presence on one platform: its connector, settings and the names of
/// its secrets.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Account {
    pub id: String,
    pub practice_id: String,
    pub connector: String,
    pub label: Option<String>,
    pub settings: BTreeMap<String, String>,
    /// Names of the configured secrets (never values).
    pub secrets: Vec<String>,
    /// Its own listing for the open-data export (booking URL, type); None: its
    /// practice's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listing: Option<crate::public::Listing>,
}
