//! passerelle: hosts booking-platform connectors as sandboxed WebAssembly components and
//! syncs each practice's appointments and public availability into its own database.
//!
//! The host is a stack of crates, each a layer that can only import the ones below it
//! (`docs/architecture.md` draws it):
//!
//! - [`model`] (`passerelle-model`): the vocabulary, no I/O;
//! - [`store`] (`passerelle-store`): the database, SQL only;
//! - [`runtime`] (`passerelle-runtime`): the WIT contract, the sandbox, the capabilities,
//!   the scrubber, the metrics registry;
//! - [`service`] (`passerelle-service`): every rule once, one run of one account,
//!   installation, schedules ([`Passerelle`]);
//! - [`daemon`] (`passerelle-daemon`): `passerelle serve`'s moving parts;
//! - [`kit`] (`passerelle-kit`): the connector kit;
//! - [`api`] (`passerelle-api`) and [`console`] (`passerelle-console`): the admin API
//!   and the operator console;
//! - `dev` (`passerelle-dev`, the `dev` feature): `passerelle demo` and `passerelle sim`;
//! - this crate: the command line ([`cli`]), the API's client ([`client`]),
//!   [`serve`], which starts the daemon with its listener, and [`telemetry`], the OTLP
//!   export of traces.

pub mod cli;
pub mod client;
pub mod serve;
pub mod telemetry;

pub use passerelle_api as api;
pub use passerelle_console as console;
pub use passerelle_daemon as daemon;
#[cfg(feature = "dev")]
pub use passerelle_dev as dev;
pub use passerelle_kit as kit;
pub use passerelle_model as model;
pub use passerelle_runtime as runtime;
pub use passerelle_service as service;
pub use passerelle_service::Passerelle;
pub use passerelle_store as store;
