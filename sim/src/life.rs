//! Life at the practices: the appointments of Doctolib profiles (invented patients, on
//! the opening grid) and how one step of [`World::advance`] changes them — new
//! bookings, reschedulings, a cancellation and an outright deletion per account.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Europe::Paris;
use chrono_tz::Tz;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::names;
use crate::world::{
    fold, local, opening, pick, rng_for, Account, Agenda, Appointment, Patient, Platform, Status,
    World,
};

/// What one [`World::advance`] step changed, by account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    pub step: u32,
    pub added: Vec<(String, String)>,
    pub rescheduled: Vec<(String, String)>,
    pub cancelled: Vec<(String, String)>,
    pub deleted: Vec<(String, String)>,
}

impl Changes {
    /// Appointment ids of one account that this step added, changed or deleted.
    pub fn for_account(&self, account: &str) -> (usize, usize, usize) {
        let n = |v: &Vec<(String, String)>| v.iter().filter(|(a, _)| a == account).count();
        (
            n(&self.added),
            n(&self.rescheduled) + n(&self.cancelled),
            n(&self.deleted),
        )
    }
}

impl World {
    /// One step of life at the practices: the clock moves one hour; every account gets
    /// new bookings, reschedulings, cancellations and an outright deletion.
    pub fn advance(&mut self) -> Changes {
        self.step += 1;
        self.clock = self.epoch + Duration::hours(i64::from(self.step));
        let clock = self.clock;
        let step = self.step;
        let seed = self.config.seed;
        let mut changes = Changes {
            step,
            ..Changes::default()
        };
        for (pi, practice) in self.practices.iter_mut().enumerate() {
            for (ai, account) in practice.accounts.iter_mut().enumerate() {
                if account.platform != Platform::Doctolib {
                    continue;
                }
                let mut rng = rng_for(seed, 1000 + u64::from(step), (pi * 8 + ai) as u64);
                let future: Vec<String> = account
                    .appointments
                    .values()
                    .filter(|a| {
                        a.start > clock && matches!(a.status, Status::Booked | Status::Confirmed)
                    })
                    .map(|a| a.id.clone())
                    .collect();
                for _ in 0..rng.random_range(2..5) {
                    let a = new_appointment(&mut rng, account, clock, 1..40, true);
                    changes.added.push((account.id.clone(), a.id.clone()));
                    account.appointments.insert(a.id.clone(), a);
                }
                if future.len() < 4 {
                    continue;
                }
                let mut touched = BTreeSet::new();
                for _ in 0..rng.random_range(1..3) {
                    let id = pick(&mut rng, &future).clone();
                    if !touched.insert(id.clone()) {
                        continue;
                    }
                    let (start, end) = random_time(
                        &mut rng,
                        account,
                        clock,
                        2..45,
                        account_motive_duration(account, &id),
                    );
                    let a = account
                        .appointments
                        .get_mut(&id)
                        .expect("picked from the map");
                    a.start = start;
                    a.end = end;
                    a.updated_at = clock;
                    changes.rescheduled.push((account.id.clone(), id));
                }
                let id = pick(&mut rng, &future).clone();
                if touched.insert(id.clone()) {
                    let a = account
                        .appointments
                        .get_mut(&id)
                        .expect("picked from the map");
                    a.status = Status::Cancelled;
                    a.updated_at = clock;
                    changes.cancelled.push((account.id.clone(), id));
                }
                let id = pick(&mut rng, &future).clone();
                if touched.insert(id.clone()) {
                    account.appointments.remove(&id);
                    account.removed.insert(id.clone());
                    changes.deleted.push((account.id.clone(), id));
                }
            }
        }
        changes
    }
}

fn account_motive_duration(account: &Account, appointment_id: &str) -> u32 {
    let motive = account.appointments[appointment_id].motive_id;
    account
        .motives
        .iter()
        .find(|m| m.id == motive)
        .map_or(20, |m| m.duration_min)
}

/// A start on an open day within `days` of `clock`, on the opening grid.
fn random_time(
    rng: &mut ChaCha8Rng,
    account: &Account,
    clock: DateTime<Utc>,
    days: std::ops::Range<i64>,
    duration_min: u32,
) -> (DateTime<Tz>, DateTime<Tz>) {
    let (open_days, ranges) = opening(account.kind);
    loop {
        let day = clock.with_timezone(&Paris).date_naive()
            + Duration::days(rng.random_range(days.clone()));
        if day.weekday().num_days_from_monday() >= open_days {
            continue;
        }
        let &(h0, m0, h1, m1) = pick(rng, ranges);
        let open = local(day, h0, m0);
        let close = local(day, h1, m1);
        let quarters = ((close - open).num_minutes() - i64::from(duration_min)) / 15;
        let start = open + Duration::minutes(15 * rng.random_range(0..=quarters.max(0)));
        return (start, start + Duration::minutes(i64::from(duration_min)));
    }
}

fn new_patient(rng: &mut ChaCha8Rng, id: String) -> Patient {
    let first = *pick(rng, names::FIRST_NAMES);
    let last = *pick(rng, names::LAST_NAMES);
    let birth = NaiveDate::from_ymd_opt(1935, 1, 1).expect("valid date")
        + Duration::days(rng.random_range(0..(87 * 365)));
    let mobile = if rng.random_bool(0.8) { 6 } else { 7 };
    let phone = format!(
        "0{mobile} {:02} {:02} {:02} {:02}",
        rng.random_range(0..100),
        rng.random_range(0..100),
        rng.random_range(0..100),
        rng.random_range(0..100)
    );
    let domain = *pick(rng, &["example.com", "example.org", "example.net"]);
    let email = format!(
        "{}.{}{}@{domain}",
        fold(first),
        fold(last),
        rng.random_range(1..99)
    );
    Patient {
        id,
        first_name: first.into(),
        last_name: last.into(),
        birth_date: birth,
        phone,
        email,
    }
}

pub(crate) fn new_appointment(
    rng: &mut ChaCha8Rng,
    account: &mut Account,
    clock: DateTime<Utc>,
    days: std::ops::Range<i64>,
    fresh: bool,
) -> Appointment {
    account.next_seq += 1;
    let id = format!("{}-{:05}", account.profile_id, account.next_seq);
    let agendas: Vec<&Agenda> = account
        .agendas
        .iter()
        .filter(|a| !a.booking_disabled)
        .collect();
    let agenda = *pick(rng, &agendas);
    let motive_id = *pick(rng, &agenda.motive_ids);
    let agenda_id = agenda.id;
    let duration = account
        .motives
        .iter()
        .find(|m| m.id == motive_id)
        .map_or(20, |m| m.duration_min);
    let (start, end) = random_time(rng, account, clock, days, duration);
    let status = if fresh {
        Status::Booked
    } else if start.with_timezone(&Utc) < clock {
        match rng.random_range(0..100) {
            0..85 => Status::Completed,
            85..92 => Status::NoShow,
            _ => Status::Cancelled,
        }
    } else {
        match rng.random_range(0..100) {
            0..70 => Status::Booked,
            70..90 => Status::Confirmed,
            _ => Status::Cancelled,
        }
    };
    let updated_at = if fresh {
        clock
    } else {
        clock - Duration::minutes(rng.random_range(60..(20 * 24 * 60)))
    };
    let patient = new_patient(
        rng,
        format!("pat-{}-{:05}", account.profile_id, account.next_seq),
    );
    Appointment {
        id,
        start,
        end,
        status,
        agenda_id,
        motive_id,
        patient,
        updated_at,
    }
}
