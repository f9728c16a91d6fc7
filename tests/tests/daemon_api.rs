//! The daemon's admin API over real HTTP, with the daemon in-process against the
//! simulator: authentication, practices and accounts, write-only secrets, "Sync now"
//! (coalescing, the minimum interval), the sync log's filters, metrics, validation, and
//! the OpenAPI document against the routes. SQLite and PostgreSQL.

use passerelle_tests as common;

use common::daemon::{daemon_config, daemon_env, run_ids, DaemonEnv, TOKEN};
use common::{databases, sim_config, Db};
use passerelle::model::run::{Status, Trigger};
use passerelle::serve::ServeOptions;
use passerelle_sim::Faults;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn daemon(db: &Db, practices: usize) -> DaemonEnv {
    daemon_env(
        db,
        sim_config(practices, 40),
        daemon_config(),
        ServeOptions::default(),
    )
    .await
}

#[tokio::test]
async fn every_endpoint_but_healthz_needs_the_token() {
    let db = &databases().await[0];
    let d = daemon(db, 1).await;
    let health = d.call_as(None, Method::GET, "/healthz", None).await;
    assert_eq!(health.status, StatusCode::OK);
    for path in [
        "/v1/practices",
        "/v1/runs",
        "/metrics",
        "/openapi.json",
        "/v1/connectors",
    ] {
        for token in [None, Some("wrong"), Some(&TOKEN[..TOKEN.len() - 1])] {
            let a = d.call_as(token, Method::GET, path, None).await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{path} with {token:?}");
            assert_eq!(a.code(), "unauthorized");
            assert_eq!(a.headers["www-authenticate"], "Bearer");
        }
        assert_eq!(
            d.call(Method::GET, path, None).await.status,
            StatusCode::OK,
            "{path}"
        );
    }
    // Unknown routes need the token too, and answer JSON.
    let a = d.call_as(None, Method::GET, "/v1/nothing", None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = d.call(Method::GET, "/v1/nothing", None).await;
    assert_eq!(
        (a.status, a.code().as_str()),
        (StatusCode::NOT_FOUND, "no-route")
    );
    d.shutdown().await;
}

/// Wrong tokens count against the client's address: past its allowance (10 a minute)
/// even the right token is refused (429, Retry-After) before it is looked at; each wrong
/// token and the moment the address was held back are on the audit trail, with the
/// address and never the token. A request without a token is no guess: not counted.
#[tokio::test]
async fn wrong_tokens_are_counted_per_address_and_recorded() {
    let db = &databases().await[0];
    let d = daemon(db, 1).await;
    for _ in 0..20 {
        let a = d.call_as(None, Method::GET, "/v1/practices", None).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    let guess = |i: usize| format!("pst_guess-{i}-0123456789abcdef");
    for i in 0..10 {
        let a = d
            .call_as(Some(&guess(i)), Method::GET, "/v1/practices", None)
            .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "guess {i}");
    }
    // Ten at once are allowed: the right token still gets in.
    assert_eq!(
        d.call(Method::GET, "/v1/practices", None).await.status,
        StatusCode::OK
    );
    // The eleventh uses up the allowance: from now on, refused before looking.
    let a = d
        .call_as(Some(&guess(10)), Method::GET, "/v1/practices", None)
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let held = d.call(Method::GET, "/v1/practices", None).await;
    assert_eq!(held.status, StatusCode::TOO_MANY_REQUESTS, "{}", held.text);
    assert_eq!(held.code(), "too-many-wrong-tokens");
    let wait: u64 = held.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=6).contains(&wait), "{wait}");
    // Liveness needs no token and still answers.
    let health = d.call_as(None, Method::GET, "/healthz", None).await;
    assert_eq!(health.status, StatusCode::OK);
    let entries = d.running.daemon.app.audit_entries(Some(100)).await.unwrap();
    let refused: Vec<_> = entries
        .iter()
        .filter(|e| e.action == "auth.refused")
        .collect();
    assert_eq!(refused.len(), 11);
    assert!(refused
        .iter()
        .all(|e| e.actor == "anonymous" && e.detail.contains("127.0.0.1")));
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.action == "auth.throttled")
            .count(),
        1
    );
    assert!(entries.iter().all(|e| !e.detail.contains("guess")));
    d.shutdown().await;
}

