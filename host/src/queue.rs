//! The run queue: which run starts next, within the concurrency limits.
//!
//! - a global cap, a cap per connector (platform), and at most one run per account;
//! - manual runs go ahead of scheduled, catch-up and redrive ones (they still share the
//!   platform's rate limiter when they run);
//! - a request for an account that is already queued or running is coalesced with that
//!   run (a manual request lifts a queued scheduled one to manual, and a full one makes
//!   it full);
//! - a request may wait until a given instant (a retry's backoff);
//! - closing the queue (graceful shutdown) stops handing out runs and taking requests.
//!
//! A [`Lease`] is a started run: dropping it frees its account and its slots.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::store::runs::{Mode, Trigger};

/// Concurrency caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Runs at once, all platforms.
    pub global: usize,
    /// Runs at once per connector.
    pub per_connector: usize,
}

/// A run to start.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub practice_id: String,
    pub account_id: String,
    pub connector: String,
    pub trigger: Trigger,
    pub mode: Mode,
    /// Not before this instant (a retry's backoff).
    pub not_before: Option<Instant>,
    /// 1 for a first attempt.
    pub attempt: u32,
}

/// What became of a submitted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    /// A new queue entry with this id.
    Queued(u64),
    /// The account already had this entry queued or running.
    Coalesced(u64),
}

/// The queue refuses requests once closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the run queue is closed (shutting down)")]
pub struct Closed;

#[derive(Debug)]
struct Entry {
    id: u64,
    request: Request,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    queued: Vec<Entry>,
    /// account → (entry id, connector)
    running: HashMap<String, (u64, String)>,
    per_connector: HashMap<String, usize>,
    closed: bool,
}

pub struct RunQueue {
    limits: QueueLimits,
    state: Mutex<State>,
    changed: Notify,
}

/// A started run; dropping it frees its account and slots.
pub struct Lease {
    queue: Arc<RunQueue>,
    pub id: u64,
    pub request: Request,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut state = self.queue.state.lock().expect("queue lock");
        state.running.remove(&self.request.account_id);
        if let Some(n) = state.per_connector.get_mut(&self.request.connector) {
            *n = n.saturating_sub(1);
        }
        drop(state);
        self.queue.changed.notify_waiters();
    }
}

fn urgent(trigger: Trigger) -> bool {
    trigger == Trigger::Manual
}

impl RunQueue {
    pub fn new(limits: QueueLimits) -> Arc<RunQueue> {
        Arc::new(RunQueue {
            limits: QueueLimits {
                global: limits.global.max(1),
                per_connector: limits.per_connector.max(1),
            },
            state: Mutex::default(),
            changed: Notify::new(),
        })
    }

    /// Queues a run, or coalesces it with the account's queued or running one.
    pub fn submit(&self, request: Request) -> Result<Submitted, Closed> {
        let mut state = self.state.lock().expect("queue lock");
        if state.closed {
            return Err(Closed);
        }
        if let Some((id, _)) = state.running.get(&request.account_id) {
            return Ok(Submitted::Coalesced(*id));
        }
        if let Some(entry) = state
            .queued
            .iter_mut()
            .find(|e| e.request.account_id == request.account_id)
        {
            if urgent(request.trigger) && !urgent(entry.request.trigger) {
                entry.request.trigger = request.trigger;
                entry.request.not_before = None;
            }
            if request.mode == Mode::Full {
                entry.request.mode = Mode::Full;
            }
            return Ok(Submitted::Coalesced(entry.id));
        }
        state.next_id += 1;
        let id = state.next_id;
        state.queued.push(Entry { id, request });
        drop(state);
        self.changed.notify_waiters();
        Ok(Submitted::Queued(id))
    }

    /// Runs waiting to start.
    pub fn depth(&self) -> usize {
        self.state.lock().expect("queue lock").queued.len()
    }

    /// Runs started and not finished.
    pub fn running(&self) -> usize {
        self.state.lock().expect("queue lock").running.len()
    }

    /// Stops handing out runs and taking requests; returns what was still queued.
    pub fn close(&self) -> Vec<Request> {
        let mut state = self.state.lock().expect("queue lock");
        state.closed = true;
        let left = std::mem::take(&mut state.queued);
        drop(state);
        self.changed.notify_waiters();
        left.into_iter().map(|e| e.request).collect()
    }

