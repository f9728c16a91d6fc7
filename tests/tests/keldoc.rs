//! The Keldoc connector on ViteMaDose's recorded Keldoc centre (`../shared`, referenced
//! by the cassettes in plugins/keldoc/cassettes), through `passerelle connector test`:
//! the slots the recording means, every contract check and drift probe.

use passerelle_tests::kit::{
    drift_paths, first_slot, passerelle, passes_recorded, recorded_cassette, requests, slot_times,
};

/// The recording is cabinet 16913 (Le Faouët) of clinic 2563, specialty 144. Its four
/// motives each sit in their own category. Motives 81484 and 82874 answer "Prochain RDV
/// disponible le 20 Avril 2021 à 16h55" with `date` 2021-04-20T16:55+02:00: no free time
/// in the asked days, the next one then. Motives 81486 and 81488 answer a phone number:
/// bookable by phone only. On 13 April with a seven-day window (to 20 April 08:00) the
/// next free time is after the window: nothing is stored, the run succeeds, and each
/// motive costs one timetable request (five days from the 13th).
#[test]
fn next_availability_after_the_window_and_phone_only_motives_store_nothing() {
    let report = passes_recorded("keldoc", "center1");
    assert!(slot_times(&report).is_empty());
    assert_eq!(report["run"]["status"], "succeeded");
    let asked = requests(&report);
    assert_eq!(asked.len(), 6, "{asked:#?}");
    assert!(asked[0].ends_with("/clinics/2563/specialties/144/cabinets"));
    assert!(asked[1].ends_with("/cabinets/16913/motive_categories"));
    for motive in [81484, 81486, 81488, 82874] {
        assert!(
            asked.iter().any(|r| r.contains(&format!(
                "/timetables/{motive}?from=2021-04-13&to=2021-04-17"
            ))),
            "{motive}: {asked:#?}"
        );
    }
    // The shape is told by its fields: a next date, a phone number; both probed.
    let read = drift_paths(&report);
    for path in [
        "$.date",
        "$.phone_number",
        "$[0].motives[0].agendas",
        "$[0].name",
    ] {
        assert!(read.contains(&path.to_string()), "{path}: {read:?}");
    }
}

/// With a fourteen-day window the recorded next availability (20 April 16:55) is in it,
/// so the connector asks motive 81484 again from the 20th. That answer was not
/// recorded; the cassette gives it in Keldoc's times shape (our own data): three times
/// on the 20th, on agendas 49335 and 51414, each named by the motive list's agenda
/// names. Motive 82874's jump answers no time. The cabinet's name comes from the
/// clinic's list of cabinets.
#[test]
fn a_next_availability_in_the_window_is_followed() {
    let report = passes_recorded("keldoc", "jump");
    let slots = slot_times(&report);
    assert_eq!(slots.len(), 3);
    let first = first_slot(&report);
    assert_eq!(first["starts_at"], "2021-04-20T16:55:00+02:00");
    assert_eq!(first["ends_at"], "2021-04-20T17:00:00+02:00");
    assert_eq!(
        first["practitioner"],
        "Equipe de vaccination  LE FAOUET - Maison de santé"
    );
    assert_eq!(
        first["visit_motive"],
        "1ère injection Vaccin COVID +70 ANS  (PF)"
    );
    assert_eq!(
        first["place"],
        "Centre de vaccination - LE FAOUET - Maison de santé"
    );
    let asked = requests(&report);
    assert!(asked
        .iter()
        .any(|r| r.contains("/timetables/81484?from=2021-04-20&to=2021-04-24")));
    assert!(asked
        .iter()
        .any(|r| r.contains("/timetables/81484?from=2021-04-25&to=2021-04-29")));
    assert_eq!(asked.len(), 9, "{asked:#?}");
    // The answers the cassette made up say so beside the requests they answered.
    let noted: Vec<&str> = report["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["note"] == "made up")
        .map(|r| r["request"].as_str().unwrap())
        .collect();
    assert_eq!(noted.len(), 3, "{noted:#?}");
    assert!(
        noted.iter().all(|r| r.contains("from=2021-04-2")),
        "{noted:#?}"
    );
}

/// Every cassette of a folder in one call, each against its own expected.json: the
/// text names the clock and window, numbers requests in order with the exchange that
/// answered (and its note), puts the first slot first; `--summary` keeps the counts.
#[test]
fn a_folder_of_cassettes_in_one_call() {
    let one = recorded_cassette("keldoc", "jump");
    let folder = one.parent().unwrap();
    let component = passerelle_tests::component("keldoc");
    let count = std::fs::read_dir(folder)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().join("cassette.toml").is_file())
        .count();
    let test = |cassette: &std::path::Path, extra: &[&str]| {
        let mut args = vec![
            "connector",
            "test",
            component.to_str().unwrap(),
            "--cassette",
            cassette.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        passerelle(&args)
    };
    let ran = test(folder, &["--summary"]);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let out = &ran.stdout;
    assert!(
        out.contains(&format!("{count} cassettes: {count} passed, 0 failed")),
        "{out}"
    );
    assert!(out.contains("records match"), "{out}");
    assert!(
        out.contains("clock 2021-04-13T06:00:00Z, window 0 days back and 14 ahead"),
        "{out}"
    );
    assert!(
        out.contains("first slot: 2021-04-20T16:55:00+02:00"),
        "{out}"
    );
    assert!(
        !out.contains("<- exchange"),
        "a summary lists no request: {out}"
    );

    let ran = test(&one, &[]);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let lines: Vec<&str> = ran.stdout.lines().collect();
    let numbered: Vec<&&str> = lines.iter().filter(|l| l.contains("<- exchange")).collect();
    assert_eq!(numbered.len(), 9, "{}", ran.stdout);
    for (n, line) in numbered.iter().enumerate() {
        assert!(
            line.trim_start().starts_with(&format!("{}. ", n + 1)),
            "{line}"
        );
    }
    assert_eq!(
        numbered.iter().filter(|l| l.ends_with("(made up)")).count(),
        3,
        "{}",
        ran.stdout
    );
    // Slots by start: the first listed is the first slot.
    let slots = lines
        .iter()
        .position(|l| l.starts_with("slots (3)"))
        .unwrap();
    assert!(lines[slots + 1].contains("first slot: 2021-04-20T16:55:00+02:00"));
    assert!(lines[slots + 2]
        .trim_start()
        .starts_with("2021-04-20T16:55:00+02:00 → "));

    // One --expect file cannot stand for a folder of cassettes.
    let expected = one.join("expected.json");
    let ran = test(folder, &["--expect", expected.to_str().unwrap()]);
    assert_ne!(ran.code, 0);
    assert!(
        ran.stderr.contains("--expect names one file"),
        "{}",
        ran.stderr
    );
}

/// Cabinet 16910 of the same clinic (K2 Lorient La Base): its recorded motive list has
/// two motives, 81484 and 82874, each taken by nineteen agendas; the connector asks
/// each motive's timetable once with all nineteen (`agenda_ids[]`), and the recorded
/// answers (next availability on 20 April, after the window) store nothing. The
/// cabinet is found by id among the clinic's five.
#[test]
fn every_agenda_of_a_motive_is_asked_at_once() {
    let report = passes_recorded("keldoc", "k2");
    assert!(slot_times(&report).is_empty());
    let asked = requests(&report);
    assert_eq!(asked.len(), 4, "{asked:#?}");
    assert_eq!(
        asked[2].matches("agenda_ids[]=").count(),
        19,
        "{}",
        asked[2]
    );
}
