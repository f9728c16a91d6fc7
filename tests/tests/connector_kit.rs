//! `passerelle connector test`, as an author runs it: the Doctolib connector on every
//! cassette of ViteMaDose's recorded Doctolib responses (they must lie in
//! ../shared/fixtures beside the checkout), with the slots those responses mean; the
//! contract checks and drift probes, passing and failing; and clear errors, with a
//! non-zero exit, for bad input.

use std::path::{Path, PathBuf};
use std::process::Command;

use passerelle_tests::component;
use passerelle_tests::daemon::binary;
use passerelle_tests::kit::{
    connector_test, drift_paths, passerelle, passes_recorded, recorded_cassette, repo, requests,
    slot_times,
};
use serde_json::Value;

fn cassette(name: &str) -> PathBuf {
    recorded_cassette("doctolib", name)
}

fn doctolib(name: &str) -> Value {
    passes_recorded("doctolib", name)
}

#[test]
fn a_slot_before_the_clock_is_not_bookable() {
    let report = doctolib("basic");
    // 2021-03-25T21:45+02:00 is in the recording too, before the run's clock.
    assert_eq!(
        slot_times(&report),
        [("2021-04-10T21:45:00+02:00".to_string(), None)]
    );
    assert_eq!(report["run"]["status"], "succeeded");
    // With a window reaching 30 days back the connector still asks availability from the
    // run's clock (contract 0.1.3): no request for March, the 03-25 slot not emitted.
    let wide = connector_test(
        &component("doctolib"),
        &cassette("basic"),
        &["--window", "30:14", "--checks", "none"],
    );
    assert_eq!(wide.code, 0, "{}\n{}", wide.stdout, wide.stderr);
    assert_eq!(slot_times(&wide.json()), slot_times(&report));
    assert_eq!(
        wide.json()["run"]["message"],
        "1 bookable slots in 3 availability requests"
    );
    let asked = requests(&wide.json());
    assert!(asked[1].contains("start_date=2021-04-03"), "{asked:?}");
    assert!(!asked.iter().any(|r| r.contains("2021-03-")), "{asked:?}");
    // Every field the connector reads is probed and named by its drift report.
    let read = drift_paths(&report);
    for path in [
        "$.data",
        "$.data.agendas",
        "$.data.agendas[0].id",
        "$.data.agendas[0].booking_disabled",
        "$.data.agendas[0].visit_motive_ids_by_practice_id",
        "$.data.places",
        "$.data.places[0].id",
        "$.data.visit_motives",
        "$.data.visit_motives[0].id",
        "$.data.visit_motives[0].name",
        "$.availabilities",
        "$.availabilities[0].slots",
        "$.availabilities[0].slots[0].start_date",
    ] {
        assert!(
            read.contains(&path.to_string()),
            "{path} not probed: {read:?}"
        );
    }
    let probes = report["probes"].as_array().unwrap();
    assert!(probes
        .iter()
        .all(|p| p["verdict"].get("violation").is_none()));
    // The profile is not read: the documents without one are fine.
    assert!(probes
        .iter()
        .filter(|p| p["path"].as_str().unwrap().starts_with("$.data.profile"))
        .all(|p| p["verdict"] == "not-needed"));
}

#[test]
fn a_date_only_slot_spans_its_day_and_categories_are_fine() {
    let report = doctolib("category");
    assert_eq!(
        slot_times(&report),
        [(
            "2021-04-10T00:00:00+02:00".to_string(),
            Some("2021-04-11T00:00:00+02:00".to_string())
        )]
    );
}

#[test]
fn a_next_slot_outside_the_window_ends_the_search() {
    let report = doctolib("next-slot");
    assert!(slot_times(&report).is_empty());
    let asked = requests(&report);
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(asked[1].contains("start_date=2021-03-20"), "{asked:?}");
}