    /// The next run allowed to start, waiting as long as needed; None once closed.
    pub async fn next(self: &Arc<Self>) -> Option<Lease> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Register before looking, so a change between the look and the wait is seen.
            notified.as_mut().enable();
            let wake_at = match self.try_start() {
                Ok(lease) => return Some(lease),
                Err(None) if self.state.lock().expect("queue lock").closed => return None,
                Err(wake_at) => wake_at,
            };
            match wake_at {
                Some(at) => {
                    tokio::select! {
                        _ = &mut notified => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Starts the best eligible entry, or says when to look again (None: on a change).
    fn try_start(self: &Arc<Self>) -> Result<Lease, Option<Instant>> {
        let mut state = self.state.lock().expect("queue lock");
        if state.closed || state.running.len() >= self.limits.global {
            return Err(None);
        }
        let now = Instant::now();
        let mut best: Option<usize> = None;
        let mut wake_at: Option<Instant> = None;
        for (i, entry) in state.queued.iter().enumerate() {
            let r = &entry.request;
            if state.running.contains_key(&r.account_id)
                || state.per_connector.get(&r.connector).copied().unwrap_or(0)
                    >= self.limits.per_connector
            {
                continue;
            }
            if let Some(at) = r.not_before.filter(|at| *at > now) {
                wake_at = Some(wake_at.map_or(at, |w| w.min(at)));
                continue;
            }
            // Manual first, then first come first served.
            let better = match best {
                None => true,
                Some(b) => urgent(r.trigger) && !urgent(state.queued[b].request.trigger),
            };
            if better {
                best = Some(i);
            }
        }
        let Some(i) = best else {
            return Err(wake_at);
        };
        let entry = state.queued.remove(i);
        state.running.insert(
            entry.request.account_id.clone(),
            (entry.id, entry.request.connector.clone()),
        );
        *state
            .per_connector
            .entry(entry.request.connector.clone())
            .or_insert(0) += 1;
        Ok(Lease {
            queue: self.clone(),
            id: entry.id,
            request: entry.request,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn req(account: &str, connector: &str, trigger: Trigger) -> Request {
        Request {
            practice_id: "p".into(),
            account_id: account.into(),
            connector: connector.into(),
            trigger,
            mode: Mode::Incremental,
            not_before: None,
            attempt: 1,
        }
    }

    async fn nothing_starts(q: &Arc<RunQueue>) {
        let r = tokio::time::timeout(Duration::from_millis(50), q.next()).await;
        assert!(r.is_err(), "a run started beyond the limits");
    }

    #[tokio::test]
    async fn global_and_per_connector_caps() {
        let q = RunQueue::new(QueueLimits {
            global: 2,
            per_connector: 1,
        });
        for (a, c) in [
            ("a1", "doctolib"),
            ("a2", "doctolib"),
            ("a3", "keldoc"),
            ("a4", "maiia"),
        ] {
            q.submit(req(a, c, Trigger::Schedule)).unwrap();
        }
        let l1 = q.next().await.unwrap();
        let l2 = q.next().await.unwrap();
        assert_eq!(
            (
                l1.request.account_id.as_str(),
                l2.request.account_id.as_str()
            ),
            ("a1", "a3"),
            "a2 waits for doctolib's slot"
        );
        nothing_starts(&q).await;
        drop(l1);
        let l3 = q.next().await.unwrap();
        assert_eq!(l3.request.account_id, "a2");
        assert_eq!((q.running(), q.depth()), (2, 1));
    }

    #[tokio::test]
    async fn one_run_per_account_and_coalescing() {
        let q = RunQueue::new(QueueLimits {
            global: 4,
            per_connector: 4,
        });
        let first = q.submit(req("a1", "doctolib", Trigger::Schedule)).unwrap();
        let Submitted::Queued(id) = first else {
            panic!("{first:?}")
        };
        let mut manual_full = req("a1", "doctolib", Trigger::Manual);
        manual_full.mode = Mode::Full;
        assert_eq!(q.submit(manual_full).unwrap(), Submitted::Coalesced(id));
        let lease = q.next().await.unwrap();
        assert_eq!(lease.id, id);
        assert_eq!(lease.request.trigger, Trigger::Manual, "lifted to manual");
        assert_eq!(lease.request.mode, Mode::Full, "made full");
        assert_eq!(
            q.submit(req("a1", "doctolib", Trigger::Manual)).unwrap(),
            Submitted::Coalesced(id),
            "running: coalesced with the running run"
        );
        drop(lease);
        assert!(matches!(
            q.submit(req("a1", "doctolib", Trigger::Manual)).unwrap(),
            Submitted::Queued(n) if n != id
        ));
    }

    #[tokio::test]
    async fn manual_runs_go_first() {
        let q = RunQueue::new(QueueLimits {
            global: 1,
            per_connector: 1,
        });
        q.submit(req("s1", "doctolib", Trigger::Schedule)).unwrap();
        q.submit(req("s2", "doctolib", Trigger::CatchUp)).unwrap();
        q.submit(req("m", "doctolib", Trigger::Manual)).unwrap();
        let mut order = Vec::new();
        for _ in 0..3 {
            // Each lease ends before the next starts (global cap 1).
            let lease = q.next().await.unwrap();
            order.push(lease.request.account_id.clone());
        }
        assert_eq!(order, ["m", "s1", "s2"]);
    }

    #[tokio::test]
    async fn a_backoff_waits_until_its_instant() {
        let q = RunQueue::new(QueueLimits {
            global: 4,
            per_connector: 4,
        });
        let mut later = req("retry", "doctolib", Trigger::Schedule);
        later.not_before = Some(Instant::now() + Duration::from_millis(300));
        later.attempt = 2;
        q.submit(later).unwrap();
        q.submit(req("now", "doctolib", Trigger::Schedule)).unwrap();
        let started = Instant::now();
        assert_eq!(q.next().await.unwrap().request.account_id, "now");
        let lease = q.next().await.unwrap();
        assert_eq!(lease.request.account_id, "retry");
        assert!(started.elapsed() >= Duration::from_millis(300));
    }

    #[tokio::test]
    async fn a_waiting_worker_wakes_on_submit_and_stops_on_close() {
        let q = RunQueue::new(QueueLimits {
            global: 1,
            per_connector: 1,
        });
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.next().await.map(|l| l.request.account_id.clone()) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        q.submit(req("a1", "doctolib", Trigger::Schedule)).unwrap();
        assert_eq!(waiter.await.unwrap().as_deref(), Some("a1"));

        q.submit(req("a2", "doctolib", Trigger::Schedule)).unwrap();
        q.submit(req("a3", "doctolib", Trigger::Schedule)).unwrap();
        let busy = q.next().await.unwrap();
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.next().await.is_none() }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let left = q.close();
        assert_eq!(left.len(), 1, "what was queued is handed back");
        assert!(waiter.await.unwrap(), "a closed queue starts nothing");
        assert_eq!(
            q.submit(req("a4", "doctolib", Trigger::Manual)),
            Err(Closed)
        );
        drop(busy);
        assert_eq!(q.running(), 0);
    }
}
