//! When a practice syncs: its schedule (a cron expression read as wall-clock time in the
//! practice's time zone; by default daily at 03:00 Europe/Paris), its stable offset
//! within the spread window, and the slots due between two instants.
//!
//! Pure functions of their inputs: the clock is always a parameter, so the scheduler and
//! its tests decide what "now" is.
//!
//! Daylight saving: a wall-clock time that does not exist that day (spring forward) runs
//! once, shifted by the length of the gap (02:30 → 03:30); one that exists twice (fall
//! back) runs once, at its first occurrence. So a daily schedule runs exactly once every
//! calendar day, whatever the clocks do.

use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Duration as ChronoDuration, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use sha2::{Digest, Sha256};

/// Daily at 03:00: off-hours, away from the platforms' business-hour rate limits.
pub const DEFAULT_CRON: &str = "0 3 * * *";
pub const DEFAULT_TIMEZONE: &str = "Europe/Paris";
/// Default spread of a schedule's runs: one hour.
pub const DEFAULT_SPREAD: Duration = Duration::from_secs(3600);
/// Most slots [`Schedule::slots_between`] lists.
pub const MAX_SLOTS: usize = 1000;
/// Most slots [`Schedule::missed_between`] counts one by one (beyond, the count is a
/// lower bound; the first and last slots stay exact).
pub const MAX_COUNTED: usize = 10_000;

/// The slots a practice missed in a gap: how many, the first and the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Missed {
    pub count: usize,
    /// The gap held more than [`MAX_COUNTED`] slots: `count` is a lower bound.
    pub at_least: bool,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
}

/// One practice's schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    tz: Tz,
    offset: ChronoDuration,
    expression: String,
}

/// The practice's stable offset in `[0, spread)`: a hash of its id, so the same practice
/// always starts at the same point of the window and 10,000 practices spread evenly.
pub fn spread_offset(practice_id: &str, spread: Duration) -> Duration {
    let secs = spread.as_secs();
    if secs == 0 {
        return Duration::ZERO;
    }
    let digest = Sha256::digest(practice_id.as_bytes());
    let n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    Duration::from_secs(n % secs)
}

impl Schedule {
    /// `expression`: five-field cron (minute hour day-of-month month day-of-week), read in
    /// `timezone` (IANA name).
    pub fn new(
        expression: &str,
        timezone: &str,
        spread: Duration,
        practice_id: &str,
    ) -> Result<Schedule> {
        let cron = Cron::from_str(expression)
            .map_err(|e| anyhow::anyhow!("invalid cron expression `{expression}`: {e}"))?;
        let tz: Tz = timezone.parse().map_err(|_| {
            anyhow::anyhow!(
                "unknown time zone `{timezone}` (use an IANA name such as Europe/Paris)"
            )
        })?;
        let offset = ChronoDuration::from_std(spread_offset(practice_id, spread))
            .context("spread window too large")?;
        Ok(Schedule {
            cron,
            tz,
            offset,
            expression: expression.to_string(),
        })
    }

    /// The default schedule of a practice.
    pub fn default_for(practice_id: &str) -> Schedule {
        Schedule::new(DEFAULT_CRON, DEFAULT_TIMEZONE, DEFAULT_SPREAD, practice_id)
            .expect("the default schedule is valid")
    }

    pub fn expression(&self) -> &str {
        &self.expression
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// This practice's offset within the spread window.
    pub fn offset(&self) -> Duration {
        self.offset.to_std().unwrap_or_default()
    }

    /// The first slot strictly after `t` (the cron occurrence plus the offset).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let base = t - self.offset;
        // Walk the cron over wall-clock times (naive, carried as UTC), resolving each one
        // in the time zone, until one lands after `base`.
        let mut wall = base.with_timezone(&self.tz).naive_local() - ChronoDuration::hours(3);
        // Whole seconds: cron works in seconds, and slots should not carry "now"'s nanos.
        wall -= ChronoDuration::nanoseconds(i64::from(wall.and_utc().timestamp_subsec_nanos()));
        for _ in 0..10_000 {
            let next = self
                .cron
                .find_next_occurrence(&Utc.from_utc_datetime(&wall), false)
                .ok()?
                .naive_utc();
            let instant = self.resolve(next)?;
            if instant > base {
                return Some(instant + self.offset);
            }
            wall = next;
        }
        None
    }

