//! A daemon among others on one database: it registers with its id, renews its
//! heartbeat and its runs' leases every third of the lease, closes (and queues again)
//! the runs of daemons that stopped renewing theirs, listens for the changes other
//! daemons announce, and leaves at shutdown. On SQLite it holds the database's lock
//! file instead: one daemon only.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use chrono::Utc;

use super::{until_true, Daemon};
use crate::queue::lease_end;
use passerelle_store::daemons::DaemonIdentity;
use passerelle_store::notify::Change;
use passerelle_store::queue::ReapScope;
use passerelle_store::runs::time_text;

/// Taken slots older than this are forgotten.
const KEEP_SLOTS: chrono::Duration = chrono::Duration::days(7);

impl Daemon {
    fn lease(&self) -> Duration {
        Duration::from_secs(self.app.config.daemon.lease_secs)
    }

    /// Registers this daemon as live. Refused if a live daemon has its id.
    pub(crate) async fn register(&self) -> Result<()> {
        let host = gethostname::gethostname().to_string_lossy().into_owned();
        let now = Utc::now();
        self.app
            .store
            .register_daemon(
                &DaemonIdentity {
                    id: &self.id,
                    host: &host,
                    pid: std::process::id(),
                    version: env!("CARGO_PKG_VERSION"),
                },
                &time_text(now),
                &lease_end(now, self.lease()),
            )
            .await
            .context("registering the daemon")?;
        self.app.metrics.daemon_info(&self.id);
        Ok(())
    }

    /// Leaves the list of live daemons (graceful shutdown).
    pub(crate) async fn unregister(&self) {
        if let Err(e) = self.app.store.unregister_daemon(&self.id).await {
            tracing::warn!("cannot unregister the daemon: {e:#}");
        }
    }

    /// Every third of the lease: heartbeat and leases renewed, dead daemons' runs
    /// reaped; once an hour, old slots forgotten. A database that fails is logged and
    /// tried again at the next beat (past the lease, other daemons take this one's runs,
    /// and its checkpoints are refused).
    pub(crate) async fn run_lease_keeper(self: Arc<Self>) {
        let mut stopping = self.stopping.subscribe();
        let beat = self.lease() / 3;
        let mut last_prune = std::time::Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(beat) => {}
                _ = until_true(&mut stopping) => return,
            }
            let now = Utc::now();
            if let Err(e) = self
                .app
                .store
                .heartbeat(&self.id, &time_text(now), &lease_end(now, self.lease()))
                .await
            {
                tracing::error!("cannot renew the daemon's leases: {e:#}");
                continue;
            }
            if let Err(e) = self.reap(ReapScope::Expired).await {
                tracing::error!("cannot close the runs of daemons that are gone: {e:#}");
            }
            if last_prune.elapsed() > Duration::from_secs(3600) {
                last_prune = std::time::Instant::now();
                let before = time_text(now - KEEP_SLOTS);
                if let Err(e) = self.app.store.prune_slots(&before).await {
                    tracing::warn!("cannot forget old scheduled slots: {e:#}");
                }
            }
        }
    }

    /// Hears what other daemons announce (PostgreSQL `LISTEN`) and signals it here.
    /// Nothing to hear on SQLite.
    pub(crate) async fn run_listener(self: Arc<Self>) {
        let mut stopping = self.stopping.subscribe();
        let mut listener = match self.app.store.listener().await {
            Ok(Some(l)) => l,
            Ok(None) => return,
            Err(e) => {
                tracing::error!("cannot listen for other daemons' changes (polling instead): {e}");
                return;
            }
        };
        loop {
            tokio::select! {
                n = listener.recv() => match n {
                    Ok(n) => match Change::parse(n.payload()) {
                        Some(change) => self.app.signal(change),
                        None => tracing::debug!(payload = n.payload(), "unknown change notified"),
                    },
                    Err(e) => {
                        tracing::warn!("listening for other daemons' changes: {e}; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                            _ = until_true(&mut stopping) => return,
                        }
                    }
                },
                _ = until_true(&mut stopping) => return,
            }
        }
    }
}

/// On SQLite: the lock that makes this the database's only daemon, held until the
/// file is dropped. A second `serve` on the same file is refused with why.
pub(crate) fn lock_sqlite(db: &Path) -> Result<File> {
    let path = db.with_extension("db.serve-lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another `passerelle serve` is running on {} (lock {}): a SQLite database holds one \
             daemon. Stop the other one, or use PostgreSQL (database_url) to run several",
            db.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}
