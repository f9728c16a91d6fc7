//! Starting and stopping the daemon: the SQLite lock or the registration among the
//! daemons of a PostgreSQL database, recovery, catch-up, the scheduler, the workers, the
//! lease keeper, the listener, the re-driver, the plugins directory watch and the admin
//! API; on SIGTERM or SIGINT, the graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::{token, Clock, Daemon};
use crate::app::Passerelle;

/// How to start.
pub struct ServeOptions {
    pub clock: Clock,
    /// Write the API's address to `<data dir>/api-address` (for scripts and tests when
    /// listening on port 0).
    pub write_address_file: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            clock: super::system_clock(),
            write_address_file: true,
        }
    }
}

/// A started daemon.
pub struct Running {
    pub daemon: Arc<Daemon>,
    /// Where the admin API listens.
    pub api_address: SocketAddr,
    pub token: String,
    scheduler: JoinHandle<()>,
    /// The re-driver and the plugins directory watch.
    helpers: Vec<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
    api: JoinHandle<()>,
    api_stop: tokio::sync::oneshot::Sender<()>,
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
/// workers, the lease keeper and the API.
pub async fn start(app: Passerelle, options: ServeOptions) -> Result<Running> {
    let app = Arc::new(app);
    let token = token::load_or_create(&app.data_dir, app.config.daemon.token.as_deref())?;
    let listen = app.config.daemon.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (daemon.listen)"))?;
    let api_address = listener.local_addr()?;
    if !api_address.ip().is_loopback() {
        tracing::warn!(%api_address, "the admin API listens beyond loopback: keep the token secret and put TLS in front");
    }
    let sqlite_lock = match app.store.sqlite_path() {
        Some(db) => Some(super::lease::lock_sqlite(&db)?),
        None => None,
    };
    let daemon = Daemon::new(app.clone(), options.clock);
    daemon.register().await?;
    daemon.recover().await?;
    // Everything the daemon's tasks log carries its id (a span; in JSON logs, each
    // line's `spans`).
    let span = tracing::info_span!("daemon", id = %daemon.id);
    let workers = (0..app.config.daemon.max_concurrent_runs)
        .map(|_| tokio::spawn(daemon.clone().run_worker().instrument(span.clone())))
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
    // The admin API and the console on one listener (the console under /console).
    let router = crate::api::router(daemon.clone(), token.clone())
        .merge(crate::console::router(daemon.clone(), token.clone()));
    let (api_stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let api = tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!("admin API stopped: {e}");
        }
    });
    if options.write_address_file {
        let path = app.data_dir.join("api-address");
        std::fs::write(&path, format!("http://{api_address}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    // The audit trail's head, in the log at every start: a copy kept outside the
    // database, against which a trail cut short shows.
    if let Some(head) = app.store.audit_entries(1).await?.first() {
        tracing::info!(seq = head.seq, hash = %head.hash, "audit trail head");
    }
    tracing::info!(
        daemon = %daemon.id,
        api = %format!("http://{api_address}"),
        workers = app.config.daemon.max_concurrent_runs,
        per_connector = app.config.daemon.max_concurrent_per_connector,
        worst_case_memory_mib = app.config.worst_case_memory_mib(),
        "passerelle daemon started"
    );
    Ok(Running {
        daemon,
        api_address,
        token,
        scheduler,
        helpers,
        workers,
        api,
        api_stop,
        _sqlite_lock: sqlite_lock,
    })
}

impl Running {
    /// Graceful shutdown: no new claims (queued runs stay queued); running ones get
    /// `daemon.shutdown_grace_secs` to finish, then are cancelled; the daemon leaves the
    /// live list; the API closes last.
    pub async fn shutdown(self) -> Result<Stopped> {
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
        let _ = self.api_stop.send(());
        let _ = self.api.await;
        daemon.app.alerts.flush(Duration::from_secs(5)).await;
        daemon.app.store.close().await;
        tracing::info!("passerelle daemon stopped");
        Ok(Stopped {
            left_queued,
            interrupted,
        })
    }
}

/// `passerelle serve`: starts, waits for SIGTERM or SIGINT, stops gracefully.
pub async fn serve(app: Passerelle, options: ServeOptions) -> Result<()> {
    let running = start(app, options).await?;
    wait_for_signal().await?;
    running.shutdown().await?;
    Ok(())
}

async fn wait_for_signal() -> Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}
