//! The Maiia connector on ViteMaDose's recorded Maiia centre (`../shared`, referenced by
//! the cassettes in plugins/maiia/cassettes), through `passerelle connector test`.

use passerelle_tests::kit::{drift_paths, first_slot, passes_recorded, requests, slot_times};

const REASON: &str = "Première injection vaccin anti covid-19 ( +50 ans avec comorbidité)";

/// The centre's ten consultation reasons are all `patientLimitation: PUBLIC`, so all ten
/// are asked. The recorded availabilities (one page: 798 items, `total` 798) are those
/// of reason 605dc40d… — every item has that `consultationReasonId` and practitioner
/// 603686bc… — from 13 May 13:40 UTC to 28 May 2021; the nine other reasons answer an
/// empty page. From 16 April with a 45-day window every recorded time is in it: 798
/// slots, at UTC as Maiia sends them, each 5 minutes long.
#[test]
fn every_recorded_time_of_the_one_reason_is_stored_in_utc() {
    let report = passes_recorded("maiia", "availabilities");
    let slots = slot_times(&report);
    assert_eq!(slots.len(), 798);
    let first = first_slot(&report);
    assert_eq!(first["starts_at"], "2021-05-13T13:40:00+00:00");
    assert_eq!(first["ends_at"], "2021-05-13T13:45:00+00:00");
    assert_eq!(first["external_id"], "60797bf890fda454d584527f");
    assert_eq!(first["visit_motive"], REASON);
    assert_eq!(first["practitioner"], "603686bc587c432e366d0b40");
    assert!(slots.iter().all(|(s, _)| s.ends_with("+00:00")));
    let asked = requests(&report);
    // One reasons page (10 of total 10), then one availabilities page per reason.
    assert_eq!(asked.len(), 11, "{asked:#?}");
    assert!(asked[1].contains("from=2021-04-16T12:00:00.000Z&to=2021-05-31T12:00:00.000Z"));
    let read = drift_paths(&report);
    for path in [
        "$.items[0].startDateTime",
        "$.items[0].consultationReasonId",
        "$.items[0].patientLimitation",
        "$.total",
    ] {
        assert!(read.contains(&path.to_string()), "{path}: {read:?}");
    }
}

/// Maiia's recorded page holds the whole recording whatever range was asked; from
/// 20 May 08:00 Paris (06:00 UTC) with a three-day window only the 200 times from
/// 20 May 06:00 UTC to 23 May 06:00 UTC are stored (counted in the recording).
#[test]
fn only_times_in_the_window_are_stored() {
    let report = passes_recorded("maiia", "window");
    let slots = slot_times(&report);
    assert_eq!(slots.len(), 200);
    assert!(slots
        .iter()
        .all(|(s, _)| s.as_str() >= "2021-05-20T06:00:00" && s.as_str() < "2021-05-23T06:00:00"));
}
