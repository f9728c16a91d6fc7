//! Timestamps as platforms send them and as the host stores them.
//!
//! [`Timestamp`] deserialises an RFC 3339 string (fractional seconds optional, offset
//! required) and keeps its offset: `2026-03-29T09:00:00.000+02:00` stays at `+02:00`.
//! A value that is not one becomes `schema-drift` at its JSON path like any other type
//! mismatch. [`Window`] is a sync request's time window, parsed once.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, TimeZone};
use serde::{Deserialize, Deserializer};

use crate::{SyncError, TimeWindow};

pub use chrono;
pub use chrono_tz;

/// An instant with the offset the platform gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub DateTime<FixedOffset>);

impl Timestamp {
    /// Parses RFC 3339 (`2026-11-23T09:15:00+01:00`, `…09:15:00.000Z`).
    pub fn parse(text: &str) -> Option<Timestamp> {
        DateTime::parse_from_rfc3339(text.trim())
            .ok()
            .map(Timestamp)
    }

    /// Local midnight of `date` in `tz`, e.g. for platforms that publish bare dates.
    pub fn midnight(date: NaiveDate, tz: chrono_tz::Tz) -> Timestamp {
        let naive = date.and_hms_opt(0, 0, 0).expect("midnight exists");
        let local = tz
            .from_local_datetime(&naive)
            .earliest()
            .or_else(|| {
                tz.from_local_datetime(&(naive + chrono::Duration::hours(1)))
                    .earliest()
            })
            .expect("an hour past midnight exists");
        Timestamp(local.fixed_offset())
    }

    /// A local time of `date` in `tz` (platforms that send `HH:MM` in the practice's
    /// zone), with that zone's offset then; `None` for a time the spring-forward gap
    /// skips, which no clock shows.
    pub fn local(date: NaiveDate, time: NaiveTime, tz: chrono_tz::Tz) -> Option<Timestamp> {
        tz.from_local_datetime(&date.and_time(time))
            .earliest()
            .map(|t| Timestamp(t.fixed_offset()))
    }

    /// The same instant shown at `minutes` east of UTC (platforms that send a UTC time
    /// and the local offset beside it); `None` for an offset no zone has (beyond ±24 h).
    pub fn at_offset_minutes(&self, minutes: i32) -> Option<Timestamp> {
        let offset = FixedOffset::east_opt(minutes.checked_mul(60)?)?;
        Some(Timestamp(self.0.with_timezone(&offset)))
    }

    /// The RFC 3339 text the contract carries (offset kept).
    pub fn to_rfc3339(&self) -> String {
        self.0.to_rfc3339()
    }

    pub fn timestamp_millis(&self) -> i64 {
        self.0.timestamp_millis()
    }

    /// The instant in UTC with milliseconds (`2021-04-16T12:00:00.000Z`), as platforms
    /// that take UTC query bounds want it.
    pub fn to_utc_millis(&self) -> String {
        self.0
            .naive_utc()
            .and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }

    /// The calendar date at this instant in `tz`.
    pub fn date_in(&self, tz: chrono_tz::Tz) -> NaiveDate {
        self.0.with_timezone(&tz).date_naive()
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse(&text)
            .ok_or_else(|| serde::de::Error::custom("an RFC 3339 timestamp with offset"))
    }
}

/// A sync request's window: start inclusive, end exclusive.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Window {
    /// Parses the host's window; a malformed one is the host's bug, reported `internal`.
    pub fn parse(w: &TimeWindow) -> Result<Window, SyncError> {
        let parse = |t: &str| {
            Timestamp::parse(t).ok_or_else(|| {
                SyncError::Internal(format!("the host sent an invalid window bound `{t}`"))
            })
        };
        Ok(Window {
            start: parse(&w.start)?,
            end: parse(&w.end)?,
        })
    }

    pub fn contains(&self, t: &Timestamp) -> bool {
        t.0 >= self.start.0 && t.0 < self.end.0
    }

    /// The part of the window availability is asked for: from the run's clock
    /// (`clock::now`) to the end — slots before now are not bookable (the host would
    /// not store them), the window's past is for appointments. The whole window when the
    /// host gives no clock (a component built against an earlier contract).
    pub fn from_now(&self) -> Window {
        self.from(run_clock())
    }

    /// The window's local days in `tz`, in pages of `days` days: `(first, last)`
    /// inclusive, from the start's date to the date of the end's last instant (an end at
    /// midnight does not add its day), the last page cut at that date. For platforms
    /// that are asked a week (or N days) at a time.
    pub fn days(&self, days: u32, tz: chrono_tz::Tz) -> Vec<(NaiveDate, NaiveDate)> {
        let days = days.max(1);
        let first = self.start.date_in(tz);
        let last = Timestamp(self.end.0 - chrono::Duration::milliseconds(1)).date_in(tz);
        let mut pages = Vec::new();
        let mut from = first;
        while from <= last {
            let to = (from + chrono::Duration::days(i64::from(days) - 1)).min(last);
            pages.push((from, to));
            from = to + chrono::Duration::days(1);
        }
        pages
    }

    /// [`Self::from_now`] at a given instant (`None`: the whole window).
    pub fn from(&self, now: Option<Timestamp>) -> Window {
        match now {
            Some(now) if now.0 > self.start.0 => Window {
                start: if now.0 < self.end.0 { now } else { self.end },
                end: self.end,
            },
            _ => *self,
        }
    }
}

