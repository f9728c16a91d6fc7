//! The delivery loop: delivers the change feed to subscriptions batch after batch while
//! any is due ([`Deliverer::deliver_one`] holds the rules), then waits
//! `delivery.poll_ms`; prunes the feed past `feed.retention_days` once an hour.

use std::sync::Arc;
use std::time::Duration;

use super::{until_true, Daemon};
use crate::service::subscriptions::{Delivered, Deliverer};

/// How often the feed is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

impl Daemon {
    pub(crate) async fn run_deliverer(self: Arc<Self>) {
        let deliverer = match Deliverer::new(self.app.clone(), self.id.clone()) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!("cannot deliver to subscriptions: {e:#}");
                return;
            }
        };
        let poll = Duration::from_millis(self.app.config.delivery.poll_ms);
        let mut stopping = self.stopping.subscribe();
        let mut pruned_at: Option<tokio::time::Instant> = None;
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
            if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                pruned_at = Some(tokio::time::Instant::now());
                let retention = self.app.config.feed.retention_days;
                match self
                    .app
                    .prune_feed(self.now().timestamp_millis(), retention)
                    .await
                {
                    Ok(through) => tracing::debug!(through, "change feed pruned"),
                    Err(e) => tracing::error!("pruning the change feed: {e:#}"),
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = until_true(&mut stopping) => return,
            }
        }
    }
}
