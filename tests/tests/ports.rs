//! The Maiia connector ported to Python (plugins/examples/maiia-python, on
//! plugins/sdk-python, built with componentize-py) and to JavaScript
//! (plugins/examples/maiia-js, on plugins/sdk-js, built with componentize-js): the same
//! cassettes and contract checks as the Rust connector, the simulator's ground truth on
//! SQLite and PostgreSQL, drift named at the right endpoint and path, and the
//! sandbox's limits ending their runs cleanly.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::response::IntoResponse;
use passerelle::model::limits::Limits;
use passerelle::model::run::{Mode, Status};
use passerelle::service::config::Config;
use passerelle_sim::{Change, Drift, Faults, Platform, SimConfig};
use passerelle_tests::kit::{connector_test, drift_paths, recorded_cassette};
use passerelle_tests::{databases, example, sim_config, sim_env_replacing, Db, SimEnv};

const MAIIA_ACCOUNT: &str = "p001-maiia";

/// The ports: their build under target/plugins/examples/.
const PORTS: [&str; 2] = ["maiia-python", "maiia-js"];

fn world() -> SimConfig {
    SimConfig {
        platforms: vec![Platform::Doctolib, Platform::Maiia],
        ..sim_config(3, 10)
    }
}

async fn port_env(db: &Db, port: &str, config: Config) -> SimEnv {
    sim_env_replacing(db, world(), config, &[("maiia", example(port))]).await
}

/// `connector test` of each port on the Rust connector's cassettes and expected
/// records: the same records, every contract check and drift probe passed.
#[test]
fn the_ports_pass_the_rust_maiias_cassettes() {
    for (port, name) in PORTS
        .iter()
        .flat_map(|p| ["availabilities", "window"].map(|n| (*p, n)))
    {
        let dir = recorded_cassette("maiia", name);
        let expected = dir.join("expected.json");
        let ran = connector_test(
            &example(port),
            &dir,
            &["--expect", expected.to_str().unwrap()],
        );
        assert_eq!(ran.code, 0, "{port}/{name}: {}\n{}", ran.stdout, ran.stderr);
        let report = ran.json();
        assert_eq!(report["expected"]["matches"], true, "{port}/{name}");
        for check in report["checks"].as_array().unwrap() {
            assert_eq!(check["passed"], true, "{port}/{name}: {check}");
        }
        if name == "availabilities" {
            // The fields it reads, found by the probes: the Rust connector's own.
            let read = drift_paths(&report);
            for path in [
                "$.items[0].startDateTime",
                "$.items[0].consultationReasonId",
                "$.items[0].patientLimitation",
                "$.total",
            ] {
                assert!(read.contains(&path.to_string()), "{port}: {path}: {read:?}");
            }
        }
    }
}

#[tokio::test]
async fn the_ports_store_exactly_the_worlds_bookable_times_and_name_drift() {
    for port in PORTS {
        for db in databases().await {
            let e = port_env(&db, port, Config::default()).await;
            let installed = e.env.app.store.active_connector("maiia").await.unwrap();
            assert!(installed.is_some(), "{}", db.name);
            let run = e.sync(MAIIA_ACCOUNT, Mode::Full).await;
            assert_eq!(run.status, Status::Succeeded, "{port} {}: {run:?}", db.name);
            e.assert_matches_truth(MAIIA_ACCOUNT, db.name).await;
            let stored = e.env.app.store.slots(MAIIA_ACCOUNT).await.unwrap().len();

            e.sim.set_faults(
                "maiia",
                Faults {
                    endpoint: Some("availabilities".into()),
                    drift: Some(Drift {
                        field: "startDateTime".into(),
                        change: Change::Rename,
                        nth: None,
                    }),
                    ..Faults::default()
                },
            );
            let run = e.sync(MAIIA_ACCOUNT, Mode::Full).await;
            assert_eq!(run.status, Status::Drift, "{port} {}: {run:?}", db.name);
            let detail = run.error_detail.unwrap_or_default();
            assert!(
                detail.contains("GET /api/pat-public/availabilities")
                    && detail.contains("startDateTime"),
                "{port} {}: {detail}",
                db.name
            );
            // Nothing stored before was lost.
            assert_eq!(
                e.env.app.store.slots(MAIIA_ACCOUNT).await.unwrap().len(),
                stored
            );
        }
    }
}

