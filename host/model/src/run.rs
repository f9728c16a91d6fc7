//! The run vocabulary: what started a run ([`Trigger`]), how it ran ([`Mode`]), where it
//! is or how it ended ([`Status`], [`ErrorKind`]), what it did ([`RunCounts`]), the drift
//! report, and the sync log's row ([`Run`]). Each enum has one text form, used in the
//! database, the API, the CLI and the configuration.

use serde::{Deserialize, Serialize};

/// A text that is not one of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}` (one of: {})", valid.join(", "))]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
    pub valid: &'static [&'static str],
}

macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident ($what:literal) { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "kebab-case")]
        pub enum $name { $($variant),+ }
        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl $name {
            /// Parses the text form; the error lists the valid values.
            pub fn parse(s: &str) -> Result<Self, UnknownValue> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(UnknownValue {
                        what: $what,
                        value: s.to_string(),
                        valid: &[$($text),+],
                    }),
                }
            }
        }
        impl std::str::FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                Self::parse(s)
            }
        }
    };
}

text_enum!(
    /// What started a run.
    Trigger ("trigger") { Schedule = "schedule", Manual = "manual", CatchUp = "catch-up", Redrive = "redrive" }
);
text_enum!(
    /// Incremental (from the cursor) or full (the whole window, with tombstoning).
    Mode ("mode") { Incremental = "incremental", Full = "full" }
);
text_enum!(
    /// Where a run is or how it ended.
    Status ("status") {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        Drift = "drift",
        Skipped = "skipped",
        Cancelled = "cancelled",
    }
);
text_enum!(
    /// Why a run did not succeed: what the connector reported, what the sandbox or the
    /// host hit, or why the run never happened. Stored as its text in the sync log.
    ErrorKind ("error kind") {
        SchemaDrift = "schema-drift",
        Unauthorized = "unauthorized",
        RateLimited = "rate-limited",
        Unavailable = "unavailable",
        InvalidConfig = "invalid-config",
        Internal = "internal",
        LimitExceeded = "limit-exceeded",
        Security = "security",
        Quota = "quota",
        Trap = "trap",
        Host = "host",
        Storage = "storage",
        Cancelled = "cancelled",
        Interrupted = "interrupted",
        Missed = "missed",
        Paused = "paused",
        Busy = "busy",
    }
);

text_enum!(
    /// Why an account is paused: drift (lifted by a successful run or the operator) or
    /// a security event (lifted by the operator only).
    PauseReason ("pause reason") {
        Drift = "drift",
        Security = "security",
    }
);

impl ErrorKind {
    /// Whether a run that failed this way may succeed if tried again: the platform
    /// unavailable or rate-limiting, the database or the host momentarily failing.
    /// Drift, unauthorized, invalid configuration, connector bugs and limits never do.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::Unavailable | ErrorKind::RateLimited | ErrorKind::Storage | ErrorKind::Host
        )
    }
}

/// One row of the sync log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Run {
    pub id: i64,
    pub practice_id: String,
    pub account_id: String,
    pub connector: String,
    pub connector_version: String,
    pub connector_sha256: String,
    pub trigger: Trigger,
    pub mode: Mode,
    pub status: Status,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub counts: RunCounts,
    pub error_kind: Option<ErrorKind>,
    pub error_detail: Option<String>,
    /// The connector's cursor when the run began: its own state, never scrubbed, so
    /// `null` unless the reader holds `patients:read`.
    pub cursor_before: Option<String>,
    /// The cursor the run left (same rule).
    pub cursor_after: Option<String>,
    /// The connector's PII-free summary note.
    pub message: Option<String>,
    /// 1 for a first attempt; retries of a transient failure count up.
    pub attempt: i64,
    /// The platform's Retry-After, when it answered "slow down".
    pub retry_after_secs: Option<i64>,
    /// The connector's report, when the run ended `drift`.
    #[serde(default)]
    pub drift: Option<DriftReport>,
    /// Who ran it: the daemon's id, or `host/pid` of a local `passerelle sync`.
    #[serde(default)]
    pub owner: Option<String>,
}

/// Where a platform's response stopped matching what the connector expects. PII-free:
/// the connector names kinds, never values, and the host scrubs it like any error.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct DriftReport {
    /// Method and path of the endpoint (`GET /booking/{centre}.json`).
    pub endpoint: String,
    /// JSON path of the offending item.
    pub path: String,
    pub expected: String,
    pub found: String,
    /// The structure around the path in the response that drifted, as the host saw it:
    /// member names and JSON types, no value (`{"id": number, "start_date_v2": string}`).
    /// Absent when the run's exchanges were not recorded or the path is not found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<String>,
}

impl std::fmt::Display for DriftReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: at {} expected {}, found {}",
            self.endpoint, self.path, self.expected, self.found
        )
    }
}

/// What a run did. Accumulated by the runner, written when the run ends.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct RunCounts {
    pub appointments_added: i64,
    pub appointments_changed: i64,
    pub appointments_deleted: i64,
    pub appointments_tombstoned: i64,
    pub slots_written: i64,
    pub slots_removed: i64,
    pub http_requests: i64,
    pub bytes_received: i64,
    pub checkpoints: i64,
    /// Items set aside under the `quarantine` drift policy.
    #[serde(default)]
    pub quarantined: i64,
}

/// The identity of a run being started.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub practice_id: &'a str,
    pub account_id: &'a str,
    pub connector: &'a str,
    pub connector_version: &'a str,
    pub connector_sha256: &'a str,
    pub trigger: Trigger,
    pub mode: Mode,
    pub cursor_before: Option<&'a str>,
}

/// How a run ended. `error_detail` must already be free of patient data.
#[derive(Debug, Clone)]
pub struct RunEnd {
    pub status: Status,
    pub counts: RunCounts,
    pub error_kind: Option<ErrorKind>,
    pub error_detail: Option<String>,
    pub cursor_after: Option<String>,
    pub message: Option<String>,
    pub duration_ms: i64,
    /// The platform's Retry-After (rate-limited runs).
    pub retry_after_secs: Option<i64>,
    /// The drift report (runs that end `drift`).
    pub drift: Option<DriftReport>,
}

impl RunEnd {
    /// A run that ended before doing anything, for `reason`.
    pub fn without_work(status: Status, error_kind: ErrorKind, reason: String) -> RunEnd {
        RunEnd {
            status,
            counts: RunCounts::default(),
            error_kind: Some(error_kind),
            error_detail: Some(reason),
            cursor_after: None,
            message: None,
            duration_ms: 0,
            retry_after_secs: None,
            drift: None,
        }
    }
}

/// Filters for [`Store::list_runs`].
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub practice_id: Option<String>,
    pub account_id: Option<String>,
    pub status: Option<Status>,
    /// Runs started (or queued) at or after this instant.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only this connector's runs.
    pub connector: Option<String>,
    pub trigger: Option<Trigger>,
    /// Runs older than this id (the next page of a list newest first).
    pub before: Option<i64>,
    pub limit: Option<i64>,
}
