//! Starting and stopping the daemon's moving parts: the SQLite lock or the registration
//! among the daemons of a PostgreSQL database, recovery, catch-up, the scheduler, the
//! workers, the lease keeper, the listener for other daemons' changes, the re-driver, the
//! delivery and export loops and the plugins directory watch (the workers on their
//! [`RunThreads`]); and the graceful stop. The admin API's listener is not the
//! daemon's: `passerelle::serve` mounts it beside.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::run_threads::RunThreads;
use crate::{Clock, Daemon};
use passerelle_service::Passerelle;

/// A daemon whose tasks are running.
pub struct Launched {
    pub daemon: Arc<Daemon>,
    scheduler: JoinHandle<()>,
    /// The re-driver, the lease keeper, the listener, delivery, export, the plugins
    /// directory watch.
    helpers: Vec<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
    /// Where the workers run.
    run_threads: RunThreads,
    /// On SQLite: the lock that makes this its only daemon.
    _sqlite_lock: Option<std::fs::File>,
}

/// What a shutdown did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// Runs left queued (for another daemon, or this one's next start).
    pub left_queued: usize,
    /// Running runs that were still going when the grace period ended.
    pub interrupted: usize,
}

/// Starts the daemon: on SQLite, takes the database's lock (one daemon); registers
/// among the live daemons; closes the runs of daemons that are gone (queued again);
/// records missed slots with one catch-up run per account; then the scheduler, the
/// workers, the lease keeper and the helpers.
pub async fn launch(app: Arc<Passerelle>, clock: Clock) -> Result<Launched> {
    let sqlite_lock = match app.store.sqlite_path() {
        Some(db) => Some(crate::lease::lock_sqlite(&db)?),
        None => None,
    };
    let daemon = Daemon::new(app.clone(), clock);
    daemon.register().await?;
    daemon.recover().await?;
    // Everything the daemon's tasks log carries its id (a span; in JSON logs, each
    // line's `spans`).
    let span = tracing::info_span!("daemon", id = %daemon.id);
    let run_threads = RunThreads::start(app.config.run_threads())?;
    tracing::debug!(threads = run_threads.len(), "run threads started");
    let workers = (0..app.config.daemon.max_concurrent_runs)
        .map(|i| run_threads.spawn(i, daemon.clone().run_worker().instrument(span.clone())))
        .collect();
    daemon.catch_up(daemon.now()).await?;
    let scheduler = tokio::spawn(daemon.clone().run_scheduler().instrument(span.clone()));
    let mut helpers = vec![
        tokio::spawn(daemon.clone().run_redriver().instrument(span.clone())),
        tokio::spawn(daemon.clone().run_lease_keeper().instrument(span.clone())),
        tokio::spawn(daemon.clone().run_listener().instrument(span.clone())),
        tokio::spawn(daemon.clone().run_deliverer().instrument(span.clone())),
        tokio::spawn(daemon.clone().run_exporter().instrument(span.clone())),
    ];
    helpers.extend(daemon.start_watching()?);
    Ok(Launched {
        daemon,
        scheduler,
        helpers,
        workers,
        run_threads,
        _sqlite_lock: sqlite_lock,
    })
}

impl Launched {
    /// Graceful stop: no new claims (queued runs stay queued); running ones get
    /// `daemon.shutdown_grace_secs` to finish, then are cancelled; the daemon leaves the
    /// live list.
    pub async fn stop(self) -> Stopped {
        let daemon = self.daemon;
        let left_queued = daemon.begin_shutdown().await;
        let running = daemon.queue.running();
        tracing::info!(
            left_queued,
            running,
            "shutting down: no new runs; waiting for running ones"
        );
        let _ = self.scheduler.await;
        for h in self.helpers {
            let _ = h.await;
        }
        let grace = Duration::from_secs(daemon.app.config.daemon.shutdown_grace_secs);
        let mut workers = futures::future::join_all(self.workers);
        let mut interrupted = 0;
        if tokio::time::timeout(grace, &mut workers).await.is_err() {
            interrupted = daemon.queue.running();
            tracing::warn!(
                runs = interrupted,
                "grace period over: cancelling the runs still going"
            );
            daemon.abort_running();
            workers.await;
        }
        daemon.unregister().await;
        // Last: what the runs spawned on them (a connection going back to its pool)
        // finishes before their schedulers are dropped.
        self.run_threads.stop().await;
        Stopped {
            left_queued,
            interrupted,
        }
    }
}