#[tokio::test]
async fn the_ports_end_cleanly_at_the_deadline() {
    let db = &databases().await[0];
    for port in PORTS {
        let config = Config {
            limits: Limits {
                deadline_secs: 1.0,
                ..Limits::default()
            },
            ..Config::default()
        };
        let e = port_env(db, port, config).await;
        e.sim.set_faults(
            "maiia",
            Faults {
                latency_ms: 3_000,
                ..Faults::default()
            },
        );
        let run = e.sync(MAIIA_ACCOUNT, Mode::Full).await;
        assert_eq!(run.status, Status::Failed, "{run:?}");
        assert_eq!(
            run.error_kind.map(|k| k.as_str()),
            Some("limit-exceeded"),
            "{run:?}"
        );
        assert!(
            run.error_detail
                .as_deref()
                .unwrap_or_default()
                .contains("deadline"),
            "{run:?}"
        );
        // The host goes on: the account syncs once the platform is quick again.
        e.sim.clear_faults();
        let run = e.sync(MAIIA_ACCOUNT, Mode::Full).await;
        assert_eq!(run.status, Status::Succeeded, "{port}: {run:?}");
    }
}

/// CPython and SpiderMonkey start with a preinitialised heap (about 12 and 9 MiB):
/// under a smaller memory limit the component is refused at install, saying so, and
/// the Rust build it would replace keeps serving.
#[tokio::test]
async fn under_their_starting_memory_the_ports_are_refused_at_install() {
    let db = &databases().await[0];
    let config = Config {
        limits: Limits {
            memory_mib: 8,
            ..Limits::default()
        },
        ..Config::default()
    };
    let e = passerelle_tests::sim_env_with(db, world(), config).await;
    for port in PORTS {
        let refused = e.env.app.install_plugin(&example(port)).await.unwrap_err();
        let text = format!("{refused:#}");
        assert!(
            text.contains("MiB of linear memory") && text.contains("limits.memory_mib"),
            "{port}: {text}"
        );
    }
    let run = e.sync(MAIIA_ACCOUNT, Mode::Full).await;
    assert_eq!(run.status, Status::Succeeded, "{run:?}");
}

/// A JavaScript guest built with componentize-js's `http` feature imports `wasi:http`:
/// the host links it with every request denied, so the component installs and syncs
/// through passerelle's own `http` import like the others (on SQLite: the store is
/// not what this is about).
#[tokio::test]
async fn a_guest_importing_wasi_http_loads_and_syncs() {
    let file = passerelle_tests::variant("maiia-js-http.wasm");
    // The variant does import wasi:http (else this test would prove nothing).
    let bytes = std::fs::read(&file).unwrap();
    let mut imports: Vec<String> = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
        if let Ok(wasmparser::Payload::ComponentImportSection(section)) = payload {
            imports.extend(
                section
                    .into_iter()
                    .flatten()
                    .map(|i| i.name.name.to_string()),
            );
        }
    }
    assert!(
        imports.iter().any(|i| i.starts_with("wasi:http/")),
        "{imports:?}"
    );
    // Loading is what is new here: one database is enough.
    let db = &databases().await[0];
    let e = sim_env_replacing(db, world(), Config::default(), &[("maiia", file)]).await;
    let run = e.sync(MAIIA_ACCOUNT, Mode::Full).await;
    assert_eq!(run.status, Status::Succeeded, "{run:?}");
    e.assert_matches_truth(MAIIA_ACCOUNT, db.name).await;
}

