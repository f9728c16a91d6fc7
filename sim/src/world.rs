//! The simulated platforms' data: practices, their accounts on the five platforms
//! (place, motives, agendas; on Doctolib, appointments with patients), and the
//! availability grid with its ground truth. Generating a world is `generate`'s
//! job; how its appointments change step by step, [`crate::life`]'s.
//!
//! The grid ([`World::times_on`]) is the world's free times, each with its free places;
//! whether one is bookable online is the world's decision too ([`World::bookable`]: an
//! open agenda, a motive open to new patients, a place left). The ground truth
//! ([`World::expected_slots`]) is those bookable times, as the platform publishes them
//! ([`crate::publish`]); the platform modules then render the grid, bookable or not, in
//! their own shapes — a connector that reads a platform's "not bookable" signal wrongly
//! stores times the truth does not hold.
//!
//! Everything is deterministic from [`SimConfig`]: the same seed, size and epoch give
//! the same world, and [`World::advance`] applies the same changes at the same step.
//! That is how tests compare what passerelle stored with the ground truth, and how the
//! demo rebuilds yesterday's simulator before moving it one step on.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Europe::Paris;
use chrono_tz::Tz;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// A booking platform the simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Doctolib,
    Keldoc,
    Maiia,
    Ordoclic,
    Mapharma,
}

impl Platform {
    pub const ALL: [Platform; 5] = [
        Platform::Doctolib,
        Platform::Keldoc,
        Platform::Maiia,
        Platform::Ordoclic,
        Platform::Mapharma,
    ];

    /// Its name, which is also its connector's.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Doctolib => "doctolib",
            Platform::Keldoc => "keldoc",
            Platform::Maiia => "maiia",
            Platform::Ordoclic => "ordoclic",
            Platform::Mapharma => "mapharma",
        }
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimConfig {
    pub seed: u64,
    /// Practices; every `dentist_every`-th one (by default every other one: p001,
    /// p003…) also has a dentist profile.
    pub practices: usize,
    /// 2: every other practice has a dentist profile too; 1: every practice (two
    /// accounts each); 0: none.
    pub dentist_every: usize,
    /// Appointments generated per account.
    pub appointments_per_account: usize,
    /// Days of availability published from the epoch on.
    pub availability_days: u32,
    /// The simulator's "now" at generation; default: the current hour.
    pub epoch: Option<DateTime<Utc>>,
    /// The platforms practices have accounts on (default: all five). Every practice is
    /// on Doctolib; the first of each three also on Keldoc and Maiia, the second on
    /// Ordoclic, the third on Mapharma.
    pub platforms: Vec<Platform>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 42,
            practices: 3,
            dentist_every: 2,
            appointments_per_account: 120,
            availability_days: 21,
            epoch: None,
            platforms: Platform::ALL.to_vec(),
        }
    }
}

/// The kind of a profile: its opening hours and motives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    General,
    Dental,
    Pharmacy,
}

/// How an agenda's availabilities render their slots (Doctolib used all three).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SlotFormat {
    /// `"2021-04-10T21:45:00.000+02:00"`
    IsoString,
    /// `{"start_date": "…", "end_date": "…"}`
    Object,
    /// `"2021-04-10"`: a day with availability, no time.
    DateOnly,
}

#[derive(Debug, Clone, Serialize)]
pub struct Practice {
    pub id: String,
    pub name: String,
    pub accounts: Vec<Account>,
}