#[test]
fn a_next_slot_inside_the_window_is_followed_once() {
    let report = doctolib("next-slot-in-window");
    assert!(slot_times(&report).is_empty());
    let asked = requests(&report);
    assert_eq!(asked.len(), 3, "{asked:?}");
    assert!(asked[2].contains("start_date=2021-04-10"), "{asked:?}");
    assert_eq!(report["requests"][2]["exchange"], 2);
}

/// A cassette of one exchange, written by the test.
fn own_cassette(dir: &Path, index: &str, body: &str) -> PathBuf {
    let c = dir.join("cassette");
    std::fs::create_dir_all(&c).unwrap();
    std::fs::write(c.join("cassette.toml"), index).unwrap();
    std::fs::write(c.join("body.json"), body).unwrap();
    c
}

#[test]
fn the_checks_see_patients_secrets_and_cursors() {
    let dir = tempfile::tempdir().unwrap();
    let c = own_cassette(
        dir.path(),
        "[replay]\nsettings = { scenario = \"emit\", count = \"4\" }\n\n\
         [[exchange]]\nurl = \"https://api.testing.example/unused\"\nbody = \"body.json\"\n",
        "{}",
    );
    let ran = connector_test(
        &component("testing"),
        &c,
        &["--secret", "api-token=tok-Zq81-unguessable", "--full"],
    );
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let report = ran.json();
    assert_eq!(
        report["records"]["appointments"].as_array().unwrap().len(),
        4
    );
    let check = |name: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == name)
            .unwrap_or_else(|| panic!("no {name} check"))
            .clone()
    };
    // The connector logs its first patient; the host scrubbed it before the log.
    let patients = check("patient-logs");
    assert_eq!(patients["passed"], true, "{patients}");
    // 4 appointments × 5 patient fields, in each of the three runs (first, idempotent,
    // cursor).
    assert_eq!(patients["detail"], "60 patient values, none in the log");
    assert!(report["logs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l.as_str().unwrap().contains("first patient")));
    assert_eq!(
        check("cursor")["detail"],
        "the cursor went from `done-4` to `done-4`"
    );
    assert_eq!(check("secrets")["passed"], true);
    // The text report never prints patients.
    let text = passerelle(&[
        "connector",
        "test",
        component("testing").to_str().unwrap(),
        "--cassette",
        c.to_str().unwrap(),
    ]);
    assert_eq!(text.code, 0, "{}\n{}", text.stdout, text.stderr);
    assert!(!text.stdout.contains("Zoéline") && !text.stdout.contains("Quintardeau"));
    assert!(text.stdout.contains("PASSED"));
}

#[test]
fn a_connector_that_stores_what_it_does_not_check_fails_the_probes() {
    // `fetch` stores the body it got as a slot's place: any change to the response
    // changes the records without a drift.
    let dir = tempfile::tempdir().unwrap();
    let c = own_cassette(
        dir.path(),
        "[replay]\nsettings = { scenario = \"fetch\", url = \"https://api.testing.example/echo\" }\n\n\
         [[exchange]]\nurl = \"https://api.testing.example/echo\"\nbody = \"body.json\"\n",
        r#"{"centre": {"name": "A"}}"#,
    );
    let ran = connector_test(&component("testing"), &c, &["--checks", "probes"]);
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    let report = ran.json();
    assert_eq!(report["run"]["status"], "succeeded");
    let probes = report["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 4, "{probes:#?}");
    assert!(probes
        .iter()
        .all(|p| p["verdict"].get("violation").is_some()));
    assert_eq!(report["checks"].as_array().unwrap().len(), 1);
    assert!(
        ran.stderr.contains("connector test failed"),
        "{}",
        ran.stderr
    );
}

#[test]
fn an_unmatched_request_names_the_closest_exchanges() {
    let dir = tempfile::tempdir().unwrap();
    let c = own_cassette(
        dir.path(),
        "[replay]\nsettings = { scenario = \"fetch\", url = \"https://api.testing.example/echo?page=2\" }\n\n\
         [[exchange]]\nurl = \"https://api.testing.example/echo?page=1\"\nbody = \"body.json\"\n",
        "{}",
    );
    let ran = connector_test(&component("testing"), &c, &["--checks", "none"]);
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    let report = ran.json();
    let request = &report["requests"][0];
    assert_eq!(request["exchange"], Value::Null);
    assert_eq!(
        request["request"],
        "GET https://api.testing.example/echo?page=2"
    );
    assert_eq!(request["closest"][0], "exchange 1: query page=1 ≠ 2");
}

#[test]
fn bad_input_is_a_clear_error_and_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let doctolib = component("doctolib");
    let basic = cassette("basic");

    let missing = connector_test(&doctolib, &dir.path().join("nowhere"), &[]);
    assert_ne!(missing.code, 0);
    assert!(
        missing.stderr.contains("no such cassette folder"),
        "{}",
        missing.stderr
    );

    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("cassette.toml"), "[[exchange]]\nuri = \"x\"\n").unwrap();
    let malformed = connector_test(&doctolib, &bad, &[]);
    assert_ne!(malformed.code, 0);
    assert!(
        malformed.stderr.contains("not a cassette index") && malformed.stderr.contains("uri"),
        "{}",
        malformed.stderr
    );

    let not_wasm = dir.path().join("not-a-component.wasm");
    std::fs::write(&not_wasm, b"\0asm but not really").unwrap();
    let refused = connector_test(&not_wasm, &basic, &[]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("not a"), "{}", refused.stderr);

    let bad_now = connector_test(&doctolib, &basic, &["--now", "yesterday"]);
    assert_eq!(bad_now.code, 2);
    assert!(
        bad_now.stderr.contains("is not an RFC 3339 time"),
        "{}",
        bad_now.stderr
    );

    let no_component = connector_test(&dir.path().join("gone.wasm"), &basic, &[]);
    assert_ne!(no_component.code, 0);
    assert!(
        no_component.stderr.contains("no such component file"),
        "{}",
        no_component.stderr
    );

    let no_expect = connector_test(
        &doctolib,
        &basic,
        &[
            "--checks",
            "none",
            "--expect",
            dir.path().join("none.json").to_str().unwrap(),
        ],
    );
    assert_ne!(no_expect.code, 0);
    assert!(
        no_expect.stderr.contains("--bless writes them"),
        "{}",
        no_expect.stderr
    );
}

/// The guide's walk-through, as an author outside the repository does it: `connector
/// new`, `connector build` out of tree, `connector test` on the template's cassette,
/// `plugins install`.
#[test]
fn a_new_connector_builds_out_of_tree_passes_its_cassette_and_installs() {
    let dir = tempfile::tempdir().unwrap();
    let made = passerelle(&[
        "connector",
        "new",
        "acme-booking",
        "--dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(made.code, 0, "{}\n{}", made.stdout, made.stderr);
    let crate_dir = dir.path().join("acme-booking");
    assert!(made.stdout.contains("passerelle connector build"));
    // Nothing in the crate points back into this repository.
    let cargo_toml = std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
    assert!(!cargo_toml.contains("workspace = true") && !cargo_toml.contains(".."));
    let sdk_toml = std::fs::read_to_string(crate_dir.join("passerelle-sdk/Cargo.toml")).unwrap();
    assert!(!sdk_toml.contains(".workspace"), "{sdk_toml}");

    // Build it where it is, with the repository's connectors' target folder as its build
    // cache: the standard library and the dependencies built for wasm32-wasip2 are most
    // of the time (minutes from nothing, seconds here). The crate is still its own
    // workspace with its own lock file; `cargo xtask build-plugins` collects only the
    // components of `plugins/`'s own crates from that folder.
    let out = Command::new(binary())
        .args(["connector", "build", crate_dir.to_str().unwrap()])
        .env("CARGO_TARGET_DIR", repo().join("plugins/target"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let component = PathBuf::from(stdout.trim());
    assert!(
        component.ends_with("wasm32-wasip2/release/acme_booking.wasm"),
        "{stdout}"
    );

    let cassette = crate_dir.join("cassettes/example");
    let report = passes_template_cassette(&crate_dir, &component);
    assert_eq!(report["connector"], "acme-booking");
    assert_eq!(report["records"]["slots"].as_array().unwrap().len(), 2);
    // The cassette matches the request only with the secret in its header.
    let wrong_key = connector_test(
        &component,
        &cassette,
        &["--secret", "api-key=another-key", "--checks", "none"],
    );
    assert_eq!(wrong_key.code, 1);
    assert_eq!(
        wrong_key.json()["requests"][0]["closest"][0],
        "exchange 1: header `authorization` differs"
    );
    // `--bless` alone writes the cassette's own expected.json.
    let expected = cassette.join("expected.json");
    let before = std::fs::read_to_string(&expected).unwrap();
    std::fs::remove_file(&expected).unwrap();
    let blessed = connector_test(
        &component,
        &cassette,
        &[
            "--secret",
            "api-key=made-up-key",
            "--bless",
            "--checks",
            "none",
        ],
    );
    assert_eq!(blessed.code, 0, "{}", blessed.stderr);
    let json = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap();
    assert_eq!(
        json(&std::fs::read_to_string(&expected).unwrap()),
        json(&before)
    );

    let data = dir.path().join("data");
    let installed = passerelle(&[
        "--data-dir",
        data.to_str().unwrap(),
        "plugins",
        "install",
        component.to_str().unwrap(),
    ]);
    assert_eq!(
        installed.code, 0,
        "{}\n{}",
        installed.stdout, installed.stderr
    );
    assert!(
        installed.stdout.contains("acme-booking"),
        "{}",
        installed.stdout
    );
}

/// `sync --record` against the simulator writes a cassette without secrets or patient
/// values, and replaying it stores the same records (patients aside: stand-ins).
#[tokio::test]
async fn a_recorded_run_replays_to_the_same_records() {
    let db = passerelle_tests::databases().await.remove(0);
    let sim = passerelle_tests::sim_env(&db, passerelle_tests::sim_config(1, 12)).await;
    let world = sim.sim.world().clone();
    let account = world.accounts().next().unwrap().clone();
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("recorded");
    let (run, _) = passerelle::kit::record::record_sync(
        &sim.env.app,
        &account.id,
        passerelle::model::run::Mode::Full,
        &cassette,
    )
    .await
    .unwrap();
    assert_eq!(
        run.status,
        passerelle::model::run::Status::Succeeded,
        "{run:?}"
    );
    let slots = sim.env.app.store.slots(&account.id).await.unwrap();
    let appointments = sim.env.app.store.appointments(&account.id).await.unwrap();
    assert!(!slots.is_empty() && !appointments.is_empty());

    // Nothing that must not be in it; owner-only files; the recording is on the trail.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&cassette), 0o700);
    let mut text = String::new();
    for entry in std::fs::read_dir(&cassette).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        text.push_str(&std::fs::read_to_string(path).unwrap());
    }
    let trail = sim.env.app.audit_entries(Some(5)).await.unwrap();
    assert!(
        trail
            .iter()
            .any(|e| e.action == "sync.record" && e.target == account.id),
        "{trail:?}"
    );
    assert!(
        !text.contains(&account.token),
        "the secret is in the cassette"
    );
    // No e-mail address but the stand-ins, whoever's it was; no patient value.
    assert!(passerelle_tests::assert_no_patient_value(&text, &world, "the cassette") > 0);

    // Replayed through the real sandbox: the same records.
    let settings: Vec<(String, String)> = sim
        .env
        .app
        .account(&account.id)
        .await
        .unwrap()
        .settings
        .into_iter()
        .collect();
    let report = passerelle::kit::test(passerelle::kit::TestOptions {
        component: component("doctolib"),
        cassette: cassette.clone(),
        fixtures: Vec::new(),
        live: None,
        bench: passerelle::kit::harness::BenchOptions {
            settings: settings.into_iter().collect(),
            secrets: [("api-token".to_string(), "replayed-token".to_string())].into(),
            now: None,
            window: None,
            cursor: None,
        },
        full: true,
        expect: None,
        bless: false,
        checks: vec![passerelle::kit::checks::Check::Idempotent],
    })
    .await
    .unwrap();
    assert!(report.passed(), "{:#?}", report.requests);
    let replayed_slots: Vec<String> = report
        .records
        .slots
        .iter()
        .map(|s| format!("{} {}", s["external_id"], s["starts_at"]))
        .collect();
    let recorded_slots: Vec<String> = {
        let mut v: Vec<String> = slots
            .iter()
            .map(|s| format!("\"{}\" \"{}\"", s.external_id, s.starts_at))
            .collect();
        v.sort();
        v
    };
    assert_eq!(replayed_slots, recorded_slots);
    let mut replayed: Vec<Value> = report.records.appointments.clone();
    let mut recorded: Vec<Value> = appointments
        .iter()
        .filter(|a| a.deleted_reason.is_none())
        .map(|a| serde_json::to_value(&a.record).unwrap())
        .collect();
    recorded.sort_by(|a, b| a["external_id"].as_str().cmp(&b["external_id"].as_str()));
    assert_eq!(replayed.len(), recorded.len());
    for (r, o) in replayed.iter_mut().zip(recorded.iter_mut()) {
        assert_ne!(r["patient"], o["patient"], "stand-ins, not the patients");
        r.as_object_mut().unwrap().remove("patient");
        o.as_object_mut().unwrap().remove("patient");
    }
    assert_eq!(replayed, recorded);
}

/// `connector test --record DIR` against a live origin (the simulator, reached through
/// the configuration's HTTP overrides): the run is recorded, then tested on the
/// recording.
#[tokio::test]
async fn connector_test_records_a_live_origin_then_replays_it() {
    let sim = passerelle_sim::Simulator::new(passerelle_tests::sim_config(1, 8));
    let running = sim.serve(([127, 0, 0, 1], 0).into()).await.unwrap();
    let account = sim.world().accounts().next().unwrap().clone();
    let dir = tempfile::tempdir().unwrap();
    let config = passerelle::service::config::Config {
        http: passerelle::dev::demo::simulator_policy(&running.base_url),
        ..passerelle::service::config::Config::default()
    };
    let config_file = dir.path().join("config.toml");
    std::fs::write(&config_file, toml::to_string(&config).unwrap()).unwrap();
    let recorded = dir.path().join("recorded");
    let centre = format!("centre={}", account.centre);
    let profile = format!("profile-id={}", account.profile_id);
    let args: Vec<String> = [
        "--json",
        "--config",
        config_file.to_str().unwrap(),
        "connector",
        "test",
        component("doctolib").to_str().unwrap(),
        "--record",
        recorded.to_str().unwrap(),
        "--setting",
        &centre,
        "--setting",
        &profile,
        // A real secret: its value from the environment, never the command line.
        "--secret",
        "api-token",
        "--full",
        "--checks",
        "idempotent,secrets,patient-logs",
    ]
    .map(String::from)
    .into();
    let secret = account.token.clone();
    let run = move |args: Vec<String>| {
        let secret = secret.clone();
        tokio::task::spawn_blocking(move || {
            passerelle_tests::kit::passerelle_with_env(
                &args.iter().map(String::as_str).collect::<Vec<_>>(),
                &[("PASSERELLE_SECRET_API_TOKEN", &secret)],
            )
        })
    };
    // A value on the command line is refused with --record, before anything is done.
    let mut on_the_line = args.clone();
    let at = on_the_line.iter().position(|a| a == "api-token").unwrap();
    on_the_line[at] = format!("api-token={}", account.token);
    let refused = run(on_the_line).await.unwrap();
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("PASSERELLE_SECRET_API_TOKEN") && !recorded.exists(),
        "{}",
        refused.stderr
    );
    let ran = run(args.clone()).await.unwrap();
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let report = ran.json();
    assert!(!report["records"]["slots"].as_array().unwrap().is_empty());
    assert!(!report["records"]["appointments"]
        .as_array()
        .unwrap()
        .is_empty());
    let index = std::fs::read_to_string(recorded.join("cassette.toml")).unwrap();
    assert!(
        index.contains("https://partners.doctolib.fr/api/v1/profiles/"),
        "{index}"
    );
    for entry in std::fs::read_dir(&recorded).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(
            !text.contains(&account.token),
            "the secret is in the cassette"
        );
    }
    // The recording replays on its own; a folder that holds one is not overwritten.
    let replayed = connector_test(&component("doctolib"), &recorded, &["--checks", "none"]);
    assert_eq!(replayed.code, 0, "{}", replayed.stderr);
    let refused = run(args).await.unwrap();
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("not an empty folder"),
        "{}",
        refused.stderr
    );
}

/// The same walk-through in Python and JavaScript: `connector new --lang`, `connector
/// build` (componentize-py from target/toolchains/python on PATH, as an author's
/// virtual environment would give it; componentize-js by `npm install` in the folder),
/// and `connector test` on the template's cassette against the Rust template's
/// expected records, every contract check and probe passing.
#[test]
fn new_python_and_javascript_connectors_build_and_pass_the_templates_cassette() {
    let venv_bin = repo().join("target/toolchains/python/bin");
    assert!(
        venv_bin.join("componentize-py").is_file(),
        "run `cargo xtask build-plugins` first: it installs componentize-py into {}",
        venv_bin.display()
    );
    let path = format!(
        "{}:{}",
        venv_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for lang in ["python", "js"] {
        let dir = tempfile::tempdir().unwrap();
        let made = passerelle(&[
            "connector",
            "new",
            "acme-booking",
            "--lang",
            lang,
            "--dir",
            dir.path().to_str().unwrap(),
        ]);
        assert_eq!(made.code, 0, "{lang}: {}\n{}", made.stdout, made.stderr);
        let folder = dir.path().join("acme-booking");
        assert!(folder.join("wit/connector.wit").is_file(), "{lang}");
        let out = Command::new(binary())
            .args(["connector", "build", folder.to_str().unwrap()])
            .env("PATH", &path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{lang}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let component = PathBuf::from(stdout.trim());
        assert!(
            component.ends_with("target/acme-booking.wasm"),
            "{lang}: {stdout}"
        );
        let report = passes_template_cassette(&folder, &component);
        assert_eq!(report["connector"], "acme-booking", "{lang}");
        assert_eq!(report["expected"]["matches"], true, "{lang}");
        for check in report["checks"].as_array().unwrap() {
            assert_eq!(check["passed"], true, "{lang}: {check}");
        }
    }
}

/// `connector test` of a component built from a template, on the template's cassette
/// and expected records: it passes; the report.
fn passes_template_cassette(
    folder: &std::path::Path,
    component: &std::path::Path,
) -> serde_json::Value {
    let cassette = folder.join("cassettes/example");
    let expected = cassette.join("expected.json");
    let tested = connector_test(
        component,
        &cassette,
        &[
            "--secret",
            "api-key=made-up-key",
            "--expect",
            expected.to_str().unwrap(),
        ],
    );
    assert_eq!(
        tested.code,
        0,
        "{}: {}\n{}",
        component.display(),
        tested.stdout,
        tested.stderr
    );
    tested.json()
}
