//! The scheduler's plan: every practice's next slot, in order, and the slots missed
//! between two instants. Pure: the daemon's clock is passed in, so tests drive time.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::Duration;

use chrono::{DateTime, Utc};

use passerelle_service::schedule::{Missed, Schedule};
use passerelle_store::practices::Practice;

/// Practices' schedules and their next slots.
#[derive(Debug, Default)]
pub struct Planner {
    default_cron: String,
    spread: Duration,
    schedules: BTreeMap<String, Schedule>,
    /// (next slot, practice id), earliest first. Entries of removed practices, or made
    /// stale by a schedule change, are skipped when popped.
    heap: BinaryHeap<Reverse<(DateTime<Utc>, String)>>,
}

/// A practice whose schedule could not be read (it is left out of the plan).
#[derive(Debug)]
pub struct BadSchedule {
    pub practice_id: String,
    pub error: String,
}

impl Planner {
    pub fn new(default_cron: &str, spread: Duration) -> Planner {
        Planner {
            default_cron: default_cron.to_string(),
            spread,
            ..Planner::default()
        }
    }

    /// Replaces the plan with these practices' schedules; each one's next slot is the
    /// first strictly after `after`.
    pub fn load(&mut self, practices: &[Practice], after: DateTime<Utc>) -> Vec<BadSchedule> {
        self.schedules.clear();
        self.heap.clear();
        let mut bad = Vec::new();
        for p in practices {
            match passerelle_service::schedule::practice_schedule(
                p,
                &self.default_cron,
                self.spread,
            ) {
                Ok(schedule) => {
                    if let Some(next) = schedule.next_after(after) {
                        self.heap.push(Reverse((next, p.id.clone())));
                    }
                    self.schedules.insert(p.id.clone(), schedule);
                }
                Err(e) => bad.push(BadSchedule {
                    practice_id: p.id.clone(),
                    error: format!("{e:#}"),
                }),
            }
        }
        bad
    }

    /// Practices planned.
    pub fn len(&self) -> usize {
        self.schedules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.schedules.is_empty()
    }

