//! Hot swap and the drift loop, end to end: a platform drifts, the accounts pause (with
//! an alert to a webhook), their slots are skipped, a fixed connector version is
//! uploaded to the running daemon and re-drives them to exactly the simulator's data;
//! versions swap under load without failing a run; broken candidates are refused with
//! their reason; a version asking for more waits for approval; rollback; the watched
//! directory loads only complete files. SQLite and PostgreSQL unless said.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode as AxumStatus;
use axum::routing::post;
use chrono::{TimeZone, Utc};
use passerelle_tests as common;

use common::daemon::{
    clock_from, daemon_config, daemon_env, output_of, run_ids, runs_in_order, sync_load,
    wait_for_runs, TOKEN,
};
use common::{component, databases, renamed_start_date, sim_config, variant};
use passerelle::model::connector::Outcome;
use passerelle::model::run::{Mode, Run, Status, Trigger};
use passerelle::serve::ServeOptions;
use passerelle::service::plugins::Candidate;
use passerelle::service::ServiceError;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const FIXED: &str = "doctolib-0.2.0-start-date-v2.wasm";

/// A webhook receiver that refuses the first delivery (500) and records the bodies.
async fn webhook() -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let calls = Arc::new(Mutex::new(0usize));
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/hook/secret-path",
        post(move |axum::Json(body): axum::Json<Value>| {
            let (seen, calls) = (s.clone(), calls.clone());
            async move {
                let mut n = calls.lock().unwrap();
                *n += 1;
                if *n == 1 {
                    return AxumStatus::INTERNAL_SERVER_ERROR;
                }
                seen.lock().unwrap().push(body);
                AxumStatus::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook/secret-path"), seen)
}

/// Polls until `done` holds for the sync log (at most a minute).
async fn wait_until(
    store: &passerelle::store::Store,
    what: &str,
    done: impl Fn(&[Run]) -> bool,
) -> Vec<Run> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let runs = runs_in_order(store).await;
        if done(&runs) {
            return runs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {:?}",
            runs.iter()
                .map(|r| (
                    r.id,
                    &r.account_id,
                    r.trigger,
                    r.status,
                    &r.connector_version
                ))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn drift_pauses_and_a_new_version_redrives_to_the_truth_without_restart() {
    for db in databases().await {
        let (hook, delivered) = webhook().await;
        let mut config = daemon_config();
        config.schedule.spread_secs = 0;
        config.alerts.webhook_url = Some(hook);
        // New versions are replayed on the drifted runs' cassettes before they activate.
        config.plugins.shadow_gate = vec!["doctolib".into()];
        let sim = common::sim_env_with(&db, sim_config(2, 30), config).await;
        let accounts: Vec<String> = sim.sim.world().accounts().map(|a| a.id.clone()).collect();
        let store = sim.env.app.store.clone();

        // The platform renames a field of its appointments API: every run drifts.
        sim.sim.set_faults("doctolib", renamed_start_date());
        for id in &accounts {
            let run = sim.sync(id, Mode::Full).await;
            assert_eq!(run.status, Status::Drift, "{run:?}");
            let drift = run.drift.clone().expect("a drift report");
            assert_eq!(drift.endpoint, "GET /api/v1/profiles/{id}/appointments");
            assert_eq!(drift.path, "$.appointments[0].start_date");
            assert_eq!(drift.found, "missing");
            let pause = store.pause(id).await.unwrap().expect("paused");
            assert_eq!((pause.run_id, pause.version.as_str()), (run.id, "0.1.0"));
        }

        // The daemon starts a second before the 03:00 slot: paused accounts are skipped.
        let slot = Utc.with_ymd_and_hms(2026, 6, 10, 1, 0, 0).unwrap();
        let app = passerelle::Passerelle::open(sim.env.dir.path(), sim.env.app.config.clone())
            .await
            .unwrap();
        let running = passerelle::serve::start(
            app,
            ServeOptions {
                clock: clock_from(slot - chrono::Duration::seconds(1)),
                write_address_file: false,
            },
        )
        .await
        .unwrap();
        let d = common::daemon::DaemonEnv::attach(running, sim);
        let skipped = wait_until(&store, "paused slots", |runs| {
            runs.iter().filter(|r| r.status == Status::Skipped).count() == accounts.len()
        })
        .await;
        for r in skipped.iter().filter(|r| r.status == Status::Skipped) {
            assert_eq!(
                r.error_kind.map(passerelle::model::run::ErrorKind::as_str),
                Some("paused"),
                "{r:?}"
            );
            assert!(
                r.error_detail
                    .as_ref()
                    .unwrap()
                    .contains("paused for drift"),
                "{r:?}"
            );
        }
        let paused = d.call(Method::GET, "/v1/paused", None).await;
        assert_eq!(paused.status, StatusCode::OK);
        assert_eq!(paused.json().as_array().unwrap().len(), accounts.len());
        assert_eq!(
            paused.json()[0]["drift"]["path"],
            "$.appointments[0].start_date"
        );
        let metrics = d.call(Method::GET, "/metrics", None).await.text;
        assert!(
            metrics.contains(&format!(
                "passerelle_paused_accounts{{connector=\"doctolib\"}} {}",
                accounts.len()
            )),
            "{metrics}"
        );

        // Manual resume while the platform still drifts: re-driven, drifts, paused again.
        let resumed = d
            .call(
                Method::POST,
                &format!("/v1/accounts/{}/resume", accounts[0]),
                None,
            )
            .await;
        assert_eq!(resumed.status, StatusCode::ACCEPTED, "{}", resumed.text);
        let run_id = resumed.json()["run_id"].as_i64().unwrap();
        let again = d.wait_for(&[run_id]).await;
        assert_eq!(
            (again[0].trigger, again[0].status),
            (Trigger::Redrive, Status::Drift)
        );
        assert_eq!(
            store.pause(&accounts[0]).await.unwrap().unwrap().run_id,
            run_id
        );
        let not_paused = d
            .call(Method::POST, "/v1/accounts/nobody/resume", None)
            .await;
        assert_eq!(not_paused.status, StatusCode::NOT_FOUND);

        // The author ships 0.2.0, which reads the renamed field; upload it, no restart.
        let bytes = std::fs::read(variant(FIXED)).unwrap();
        let installed = d.upload("/v1/connectors/doctolib/versions", bytes).await;
        assert_eq!(installed.status, StatusCode::CREATED, "{}", installed.text);
        assert_eq!(installed.json()["outcome"], "activated");
        assert_eq!(installed.json()["previous"], "0.1.0");
        let fixed_sha = installed.json()["sha256"].as_str().unwrap().to_string();
        // It passed the shadow gate: each drifted run's cassette is read by it.
        let shadow = d
            .call(
                Method::POST,
                "/v1/connectors/doctolib/shadow",
                Some(json!({"version": "0.1.0"})),
            )
            .await;
        assert_eq!(shadow.status, StatusCode::OK, "{}", shadow.text);
        let cases = shadow.json()["cases"].as_array().unwrap().clone();
        assert!(cases.len() >= accounts.len(), "{}", shadow.text);
        assert!(
            cases.iter().all(|c| c["verdict"] == "still-drifting"),
            "the version that drifted still drifts on them: {}",
            shadow.text
        );
        // Each account re-driven to success on 0.2.0 (an account whose pause was read
        // just before a re-drive lifted it may get a second, harmless one).
        let all = wait_until(&store, "re-drives", |runs| {
            runs.iter()
                .filter(|r| r.trigger == Trigger::Redrive && r.connector_version == "0.2.0")
                .filter(|r| r.status == Status::Succeeded)
                .map(|r| r.account_id.as_str())
                .collect::<std::collections::HashSet<_>>()
                .len()
                == accounts.len()
        })
        .await;
        for r in all.iter().filter(|r| r.connector_version == "0.2.0") {
            assert_eq!(r.connector_sha256, fixed_sha);
            assert_eq!((r.trigger, r.mode), (Trigger::Redrive, Mode::Incremental));
        }
        assert!(all
            .iter()
            .filter(|r| r.status == Status::Drift)
            .all(|r| r.connector_version == "0.1.0"));
        assert!(store.pauses(None).await.unwrap().is_empty());
        let paused = d.call(Method::GET, "/v1/paused", None).await;
        assert_eq!(paused.json(), json!([]));

        // Alerts: delivered after a refused first attempt, without patient data.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while delivered.lock().unwrap().len() < accounts.len() + 1 {
            assert!(tokio::time::Instant::now() < deadline, "webhook deliveries");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let bodies = delivered.lock().unwrap().clone();
        assert!(bodies.iter().all(|b| b["event"] == "connector.drift"));
        assert_eq!(bodies[0]["drift"]["path"], "$.appointments[0].start_date");
        let text = serde_json::to_string(&bodies).unwrap();
        let (_, sim) = d.shutdown().await;
        let world = sim.sim.world().clone();
        common::assert_no_patient_value(&text, &world, "a webhook");
        for id in &accounts {
            sim.assert_matches_truth(id, db.name).await;
        }
    }
}

#[tokio::test]
async fn versions_swap_under_load_without_failing_a_run() {
    let db = &databases().await[0];
    let mut config = daemon_config();
    config.daemon.manual_min_interval_secs = 0;
    let d = daemon_env(db, sim_config(4, 20), config, ServeOptions::default()).await;
    let app = d.running.daemon.app.clone();
    let fixed = app
        .install(Candidate::from_file(&variant(FIXED), "test").unwrap())
        .await
        .unwrap();
    assert_eq!(fixed.outcome, Outcome::Activated);
    let practices = d.practice_ids();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = sync_load(d.base.clone(), practices, stop.clone());
    let mut activation_ms = Vec::new();
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let started = std::time::Instant::now();
        let a = app.rollback("doctolib", None).await.unwrap();
        activation_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_ne!(a.from.as_deref(), Some(a.to.as_str()));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut ids = load.await.unwrap();
    ids.sort();
    ids.dedup();
    let runs = wait_for_runs(&d.sim.env.app.store, &ids).await;
    let versions = app
        .store
        .connector_versions(Some("doctolib"))
        .await
        .unwrap();
    let sha_of = |v: &str| {
        versions
            .iter()
            .find(|x| x.version == v)
            .unwrap()
            .sha256
            .clone()
    };
    let mut on = std::collections::BTreeMap::<String, usize>::new();
    for r in &runs {
        assert_eq!(r.status, Status::Succeeded, "{r:?}");
        assert_eq!(r.connector_sha256, sha_of(&r.connector_version), "{r:?}");
        *on.entry(r.connector_version.clone()).or_default() += 1;
    }
    assert!(runs.len() >= 20, "{} runs under load", runs.len());
    assert_eq!(on.len(), 2, "runs on both versions: {on:?}");
    eprintln!(
        "swap under load: {} runs {on:?}, 12 activations, ms {activation_ms:.1?}",
        runs.len()
    );
    d.shutdown().await;
}

/// A component with an extra custom section: same code and version, new content.
fn with_custom_section(mut bytes: Vec<u8>) -> Vec<u8> {
    let name = b"passerelle-test";
    let payload = b"rebuilt";
    bytes.push(0);
    bytes.push((1 + name.len() + payload.len()) as u8);
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(payload);
    bytes
}

#[tokio::test]
async fn broken_candidates_are_refused_and_the_active_version_keeps_serving() {
    for db in databases().await {
        let e = common::env(&db, passerelle::service::config::Config::default())
            .await
            .with_testing()
            .await;
        e.account("a1", &[("scenario", "nop")]).await;
        let app = &e.app;
        let testing = std::fs::read(component("testing")).unwrap();
        let cases: Vec<(&str, Vec<u8>, Option<&str>, &str)> = vec![
            (
                "not-a-component",
                b"definitely not wasm".to_vec(),
                None,
                "not a valid WebAssembly component",
            ),
            (
                "not-a-component",
                testing[..testing.len() / 2].to_vec(),
                None,
                "not a valid WebAssembly component",
            ),
            (
                "wrong-world",
                wat_component("(component)"),
                None,
                "does not implement the passerelle:connector@0.1.3 world: no export `check`",
            ),
            (
                "unsupported-contract",
                wat_component(
                    r#"(component (import "passerelle:connector/log@0.9.0" (instance)))"#,
                ),
                None,
                "built against passerelle:connector@0.9.0",
            ),
            (
                "describe-failed",
                std::fs::read(variant("testing-describe-panic.wasm")).unwrap(),
                None,
                "describe() failed (trap)",
            ),
            (
                "duplicate-version",
                with_custom_section(testing.clone()),
                None,
                "testing 0.1.0 is already installed with different content",
            ),
            (
                "name-mismatch",
                std::fs::read(variant("testing-0.2.0-escalate.wasm")).unwrap(),
                Some("doctolib"),
                "expected connector `doctolib`",
            ),
        ];
        for (kind, bytes, expected_name, message) in &cases {
            let err = app
                .install(Candidate {
                    bytes: bytes.clone(),
                    source: "test".into(),
                    expected_name: expected_name.map(str::to_string),
                })
                .await
                .unwrap_err();
            let ServiceError::Rejected(rejected) = &err else {
                panic!("{kind}: not a rejection: {err:#}")
            };
            assert_eq!(rejected.kind, *kind, "{err:#}");
            assert!(
                rejected.reason.contains(message),
                "{kind}: {}",
                rejected.reason
            );
        }
        let recorded = app.store.rejections(100).await.unwrap();
        assert_eq!(recorded.len(), cases.len());
        assert_eq!(recorded[0].kind, "name-mismatch");
        let active = app
            .store
            .active_connector("testing")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(active.version, "0.1.0");
        assert_eq!(
            app.store
                .connector_versions(Some("testing"))
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            e.sync("a1", Mode::Incremental).await.status,
            Status::Succeeded
        );

        // Not newer than the active version.
        let e2 = common::env(&db, passerelle::service::config::Config::default()).await;
        e2.app.install_plugin(&variant(FIXED)).await.unwrap();
        let err = e2
            .app
            .install_plugin(&component("doctolib"))
            .await
            .unwrap_err();
        let ServiceError::Rejected(r) = &err else {
            panic!("not a rejection: {err:#}")
        };
        assert_eq!(r.kind, "not-newer", "{err:#}");
        assert!(r.reason.contains("plugins rollback"), "{}", r.reason);
    }
}

fn wat_component(text: &str) -> Vec<u8> {
    wat::parse_str(text).expect("valid component text")
}

/// A first install whose allowed hosts need consent (plain http, IP addresses) waits
/// for approval unless the operator trusted them in the configuration (before, a new
/// connector name activated with any allowlist).
#[tokio::test]
async fn a_first_install_needing_consent_waits_for_approval() {
    use passerelle::service::config::Config;
    let dir = tempfile::tempdir().unwrap();
    let app = passerelle::Passerelle::open(dir.path(), Config::default())
        .await
        .unwrap();
    let installed = app.install_plugin(&component("testing")).await.unwrap();
    assert_eq!(installed.outcome, Outcome::PendingApproval);
    let e = installed.escalation.expect("an escalation");
    assert_eq!(
        e.risky_hosts,
        vec![
            "http://127.0.0.1:* (plain http)".to_string(),
            "http://localhost:* (plain http)".to_string()
        ]
    );
    assert!(app
        .store
        .active_connector("testing")
        .await
        .unwrap()
        .is_none());
    app.approve("testing", "0.1.0").await.unwrap();
    assert!(app
        .store
        .active_connector("testing")
        .await
        .unwrap()
        .is_some());

    // Trusted in the configuration: activated at once.
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.plugins.trusted_hosts = common::TESTING_HOSTS.map(String::from).to_vec();
    let app = passerelle::Passerelle::open(dir.path(), config)
        .await
        .unwrap();
    let installed = app.install_plugin(&component("testing")).await.unwrap();
    assert_eq!(installed.outcome, Outcome::Activated, "{installed:?}");
}

/// Accounts (with their settings and secrets) configured before their connector exists
/// are not simply inherited by whoever installs a component of that name: the first
/// install waits for approval, showing everything it asks for.
#[tokio::test]
async fn a_first_install_that_accounts_wait_for_needs_approval() {
    let e = common::env(
        &databases().await[0],
        passerelle::service::config::Config::default(),
    )
    .await;
    e.app
        .store
        .add_practice("p1", "Cabinet", "Europe/Paris")
        .await
        .unwrap();
    e.account("early", &[("scenario", "nop")]).await;
    e.app
        .store
        .set_secret("early", "api-token", "tok-waiting-for-its-connector")
        .await
        .unwrap();
    let installed = e.app.install_plugin(&component("testing")).await.unwrap();
    assert_eq!(installed.outcome, Outcome::PendingApproval);
    let esc = installed.escalation.expect("an escalation");
    assert_eq!(esc.accounts_waiting, 1);
    assert_eq!(esc.new_secrets, vec!["api-token", "platform-key"]);
    assert!(esc.risky_hosts.is_empty(), "trusted by the test config");
    assert!(e
        .app
        .store
        .active_connector("testing")
        .await
        .unwrap()
        .is_none());
    e.app.approve("testing", "0.1.0").await.unwrap();
    assert_eq!(
        e.sync("early", Mode::Incremental).await.status,
        Status::Succeeded
    );
}

#[tokio::test]
async fn a_version_asking_for_more_waits_for_approval_and_rollback_works() {
    let db = &databases().await[0];
    let d = daemon_env(
        db,
        sim_config(1, 5),
        daemon_config(),
        ServeOptions::default(),
    )
    .await;
    let app = d.running.daemon.app.clone();
    app.install_plugin(&component("testing")).await.unwrap();

    // Through the API: installed, not active, with what it asks for.
    let bytes = std::fs::read(variant("testing-0.2.0-escalate.wasm")).unwrap();
    let up = d
        .upload("/v1/connectors/testing/versions", bytes.clone())
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);
    let body = up.json();
    assert_eq!(body["outcome"], "pending-approval");
    assert_eq!(
        body["escalation"]["new_hosts"],
        json!(["https://extra.testing.example"])
    );
    assert_eq!(body["escalation"]["new_secrets"], json!(["extra-key"]));
    // A higher rate limit is gated too (before, it activated with any rate limit).
    assert_eq!(
        body["escalation"]["rate_limit"],
        json!({"from": {"requests_per_second": 1000, "burst": 1000},
               "to": {"requests_per_second": 2000, "burst": 1000}})
    );
    let active = app
        .store
        .active_connector("testing")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(active.version, "0.1.0");
    let again = d.upload("/v1/connectors/testing/versions", bytes).await;
    assert_eq!(
        (again.status, again.json()["outcome"].clone()),
        (StatusCode::OK, json!("already-installed"))
    );
    let list = d.call(Method::GET, "/v1/connectors", None).await.json();
    let pending = list
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "testing" && v["version"] == "0.2.0")
        .unwrap()
        .clone();
    assert_eq!(pending["active"], false);
    assert_eq!(
        pending["pending_approval"]["new_secrets"],
        json!(["extra-key"])
    );

    // A refused upload answers 422 with the kind as the code.
    let bad = d
        .upload("/v1/connectors/testing/versions", b"nope".to_vec())
        .await;
    assert_eq!(
        (bad.status, bad.code()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "not-a-component".to_string()
        )
    );
    let rejections = d
        .call(Method::GET, "/v1/connectors/rejections", None)
        .await
        .json();
    assert_eq!(rejections[0]["kind"], "not-a-component");
    assert_eq!(rejections[0]["source"], "api");

    // Rollback has nothing to go back to yet; approve activates.
    let none = d
        .call(
            Method::POST,
            "/v1/connectors/testing/rollback",
            Some(json!({})),
        )
        .await;
    assert_eq!(none.status, StatusCode::CONFLICT, "{}", none.text);
    let approved = d
        .call(
            Method::POST,
            "/v1/connectors/testing/approve",
            Some(json!({"version": "0.2.0"})),
        )
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.text);
    assert_eq!(
        (
            approved.json()["from"].clone(),
            approved.json()["to"].clone()
        ),
        (json!("0.1.0"), json!("0.2.0"))
    );
    let twice = d
        .call(
            Method::POST,
            "/v1/connectors/testing/approve",
            Some(json!({"version": "0.2.0"})),
        )
        .await;
    assert_eq!(twice.status, StatusCode::CONFLICT);

    // Runs record the version they ran.
    let store = &d.sim.env.app.store;
    let p = d.sim.sim.world().practices[0].id.clone();
    store
        .add_account(
            "t1",
            &p,
            "testing",
            None,
            &[("scenario".to_string(), "nop".to_string())].into(),
        )
        .await
        .unwrap();
    let sync = |account: &'static str| {
        let (d, p) = (&d, p.clone());
        async move {
            let a = d
                .call(
                    Method::POST,
                    &format!("/v1/practices/{p}/sync"),
                    Some(json!({"account": account})),
                )
                .await;
            d.wait_for(&run_ids(&a)).await.remove(0)
        }
    };
    let run = sync("t1").await;
    assert_eq!(
        (run.status, run.connector_version.as_str()),
        (Status::Succeeded, "0.2.0")
    );

    // Rollback to the previous version, then forward again by naming it.
    let rollback = |connector: &'static str, body: Value| {
        let d = &d;
        async move {
            d.call(
                Method::POST,
                &format!("/v1/connectors/{connector}/rollback"),
                Some(body),
            )
            .await
        }
    };
    let back = rollback("testing", json!({})).await;
    assert_eq!(back.json()["to"], "0.1.0", "{}", back.text);
    let forward = rollback("testing", json!({"version": "0.2.0"})).await;
    assert_eq!(forward.json()["to"], "0.2.0", "{}", forward.text);
    let unknown = rollback("testing", json!({"version": "9.9.9"})).await;
    assert_eq!(unknown.status, StatusCode::CONFLICT);
    let missing = rollback("nope", json!({})).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // The command line against the daemon says the same.
    let cli = |args: &[&str]| {
        let mut cmd = std::process::Command::new(common::daemon::binary());
        cmd.args(["--server", &d.base, "--token", TOKEN]).args(args);
        output_of(cmd)
    };
    let (ok, text) = cli(&["plugins", "list"]).await;
    assert!(ok, "{text}");
    assert!(text.contains("* testing      0.2.0"), "{text}");
    assert!(text.contains("not-a-component"), "{text}");
    let (ok, text) = cli(&["plugins", "rollback", "testing"]).await;
    assert!(
        ok && text.contains("testing 0.1.0 is active (was 0.2.0)"),
        "{text}"
    );
    let junk = d.sim.env.dir.path().join("junk.wasm");
    std::fs::write(&junk, b"junk").unwrap();
    let (ok, text) = cli(&["plugins", "install", junk.to_str().unwrap()]).await;
    assert!(
        !ok && text.contains("not a valid WebAssembly component"),
        "{text}"
    );
    let (ok, text) = cli(&["accounts", "paused"]).await;
    assert!(ok && text.contains("no account is paused"), "{text}");

    // `plugins validate` runs the same checks locally, and changes nothing.
    let rejections = store.rejections(100).await.unwrap().len();
    let dir = d.sim.env.dir.path().to_path_buf();
    let validate = |file: std::path::PathBuf| {
        let mut cmd = std::process::Command::new(common::daemon::binary());
        cmd.arg("--data-dir")
            .arg(&dir)
            .args(["plugins", "validate"])
            .arg(file);
        output_of(cmd)
    };
    let (ok, text) = validate(variant(FIXED)).await;
    assert!(
        ok && text.contains("doctolib 0.2.0") && text.contains("activate it in place of 0.1.0"),
        "{text}"
    );
    let (ok, text) = validate(variant("testing-0.2.0-escalate.wasm")).await;
    assert!(ok && text.contains("is installed already"), "{text}");
    let (ok, text) = validate(junk.clone()).await;
    assert!(!ok && text.contains("invalid (not-a-component)"), "{text}");
    assert_eq!(store.rejections(100).await.unwrap().len(), rejections);
    assert_eq!(
        store
            .connector_versions(Some("doctolib"))
            .await
            .unwrap()
            .len(),
        1
    );
    d.shutdown().await;
}

