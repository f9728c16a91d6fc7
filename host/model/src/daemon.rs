//! A live daemon on the database, as `passerelle daemons` and `/healthz` show it.

use serde::{Deserialize, Serialize};

/// A daemon as the database knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DaemonRow {
    pub id: String,
    pub host: String,
    pub pid: i64,
    pub version: String,
    pub started_at: String,
    pub heartbeat_at: String,
    pub lease_until: String,
    /// Runs it holds now.
    pub running: i64,
}
