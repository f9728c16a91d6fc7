//! The campaign calendar: pages of days from a start day, read into slots at local times.

use std::collections::BTreeMap;

use passerelle_sdk::http::{encode, get};
use passerelle_sdk::serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use passerelle_sdk::serde::{Deserialize, Deserializer};
use passerelle_sdk::time::chrono::{Duration, NaiveDate, NaiveTime};
use passerelle_sdk::time::chrono_tz::Europe::Paris;
use passerelle_sdk::time::{Timestamp, Window};
use passerelle_sdk::{emit, Slot, SyncError};

use crate::SITE;

const ENDPOINT: &str = "GET /api/public/calendar/{campaign}/{day}/{option}";
/// A guard against a calendar that never moves on.
const MAX_PAGES: usize = 60;

/// One free time.
#[derive(Debug, Deserialize)]
#[serde(crate = "passerelle_sdk::serde")]
pub struct Time {
    pub id: u64,
    /// `HH:MM`, local to the pharmacy.
    pub time: String,
    /// Free places at that time; 0 is full.
    pub places_dispo: u32,
}

/// Day (`YYYY-MM-DD`) → its free times. An empty calendar comes as `{}` or `[]`.
#[derive(Debug, Default)]
pub struct Calendar(pub BTreeMap<String, Vec<Time>>);

impl<'de> Deserialize<'de> for Calendar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Days;
        impl<'de> Visitor<'de> for Days {
            type Value = Calendar;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of days to times, or an empty list")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Calendar, A::Error> {
                let mut days = BTreeMap::new();
                while let Some((day, times)) = map.next_entry::<String, Vec<Time>>()? {
                    days.insert(day, times);
                }
                Ok(Calendar(days))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Calendar, A::Error> {
                match seq.next_element::<IgnoredAny>()? {
                    None => Ok(Calendar::default()),
                    Some(_) => Err(de::Error::invalid_length(1, &self)),
                }
            }
        }
        d.deserialize_any(Days)
    }
}

/// What one calendar pass found.
#[derive(Debug, Default)]
pub struct Found {
    pub slots: usize,
    pub requests: usize,
}

/// Emits every bookable time of the campaign within `window`.
pub fn sync(campaign: &str, option: &str, window: &Window) -> Result<Found, SyncError> {
    let mut found = Found::default();
    let last_day = window.end.date_in(Paris);
    let mut day = window.start.date_in(Paris);
    for _ in 0..MAX_PAGES {
        if day > last_day {
            break;
        }
        let calendar: Calendar = get(format!(
            "{SITE}/api/public/calendar/{}/{}/{}",
            encode(campaign),
            day.format("%Y-%m-%d"),
            encode(option)
        ))
        .endpoint(ENDPOINT)
        .json()?;
        found.requests += 1;
        let Some(last) = calendar.0.keys().next_back().cloned() else {
            break;
        };
        let slots: Vec<Slot> = slots(&calendar, campaign, option)?
            .into_iter()
            .filter(|(start, _)| window.contains(start))
            .map(|(_, slot)| slot)
            .collect();
        found.slots += slots.len();
        if !slots.is_empty() {
            emit::slots(&slots)?;
        }
        let last = parse_day(&last)?;
        if last < day {
            break;
        }
        day = last + Duration::days(1);
    }
    Ok(found)
}

/// The bookable times of a calendar, with their start.
pub fn slots(
    calendar: &Calendar,
    campaign: &str,
    option: &str,
) -> Result<Vec<(Timestamp, Slot)>, SyncError> {
    let mut out = Vec::new();
    for (day_text, times) in &calendar.0 {
        let day = parse_day(day_text)?;
        for (i, t) in times.iter().enumerate() {
            if t.places_dispo == 0 {
                continue;
            }
            let time = NaiveTime::parse_from_str(&t.time, "%H:%M")
                .map_err(|_| drift(&format!("$['{day_text}'][{i}].time"), "a time HH:MM"))?;
            // A local time that falls in the spring DST gap does not exist: skip it.
            let Some(start) = Timestamp::local(day, time, Paris) else {
                continue;
            };
            out.push((
                start,
                Slot {
                    external_id: format!("{campaign}-{option}-{}", t.id),
                    starts_at: start.to_rfc3339(),
                    ends_at: None,
                    practitioner: None,
                    visit_motive: None,
                    place: None,
                },
            ));
        }
    }
    Ok(out)
}

fn parse_day(text: &str) -> Result<NaiveDate, SyncError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| drift(&format!("$['{text}']"), "a day YYYY-MM-DD"))
}

fn drift(path: &str, expected: &str) -> SyncError {
    passerelle_sdk::drift::report(ENDPOINT, path, expected, "string")
}

#[cfg(test)]
mod tests {
    use super::*;
    use passerelle_sdk::drift;

    #[test]
    fn local_times_get_the_paris_offset_and_full_times_are_left_out() {
        let body = br#"{"2021-04-19": [{"id": 1, "time": "17:15", "textDay": "Lundi 19 Avril", "places_dispo": 1},
                                      {"id": 2, "time": "17:30", "textDay": "Lundi 19 Avril", "places_dispo": 0}],
                        "2021-11-02": [{"id": 3, "time": "09:00", "textDay": "Mardi 2 Novembre", "places_dispo": 2}]}"#;
        let calendar: Calendar = drift::parse(ENDPOINT, body).unwrap();
        let found = slots(&calendar, "60", "1").unwrap();
        let starts: Vec<&str> = found.iter().map(|(_, s)| s.starts_at.as_str()).collect();
        assert_eq!(
            starts,
            ["2021-04-19T17:15:00+02:00", "2021-11-02T09:00:00+01:00"]
        );
        assert_eq!(found[0].1.external_id, "60-1-1");
    }

    #[test]
    fn an_empty_calendar_is_an_object_or_a_list() {
        for body in [&b"{}"[..], b"[]"] {
            let c: Calendar = drift::parse(ENDPOINT, body).unwrap();
            assert!(c.0.is_empty());
        }
        assert!(matches!(
            drift::parse::<Calendar>(ENDPOINT, b"[1]"),
            Err(SyncError::SchemaDrift(_))
        ));
    }

    #[test]
    fn a_retyped_field_is_drift_at_its_path() {
        let body = br#"{"2021-04-19": [{"id": "x", "time": "17:15", "places_dispo": 1}]}"#;
        match drift::parse::<Calendar>(ENDPOINT, body) {
            Err(SyncError::SchemaDrift(d)) => assert_eq!(d.path, "$['2021-04-19'][0].id"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_time_that_is_not_one_is_drift_at_its_path() {
        let body = br#"{"2021-04-19": [{"id": 1, "time": "5pm", "places_dispo": 1}]}"#;
        let calendar: Calendar = drift::parse(ENDPOINT, body).unwrap();
        match slots(&calendar, "60", "1") {
            Err(SyncError::SchemaDrift(d)) => assert_eq!(d.path, "$['2021-04-19'][0].time"),
            other => panic!("{other:?}"),
        }
    }
}
