//! The sandbox a connector runs in, and everything it can reach: the WIT contract's
//! bindings ([`contract`]), the wasmtime engine with its compile cache, per-run stores and
//! limits ([`sandbox`]), the capabilities linked into a run — HTTP, records, log — each
//! owning its state, its `Host` implementation and its per-run preparation
//! ([`capabilities`]), the scrubber that keeps patient data and secrets out of logs
//! ([`scrub`]), and the process's metrics registry ([`metrics`]).
//!
//! Below the service: it knows nothing of practices' rules, the database or the daemon
//! (what a run commits goes through [`capabilities::records::RecordSink`]).

pub mod capabilities;
pub mod contract;
pub mod metrics;
pub mod sandbox;
pub mod scrub;
