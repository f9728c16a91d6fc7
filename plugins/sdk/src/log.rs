//! Logging through the host (`log` import). Lines are scrubbed by the host, but never
//! log patient data on purpose: log ids and counts.
//!
//! `passerelle_sdk::info!("fetched {} slots", n)` or with fields:
//! `passerelle_sdk::log::write(Level::Info, "page done", &[("page", &page.to_string())])`.

use crate::Level;

/// Writes one structured log line.
pub fn write(level: Level, message: &str, fields: &[(&str, &str)]) {
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    crate::bindings::passerelle::connector::log::log(level, message, &fields);
}

/// `log!(Level::Info, "format {}", args)`.
#[macro_export]
macro_rules! log {
    ($level:expr, $($arg:tt)+) => {
        $crate::log::write($level, &format!($($arg)+), &[])
    };
}

#[macro_export]
macro_rules! debug { ($($arg:tt)+) => { $crate::log!($crate::Level::Debug, $($arg)+) }; }
#[macro_export]
macro_rules! info { ($($arg:tt)+) => { $crate::log!($crate::Level::Info, $($arg)+) }; }
#[macro_export]
macro_rules! warn { ($($arg:tt)+) => { $crate::log!($crate::Level::Warn, $($arg)+) }; }
#[macro_export]
macro_rules! error { ($($arg:tt)+) => { $crate::log!($crate::Level::Error, $($arg)+) }; }