/// One practice's profile on a platform: what a passerelle account points at.
#[derive(Debug, Clone, Serialize)]
pub struct Account {
    /// The passerelle account id the demo and tests use for it.
    pub id: String,
    pub practice_id: String,
    pub platform: Platform,
    pub label: String,
    pub kind: Kind,
    pub profile_id: u64,
    /// Booking slug (Doctolib's `GET /booking/{centre}.json`, Ordoclic's profile).
    pub centre: String,
    /// Bearer token of the practice API (Doctolib only).
    pub token: String,
    /// Ordoclic: the profile takes bookings by phone only (`booking_settings: any`).
    pub phone_only: bool,
    pub place: Place,
    pub motives: Vec<Motive>,
    pub agendas: Vec<Agenda>,
    #[serde(skip)]
    pub appointments: BTreeMap<String, Appointment>,
    /// Appointments deleted outright: the API stops returning them.
    #[serde(skip)]
    pub removed: BTreeSet<String>,
    #[serde(skip)]
    pub(crate) next_seq: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Place {
    /// `practice-<n>`
    pub id: String,
    pub practice_id: u64,
    pub name: String,
    pub address: String,
    pub city: String,
    pub zipcode: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Motive {
    pub id: u64,
    pub name: String,
    pub ref_visit_motive_id: u64,
    pub category_id: Option<u64>,
    /// Motives closed to new patients are not bookable publicly.
    pub allow_new_patients: bool,
    pub duration_min: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Agenda {
    pub id: u64,
    pub practitioner: String,
    pub booking_disabled: bool,
    pub motive_ids: Vec<u64>,
    pub slot_format: SlotFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Booked,
    Confirmed,
    Cancelled,
    NoShow,
    Completed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Booked => "booked",
            Status::Confirmed => "confirmed",
            Status::Cancelled => "cancelled",
            Status::NoShow => "no-show",
            Status::Completed => "completed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Patient {
    pub id: String,
    pub first_name: String,
    pub last_name: String,
    pub birth_date: NaiveDate,
    pub phone: String,
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Appointment {
    pub id: String,
    pub start: DateTime<Tz>,
    pub end: DateTime<Tz>,
    pub status: Status,
    pub agenda_id: u64,
    pub motive_id: u64,
    pub patient: Patient,
    pub updated_at: DateTime<Utc>,
}

/// A slot as passerelle should store it (starts-at normalised like the host does).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ExpectedSlot {
    pub starts_at: String,
    pub ends_at: Option<String>,
    pub practitioner: String,
    pub visit_motive: String,
    pub place: String,
}

impl ExpectedSlot {
    /// A time published with its end (start plus the motive's length) at the Paris
    /// offset, and who, what and where as the platform names them.
    pub fn timed(t: &DateTime<Tz>, motive: &Motive, practitioner: String, place: String) -> Self {
        ExpectedSlot {
            starts_at: normalised(t),
            ends_at: Some(normalised(
                &(*t + Duration::minutes(i64::from(motive.duration_min))),
            )),
            practitioner,
            visit_motive: motive.name.clone(),
            place,
        }
    }
}

/// The whole simulated world.
#[derive(Debug, Clone, Serialize)]
pub struct World {
    pub config: SimConfig,
    pub epoch: DateTime<Utc>,
    /// The simulator's clock: the epoch, plus one hour per step.
    pub clock: DateTime<Utc>,
    pub step: u32,
    pub practices: Vec<Practice>,
}

/// SplitMix64: a stable hash for the availability grid.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

pub(crate) fn rng_for(seed: u64, a: u64, b: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix(seed ^ mix(a ^ mix(b))))
}

pub(crate) fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// ASCII lower-case form of a name for e-mail addresses.
pub(crate) fn fold(name: &str) -> String {
    name.chars()
        .filter_map(|c| match c {
            'à' | 'â' | 'ä' => Some('a'),
            'é' | 'è' | 'ê' | 'ë' | 'É' => Some('e'),
            'î' | 'ï' => Some('i'),
            'ô' | 'ö' => Some('o'),
            'ù' | 'û' | 'ü' => Some('u'),
            'ç' => Some('c'),
            ' ' | '\'' => None,
            '-' => Some('-'),
            c => Some(c.to_ascii_lowercase()),
        })
        .collect()
}

/// Opening hours per kind: (weekdays open, ranges of local time).
pub(crate) fn opening(kind: Kind) -> (u32, &'static [(u32, u32, u32, u32)]) {
    match kind {
        Kind::General => (5, &[(8, 30, 12, 0), (14, 0, 18, 30)]),
        Kind::Dental => (6, &[(9, 0, 12, 30), (13, 30, 17, 0)]),
        Kind::Pharmacy => (6, &[(9, 0, 12, 30), (14, 0, 19, 0)]),
    }
}

pub(crate) fn local(day: NaiveDate, h: u32, m: u32) -> DateTime<Tz> {
    let naive = day.and_time(NaiveTime::from_hms_opt(h, m, 0).expect("valid time"));
    Paris
        .from_local_datetime(&naive)
        .earliest()
        .expect("opening hours are never in a DST gap")
}

/// Local midnight of `day` in Paris.
pub fn midnight(day: NaiveDate) -> DateTime<Tz> {
    local(day, 0, 0)
}

/// The start of the current hour: the default epoch.
pub fn current_hour() -> DateTime<Utc> {
    let now = Utc::now();
    now.with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .expect("truncating to the hour")
}

/// Rendering of an instant the way passerelle stores it (RFC 3339, offset kept).
pub fn normalised(t: &DateTime<Tz>) -> String {
    t.fixed_offset().to_rfc3339()
}

impl World {
    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.practices.iter().flat_map(|p| p.accounts.iter())
    }

    pub fn account(&self, id: &str) -> Option<&Account> {
        self.accounts().find(|a| a.id == id)
    }

    /// The accounts on one platform.
    pub fn on(&self, platform: Platform) -> impl Iterator<Item = &Account> {
        self.accounts().filter(move |a| a.platform == platform)
    }

    pub fn account_by_centre(&self, platform: Platform, centre: &str) -> Option<&Account> {
        self.on(platform).find(|a| a.centre == centre)
    }

    pub fn account_by_profile(&self, platform: Platform, profile_id: u64) -> Option<&Account> {
        self.on(platform).find(|a| a.profile_id == profile_id)
    }

    /// The first day of published availability and the day after the last.
    pub fn availability_days(&self) -> (NaiveDate, NaiveDate) {
        let first = self.epoch.with_timezone(&Paris).date_naive();
        (
            first,
            first + Duration::days(i64::from(self.config.availability_days)),
        )
    }

    /// The first instant availability is published for: two hours after the epoch. A
    /// host syncing within the hour of the simulator's start then never holds a
    /// published slot in its past (passerelle does not store availability that has
    /// started), whatever minute it syncs at.
    pub fn published_from(&self) -> DateTime<Utc> {
        self.epoch + Duration::hours(2)
    }

    /// The grid: free times of one agenda for one motive on `day`, each with its free
    /// places (0: full). None outside the published range, before
    /// [`Self::published_from`], on a day that begins between the epoch and then (its
    /// bare date would start before or after a host's clock depending on the minute),
    /// or for a motive the agenda does not take. Whether a time is bookable is
    /// [`Self::bookable`]'s call, not the grid's.
    pub fn times_on(
        &self,
        account: &Account,
        agenda: &Agenda,
        motive: &Motive,
        day: NaiveDate,
    ) -> Vec<(DateTime<Tz>, u32)> {
        let (first, end) = self.availability_days();
        if day < first || day >= end || !agenda.motive_ids.contains(&motive.id) {
            return Vec::new();
        }
        let midnight = local(day, 0, 0).with_timezone(&Utc);
        if midnight >= self.epoch && midnight < self.published_from() {
            return Vec::new();
        }
        let (open_days, ranges) = opening(account.kind);
        if day.weekday().num_days_from_monday() >= open_days {
            return Vec::new();
        }
        let mut out = Vec::new();
        for &(h0, m0, h1, m1) in ranges {
            let mut t = local(day, h0, m0);
            let close = local(day, h1, m1);
            while t + Duration::minutes(i64::from(motive.duration_min)) <= close {
                let key =
                    mix(self.config.seed ^ mix(agenda.id ^ mix(motive.id ^ t.timestamp() as u64)));
                if key.is_multiple_of(4) && t.with_timezone(&Utc) >= self.published_from() {
                    out.push((t, ((key >> 8) % 4) as u32));
                }
                t += Duration::minutes(i64::from(motive.duration_min));
            }
        }
        out
    }

    /// The grid's times with a place left on `day` (what most platforms show).
    pub fn slots_on(
        &self,
        account: &Account,
        agenda: &Agenda,
        motive: &Motive,
        day: NaiveDate,
    ) -> Vec<DateTime<Tz>> {
        self.times_on(account, agenda, motive, day)
            .into_iter()
            .filter(|(_, places)| *places > 0)
            .map(|(t, _)| t)
            .collect()
    }

    /// Whether the public can book a free time online: the agenda takes online
    /// bookings, the motive is open to new patients, the profile books online, and a
    /// place is left.
    pub fn bookable(account: &Account, agenda: &Agenda, motive: &Motive, places: u32) -> bool {
        !agenda.booking_disabled && motive.allow_new_patients && !account.phone_only && places > 0
    }

    /// Every slot passerelle should hold for an account after a successful run: the
    /// bookable free times, as the platform publishes them ([`crate::publish`]).
    pub fn expected_slots(&self, account: &Account) -> Vec<ExpectedSlot> {
        let (first, end) = self.availability_days();
        let mut out = BTreeSet::new();
        for agenda in &account.agendas {
            for motive in &account.motives {
                let mut day = first;
                while day < end {
                    for (t, places) in self.times_on(account, agenda, motive, day) {
                        if Self::bookable(account, agenda, motive, places) {
                            out.extend(crate::publish(self, account, agenda, motive, &t));
                        }
                    }
                    day += Duration::days(1);
                }
            }
        }
        out.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SimConfig {
        SimConfig {
            epoch: Some(Utc.with_ymd_and_hms(2026, 3, 20, 10, 0, 0).unwrap()),
            ..SimConfig::default()
        }
    }

    #[test]
    fn same_seed_same_world() {
        let a = World::generate(config());
        let b = World::generate(config());
        assert_eq!(
            serde_json::to_string(
                &a.practices[0].accounts[0]
                    .appointments
                    .values()
                    .collect::<Vec<_>>()
            )
            .unwrap(),
            serde_json::to_string(
                &b.practices[0].accounts[0]
                    .appointments
                    .values()
                    .collect::<Vec<_>>()
            )
            .unwrap()
        );
        let mut c = World::generate(SimConfig {
            seed: 7,
            ..config()
        });
        assert_ne!(
            c.practices[0].accounts[0]
                .appointments
                .values()
                .next()
                .unwrap()
                .patient,
            a.practices[0].accounts[0]
                .appointments
                .values()
                .next()
                .unwrap()
                .patient
        );
        let (mut a, mut b) = (a, b);
        assert_eq!(a.advance(), b.advance());
        c.advance();
    }

    #[test]
    fn shape() {
        let w = World::generate(config());
        assert_eq!(w.practices.len(), 3);
        let ids = |p: usize| -> Vec<&str> {
            w.practices[p]
                .accounts
                .iter()
                .map(|a| a.id.as_str())
                .collect()
        };
        assert_eq!(
            ids(0),
            ["p001-cabinet", "p001-dentaire", "p001-keldoc", "p001-maiia"]
        );
        assert_eq!(ids(1), ["p002-cabinet", "p002-ordoclic"]);
        assert_eq!(ids(2), ["p003-cabinet", "p003-dentaire", "p003-mapharma"]);
        for a in w.accounts() {
            let appointments = if a.platform == Platform::Doctolib {
                120
            } else {
                0
            };
            assert_eq!(a.appointments.len(), appointments, "{}", a.id);
            assert!(!w.expected_slots(a).is_empty(), "{} has no slots", a.id);
        }
        let doctolib_only = World::generate(SimConfig {
            platforms: vec![Platform::Doctolib],
            ..config()
        });
        assert_eq!(doctolib_only.accounts().count(), 5);
        // The window crosses the switch to summer time: both offsets occur.
        let slots = w.expected_slots(&w.practices[1].accounts[0]);
        assert!(slots.iter().any(|s| s.starts_at.ends_with("+01:00")));
        assert!(slots.iter().any(|s| s.starts_at.ends_with("+02:00")));
    }

    #[test]
    fn the_truth_is_the_bookable_times_only() {
        let w = World::generate(config());
        let mut closed = 0;
        let mut full = 0;
        for a in w.accounts() {
            let (first, end) = w.availability_days();
            for agenda in &a.agendas {
                for motive in &a.motives {
                    let mut day = first;
                    while day < end {
                        for (_, places) in w.times_on(a, agenda, motive, day) {
                            if !World::bookable(a, agenda, motive, places) {
                                if places == 0 {
                                    full += 1;
                                } else {
                                    closed += 1;
                                }
                            }
                        }
                        day += Duration::days(1);
                    }
                }
            }
        }
        // The grid holds times a connector must leave out, of both kinds.
        assert!(closed > 100 && full > 100, "closed {closed}, full {full}");
    }

    #[test]
    fn advance_changes_things() {
        let mut w = World::generate(config());
        let before: usize = w.accounts().map(|a| a.appointments.len()).sum();
        let changes = w.advance();
        let after: usize = w.accounts().map(|a| a.appointments.len()).sum();
        assert_eq!(after, before + changes.added.len() - changes.deleted.len());
        assert!(
            !changes.rescheduled.is_empty()
                && !changes.cancelled.is_empty()
                && !changes.deleted.is_empty()
        );
        for (account, id) in &changes.rescheduled {
            assert_eq!(
                w.account(account).unwrap().appointments[id].updated_at,
                w.clock
            );
        }
    }
}
