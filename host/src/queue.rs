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

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::model::run::{Mode, Trigger};

/// Concurrency caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Runs at once, all platforms.
    pub global: usize,
    /// Runs at once per connector.
    pub per_connector: usize,
}

/// A run to start. `run_id` is its row in the sync log (recorded as queued).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub run_id: i64,
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
    /// Queued, as this run.
    Queued(i64),
    /// The account already had this run queued or running.
    Coalesced(i64),
}

/// The queue refuses requests once closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the run queue is closed (shutting down)")]
pub struct Closed;

/// One connector's waiting runs (run ids), manual ones apart.
#[derive(Debug, Default)]
struct Lane {
    urgent: VecDeque<i64>,
    normal: VecDeque<i64>,
    running: usize,
}

#[derive(Debug, Default)]
struct State {
    /// Queued requests by run id.
    queued: HashMap<i64, Request>,
    /// account → (run id, running?)
    accounts: HashMap<String, (i64, bool)>,
    lanes: HashMap<String, Lane>,
    /// Queued runs waiting for their `not_before`.
    delayed: Vec<i64>,
    running: usize,
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
    pub request: Request,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut state = self.queue.state.lock().expect("queue lock");
        state.accounts.remove(&self.request.account_id);
        state.running = state.running.saturating_sub(1);
        if let Some(lane) = state.lanes.get_mut(&self.request.connector) {
            lane.running = lane.running.saturating_sub(1);
        }
        drop(state);
        self.queue.changed.notify_waiters();
    }
}

fn urgent(trigger: Trigger) -> bool {
    trigger == Trigger::Manual
}

impl State {
    /// Puts a queued run in its lane.
    fn enqueue(&mut self, run_id: i64) {
        let Some(r) = self.queued.get(&run_id) else {
            return;
        };
        let is_urgent = urgent(r.trigger);
        let lane = self.lanes.entry(r.connector.clone()).or_default();
        if is_urgent {
            lane.urgent.push_back(run_id);
        } else {
            lane.normal.push_back(run_id);
        }
    }

    /// The first live entry at the front of a lane's deque (stale ids dropped: started,
    /// cancelled, or moved to the urgent deque).
    fn front(
        queued: &HashMap<i64, Request>,
        deque: &mut VecDeque<i64>,
        urgent_deque: bool,
    ) -> Option<i64> {
        while let Some(&id) = deque.front() {
            match queued.get(&id) {
                Some(r) if r.not_before.is_none() && urgent(r.trigger) == urgent_deque => {
                    return Some(id)
                }
                _ => {
                    deque.pop_front();
                }
            }
        }
        None
    }
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

    /// If the account has a run queued or running, that run's id: a queued one is
    /// lifted to `trigger` if that is manual and made full if `mode` is.
    pub fn coalesce(
        &self,
        account_id: &str,
        trigger: Trigger,
        mode: Mode,
    ) -> Result<Option<i64>, Closed> {
        let mut state = self.state.lock().expect("queue lock");
        if state.closed {
            return Err(Closed);
        }
        let Some(&(run_id, running)) = state.accounts.get(account_id) else {
            return Ok(None);
        };
        if !running {
            let mut lift = false;
            if let Some(entry) = state.queued.get_mut(&run_id) {
                if urgent(trigger) && !urgent(entry.trigger) {
                    entry.trigger = trigger;
                    lift = true;
                }
                if mode == Mode::Full {
                    entry.mode = Mode::Full;
                }
            }
            if lift {
                let was_delayed = state.delayed.contains(&run_id);
                if let Some(entry) = state.queued.get_mut(&run_id) {
                    entry.not_before = None;
                }
                if was_delayed {
                    state.delayed.retain(|id| *id != run_id);
                }
                state.enqueue(run_id);
                drop(state);
                self.changed.notify_waiters();
            }
        }
        Ok(Some(run_id))
    }

