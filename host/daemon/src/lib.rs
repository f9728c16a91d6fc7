//! `passerelle serve`: the long-running service. It owns the daemon's moving parts and
//! their life cycle:
//!
//! - the scheduler ([`planner`]), which queues each practice's accounts at its slots
//!   (a slot is taken once across daemons) and, at start, records the slots missed while
//!   no daemon ran as one `skipped` run per account with one catch-up run each;
//! - the workers, which claim runs from the queue in the database
//!   ([`crate::queue::RunQueue`]) within this daemon's caps and retry transient failures
//!   with backoff ([`passerelle_service::retry`]);
//! - the lease keeper ([`lease`]): heartbeats, run leases, runs of dead daemons;
//! - "Sync now" (coalescing, minimum interval between manual runs, both in the database);
//! - the drift loop ([`drift`]): paused accounts skip their slots, a new connector
//!   version re-drives them;
//! - the watched plugins directory ([`plugin_watch`]);
//! - the delivery of the change feed to webhook subscriptions, and its retention
//!   ([`delivery`]);
//! - the open-data export, rewritten once the night's runs are over ([`export`]);
//! - graceful shutdown: stop claiming runs (queued ones stay queued, for another daemon
//!   or the next start), give running ones a grace period, record what was interrupted
//!   as `cancelled`.
//!
//! The admin API ([`passerelle_api`]) and the command line drive it.

