//! Development and demonstration (the `dev` cargo feature, on by default): `passerelle
//! demo` ([`demo`]), `passerelle sim` ([`sim`]), and wiring a host to the in-process
//! platform simulator for the demo and the tests. A build without the feature links no
//! simulator and none of its generated patient data.

pub mod demo;
pub mod sim;
