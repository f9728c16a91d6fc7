//! The Ordoclic connector on ViteMaDose's recorded Ordoclic profiles (`../shared`,
//! referenced by the cassettes in plugins/ordoclic/cassettes), through `passerelle
//! connector test`.

use passerelle_tests::kit::{drift_paths, first_slot, passes_recorded, requests, slot_times};

/// Pharmacie Oceane books online (`booking_settings.option: internal`); one
/// professional; of its eleven reasons three have `canBookOnline: true`. The recorded
/// slots (AstraZeneca, injection 1) are 12 times on 12 and 13 May 2021 given in UTC
/// with `timeStartUtcOffset: 120`: the first, 14:00Z, is 16:00 at +02:00. Five event
/// ids repeat across the twelve times (weekly events), so the external id adds the
/// start. The two other reasons answer the recorded empty answer.
#[test]
fn utc_times_are_stored_at_the_offset_sent_beside_them() {
    let report = passes_recorded("ordoclic", "fetchslot");
    let slots = slot_times(&report);
    assert_eq!(slots.len(), 12);
    assert!(slots.iter().all(|(s, _)| s.ends_with("+02:00")));
    let first = first_slot(&report);
    assert_eq!(first["starts_at"], "2021-05-12T16:00:00+02:00");
    assert_eq!(first["practitioner"], "Laurent HALWANI");
    assert_eq!(
        first["visit_motive"],
        "Vaccination AstraZeneca - Injection 1"
    );
    assert_eq!(first["place"], "Pharmacie Oceane (Paris)");
    let asked = requests(&report);
    assert_eq!(asked.len(), 2 + 3, "{asked:#?}");
    let read = drift_paths(&report);
    for path in [
        "$.entityId",
        "$.reasons[0].canBookOnline",
        "$.slots[0].timeStart",
        "$.slots[0].timeStartUtcOffset",
    ] {
        assert!(read.contains(&path.to_string()), "{path}: {read:?}");
    }
}

/// The same profile recorded with `booking_settings.option: any`: bookable by phone
/// only. The run succeeds with nothing stored after the one profile request.
#[test]
fn a_phone_only_profile_is_no_online_slot_not_drift() {
    let report = passes_recorded("ordoclic", "phone-only");
    assert!(slot_times(&report).is_empty());
    assert_eq!(requests(&report).len(), 1);
    assert_eq!(report["run"]["status"], "succeeded");
}

/// Pierre Lancelot's pharmacy: two reasons bookable online. Injection 1 answers the
/// recorded full week, 42 times from 19 April 14:15Z (16:15 at +02:00) to 23 April
/// 15:00Z; injection 2 answers an empty page whose next free time, 12 June, is after
/// the two-week window: not followed.
#[test]
fn a_full_week_is_stored_and_a_next_date_past_the_window_is_not_followed() {
    let report = passes_recorded("ordoclic", "full");
    let slots = slot_times(&report);
    assert_eq!(slots.len(), 42);
    assert_eq!(
        first_slot(&report)["starts_at"],
        "2021-04-19T16:15:00+02:00"
    );
    assert_eq!(requests(&report).len(), 2 + 2);
}

/// From 1 May with a two-month window, injection 1's next free time (12 June 10:30Z)
/// is in the window: the connector asks again from there, and that answer (the recorded
/// empty page) ends it. Nothing is stored.
#[test]
fn a_next_date_in_the_window_is_followed() {
    let report = passes_recorded("ordoclic", "next-slot");
    assert!(slot_times(&report).is_empty());
    assert_eq!(requests(&report).len(), 2 + 3);
}

/// ViteMaDose's `lancelot_reasons.json` holds a profile, not reasons (the index notes
/// it). Served as the reasons answer it is a shape the connector does not know: the run
/// ends `drift` at `$.reasons` (missing) on the reasons endpoint, stores nothing, and
/// `connector test` fails, as it must for a run that did not succeed.
#[test]
fn a_profile_served_as_reasons_is_drift_at_reasons() {
    let dir = passerelle_tests::kit::recorded_cassette("ordoclic", "wrong-reasons");
    let ran = passerelle_tests::kit::connector_test(
        &passerelle_tests::component("ordoclic"),
        &dir,
        &["--checks", "none"],
    );
    assert_ne!(ran.code, 0, "{}", ran.stdout);
    let report = ran.json();
    assert_eq!(report["run"]["status"], "drift");
    let drift = &report["run"]["drift"];
    assert_eq!(
        drift["endpoint"],
        "GET /v1/solar/entities/{entityId}/reasons"
    );
    assert_eq!(drift["path"], "$.reasons");
    assert_eq!(drift["found"], "missing");
    assert!(slot_times(&report).is_empty());
}
