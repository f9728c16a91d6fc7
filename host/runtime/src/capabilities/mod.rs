//! What the host gives a connector, one module per capability, each owning its state,
//! its WIT `Host` implementation and its per-run preparation: [`http`] (with
//! [`allowlist`], [`guard`], [`netguard`] and [`ratelimit`]), [`records`], [`log`] (with
//! the guest's stdout/stderr, [`output`], both within the run's [`log_budget`]) and
//! [`clock`] (the run's "now").
//!
//! A run's capabilities travel together as [`Capabilities`]; [`add_to_linker`] links each
//! interface to its own part of them by projection (as wasmtime's WASI host does), so the
//! sandbox links the bundle without knowing what is in it.

pub mod allowlist;
pub mod clock;
pub mod guard;
pub mod http;
pub mod http_record;
pub mod http_trace;
pub mod log;
pub mod log_budget;
pub mod netguard;
pub mod output;
pub mod ratelimit;
pub mod records;

use wasmtime::component::{HasData, Linker};

use self::clock::{ClockView, RunClock};
use self::http::{HttpSession, HttpView};
use self::log::{GuestLog, LogView};
use self::records::{RecordsSession, RecordsView};
use crate::contract::bindings::passerelle::connector as wit_interfaces;
use crate::scrub::Scrubber;

/// Everything a run's instance can reach beyond WASI (which gives it nothing).
pub struct Capabilities {
    /// None while describing a component: no network then.
    pub http: Option<HttpSession>,
    /// None outside `sync`: no writes from `describe` or `check`.
    pub records: Option<RecordsSession>,
    /// The connector's log lines and its stdout/stderr, scrubbed on the way out.
    pub log: GuestLog,
    /// The run's scrubber: secrets, and every patient value the run has emitted.
    pub scrubber: Scrubber,
    /// The run's "now".
    pub clock: RunClock,
}

impl Capabilities {
    pub fn new(
        http: Option<HttpSession>,
        records: Option<RecordsSession>,
        scrubber: Scrubber,
        clock: RunClock,
        span: tracing::Span,
        limits: &passerelle_model::limits::Limits,
    ) -> Capabilities {
        Capabilities {
            http,
            records,
            log: GuestLog::new(span, limits),
            scrubber,
            clock,
        }
    }

    /// Writes out what the guest logged (and printed), scrubbed.
    pub fn flush_logs(&mut self) {
        self.log.flush(&mut self.scrubber);
    }
}

/// A store's state that holds a run's [`Capabilities`].
pub trait HasCapabilities: Send + 'static {
    fn capabilities(&mut self) -> &mut Capabilities;
}

/// Links every passerelle import to its capability, projected out of `T`.
pub fn add_to_linker<T: HasCapabilities>(linker: &mut Linker<T>) -> anyhow::Result<()> {
    wit_interfaces::types::add_to_linker::<T, Types>(linker, |_| Types)
        .map_err(anyhow::Error::from)?;
    wit_interfaces::http::add_to_linker::<T, HttpCapability>(linker, http_view::<T>)
        .map_err(anyhow::Error::from)?;
    wit_interfaces::records::add_to_linker::<T, RecordsCapability>(linker, records_view::<T>)
        .map_err(anyhow::Error::from)?;
    wit_interfaces::log::add_to_linker::<T, LogCapability>(linker, log_view::<T>)
        .map_err(anyhow::Error::from)?;
    wit_interfaces::clock::add_to_linker::<T, ClockCapability>(linker, clock_view::<T>)
        .map_err(anyhow::Error::from)?;
    Ok(())
}

/// The `http` import's part of a store's state.
struct HttpCapability;

impl HasData for HttpCapability {
    type Data<'a> = HttpView<'a>;
}

/// The `records` import's part of a store's state.
struct RecordsCapability;

impl HasData for RecordsCapability {
    type Data<'a> = RecordsView<'a>;
}

/// The `log` import's part of a store's state.
struct LogCapability;

impl HasData for LogCapability {
    type Data<'a> = LogView<'a>;
}

/// The `clock` import's part of a store's state.
struct ClockCapability;

impl HasData for ClockCapability {
    type Data<'a> = ClockView<'a>;
}

/// The shared `types` interface has nothing to implement.
pub struct Types;

impl HasData for Types {
    type Data<'a> = Types;
}

impl wit_interfaces::types::Host for Types {}

fn http_view<T: HasCapabilities>(t: &mut T) -> HttpView<'_> {
    HttpView(&mut t.capabilities().http)
}

fn records_view<T: HasCapabilities>(t: &mut T) -> RecordsView<'_> {
    let c = t.capabilities();
    RecordsView {
        records: &mut c.records,
        scrubber: &mut c.scrubber,
        log: &mut c.log,
    }
}

fn log_view<T: HasCapabilities>(t: &mut T) -> LogView<'_> {
    let c = t.capabilities();
    LogView {
        log: &mut c.log,
        scrubber: &mut c.scrubber,
    }
}

fn clock_view<T: HasCapabilities>(t: &mut T) -> ClockView<'_> {
    ClockView(&t.capabilities().clock)
}