    /// Queues a run, or coalesces it with the account's queued or running one.
    pub fn submit(&self, request: Request) -> Result<Submitted, Closed> {
        if let Some(id) = self.coalesce(&request.account_id, request.trigger, request.mode)? {
            return Ok(Submitted::Coalesced(id));
        }
        let mut state = self.state.lock().expect("queue lock");
        if state.closed {
            return Err(Closed);
        }
        let run_id = request.run_id;
        state
            .accounts
            .insert(request.account_id.clone(), (run_id, false));
        let delayed = request.not_before.is_some();
        state.queued.insert(run_id, request);
        if delayed {
            state.delayed.push(run_id);
        } else {
            state.enqueue(run_id);
        }
        drop(state);
        self.changed.notify_waiters();
        Ok(Submitted::Queued(run_id))
    }

    /// The account's queued or running run, if any.
    pub fn run_of(&self, account_id: &str) -> Option<i64> {
        let state = self.state.lock().expect("queue lock");
        state.accounts.get(account_id).map(|(id, _)| *id)
    }

    /// Runs waiting to start.
    pub fn depth(&self) -> usize {
        self.state.lock().expect("queue lock").queued.len()
    }

    /// Runs started and not finished.
    pub fn running(&self) -> usize {
        self.state.lock().expect("queue lock").running
    }

    /// Stops handing out runs and taking requests; returns what was still queued.
    pub fn close(&self) -> Vec<Request> {
        let mut state = self.state.lock().expect("queue lock");
        state.closed = true;
        let mut left: Vec<Request> = state.queued.drain().map(|(_, r)| r).collect();
        left.sort_by_key(|r| r.run_id);
        for r in &left {
            state.accounts.remove(&r.account_id);
        }
        state.lanes.values_mut().for_each(|l| {
            l.urgent.clear();
            l.normal.clear();
        });
        state.delayed.clear();
        drop(state);
        self.changed.notify_waiters();
        left
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
        let mut guard = self.state.lock().expect("queue lock");
        let state = &mut *guard;
        if state.closed {
            return Err(None);
        }
        // Backoffs that are over join their lanes.
        let now = Instant::now();
        let mut wake_at: Option<Instant> = None;
        let mut due = Vec::new();
        state
            .delayed
            .retain(|id| match state.queued.get(id).and_then(|r| r.not_before) {
                Some(at) if at > now => {
                    wake_at = Some(wake_at.map_or(at, |w| w.min(at)));
                    true
                }
                _ => {
                    due.push(*id);
                    false
                }
            });
        for id in due {
            if let Some(r) = state.queued.get_mut(&id) {
                r.not_before = None;
            }
            state.enqueue(id);
        }
        if state.running >= self.limits.global {
            return Err(None);
        }
        // Manual first, then first come first served (lowest run id), across the
        // connectors that have a free slot.
        let mut best: Option<(bool, i64, String)> = None;
        for (connector, lane) in state.lanes.iter_mut() {
            if lane.running >= self.limits.per_connector {
                continue;
            }
            let candidate = match State::front(&state.queued, &mut lane.urgent, true) {
                Some(id) => Some((true, id)),
                None => State::front(&state.queued, &mut lane.normal, false).map(|id| (false, id)),
            };
            if let Some((u, id)) = candidate {
                let better = match &best {
                    None => true,
                    Some((bu, bid, _)) => (u && !bu) || (u == *bu && id < *bid),
                };
                if better {
                    best = Some((u, id, connector.clone()));
                }
            }
        }
        let Some((_, run_id, connector)) = best else {
            return Err(wake_at);
        };
        let request = state
            .queued
            .remove(&run_id)
            .expect("front entries are queued");
        let lane = state.lanes.get_mut(&connector).expect("lane exists");
        lane.running += 1;
        state.running += 1;
        state
            .accounts
            .insert(request.account_id.clone(), (run_id, true));
        Ok(Lease {
            queue: self.clone(),
            request,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::queue::*;
    use std::time::Duration;

    fn req(account: &str, connector: &str, trigger: Trigger) -> Request {
        use std::sync::atomic::{AtomicI64, Ordering};
        static NEXT: AtomicI64 = AtomicI64::new(1);
        Request {
            run_id: NEXT.fetch_add(1, Ordering::Relaxed),
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
        assert_eq!(lease.request.run_id, id);
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
