//! `POST /v1/solar/slots/availableSlots`: one professional's free times for one reason
//! between two instants. Times come in UTC (`timeStart`, `…Z`) with the local offset
//! beside them in minutes (`timeStartUtcOffset`); slots are stored at that offset. An
//! empty answer may name `nextAvailableSlotDate`: the connector asks again from there
//! when it is in the window.

use passerelle_sdk::http::post;
use passerelle_sdk::serde::{Deserialize, Serialize};
use passerelle_sdk::time::{Timestamp, Window};
use passerelle_sdk::{emit, Slot, SyncError};

use crate::profile::{Professional, Profile, Reason};
use crate::API;

const ENDPOINT: &str = "POST /v1/solar/slots/availableSlots";
/// A guard against next dates that never move on.
const MAX_JUMPS: usize = 10;

/// What is asked.
#[derive(Debug, Serialize)]
#[serde(crate = "passerelle_sdk::serde", rename_all = "camelCase")]
pub struct Query<'a> {
    pub entity_id: &'a str,
    pub medical_staff_id: &'a str,
    pub reason_id: &'a str,
    pub date_start: String,
    pub date_end: String,
}

/// One free time.
#[derive(Debug, Deserialize)]
#[serde(crate = "passerelle_sdk::serde", rename_all = "camelCase")]
pub struct Time {
    /// An event id; a repeated event (a weekly rule) keeps it for every occurrence.
    pub id: String,
    pub time_start: Timestamp,
    pub time_start_utc_offset: i32,
    pub time_end: Timestamp,
    pub time_end_utc_offset: Option<i32>,
}

#[derive(Debug, Deserialize)]
#[serde(crate = "passerelle_sdk::serde", rename_all = "camelCase")]
pub struct Answer {
    pub slots: Vec<Time>,
    pub next_available_slot_date: Option<Timestamp>,
}

/// What the slot requests gave.
#[derive(Debug, Default)]
pub struct Found {
    pub slots: usize,
    pub requests: usize,
}

/// Emits `professional`'s free times for `reason` within `window`.
pub fn sync(
    profile: &Profile,
    professional: &Professional,
    reason: &Reason,
    window: &Window,
    found: &mut Found,
) -> Result<(), SyncError> {
    let mut start = window.start;
    for _ in 0..MAX_JUMPS {
        let answer: Answer = post(format!("{API}/v1/solar/slots/availableSlots"))
            .endpoint(ENDPOINT)
            .json_body(&Query {
                entity_id: &profile.entity_id,
                medical_staff_id: &professional.id,
                reason_id: &reason.id,
                date_start: start.to_utc_millis(),
                date_end: window.end.to_utc_millis(),
            })?
            .json()?;
        found.requests += 1;
        if !answer.slots.is_empty() {
            let slots = slots(profile, professional, reason, &answer.slots, window)?;
            found.slots += slots.len();
            if !slots.is_empty() {
                emit::slots(&slots)?;
            }
            return Ok(());
        }
        match answer.next_available_slot_date {
            Some(next) if next.0 > start.0 && next.0 < window.end.0 => start = next,
            _ => return Ok(()),
        }
    }
    Ok(())
}

/// The free times of an answer within the window, at the offset Ordoclic gave.
pub fn slots(
    profile: &Profile,
    professional: &Professional,
    reason: &Reason,
    times: &[Time],
    window: &Window,
) -> Result<Vec<Slot>, SyncError> {
    let mut out = Vec::new();
    for (i, t) in times.iter().enumerate() {
        let start = t
            .time_start
            .at_offset_minutes(t.time_start_utc_offset)
            .ok_or_else(|| offset_drift(&format!("$.slots[{i}].timeStartUtcOffset")))?;
        let end = t
            .time_end
            .at_offset_minutes(t.time_end_utc_offset.unwrap_or(t.time_start_utc_offset))
            .ok_or_else(|| offset_drift(&format!("$.slots[{i}].timeEndUtcOffset")))?;
        if !window.contains(&start) {
            continue;
        }
        out.push(Slot {
            external_id: format!("{}@{}", t.id, start.0.timestamp()),
            starts_at: start.to_rfc3339(),
            ends_at: Some(end.to_rfc3339()),
            practitioner: Some(professional.full_name.clone()),
            visit_motive: Some(reason.name.clone()),
            place: Some(profile.place()),
        });
    }
    Ok(out)
}

fn offset_drift(path: &str) -> SyncError {
    passerelle_sdk::drift::report(
        ENDPOINT,
        path,
        "an offset in minutes within a day",
        "number",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorded;
    use passerelle_sdk::drift;

    fn profile() -> Profile {
        Profile {
            entity_id: "e".into(),
            name: "Pharmacie".into(),
            city: "Paris".into(),
            public_professionals: vec![],
            attribute_values: vec![],
        }
    }

    #[test]
    fn utc_times_are_kept_at_the_offset_sent_beside_them() {
        let body = recorded("fetchslot-slots.json");
        let answer: Answer = drift::parse(ENDPOINT, &body).unwrap();
        let who = Professional {
            id: "p".into(),
            full_name: "Laurent HALWANI".into(),
        };
        let reason = Reason {
            id: "r".into(),
            name: "Vaccination AstraZeneca - Injection 1".into(),
            can_book_online: true,
        };
        let window = Window {
            start: Timestamp::parse("2021-05-10T00:00:00+02:00").unwrap(),
            end: Timestamp::parse("2021-05-20T00:00:00+02:00").unwrap(),
        };
        let slots = slots(&profile(), &who, &reason, &answer.slots, &window).unwrap();
        assert_eq!(slots.len(), 12);
        let first = slots.iter().min_by_key(|s| s.starts_at.clone()).unwrap();
        assert_eq!(first.starts_at, "2021-05-12T16:00:00+02:00");
        let ids: std::collections::BTreeSet<_> = slots.iter().map(|s| &s.external_id).collect();
        assert_eq!(ids.len(), 12, "repeated events still give one id per time");
    }

    #[test]
    fn the_empty_answers_read() {
        let body = recorded("nextavailable_slots.json");
        let answer: Answer = drift::parse(ENDPOINT, &body).unwrap();
        assert!(answer.slots.is_empty());
        assert_eq!(
            answer.next_available_slot_date.unwrap().to_rfc3339(),
            "2021-06-12T10:30:00+00:00"
        );
        let answer: Answer = drift::parse(ENDPOINT, &recorded("empty_slots.json")).unwrap();
        assert!(answer.next_available_slot_date.is_none());
    }

    #[test]
    fn an_offset_beyond_a_day_is_drift() {
        let body = br#"{"slots": [{"id": "a", "timeStart": "2021-05-12T14:30:00Z", "timeStartUtcOffset": 99999, "timeEnd": "2021-05-12T14:40:00Z"}], "nextAvailableSlotDate": null}"#;
        let answer: Answer = drift::parse(ENDPOINT, body).unwrap();
        let window = Window {
            start: Timestamp::parse("2021-05-10T00:00:00Z").unwrap(),
            end: Timestamp::parse("2021-05-20T00:00:00Z").unwrap(),
        };
        let who = Professional {
            id: "p".into(),
            full_name: "x".into(),
        };
        let reason = Reason {
            id: "r".into(),
            name: "y".into(),
            can_book_online: true,
        };
        match slots(&profile(), &who, &reason, &answer.slots, &window) {
            Err(SyncError::SchemaDrift(d)) => assert_eq!(d.path, "$.slots[0].timeStartUtcOffset"),
            other => panic!("{other:?}"),
        }
    }
}
