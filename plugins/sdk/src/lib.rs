//! The passerelle connector SDK: everything a connector written in Rust shares.
//!
//! A connector is a type implementing [`Connector`] (the `connector` world's exports)
//! plus one [`export_connector!`] line. The modules here own the shared plumbing:
//! [`http`] (typed HTTP + JSON, status mapping), [`drift`] (deserialisation failures
//! as precise `schema-drift` reports), [`emit`] (records and checkpoints), [`log`]
//! (logging macros), [`account`] (settings access), [`time`] (timestamps that keep
//! their offset, the sync window) and [`clock`] (the run's "now", today in a zone).
//!
//! ```ignore
//! struct MyPlatform;
//! impl passerelle_sdk::Connector for MyPlatform {
//!     fn describe() -> Manifest { /* … */ }
//!     fn check(account: Account) -> Result<(), SyncError> { Ok(()) }
//!     fn sync(req: SyncRequest) -> Result<Summary, SyncError> { /* … */ }
//! }
//! passerelle_sdk::export_connector!(MyPlatform);
//! ```

/// Raw bindings generated from the WIT contract inside this crate (`wit/v0.1.3`; with
/// the `contract-0-1-2`, `contract-0-1-1` or `contract-0-1-0` feature, that earlier
/// version, for components that must load on hosts that predate it: no run clock before
/// 0.1.3, no secret templates before 0.1.2, no drift policy or quarantine before 0.1.1).
#[allow(clippy::too_many_arguments)]
pub mod bindings {
    #[cfg(not(any(
        feature = "contract-0-1-0",
        feature = "contract-0-1-1",
        feature = "contract-0-1-2"
    )))]
    wit_bindgen::generate!({
        path: "wit/v0.1.3",
        world: "connector",
        pub_export_macro: true,
        export_macro_name: "export_connector",
        default_bindings_module: "passerelle_sdk::bindings",
        generate_all,
    });
    #[cfg(feature = "contract-0-1-2")]
    wit_bindgen::generate!({
        path: "wit/v0.1.2",
        world: "connector",
        pub_export_macro: true,
        export_macro_name: "export_connector",
        default_bindings_module: "passerelle_sdk::bindings",
        generate_all,
    });
    #[cfg(feature = "contract-0-1-1")]
    wit_bindgen::generate!({
        path: "wit/v0.1.1",
        world: "connector",
        pub_export_macro: true,
        export_macro_name: "export_connector",
        default_bindings_module: "passerelle_sdk::bindings",
        generate_all,
    });
    #[cfg(feature = "contract-0-1-0")]
    wit_bindgen::generate!({
        path: "wit/v0.1.0",
        world: "connector",
        pub_export_macro: true,
        export_macro_name: "export_connector",
        default_bindings_module: "passerelle_sdk::bindings",
        generate_all,
    });
}

pub mod account;
pub mod clock;
pub mod drift;
pub mod emit;
pub mod http;
pub mod log;
pub mod time;

/// `export_connector!(MyType)`: exports `MyType` as the component's `connector` world.
pub use bindings::export_connector;
/// A header with a secret inside a template (contract 0.1.2).
#[cfg(not(any(feature = "contract-0-1-0", feature = "contract-0-1-1")))]
pub use bindings::passerelle::connector::types::SecretTemplate;
pub use bindings::passerelle::connector::types::{
    Account, Appointment, AppointmentStatus, Drift, Header, HeaderValue, HttpError, Level,
    Manifest, Method, Parameter, Patient, RateLimit, SecretRef, Setting, Slot, Summary, SyncError,
    SyncMode, SyncRequest, TimeWindow,
};
/// What to do with an item that does not parse (contract 0.1.1).
#[cfg(not(feature = "contract-0-1-0"))]
pub use bindings::passerelle::connector::types::{DriftPolicy, QuarantinedItem};
/// What to do with an item that does not parse: a 0.1.0 component always fails.
#[cfg(feature = "contract-0-1-0")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriftPolicy {
    Fail,
    Quarantine,
}
/// The exports a connector implements: `describe`, `check`, `sync`.
pub use bindings::Guest as Connector;

/// Re-exported so connectors derive `Deserialize` without their own dependency line.
pub use serde;
pub use serde_json;

/// The end of a run that keeps no cursor: logs `message` (PII-free: counts, not
/// values) and returns it as the run's summary note.
pub fn summary(message: String) -> Summary {
    info!("{message}");
    Summary {
        cursor: None,
        message: Some(message),
    }
}

/// Declares a manifest parameter (setting or secret).
pub fn parameter(name: &str, description: &str, required: bool) -> Parameter {
    Parameter {
        name: name.into(),
        description: description.into(),
        required,
    }
}
