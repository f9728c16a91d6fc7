//! The memory budget all runs of one process share: what runs actually hold (their linear
//! memories as they grow, the records they keep between two checkpoints) is charged to it
//! while they hold it, and given back when they let go.
//!
//! With a limit, a run whose growth would not fit fails with [`BudgetExhausted`] (a
//! transient failure of the host: the run is retried later, nothing it committed is lost),
//! and [`MemoryBudget::has_room`] tells a daemon whether one more run of the usual size
//! fits before it claims one. Runs are thus bounded by the memory they use, not by a
//! worst case reserved for each. Without a limit the budget only counts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// What a run is expected to hold before any has ended: the usual connector's linear
/// memory (about 1 MiB for a Rust connector) with room to grow.
const FIRST_EXPECTED_BYTES: usize = 4 << 20;

/// A run's growth did not fit in the daemon's memory budget.
#[derive(Debug, Clone, thiserror::Error)]
#[error("memory budget: the daemon's runs hold {used_mib} MiB of {limit_mib} MiB (daemon.memory_ceiling_mib); this run asked for {asked_kib} KiB more and will be retried")]
pub struct BudgetExhausted {
    pub used_mib: usize,
    pub limit_mib: usize,
    pub asked_kib: usize,
}

struct Shared {
    /// None: counted, never refused.
    limit: Option<usize>,
    used: AtomicUsize,
    /// A decaying maximum of the runs' peaks: the room a new run should find.
    expected: AtomicUsize,
}

/// The process's budget. Cheap to clone.
#[derive(Clone)]
pub struct MemoryBudget(Arc<Shared>);

impl std::fmt::Debug for MemoryBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBudget")
            .field("limit", &self.0.limit)
            .field("used", &self.used())
            .finish()
    }
}

impl MemoryBudget {
    /// A budget of `limit` bytes (None: unlimited, counted only).
    pub fn new(limit: Option<usize>) -> Self {
        MemoryBudget(Arc::new(Shared {
            limit,
            used: AtomicUsize::new(0),
            expected: AtomicUsize::new(FIRST_EXPECTED_BYTES),
        }))
    }

    pub fn limit(&self) -> Option<usize> {
        self.0.limit
    }

    /// Bytes the runs hold now.
    pub fn used(&self) -> usize {
        self.0.used.load(Ordering::Relaxed)
    }

    /// What one run is expected to hold at its peak, from the runs that ended.
    pub fn expected_run_bytes(&self) -> usize {
        self.0.expected.load(Ordering::Relaxed)
    }

    /// Whether one more run of the usual size fits now (always, without a limit).
    pub fn has_room(&self) -> bool {
        match self.0.limit {
            None => true,
            Some(limit) => self.used() + self.expected_run_bytes() <= limit,
        }
    }

    /// A new run's account, empty.
    pub fn run(&self) -> RunMemory {
        RunMemory {
            budget: self.clone(),
            held: 0,
            peak: 0,
        }
    }

    fn charge(&self, bytes: usize) -> Result<(), BudgetExhausted> {
        let mut used = self.0.used.load(Ordering::Relaxed);
        loop {
            let next = used.saturating_add(bytes);
            if let Some(limit) = self.0.limit {
                if next > limit {
                    return Err(BudgetExhausted {
                        used_mib: used >> 20,
                        limit_mib: limit >> 20,
                        asked_kib: bytes.div_ceil(1024),
                    });
                }
            }
            match self.0.used.compare_exchange_weak(
                used,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(now) => used = now,
            }
        }
    }

    fn release(&self, bytes: usize) {
        self.0.used.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// A run ended having held `peak` bytes at most: the expectation follows the
    /// largest recent peaks and decays by 1/64 per run otherwise.
    fn ended(&self, peak: usize) {
        let _ = self
            .0
            .expected
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |e| {
                Some(peak.max(e - e / 64).max(1 << 20))
            });
    }
}

/// One run's share of the budget: what it holds now and held at most. Dropping it gives
/// everything back.
#[derive(Debug)]
pub struct RunMemory {
    budget: MemoryBudget,
    held: usize,
    peak: usize,
}

impl RunMemory {
    /// The run now holds `bytes` more.
    pub fn grow(&mut self, bytes: usize) -> Result<(), BudgetExhausted> {
        self.budget.charge(bytes)?;
        self.held += bytes;
        self.peak = self.peak.max(self.held);
        Ok(())
    }

    /// The run let go of `bytes` (at most what it holds).
    pub fn shrink(&mut self, bytes: usize) {
        let bytes = bytes.min(self.held);
        self.budget.release(bytes);
        self.held -= bytes;
    }

    pub fn held(&self) -> usize {
        self.held
    }
}

impl Drop for RunMemory {
    fn drop(&mut self) {
        self.budget.release(self.held);
        if self.peak > 0 {
            self.budget.ended(self.peak);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::sandbox::budget::MemoryBudget;

    #[test]
    fn runs_are_refused_only_past_the_limit_and_give_back_what_they_held() {
        let budget = MemoryBudget::new(Some(10 << 20));
        let mut a = budget.run();
        let mut b = budget.run();
        a.grow(6 << 20).unwrap();
        let refused = b.grow(5 << 20).unwrap_err();
        assert_eq!((refused.used_mib, refused.limit_mib), (6, 10));
        assert_eq!(budget.used(), 6 << 20, "a refused growth holds nothing");
        b.grow(4 << 20).unwrap();
        assert_eq!(budget.used(), 10 << 20);
        a.shrink(2 << 20);
        assert_eq!(budget.used(), 8 << 20);
        drop(a);
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn room_is_what_a_usual_run_needs() {
        let budget = MemoryBudget::new(Some(8 << 20));
        assert!(budget.has_room());
        let mut a = budget.run();
        a.grow(5 << 20).unwrap();
        // The first expectation is 4 MiB: 5 + 4 > 8.
        assert!(!budget.has_room());
        drop(a);
        // The run's 5 MiB peak is now the expectation, and the budget is empty.
        assert_eq!(budget.expected_run_bytes(), 5 << 20);
        assert!(budget.has_room());
        let mut small = budget.run();
        small.grow(2 << 20).unwrap();
        drop(small);
        assert!(budget.expected_run_bytes() < 5 << 20, "it decays");
        assert!(MemoryBudget::new(None).has_room());
    }
}