/// Waits until `n` refused candidates are recorded.
async fn wait_for_rejections(store: &passerelle::store::Store, n: usize, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while store.rejections(100).await.unwrap().len() < n {
        assert!(tokio::time::Instant::now() < deadline, "{what}: timed out");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_watched_directory_loads_only_complete_files() {
    let db = &databases().await[0];
    let watched = tempfile::tempdir().unwrap();
    let mut config = daemon_config();
    config.plugins.watch_dir = Some(watched.path().to_path_buf());
    config.plugins.settle_ms = 300;
    let d = daemon_env(db, sim_config(1, 5), config, ServeOptions::default()).await;
    let store = d.sim.env.app.store.clone();
    let fixed = std::fs::read(variant(FIXED)).unwrap();
    let active = |store: passerelle::store::Store| async move {
        store
            .active_connector("doctolib")
            .await
            .unwrap()
            .unwrap()
            .version
    };

    // Half a file, left alone longer than the settle time: considered and refused, not
    // loaded. The writer then finishes: the complete file is installed and activated.
    std::fs::create_dir_all(watched.path().join("doctolib")).unwrap();
    let path = watched.path().join("doctolib/next.wasm");
    std::fs::write(&path, &fixed[..fixed.len() / 2]).unwrap();
    wait_for_rejections(&store, 1, "the half file considered").await;
    assert_eq!(active(store.clone()).await, "0.1.0");
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&fixed[fixed.len() / 2..]).unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while active(store.clone()).await != "0.2.0" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the complete file was not installed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let versions = store.connector_versions(Some("doctolib")).await.unwrap();
    assert_eq!(versions.len(), 2, "only complete files become versions");
    assert_eq!(
        versions.iter().find(|v| v.active).unwrap().sha256,
        passerelle::model::sha256_hex(&fixed)
    );
    let refused_partial = store.rejections(10).await.unwrap();
    assert!(refused_partial.iter().all(|r| r.kind == "not-a-component"));

    // Rapid successive writes (chunks well inside the settle time): one consideration,
    // of the complete file, no refusal.
    let before = store.rejections(100).await.unwrap().len();
    let testing = std::fs::read(component("testing")).unwrap();
    let path = watched.path().join("testing.wasm");
    let mut f = std::fs::File::create(&path).unwrap();
    for chunk in testing.chunks(testing.len() / 8 + 1) {
        use std::io::Write;
        f.write_all(chunk).unwrap();
        f.flush().unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(f);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while store
        .connector_versions(Some("testing"))
        .await
        .unwrap()
        .is_empty()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the chunked file was not installed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A file written under a hidden name and renamed: the rename is the drop. Until
    // then it is ignored: a junk file dropped after it is considered (and refused)
    // while the hidden one still is not.
    let hidden = watched.path().join(".escalate.wasm.part");
    std::fs::write(
        &hidden,
        std::fs::read(variant("testing-0.2.0-escalate.wasm")).unwrap(),
    )
    .unwrap();
    std::fs::write(watched.path().join("zz-after-the-hidden-one.wasm"), b"junk").unwrap();
    wait_for_rejections(
        &store,
        before + 1,
        "the file after the hidden one considered",
    )
    .await;
    assert_eq!(
        store
            .connector_versions(Some("testing"))
            .await
            .unwrap()
            .len(),
        1,
        "hidden files are ignored"
    );
    std::fs::rename(&hidden, watched.path().join("escalate.wasm")).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let v = store.connector_versions(Some("testing")).await.unwrap();
        if v.len() == 2 {
            assert!(v.iter().any(|x| x.version == "0.1.0" && x.active));
            assert!(v
                .iter()
                .any(|x| x.version == "0.2.0" && x.pending_approval.is_some()));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "watched files not installed: {v:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        store.rejections(100).await.unwrap().len(),
        before + 1,
        "no partial file refused (the junk file only)"
    );
    d.shutdown().await;
}

#[tokio::test]
async fn quarantine_sets_unreadable_items_aside_and_a_new_version_resolves_them() {
    for db in databases().await {
        let mut config = daemon_config();
        config.plugins.drift_policy.insert(
            "doctolib".into(),
            passerelle::service::config::DriftPolicy::Quarantine,
        );
        let sim = common::sim_env_with(&db, sim_config(1, 30), config).await;
        let account = sim.sim.world().accounts().next().unwrap().id.clone();
        let truth = sim.truth(&account).len();
        let store = sim.env.app.store.clone();

        // Every appointment of the platform's answer has the renamed field: under
        // `quarantine` the run goes on, stores the slots, and sets the items aside.
        sim.sim.set_faults("doctolib", renamed_start_date());
        let run = sim.sync(&account, Mode::Full).await;
        assert_eq!(run.status, Status::Succeeded, "{run:?}");
        assert_eq!(run.counts.quarantined as usize, truth);
        assert_eq!(run.counts.appointments_added, 0);
        assert!(run.counts.slots_written > 0);
        assert!(store.pause(&account).await.unwrap().is_none(), "not paused");
        let filter = |with_items| passerelle::model::quarantine::QuarantineFilter {
            account_id: Some(account.clone()),
            with_items,
            limit: Some(1000),
            ..Default::default()
        };
        let items = store.quarantined(&filter(false)).await.unwrap();
        assert_eq!(items.len(), truth);
        assert!(items.iter().all(|q| q.item.is_none()));
        assert!(items
            .iter()
            .any(|q| q.drift.path == "$.appointments[0].start_date" && q.drift.found == "missing"));
        let with = store.quarantined(&filter(true)).await.unwrap();
        assert!(with
            .iter()
            .all(|q| q.item.as_deref().unwrap().contains("start_date_v2")));
        // The sizes come from the database without reading the items.
        for (bare, full) in items.iter().zip(&with) {
            assert_eq!(bare.id, full.id);
            assert_eq!(bare.item_bytes, full.item.as_ref().unwrap().len() as i64);
        }

        // Seen again by the same version: updated, not duplicated.
        let again = sim.sync(&account, Mode::Full).await;
        assert_eq!(again.counts.quarantined as usize, truth);
        let items = store.quarantined(&filter(false)).await.unwrap();
        assert_eq!(items.len(), truth);
        assert!(items.iter().all(|q| q.times_seen == 2));

        // The daemon, the API, and the fixed version: a full re-read resolves them all.
        let app = passerelle::Passerelle::open(sim.env.dir.path(), sim.env.app.config.clone())
            .await
            .unwrap();
        let running = passerelle::serve::start(app, ServeOptions::default())
            .await
            .unwrap();
        let d = common::daemon::DaemonEnv::attach(running, sim);
        let listed = d
            .call(
                Method::GET,
                &format!("/v1/quarantine?account={account}"),
                None,
            )
            .await;
        assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
        assert_eq!(listed.json().as_array().unwrap().len(), truth);
        assert!(listed.json()[0]["item"].is_null());
        assert!(listed.json()[0]["item_sha256"].is_string());
        // Below `patients:read`, not even the item's hash (it would confirm a guess).
        let reader = passerelle_tests::token(&d.sim.env.app, "reader", &["read"]).await;
        let as_reader = d
            .call_as(
                Some(&reader),
                Method::GET,
                &format!("/v1/quarantine?account={account}"),
                None,
            )
            .await;
        assert_eq!(as_reader.status, StatusCode::OK, "{}", as_reader.text);
        let shown = as_reader.json();
        assert_eq!(shown.as_array().unwrap().len(), truth);
        assert!(shown
            .as_array()
            .unwrap()
            .iter()
            .all(|q| q["item_sha256"].is_null()
                && q["item"].is_null()
                && q["item_bytes"].as_i64() > Some(0)));
        let bytes = std::fs::read(variant(FIXED)).unwrap();
        let up = d.upload("/v1/connectors/doctolib/versions", bytes).await;
        assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);
        let runs = wait_until(&store, "the full re-read", |runs| {
            runs.iter().any(|r| {
                r.trigger == Trigger::Redrive
                    && r.mode == Mode::Full
                    && r.connector_version == "0.2.0"
                    && r.status == Status::Succeeded
            })
        })
        .await;
        let redrive = runs.iter().find(|r| r.trigger == Trigger::Redrive).unwrap();
        assert_eq!(redrive.counts.quarantined, 0);
        assert!(store.quarantined(&filter(false)).await.unwrap().is_empty());
        let (_, sim) = d.shutdown().await;
        sim.assert_matches_truth(&account, db.name).await;
    }
}

#[tokio::test]
async fn components_built_against_contracts_0_1_0_to_0_1_2_still_run() {
    // Fresh databases for each file: every build says version 0.1.0.
    for file in [
        "testing-contract-0.1.0.wasm",
        "testing-contract-0.1.1.wasm",
        "testing-contract-0.1.2.wasm",
    ] {
        for db in databases().await {
            ran_on(&db, file).await;
        }
    }
}

async fn ran_on(db: &passerelle_tests::Db, file: &str) {
    {
        let e = common::env(db, passerelle::service::config::Config::default()).await;
        let installed = e.app.install_plugin(&variant(file)).await.unwrap();
        assert_eq!(installed.outcome, Outcome::Activated, "{file}");
        e.app
            .store
            .add_practice("p1", "Practice", "Europe/Paris")
            .await
            .unwrap();
        e.account("a1", &[("scenario", "emit"), ("count", "5")])
            .await;
        let run = e.sync("a1", Mode::Full).await;
        assert_eq!(run.status, Status::Succeeded, "{run:?}");
        assert_eq!(run.counts.appointments_added, 5);
    }
}

/// Successful `redrive` runs of a practice on a version.
fn redriven_on(runs: &[Run], practice: &str, version: &str) -> usize {
    runs.iter()
        .filter(|r| r.practice_id == practice && r.trigger == Trigger::Redrive)
        .filter(|r| r.connector_version == version && r.status == Status::Succeeded)
        .count()
}

#[tokio::test]
async fn a_canary_runs_for_its_practices_then_is_promoted() {
    for db in databases().await {
        let d = daemon_env(
            &db,
            sim_config(2, 10),
            daemon_config(),
            ServeOptions::default(),
        )
        .await;
        let app = d.running.daemon.app.clone();
        app.install_plugin(&variant(FIXED)).await.unwrap();
        app.rollback("doctolib", Some("0.1.0")).await.unwrap();
        let world = d.sim.sim.world().clone();
        let (a, b) = (world.practices[0].id.clone(), world.practices[1].id.clone());
        let accounts_of = |p: &str| world.accounts().filter(|x| x.practice_id == p).count();
        let store = d.sim.env.app.store.clone();
        let sync = |practice: String| {
            let d = &d;
            async move {
                let answer = d
                    .call(
                        Method::POST,
                        &format!("/v1/practices/{practice}/sync"),
                        Some(json!({})),
                    )
                    .await;
                assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
                d.wait_for(&run_ids(&answer)).await
            }
        };

        // The platform drifts; practice A's accounts pause on the active 0.1.0.
        d.sim.sim.set_faults("doctolib", renamed_start_date());
        for r in sync(a.clone()).await {
            assert_eq!(
                (r.status, r.connector_version.as_str()),
                (Status::Drift, "0.1.0")
            );
        }

        // A canary of 0.2.0 for A only: A's paused accounts are re-driven on it.
        let started = d
            .call(
                Method::POST,
                "/v1/connectors/doctolib/canary",
                Some(json!({"version": "0.2.0", "practices": [a]})),
            )
            .await;
        assert_eq!(started.status, StatusCode::OK, "{}", started.text);
        wait_until(&store, "A re-driven on the canary", |runs| {
            redriven_on(runs, &a, "0.2.0") == accounts_of(&a)
        })
        .await;
        let listed = d.call(Method::GET, "/v1/connectors", None).await.json();
        let canary = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["version"] == "0.2.0")
            .unwrap()
            .clone();
        assert_eq!(
            (canary["active"].clone(), canary["canary"].clone()),
            (json!(false), json!([a]))
        );

        // B is not in the canary: it still runs the active 0.1.0 (and drifts).
        for r in sync(b.clone()).await {
            assert_eq!(
                (r.status, r.connector_version.as_str()),
                (Status::Drift, "0.1.0")
            );
        }

        // Promotion: 0.2.0 for all, B re-driven on it, the canary gone.
        let promoted = d
            .call(Method::POST, "/v1/connectors/doctolib/promote", None)
            .await;
        assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.text);
        assert_eq!(promoted.json()["to"], "0.2.0");
        wait_until(&store, "B re-driven after promotion", |runs| {
            redriven_on(runs, &b, "0.2.0") == accounts_of(&b)
        })
        .await;
        assert!(store.canaries().await.unwrap().is_empty());
        let again = d
            .call(Method::POST, "/v1/connectors/doctolib/promote", None)
            .await;
        assert_eq!(again.status, StatusCode::CONFLICT);

        // A canary can also be stopped: its practice goes back to the active version.
        app.start_canary("doctolib", "0.1.0", std::slice::from_ref(&b))
            .await
            .unwrap();
        let on = store.connector_for("doctolib", &b).await.unwrap().unwrap();
        assert_eq!(on.version, "0.1.0");
        let stopped = d
            .call(Method::DELETE, "/v1/connectors/doctolib/canary", None)
            .await;
        assert_eq!(stopped.status, StatusCode::NO_CONTENT);
        let on = store.connector_for("doctolib", &b).await.unwrap().unwrap();
        assert_eq!(on.version, "0.2.0");
        let (_, sim) = d.shutdown().await;
        for account in world.accounts() {
            sim.assert_matches_truth(&account.id, db.name).await;
        }
    }
}

