//! A recorded run as the flight recorder keeps it and the kit writes it: the replay's
//! clock, window, settings, mode and cursor, and the redacted exchanges.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A recorded run as the kit's cassettes hold it (redacted): the run's clock, window and
/// settings, and its exchanges in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Cassette {
    pub replay: CassetteReplay,
    pub exchanges: Vec<CassetteExchange>,
    /// Exchanges of the run were left out: past `flight_recorder.per_account_kib`, or
    /// the memory budget (those after the first left out are missing).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// How a cassette replays: the run's `now` (RFC 3339), its window (`PAST:FUTURE` days),
/// the account's settings, and the run's mode and starting cursor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CassetteReplay {
    pub now: String,
    pub window: String,
    pub settings: BTreeMap<String, String>,
    /// The run's mode (`incremental`, `full`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The cursor the run started from (an incremental run's requests depend on it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// One exchange: the request the connector made and the answer it got, redacted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CassetteExchange {
    pub method: String,
    pub url: String,
    pub status: u16,
    /// The response headers a connector may read (lower-case names).
    pub headers: BTreeMap<String, String>,
    pub body: String,
    /// Whether the body is JSON (else text).
    pub json: bool,
    /// Where it comes from when not from the run itself (`baseline run N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}
