//! One daemon's side of the shared run queue (the queue itself is in the database,
//! [`passerelle_store::queue`]): which run this daemon starts next, within its caps.
//!
//! - a global cap and a cap per connector (platform), counted for this daemon; the
//!   database keeps one run per account across all of them;
//! - with a memory budget, a run starts only when one more of the usual size fits in
//!   what the running ones hold ([`MemoryBudget::has_room`]); one run always may;
//! - manual runs go ahead of scheduled, catch-up and re-drive ones (they still share the
//!   platform's rate limiter when they run);
//! - a worker claims in the database; when nothing is claimable it waits for a local
//!   change ([`RunQueue::poke`]: a run queued here, a run ended, a notification from
//!   another daemon), the end of the earliest backoff, or the poll interval;
//! - closing the queue (graceful shutdown) stops claiming: queued runs stay queued, for
//!   this daemon's next start or another daemon.
//!
//! A [`Lease`] is a started run: dropping it frees its caps here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use passerelle_runtime::sandbox::budget::MemoryBudget;
use passerelle_store::queue::Claimed;
use passerelle_store::runs::time_text;
use passerelle_store::Store;

/// Concurrency caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Runs at once, all platforms.
    pub global: usize,
    /// Runs at once per connector.
    pub per_connector: usize,
}

/// How this daemon claims.
#[derive(Debug, Clone)]
pub struct QueueOptions {
    pub limits: QueueLimits,
    /// This daemon's id: the owner of the runs it claims.
    pub daemon: String,
    /// How long a claim lasts unless renewed.
    pub lease: Duration,
    /// How often to look for runs queued elsewhere when nothing woke the queue.
    pub poll: Duration,
    /// The memory the process's runs share.
    pub memory: MemoryBudget,
}

#[derive(Debug, Default)]
struct State {
    per_connector: HashMap<String, usize>,
    running: usize,
    closed: bool,
}

pub struct RunQueue {
    store: Store,
    options: QueueOptions,
    state: Mutex<State>,
    /// Woken by a change: shared with the service, which wakes it when it queues runs.
    changed: Arc<Notify>,
    /// One claim at a time from this daemon.
    claiming: tokio::sync::Mutex<()>,
}

/// A started run (claimed in the database); dropping it frees its caps here.
pub struct Lease {
    queue: Arc<RunQueue>,
    pub request: Claimed,
    /// When the claim's statement started and ended (the run's trace shows it).
    pub claimed: (std::time::SystemTime, std::time::SystemTime),
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut state = self.queue.state.lock().expect("queue lock");
        state.running = state.running.saturating_sub(1);
        if let Some(n) = state.per_connector.get_mut(&self.request.connector) {
            *n = n.saturating_sub(1);
        }
        drop(state);
        self.queue.poke();
    }
}

/// Why no run was claimed.
enum Idle {
    /// The caps are full: wait for a run to end.
    Full,
    /// Nothing claimable: look again at this instant at the latest.
    Until(Duration),
}

impl RunQueue {
    pub fn new(store: Store, options: QueueOptions, changed: Arc<Notify>) -> Arc<RunQueue> {
        let mut options = options;
        options.limits.global = options.limits.global.max(1);
        options.limits.per_connector = options.limits.per_connector.max(1);
        Arc::new(RunQueue {
            store,
            options,
            state: Mutex::default(),
            changed,
            claiming: tokio::sync::Mutex::new(()),
        })
    }

    /// This daemon's id.
    pub fn daemon(&self) -> &str {
        &self.options.daemon
    }

    /// Something changed (a run queued or ended here, another daemon's notification):
    /// waiting workers look again.
    pub fn poke(&self) {
        self.changed.notify_waiters();
    }

    /// Runs this daemon has started and not finished.
    pub fn running(&self) -> usize {
        self.state.lock().expect("queue lock").running
    }

    /// Stops claiming; waiting workers return.
    pub fn close(&self) {
        self.state.lock().expect("queue lock").closed = true;
        self.poke();
    }

    pub fn is_closed(&self) -> bool {
        self.state.lock().expect("queue lock").closed
    }

    /// When a claim made now expires unless renewed.
    pub fn lease_until(&self) -> String {
        lease_end(Utc::now(), self.options.lease)
    }

    /// The next run this daemon may start, waiting as long as needed; None once closed.
    /// A database that fails is logged and tried again after the poll interval.
    pub async fn next(self: &Arc<Self>) -> Option<Lease> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Register before looking, so a change between the look and the wait is seen.
            notified.as_mut().enable();
            if self.is_closed() {
                return None;
            }
            let wait = match self.try_claim().await {
                Ok(lease) => return Some(lease),
                Err(Idle::Full) => None,
                Err(Idle::Until(d)) => Some(d),
            };
            match wait {
                Some(d) => {
                    tokio::select! {
                        _ = &mut notified => {}
                        _ = tokio::time::sleep(d) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    async fn try_claim(self: &Arc<Self>) -> Result<Lease, Idle> {
        let _one = self.claiming.lock().await;
        let full: Vec<String> = {
            let state = self.state.lock().expect("queue lock");
            if state.closed {
                return Err(Idle::Until(Duration::ZERO));
            }
            if state.running >= self.options.limits.global {
                return Err(Idle::Full);
            }
            // A run ending gives its memory back before it frees its place (and pokes).
            if state.running > 0 && !self.options.memory.has_room() {
                return Err(Idle::Full);
            }
            state
                .per_connector
                .iter()
                .filter(|(_, n)| **n >= self.options.limits.per_connector)
                .map(|(c, _)| c.clone())
                .collect()
        };
        let poll = self.options.poll;
        let started = std::time::SystemTime::now();
        match self
            .store
            .claim_run(&self.options.daemon, &self.lease_until(), &full)
            .await
        {
            Ok(Some(request)) => {
                let claimed = (started, std::time::SystemTime::now());
                let mut state = self.state.lock().expect("queue lock");
                state.running += 1;
                *state
                    .per_connector
                    .entry(request.connector.clone())
                    .or_default() += 1;
                Ok(Lease {
                    queue: self.clone(),
                    request,
                    claimed,
                })
            }
            Ok(None) => {
                // Wake for the earliest backoff's end, if sooner than the poll.
                let backoff = match self.store.next_not_before().await {
                    Ok(Some(t)) => DateTime::parse_from_rfc3339(&t)
                        .ok()
                        .and_then(|t| (t.with_timezone(&Utc) - Utc::now()).to_std().ok())
                        .map(|d| d + Duration::from_millis(5)),
                    _ => None,
                };
                Err(Idle::Until(backoff.map_or(poll, |b| b.min(poll))))
            }
            Err(e) => {
                tracing::error!("cannot claim a run from the database: {e:#}");
                Err(Idle::Until(poll))
            }
        }
    }
}

/// `now + lease`, as stored.
pub fn lease_end(now: DateTime<Utc>, lease: Duration) -> String {
    time_text(now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(30)))
}