/// A re-drive is queued only while its account still needs it, checked in the insert:
/// the daemon reads the pauses, then queues; a run that lifted a pause in between (the
/// first re-drive, done) must not be followed by a second one.
#[tokio::test]
async fn a_redrive_is_queued_only_while_the_account_needs_it() {
    use passerelle::store::queue::{Outstanding, QueueRequest, Queued};
    for db in databases().await {
        let sim = common::sim_env_with(&db, sim_config(1, 10), daemon_config()).await;
        let world = sim.sim.world().clone();
        let account = world.accounts().next().unwrap().clone();
        let store = sim.env.app.store.clone();
        let version = store.active_connector("doctolib").await.unwrap().unwrap();
        let redrive = |only_while| {
            let (store, account, version) = (store.clone(), account.clone(), version.clone());
            async move {
                let run = passerelle::model::run::NewRun {
                    practice_id: &account.practice_id,
                    account_id: &account.id,
                    connector: "doctolib",
                    connector_version: &version.version,
                    connector_sha256: &version.sha256,
                    trigger: Trigger::Redrive,
                    mode: Mode::Incremental,
                    cursor_before: None,
                };
                let options = QueueRequest {
                    attempt: 1,
                    not_before: None,
                    slots: &[],
                    daemon: "test",
                    manual_since: None,
                    only_while: Some(only_while),
                };
                let mut out = store.queue_runs(&[run], &options).await.unwrap();
                out.runs.pop().unwrap()
            }
        };

        sim.sim.set_faults("doctolib", renamed_start_date());
        assert_eq!(
            sim.sync(&account.id, Mode::Full).await.status,
            Status::Drift
        );
        let ran = runs_in_order(&store).await.len();
        // Lifted (as the re-drive's success lifts it) before the insert: nothing queued.
        assert!(store.resume_account(&account.id).await.unwrap());
        assert_eq!(redrive(Outstanding::DriftPause).await, Queued::Settled);
        // No quarantined items either.
        assert_eq!(redrive(Outstanding::Quarantine).await, Queued::Settled);
        assert_eq!(runs_in_order(&store).await.len(), ran, "{}", db.name);

        // Paused again: queued once, and a second request answers with that run.
        assert_eq!(
            sim.sync(&account.id, Mode::Full).await.status,
            Status::Drift
        );
        let Queued::New(id) = redrive(Outstanding::DriftPause).await else {
            panic!("{}: a paused account's re-drive was not queued", db.name)
        };
        assert_eq!(
            redrive(Outstanding::DriftPause).await,
            Queued::Coalesced(id)
        );
    }
}
