//! The vocabulary every layer shares, with no I/O: ids and their validation ([`ids`]),
//! connectors' manifests and what installing them does ([`connector`]), the run
//! vocabulary ([`run`]), the records connectors emit ([`records`]) and the feed of their changes ([`feed`]), a practice's public metadata ([`public`]), a run limit
//! hit ([`LimitExceeded`]) and content hashes ([`sha256_hex`]).

pub mod audit;
pub mod connector;
pub mod daemon;
pub mod departments;
pub mod feed;
pub mod ids;
pub mod limits;
pub mod pause;
pub mod practice;
pub mod public;
pub mod quarantine;
pub mod records;
pub mod run;
pub mod schema;
pub mod text;
pub mod token;

use sha2::{Digest, Sha256};

/// The shortest secret value an account may hold: a shorter one could occur by chance
/// in a platform's answer, and every echo of a secret ends the run as a security event.
pub const MIN_SECRET_BYTES: usize = 8;

/// A run limit was hit; the run fails with this reason.
#[derive(Debug, Clone, thiserror::Error)]
#[error("limit exceeded: {0}")]
pub struct LimitExceeded(pub String);

/// A commit would take an account past its quota, or the database's disk is nearly
/// full: nothing of the commit is written, the run ends `quota` and the account is
/// paused (security) until the operator resumes it. Says what and how much, never a
/// record's content.
#[derive(Debug, Clone, thiserror::Error)]
#[error("quota: {0}")]
pub struct QuotaExceeded(pub String);

/// What one account may keep in the database, and the free disk below which the
/// database takes no more rows (`[quotas]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quotas {
    /// Appointments one account may have stored (tombstoned and deleted ones included).
    pub appointments: u64,
    /// Slots one account may have stored.
    pub slots: u64,
    /// Bytes of quarantined items one account may have set aside, in KiB.
    pub quarantined_kib: u64,
    /// Free space the SQLite database's disk must keep, in MiB: a commit that adds rows
    /// below it is refused (PostgreSQL's disk is the server's to watch).
    pub min_free_disk_mib: u64,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            appointments: 200_000,
            slots: 50_000,
            quarantined_kib: 64 * 1024,
            min_free_disk_mib: 256,
        }
    }
}

/// A platform's answer carried a secret value back to the connector (a response header
/// or body, a redirect, the final URL): the run ends as a security event, the account is
/// paused and an alert raised. Says where, never the value.
#[derive(Debug, Clone, thiserror::Error)]
#[error("security: the value of secret `{secret}` came back in the {place} from {origin}")]
pub struct SecretEchoed {
    pub secret: String,
    pub place: String,
    pub origin: String,
}

/// The SHA-256 of `bytes`, lower-case hex: how components and quarantined items are
/// identified.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
