//! The `clock` import (contract 0.1.3): the run's "now". It is fixed when the run is
//! prepared — the real time in a daemon, the cassette's recorded instant in
//! `passerelle connector test` — so one run sees one instant and a replay asks what the
//! recording asked. Components built against 0.1.0–0.1.2 do not import it.

use chrono::{DateTime, SecondsFormat, Utc};

/// One run's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunClock {
    now: DateTime<Utc>,
}

impl RunClock {
    /// The run's instant.
    pub fn at(now: DateTime<Utc>) -> RunClock {
        RunClock { now }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }
}

/// The `clock` import's view of a run.
pub struct ClockView<'a>(pub &'a RunClock);

impl crate::contract::bindings::passerelle::connector::clock::Host for ClockView<'_> {
    async fn now(&mut self) -> wasmtime::Result<String> {
        Ok(self.0.now.to_rfc3339_opts(SecondsFormat::Secs, true))
    }
}
