//! The threads that execute runs: each drives its own single-threaded tokio scheduler,
//! and the workers are spread over them, a worker staying on its thread.
//!
//! Why not the process's multi-threaded runtime: a run awaits the database (sqlx's
//! SQLite worker thread answers each statement) and the platform (a socket) a dozen
//! times, and on a work-stealing scheduler every such wake-up also wakes an idle
//! worker thread to look for work: 18 context switches per run on that side, against
//! 10 on a thread of its own (`cargo xtask bench`, the recorded centre, one run at a
//! time). What a run spawns (its HTTP connections' tasks, an alert's delivery) runs on
//! its thread too. The admin API, the scheduler and the other helpers stay on the
//! process's runtime.

use std::future::Future;

use anyhow::{Context, Result};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Running threads; [`RunThreads::stop`] ends them once their workers are done.
pub struct RunThreads {
    handles: Vec<tokio::runtime::Handle>,
    stops: Vec<oneshot::Sender<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl RunThreads {
    /// Starts `n` threads (at least one), named `passerelle-run-K`.
    pub fn start(n: usize) -> Result<RunThreads> {
        let mut threads = RunThreads {
            handles: Vec::new(),
            stops: Vec::new(),
            threads: Vec::new(),
        };
        for k in 0..n.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting a run thread's scheduler")?;
            let (stop, stopped) = oneshot::channel::<()>();
            threads.handles.push(runtime.handle().clone());
            threads.stops.push(stop);
            let thread = std::thread::Builder::new()
                .name(format!("passerelle-run-{k}"))
                .spawn(move || {
                    // Drives what was spawned on it until told to stop (or the daemon
                    // is gone); dropping the runtime then cancels what is left.
                    runtime.block_on(async {
                        let _ = stopped.await;
                    });
                })
                .context("starting a run thread")?;
            threads.threads.push(thread);
        }
        Ok(threads)
    }

    /// How many threads there are.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Always false: there is at least one thread.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Spawns the `i`-th worker on thread `i mod n`.
    pub fn spawn<F>(&self, i: usize, worker: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handles[i % self.handles.len()].spawn(worker)
    }

    /// Ends the threads (after their workers returned) and waits for them.
    pub async fn stop(self) {
        drop(self.stops);
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Workers spread over the threads, each staying on its own, and stopping joins them.
    #[tokio::test]
    async fn workers_spread_over_their_threads_and_stay_there() {
        let threads = RunThreads::start(2).unwrap();
        assert_eq!(threads.len(), 2);
        let workers: Vec<_> = (0..4)
            .map(|i| {
                threads.spawn(i, async move {
                    let first = std::thread::current().name().unwrap().to_string();
                    for _ in 0..10 {
                        tokio::task::yield_now().await;
                        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                        assert_eq!(std::thread::current().name().unwrap(), first);
                    }
                    first
                })
            })
            .collect();
        let mut names = Vec::new();
        for w in workers {
            names.push(w.await.unwrap());
        }
        assert_eq!(
            names,
            [
                "passerelle-run-0",
                "passerelle-run-1",
                "passerelle-run-0",
                "passerelle-run-1"
            ]
        );
        threads.stop().await;
    }
}