#[tokio::test]
async fn practices_and_accounts_are_managed_and_inputs_validated() {
    for db in databases().await {
        let d = daemon(&db, 1).await;
        let created = d
            .call(
                Method::POST,
                "/v1/practices",
                Some(json!({"id": "c42", "name": "Cabinet 42", "schedule": "30 2 * * 1-5"})),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        let p = created.json();
        assert_eq!(p["timezone"], "Europe/Paris");
        assert_eq!(p["effective_schedule"], "30 2 * * 1-5");
        // 02:30 plus the practice's offset within the one-hour spread.
        let next = chrono::DateTime::parse_from_rfc3339(p["next_sync"].as_str().unwrap()).unwrap();
        let minutes = next
            .time()
            .signed_duration_since(chrono::NaiveTime::from_hms_opt(2, 30, 0).unwrap());
        assert!((0..60).contains(&minutes.num_minutes()), "{next}");

        // Validation: each bad input is a 4xx JSON error saying what is wrong.
        for (body, status, code, says) in [
            (
                json!({"id": "c42", "name": "again"}),
                409,
                "conflict",
                "already exists",
            ),
            (
                json!({"id": "bad id!", "name": "x"}),
                400,
                "invalid-request",
                "invalid practice id",
            ),
            (
                json!({"id": "c43", "name": ""}),
                400,
                "invalid-request",
                "name",
            ),
            (
                json!({"id": "c43", "name": "x", "timezone": "Mars/Olympus"}),
                400,
                "invalid-request",
                "time zone",
            ),
            (
                json!({"id": "c43", "name": "x", "schedule": "61 * * * *"}),
                400,
                "invalid-request",
                "cron",
            ),
            (
                json!({"id": "c43", "name": "x", "colour": "blue"}),
                400,
                "invalid-body",
                "unknown field",
            ),
            (
                json!({"name": "x"}),
                400,
                "invalid-body",
                "missing field `id`",
            ),
            (json!(["not", "an", "object"]), 400, "invalid-body", ""),
        ] {
            let a = d
                .call(Method::POST, "/v1/practices", Some(body.clone()))
                .await;
            assert_eq!(a.status.as_u16(), status, "{body}: {}", a.text);
            assert_eq!(a.code(), code, "{body}");
            let message = a.json()["error"]["message"].as_str().unwrap().to_string();
            assert!(message.contains(says), "{body}: {message}");
        }
        let malformed = reqwest::Client::new()
            .post(format!("{}/v1/practices", d.base))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body("{\"id\": ")
            .send()
            .await
            .unwrap();
        assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
        assert!(
            d.call(Method::GET, "/v1/practices/c43", None).await.status == StatusCode::NOT_FOUND
        );
        let c43 = d.call(Method::GET, "/v1/practices", None).await.json();
        assert!(
            c43.as_array().unwrap().iter().all(|p| p["id"] != "c43"),
            "nothing half-created"
        );

        // Update: the schedule back to the default with null; name kept when absent.
        let a = d
            .call(
                Method::PATCH,
                "/v1/practices/c42",
                Some(json!({"schedule": null, "timezone": "Europe/Brussels"})),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert_eq!(a.json()["schedule"], json!(null));
        assert_eq!(a.json()["name"], "Cabinet 42");
        assert_eq!(a.json()["timezone"], "Europe/Brussels");
        let a = d
            .call(
                Method::PATCH,
                "/v1/practices/c42",
                Some(json!({"schedule": "nope"})),
            )
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            d.call(Method::GET, "/v1/practices/c42", None).await.json()["timezone"],
            "Europe/Brussels",
            "a refused update changes nothing"
        );

        // Accounts.
        let a = d
            .call(
                Method::POST,
                "/v1/practices/c42/accounts",
                Some(json!({"id": "c42-doc", "connector": "doctolib", "settings": {"centre": "x", "profile-id": "1"}})),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        // An account its check refuses (no centre) is not stored, unless forced; secrets
        // given with it are stored with it, and only their names come back.
        let refused = json!({"id": "c42-bad", "connector": "doctolib",
            "secrets": {"api-token": "a-made-up-token-value"}});
        let a = d
            .call(
                Method::POST,
                "/v1/practices/c42/accounts",
                Some(refused.clone()),
            )
            .await;
        assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.text);
        assert_eq!(a.code(), "check-failed", "{}", a.text);
        assert!(a.text.contains("invalid-config"), "{}", a.text);
        assert!(!a.text.contains("a-made-up-token-value"));
        let a = d.call(Method::GET, "/v1/accounts/c42-bad", None).await;
        assert_eq!(
            a.status,
            StatusCode::NOT_FOUND,
            "nothing stored: {}",
            a.text
        );
        let mut forced = refused;
        forced["force"] = json!(true);
        let a = d
            .call(Method::POST, "/v1/practices/c42/accounts", Some(forced))
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        assert_eq!(a.json()["check"]["ok"], false, "{}", a.text);
        assert_eq!(a.json()["secrets"], json!(["api-token"]), "{}", a.text);
        assert!(!a.text.contains("a-made-up-token-value"));
        // A change its check fails is refused and changes nothing; settings merge.
        let a = d
            .call(
                Method::PATCH,
                "/v1/accounts/c42-doc",
                Some(json!({"merge_settings": {"centre": null}})),
            )
            .await;
        assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.text);
        assert_eq!(a.code(), "check-failed", "{}", a.text);
        let a = d.call(Method::GET, "/v1/accounts/c42-doc", None).await;
        assert_eq!(a.json()["settings"]["centre"], "x", "unchanged: {}", a.text);
        let a = d
            .call(
                Method::PATCH,
                "/v1/accounts/c42-bad",
                Some(json!({"merge_settings": {"centre": "z", "profile-id": "9"}})),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert_eq!(a.json()["check"]["ok"], true, "{}", a.text);
        let a = d
            .call(Method::DELETE, "/v1/accounts/c42-bad?with_data=true", None)
            .await;
        assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text);
        let a = d
            .call(
                Method::POST,
                "/v1/practices/nope/accounts",
                Some(json!({"id": "z", "connector": "doctolib"})),
            )
            .await;
        assert_eq!(a.status, StatusCode::NOT_FOUND);
        let a = d
            .call(
                Method::PATCH,
                "/v1/accounts/c42-doc",
                Some(json!({"label": "Dr Test", "settings": {"centre": "y", "profile-id": "2"}})),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert_eq!(a.json()["settings"]["centre"], "y");
        assert_eq!(a.json()["label"], "Dr Test");
        let accounts = d
            .call(Method::GET, "/v1/practices/c42/accounts", None)
            .await
            .json();
        assert_eq!(accounts.as_array().unwrap().len(), 1);
        assert_eq!(
            d.call(Method::GET, "/v1/runs/abc", None).await.code(),
            "invalid-path"
        );
        assert_eq!(
            d.call(Method::GET, "/v1/runs/999999", None).await.status,
            StatusCode::NOT_FOUND
        );

        // Deleting needs with_data=true, and takes the data with it.
        let a = d.call(Method::DELETE, "/v1/practices/p001", None).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        assert!(a.text.contains("with_data=true"));
        let sync = d.call(Method::POST, "/v1/practices/p001/sync", None).await;
        assert_eq!(sync.status, StatusCode::ACCEPTED, "{}", sync.text);
        d.wait_for(&run_ids(&sync)).await;
        let store = &d.sim.env.app.store;
        assert!(!store.appointments("p001-cabinet").await.unwrap().is_empty());
        let a = d
            .call(Method::DELETE, "/v1/practices/p001?with_data=true", None)
            .await;
        assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text);
        assert!(store.appointments("p001-cabinet").await.unwrap().is_empty());
        assert!(store.account("p001-cabinet").await.unwrap().is_none());
        assert_eq!(
            d.call(Method::GET, "/v1/runs?practice=p001", None)
                .await
                .json(),
            json!([])
        );
        assert_eq!(
            d.call(Method::GET, "/v1/practices/p001", None).await.status,
            StatusCode::NOT_FOUND
        );
        d.shutdown().await;
    }
}

