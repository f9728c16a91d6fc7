//! What the host gives a connector, one module per capability: [`http`] (with
//! [`allowlist`], [`netguard`] and [`ratelimit`]), [`records`] and [`log`].

pub mod allowlist;
pub mod http;
pub mod log;
pub mod netguard;
pub mod ratelimit;
pub mod records;
