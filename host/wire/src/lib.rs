//! The admin API's own bodies — requests that are not a service type, and the error
//! body — in one place both ends read: the server's handlers (`passerelle-api`) and the
//! typed client (`passerelle::client`). Everything else on the wire is the model's or the
//! service's own types; no handler module and no store row travels.

use serde::{Deserialize, Serialize};

/// Which version to go back to; absent: the one active before the current one.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionChoice {
    pub version: Option<String>,
}

/// The version to approve.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveRequest {
    pub version: String,
}

/// A kept version and the practices that run it.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CanaryRequest {
    pub version: String,
    /// At least one practice.
    #[schema(min_items = 1)]
    pub practices: Vec<String>,
}

/// A secret's value. No Debug: the value must not reach a log by accident.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretValue {
    /// The secret's value: at least 8 bytes (`passerelle_model::MIN_SECRET_BYTES`; a
    /// shorter one could appear in a platform's answer by chance). Eight characters are
    /// always at least eight bytes.
    #[schema(min_length = 8)]
    pub value: String,
}

/// `POST /v1/subscriptions/{id}/replay`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Replay {
    /// Deliver every change after this sequence number again.
    #[schema(minimum = 0)]
    #[serde(deserialize_with = "passerelle_model::schema::whole_number")]
    pub after: i64,
}

/// The body of every error answer.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable code and a message for people.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// e.g. `not-found`, `invalid-request`, `invalid-body`, `conflict`, `too-soon`, or a
    /// refusal kind.
    pub code: String,
    pub message: String,
}
