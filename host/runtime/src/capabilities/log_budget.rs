//! What one run may log ([`LogBudget`]: `limits.log_lines`, `limits.log_kib`), shared by
//! its `log` import ([`super::log`]) and its captured stdout/stderr ([`super::output`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use passerelle_model::limits::Limits;
use passerelle_model::LimitExceeded;

/// What one run may still log, shared by its `log` import and its stdout/stderr.
#[derive(Debug)]
pub struct LogBudget {
    max_lines: u64,
    max_bytes: u64,
    lines: AtomicU64,
    bytes: AtomicU64,
}

impl LogBudget {
    pub fn new(limits: &Limits) -> Arc<LogBudget> {
        Arc::new(LogBudget {
            max_lines: limits.log_lines,
            max_bytes: limits.log_bytes(),
            lines: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        })
    }

    /// Counts `lines` lines of `bytes` bytes; Err once the run is past either cap.
    pub fn charge(&self, lines: u64, bytes: u64) -> Result<(), LimitExceeded> {
        let total_lines = self.lines.fetch_add(lines, Ordering::Relaxed) + lines;
        let total_bytes = self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if total_lines > self.max_lines {
            return Err(LimitExceeded(format!(
                "log lines: the run may write {} (limits.log_lines)",
                self.max_lines
            )));
        }
        if total_bytes > self.max_bytes {
            return Err(LimitExceeded(format!(
                "log bytes: the run may write {} KiB (limits.log_kib)",
                self.max_bytes >> 10
            )));
        }
        Ok(())
    }
}
