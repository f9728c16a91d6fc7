//! Traces over OTLP: `passerelle serve` with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at
//! a small OTLP/HTTP receiver here (protobuf, decoded with the OpenTelemetry protocol's
//! own types) sends one trace per run — the run's span, its claim, the component's
//! instantiation, the guest's time, each HTTP request with its endpoint shape and
//! status, the finish — and no attribute or event of any span holds a patient value, a
//! secret or a URL's query.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use passerelle_tests::daemon::{daemon_config, wait_for_runs, write_config, ServeProcess};
use passerelle_tests::{databases, sim_config, sim_env_with};
use prost::Message;

/// One span as received: its trace, name and attributes (events' attributes included,
/// each as `key=value`).
#[derive(Debug, Clone)]
struct Received {
    trace: Vec<u8>,
    name: String,
    attributes: Vec<(String, String)>,
    service: String,
}

fn text(value: &Option<AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn pairs(attributes: &[KeyValue]) -> Vec<(String, String)> {
    attributes
        .iter()
        .map(|kv| (kv.key.clone(), text(&kv.value)))
        .collect()
}

type Inbox = Arc<Mutex<Vec<Received>>>;

async fn receive(State(inbox): State<Inbox>, body: Bytes) -> Vec<u8> {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
    let mut inbox = inbox.lock().unwrap();
    for resource in request.resource_spans {
        let service = resource
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
            .map(|kv| text(&kv.value))
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                let mut attributes = pairs(&span.attributes);
                for event in &span.events {
                    attributes.push(("event".into(), event.name.clone()));
                    attributes.extend(pairs(&event.attributes));
                }
                inbox.push(Received {
                    trace: span.trace_id.clone(),
                    name: span.name.clone(),
                    attributes,
                    service: service.clone(),
                });
            }
        }
    }
    ExportTraceServiceResponse::default().encode_to_vec()
}

/// The receiver's base URL (what `OTEL_EXPORTER_OTLP_ENDPOINT` takes) and its inbox.
async fn otlp_receiver() -> (String, Inbox) {
    let inbox = Inbox::default();
    let app = axum::Router::new()
        .route("/v1/traces", post(receive))
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}"), inbox)
}

fn attribute<'a>(span: &'a Received, key: &str) -> Option<&'a str> {
    span.attributes
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn each_run_is_a_trace_sent_over_otlp_without_patient_data() {
    let dbs = databases().await;
    let db = dbs.iter().find(|d| d.name == "sqlite").unwrap();
    let (endpoint, inbox) = otlp_receiver().await;
    let config = daemon_config();
    let sim = sim_env_with(db, sim_config(3, 6), config).await;
    let dir = sim.env.dir.path();
    let config_path = write_config(dir, &sim.env.app.config);
    let serve = ServeProcess::start_with_env(
        &config_path,
        dir,
        &dir.join("serve.log"),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ],
    )
    .await;
    let practices: Vec<String> = sim
        .env
        .app
        .store
        .list_practices()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    let ids = serve.sync_all(&practices, true).await;
    let runs = wait_for_runs(&sim.env.app.store, &ids).await;
    assert!(runs
        .iter()
        .all(|r| r.status == passerelle::model::run::Status::Succeeded));
    // Stopping sends what is still batched.
    serve.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(serve.exit().await.success());

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let spans = loop {
        let spans = inbox.lock().unwrap().clone();
        let traced = |id: i64| {
            spans
                .iter()
                .any(|s| s.name == "run" && attribute(s, "run") == Some(&id.to_string()))
        };
        if ids.iter().all(|id| traced(*id)) {
            break spans;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every run's trace arrived: {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(spans.iter().all(|s| s.service == "passerelle"));

    for id in &ids {
        let run = spans
            .iter()
            .find(|s| s.name == "run" && attribute(s, "run") == Some(&id.to_string()))
            .unwrap();
        let trace: Vec<&Received> = spans.iter().filter(|s| s.trace == run.trace).collect();
        let names: Vec<&str> = trace.iter().map(|s| s.name.as_str()).collect();
        for wanted in ["claim", "instantiate", "guest", "http", "finish"] {
            assert!(
                names.contains(&wanted),
                "run {id}: no {wanted} span in {names:?}"
            );
        }
        assert_eq!(
            names.iter().filter(|n| **n == "run").count(),
            1,
            "run {id}: one run per trace: {names:?}"
        );
        for http in trace.iter().filter(|s| s.name == "http") {
            let endpoint = attribute(http, "endpoint").unwrap();
            assert!(
                endpoint.starts_with("https://") && !endpoint.contains('?'),
                "{endpoint}"
            );
            assert_eq!(attribute(http, "status"), Some("200"), "{http:?}");
        }
        assert!(attribute(run, "connector").is_some());
    }

    // Nothing of any patient, no secret, no query string in any attribute.
    let world = sim.sim.world().clone();
    let mut forbidden = Vec::new();
    for account in world.accounts() {
        for appointment in account.appointments.values() {
            let p = &appointment.patient;
            forbidden.extend([
                format!("{} {}", p.first_name, p.last_name),
                p.phone.clone(),
                p.email.clone(),
            ]);
        }
    }
    for account in sim.env.app.store.list_accounts(None).await.unwrap() {
        forbidden.extend(
            sim.env
                .app
                .store
                .secret_values(&account.id)
                .await
                .unwrap()
                .into_values(),
        );
    }
    assert!(forbidden.len() > 10);
    for span in &spans {
        for (key, value) in &span.attributes {
            for f in &forbidden {
                assert!(
                    !value.contains(f.as_str()),
                    "span {} attribute {key} holds a patient value or secret",
                    span.name
                );
            }
            assert!(
                !(value.contains("://") && value.contains('?')),
                "span {} attribute {key} holds a URL with its query: {value}",
                span.name
            );
        }
    }
}