    /// The slots in `(after, until]`, oldest first, at most [`MAX_SLOTS`].
    pub fn slots_between(&self, after: DateTime<Utc>, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut t = after;
        while out.len() < MAX_SLOTS {
            match self.next_after(t) {
                Some(slot) if slot <= until => {
                    out.push(slot);
                    t = slot;
                }
                _ => break,
            }
        }
        out
    }

    /// The slots in `(after, until]` summed up (None if there is none): what a gap of
    /// any length — an outage, a clock jump of years — costs to describe is bounded.
    pub fn missed_between(&self, after: DateTime<Utc>, until: DateTime<Utc>) -> Option<Missed> {
        let first = self.next_after(after).filter(|t| *t <= until)?;
        let (mut count, mut last) = (1, first);
        while count < MAX_COUNTED {
            match self.next_after(last) {
                Some(slot) if slot <= until => {
                    count += 1;
                    last = slot;
                }
                _ => {
                    return Some(Missed {
                        count,
                        at_least: false,
                        first,
                        last,
                    })
                }
            }
        }
        // Too many to count: the last slot is found from shortly before `until`.
        let mut t = (until - ChronoDuration::days(40)).max(last);
        while let Some(slot) = self.next_after(t).filter(|s| *s <= until) {
            last = slot;
            t = slot;
        }
        Some(Missed {
            count,
            at_least: true,
            first,
            last,
        })
    }

    /// A wall-clock time as an instant: the first of two in a fall-back overlap; shifted
    /// by the gap in a spring-forward gap.
    fn resolve(&self, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        if let Some(t) = self.tz.from_local_datetime(&wall).earliest() {
            return Some(t.with_timezone(&Utc));
        }
        // In a gap: read the wall time with the offset in force just before it, which
        // shifts it by the gap's length (02:30 +01:00 is 03:30 +02:00).
        let before = self
            .tz
            .from_local_datetime(&(wall - ChronoDuration::hours(3)))
            .earliest()?;
        let offset = i64::from(before.offset().fix().local_minus_utc());
        Some(Utc.from_utc_datetime(&(wall - ChronoDuration::seconds(offset))))
    }
}

/// When `practice` syncs: its own cron expression or `default_cron`, in its time zone,
/// with runs spread over `spread`.
pub fn practice_schedule(
    practice: &passerelle_store::practices::Practice,
    default_cron: &str,
    spread: Duration,
) -> anyhow::Result<Schedule> {
    Schedule::new(
        practice.schedule.as_deref().unwrap_or(default_cron),
        &practice.timezone,
        spread,
        &practice.id,
    )
}

#[cfg(test)]
mod tests {
    use crate::schedule::*;
    use chrono::{Datelike, Timelike};
    use chrono_tz::Europe::Paris;

    fn paris(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Paris
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .earliest()
            .unwrap()
            .with_timezone(&Utc)
    }

    fn unspread(expr: &str) -> Schedule {
        Schedule::new(expr, "Europe/Paris", Duration::ZERO, "p").unwrap()
    }

    #[test]
    fn default_is_three_in_the_morning_in_paris_plus_the_offset() {
        let s = Schedule::default_for("p001");
        let next = s.next_after(paris(2026, 11, 22, 12, 0)).unwrap();
        let at = next.with_timezone(&Paris);
        assert_eq!((at.day(), at.hour()), (23, 3));
        assert_eq!(
            next - paris(2026, 11, 23, 3, 0),
            ChronoDuration::from_std(s.offset()).unwrap()
        );
        assert!(s.offset() < DEFAULT_SPREAD);
        let noisy = paris(2026, 11, 22, 12, 0) + ChronoDuration::nanoseconds(123_456_789);
        assert_eq!(s.next_after(noisy), Some(next), "slots are whole seconds");
    }

    #[test]
    fn offsets_are_stable_and_spread_over_the_window() {
        let spread = Duration::from_secs(3600);
        assert_eq!(spread_offset("p001", spread), spread_offset("p001", spread));
        let mut per_minute = [0u32; 60];
        for i in 0..10_000 {
            per_minute
                [(spread_offset(&format!("practice-{i}"), spread).as_secs() / 60) as usize] += 1;
        }
        // 10,000 practices over 60 minutes: about 167 a minute, none empty or crowded.
        assert!(
            per_minute.iter().all(|&n| (100..250).contains(&n)),
            "{per_minute:?}"
        );
    }

