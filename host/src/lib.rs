//! passerelle: hosts booking-platform connectors as sandboxed WebAssembly components and
//! syncs each practice's appointments and public availability into its own database.
//!
//! Map of the crate (see `docs/architecture.md`), from the bottom up:
//! - [`model`]: the shared vocabulary, no I/O (ids, the run vocabulary with
//!   [`model::run::ErrorKind`], records, limits hit, content hashes);
//! - [`contract`]: the WIT bindings of `passerelle:connector`;
//! - [`sandbox`]: the wasmtime engine, compile cache, per-run stores and limits;
//! - [`capabilities`]: what a connector can reach (HTTP, records, log);
//! - [`scrub`]: keeping patient data and secrets out of logs and errors;
//! - [`store`]: the database (SQLite or PostgreSQL), SQL only;
//! - [`plugins`]: the installation path of connector versions and their checks;
//! - [`sync`]: one run of one account, end to end;
//! - [`service`]: every rule about practices, accounts, connectors and runs, once, with
//!   one error type; the CLI, the API and the daemon call it;
//! - [`schedule`], [`retry`], [`queue`], [`daemon`]: when runs happen and which starts
//!   next; `passerelle serve`;
//! - [`api`]: the admin API (routes, auth, one mapping of service errors to statuses);
//! - [`client`]: a typed client of that API;
//! - [`kit`]: the connector kit (`passerelle connector test`: cassettes replayed through
//!   the real sandbox, golden files, contract checks and drift probes);
//! - [`cli`]: the `passerelle` command (arguments → one request → local service or
//!   client → one renderer);
//! - `dev` (cargo feature, on by default): `passerelle demo` and `passerelle sim`;
//! - [`alerts`], [`metrics`], [`config`], [`limits`], [`app`]: drift alerts, Prometheus
//!   metrics, configuration, per-run limits, the shared process state.

pub mod alerts;
pub mod api;
/// mimalloc as the process allocator: the daemon allocates from many threads (tokio
/// workers, sqlx's SQLite workers, wasmtime), where glibc's per-thread arenas fragment
/// (measured: a third more resident memory in the daemon benchmark) and malloc/free
/// were an eighth of the CPU profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Makes mimalloc give freed memory back to the OS at once and commit arena memory
/// only when used: a daemon's resident size should follow its load (measured: 77 MiB
/// instead of 156 MiB for the daemon benchmark at 6,000 runs, for about 5% of its
/// throughput). Called by [`Passerelle::open`]; the environment (`MIMALLOC_*`) still
/// wins for experiments.
pub fn tune_allocator() {
    // mimalloc.h: mi_option_arena_eager_commit = 4, mi_option_purge_delay = 15.
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for (option, var, value) in [
            (PURGE_DELAY, "MIMALLOC_PURGE_DELAY", 0),
            (ARENA_EAGER_COMMIT, "MIMALLOC_ARENA_EAGER_COMMIT", 0),
        ] {
            if std::env::var_os(var).is_none() {
                // SAFETY: setting a documented mimalloc option; no memory is touched.
                unsafe { libmimalloc_sys::mi_option_set(option, value) };
            }
        }
    });
}

pub mod app;
pub mod capabilities;
pub mod cli;
pub mod client;
pub mod config;
pub mod console;
pub mod contract;
pub mod daemon;
#[cfg(feature = "dev")]
pub mod dev;
pub mod kit;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod plugins;
pub mod private_file;
pub mod queue;
pub mod retry;
pub mod sandbox;
pub mod schedule;
pub mod scrub;
pub mod service;
pub mod store;
pub mod sync;

pub use app::Passerelle;
