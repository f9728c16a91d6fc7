//! The SDK's worked example (plugins/examples/agendo-python, the guide's "A worked
//! example"): a made-up platform shaped like those authors meet — an organization with
//! a field always there but maybe null, reasons, free times asked a week of local days
//! at a time, each answer a list ending with a trailer object, the API key inside a
//! header template — written with the SDK in under 150 lines, passing its cassette.

use passerelle_tests::example;
use passerelle_tests::kit::{connector_test, first_slot, repo, requests, slot_times};

const KEY: &str = "api-key=made-up-agendo-key";

fn cassette() -> std::path::PathBuf {
    repo().join("plugins/examples/agendo-python/cassettes/week")
}

#[test]
fn the_worked_example_reads_its_platform_in_under_150_lines() {
    let source =
        std::fs::read_to_string(repo().join("plugins/examples/agendo-python/app.py")).unwrap();
    assert!(
        source.lines().count() <= 150,
        "{} lines",
        source.lines().count()
    );

    let ran = connector_test(&example("agendo-python"), &cassette(), &["--secret", KEY]);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let report = ran.json();
    assert_eq!(report["expected"]["matches"], true, "{report}");
    for check in report["checks"].as_array().unwrap() {
        assert_eq!(check["passed"], true, "{check}");
    }
    // Two online reasons (the third is not), three pages of days each (17-23, 24-30
    // and 31 May): the organization, its reasons, six pages; every answer made up.
    let asked = requests(&report);
    assert_eq!(asked.len(), 8, "{asked:#?}");
    for page in [
        "from=2021-05-17&to=2021-05-23",
        "from=2021-05-24&to=2021-05-30",
        "from=2021-05-31&to=2021-05-31",
    ] {
        assert_eq!(
            asked.iter().filter(|r| r.contains(page)).count(),
            2,
            "{page}: {asked:#?}"
        );
    }
    assert!(report["requests"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["note"] == "made up"));
    // Local times in Paris (summer: +02:00), the trailer objects not read as times.
    let slots = slot_times(&report);
    assert_eq!(slots.len(), 6, "{slots:?}");
    let first = first_slot(&report);
    assert_eq!(first["starts_at"], "2021-05-17T08:15:00+02:00");
    assert_eq!(first["ends_at"], "2021-05-17T08:30:00+02:00");
    assert_eq!(first["visit_motive"], "Vaccination");
    assert!(first["practitioner"].is_null(), "{first}");
    assert_eq!(first["place"], "Centre de santé du Port");
    assert!(slots.contains(&(
        "2021-05-18T09:00:00+02:00".to_string(),
        Some("2021-05-18T09:20:00+02:00".to_string())
    )));
    // The fields it reads, found by the drift probes: the nullable ones included.
    let read = passerelle_tests::kit::drift_paths(&report);
    for path in ["$.address", "$[0].practitioner", "$[0].day"] {
        assert!(read.contains(&path.to_string()), "{path}: {read:?}");
    }
    // Each probe names the exchange it changed and, retyped, the kinds.
    let address = report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["path"] == "$.address" && p["mutation"] == "retyped")
        .unwrap();
    assert_eq!(address["exchange"], 1, "{address}");
    assert_eq!(address["retyped"], "null → string", "{address}");
}

/// Without its key the requests carry no template the platform takes: the cassette's
/// exchanges want it, so nothing matches and the test fails, naming what differs.
#[test]
fn the_worked_example_without_its_key_is_refused() {
    let ran = connector_test(
        &example("agendo-python"),
        &cassette(),
        &["--checks", "none"],
    );
    assert_ne!(ran.code, 0, "{}", ran.stdout);
}
