//! A named admin-API token as shown (its hash never is).

use serde::Serialize;

/// One named token as stored (its hash is not shown).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ApiToken {
    pub name: String,
    /// `admin`, `read`, `patients:read`.
    pub scopes: Vec<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
}
