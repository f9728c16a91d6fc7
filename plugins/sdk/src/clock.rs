//! The run's clock (contract 0.1.3): [`now`] is the instant the host fixed for this run —
//! the real time in a daemon, the cassette's recorded "now" in `passerelle connector
//! test` — so a replay asks what the recording asked. [`today`] is that instant's date in
//! a time zone (platforms that page by local day), and [`Window::from_now`] the part of
//! the sync window that availability is asked for.
//!
//! Built against an earlier contract (the `contract-0-1-*` features) there is no run
//! clock: [`now`] is `None` and availability is asked from the window's start.
//!
//! [`Window::from_now`]: crate::time::Window::from_now

use chrono::NaiveDate;

use crate::time::Timestamp;

/// The run's "now", if the host gives one (contract 0.1.3 and later).
pub fn now() -> Option<Timestamp> {
    crate::time::run_clock()
}

/// The run's date in `tz` (`Europe/Paris` for a French platform), if the host gives a
/// clock.
pub fn today(tz: chrono_tz::Tz) -> Option<NaiveDate> {
    now().map(|t| t.date_in(tz))
}
