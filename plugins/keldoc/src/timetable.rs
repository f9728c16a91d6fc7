//! A motive's timetable: pages of days, Keldoc's "next availability" jumps, and the
//! phone-only answer.
//!
//! `GET /api/patients/v2/timetables/{motive}?from=YYYY-MM-DD&to=YYYY-MM-DD&agenda_ids[]=…`
//! answers one of four shapes, told apart by their fields:
//! - `{"availabilities": {"YYYY-MM-DD": [{"start_time", "end_time", "agenda_id"}]}}`:
//!   free times in the asked days (times with their offset);
//! - `{"date": "…", "text": "Prochain RDV disponible le …"}`: none in the asked days,
//!   the next one is at `date` — the connector jumps there if it is in the window;
//! - `{"text", "num", "num_text", "phone_number"}`: bookable by phone only;
//! - `{"availabilities": {}}`: nothing now or later.
//!
//! An answer with none of `availabilities`, `date` or a phone number is a shape Keldoc
//! did not send: drift at `$.availabilities`.

use std::collections::BTreeMap;

use passerelle_sdk::http::get;
use passerelle_sdk::serde::Deserialize;
use passerelle_sdk::time::chrono::{Duration, NaiveDate};
use passerelle_sdk::time::chrono_tz::Europe::Paris;
use passerelle_sdk::time::{Timestamp, Window};
use passerelle_sdk::{debug, emit, Slot, SyncError};

use crate::cabinet::{Cabinet, Motive};
use crate::SITE;

const ENDPOINT: &str = "GET /api/patients/v2/timetables/{motive}";
/// Days asked per request (Keldoc answers slowly for longer ranges).
pub const DAYS_PER_PAGE: i64 = 5;
/// A guard against a timetable that never moves on.
const MAX_PAGES: usize = 40;

/// One free time.
#[derive(Debug, Deserialize)]
#[serde(crate = "passerelle_sdk::serde")]
pub struct Time {
    pub start_time: Timestamp,
    pub end_time: Timestamp,
    pub agenda_id: u64,
}

/// A timetable answer, any of its shapes; see [`Timetable::shape`].
#[derive(Debug, Default, Deserialize)]
#[serde(crate = "passerelle_sdk::serde")]
pub struct Timetable {
    pub availabilities: Option<BTreeMap<String, Vec<Time>>>,
    pub date: Option<Timestamp>,
    pub text: Option<String>,
    pub phone_number: Option<String>,
    pub num: Option<String>,
}

/// What a timetable answer means.
#[derive(Debug)]
pub enum Shape<'a> {
    Times(&'a BTreeMap<String, Vec<Time>>),
    Next(Timestamp),
    PhoneOnly,
}

impl Timetable {
    /// Which of the four answers this is; a `text` with neither a date nor a phone
    /// number is a shape Keldoc did not send before: drift at `$.date`; no known
    /// field at all, drift at `$.availabilities`.
    pub fn shape(&self) -> Result<Shape<'_>, SyncError> {
        Ok(match self {
            Timetable {
                availabilities: Some(days),
                ..
            } => Shape::Times(days),
            Timetable { date: Some(d), .. } => Shape::Next(*d),
            Timetable {
                phone_number: Some(_),
                ..
            }
            | Timetable { num: Some(_), .. } => Shape::PhoneOnly,
            Timetable { text: None, .. } => {
                return Err(passerelle_sdk::drift::report(
                    ENDPOINT,
                    "$.availabilities",
                    "a value (availabilities, a next date or a phone number)",
                    "missing",
                ))
            }
            Timetable { text: Some(_), .. } => {
                return Err(passerelle_sdk::drift::report(
                    ENDPOINT,
                    "$.date",
                    "a value (a next date or a phone number)",
                    "missing",
                ))
            }
        })
    }
}

/// What the timetables of a cabinet gave.
#[derive(Debug, Default)]
pub struct Found {
    pub slots: usize,
    pub motives: usize,
    pub phone_only: usize,
    pub requests: usize,
}

