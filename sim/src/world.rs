//! The simulated platforms' data and its evolution: practices, their accounts on the
//! five platforms (place, motives, agendas; on Doctolib, appointments with patients),
//! and the availability grid.
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

use crate::names;

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
    next_seq: u32,
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

fn rng_for(seed: u64, a: u64, b: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix(seed ^ mix(a ^ mix(b))))
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// ASCII lower-case form of a name for e-mail addresses.
fn fold(name: &str) -> String {
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
fn opening(kind: Kind) -> (u32, &'static [(u32, u32, u32, u32)]) {
    match kind {
        Kind::General => (5, &[(8, 30, 12, 0), (14, 0, 18, 30)]),
        Kind::Dental => (6, &[(9, 0, 12, 30), (13, 30, 17, 0)]),
        Kind::Pharmacy => (6, &[(9, 0, 12, 30), (14, 0, 19, 0)]),
    }
}

fn local(day: NaiveDate, h: u32, m: u32) -> DateTime<Tz> {
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
    /// Generates the world `config` describes.
    pub fn generate(config: SimConfig) -> World {
        let epoch = config.epoch.unwrap_or_else(current_hour);
        let mut practices = Vec::new();
        let mut serial: u64 = 0;
        for p in 0..config.practices {
            let practice_id = format!("p{:03}", p + 1);
            let mut rng = rng_for(config.seed, p as u64, 0);
            let (town, zipcode) = *pick(&mut rng, names::TOWNS);
            let doctor = *pick(&mut rng, names::LAST_NAMES);
            let name = format!("Cabinet médical {doctor} ({town})");
            let mut kinds = vec![Kind::General];
            if config.dentist_every > 0 && p % config.dentist_every == 0 {
                kinds.push(Kind::Dental);
            }
            let mut accounts = Vec::new();
            let on = |platform| config.platforms.contains(&platform);
            let mut platforms: Vec<(Platform, Kind)> = Vec::new();
            if on(Platform::Doctolib) {
                platforms.extend(kinds.iter().map(|k| (Platform::Doctolib, *k)));
            }
            let others: &[(Platform, Kind)] = match p % 3 {
                0 => &[
                    (Platform::Keldoc, Kind::General),
                    (Platform::Maiia, Kind::General),
                ],
                1 => &[(Platform::Ordoclic, Kind::Pharmacy)],
                _ => &[(Platform::Mapharma, Kind::Pharmacy)],
            };
            platforms.extend(others.iter().filter(|(pl, _)| on(*pl)));
            for (platform, kind) in platforms {
                serial += 1;
                accounts.push(generate_account(
                    &config,
                    epoch,
                    &practice_id,
                    p,
                    (platform, kind),
                    serial,
                    (town, zipcode),
                ));
            }
            practices.push(Practice {
                id: practice_id,
                name,
                accounts,
            });
        }
        World {
            config,
            epoch,
            clock: epoch,
            step: 0,
            practices,
        }
    }

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

fn new_appointment(
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

fn generate_account(
    config: &SimConfig,
    epoch: DateTime<Utc>,
    practice_id: &str,
    p: usize,
    (platform, kind): (Platform, Kind),
    serial: u64,
    (town, zipcode): (&str, &str),
) -> Account {
    let mut rng = rng_for(
        config.seed,
        p as u64,
        1 + kind as u64 + 10 * platform as u64,
    );
    let (suffix, label, motive_list, category) = match (platform, kind) {
        (Platform::Doctolib, Kind::General) => (
            "cabinet",
            "Cabinet (médecine générale)",
            names::GENERAL_MOTIVES,
            None,
        ),
        (Platform::Doctolib, _) => (
            "dentaire",
            "Cabinet dentaire",
            names::DENTAL_MOTIVES,
            Some(1),
        ),
        (other, Kind::Pharmacy) => (other.as_str(), "Pharmacie", names::PHARMACY_MOTIVES, None),
        (other, _) => (
            other.as_str(),
            "Centre de soins",
            names::GENERAL_MOTIVES,
            None,
        ),
    };
    let profile_id = 100_000 + serial;
    let street = *pick(&mut rng, names::STREETS);
    let place = Place {
        id: format!("practice-{}", 200_000 + serial),
        practice_id: 200_000 + serial,
        name: format!("{label} — {town}"),
        address: format!("{} {street}, {zipcode} {town}", rng.random_range(1..120)),
        city: town.into(),
        zipcode: zipcode.into(),
    };
    let motives: Vec<Motive> = motive_list
        .iter()
        .enumerate()
        .map(|(i, (name, duration))| Motive {
            id: serial * 100 + i as u64 + 1,
            name: (*name).into(),
            ref_visit_motive_id: 6000 + i as u64,
            category_id: category,
            allow_new_patients: i != 2,
            duration_min: *duration,
        })
        .collect();
    let all: Vec<u64> = motives.iter().map(|m| m.id).collect();
    let doctor = |rng: &mut ChaCha8Rng| {
        format!(
            "Dr {} {}",
            pick(rng, names::FIRST_NAMES),
            pick(rng, names::LAST_NAMES)
        )
    };
    let agendas = match kind {
        Kind::General => vec![
            Agenda {
                id: serial * 10 + 1,
                practitioner: doctor(&mut rng),
                booking_disabled: false,
                motive_ids: all.clone(),
                slot_format: SlotFormat::IsoString,
            },
            Agenda {
                id: serial * 10 + 2,
                practitioner: doctor(&mut rng),
                booking_disabled: false,
                motive_ids: all[..2].to_vec(),
                slot_format: SlotFormat::Object,
            },
            Agenda {
                id: serial * 10 + 3,
                practitioner: doctor(&mut rng),
                booking_disabled: true,
                motive_ids: all.clone(),
                slot_format: SlotFormat::IsoString,
            },
        ],
        Kind::Dental | Kind::Pharmacy => vec![
            Agenda {
                id: serial * 10 + 1,
                practitioner: doctor(&mut rng),
                booking_disabled: false,
                motive_ids: all.clone(),
                slot_format: SlotFormat::DateOnly,
            },
            Agenda {
                id: serial * 10 + 2,
                practitioner: doctor(&mut rng),
                booking_disabled: false,
                motive_ids: all[1..].to_vec(),
                slot_format: SlotFormat::Object,
            },
        ],
    };
    // Only Doctolib has agendas closed to online booking and bare-date agendas; Mapharma
    // publishes one campaign: one agenda, one motive, open to all.
    let mut agendas = agendas;
    let mut motives = motives;
    if platform != Platform::Doctolib {
        agendas.retain(|a| !a.booking_disabled);
        for a in &mut agendas {
            a.slot_format = SlotFormat::IsoString;
        }
    }
    if platform == Platform::Mapharma {
        agendas.truncate(1);
        motives.truncate(1);
        agendas[0].motive_ids = vec![motives[0].id];
    }
    let mut account = Account {
        id: format!("{practice_id}-{suffix}"),
        practice_id: practice_id.into(),
        platform,
        phone_only: false,
        label: label.into(),
        kind,
        profile_id,
        centre: format!("{}-{}-{}", suffix, fold(town), profile_id),
        token: format!("sim-token-{:016x}", mix(config.seed ^ profile_id)),
        place,
        motives,
        agendas,
        appointments: BTreeMap::new(),
        removed: BTreeSet::new(),
        next_seq: 0,
    };
    let appointments = if platform == Platform::Doctolib {
        config.appointments_per_account
    } else {
        0
    };
    for _ in 0..appointments {
        let a = new_appointment(&mut rng, &mut account, epoch, -25..55, false);
        account.appointments.insert(a.id.clone(), a);
    }
    account
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
