//! The service layer: every rule about practices, accounts, connectors and runs, once.
//! The command line (locally), the admin API and any later console call these methods
//! on [`Passerelle`](crate::Passerelle) and only translate their input and output; a
//! refusal is a [`ServiceError`], which each front end maps in one place (the API to a
//! status code, the CLI to a message and an exit code).
//!
//! - [`audit`]: the audit trail (who did what, and who read patient data);
//! - [`principal`]: who a request is for, and the scopes it holds;
//! - [`tokens`]: named admin-API tokens with scopes;
//! - [`practices`]: practices (with their schedule and next sync), accounts, secrets;
//! - [`check`]: whether an account can work (declared settings, the connector's
//!   `check()`);
//! - [`connectors`]: installed versions as shown, installation, approval, rollback,
//!   canaries, drift pauses and quarantined items;
//! - [`daemons`]: the daemons sharing the database;
//! - [`overview`]: the operator's overview (the last day's runs, durations, what needs
//!   attention), a searchable page of practices, accounts with their last run;
//! - [`records`]: appointments and slots read back, a page at a time;
//! - [`export`]: the open-data export in ViteMaDose's format;
//! - [`feed`]: the change feed, read after a sequence number, and its retention;
//! - [`subscriptions`]: webhook subscriptions; [`delivery`]: the feed sent to them;
//! - [`recorder`]: the one writer of the sync log's rows, from queued to finished;
//! - [`runs`]: the sync log, one run, lifting a pause;
//! - [`requests`]: requests for runs — queued for the daemons (slots, retries,
//!   re-drives), "Sync now" and resume, or done here in the foreground.

pub mod accounts;
pub mod alerts;
pub mod app;
pub mod audit;
pub mod auth_limit;
pub mod backup;
pub mod check;
pub mod config;
pub mod connectors;
pub mod daemons;
pub mod delivery;
pub mod export;
pub mod feed;
pub mod flight;
pub mod overview;
pub mod plugins;
pub mod practices;
pub mod principal;
pub mod recorder;
pub mod records;
pub mod requests;
pub mod retry;
pub mod runs;
pub mod schedule;
pub mod subscriptions;
pub mod sync;
pub mod tokens;
pub mod trace;

pub use app::{tune_allocator, Passerelle};

use passerelle_model::ids::InvalidId;
use passerelle_store::error::StoreError;

/// Why the service refused or failed a request. Everything but [`ServiceError::Internal`]
/// is the caller's to fix, with a message that says how; `Internal` (the database, the
/// file system) is logged and shown without its details.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request is malformed or breaks a rule (empty name, bad id, bad schedule).
    #[error("{0}")]
    Invalid(String),
    /// What the request names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with what exists (a duplicate id, a version that does not
    /// wait for approval, a practice without accounts); `code` says which conflict.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A manual run asked for inside the account's minimum interval.
    #[error("{message}")]
    TooSoon {
        message: String,
        retry_after_secs: u64,
    },
    /// A component refused by the installation checks ([`Rejected::kind`] names the
    /// check); the active version keeps serving.
    #[error("{0}")]
    Rejected(Box<passerelle_model::connector::Rejected>),
    /// What the request asks for is no longer kept (a feed position behind retention).
    #[error("{0}")]
    Gone(String),
    /// The request's token lacks the scope this needs.
    #[error("{0}")]
    Forbidden(String),
    /// The daemon is stopping and takes no new work.
    #[error("the daemon is shutting down")]
    ShuttingDown,
    /// The host's own failure (database, files): not the caller's fault.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// What service methods return.
pub type ServiceResult<T> = std::result::Result<T, ServiceError>;

impl ServiceError {
    pub fn conflict(code: &'static str, message: impl Into<String>) -> ServiceError {
        ServiceError::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> ServiceError {
        ServiceError::NotFound(message.into())
    }

    pub fn invalid(message: impl Into<String>) -> ServiceError {
        ServiceError::Invalid(message.into())
    }
}

impl From<InvalidId> for ServiceError {
    fn from(e: InvalidId) -> Self {
        ServiceError::Invalid(e.to_string())
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ServiceError::NotFound(m),
            StoreError::Conflict(m) => ServiceError::conflict("conflict", m),
            StoreError::Invalid(m) => ServiceError::Invalid(m),
            other => ServiceError::Internal(other.into()),
        }
    }
}

/// A limit parameter within `1..=max`, or the default.
pub(crate) fn limit(value: Option<i64>, default: i64, max: i64) -> ServiceResult<i64> {
    let limit = value.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(ServiceError::invalid(format!(
            "`limit` must be between 1 and {max}"
        )));
    }
    Ok(limit)
}
