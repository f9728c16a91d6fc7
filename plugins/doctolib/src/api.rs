//! Doctolib's responses as typed structs: what the connector relies on, nothing more.
//! A missing or retyped field in these becomes `schema-drift` at its JSON path; extra
//! fields are ignored.

use std::collections::BTreeMap;

use passerelle_sdk::serde::{self, de, Deserialize, Deserializer};
use passerelle_sdk::serde_json::Value;
use passerelle_sdk::time::chrono::NaiveDate;
use passerelle_sdk::time::Timestamp;

/// `GET /booking/{centre}.json`
#[derive(Debug, Deserialize)]
#[serde(crate = "passerelle_sdk::serde")]
pub struct Booking {
    pub data: BookingData,
}

/// What availability needs from a booking document. `visit_motive_categories` (a
/// grouping of motives for display) and `profile` (the centre's identity) are not read:
/// category-only and profile-less documents are fine. The three lists are required:
/// a document without one of them is a changed shape, not a centre with nothing to
/// book (an empty list is that).
#[derive(Debug, Deserialize)]
#[serde(crate = "passerelle_sdk::serde")]
pub struct BookingData {
    pub visit_motives: Vec<VisitMotive>,
    pub agendas: Vec<Agenda>,
    pub places: Vec<Place>,
}

#[derive(Debug, Deserialize)]
#[serde(crate = "passerelle_sdk::serde")]
pub struct VisitMotive {
    pub id: u64,
    pub name: String,
    /// Absent on older profiles: open to everyone.
    #[serde(default)]
    pub allow_new_patients: Option<bool>,
}

impl VisitMotive {
    /// Whether a new patient can book this motive online.
    pub fn bookable(&self) -> bool {
        self.allow_new_patients.unwrap_or(true)
    }
}

#[derive(Debug, Deserialize)]
#[serde(crate = "passerelle_sdk::serde")]
pub struct Agenda {
    pub id: u64,
    pub booking_disabled: bool,
    #[serde(default)]
    pub practitioner_name: Option<String>,
    /// Practice id (as text) → the motives this agenda offers there.
    pub visit_motive_ids_by_practice_id: BTreeMap<String, Vec<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(crate = "passerelle_sdk::serde")]
pub struct Place {
    /// `practice-<practice id>`.
    pub id: String,
    /// Absent from some documents: then the practice id is the one in `id`.
    #[serde(default)]
    pub practice_ids: Option<Vec<u64>>,
    #[serde(default)]
    pub name: Option<String>,
}

impl Place {
    /// The practices of this place: `practice_ids`, or the id in `practice-<id>`.
    /// None when neither says.
    pub fn practices(&self) -> Option<Vec<u64>> {
        match &self.practice_ids {
            Some(ids) => Some(ids.clone()),
            None => self
                .id
                .strip_prefix("practice-")
                .and_then(|n| n.parse().ok())
                .map(|n| vec![n]),
        }
    }
}

/// `GET /availabilities.json`
#[derive(Debug, Deserialize)]
#[serde(crate = "passerelle_sdk::serde")]
pub struct Availabilities {
    pub availabilities: Vec<Day>,
    #[serde(default)]
    pub next_slot: Option<SlotStart>,
}

#[derive(Debug, Deserialize)]
#[serde(crate = "passerelle_sdk::serde")]
pub struct Day {
    pub slots: Vec<SlotValue>,
}

/// A slot's start as Doctolib writes it: an RFC 3339 time or a bare date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotStart {
    At(Timestamp),
    Day(NaiveDate),
}

impl SlotStart {
    fn parse(text: &str) -> Option<SlotStart> {
        if let Some(t) = Timestamp::parse(text) {
            return Some(SlotStart::At(t));
        }
        NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
            .ok()
            .map(SlotStart::Day)
    }
}

impl<'de> Deserialize<'de> for SlotStart {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        SlotStart::parse(&text).ok_or_else(|| de::Error::custom("an RFC 3339 timestamp or a date"))
    }
}

/// One slot: `"2021-04-10T21:45:00.000+02:00"`, `"2021-04-10"`, or
/// `{"start_date": …, "end_date": …}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotValue {
    pub start: SlotStart,
    pub end: Option<Timestamp>,
}

impl<'de> Deserialize<'de> for SlotValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(crate = "passerelle_sdk::serde")]
        struct Object {
            start_date: String,
            #[serde(default)]
            end_date: Option<String>,
        }
        let shape = || de::Error::custom("a slot (timestamp, date, or object with start_date)");
        match Value::deserialize(d)? {
            Value::String(s) => Ok(SlotValue {
                start: SlotStart::parse(&s).ok_or_else(shape)?,
                end: None,
            }),
            v @ Value::Object(_) => {
                let o: Object = serde::Deserialize::deserialize(v).map_err(|_| shape())?;
                Ok(SlotValue {
                    start: SlotStart::parse(&o.start_date).ok_or_else(shape)?,
                    end: match o.end_date {
                        None => None,
                        Some(e) => Some(Timestamp::parse(&e).ok_or_else(shape)?),
                    },
                })
            }
            _ => Err(shape()),
        }
    }
}

