//! The sync log's rows, one place for a run's whole life: queued (by the daemon), started
//! (the account must not be running elsewhere: the database refuses it), finished with
//! its outcome; or recorded as a run that did not happen (a missed slot, a paused
//! account) or ended without doing its work (cancelled, the host failing, its process
//! gone, its daemon's lease ended). Whatever starts a run — the CLI, the scheduler, "Sync
//! now", a retry, a re-drive — and whatever ends one goes through [`RunRecorder`], which
//! counts every end in the metrics; nothing else writes a run's end.

use anyhow::{Context, Result};

use crate::app::Passerelle;
use futures::future::BoxFuture;
use passerelle_model::pause::Pause;
use passerelle_model::records::{CommitCounts, Pending, Scope};
use passerelle_model::run::{ErrorKind, Mode, NewRun, Run, RunEnd, Status, Trigger};
use passerelle_runtime::capabilities::records::{FinalCommit, RecordSink};
use passerelle_store::connectors::ConnectorVersion;
use passerelle_store::notify::Change;
use passerelle_store::pauses::PauseEffect;
use passerelle_store::practices::Account;
use passerelle_store::queue::{QueueOutcome, QueueRequest, ReapScope, Reaped};
use passerelle_store::records::LastCommit;
use passerelle_store::runs::StartError;
use passerelle_store::Store;

/// The connector version a run is recorded against.
#[derive(Debug, Clone, Copy)]
pub struct VersionRef<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub sha256: &'a str,
}

impl<'a> From<&'a ConnectorVersion> for VersionRef<'a> {
    fn from(v: &'a ConnectorVersion) -> Self {
        VersionRef {
            name: &v.name,
            version: &v.version,
            sha256: &v.sha256,
        }
    }
}

impl<'a> From<&'a Pause> for VersionRef<'a> {
    fn from(p: &'a Pause) -> Self {
        VersionRef {
            name: &p.connector,
            version: &p.version,
            sha256: &p.sha256,
        }
    }
}

/// What a run is: whose, on which version, why and how.
#[derive(Debug, Clone, Copy)]
pub struct RunOf<'a> {
    pub account: &'a Account,
    pub version: VersionRef<'a>,
    pub trigger: Trigger,
    pub mode: Mode,
}

impl<'a> RunOf<'a> {
    fn row(&self, cursor_before: Option<&'a str>) -> NewRun<'a> {
        NewRun {
            practice_id: &self.account.practice_id,
            account_id: &self.account.id,
            connector: self.version.name,
            connector_version: self.version.version,
            connector_sha256: self.version.sha256,
            trigger: self.trigger,
            mode: self.mode,
            cursor_before,
        }
    }
}

/// Writes the sync log's rows.
pub struct RunRecorder<'a> {
    app: &'a Passerelle,
}

impl Passerelle {
    /// The one writer of the sync log.
    pub fn recorder(&self) -> RunRecorder<'_> {
        RunRecorder { app: self }
    }
}

