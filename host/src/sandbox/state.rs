//! Per-run store state, and the import implementations that route each WIT call to its
//! capability (`crate::capabilities`).

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime::Result;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::output::CapturedOutput;
use crate::capabilities::http::HttpSession;
use crate::capabilities::log::LogBuffer;
use crate::capabilities::records::RecordsSession;
use crate::contract::bindings::passerelle::connector::{http, log, records, types};
use crate::model::LimitExceeded;
use crate::scrub::Scrubber;

/// Memory and table limits of one store; hitting one traps with a clear reason.
pub struct RunLimiter {
    pub memory_bytes: usize,
    pub table_elements: usize,
}

impl ResourceLimiter for RunLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
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

/// Everything one instance can reach. Dropped with the store at the end of the run.
pub struct RunState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: RunLimiter,
    /// None while describing a component: no network then.
    pub http: Option<HttpSession>,
    /// None outside `sync`: no writes from `describe` or `check`.
    pub records: Option<RecordsSession>,
    pub log: LogBuffer,
    pub scrubber: Scrubber,
    pub span: tracing::Span,
    pub(crate) stdout: CapturedOutput,
    pub(crate) stderr: CapturedOutput,
}

impl RunState {
    /// Moves captured stdout/stderr into the log buffer and writes it all out, scrubbed.
    pub fn flush_logs(&mut self) {
        for (name, stream) in [
            ("stdout", self.stdout.clone()),
            ("stderr", self.stderr.clone()),
        ] {
            let (text, dropped) = stream.take();
            self.log.push_output(name, &text);
            if dropped > 0 {
                self.log
                    .push_output(name, &format!("({dropped} bytes of {name} dropped)"));
            }
        }
        let _enter = self.span.enter();
        self.log.flush(&mut self.scrubber);
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

impl types::Host for RunState {}

impl http::Host for RunState {
    async fn send(
        &mut self,
        request: types::Request,
    ) -> Result<Result<types::Response, types::HttpError>> {
        match &mut self.http {
            Some(session) => session.send(request).await,
            None => Ok(Err(types::HttpError::Denied(
                "HTTP is not available while describing a connector".into(),
            ))),
        }
    }
}

fn no_records<T>() -> Result<Result<T, String>> {
    Ok(Err("records can only be written during sync".into()))
}

impl records::Host for RunState {
    async fn upsert_appointments(
        &mut self,
        items: Vec<types::Appointment>,
    ) -> Result<Result<(), String>> {
        match &mut self.records {
            Some(r) => r.upsert_appointments(items, &mut self.scrubber),
            None => no_records(),
        }
    }

    async fn delete_appointments(&mut self, ids: Vec<String>) -> Result<Result<(), String>> {
        match &mut self.records {
            Some(r) => r.delete_appointments(ids),
            None => no_records(),
        }
    }

    async fn upsert_slots(&mut self, items: Vec<types::Slot>) -> Result<Result<(), String>> {
        match &mut self.records {
            Some(r) => r.upsert_slots(items),
            None => no_records(),
        }
    }

    async fn checkpoint(&mut self, cursor: String) -> Result<Result<(), String>> {
        let result = match &mut self.records {
            Some(r) => r.checkpoint(cursor, &mut self.scrubber).await,
            None => no_records(),
        };
        self.flush_logs();
        result
    }

    async fn on_drift(&mut self) -> Result<types::DriftPolicy> {
        Ok(match &self.records {
            Some(r) => r.drift_policy(),
            None => types::DriftPolicy::Fail,
        })
    }

    async fn quarantine(&mut self, item: types::QuarantinedItem) -> Result<Result<(), String>> {
        match &mut self.records {
            Some(r) => r.quarantine(item),
            None => no_records(),
        }
    }
}

impl log::Host for RunState {
    async fn log(
        &mut self,
        level: types::Level,
        message: String,
        fields: Vec<(String, String)>,
    ) -> Result<()> {
        if self.log.push(level, message, fields) {
            self.flush_logs();
        }
        Ok(())
    }
}
