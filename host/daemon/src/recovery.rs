//! What a daemon does as it starts: close the runs whose daemon or process is gone (and
//! queue their work again), and turn the slots missed while no daemon ran into one
//! `skipped` run and one catch-up run per account, decided once across daemons.

use std::collections::HashMap;

use anyhow::Result;
use chrono::{DateTime, Utc};

use crate::{planner, Daemon, SCHEDULED_UNTIL};
use passerelle_model::run::Trigger;
use passerelle_store::queue::ReapScope;
use passerelle_store::runs::time_text;

impl Daemon {
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
}
