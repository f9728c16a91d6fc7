//! `passerelle serve`: the daemon ([`passerelle_daemon::launch`]) with the admin API and
//! the console on one listener; on SIGTERM or SIGINT, the graceful shutdown (the daemon
//! first, the listener last).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::task::JoinHandle;

use passerelle_daemon::launch::{launch, Launched};
use passerelle_daemon::{token, Clock, Daemon};
use passerelle_service::Passerelle;

pub use passerelle_daemon::launch::Stopped;

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
            clock: passerelle_daemon::system_clock(),
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
    launched: Launched,
    api: JoinHandle<()>,
    api_stop: tokio::sync::oneshot::Sender<()>,
}

/// Starts the daemon and its listener (the admin API, the console under /console).
pub async fn start(app: Passerelle, options: ServeOptions) -> Result<Running> {
    // Shadow replay (`plugins shadow`, `plugins.shadow_gate`) replays on the kit's bench.
    app.set_replayer(Arc::new(passerelle_kit::shadow::BenchReplayer));
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
    let launched = launch(app.clone(), options.clock).await?;
    let daemon = launched.daemon.clone();
    let router = passerelle_api::router(daemon.clone(), token.clone())
        .merge(passerelle_console::router(daemon.clone(), token.clone()));
    let (api_stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let api = tokio::spawn(async move {
        let served = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
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
        run_memory_budget_mib = ?app.config.run_memory_budget_mib(),
        "passerelle daemon started"
    );
    Ok(Running {
        daemon,
        api_address,
        token,
        launched,
        api,
        api_stop,
    })
}

impl Running {
    /// Graceful shutdown: the daemon stops ([`Launched::stop`]), then the API closes.
    pub async fn shutdown(self) -> Result<Stopped> {
        let app = self.daemon.app.clone();
        let stopped = self.launched.stop().await;
        let _ = self.api_stop.send(());
        let _ = self.api.await;
        app.alerts.flush(Duration::from_secs(5)).await;
        app.store.close().await;
        tracing::info!("passerelle daemon stopped");
        Ok(stopped)
    }
}

/// `passerelle serve`: starts, waits for SIGTERM or SIGINT (`stop`, installed by the
/// caller before anything else), stops gracefully.
pub async fn serve(app: Passerelle, options: ServeOptions, stop: StopSignals) -> Result<()> {
    let running = start(app, options).await?;
    stop.wait().await;
    running.shutdown().await?;
    Ok(())
}

/// SIGTERM and SIGINT, caught from when they are installed: one that arrives before
/// [`StopSignals::wait`] is kept and ends the wait at once.
pub struct StopSignals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    pub fn install() -> Result<StopSignals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(StopSignals {
                term: signal(SignalKind::terminate()).context("installing SIGTERM handler")?,
                int: signal(SignalKind::interrupt()).context("installing SIGINT handler")?,
            })
        }
        #[cfg(not(unix))]
        Ok(StopSignals {})
    }

    /// Until SIGTERM or SIGINT (perhaps already received).
    pub async fn wait(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => tracing::info!("SIGTERM received"),
            _ = self.int.recv() => tracing::info!("SIGINT received"),
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