#[tokio::test]
async fn secrets_are_write_only() {
    let db = &databases().await[0];
    let d = daemon(db, 1).await;
    let secret = "s3cr3t-value-never-shown-4242";
    let a = d
        .call(
            Method::PUT,
            "/v1/accounts/p001-cabinet/secrets/extra-key",
            Some(json!({"value": secret})),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text);
    let a = d
        .call(
            Method::PUT,
            "/v1/accounts/p001-cabinet/secrets/x",
            Some(json!({"value": ""})),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = d
        .call(
            Method::PUT,
            "/v1/accounts/nobody/secrets/x",
            Some(json!({"value": "v"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let mut everything = String::new();
    for path in [
        "/v1/accounts/p001-cabinet",
        "/v1/practices/p001",
        "/v1/practices/p001/accounts",
        "/v1/practices",
        "/v1/runs",
        "/metrics",
    ] {
        let a = d.call(Method::GET, path, None).await;
        assert_eq!(a.status, StatusCode::OK, "{path}");
        everything.push_str(&a.text);
    }
    assert!(everything.contains("extra-key"), "the name is listed");
    assert!(!everything.contains(secret), "a secret value was returned");
    // The simulator's API token (set at provisioning) is not returned either.
    let token = d
        .sim
        .sim
        .world()
        .account("p001-cabinet")
        .unwrap()
        .token
        .clone();
    assert!(!everything.contains(&token));
    let a = d
        .call(
            Method::DELETE,
            "/v1/accounts/p001-cabinet/secrets/extra-key",
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let a = d
        .call(
            Method::DELETE,
            "/v1/accounts/p001-cabinet/secrets/extra-key",
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    d.shutdown().await;
}

#[tokio::test]
async fn sync_now_coalesces_then_holds_the_minimum_interval() {
    for db in databases().await {
        let d = daemon(&db, 2).await;
        // Slow responses: the run is still going when the second request comes.
        d.sim.sim.set_faults(
            "doctolib",
            Faults {
                latency_ms: 100,
                ..Faults::default()
            },
        );
        let first = d.call(Method::POST, "/v1/practices/p001/sync", None).await;
        assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text);
        let runs = first.json()["runs"].clone();
        assert_eq!(runs.as_array().unwrap().len(), 2, "both accounts of p001");
        assert!(runs
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["coalesced"] == false));

        let again = d
            .call(
                Method::POST,
                "/v1/practices/p001/sync",
                Some(json!({"full": true})),
            )
            .await;
        assert_eq!(again.status, StatusCode::ACCEPTED);
        assert_eq!(run_ids(&again), run_ids(&first), "the same runs");
        assert!(again.json()["runs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["coalesced"] == true));

        let done = d.wait_for(&run_ids(&first)).await;
        for run in &done {
            assert_eq!(run.status, Status::Succeeded, "{run:?}");
            assert_eq!(run.trigger, Trigger::Manual);
        }
        // Finished, inside the minimum interval: 429 with Retry-After.
        let soon = d
            .call(
                Method::POST,
                "/v1/practices/p001/sync",
                Some(json!({"account": "p001-cabinet"})),
            )
            .await;
        assert_eq!(soon.status, StatusCode::TOO_MANY_REQUESTS, "{}", soon.text);
        assert_eq!(soon.code(), "too-soon");
        let after: u64 = soon.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&after), "{after}");
        // Another practice is not held back.
        let other = d.call(Method::POST, "/v1/practices/p002/sync", None).await;
        assert_eq!(other.status, StatusCode::ACCEPTED);
        d.wait_for(&run_ids(&other)).await;

        for (body, status) in [
            (json!({"account": "nobody"}), StatusCode::NOT_FOUND),
            (json!({"full": "yes"}), StatusCode::BAD_REQUEST),
            (json!({"acount": "p001-cabinet"}), StatusCode::BAD_REQUEST),
        ] {
            let a = d
                .call(Method::POST, "/v1/practices/p002/sync", Some(body.clone()))
                .await;
            assert_eq!(a.status, status, "{body}: {}", a.text);
        }
        assert_eq!(
            d.call(Method::POST, "/v1/practices/none/sync", None)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        d.shutdown().await;
    }
}

#[tokio::test]
async fn the_sync_log_filters_and_the_metrics() {
    let db = &databases().await[0];
    let d = daemon(db, 2).await;
    let before = chrono::Utc::now();
    let a = d.call(Method::POST, "/v1/practices/p001/sync", None).await;
    let b = d.call(Method::POST, "/v1/practices/p002/sync", None).await;
    let ids: Vec<i64> = run_ids(&a).into_iter().chain(run_ids(&b)).collect();
    d.wait_for(&ids).await;

    let all = d.call(Method::GET, "/v1/runs", None).await.json();
    assert_eq!(all.as_array().unwrap().len(), 3);
    let p1 = d
        .call(Method::GET, "/v1/runs?practice=p001", None)
        .await
        .json();
    assert_eq!(p1.as_array().unwrap().len(), 2);
    let one = d
        .call(
            Method::GET,
            "/v1/runs?account=p002-cabinet&status=succeeded",
            None,
        )
        .await
        .json();
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["connector_version"], "0.1.0");
    assert_eq!(one[0]["trigger"], "manual");
    let since =
        (before - chrono::Duration::seconds(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let recent = d
        .call(
            Method::GET,
            &format!("/v1/runs?since={since}&limit=2"),
            None,
        )
        .await
        .json();
    assert_eq!(recent.as_array().unwrap().len(), 2, "limit");
    let future = d
        .call(Method::GET, "/v1/runs?since=2099-01-01T00:00:00Z", None)
        .await
        .json();
    assert_eq!(future, json!([]));
    for bad in [
        "/v1/runs?status=great",
        "/v1/runs?since=yesterday",
        "/v1/runs?limit=0",
        "/v1/runs?colour=red",
    ] {
        let a = d.call(Method::GET, bad, None).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.text);
    }
    let shown = d
        .call(Method::GET, &format!("/v1/runs/{}", ids[0]), None)
        .await
        .json();
    assert_eq!(shown["id"], ids[0]);

    let connectors = d.call(Method::GET, "/v1/connectors", None).await.json();
    assert_eq!(connectors[0]["name"], "doctolib");
    assert_eq!(connectors[0]["active"], true);

    let metrics = d.call(Method::GET, "/metrics", None).await.text;
    assert!(
        metrics.contains(
            r#"passerelle_runs_total{connector="doctolib",status="succeeded",trigger="manual"} 3"#
        ),
        "{metrics}"
    );
    assert!(metrics
        .contains(r#"passerelle_platform_http_requests_total{connector="doctolib",status="200"}"#));
    assert!(metrics.contains("passerelle_run_duration_seconds_bucket"));
    assert!(metrics
        .contains(r#"passerelle_records_written_total{connector="doctolib",kind="appointments"}"#));
    assert!(metrics.contains("passerelle_queue_depth 0"));
    // No practice, account or patient in the labels.
    let world = d.sim.sim.world().clone();
    for a in world.accounts() {
        assert!(!metrics.contains(&a.id));
        for appt in a.appointments.values() {
            assert!(!metrics.contains(&appt.patient.last_name));
        }
    }
    for p in &world.practices {
        assert!(!metrics.contains(&p.name));
    }
    read_by_prometheus_clients_parsers(&d).await;
    d.shutdown().await;
}

/// `/metrics` answers OpenMetrics to whoever asks for it (Prometheus does) and
/// Prometheus' text format otherwise; `prometheus_client`'s two parsers (the Python
/// library many exporters and scripts use) each read every counter family with its
/// samples from the format it is given.
async fn read_by_prometheus_clients_parsers(d: &common::daemon::DaemonEnv) {
    let fetch = |accept: Option<&'static str>| {
        let (http, url) = (reqwest::Client::new(), format!("{}/metrics", d.base));
        async move {
            let mut request = http.get(url).bearer_auth(TOKEN);
            if let Some(a) = accept {
                request = request.header("accept", a);
            }
            let response = request.send().await.unwrap();
            let content_type = response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_string();
            (content_type, response.text().await.unwrap())
        }
    };
    let (text_type, text) = fetch(None).await;
    assert_eq!(text_type, "text/plain; version=0.0.4; charset=utf-8");
    assert!(!text.contains("# EOF") && text.contains("# TYPE passerelle_runs_total counter"));
    // Every metric the shipped alerting rules use is one the daemon exports.
    let rules =
        std::fs::read_to_string(common::kit::repo().join("deploy/prometheus/passerelle.rules.yml"))
            .unwrap();
    let used: std::collections::BTreeSet<&str> = regex::Regex::new(r"passerelle_[a-z_]+")
        .unwrap()
        .find_iter(&rules)
        .map(|m| m.as_str())
        .collect();
    assert!(used.len() >= 6, "{used:?}");
    for name in used {
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "the alerting rules use {name}, which /metrics does not export"
        );
    }
    let (om_type, om) = fetch(Some(
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
    ))
    .await;
    assert!(
        om_type.starts_with("application/openmetrics-text"),
        "{om_type}"
    );
    assert!(om.ends_with("# EOF\n"));
    let Some(python) = std::env::var_os("PASSERELLE_TEST_PYTHON") else {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v.is_empty() || v == "false"),
            "CI reads the metrics with prometheus_client: PASSERELLE_TEST_PYTHON (set by cargo xtask test)"
        );
        eprintln!("SKIPPED: prometheus_client's parsers (PASSERELLE_TEST_PYTHON unset; cargo xtask test sets it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("text"), &text).unwrap();
    std::fs::write(dir.path().join("om"), &om).unwrap();
    // Each family as `parser type name samples`, one per line.
    let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families as text
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om
for parser, read, path in (("text", text, sys.argv[1]), ("om", om, sys.argv[2])):
    for f in read(open(path).read()):
        print(parser, f.type, f.name, len(f.samples))
"#;
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(dir.path().join("text"))
        .arg(dir.path().join("om"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for parser in ["text", "om"] {
        let families: Vec<(&str, &str, usize)> = stdout
            .lines()
            .filter_map(|l| {
                let mut w = l.split(' ');
                (w.next()? == parser).then(|| {
                    (
                        w.next().unwrap(),
                        w.next().unwrap(),
                        w.next().unwrap().parse().unwrap(),
                    )
                })
            })
            .collect();
        let runs = families
            .iter()
            .find(|f| f.1 == "passerelle_runs")
            .unwrap_or_else(|| panic!("{parser}: no passerelle_runs family: {stdout}"));
        assert_eq!(runs.0, "counter", "{parser}: {runs:?}");
        assert!(runs.2 > 0, "{parser}: {runs:?}");
        // No sample read as a family of its own, no counter without its samples.
        assert!(
            families
                .iter()
                .all(|f| !f.1.ends_with("_total") && f.0 != "unknown"),
            "{parser}: {stdout}"
        );
        assert!(
            families
                .iter()
                .filter(|f| f.0 == "counter")
                .all(|f| f.2 > 0 || !text.contains(&format!("{}_total{{", f.1))),
            "{parser}: {stdout}"
        );
    }
}

#[tokio::test]
async fn the_openapi_document_matches_the_routes() {
    let db = &databases().await[0];
    let d = daemon(db, 1).await;
    let served = d.call(Method::GET, "/openapi.json", None).await.json();
    // The document is generated from the code; the repository keeps a copy for readers.
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
    if std::env::var_os("PASSERELLE_BLESS").is_some() {
        std::fs::write(file, passerelle::api::doc::document()).unwrap();
    }
    let in_repo: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert_eq!(
        served, in_repo,
        "docs/openapi.json is what the daemon serves; regenerate it with \
         PASSERELLE_BLESS=1 cargo test -p passerelle-tests --test daemon_api the_openapi"
    );
    let mut documented = std::collections::BTreeSet::new();
    for (path, item) in in_repo["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((path.clone(), method.clone()));
        }
    }
    let mut routed = std::collections::BTreeSet::new();
    for (path, methods, _) in passerelle::api::routes() {
        for m in methods {
            routed.insert((path.to_string(), m.to_string()));
        }
    }
    assert_eq!(
        documented, routed,
        "OpenAPI paths and methods = the router's"
    );
    // And the router really answers each documented method (no 404 "no-route", no 405).
    for (path, method) in &documented {
        let concrete = path
            .replace(
                "{id}",
                if path.starts_with("/v1/runs") {
                    "1"
                } else {
                    "p001"
                },
            )
            .replace("{name}", "x");
        let concrete = if path.starts_with("/v1/accounts") {
            concrete.replace("p001", "p001-cabinet")
        } else {
            concrete
        };
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let a = d.call(m, &concrete, None).await;
        assert_ne!(
            a.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {concrete}"
        );
        if a.status == StatusCode::NOT_FOUND {
            assert_ne!(a.code(), "no-route", "{method} {concrete}");
        }
    }
    let wrong = d.call(Method::PUT, "/v1/runs", None).await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    d.shutdown().await;
}

/// Random JSON: scalars (with values the API knows), arrays and objects keyed by the
/// API's field names and others.
fn any_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e12f64..1e12).prop_map(|f| json!(f)),
        "\\PC{0,24}".prop_map(Value::String),
        prop_oneof![
            Just("p001"),
            Just("Europe/Paris"),
            Just("Mars/Olympus"),
            Just("0 3 * * *"),
            Just("not a cron"),
            Just("doctolib"),
            Just("x".repeat(300).leak() as &str),
            Just(""),
            Just("../../etc"),
        ]
        .prop_map(|s| Value::String(s.to_string())),
    ];
    let keys = prop_oneof![
        Just("id".to_string()),
        Just("name".to_string()),
        Just("timezone".to_string()),
        Just("schedule".to_string()),
        Just("connector".to_string()),
        Just("settings".to_string()),
        Just("label".to_string()),
        Just("value".to_string()),
        Just("account".to_string()),
        Just("mode".to_string()),
        Just("version".to_string()),
        Just("practices".to_string()),
        "[a-z_]{1,8}",
    ];
    leaf.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(keys.clone(), inner, 0..5)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Property: whatever JSON a client sends to an endpoint that takes a body, the API
/// answers without a 500, and a refusal stores nothing (practices, accounts, secret
/// names and the audit trail are as before).
#[tokio::test]
async fn any_json_body_gets_a_clear_answer_and_a_refusal_stores_nothing() {
    use proptest::strategy::{Strategy, ValueTree};
    let db = &databases().await[0];
    let d = daemon(db, 1).await;
    let store = d.sim.env.app.store.clone();
    let snapshot = || {
        let store = store.clone();
        async move {
            let practices = serde_json::to_string(&store.list_practices().await.unwrap()).unwrap();
            let accounts =
                serde_json::to_string(&store.list_accounts(None).await.unwrap()).unwrap();
            let audit = store.audit_entries(1).await.unwrap().first().map(|e| e.seq);
            (practices, accounts, audit)
        }
    };
    let cases: u32 = std::env::var("PASSERELLE_PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(40);
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = any_json();
    // Each endpoint with a valid body: half the cases send it with one field replaced
    // by random JSON (past deserialisation, into the service's rules), half send
    // random JSON.
    let endpoints = [
        (
            Method::POST,
            "/v1/practices",
            json!({"id": "c9", "name": "C", "timezone": "Europe/Paris"}),
        ),
        (
            Method::PATCH,
            "/v1/practices/p001",
            json!({"name": "N", "schedule": "0 4 * * *"}),
        ),
        (
            Method::POST,
            "/v1/practices/p001/accounts",
            json!({"id": "acc9", "connector": "doctolib", "settings": {}}),
        ),
        (
            Method::PATCH,
            "/v1/accounts/p001-cabinet",
            json!({"label": "L"}),
        ),
        (
            Method::PUT,
            "/v1/accounts/p001-cabinet/secrets/api-token",
            json!({"value": "v"}),
        ),
        (
            Method::POST,
            "/v1/connectors/doctolib/approve",
            json!({"version": "0.1.0"}),
        ),
        (
            Method::POST,
            "/v1/connectors/doctolib/rollback",
            json!({"version": "0.1.0"}),
        ),
        (
            Method::POST,
            "/v1/connectors/doctolib/canary",
            json!({"version": "0.1.0", "practices": ["p001"]}),
        ),
    ];
    let mut answered = std::collections::BTreeMap::new();
    for case in 0..cases {
        for (method, path, valid) in &endpoints {
            let random = strategy.new_tree(&mut runner).unwrap().current();
            let body = if case % 2 == 0 {
                let mut body = valid.clone();
                let fields: Vec<String> = body.as_object().unwrap().keys().cloned().collect();
                let field = &fields[(case as usize / 2) % fields.len()];
                body[field.as_str()] = random;
                body
            } else {
                random
            };
            let before = snapshot().await;
            let answer = d.call(method.clone(), path, Some(body.clone())).await;
            assert!(
                answer.status.as_u16() < 500,
                "{method} {path} {body}: {} {}",
                answer.status,
                answer.text
            );
            *answered.entry(answer.status.as_u16()).or_insert(0) += 1;
            if !answer.status.is_success() {
                assert_eq!(
                    snapshot().await,
                    before,
                    "{method} {path} {body}: {}",
                    answer.text
                );
                assert!(
                    answer.json()["error"]["code"].is_string(),
                    "{}",
                    answer.text
                );
            }
        }
    }
    println!("random bodies answered: {answered:?}");
    d.shutdown().await;
}

/// Named tokens get what their scopes allow, on SQLite and PostgreSQL: `read` reads but
/// changes nothing and sees no appointment (health data) and no patient data;
/// `appointments:read` sees appointments with initials, each read audited;
/// `patients:read` sees patients and quarantined items; `admin` does everything; a
/// revoked token is refused at once; what a token does is in the audit trail under its
/// name.
#[tokio::test]
async fn scoped_tokens_get_what_their_scopes_allow() {
    for db in databases().await {
        let d = daemon(&db, 1).await;
        let app = &d.sim.env.app;
        let token = |name: &'static str, scopes: &'static [&'static str]| async move {
            let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
            app.create_token(name, &scopes).await.unwrap().secret
        };
        let reader = token("reader", &["read"]).await;
        let clerk = token("clerk", &["appointments:read"]).await;
        let doctor = token("doctor", &["patients:read"]).await;
        let ops = token("ops", &["admin"]).await;
        assert!(reader.starts_with("pst_") && reader.len() > 60);
        for t in [&reader, &doctor, &ops] {
            assert_eq!(
                call(&d, t, Method::GET, "/v1/practices", None).await.status,
                StatusCode::OK
            );
            assert_eq!(
                call(&d, t, Method::GET, "/v1/quarantine", None)
                    .await
                    .status,
                StatusCode::OK
            );
        }
        let new = |id: &str| Some(json!({"id": id, "name": "C", "timezone": "Europe/Paris"}));
        for (t, id) in [(&reader, "r1"), (&doctor, "d1")] {
            let refused = call(&d, t, Method::POST, "/v1/practices", new(id)).await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
            assert_eq!(refused.code(), "forbidden");
            assert!(refused.text.contains("`admin` scope"), "{}", refused.text);
        }
        assert!(app.store.practice("r1").await.unwrap().is_none());
        let made = call(&d, &ops, Method::POST, "/v1/practices", new("o1")).await;
        assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
        let items = "/v1/quarantine?with_items=true";
        let refused = call(&d, &reader, Method::GET, items, None).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
        assert!(
            refused.text.contains("`patients:read` scope"),
            "{}",
            refused.text
        );
        assert_eq!(
            call(&d, &doctor, Method::GET, items, None).await.status,
            StatusCode::OK
        );
        assert_eq!(
            call(&d, &ops, Method::GET, items, None).await.status,
            StatusCode::OK
        );

        let trail = app.audit_entries(Some(20)).await.unwrap();
        assert!(
            trail.iter().any(|e| e.actor == "token:ops"
                && e.action == "practice.create"
                && e.target == "o1"),
            "{trail:?}"
        );
        assert!(!format!("{trail:?}").contains(&ops));

        // The read API: no appointment for `read` (health data); appointments with
        // initials for `appointments:read`, audited; patient fields only with
        // `patients:read` and patients=true; a stable order paged by cursor; slots.
        d.sim.sync_all(passerelle::model::run::Mode::Full).await;
        let stored: usize = {
            let mut n = 0;
            for a in app.store.list_accounts(Some("p001")).await.unwrap() {
                n += app
                    .store
                    .appointments(&a.id)
                    .await
                    .unwrap()
                    .iter()
                    .filter(|s| s.deleted_reason.is_none())
                    .count();
            }
            n
        };
        assert!(stored > 4, "{}: the sync stored appointments", db.name);
        let path = "/v1/practices/p001/appointments";
        let refused = call(&d, &reader, Method::GET, path, None).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
        assert!(
            refused.text.contains("`appointments:read` scope"),
            "{}",
            refused.text
        );
        let page = call(&d, &clerk, Method::GET, &format!("{path}?limit=1000"), None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        assert!(trail_has(app, "token:clerk", "read.appointments").await);
        let items = page.json()["items"].as_array().unwrap().clone();
        assert_eq!(items.len(), stored);
        for a in &items {
            let p = &a["patient"];
            assert!(p["initials"].is_string(), "{a}");
            for field in ["first_name", "last_name", "birth_date", "phone", "email"] {
                assert!(
                    p.get(field).is_none(),
                    "{field} shown to `appointments:read`: {a}"
                );
            }
        }
        let refused = call(
            &d,
            &clerk,
            Method::GET,
            &format!("{path}?patients=true"),
            None,
        )
        .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
        let shown = call(
            &d,
            &doctor,
            Method::GET,
            &format!("{path}?patients=true&limit=1000"),
            None,
        )
        .await;
        assert_eq!(shown.status, StatusCode::OK, "{}", shown.text);
        assert!(
            shown.json()["items"][0]["patient"]["last_name"].is_string(),
            "{}",
            shown.text
        );
        assert!(trail_has(app, "token:doctor", "read.patients").await);
        // Pages of 2 walk the same list, in the same order, once each.
        let mut walked = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let url = match &after {
                Some(c) => format!("{path}?limit=2&after={c}"),
                None => format!("{path}?limit=2"),
            };
            let page = call(&d, &clerk, Method::GET, &url, None).await.json();
            walked.extend(
                page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a["external_id"].clone()),
            );
            match page["next"].as_str() {
                Some(c) => after = Some(c.to_string()),
                None => break,
            }
        }
        let all: Vec<_> = items.iter().map(|a| a["external_id"].clone()).collect();
        assert_eq!(walked, all);
        let bad = call(
            &d,
            &clerk,
            Method::GET,
            &format!("{path}?after=nonsense"),
            None,
        )
        .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
        let slots = call(
            &d,
            &reader,
            Method::GET,
            "/v1/slots?practice=p001&limit=5",
            None,
        )
        .await;
        assert_eq!(slots.status, StatusCode::OK, "{}", slots.text);
        assert!(
            !slots.json()["items"].as_array().unwrap().is_empty(),
            "{}",
            slots.text
        );

        // Cursors are the connector's own, unscrubbed state: `null` below `patients:read`.
        let cursors = |runs: serde_json::Value| -> Vec<serde_json::Value> {
            runs.as_array()
                .unwrap()
                .iter()
                .map(|r| r["cursor_after"].clone())
                .collect()
        };
        let held = cursors(
            call(&d, &doctor, Method::GET, "/v1/runs", None)
                .await
                .json(),
        );
        assert!(held.iter().any(|c| c.is_string()), "{held:?}");
        for t in [&reader, &clerk] {
            let runs = call(&d, t, Method::GET, "/v1/runs", None).await.json();
            let first = runs[0]["id"].as_i64().unwrap();
            assert_eq!(runs.as_array().unwrap().len(), held.len());
            assert!(cursors(runs).iter().all(|c| c.is_null()));
            let one = call(&d, t, Method::GET, &format!("/v1/runs/{first}"), None).await;
            assert!(one.json()["cursor_before"].is_null(), "{}", one.text);
            assert!(one.json()["cursor_after"].is_null(), "{}", one.text);
        }

        // The change feed: the same rules — `read` gets the slots' changes alone, and is
        // refused the appointments'; subscriptions need admin.
        let feed = "/v1/changes?kind=appointment&limit=10000";
        let refused = call(&d, &reader, Method::GET, feed, None).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
        let slots_only = call(&d, &reader, Method::GET, "/v1/changes?limit=10000", None).await;
        assert_eq!(slots_only.status, StatusCode::OK, "{}", slots_only.text);
        let kinds: Vec<&str> = slots_only.json()["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["kind"].as_str().unwrap_or_default())
            .map(|k| if k == "slot" { "slot" } else { "appointment" })
            .collect();
        assert!(
            !kinds.is_empty() && kinds.iter().all(|k| *k == "slot"),
            "{kinds:?}"
        );
        let plain = call(&d, &clerk, Method::GET, feed, None).await;
        assert_eq!(plain.status, StatusCode::OK, "{}", plain.text);
        let changes = plain.json()["changes"].as_array().unwrap().clone();
        assert!(changes.len() >= stored, "{}", db.name);
        for c in &changes {
            let p = &c["appointment"]["patient"];
            assert!(p["initials"].is_string(), "{c}");
            for field in ["first_name", "last_name", "birth_date", "phone", "email"] {
                assert!(
                    p.get(field).is_none(),
                    "{field} shown to `appointments:read` in the feed: {c}"
                );
            }
        }
        let with = format!("{feed}&patients=true");
        let refused = call(&d, &clerk, Method::GET, &with, None).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
        let shown = call(&d, &doctor, Method::GET, &with, None).await;
        assert_eq!(shown.status, StatusCode::OK, "{}", shown.text);
        assert!(
            shown.json()["changes"][0]["appointment"]["patient"]["phone"].is_string(),
            "{}",
            shown.text
        );
        let hook = Some(json!({"url": "https://receiver.example/hook"}));
        for t in [&reader, &doctor] {
            let refused = call(&d, t, Method::POST, "/v1/subscriptions", hook.clone()).await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
        }
        let added = call(&d, &ops, Method::POST, "/v1/subscriptions", hook.clone()).await;
        assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
        assert!(added.json()["secret"]
            .as_str()
            .unwrap()
            .starts_with("whsec_"));
        let listed = call(&d, &reader, Method::GET, "/v1/subscriptions", None).await;
        assert!(!listed.text.contains("whsec_"), "{}", listed.text);

        app.revoke_token("reader").await.unwrap();
        let gone = call(&d, &reader, Method::GET, "/v1/practices", None).await;
        assert_eq!(gone.status, StatusCode::UNAUTHORIZED, "{}", gone.text);
        let forged = call(&d, "pst_0000", Method::GET, "/v1/practices", None).await;
        assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
        let listed = app.tokens().await.unwrap();
        assert_eq!(listed.len(), 4);
        assert!(listed
            .iter()
            .find(|t| t.name == "reader")
            .unwrap()
            .revoked_at
            .is_some());
        d.shutdown().await;
    }
}

async fn trail_has(app: &passerelle::Passerelle, actor: &str, action: &str) -> bool {
    app.audit_entries(Some(100))
        .await
        .unwrap()
        .iter()
        .any(|e| e.actor == actor && e.action == action)
}

async fn call(
    d: &DaemonEnv,
    token: &str,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> common::daemon::Answer {
    d.call_as(Some(token), method, path, body).await
}
