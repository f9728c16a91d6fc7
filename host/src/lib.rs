//! passerelle: hosts booking-platform connectors as sandboxed WebAssembly components and
//! syncs each practice's appointments and public availability into its own database.
//!
//! Map of the crate (see `docs/architecture.md`):
//! - [`runtime`]: the wasmtime sandbox (engine, compile cache, per-run stores, limits);
//! - [`capabilities`]: what a connector can reach (HTTP, records, log);
//! - [`store`]: the database (SQLite or PostgreSQL);
//! - [`plugins`]: installed connector versions;
//! - [`sync`]: one run of one account, end to end;
//! - [`schedule`]: when a practice syncs (cron in its time zone, spread, DST);
//! - [`retry`]: whether and when a failed run is tried again;
//! - [`queue`]: which run starts next (caps, one per account, manual first, coalescing);
//! - [`scrub`]: keeping patient data and secrets out of logs and errors;
//! - [`config`], [`limits`], [`app`]: configuration and the shared process state;
//! - [`demo`]: `passerelle demo`, and wiring a host to the platform simulator;
//! - [`cli`]: the `passerelle` command.

pub mod api;
pub mod app;
pub mod capabilities;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod limits;
pub mod metrics;
pub mod plugins;
pub mod queue;
pub mod remote;
pub mod retry;
pub mod runtime;
pub mod schedule;
pub mod scrub;
pub mod store;
pub mod sync;

pub use app::Passerelle;
