//! `wasi:http`, linked so that components whose toolchain imports it (componentize-js
//! with its `http` feature, guests built for the `wasi:http` proxy world) load, with
//! every outgoing request refused (`HTTP request denied`). A connector reaches a
//! platform only through passerelle's own `http` import, where the allowlist, rate
//! limits, secrets and size caps apply.

use std::future::Future;

use wasmtime::component::ResourceTable;
use wasmtime_wasi_http::{
    Error, RequestOptions, Result, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
};

/// What a run's state holds for `wasi:http`.
pub struct DeniedHttp {
    ctx: WasiHttpCtx,
    hooks: Refuse,
}

/// Hooks that refuse every request.
#[derive(Default)]
struct Refuse;

/// A response future and its body's I/O future, as the hooks answer.
type Sent = Box<
    dyn Future<
            Output = Result<(
                http::Response<WasiBody>,
                Box<dyn Future<Output = Result<()>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for Refuse {
    fn send_request(
        &mut self,
        _request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<()>> + Send>,
    ) -> Sent {
        Box::new(async { Err(Error::HttpRequestDenied) })
    }
}

impl DeniedHttp {
    /// Header maps (`fields`) a guest builds are bounded to `field_bytes` each (their
    /// number is the run's resource table's).
    pub fn new(field_bytes: usize) -> DeniedHttp {
        let mut ctx = WasiHttpCtx::new();
        ctx.set_field_size_limit(field_bytes);
        DeniedHttp { ctx, hooks: Refuse }
    }

    /// The view `wasi:http`'s host implementation works on (the run's resource table).
    pub fn view<'a>(&'a mut self, table: &'a mut ResourceTable) -> WasiHttpCtxView<'a> {
        WasiHttpCtxView {
            hooks: &mut self.hooks,
            table,
            ctx: &mut self.ctx,
        }
    }
}
