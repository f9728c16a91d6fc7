//! A reason's free times in the window: `GET /api/pat-public/availabilities?centerId=
//! &consultationReasonName=&from=&to=` (instants in UTC, `…Z`), paged.

use passerelle_sdk::http::get;
use passerelle_sdk::serde::Deserialize;
use passerelle_sdk::time::{Timestamp, Window};
use passerelle_sdk::{emit, Slot, SyncError};

use crate::page;
use crate::reasons::Reason;
use crate::SITE;

const ENDPOINT: &str = "GET /api/pat-public/availabilities";

/// One free time.
#[derive(Debug, Deserialize)]
#[serde(crate = "passerelle_sdk::serde", rename_all = "camelCase")]
pub struct Availability {
    pub id: String,
    pub practitioner_id: String,
    pub consultation_reason_id: String,
    pub start_date_time: Timestamp,
    pub end_date_time: Timestamp,
}

/// What the availability requests gave.
#[derive(Debug, Default)]
pub struct Found {
    pub slots: usize,
    pub requests: usize,
}

/// Emits every free time of `reason` within `window`.
pub fn sync(
    center: &str,
    reason: &Reason,
    window: &Window,
    found: &mut Found,
) -> Result<(), SyncError> {
    let (from, to) = (window.start.to_utc_millis(), window.end.to_utc_millis());
    found.requests += page::all(
        |_| {
            get(format!("{SITE}/api/pat-public/availabilities"))
                .endpoint(ENDPOINT)
                .query("centerId", center)
                .query("consultationReasonName", &reason.name)
                .query("from", &from)
                .query("to", &to)
        },
        |items: Vec<Availability>| {
            let slots = slots(reason, &items, window);
            found.slots += slots.len();
            if slots.is_empty() {
                Ok(())
            } else {
                emit::slots(&slots)
            }
        },
    )?;
    Ok(())
}

/// The free times of one page that are the reason's own (the query is by name, which
/// two reasons may share) and in the window.
pub fn slots(reason: &Reason, items: &[Availability], window: &Window) -> Vec<Slot> {
    items
        .iter()
        .filter(|a| a.consultation_reason_id == reason.id && window.contains(&a.start_date_time))
        .map(|a| Slot {
            external_id: a.id.clone(),
            starts_at: a.start_date_time.to_rfc3339(),
            ends_at: Some(a.end_date_time.to_rfc3339()),
            // Maiia names the practitioner by id only.
            practitioner: Some(a.practitioner_id.clone()),
            visit_motive: Some(reason.name.clone()),
            place: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use passerelle_sdk::drift;

    #[test]
    fn the_recorded_page_reads_and_keeps_the_reasons_own_times_in_the_window() {
        let body = crate::recorded("availabilities.json");
        let page: page::Page<Availability> = drift::parse(ENDPOINT, &body).unwrap();
        assert_eq!((page.items.len(), page.total), (798, 798));
        let reason = Reason {
            id: "605dc40ddcb2f83f2c77fc2f".into(),
            name: "Première injection vaccin anti covid-19 ( +50 ans avec comorbidité)".into(),
            patient_limitation: "PUBLIC".into(),
            consultation_type: "PHYSICAL".into(),
        };
        let window = Window {
            start: Timestamp::parse("2021-05-13T00:00:00+02:00").unwrap(),
            end: Timestamp::parse("2021-05-14T00:00:00+02:00").unwrap(),
        };
        let slots = slots(&reason, &page.items, &window);
        assert!(!slots.is_empty());
        assert_eq!(
            slots.iter().map(|s| &s.starts_at).min().unwrap(),
            "2021-05-13T13:40:00+00:00"
        );
        let other = Reason {
            id: "605dc2e8014785294b527b0e".into(),
            ..reason
        };
        assert!(super::slots(&other, &page.items, &window).is_empty());
    }
}
