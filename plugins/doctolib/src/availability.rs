//! Public availability: the booking document of the account's centre, then, for every
//! bookable (place, agenda, visit motive), the availabilities pages over the window,
//! following `next_slot` jumps, as ViteMaDose did.
//!
//! Not bookable, so not emitted: agendas with `booking_disabled`, motives closed to new
//! patients (`allow_new_patients: false`), and slots outside the window (the host also
//! drops slots that start before the run's "now").
//!
//! What the recorded responses mean: a slot given as a bare date (`"2021-04-10"`) is
//! bookable some time that day, so it spans the day (midnight to midnight, Paris); an
//! empty page — no slot in the days it was asked for — with `next_slot` jumps there if
//! it is inside the window, else the combination has nothing more to offer; a place
//! without `practice_ids` is the practice in its id (`practice-<id>`).
//!
//! Pages start at the run's clock (`Window::from_now`), never in the window's past.

use std::collections::BTreeSet;

use passerelle_sdk::http::{encode, get};
use passerelle_sdk::time::chrono::Duration;
use passerelle_sdk::time::chrono_tz::Europe::Paris;
use passerelle_sdk::time::{Timestamp, Window};
use passerelle_sdk::{emit, Drift, Slot, SyncError};

use crate::api::{Availabilities, Booking, SlotStart};
use crate::WWW;

/// Days one availabilities request covers (Doctolib accepts up to 15).
const DAYS_PER_PAGE: i64 = 14;
/// A guard against a platform that keeps sending us back: pages per combination.
const MAX_PAGES: usize = 64;

/// What one availability pass found.
#[derive(Debug, Default)]
pub struct Found {
    pub slots: usize,
    pub requests: usize,
}

/// Fetches and emits every bookable slot of `centre` within `window`.
pub fn sync(centre: &str, window: &Window) -> Result<Found, SyncError> {
    let booking: Booking = get(format!("{WWW}/booking/{}.json", encode(centre)))
        .endpoint("GET /booking/{centre}.json")
        .json()?;
    let data = &booking.data;
    let mut found = Found {
        requests: 1,
        ..Found::default()
    };
    for (i, place) in data.places.iter().enumerate() {
        let Some(practice_ids) = place.practices() else {
            return Err(SyncError::SchemaDrift(Drift {
                endpoint: "GET /booking/{centre}.json".into(),
                path: format!("$.data.places[{i}].practice_ids"),
                expected: "practice ids, or a place id `practice-<id>`".into(),
                found: "missing".into(),
            }));
        };
        for practice_id in &practice_ids {
            for agenda in data.agendas.iter().filter(|a| !a.booking_disabled) {
                let Some(motive_ids) = agenda
                    .visit_motive_ids_by_practice_id
                    .get(&practice_id.to_string())
                else {
                    continue;
                };
                for motive in data
                    .visit_motives
                    .iter()
                    .filter(|m| m.bookable() && motive_ids.contains(&m.id))
                {
                    let combo = Combo {
                        practice_id: *practice_id,
                        agenda_id: agenda.id,
                        motive_id: motive.id,
                        practitioner: agenda.practitioner_name.clone(),
                        motive: motive.name.clone(),
                        place: place.name.clone(),
                    };
                    combo.sync(window, &mut found)?;
                }
            }
        }
    }
    Ok(found)
}

struct Combo {
    practice_id: u64,
    agenda_id: u64,
    motive_id: u64,
    practitioner: Option<String>,
    motive: String,
    place: Option<String>,
}

impl Combo {
    fn sync(&self, window: &Window, found: &mut Found) -> Result<(), SyncError> {
        let last_day = window.end.date_in(Paris);
        let mut day = window.start.date_in(Paris);
        let mut seen = BTreeSet::new();
        for _ in 0..MAX_PAGES {
            if day > last_day {
                break;
            }
            let page: Availabilities = get(format!("{WWW}/availabilities.json"))
                .query("start_date", &day.format("%Y-%m-%d").to_string())
                .query("visit_motive_ids", &self.motive_id.to_string())
                .query("agenda_ids", &self.agenda_id.to_string())
                .query("insurance_sector", "public")
                .query("practice_ids", &self.practice_id.to_string())
                .query("destroy_temporary", "true")
                .query("limit", &DAYS_PER_PAGE.to_string())
                .endpoint("GET /availabilities.json")
                .json()?;
            found.requests += 1;
            let mut batch = Vec::new();
            // Whether the page holds a slot in the days it was asked for: a page of
            // other days only (a platform that ignored `start_date`) is an empty page.
            let page_start = Timestamp::midnight(day, Paris);
            let page_end = Timestamp::midnight(day + Duration::days(DAYS_PER_PAGE), Paris);
            let mut any = false;
            for slot in page.availabilities.iter().flat_map(|d| d.slots.iter()) {
                // A bare date says "bookable that day", not when: the slot is the day.
                let (start, end) = match slot.start {
                    SlotStart::At(t) => (t, slot.end),
                    SlotStart::Day(d) => (
                        Timestamp::midnight(d, Paris),
                        Some(Timestamp::midnight(d + Duration::days(1), Paris)),
                    ),
                };
                any |= start >= page_start && start < page_end;
                if !window.contains(&start) || !seen.insert(start.timestamp_millis()) {
                    continue;
                }
                batch.push(Slot {
                    external_id: format!(
                        "{}-{}-{}-{}",
                        self.practice_id,
                        self.agenda_id,
                        self.motive_id,
                        start.timestamp_millis()
                    ),
                    starts_at: start.to_rfc3339(),
                    ends_at: end.map(|e| e.to_rfc3339()),
                    practitioner: self.practitioner.clone(),
                    visit_motive: Some(self.motive.clone()),
                    place: self.place.clone(),
                });
            }
            found.slots += batch.len();
            if !batch.is_empty() {
                emit::slots(&batch)?;
            }
            day = if any {
                day + Duration::days(DAYS_PER_PAGE)
            } else {
                // Nothing in this range: jump to the next slot Doctolib points at, if any.
                match page.next_slot {
                    None => break,
                    Some(SlotStart::At(t)) => t.date_in(Paris),
                    Some(SlotStart::Day(d)) => d,
                }
                .max(day + Duration::days(DAYS_PER_PAGE))
            };
        }
        Ok(())
    }
}
