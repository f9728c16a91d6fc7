//! The Mapharma connector on ViteMaDose's recorded Mapharma calendar (`../shared`,
//! referenced by the cassettes in plugins/mapharma/cassettes), through
//! `passerelle connector test`: the slots the recording means, every contract check and
//! drift probe.

use passerelle_tests::kit::{drift_paths, passes_recorded, requests, slot_times};

/// The recording (`slots.json`) is campaign 60's calendar from 2021-04-19: eight days,
/// 72 times, each with `places_dispo` ≥ 1, at local `HH:MM` — Paris summer time (+02:00)
/// throughout. The first is Monday 19 April at 17:15 (id 201664); the last day is
/// 2021-05-13, so the connector asks next from 2021-05-14, which answers `[]`.
#[test]
fn the_whole_recorded_calendar_is_bookable_at_paris_times() {
    let report = passes_recorded("mapharma", "calendar");
    let slots = slot_times(&report);
    assert_eq!(slots.len(), 72);
    let first = report["records"]["slots"]
        .as_array()
        .unwrap()
        .iter()
        .min_by_key(|s| s["starts_at"].as_str().unwrap().to_string())
        .unwrap()
        .clone();
    assert_eq!(first["starts_at"], "2021-04-19T17:15:00+02:00");
    assert_eq!(first["external_id"], "60-1-201664");
    // Mapharma gives a start only: no end, practitioner, motive or place.
    assert_eq!(first["ends_at"], serde_json::Value::Null);
    assert!(slots.iter().all(|(start, _)| start.ends_with("+02:00")));
    let asked = requests(&report);
    assert_eq!(
        asked,
        [
            "GET https://mapharma.net/api/public/calendar/60/2021-04-19/1",
            "GET https://mapharma.net/api/public/calendar/60/2021-05-14/1"
        ]
    );
    // Every field the connector reads is named by its drift when removed or retyped.
    let read = drift_paths(&report);
    for path in [
        "$['2021-04-19']",
        "$['2021-04-19'][0]",
        "$['2021-04-19'][0].id",
        "$['2021-04-19'][0].time",
        "$['2021-04-19'][0].places_dispo",
    ] {
        assert!(
            read.contains(&path.to_string()),
            "{path} not probed: {read:?}"
        );
    }
}

/// For the week from Sunday 2021-04-25 the same answer (which starts on 04-19, before the
/// window, and runs to 05-13, after it) gives the 22 times of Monday 26 and Thursday 29
/// April, and no second request: the next page would start after the window.
#[test]
fn only_the_window_is_stored_and_nothing_past_it_is_asked() {
    let report = passes_recorded("mapharma", "window");
    let slots = slot_times(&report);
    assert_eq!(slots.len(), 22);
    assert!(slots
        .iter()
        .all(|(s, _)| s.starts_with("2021-04-26") || s.starts_with("2021-04-29")));
    assert_eq!(requests(&report).len(), 1);
}
