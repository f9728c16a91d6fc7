//! Per-run resource limits: defaults, and the operator's overrides from the config file.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What one run of one connector may use. Every field has a default; the operator
/// overrides any of them in the config file's `[limits]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Linear memory of the instance, in MiB.
    pub memory_mib: u64,
    /// Elements across the instance's tables.
    pub table_elements: usize,
    /// Wall-clock deadline of a run, in seconds (CPU and waiting alike).
    pub deadline_secs: f64,
    /// HTTP requests one run may send.
    pub http_requests: u32,
    /// Bytes of HTTP response bodies one run may receive, in MiB.
    pub received_mib: u64,
    /// Largest single response body, in MiB.
    pub response_mib: u64,
    /// Timeout of one HTTP request, in seconds.
    pub http_timeout_secs: f64,
    /// Records (appointments, deletions, slots) one run may emit.
    pub records: u64,
    /// Records one checkpoint may commit (what the connector emits between two
    /// checkpoints): bounds how long one transaction holds the database's write lock.
    pub checkpoint_records: u64,
    /// Host memory the records emitted between two checkpoints may take, in MiB.
    pub pending_records_mib: u64,
    /// Log lines one run may write (the `log` import; stdout/stderr count by bytes).
    pub log_lines: u64,
    /// Bytes of log one run may write (`log` lines and stdout/stderr), in KiB.
    pub log_kib: u64,
    /// Patient values the run's scrubber may learn (each name, date spelling, phone and
    /// e-mail of each patient counts once).
    pub scrub_patterns: u64,
    /// Resources the host holds for the guest's WASI and `wasi:http` imports at once
    /// (streams, pollables, header maps, requests…): what a guest can make the host keep
    /// without passing through passerelle's own imports.
    pub wasi_resources: usize,
    /// Largest `wasi:http` header map (`fields`) a guest may build, in KiB (no request
    /// leaves through `wasi:http`: they are all refused).
    pub wasi_fields_kib: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mib: 128,
            table_elements: 20_000,
            deadline_secs: 600.0,
            http_requests: 5_000,
            received_mib: 256,
            response_mib: 16,
            http_timeout_secs: 30.0,
            records: 500_000,
            checkpoint_records: 50_000,
            pending_records_mib: 64,
            log_lines: 20_000,
            log_kib: 8 * 1024,
            scrub_patterns: 300_000,
            wasi_resources: 1_000,
            wasi_fields_kib: 16,
        }
    }
}

impl Limits {
    pub fn memory_bytes(&self) -> usize {
        (self.memory_mib as usize).saturating_mul(1 << 20)
    }
    pub fn received_bytes(&self) -> u64 {
        self.received_mib.saturating_mul(1 << 20)
    }
    pub fn response_bytes(&self) -> u64 {
        self.response_mib.saturating_mul(1 << 20)
    }
    pub fn pending_records_bytes(&self) -> u64 {
        self.pending_records_mib.saturating_mul(1 << 20)
    }
    pub fn wasi_fields_bytes(&self) -> usize {
        (self.wasi_fields_kib as usize).saturating_mul(1 << 10)
    }
    pub fn log_bytes(&self) -> u64 {
        self.log_kib.saturating_mul(1 << 10)
    }
    pub fn deadline(&self) -> Duration {
        Duration::from_secs_f64(self.deadline_secs.max(0.001))
    }
    pub fn http_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.http_timeout_secs.max(0.001))
    }

    /// The most host memory one run can take within these limits, in MiB: its linear
    /// memory, its records between two checkpoints, a response body being read and its
    /// copy handed to the guest, its buffered log, its scrubber's patterns (about 256
    /// bytes each with the matcher), and the WASI resources it may hold (each at most a
    /// full header map, with the table's own entry).
    pub fn run_worst_case_mib(&self) -> u64 {
        self.memory_mib
            + self.pending_records_mib
            + 2 * self.response_mib
            + self.log_kib.div_ceil(1024)
            + (self.scrub_patterns.saturating_mul(256) >> 20)
            + ((self.wasi_resources as u64).saturating_mul(self.wasi_fields_kib + 1) >> 10)
    }

    /// Refuses values that would make every run fail or disable a defence.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.memory_mib >= 1, "limits.memory_mib must be at least 1");
        anyhow::ensure!(
            self.memory_mib <= 4096,
            "limits.memory_mib must be at most 4096 (32-bit linear memory)"
        );
        anyhow::ensure!(
            self.deadline_secs > 0.0,
            "limits.deadline_secs must be positive"
        );
        anyhow::ensure!(
            self.http_timeout_secs > 0.0,
            "limits.http_timeout_secs must be positive"
        );
        for (name, value) in [
            ("wasi_resources", self.wasi_resources as u64),
            ("wasi_fields_kib", self.wasi_fields_kib),
            ("checkpoint_records", self.checkpoint_records),
            ("pending_records_mib", self.pending_records_mib),
            ("log_lines", self.log_lines),
            ("log_kib", self.log_kib),
        ] {
            anyhow::ensure!(value >= 1, "limits.{name} must be at least 1");
        }
        Ok(())
    }
}
