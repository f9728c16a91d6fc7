//! The WIT contract `passerelle:connector` as the host sees it: the generated bindings
//! ([`bindings`]) and the short name the rest of the host uses for its types ([`wit`]).
//! Components built against every 0.1.x version load (see [`bindings`]).

pub mod bindings;

pub use bindings::passerelle::connector::types as wit;
pub use bindings::{Connector, ConnectorPre};
