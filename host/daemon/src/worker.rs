//! The daemon's workers: each claims the next run the queue allows, executes it, and
//! queues a retry after a transient failure. At shutdown a worker gives its run the
//! grace period, then drops it (every commit is one transaction: what its checkpoints
//! committed stays, the rest was never written) and records it `cancelled`.

use std::sync::Arc;
use std::time::Duration;

use crate::queue::Lease;
use passerelle_model::run::{ErrorKind, Run, Status};
use passerelle_service::sync::{ClaimedRun, SyncOptions};

use super::Daemon;

impl Daemon {
    /// One worker: runs until the queue closes.
    pub(crate) async fn run_worker(self: Arc<Self>) {
        while let Some(lease) = self.queue.next().await {
            self.execute(lease).await;
        }
    }

    async fn execute(&self, lease: Lease) {
        let request = lease.request.clone();
        let run_id = request.run_id;
        self.app
            .metrics
            .runs_in_flight
            .set(self.queue.running() as i64);
        self.app
            .metrics
            .runs_memory_bytes
            .set(self.app.runtime.memory_budget().used() as i64);
        // The claim read the account with the run (one statement).
        let Some(account) = request.account.clone() else {
            self.cancel_claimed(run_id, "the account was deleted before this run started")
                .await;
            return;
        };
        let options = SyncOptions {
            trigger: request.trigger,
            mode: request.mode,
            now: None,
            record: None,
        };
        let mut abort = self.abort.subscribe();
        let outcome = tokio::select! {
            r = self.app.sync_account_as(&account, options, Some(ClaimedRun {
                run_id,
                connector_version: request.connector_version.clone(),
                connector_sha256: request.connector_sha256.clone(),
                cursor: request.cursor.clone(),
                paused: request.paused,
                claimed: Some(lease.claimed),
                stored_slots: Some(Arc::new(request.stored_slots.clone())),
            })) => Some(r),
            _ = super::until_true(&mut abort) => None,
        };
        let run = match outcome {
            Some(Ok(run)) => run,
            Some(Err(e)) => {
                // The host's own failure (database, connector not installed).
                tracing::error!(run = run_id, account = %account.id, "run failed in the host: {e:#}");
                match self
                    .app
                    .recorder()
                    .end_without_work(run_id, Status::Failed, ErrorKind::Host, format!("{e:#}"))
                    .await
                {
                    Some(run) => run,
                    None => return,
                }
            }
            None => {
                let grace = self.app.config.daemon.shutdown_grace_secs;
                self.cancel_claimed(
                    run_id,
                    &format!("interrupted by shutdown after the {grace} s grace period; what its checkpoints committed is kept"),
                )
                .await;
                return;
            }
        };
        drop(lease);
        self.maybe_retry(&account, &run).await;
    }

    /// Queues the next attempt of a run that failed transiently.
    async fn maybe_retry(&self, account: &passerelle_store::practices::Account, run: &Run) {
        if !matches!(run.status, Status::Failed | Status::Drift) || self.is_stopping() {
            return;
        }
        let Some(kind) = run.error_kind else {
            return;
        };
        if !kind.is_transient() {
            self.app.metrics.not_retried(&run.connector, "permanent");
            return;
        }
        let attempt = u32::try_from(run.attempt).unwrap_or(1);
        let retry_after = run
            .retry_after_secs
            .map(|s| Duration::from_secs(s.max(0) as u64));
        let delay = self
            .app
            .config
            .retry
            .next_delay(attempt, kind, retry_after, &mut rand::rng());
        let Some(delay) = delay else {
            tracing::warn!(run = run.id, account = %account.id, attempts = attempt, "giving up after {attempt} attempts ({kind})");
            self.app.metrics.not_retried(&run.connector, "exhausted");
            return;
        };
        match self
            .request_run(account, run.trigger, run.mode, attempt + 1, Some(delay))
            .await
        {
            Ok(submitted) => {
                self.app.metrics.retry(&run.connector);
                tracing::info!(
                    run = run.id,
                    account = %account.id,
                    attempt = attempt + 1,
                    delay_s = delay.as_secs_f64(),
                    ?submitted,
                    "transient failure ({kind}): retry queued"
                );
            }
            Err(e) => tracing::warn!(run = run.id, "retry not queued: {e:#}"),
        }
    }
}
