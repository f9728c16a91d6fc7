//! The delivery loops: `delivery.concurrency` workers, each delivering the change feed
//! to subscriptions batch after batch while any is due ([`Deliverer::deliver_one`] holds
//! the rules), then waiting `delivery.poll_ms`; and the pruning of the feed past
//! `feed.retention_days`, once an hour.
//!
//! Each worker claims under its own name (`<daemon>#<n>`), as another daemon would: a
//! claim is a lease, so two workers never hold one subscription, and a receiver slow to
//! answer holds one worker, not the others. A stopping daemon lets each worker finish
//! the POST in flight (at most `delivery.timeout_secs`) and record how it went, so the
//! subscription is not left claimed until its lease runs out.

use std::sync::Arc;
use std::time::Duration;

use super::{until_true, Daemon};
use passerelle_service::delivery::{Delivered, Deliverer};

/// How often the feed is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

impl Daemon {
    pub(crate) async fn run_deliverer(self: Arc<Self>) {
        let mut workers = tokio::task::JoinSet::new();
        for n in 0..self.app.config.delivery.concurrency {
            let claimant = format!("{}#{n}", self.id);
            match Deliverer::new(self.app.clone(), claimant) {
                Ok(deliverer) => {
                    workers.spawn(self.clone().deliver(deliverer));
                }
                Err(e) => {
                    tracing::error!("cannot deliver to subscriptions: {e:#}");
                    break;
                }
            }
        }
        self.prune_feed().await;
        while workers.join_next().await.is_some() {}
    }

    /// One worker: delivers while anything is due, then waits a poll; until stopping.
    async fn deliver(self: Arc<Self>, deliverer: Deliverer) {
        let poll = Duration::from_millis(self.app.config.delivery.poll_ms);
        let mut stopping = self.stopping.subscribe();
        loop {
            while !self.is_stopping() {
                match deliverer.deliver_one(self.now().timestamp_millis()).await {
                    Ok(Delivered::Idle) => break,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!("delivering changes: {e:#}");
                        break;
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = until_true(&mut stopping) => return,
            }
        }
    }

    /// Prunes the change feed now and every [`PRUNE_EVERY`], until stopping.
    async fn prune_feed(&self) {
        let mut stopping = self.stopping.subscribe();
        loop {
            let retention = self.app.config.feed.retention_days;
            match self
                .app
                .prune_feed(self.now().timestamp_millis(), retention)
                .await
            {
                Ok(through) => tracing::debug!(through, "change feed pruned"),
                Err(e) => tracing::error!("pruning the change feed: {e:#}"),
            }
            tokio::select! {
                _ = tokio::time::sleep(PRUNE_EVERY) => {}
                _ = until_true(&mut stopping) => return,
            }
        }
    }
}