    /// Every day from 20 March to 5 April and from 20 October to 5 November 2026 (both
    /// Paris DST changes) has exactly one run, for times inside and outside the changes.
    #[test]
    fn daylight_saving_neither_skips_nor_doubles_a_day() {
        for expr in ["0 3 * * *", "30 2 * * *", "0 2 * * *", "59 1 * * *"] {
            let s = unspread(expr);
            for (from, until) in [
                (paris(2026, 3, 20, 12, 0), paris(2026, 4, 5, 12, 0)),
                (paris(2026, 10, 20, 12, 0), paris(2026, 11, 5, 12, 0)),
            ] {
                let slots = s.slots_between(from, until);
                let days: Vec<_> = slots
                    .iter()
                    .map(|t| t.with_timezone(&Paris).date_naive())
                    .collect();
                assert_eq!(slots.len(), 16, "{expr}: {slots:?}");
                let mut unique = days.clone();
                unique.dedup();
                assert_eq!(unique.len(), 16, "{expr}: a day ran twice: {days:?}");
            }
        }
        // The gap: 02:30 on 29 March 2026 does not exist; it runs at 03:30 (CEST).
        let s = unspread("30 2 * * *");
        let t = s.next_after(paris(2026, 3, 29, 0, 0)).unwrap();
        assert_eq!(t, paris(2026, 3, 29, 3, 30));
        // The overlap: 02:30 on 25 October 2026 happens twice; it runs at the first.
        let t = s.next_after(paris(2026, 10, 25, 0, 0)).unwrap();
        assert_eq!(t.with_timezone(&Paris).offset().to_string(), "CEST");
        assert_eq!(s.next_after(t).unwrap().with_timezone(&Paris).day(), 26);
    }

    #[test]
    fn missed_slots_are_listed_oldest_first_and_capped() {
        let s = Schedule::default_for("p001");
        let from = paris(2026, 11, 1, 12, 0);
        let slots = s.slots_between(from, paris(2026, 11, 8, 12, 0));
        assert_eq!(slots.len(), 7);
        assert!(slots.windows(2).all(|w| w[0] < w[1]));
        let years = s.slots_between(from, paris(2030, 1, 1, 0, 0));
        assert_eq!(years.len(), MAX_SLOTS);
    }

    /// A gap of years is described by its count and ends, exactly while countable.
    #[test]
    fn a_gap_is_summed_up_however_long() {
        let s = unspread("0 3 * * *");
        let m = s
            .missed_between(paris(2021, 1, 1, 12, 0), paris(2026, 11, 29, 12, 0))
            .unwrap();
        assert_eq!(m.first, paris(2021, 1, 2, 3, 0));
        assert_eq!(m.last, paris(2026, 11, 29, 3, 0));
        // 2021-01-02 ..= 2026-11-29: every day once.
        let days = (m.last.date_naive() - m.first.date_naive()).num_days() as usize + 1;
        assert_eq!((m.count, m.at_least), (days, false));
        let hourly = unspread("0 * * * *");
        let m = hourly
            .missed_between(paris(2021, 1, 1, 12, 0), paris(2026, 11, 29, 12, 30))
            .unwrap();
        assert_eq!((m.count, m.at_least), (MAX_COUNTED, true));
        assert_eq!(m.last, paris(2026, 11, 29, 12, 0));
        assert!(s
            .missed_between(paris(2026, 11, 29, 3, 0), paris(2026, 11, 29, 12, 0))
            .is_none());
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let e = Schedule::new("61 3 * * *", "Europe/Paris", DEFAULT_SPREAD, "p").unwrap_err();
        assert!(e
            .to_string()
            .contains("invalid cron expression `61 3 * * *`"));
        let e = Schedule::new("0 3 * * *", "Mars/Olympus", DEFAULT_SPREAD, "p").unwrap_err();
        assert!(e.to_string().contains("unknown time zone `Mars/Olympus`"));
        assert_eq!(unspread("*/30 * * * *").expression(), "*/30 * * * *");
    }
}
