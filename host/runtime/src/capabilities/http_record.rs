//! Recording a run's HTTP exchanges (`passerelle sync --record`, the flight recorder):
//! what one exchange keeps, where a session appends it, and the bound on what a
//! recording holds — a byte limit and the run's share of the memory budget. An exchange
//! that does not fit is left out and the recording says it is truncated: a recording
//! never fails a run.

use std::sync::{Arc, Mutex};

use crate::sandbox::budget::RunMemory;

/// One exchange as the connector saw it: its request (URL and body, which never hold a
/// secret) and the final response (secrets already removed).
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub url: String,
    pub request_body: Option<Vec<u8>>,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Where a run's HTTP session appends what it exchanged.
pub type Recording = Arc<Mutex<Vec<Recorded>>>;

/// A session's recorder: off, or appending to a recording within its bounds.
#[derive(Debug, Default)]
pub struct Recorder {
    target: Option<Recording>,
    /// Response bytes held at most.
    limit: u64,
    held: u64,
    truncated: bool,
    /// The run's share of the memory budget, charged with what is held.
    memory: Option<Arc<Mutex<RunMemory>>>,
}

impl Recorder {
    /// Appends to `recording`, holding at most `limit` response bytes.
    pub fn to(recording: Recording, limit: u64) -> Recorder {
        Recorder {
            target: Some(recording),
            limit,
            ..Recorder::default()
        }
    }

    pub fn is_on(&self) -> bool {
        self.target.is_some()
    }

    /// Whether an exchange was left out (its limit, or the memory budget).
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Charges what is held to the run's share of the memory budget from now on.
    pub(crate) fn charge_to(&mut self, memory: Arc<Mutex<RunMemory>>) {
        self.memory = Some(memory);
    }

    /// Appends `exchange` if its body fits the limit and the run's memory budget
    /// (charged when it does).
    pub(crate) fn record(&mut self, exchange: Recorded) {
        let Some(target) = &self.target else { return };
        let bytes = exchange.body.len() as u64;
        let fits = self.held.saturating_add(bytes) <= self.limit
            && match &self.memory {
                Some(m) => m
                    .lock()
                    .expect("not poisoned")
                    .grow(usize::try_from(bytes).unwrap_or(usize::MAX))
                    .is_ok(),
                None => true,
            };
        if fits {
            self.held += bytes;
            target.lock().expect("not poisoned").push(exchange);
        } else {
            self.truncated = true;
        }
    }
}