    /// When the earliest slot is.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.heap.peek().map(|Reverse((t, _))| *t)
    }

    /// The practices whose slot is at or before `now`, with that slot, earliest first;
    /// each is planned again at its next slot after `now` (a slot passed while the
    /// process was paused is due once, not once per slot).
    pub fn take_due(&mut self, now: DateTime<Utc>) -> Vec<(String, DateTime<Utc>)> {
        let mut due = Vec::new();
        while let Some(Reverse((t, _))) = self.heap.peek() {
            if *t > now {
                break;
            }
            let Reverse((t, id)) = self.heap.pop().expect("peeked");
            let Some(schedule) = self.schedules.get(&id) else {
                continue;
            };
            if let Some(next) = schedule.next_after(now.max(t)) {
                self.heap.push(Reverse((next, id.clone())));
            }
            due.push((id, t));
        }
        due
    }

    /// Every practice's slots in `(after, until]`, summed up: what a daemon that was
    /// down then missed.
    pub fn missed(&self, after: DateTime<Utc>, until: DateTime<Utc>) -> Vec<(String, Missed)> {
        self.schedules
            .iter()
            .filter_map(|(id, s)| s.missed_between(after, until).map(|m| (id.clone(), m)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::planner::*;
    use chrono::TimeZone;

    fn practice(id: &str, cron: Option<&str>, tz: &str) -> Practice {
        Practice {
            id: id.into(),
            name: "Cabinet".into(),
            timezone: tz.into(),
            schedule: cron.map(str::to_string),
            public: None,
        }
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn spread_within_the_window_and_stable() {
        let practices: Vec<Practice> = (0..2000)
            .map(|i| practice(&format!("p{i:05}"), None, "Europe/Paris"))
            .collect();
        let mut planner = Planner::new("0 3 * * *", Duration::from_secs(3600));
        assert!(planner.load(&practices, utc(2026, 6, 1, 12, 0)).is_empty());
        // 03:00 Paris in June is 01:00 UTC.
        let start = utc(2026, 6, 2, 1, 0);
        assert_eq!(
            planner.take_due(start - chrono::Duration::seconds(1)),
            vec![]
        );
        let due = planner.take_due(start + chrono::Duration::hours(1));
        assert_eq!(due.len(), 2000, "every practice once in the window");
        let mut per_quarter = [0usize; 4];
        for (_, t) in &due {
            assert!(
                *t >= start && *t < start + chrono::Duration::hours(1),
                "{t}"
            );
            per_quarter[((*t - start).num_minutes() / 15) as usize] += 1;
        }
        for n in per_quarter {
            assert!((400..600).contains(&n), "uneven spread: {per_quarter:?}");
        }
        // The same practice gets the same offset the next day.
        let first: BTreeMap<_, _> = due.into_iter().collect();
        let next_day = planner.take_due(start + chrono::Duration::hours(25));
        for (id, t) in next_day {
            assert_eq!(t - first[&id], chrono::Duration::days(1), "{id}");
        }
    }

    #[test]
    fn dst_changes_neither_skip_nor_double_a_day() {
        // Around both 2026 changes in Paris: 29 March and 25 October. Schedules at 02:30
        // (absent on 29 March, twice on 25 October) and the default 03:00.
        for cron in ["30 2 * * *", "0 3 * * *"] {
            for (from, days) in [(utc(2026, 3, 25, 0, 0), 9), (utc(2026, 10, 21, 0, 0), 9)] {
                let mut planner = Planner::new(cron, Duration::ZERO);
                planner.load(&[practice("p1", None, "Europe/Paris")], from);
                let mut now = from;
                let mut runs = Vec::new();
                // A clock that ticks every 10 minutes.
                while now < from + chrono::Duration::days(days) {
                    now += chrono::Duration::minutes(10);
                    runs.extend(planner.take_due(now).into_iter().map(|(_, t)| t));
                }
                let paris = chrono_tz::Europe::Paris;
                let mut dates: Vec<_> = runs
                    .iter()
                    .map(|t| t.with_timezone(&paris).date_naive())
                    .collect();
                dates.dedup();
                assert_eq!(runs.len(), days as usize, "{cron} from {from}: {runs:?}");
                assert_eq!(dates.len(), runs.len(), "one run per calendar day");
            }
        }
    }

    #[test]
    fn missed_slots_are_listed_per_practice() {
        let mut planner = Planner::new("0 3 * * *", Duration::ZERO);
        let practices = [
            practice("daily", None, "Europe/Paris"),
            practice("hourly", Some("0 * * * *"), "UTC"),
        ];
        planner.load(&practices, utc(2026, 6, 4, 12, 0));
        // Down from 1 June 12:00 to 4 June 12:00 UTC.
        let missed = planner.missed(utc(2026, 6, 1, 12, 0), utc(2026, 6, 4, 12, 0));
        let missed: BTreeMap<_, _> = missed.into_iter().collect();
        assert_eq!(missed["daily"].count, 3);
        assert_eq!(missed["daily"].first, utc(2026, 6, 2, 1, 0));
        assert_eq!(missed["daily"].last, utc(2026, 6, 4, 1, 0));
        assert_eq!(missed["hourly"].count, 72);
        assert_eq!(planner.next_due(), Some(utc(2026, 6, 4, 13, 0)));
    }

    #[test]
    fn without_spread_the_slot_is_the_cron_time() {
        let mut planner = Planner::new("0 3 * * *", Duration::ZERO);
        let before = utc(2026, 6, 10, 0, 59) + chrono::Duration::seconds(59);
        planner.load(&[practice("p001", None, "Europe/Paris")], before);
        assert_eq!(planner.next_due(), Some(utc(2026, 6, 10, 1, 0)));
        assert_eq!(planner.take_due(utc(2026, 6, 10, 1, 0)).len(), 1);
    }

    #[test]
    fn a_bad_schedule_is_reported_and_left_out() {
        let mut planner = Planner::new("0 3 * * *", Duration::ZERO);
        let bad = planner.load(
            &[
                practice("ok", None, "Europe/Paris"),
                practice("bad", Some("61 * * * *"), "Europe/Paris"),
            ],
            utc(2026, 6, 1, 0, 0),
        );
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].practice_id, "bad");
        assert_eq!(planner.len(), 1);
    }
}
