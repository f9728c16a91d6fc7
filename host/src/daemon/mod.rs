//! `passerelle serve`: the long-running service. It owns the daemon's moving parts and
//! their life cycle:
//!
//! - the scheduler ([`planner`]), which queues each practice's accounts at its slots and,
//!   at start, records the slots missed while the daemon was down as `skipped` runs with
//!   one catch-up run per account;
//! - the workers, which take runs from the [`crate::queue::RunQueue`] within its caps and
//!   retry transient failures with backoff ([`crate::retry`]);
//! - "Sync now" (coalescing, minimum interval between manual runs);
//! - the drift loop ([`drift`]): paused accounts skip their slots, a new connector
//!   version re-drives them;
//! - the watched plugins directory ([`plugin_watch`]);
//! - graceful shutdown: stop taking runs, give running ones a grace period, record what
//!   was interrupted as `cancelled`.
//!
//! The admin API ([`crate::api`]) and the command line drive it.

mod drift;
pub mod planner;
mod plugin_watch;
mod serve;
pub mod token;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::app::Passerelle;
use crate::model::run::{ErrorKind, Mode, Status, Trigger};
use crate::plugins::connector_not_installed;
use crate::queue::{QueueLimits, Request, RunQueue, Submitted};
use crate::service::recorder::RunOf;
use crate::service::runs::{Requested, SyncRequest};
use crate::service::{ServiceError, ServiceResult};
use crate::store::practices::Account;
use crate::store::runs::time_text;

pub use serve::{serve, start, Running, ServeOptions, Stopped};

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
    clock: Clock,
    /// Makes "is the account queued? if not, record and queue a run" one step.
    submit_lock: tokio::sync::Mutex<()>,
    /// When each account's last manual run was requested.
    last_manual: Mutex<HashMap<String, std::time::Instant>>,
    /// True once shutdown has begun.
    stopping: watch::Sender<bool>,
    /// True once the grace period is over: running runs are cancelled.
    abort: watch::Sender<bool>,
}