/// The practice API's `GET /api/v1/profiles/{id}/appointments`. The appointments are
/// parsed one by one ([`Appointment`], through `drift::items`), so one unreadable item
/// can be quarantined while the rest of the page goes on.
#[derive(Debug, Deserialize)]
#[serde(crate = "passerelle_sdk::serde")]
pub struct AppointmentPage {
    pub appointments: Vec<passerelle_sdk::serde_json::Value>,
    pub pagination: Pagination,
}

#[derive(Debug, Deserialize)]
#[serde(crate = "passerelle_sdk::serde")]
pub struct Pagination {
    pub page: u32,
    pub total_pages: u32,
}

#[derive(Debug, Deserialize)]
#[serde(crate = "passerelle_sdk::serde")]
pub struct Appointment {
    pub id: String,
    /// The `start-date-v2` build also reads the field under the name `start_date_v2`
    /// (the drift the test suite switches on in the simulator, and the fix it ships).
    #[cfg_attr(feature = "start-date-v2", serde(alias = "start_date_v2"))]
    pub start_date: Timestamp,
    #[serde(default)]
    pub end_date: Option<Timestamp>,
    pub status: Status,
    pub updated_at: Timestamp,
    #[serde(default)]
    pub practitioner_name: Option<String>,
    #[serde(default)]
    pub visit_motive_name: Option<String>,
    #[serde(default)]
    pub patient: Option<Patient>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(crate = "passerelle_sdk::serde", rename_all = "kebab-case")]
pub enum Status {
    Booked,
    Confirmed,
    Cancelled,
    NoShow,
    Completed,
}

#[derive(Debug, Deserialize)]
#[serde(crate = "passerelle_sdk::serde")]
pub struct Patient {
    pub id: Option<String>,
    pub first_name: String,
    pub last_name: String,
    #[serde(default)]
    pub birthdate: Option<NaiveDate>,
    #[serde(default)]
    pub phone_number: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use passerelle_sdk::{drift, SyncError};

    #[test]
    fn slots_in_every_recorded_form() {
        let body = br#"{"availabilities":[{"slots":[
            "2021-04-10T21:45:00.000+02:00",
            {"start_date":"2021-04-11T08:00:00.000+02:00","end_date":"2021-04-11T08:20:00.000+02:00"},
            {"start_date":"2021-04-12"},
            "2021-04-13"]}],"next_slot":"2021-05-10T12:00:00.000+02:00","total":4}"#;
        let a: Availabilities = drift::parse("GET /availabilities.json", body).unwrap();
        let slots = &a.availabilities[0].slots;
        assert_eq!(slots.len(), 4);
        assert!(
            matches!(slots[0].start, SlotStart::At(t) if t.to_rfc3339() == "2021-04-10T21:45:00+02:00")
        );
        assert_eq!(
            slots[1].end.unwrap().to_rfc3339(),
            "2021-04-11T08:20:00+02:00"
        );
        assert!(matches!(slots[2].start, SlotStart::Day(_)));
        assert!(matches!(a.next_slot, Some(SlotStart::At(_))));
    }

    #[test]
    fn retyped_slot_is_drift_at_its_path() {
        let body =
            br#"{"availabilities":[{"slots":[]},{"slots":["2021-04-10T21:45:00+02:00", 17]}]}"#;
        match drift::parse::<Availabilities>("GET /availabilities.json", body) {
            Err(SyncError::SchemaDrift(d)) => {
                assert_eq!(d.path, "$.availabilities[1].slots[1]");
                assert_eq!(d.found, "integer");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_lists_are_required_and_the_profile_is_not_read() {
        let body = br#"{"data":{"visit_motives":[],"agendas":[],"places":[]}}"#;
        let b: Booking = drift::parse("GET /booking", body).unwrap();
        assert!(b.data.agendas.is_empty());
        let body = br#"{"data":{"profile":{"id":1},"visit_motives":[],"places":[]}}"#;
        match drift::parse::<Booking>("GET /booking", body) {
            Err(SyncError::SchemaDrift(d)) => assert_eq!(d.path, "$.data.agendas"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_place_without_practice_ids_is_the_practice_in_its_id() {
        let body = br#"{"data":{"visit_motives":[],"agendas":[],"places":[
            {"id":"practice-37157"},{"id":"practice-1","practice_ids":[2,3]},{"id":"elsewhere"}]}}"#;
        let b: Booking = drift::parse("GET /booking", body).unwrap();
        let ids: Vec<Option<Vec<u64>>> = b.data.places.iter().map(Place::practices).collect();
        assert_eq!(ids, [Some(vec![37157]), Some(vec![2, 3]), None]);
    }

    #[test]
    fn unknown_status_is_drift() {
        let body = br#"{"appointments":[{"id":"1","start_date":"2026-01-01T10:00:00+01:00","status":"teleported","updated_at":"2026-01-01T00:00:00Z"}],"pagination":{"page":1,"total_pages":1}}"#;
        let page: AppointmentPage = drift::parse("GET /appointments", body).unwrap();
        let items = drift::items_with::<Appointment>(
            "GET /appointments",
            "$.appointments",
            page.appointments,
            &mut |d, _| Err(SyncError::SchemaDrift(d)),
        );
        match items {
            Err(SyncError::SchemaDrift(d)) => assert_eq!(d.path, "$.appointments[0].status"),
            other => panic!("{other:?}"),
        }
    }
}