impl RunRecorder<'_> {
    /// Records runs a daemon queues, in one transaction, each coalesced with its
    /// account's queued or running run; runs of practices whose slot another daemon took
    /// are left out. One answer per run, in order.
    pub async fn queue(
        &self,
        runs: &[RunOf<'_>],
        queue: &QueueRequest<'_>,
    ) -> Result<QueueOutcome> {
        if runs.is_empty() && queue.slots.is_empty() {
            return Ok(QueueOutcome::default());
        }
        Ok(self.app.store.queue_runs(&rows_of(runs), queue).await?)
    }

    /// [`Self::queue`] in `w`, an audited action's transaction (the caller commits).
    pub async fn queue_in(
        &self,
        w: &mut passerelle_store::audit::Write,
        runs: &[RunOf<'_>],
        queue: &QueueRequest<'_>,
    ) -> Result<QueueOutcome> {
        if runs.is_empty() && queue.slots.is_empty() {
            return Ok(QueueOutcome::default());
        }
        Ok(self
            .app
            .store
            .queue_runs_in(w, &rows_of(runs), queue)
            .await?)
    }

    /// Starts a run — one a daemon claimed, or a new one owned by this process.
    /// [`StartError::Busy`] when the account is running elsewhere; a running run whose
    /// process is gone is ended first ([`Self::end_orphan`]) and the start tried again.
    pub async fn start(
        &self,
        run: RunOf<'_>,
        cursor_before: Option<&str>,
        queued: Option<i64>,
    ) -> Result<i64, StartError> {
        let row = run.row(cursor_before);
        // A claimed run was started by its claim (version and cursor recorded).
        if let Some(id) = queued {
            return Ok(id);
        }
        match self.app.store.start_run(&row).await {
            Err(StartError::Busy {
                run_id,
                owner,
                orphaned: true,
                ..
            }) => {
                self.end_orphan(run_id, &owner).await?;
                self.app.store.start_run(&row).await
            }
            other => other,
        }
    }

    /// Ends a run whose process is gone from this host (`cancelled`, `interrupted`).
    pub async fn end_orphan(&self, run_id: i64, owner: &str) -> Result<(), StartError> {
        if let Some(run) = self.app.store.interrupt_orphan(run_id, owner).await? {
            tracing::warn!(run = run_id, account = %run.account_id, "a run left running by a process that is gone is recorded as cancelled");
            self.app.metrics.run_ended(&run);
        }
        Ok(())
    }

    /// Ends every run left running without a lease whose process is gone (at a
    /// daemon's start); how many.
    pub async fn end_orphans(&self) -> Result<usize> {
        let orphans = self.app.store.orphaned_runs().await?;
        for (run_id, owner) in &orphans {
            self.end_orphan(*run_id, owner).await?;
        }
        Ok(orphans.len())
    }

    /// Ends the runs of daemons that stopped renewing their leases (`cancelled`,
    /// `interrupted`, what their checkpoints committed kept) and queues their work again
    /// (each close and its new run in one transaction); counts them, and announces the
    /// runs queued again.
    pub async fn reap(&self, scope: ReapScope, max_attempts: u32) -> Result<Vec<Reaped>> {
        let reaped = self.app.store.reap(scope, max_attempts).await?;
        for r in &reaped {
            tracing::warn!(
                run = r.run_id,
                account = %r.account_id,
                owner = %r.owner,
                requeued = ?r.requeued,
                "a run whose daemon stopped renewing its lease is recorded as interrupted"
            );
            if let Some(run) = &r.run {
                self.app.metrics.run_ended(run);
            }
        }
        if reaped.iter().any(|r| r.requeued.is_some()) {
            self.app.announce(Change::Queued).await;
        }
        Ok(reaped)
    }

    /// Ends a run with its outcome, and what that does to its account's pause, in one
    /// transaction; counts it in the metrics. The run as recorded, and whether a pause
    /// was lifted.
    pub async fn finish(
        &self,
        id: i64,
        end: &RunEnd,
        pause: PauseEffect<'_>,
    ) -> Result<(Run, bool)> {
        match self.app.store.finish_run(id, end, pause).await? {
            Some((run, lifted)) => {
                self.app.metrics.run_ended(&run);
                Ok((run, lifted))
            }
            // Closed by another daemon: its record stands.
            None => Ok((
                self.app
                    .store
                    .run(id)
                    .await?
                    .context("the run just recorded is missing")?,
                false,
            )),
        }
    }

    /// Ends a successful run with its last commit (what the records capability handed
    /// over: [`RecordsSession::last_commit`]) in one transaction; counts it in the
    /// metrics. On failure nothing of it is written.
    ///
    /// [`RecordsSession::last_commit`]: passerelle_runtime::capabilities::records::RecordsSession::last_commit
    pub async fn finish_with_records(
        &self,
        scope: &Scope,
        last: FinalCommit,
        end: &RunEnd,
        pause: PauseEffect<'_>,
    ) -> Result<(Run, bool)> {
        let (run, lifted) = self
            .app
            .store
            .commit_and_finish_run(
                scope,
                LastCommit {
                    items: last.items,
                    cursor: last.cursor,
                    finish: last.finish,
                },
                end,
                pause,
            )
            .await?;
        self.app.metrics.run_ended(&run);
        Ok((run, lifted))
    }

    /// Ends a run that did not do its work (cancelled, busy, the host failing). A
    /// database that cannot record it is logged, not returned: the caller is already
    /// handling a failure.
    pub async fn end_without_work(
        &self,
        id: i64,
        status: Status,
        kind: ErrorKind,
        reason: String,
    ) -> Option<Run> {
        match self
            .finish(
                id,
                &RunEnd::without_work(status, kind, reason),
                PauseEffect::Keep,
            )
            .await
        {
            Ok((run, _)) => Some(run),
            Err(e) => {
                tracing::error!(run = id, "cannot record the end of the run: {e:#}");
                None
            }
        }
    }

    /// Records a run that does not happen (a missed slot, a paused account), with why.
    pub async fn skip(&self, run: RunOf<'_>, kind: ErrorKind, reason: &str) -> Result<i64> {
        Ok(self
            .app
            .store
            .skip_run(&run.row(None), kind, reason)
            .await?)
    }
}

/// The records capability's checkpoints, committed in the store: one transaction each,
/// refused for a run no longer running.
pub struct StoreSink(pub Store);

impl RecordSink for StoreSink {
    fn commit<'a>(
        &'a self,
        scope: &'a Scope,
        items: &'a [Pending],
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<CommitCounts>> {
        Box::pin(async move {
            // A quota refusal reaches the sandbox as itself: the run ends `quota`.
            self.0
                .commit(scope, items, cursor, None)
                .await
                .map_err(|e| match e {
                    passerelle_store::error::StoreError::Quota(q) => anyhow::Error::new(q),
                    other => other.into(),
                })
        })
    }
}

/// The rows of runs to queue.
fn rows_of<'a>(runs: &'a [RunOf<'a>]) -> Vec<NewRun<'a>> {
    runs.iter().map(|r| r.row(None)).collect()
}
