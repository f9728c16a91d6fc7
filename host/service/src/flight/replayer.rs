//! What shadow replay needs from above the service: something that replays a component
//! on a cassette in a scratch sandbox and store (the kit's bench, handed in by the
//! binary), and what one replay ended with.

use std::collections::BTreeMap;

use futures::future::BoxFuture;

use super::cassette::Cassette;
use passerelle_model::run::{ErrorKind, Status};

/// Replays a component on a cassette in a scratch sandbox and store.
pub trait Replayer: Send + Sync {
    fn replay<'a>(
        &'a self,
        component: &'a [u8],
        cassette: &'a Cassette,
    ) -> BoxFuture<'a, anyhow::Result<Replayed>>;
}

/// What one replay ended with and stored.
#[derive(Debug, Clone, Default)]
pub struct Replayed {
    pub status: Option<Status>,
    pub error_kind: Option<ErrorKind>,
    /// The drift's JSON path, or the error's detail (scrubbed).
    pub detail: Option<String>,
    /// Appointments by external id, as stored (compared, never shown).
    pub appointments: BTreeMap<String, serde_json::Value>,
    /// Slots by external id and start.
    pub slots: BTreeMap<String, serde_json::Value>,
}