impl Daemon {
    pub fn new(app: Arc<Passerelle>, clock: Clock) -> Arc<Daemon> {
        let d = &app.config.daemon;
        let queue = RunQueue::new(QueueLimits {
            global: d.max_concurrent_runs,
            per_connector: d.max_concurrent_per_connector,
        });
        Arc::new(Daemon {
            app,
            queue,
            clock,
            submit_lock: tokio::sync::Mutex::new(()),
            last_manual: Mutex::default(),
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

    /// Records and queues a run of `account`, or returns the account's queued or
    /// running run (coalescing).
    pub async fn request_run(
        &self,
        account: &Account,
        trigger: Trigger,
        mode: Mode,
        attempt: u32,
        delay: Option<Duration>,
    ) -> ServiceResult<Submitted> {
        self.request_runs(std::slice::from_ref(account), trigger, mode, attempt, delay)
            .await?
            .pop()
            .expect("one answer per account")
    }

    /// [`Self::request_run`] for many accounts at once, the new rows recorded in one
    /// transaction. One answer per account, in order: queued, coalesced, or why not
    /// (connector not installed, shutting down).
    pub async fn request_runs(
        &self,
        accounts: &[Account],
        trigger: Trigger,
        mode: Mode,
        attempt: u32,
        delay: Option<Duration>,
    ) -> ServiceResult<Vec<ServiceResult<Submitted>>> {
        let _one_at_a_time = self.submit_lock.lock().await;
        let mut versions: HashMap<String, Option<crate::store::connectors::ConnectorVersion>> =
            HashMap::new();
        let mut answers: Vec<Option<ServiceResult<Submitted>>> = Vec::with_capacity(accounts.len());
        let mut todo = Vec::new();
        for (i, account) in accounts.iter().enumerate() {
            if let Some(run_id) = self
                .queue
                .coalesce(&account.id, trigger, mode)
                .map_err(|_closed| ServiceError::ShuttingDown)?
            {
                answers.push(Some(Ok(Submitted::Coalesced(run_id))));
                continue;
            }
            if !versions.contains_key(&account.connector) {
                let v = self.app.store.active_connector(&account.connector).await?;
                versions.insert(account.connector.clone(), v);
            }
            if versions[&account.connector].is_some() {
                todo.push(i);
                answers.push(None);
            } else {
                answers.push(Some(Err(connector_not_installed(
                    &account.connector,
                    &account.id,
                ))));
            }
        }
        // The row names the version active now; the run records the one it starts on.
        let rows: Vec<RunOf> = todo
            .iter()
            .map(|&i| {
                let account = &accounts[i];
                let version = versions[&account.connector].as_ref().expect("kept");
                RunOf {
                    account,
                    version: version.into(),
                    trigger,
                    mode,
                }
            })
            .collect();
        let ids = self.app.recorder().queue(&rows, attempt).await?;
        for (&i, run_id) in todo.iter().zip(ids) {
            let account = &accounts[i];
            let submitted = self.queue.submit(Request {
                run_id,
                practice_id: account.practice_id.clone(),
                account_id: account.id.clone(),
                connector: account.connector.clone(),
                trigger,
                mode,
                not_before: delay.map(|d| tokio::time::Instant::now() + d),
                attempt,
            });
            answers[i] = Some(match submitted {
                Ok(s) => Ok(s),
                Err(_closed) => {
                    self.cancel_queued(run_id, "the daemon stopped before this run started")
                        .await;
                    Err(ServiceError::ShuttingDown)
                }
            });
        }
        Ok(answers
            .into_iter()
            .map(|a| a.expect("every account answered"))
            .collect())
    }

    /// "Sync now" for a practice (all its accounts, or one): a queued or running run of
    /// an account is returned (coalescing); a new one is refused inside the account's
    /// minimum interval between manual runs.
    pub async fn sync_now(
        &self,
        practice_id: &str,
        request: &SyncRequest,
    ) -> ServiceResult<Vec<Requested>> {
        if self.is_stopping() {
            return Err(ServiceError::ShuttingDown);
        }
        let accounts = self
            .app
            .accounts_to_sync(practice_id, request.account.as_deref())
            .await?;
        let mode = request.mode();
        let min = Duration::from_secs(self.app.config.daemon.manual_min_interval_secs);
        // Refuse the whole request if an account that would get a new run is inside
        // its minimum interval (a queued or running one is simply returned).
        {
            let last = self.last_manual.lock().expect("lock");
            for a in &accounts {
                if self.queue.run_of(&a.id).is_some() {
                    continue;
                }
                if let Some(at) = last.get(&a.id) {
                    let elapsed = at.elapsed();
                    if elapsed < min {
                        let retry_after_secs = (min - elapsed).as_secs_f64().ceil() as u64;
                        return Err(ServiceError::TooSoon {
                            message: format!(
                                "a manual sync of account `{}` was requested less than {} s ago; retry in {retry_after_secs} s",
                                a.id,
                                min.as_secs()
                            ),
                            retry_after_secs,
                        });
                    }
                }
            }
        }
        let mut out = Vec::new();
        for a in &accounts {
            let submitted = self.request_run(a, Trigger::Manual, mode, 1, None).await?;
            let (run_id, coalesced) = match submitted {
                Submitted::Queued(id) => {
                    self.last_manual
                        .lock()
                        .expect("lock")
                        .insert(a.id.clone(), std::time::Instant::now());
                    (id, false)
                }
                Submitted::Coalesced(id) => (id, true),
            };
            out.push(Requested {
                account_id: a.id.clone(),
                run_id,
                coalesced,
            });
        }
        Ok(out)
    }

    /// At start: runs a crash or a kill left `queued` or `running` become `cancelled`.
    pub async fn recover(&self) -> Result<u64> {
        let n = self
            .app
            .recorder()
            .cancel_unfinished("interrupted: the daemon stopped before this run ended")
            .await?;
        if n > 0 {
            tracing::warn!(
                runs = n,
                "runs left unfinished by the previous daemon are recorded as cancelled"
            );
        }
        Ok(n)
    }

    /// The slots missed between the scheduler's last recorded instant and `now`: one
    /// `skipped` run per account and slot, then one catch-up run per account. Returns
    /// (skipped, catch-up runs queued). The first start ever has nothing to catch up.
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
            for (practice_id, slots) in planner.missed(last, now) {
                let mut accounts = store.list_accounts(Some(&practice_id)).await?;
                self.skip_paused(&mut accounts, Trigger::CatchUp).await?;
                for account in accounts {
                    let Some(version) = store.active_connector(&account.connector).await? else {
                        continue;
                    };
                    for slot in &slots {
                        let run = RunOf {
                            account: &account,
                            version: (&version).into(),
                            trigger: Trigger::Schedule,
                            mode: Mode::Incremental,
                        };
                        let reason = format!(
                            "the daemon was not running at the scheduled time {}",
                            time_text(*slot)
                        );
                        self.app
                            .recorder()
                            .skip(run, ErrorKind::Missed, &reason)
                            .await?;
                        skipped += 1;
                    }
                    self.request_run(&account, Trigger::CatchUp, Mode::Incremental, 1, None)
                        .await?;
                    queued += 1;
                }
            }
        }
        store
            .set_daemon_state(SCHEDULED_UNTIL, &time_text(now))
            .await?;
        if skipped > 0 {
            tracing::info!(skipped, catch_up = queued, "slots missed while the daemon was down: recorded as skipped, one catch-up run per account queued");
        }
        Ok((skipped, queued))
    }

    /// Queues the scheduled runs of practices whose slot has come.
    pub(crate) async fn queue_scheduled(&self, due: &[(String, DateTime<Utc>)]) -> Result<usize> {
        if due.is_empty() {
            return Ok(0);
        }
        let started = std::time::Instant::now();
        // Many practices at once (a shared slot): read all accounts in one query.
        let mut by_practice: HashMap<String, Vec<Account>> = HashMap::new();
        if due.len() > 16 {
            for a in self.app.store.list_accounts(None).await? {
                by_practice
                    .entry(a.practice_id.clone())
                    .or_default()
                    .push(a);
            }
        }
        let mut accounts = Vec::new();
        for (practice_id, _slot) in due {
            match by_practice.remove(practice_id) {
                Some(a) => accounts.extend(a),
                None if due.len() > 16 => {}
                None => accounts.extend(self.app.store.list_accounts(Some(practice_id)).await?),
            }
        }
        self.skip_paused(&mut accounts, Trigger::Schedule).await?;
        let mut n = 0;
        for chunk in accounts.chunks(500) {
            match self
                .request_runs(chunk, Trigger::Schedule, Mode::Incremental, 1, None)
                .await
            {
                Ok(answers) => {
                    for (account, answer) in chunk.iter().zip(answers) {
                        match answer {
                            Ok(Submitted::Queued(_)) => n += 1,
                            Ok(Submitted::Coalesced(_)) => {}
                            Err(e) if self.is_stopping() => return Err(e.into()),
                            Err(e) => tracing::error!(
                                practice = %account.practice_id,
                                account = %account.id,
                                "cannot queue the scheduled run: {e:#}"
                            ),
                        }
                    }
                }
                Err(e) if self.is_stopping() => return Err(e.into()),
                Err(e) => tracing::error!("cannot queue {} scheduled runs: {e:#}", chunk.len()),
            }
        }
        self.app.metrics.scheduler_busy(started.elapsed());
        Ok(n)
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
                .set_daemon_state(SCHEDULED_UNTIL, &time_text(now))
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

    /// Marks a queued run cancelled (shutdown, account gone).
    async fn cancel_queued(&self, run_id: i64, reason: &str) {
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

    /// Begins shutdown: the scheduler stops, the queue takes nothing more and what
    /// was queued is recorded as cancelled. Returns how many queued runs were dropped.
    pub async fn begin_shutdown(&self) -> usize {
        self.stopping.send_replace(true);
        let left = self.queue.close();
        for r in &left {
            self.cancel_queued(r.run_id, "the daemon stopped before this run started")
                .await;
        }
        left.len()
    }

    /// Ends the grace period: running runs are cancelled.
    pub fn abort_running(&self) {
        self.abort.send_replace(true);
    }
}
