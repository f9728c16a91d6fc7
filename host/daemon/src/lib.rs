//! `passerelle serve`'s moving parts and their life cycle (the listener with the API and
//! the console is `passerelle::serve`'s):
//!
//! - [`launch`]: start (the SQLite lock or registration among the daemons, recovery,
//!   catch-up, the tasks below) and the graceful stop (no new claims — queued runs stay
//!   queued, for another daemon or the next start —, a grace period for running ones,
//!   what was interrupted recorded `cancelled`);
//! - [`recovery`]: at start, runs of daemons or processes that are gone, and slots missed
//!   while no daemon ran (one `skipped` and one catch-up run per account);
//! - [`scheduler`] over [`planner`]: each practice's accounts queued at its slots, a slot
//!   taken once across daemons;
//! - [`worker`]: runs claimed from the database within this daemon's caps
//!   ([`queue::RunQueue`]), transient failures retried with backoff; the workers live on
//!   [`run_threads`], each its own single-threaded scheduler;
//! - [`lease`]: heartbeats, run leases, runs of dead daemons, other daemons' notifications;
//! - [`drift`]: paused accounts skip their slots, a new connector version re-drives them;
//! - [`plugin_watch`]: the watched plugins directory;
//! - [`delivery`]: the delivery workers of the change feed, and its retention;
//! - [`export`]: the open-data export, rewritten once the night's runs are over;
//! - [`token`]: the admin token.
//!
//! Every rule these apply ("Sync now", queueing, a run's end) is the service's
//! ([`passerelle_service::requests`], [`passerelle_service::recorder`]); the daemon adds
//! only when, and "not while stopping".

mod delivery;
mod drift;
mod export;
pub mod launch;
mod lease;
pub mod planner;
mod plugin_watch;
pub mod queue;
mod recovery;
pub mod run_threads;
mod scheduler;
pub mod token;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::queue::{QueueLimits, QueueOptions, RunQueue};
use passerelle_model::run::{ErrorKind, Mode, Status, Trigger};
use passerelle_service::app::Passerelle;
use passerelle_service::requests::{QueueAnswers, QueueAsk, Submitted};
use passerelle_service::runs::{Requested, Resumed, SyncRequest};
use passerelle_service::{ServiceError, ServiceResult};
use passerelle_store::practices::Account;

/// The wall clock, replaceable in tests.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// Waits until a flag becomes true (or its sender is gone).
pub(crate) async fn until_true(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await.map(|_| ());
}

/// The key under which the scheduler keeps the instant it has planned up to.
pub(crate) const SCHEDULED_UNTIL: &str = "scheduler.scheduled_until";

/// The daemon's shared state.
pub struct Daemon {
    pub app: Arc<Passerelle>,
    pub queue: Arc<RunQueue>,
    /// This daemon's id: the owner of its runs, in logs, metrics and `passerelle daemons`.
    pub id: String,
    clock: Clock,
    /// True once shutdown has begun.
    stopping: watch::Sender<bool>,
    /// True once the grace period is over: running runs are cancelled.
    abort: watch::Sender<bool>,
}

impl Daemon {
    pub fn new(app: Arc<Passerelle>, clock: Clock) -> Arc<Daemon> {
        let d = &app.config.daemon;
        let id =
            d.id.clone()
                .unwrap_or_else(passerelle_store::runs::default_owner);
        let queue = RunQueue::new(
            app.store.clone(),
            QueueOptions {
                limits: QueueLimits {
                    global: d.max_concurrent_runs,
                    per_connector: d.max_concurrent_per_connector,
                },
                daemon: id.clone(),
                lease: Duration::from_secs(d.lease_secs),
                poll: Duration::from_secs(d.poll_secs),
                memory: app.runtime.memory_budget().clone(),
            },
            app.queued.clone(),
        );
        Arc::new(Daemon {
            app,
            queue,
            id,
            clock,
            stopping: watch::channel(false).0,
            abort: watch::channel(false).0,
        })
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Refuses new work once shutdown has begun.
    fn accepting(&self) -> ServiceResult<()> {
        if self.is_stopping() {
            return Err(ServiceError::ShuttingDown);
        }
        Ok(())
    }

    /// Queues runs through the service's queue rules (and its announcement, which wakes
    /// the workers), unless the daemon is stopping.
    async fn queue_runs(
        &self,
        accounts: &[Account],
        ask: &QueueAsk<'_>,
    ) -> ServiceResult<QueueAnswers> {
        self.accepting()?;
        self.app.queue_runs(accounts, ask).await
    }

    /// A run of `account` (a retry after `delay`, or a first attempt), or the account's
    /// queued or running run.
    pub async fn request_run(
        &self,
        account: &Account,
        trigger: Trigger,
        mode: Mode,
        attempt: u32,
        delay: Option<Duration>,
    ) -> ServiceResult<Submitted> {
        self.accepting()?;
        let ask = QueueAsk {
            attempt,
            delay,
            ..QueueAsk::new(trigger, mode)
        };
        self.app
            .request_runs(std::slice::from_ref(account), &ask)
            .await?
            .pop()
            .expect("one answer per account")
    }

    /// "Sync now" ([`Passerelle::sync_now`]), unless the daemon is stopping.
    pub async fn sync_now(
        &self,
        practice_id: &str,
        request: &SyncRequest,
    ) -> ServiceResult<Vec<Requested>> {
        self.accepting()?;
        self.app.sync_now(practice_id, request).await
    }

    /// A resume ([`Passerelle::resume`]), unless the daemon is stopping.
    pub async fn resume(&self, id: &str) -> ServiceResult<Resumed> {
        self.accepting()?;
        self.app.resume(id).await
    }

    /// Ends a claimed run that did not do its work (account gone, database failing).
    async fn cancel_claimed(&self, run_id: i64, reason: &str) {
        self.app
            .recorder()
            .end_without_work(
                run_id,
                Status::Cancelled,
                ErrorKind::Cancelled,
                reason.into(),
            )
            .await;
    }

    /// Begins shutdown: the scheduler stops and this daemon claims nothing more (queued
    /// runs stay queued, for another daemon or the next start). Returns how many runs
    /// are left queued.
    pub async fn begin_shutdown(&self) -> usize {
        self.stopping.send_replace(true);
        self.queue.close();
        self.app
            .store
            .queue_depth()
            .await
            .map_or(0, |n| usize::try_from(n).unwrap_or(0))
    }

    /// Ends the grace period: running runs are cancelled.
    pub fn abort_running(&self) {
        self.abort.send_replace(true);
    }
}
