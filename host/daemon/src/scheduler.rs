//! The scheduler: sleeps until the next practice's slot (or a change of practices, or a
//! minute), takes each due slot once across daemons and queues its practice's accounts
//! (paused ones recorded `skipped`), and records how far it has planned.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};

use crate::{planner, until_true, Daemon, SCHEDULED_UNTIL};
use passerelle_model::run::{ErrorKind, Mode, Trigger};
use passerelle_service::recorder::RunOf;
use passerelle_service::requests::QueueAsk;
use passerelle_store::practices::Account;
use passerelle_store::queue::{Queued, SlotClaim};
use passerelle_store::runs::time_text;

impl Daemon {
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
    pub(crate) async fn queue_slots(
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
}