mod delivery;
mod drift;
mod export;
pub mod launch;
mod lease;
pub mod planner;
mod plugin_watch;
pub mod queue;
pub mod token;
mod worker;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::queue::{QueueLimits, QueueOptions, RunQueue};
use passerelle_model::run::{ErrorKind, Mode, Status, Trigger};
use passerelle_service::app::Passerelle;
use passerelle_service::recorder::RunOf;
use passerelle_service::requests::{QueueAnswers, QueueAsk, Submitted};
use passerelle_service::runs::{Requested, Resumed, SyncRequest};
use passerelle_service::{ServiceError, ServiceResult};
use passerelle_store::practices::Account;
use passerelle_store::queue::{Queued, ReapScope, SlotClaim};
use passerelle_store::runs::time_text;

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
const SCHEDULED_UNTIL: &str = "scheduler.scheduled_until";

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

    /// At start: runs left `running` by a daemon that is gone are closed as interrupted
    /// and queued again. On PostgreSQL only leases that expired (a live daemon's runs are
    /// never touched); on SQLite, which holds one daemon (this one has the lock), every
    /// leased run. Runs a local `passerelle sync` left running are closed if their
    /// process is gone. Queued runs stay queued.
    pub async fn recover(&self) -> Result<usize> {
        let store = &self.app.store;
        let scope = match store.backend() {
            passerelle_store::Backend::Sqlite => ReapScope::AllLeased,
            passerelle_store::Backend::Postgres => ReapScope::Expired,
        };
        let closed = self.app.recorder().end_orphans().await?;
        let reaped = self.reap(scope).await?;
        Ok(closed as usize + reaped)
    }

    /// Closes the runs of daemons that stopped renewing their leases and queues their
    /// work again (through the run recorder); how many.
    pub(crate) async fn reap(&self, scope: ReapScope) -> Result<usize> {
        let reaped = self
            .app
            .recorder()
            .reap(scope, self.app.config.retry.max_attempts)
            .await?;
        Ok(reaped.len())
    }

    /// The slots missed between the scheduler's last recorded instant and `now` (an
    /// outage, a clock jump): per account, one `skipped` run for the whole gap (how many
    /// slots, the first and the last) and one catch-up run — however long the gap.
    /// Decided once across daemons: the catch-up takes a slot keyed by the gap's start.
    /// Slots younger than `daemon.lease_secs` are late, not missed: queued as their
    /// slot. Returns (skipped, catch-up runs queued). The first start ever has nothing to
    /// catch up.
    pub async fn catch_up(&self, now: DateTime<Utc>) -> Result<(usize, usize)> {
        let store = &self.app.store;
        let last = store.daemon_state(SCHEDULED_UNTIL).await?;
        let mut skipped = 0;
        let mut queued = 0;
        if let Some(last) = last
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        {
            let last = last.with_timezone(&Utc);
            let practices = store.list_practices().await?;
            let mut planner = planner::Planner::new(
                &self.app.config.schedule.default_cron,
                self.app.config.schedule.spread(),
            );
            planner.load(&practices, now);
            // A slot younger than a lease is not missed but late: another daemon may be
            // taking it this very moment (its transaction not committed yet, so not
            // seen as taken below). It is queued as its slot, as the scheduler does:
            // the slot's key takes it once, whichever daemon gets there.
            let recent = (now
                - chrono::Duration::seconds(self.app.config.daemon.lease_secs as i64))
            .max(last);
            let late: Vec<(String, DateTime<Utc>)> = planner
                .missed(recent, now)
                .into_iter()
                .map(|(p, m)| (p, m.last))
                .collect();
            let late = self.queue_scheduled(&late).await?;
            if late > 0 {
                tracing::info!(runs = late, "slots of the last lease period queued late");
            }
            // A slot another daemon took was not missed: daemons were running (this one
            // restarted among them). A practice counts as missed when its latest slot
            // in the gap was not taken.
            let taken = store.slots_taken_since(&time_text(last)).await?;
            let missed: HashMap<String, passerelle_service::schedule::Missed> = planner
                .missed(last, recent)
                .into_iter()
                .filter(|(p, m)| !taken.contains(&(p.clone(), time_text(m.last))))
                .collect();
            if !missed.is_empty() {
                let key = format!("{}/catch-up", time_text(last));
                let due: Vec<(String, String)> =
                    missed.keys().map(|p| (p.clone(), key.clone())).collect();
                let (q, s) = self
                    .queue_slots(&due, Trigger::CatchUp, |account| {
                        let m = &missed[&account.practice_id];
                        Some(format!(
                            "the daemon was not running at {}{} scheduled time{} from {} to {}",
                            if m.at_least { "at least " } else { "" },
                            m.count,
                            if m.count == 1 { "" } else { "s" },
                            time_text(m.first),
                            time_text(m.last)
                        ))
                    })
                    .await?;
                queued += q;
                skipped += s;
            }
        }
        store
            .advance_daemon_state(SCHEDULED_UNTIL, &time_text(now))
            .await?;
        if skipped > 0 {
            tracing::info!(skipped, catch_up = queued, "slots missed while no daemon ran: one skipped run per account for the gap, one catch-up run per account queued");
        }
        Ok((skipped, queued))
    }

    /// Queues the scheduled runs of practices whose slot has come (each slot taken once
    /// across daemons).
    pub(crate) async fn queue_scheduled(&self, due: &[(String, DateTime<Utc>)]) -> Result<usize> {
        if due.is_empty() {
            return Ok(0);
        }
        let started = std::time::Instant::now();
        let due: Vec<(String, String)> = due
            .iter()
            .map(|(p, slot)| (p.clone(), time_text(*slot)))
            .collect();
        let (n, _) = self.queue_slots(&due, Trigger::Schedule, |_| None).await?;
        self.app.metrics.scheduler_busy(started.elapsed());
        Ok(n)
    }

    /// Takes each practice's slot (practice, slot key) and queues a `trigger` run of its
    /// accounts, paused ones recorded as skipped; for `skip`'s accounts a `missed` run
    /// is recorded too, with the reason it gives. Practices whose slot another daemon
    /// took are left to it. Returns (runs queued, missed runs recorded).
    async fn queue_slots(
        &self,
        due: &[(String, String)],
        trigger: Trigger,
        skip: impl Fn(&Account) -> Option<String>,
    ) -> Result<(usize, usize)> {
        // Many practices at once (a shared slot): read all accounts in one query.
        let mut by_practice: HashMap<String, Vec<Account>> = HashMap::new();
        if due.len() > 16 {
            for a in self.app.store.list_accounts(None).await? {
                by_practice
                    .entry(a.practice_id.clone())
                    .or_default()
                    .push(a);
            }
        } else {
            for (p, _) in due {
                by_practice.insert(p.clone(), self.app.store.list_accounts(Some(p)).await?);
            }
        }
        let (mut queued, mut missed) = (0, 0);
        // Chunks of whole practices (a slot is taken with all its practice's runs).
        let mut chunk: Vec<&(String, String)> = Vec::new();
        let mut size = 0;
        for (i, entry) in due.iter().enumerate() {
            chunk.push(entry);
            size += by_practice.get(&entry.0).map_or(0, Vec::len);
            if size < 500 && i + 1 < due.len() {
                continue;
            }
            let claims: Vec<SlotClaim> = chunk
                .iter()
                .map(|(p, slot)| SlotClaim {
                    practice_id: p,
                    slot: slot.clone(),
                })
                .collect();
            let accounts: Vec<Account> = chunk
                .iter()
                .flat_map(|(p, _)| by_practice.get(p).cloned().unwrap_or_default())
                .collect();
            let (accounts, paused) = self.take_paused(accounts).await?;
            let ask = QueueAsk {
                slots: &claims,
                owner: &self.id,
                ..QueueAsk::new(trigger, Mode::Incremental)
            };
            let (answers, lost) = match self.queue_runs(&accounts, &ask).await {
                Ok(a) => a,
                Err(e) if self.is_stopping() => return Err(e.into()),
                Err(e) => {
                    tracing::error!("cannot queue {} {trigger} runs: {e:#}", accounts.len());
                    chunk.clear();
                    size = 0;
                    continue;
                }
            };
            for (account, answer) in accounts.iter().zip(answers) {
                match answer {
                    Ok(Queued::SlotTaken) => continue,
                    Ok(Queued::TooSoon { .. } | Queued::Settled) => {}
                    Ok(Queued::New(_)) => queued += 1,
                    Ok(Queued::Coalesced(_)) => {}
                    Err(e) => tracing::error!(
                        practice = %account.practice_id,
                        account = %account.id,
                        "cannot queue the {trigger} run: {e:#}"
                    ),
                }
                if let Some(reason) = skip(account) {
                    self.record_missed(account, &reason).await?;
                    missed += 1;
                }
            }
            // Paused accounts of practices whose slot this daemon took.
            let paused: Vec<_> = paused
                .into_iter()
                .filter(|(a, _)| !lost.contains(&a.practice_id))
                .collect();
            self.record_paused(&paused, trigger).await?;
            chunk.clear();
            size = 0;
        }
        Ok((queued, missed))
    }

    /// Records the `skipped` run of an account that missed slots.
    async fn record_missed(&self, account: &Account, reason: &str) -> Result<()> {
        let Some(version) = self.app.store.active_connector(&account.connector).await? else {
            return Ok(());
        };
        let run = RunOf {
            account,
            version: (&version).into(),
            trigger: Trigger::Schedule,
            mode: Mode::Incremental,
        };
        self.app
            .recorder()
            .skip(run, ErrorKind::Missed, reason)
            .await?;
        Ok(())
    }

    /// The scheduler: sleeps until the next slot (or a change of practices, or a
    /// minute), queues what is due, records how far it has planned.
    pub(crate) async fn run_scheduler(self: Arc<Self>) {
        let mut stopping = self.stopping.subscribe();
        let config = &self.app.config.schedule;
        let mut planner = planner::Planner::new(&config.default_cron, config.spread());
        let mut plan_changed = self.app.practices_changed.subscribe();
        let mut reload = true;
        loop {
            let now = self.now();
            if reload {
                match self.app.store.list_practices().await {
                    Ok(practices) => {
                        for bad in planner.load(&practices, now) {
                            tracing::error!(practice = %bad.practice_id, "schedule ignored: {}", bad.error);
                        }
                        reload = false;
                    }
                    Err(e) => tracing::error!("cannot load practices: {e:#}"),
                }
            }
            let due = planner.take_due(now);
            if !due.is_empty() {
                match self.queue_scheduled(&due).await {
                    Ok(n) => {
                        tracing::debug!(practices = due.len(), runs = n, "scheduled runs queued")
                    }
                    Err(_) => return,
                }
            }
            if let Err(e) = self
                .app
                .store
                .advance_daemon_state(SCHEDULED_UNTIL, &time_text(now))
                .await
            {
                tracing::error!("cannot record the scheduler's progress: {e:#}");
            }
            let wait = planner
                .next_due()
                .map(|t| (t - self.now()).to_std().unwrap_or(Duration::ZERO))
                .unwrap_or(Duration::MAX)
                .min(Duration::from_secs(60));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                changed = plan_changed.changed() => {
                    if changed.is_err() { return; }
                    // Queue what is due before the reload moves the plan past it.
                    let due = planner.take_due(self.now());
                    if self.queue_scheduled(&due).await.is_err() { return; }
                    reload = true;
                }
                _ = until_true(&mut stopping) => return,
            }
        }
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