/// The host's clock for this run (contract 0.1.3 and later), read here so that the
/// times' module needs nothing above it; `clock::now` is the public name.
pub(crate) fn run_clock() -> Option<Timestamp> {
    #[cfg(not(any(
        feature = "contract-0-1-0",
        feature = "contract-0-1-1",
        feature = "contract-0-1-2"
    )))]
    {
        Timestamp::parse(&crate::bindings::passerelle::connector::clock::now())
    }
    #[cfg(any(
        feature = "contract-0-1-0",
        feature = "contract-0-1-1",
        feature = "contract-0-1-2"
    ))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn availability_starts_at_the_run_clock() {
        let w = Window {
            start: Timestamp::parse("2021-03-04T07:00:00Z").unwrap(),
            end: Timestamp::parse("2021-08-01T07:00:00Z").unwrap(),
        };
        let now = Timestamp::parse("2021-04-03T07:00:00Z").unwrap();
        assert_eq!(w.from(Some(now)).start, now);
        assert_eq!(w.from(Some(now)).end, w.end);
        // No clock (an earlier contract), or a clock before the window: the window.
        assert_eq!(w.from(None).start, w.start);
        let before = Timestamp::parse("2021-01-01T00:00:00Z").unwrap();
        assert_eq!(w.from(Some(before)).start, w.start);
        // A clock past the window: an empty one, nothing to ask.
        let after = Timestamp::parse("2022-01-01T00:00:00Z").unwrap();
        let empty = w.from(Some(after));
        assert_eq!(empty.start, empty.end);
    }

    #[test]
    fn offsets_are_kept() {
        let t = Timestamp::parse("2026-03-29T09:00:00.000+02:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-03-29T09:00:00+02:00");
        let d = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        assert_eq!(
            Timestamp::midnight(d, chrono_tz::Europe::Paris).to_rfc3339(),
            "2026-03-29T00:00:00+01:00"
        );
        let d = NaiveDate::from_ymd_opt(2026, 7, 1).unwrap();
        assert_eq!(
            Timestamp::midnight(d, chrono_tz::Europe::Paris).to_rfc3339(),
            "2026-07-01T00:00:00+02:00"
        );
    }

    #[test]
    fn local_times_and_offsets_sent_beside_utc() {
        let d = NaiveDate::from_ymd_opt(2021, 3, 28).unwrap();
        let t = |h| NaiveTime::from_hms_opt(h, 30, 0).unwrap();
        let paris = chrono_tz::Europe::Paris;
        assert_eq!(
            Timestamp::local(d, t(1), paris).unwrap().to_rfc3339(),
            "2021-03-28T01:30:00+01:00"
        );
        assert!(Timestamp::local(d, t(2), paris).is_none(), "in the DST gap");
        assert_eq!(
            Timestamp::local(d, t(3), paris).unwrap().to_rfc3339(),
            "2021-03-28T03:30:00+02:00"
        );
        let utc = Timestamp::parse("2021-05-12T14:30:00Z").unwrap();
        assert_eq!(
            utc.at_offset_minutes(120).unwrap().to_rfc3339(),
            "2021-05-12T16:30:00+02:00"
        );
        assert!(utc.at_offset_minutes(100_000).is_none());
        let paris = Timestamp::parse("2021-04-16T14:00:00+02:00").unwrap();
        assert_eq!(paris.to_utc_millis(), "2021-04-16T12:00:00.000Z");
    }

    #[test]
    fn not_a_timestamp_is_drift() {
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct A {
            start_date: Timestamp,
        }
        match crate::drift::parse::<A>("GET /a", br#"{"start_date":"tomorrow"}"#) {
            Err(SyncError::SchemaDrift(d)) => {
                assert_eq!(d.path, "$.start_date");
                assert_eq!(d.expected, "an RFC 3339 timestamp with offset");
                assert_eq!(d.found, "string");
            }
            other => panic!("{other:?}"),
        }
    }
}
