//! The thread SQLite's multi-statement write transactions run on.
//!
//! A write transaction holds the database's one write lock from its `BEGIN IMMEDIATE`
//! to its `COMMIT`, over one round trip to sqlx's connection thread per statement.
//! Awaited on a run's thread, each round trip's answer waits until that thread has
//! finished what it is doing — often another run's wasm — so the lock was held for
//! milliseconds of other work, and the night's runs queued behind it (the daemon used
//! 0.77 of 2 cores with 256 workers). On this thread, which does nothing else, the
//! answers are taken up at once: the lock is held for SQLite's own work.
//!
//! The thread starts at a store's first transaction sent here and ends with the last
//! clone of the store. PostgreSQL has no such thread: its transactions run where they
//! are awaited (its server takes row locks, not one lock for the database).

use std::future::Future;
use std::sync::{Arc, OnceLock};

use tracing::Instrument;

use crate::error::{StoreError, StoreResult};

/// The writer thread's scheduler, started on first use.
#[derive(Debug, Default, Clone)]
pub(crate) struct WriterThread {
    started: Arc<OnceLock<Running>>,
}

/// A running writer thread: a single-threaded tokio scheduler blocked on `stop`.
#[derive(Debug)]
struct Running {
    handle: tokio::runtime::Handle,
    /// Dropped with the last clone of the store: the thread's scheduler returns, and
    /// the thread ends.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl WriterThread {
    /// Runs `work` to its end on the writer thread, in the caller's span. `work` goes on
    /// even if the caller stops waiting: a transaction sent here commits or rolls back
    /// by itself, never half-way because its caller was dropped.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = StoreResult<T>> + Send + 'static,
    ) -> StoreResult<T> {
        let handle = self.handle()?;
        match handle.spawn(work.in_current_span()).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Only if its scheduler was shut down: the store is closing.
            Err(_) => Err(StoreError::Database {
                context: "the database's writer thread stopped",
                source: sqlx::Error::PoolClosed,
            }),
        }
    }

    fn handle(&self) -> StoreResult<tokio::runtime::Handle> {
        if let Some(running) = self.started.get() {
            return Ok(running.handle.clone());
        }
        let started = start().map_err(|e| StoreError::Database {
            context: "starting the database's writer thread",
            source: sqlx::Error::Io(e),
        })?;
        // Two first transactions at once: one thread is kept, the other ends.
        let _ = self.started.set(started);
        Ok(self.started.get().expect("just set").handle.clone())
    }
}

fn start() -> std::io::Result<Running> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let handle = runtime.handle().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("passerelle-db-writer".into())
        .spawn(move || {
            // Returns when the sender is dropped; tasks still pending (none, as each
            // holds a clone of the store) are dropped with the scheduler.
            let _ = runtime.block_on(stopped);
        })?;
    Ok(Running {
        handle,
        _stop: stop,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_on_the_writer_thread_and_its_panics_reach_the_caller() {
        let writer = WriterThread::default();
        let name = writer
            .run(async { Ok(std::thread::current().name().map(str::to_owned)) })
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("passerelle-db-writer"));
        let clone = writer.clone();
        let panicked = tokio::spawn(async move {
            clone
                .run(async {
                    if true {
                        panic!("boom");
                    }
                    Ok(())
                })
                .await
        })
        .await;
        assert!(panicked.unwrap_err().is_panic());
        // The thread outlives a panicking task.
        assert!(writer.run(async { Ok(1) }).await.is_ok());
    }
}
