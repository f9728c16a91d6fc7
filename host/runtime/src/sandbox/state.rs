//! Per-run store state: WASI, the memory and table limiter, and the capabilities the
//! caller gave the run.

use std::sync::{Arc, Mutex};

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime::Result;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::budget::RunMemory;
use crate::capabilities::{Capabilities, HasCapabilities};
use passerelle_model::LimitExceeded;

/// Memory and table limits of one store; hitting one traps with a clear reason. The
/// linear memory is also charged to the process's [`MemoryBudget`] as it grows.
pub struct RunLimiter {
    pub memory_bytes: usize,
    pub table_elements: usize,
    /// The largest linear memory the run had (its initial size included).
    pub peak_memory_bytes: usize,
    /// The linear memory's size now.
    pub memory_now_bytes: usize,
    /// The run's share of the budget (its linear memory and pending records).
    pub memory: Arc<Mutex<RunMemory>>,
}

impl ResourceLimiter for RunLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> Result<bool> {
        if desired > self.memory_bytes {
            return Err(LimitExceeded(format!(
                "memory: the run may use {} MiB of linear memory",
                self.memory_bytes >> 20
            ))
            .into());
        }
        self.memory
            .lock()
            .expect("run memory")
            .grow(desired.saturating_sub(current))?;
        self.memory_now_bytes = desired;
        self.peak_memory_bytes = self.peak_memory_bytes.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> Result<bool> {
        if desired > self.table_elements {
            return Err(LimitExceeded(format!(
                "tables: the run may use {} table elements",
                self.table_elements
            ))
            .into());
        }
        Ok(true)
    }
}

/// One instance's store state: WASI (with everything denied), the limiter, and the
/// run's capabilities (linked by projection, see [`crate::capabilities`]). Dropped with
/// the store at the end of the run.
pub struct RunState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: RunLimiter,
    /// `wasi:http`, every request refused ([`super::denied_http`]).
    pub(crate) http: super::denied_http::DeniedHttp,
    pub capabilities: Capabilities,
}

impl RunState {
    /// Writes out what the guest logged and printed, scrubbed.
    pub fn flush_logs(&mut self) {
        self.capabilities.flush_logs();
    }
}

impl wasmtime_wasi_http::WasiHttpView for RunState {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        self.http.view(&mut self.table)
    }
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl HasCapabilities for RunState {
    fn capabilities(&mut self) -> &mut Capabilities {
        &mut self.capabilities
    }
}