/// Emits every free time of `motive` within `window`.
pub fn sync(
    cabinet: &Cabinet,
    motive: &Motive,
    window: &Window,
    found: &mut Found,
) -> Result<(), SyncError> {
    found.motives += 1;
    let last_day = window.end.date_in(Paris);
    let mut from = window.start.date_in(Paris);
    for _ in 0..MAX_PAGES {
        if from > last_day {
            return Ok(());
        }
        let to = from + Duration::days(DAYS_PER_PAGE - 1);
        let mut request = get(format!("{SITE}/api/patients/v2/timetables/{}", motive.id))
            .endpoint(ENDPOINT)
            .query("from", &day(from))
            .query("to", &day(to));
        for agenda in &motive.agendas {
            request = request.query("agenda_ids[]", &agenda.id.to_string());
        }
        let timetable: Timetable = request.json()?;
        found.requests += 1;
        match timetable.shape()? {
            Shape::Times(days) if days.is_empty() => return Ok(()),
            Shape::Times(days) => {
                let slots = slots(cabinet, motive, days, window);
                found.slots += slots.len();
                if !slots.is_empty() {
                    emit::slots(&slots)?;
                }
                from = to + Duration::days(1);
            }
            Shape::Next(next) => {
                let next_day = next.date_in(Paris);
                if next.0 >= window.end.0 || next_day <= from {
                    return Ok(());
                }
                debug!("motive {}: next availability on {next_day}", motive.id);
                from = next_day;
            }
            Shape::PhoneOnly => {
                found.phone_only += 1;
                debug!("motive {}: bookable by phone only", motive.id);
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The free times of one answer that fall in the window, as slots.
pub fn slots(
    cabinet: &Cabinet,
    motive: &Motive,
    days: &BTreeMap<String, Vec<Time>>,
    window: &Window,
) -> Vec<Slot> {
    days.values()
        .flatten()
        .filter(|t| window.contains(&t.start_time))
        .map(|t| Slot {
            // A motive's time is one per agenda: both name the free time for good.
            external_id: format!(
                "{}-{}-{}-{}",
                cabinet.id,
                motive.id,
                t.agenda_id,
                t.start_time.0.timestamp()
            ),
            starts_at: t.start_time.to_rfc3339(),
            ends_at: Some(t.end_time.to_rfc3339()),
            practitioner: Cabinet::agenda_name(motive, t.agenda_id).map(String::from),
            visit_motive: Some(motive.name.clone()),
            place: Some(cabinet.name.clone()),
        })
        .collect()
}

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cabinet::{Agenda, Category};
    use crate::recorded;
    use passerelle_sdk::drift;

    #[test]
    fn the_recorded_answers_are_a_next_date_or_phone_only() {
        let next = recorded("center1-timetable-81484.json");
        let t: Timetable = drift::parse(ENDPOINT, &next).unwrap();
        match t.shape().unwrap() {
            Shape::Next(d) => assert_eq!(d.to_rfc3339(), "2021-04-20T16:55:00+02:00"),
            other => panic!("{other:?}"),
        }
        let phone = recorded("center1-timetable-81486.json");
        let t: Timetable = drift::parse(ENDPOINT, &phone).unwrap();
        assert!(matches!(t.shape().unwrap(), Shape::PhoneOnly));
    }

    #[test]
    fn times_keep_their_offset_and_name_their_agenda() {
        let body = br#"{"availabilities": {"2021-04-20": [
            {"start_time": "2021-04-20T16:55:00.000+02:00", "end_time": "2021-04-20T17:00:00.000+02:00", "agenda_id": 7},
            {"start_time": "2021-06-20T16:55:00.000+02:00", "end_time": "2021-06-20T17:00:00.000+02:00", "agenda_id": 7}]}}"#;
        let t: Timetable = drift::parse(ENDPOINT, body).unwrap();
        let Shape::Times(days) = t.shape().unwrap() else {
            panic!("times")
        };
        let cabinet = Cabinet {
            id: 3,
            name: "Cabinet".into(),
            categories: vec![Category { motives: vec![] }],
        };
        let motive = Motive {
            id: 5,
            name: "Motive".into(),
            agendas: vec![Agenda {
                id: 7,
                name: "Team".into(),
            }],
        };
        let window = Window {
            start: Timestamp::parse("2021-04-19T00:00:00+02:00").unwrap(),
            end: Timestamp::parse("2021-05-01T00:00:00+02:00").unwrap(),
        };
        let slots = slots(&cabinet, &motive, days, &window);
        assert_eq!(slots.len(), 1, "the June time is outside the window");
        assert_eq!(slots[0].starts_at, "2021-04-20T16:55:00+02:00");
        assert_eq!(
            slots[0].ends_at.as_deref(),
            Some("2021-04-20T17:00:00+02:00")
        );
        assert_eq!(slots[0].practitioner.as_deref(), Some("Team"));
        assert_eq!(slots[0].place.as_deref(), Some("Cabinet"));
    }

    #[test]
    fn a_text_alone_or_an_empty_object_is_drift() {
        let t: Timetable = drift::parse(ENDPOINT, br#"{"text": "?"}"#).unwrap();
        match t.shape() {
            Err(SyncError::SchemaDrift(d)) => assert_eq!(d.path, "$.date"),
            other => panic!("{other:?}"),
        }
        let t: Timetable = drift::parse(ENDPOINT, b"{}").unwrap();
        match t.shape() {
            Err(SyncError::SchemaDrift(d)) => assert_eq!(d.path, "$.availabilities"),
            other => panic!("{other:?}"),
        }
        let t: Timetable = drift::parse(ENDPOINT, br#"{"availabilities": {}}"#).unwrap();
        assert!(matches!(t.shape().unwrap(), Shape::Times(d) if d.is_empty()));
        assert!(matches!(
            drift::parse::<Timetable>(ENDPOINT, br#"{"date": 3}"#),
            Err(SyncError::SchemaDrift(_))
        ));
    }
}