/// The allowlist holds for the ports as for Rust guests: a platform answering with a
/// redirect off the connector's allowlist ends the run `failed`, the redirect not
/// followed, and the port reports it as the host said.
#[tokio::test]
async fn a_redirect_off_the_allowlist_ends_a_ports_run() {
    let db = &databases().await[0];
    // A platform that sends every request elsewhere.
    let (base, hits) = platform_answering(|| {
        (
            axum::http::StatusCode::FOUND,
            [("location", "http://evil.example.org/steal")],
        )
            .into_response()
    })
    .await;
    for port in PORTS {
        let e = passerelle_tests::sim_env_routed(
            db,
            world(),
            Config::default(),
            &[("maiia", example(port))],
            maiia_to(base.clone()),
        )
        .await;
        let run = e.sync(MAIIA_ACCOUNT, Mode::Full).await;
        assert_eq!(run.status, Status::Failed, "{port}: {run:?}");
        let detail = run.error_detail.unwrap_or_default();
        assert!(
            detail.contains("http://evil.example.org is not on the connector's allowlist"),
            "{port}: {detail}"
        );
        assert!(e
            .env
            .app
            .store
            .slots(MAIIA_ACCOUNT)
            .await
            .unwrap()
            .is_empty());
    }
    assert!(hits.load(Ordering::SeqCst) >= PORTS.len());
}

/// A platform on loopback answering every request with `answer()`; its base URL and
/// how many requests it saw.
async fn platform_answering(
    answer: fn() -> axum::response::Response,
) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().fallback(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        async move { answer() }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, hits)
}

/// The HTTP policy routing Maiia's origin to `base` (on loopback).
fn maiia_to(base: String) -> impl FnOnce(&mut passerelle::runtime::capabilities::http::HttpPolicy) {
    move |http| {
        let maiia = passerelle_sim::ORIGINS
            .iter()
            .find(|(name, _)| *name == "maiia")
            .map(|(_, origin)| origin.to_string())
            .expect("maiia's origin");
        http.overrides.insert(maiia, base);
        http.allow_private_addresses = true;
    }
}

/// At run time: under a memory limit 1 MiB above what each engine starts with (so the
/// port installs), an answer of 4 MiB cannot be handed to the guest; the run ends
/// `limit-exceeded` naming the memory limit, the platform's data is not half-read into
/// the store, and the daemon goes on (the same port syncs the simulator afterwards).
#[tokio::test]
async fn a_port_over_its_memory_limit_at_run_time_fails_cleanly() {
    let db = &databases().await[0];
    let (base, _) = platform_answering(|| {
        let mut body = String::from("[");
        body.push_str(&"{\"a\":1},".repeat(450_000));
        body.push_str("{}]");
        ([("content-type", "application/json")], body).into_response()
    })
    .await;
    for (port, mib) in [("maiia-python", 13), ("maiia-js", 10)] {
        let config = Config {
            limits: Limits {
                memory_mib: mib,
                ..Limits::default()
            },
            ..Config::default()
        };
        let e = passerelle_tests::sim_env_routed(
            db,
            world(),
            config,
            &[("maiia", example(port))],
            maiia_to(base.clone()),
        )
        .await;
        let run = e.sync(MAIIA_ACCOUNT, Mode::Full).await;
        assert_eq!(run.status, Status::Failed, "{port}: {run:?}");
        assert_eq!(
            run.error_kind.map(|k| k.as_str()),
            Some("limit-exceeded"),
            "{port}: {run:?}"
        );
        assert!(
            run.error_detail
                .as_deref()
                .unwrap_or_default()
                .contains("memory"),
            "{port}: {run:?}"
        );
        assert!(e
            .env
            .app
            .store
            .slots(MAIIA_ACCOUNT)
            .await
            .unwrap()
            .is_empty());
    }
}
