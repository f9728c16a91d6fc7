//! The Rust side of the SDK parity test: every scenario of `parity/scenarios.json` run
//! through this SDK's helper of that name (see SPEC.md), its output compared with the
//! scenario's. The Python and JavaScript SDKs run the same file (`sdk-python/tests`,
//! `sdk-js/test`); a helper one of them lacks fails there.

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveTime};
use passerelle_sdk::account::AccountExt;
use passerelle_sdk::http::{self, Request, Response};
use passerelle_sdk::time::{Timestamp, Window};
use passerelle_sdk::{drift, Account, HeaderValue, Setting, SyncError};
use serde_json::{json, Value};

fn text(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key}: {v}"))
        .to_string()
}

fn ts(v: &Value, key: &str) -> Timestamp {
    Timestamp::parse(&text(v, key)).unwrap_or_else(|| panic!("{key}: {v}"))
}

fn zone(v: &Value) -> chrono_tz::Tz {
    text(v, "zone").parse().expect("a zone")
}

fn date(v: &Value, key: &str) -> NaiveDate {
    NaiveDate::parse_from_str(&text(v, key), "%Y-%m-%d").expect("a date")
}

/// A sync error as the contract's variant: `{tag, val}`.
fn error(e: SyncError) -> Value {
    match e {
        SyncError::Unauthorized(s) => json!({"tag": "unauthorized", "val": s}),
        SyncError::RateLimited(s) => json!({"tag": "rate-limited", "val": s}),
        SyncError::Unavailable(s) => json!({"tag": "unavailable", "val": s}),
        SyncError::InvalidConfig(s) => json!({"tag": "invalid-config", "val": s}),
        SyncError::Internal(s) => json!({"tag": "internal", "val": s}),
        SyncError::SchemaDrift(d) => json!({"drift": {
            "path": d.path, "expected": d.expected, "found": d.found}}),
    }
}

/// A drift as the scenarios compare it (`expected` only where the scenario names it).
fn drift_out(e: SyncError, want: &Value) -> Value {
    let mut out = error(e);
    if want["drift"].get("expected").is_none() {
        if let Some(d) = out.get_mut("drift").and_then(Value::as_object_mut) {
            d.remove("expected");
        }
    }
    out
}

fn run(helper: &str, input: &Value, want: &Value) -> Value {
    match helper {
        "timestamp.parse" => json!(Timestamp::parse(&text(input, "text")).map(|t| t.to_rfc3339())),
        "timestamp.local" => {
            let time = NaiveTime::parse_from_str(&text(input, "time"), "%H:%M").unwrap();
            json!(Timestamp::local(date(input, "date"), time, zone(input)).map(|t| t.to_rfc3339()))
        }
        "timestamp.midnight" => {
            json!(Timestamp::midnight(date(input, "date"), zone(input)).to_rfc3339())
        }
        "timestamp.date_in" => json!(ts(input, "at").date_in(zone(input)).to_string()),
        "timestamp.at_offset_minutes" => json!(ts(input, "at")
            .at_offset_minutes(input["minutes"].as_i64().unwrap() as i32)
            .map(|t| t.to_rfc3339())),
        "timestamp.to_utc_millis" => json!(ts(input, "at").to_utc_millis()),
        "timestamp.timestamp_millis" => json!(ts(input, "at").timestamp_millis()),
        "window.from_now" => {
            let w = Window {
                start: ts(input, "start"),
                end: ts(input, "end"),
            };
            let now = input["now"].as_str().map(|t| Timestamp::parse(t).unwrap());
            let f = w.from(now);
            json!({"start": f.start.to_rfc3339(), "end": f.end.to_rfc3339()})
        }
        "window.days" => {
            let w = Window {
                start: ts(input, "start"),
                end: ts(input, "end"),
            };
            let pages = w.days(input["days"].as_u64().unwrap() as u32, zone(input));
            json!(pages
                .iter()
                .map(|(a, b)| [a.to_string(), b.to_string()])
                .collect::<Vec<_>>())
        }
        "http.retry_policy" => json!({
            "retry_within_run_secs": http::RETRY_WITHIN_RUN_SECS,
            "rate_limit_retries": http::RATE_LIMIT_RETRIES}),
        "http.status_error" => {
            let headers = match input["retry_after"].as_str() {
                Some(v) => vec![("retry-after".to_string(), v.to_string())],
                None => vec![],
            };
            let response = Response {
                status: input["status"].as_u64().unwrap() as u16,
                headers,
                body: vec![],
                url: "https://api.example/x".into(),
            };
            match http::status_error(&text(input, "endpoint"), &response) {
                None => Value::Null,
                Some(e) => error(e),
            }
        }
        "http.request" => {
            let url = text(input, "url");
            let mut r = match text(input, "method").as_str() {
                "get" => http::get(url),
                "post" => http::post(url),
                m => panic!("method {m}"),
            };
            for step in input["steps"].as_array().unwrap() {
                let a: Vec<&str> = step
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap())
                    .collect();
                r = match a[0] {
                    "query" => r.query(a[1], a[2]),
                    "endpoint" => r.endpoint(a[1]),
                    "bearer" => r.bearer(a[1]),
                    "secret_header" => r.secret_header(a[1], a[2]),
                    "secret_prefix" => r.secret_prefix(a[1], a[2], a[3]),
                    "secret_template" => r.secret_template(a[1], a[2], a[3], a[4]),
                    other => panic!("step {other}"),
                };
            }
            request(&r)
        }
        "account.setting" | "account.setting_opt" | "account.has_secret" => {
            let account = Account {
                practice_id: "p".into(),
                account_id: "a".into(),
                settings: input["settings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|kv| Setting {
                        key: kv[0].as_str().unwrap().into(),
                        value: kv[1].as_str().unwrap().into(),
                    })
                    .collect(),
                secrets: serde_json::from_value(input["secrets"].clone()).unwrap(),
            };
            let key = text(input, "key");
            match helper {
                "account.setting" => account
                    .setting(&key)
                    .map(|v| json!(v))
                    .unwrap_or_else(error),
                "account.setting_opt" => json!(account.setting_opt(&key)),
                _ => json!(account.has_secret(&key)),
            }
        }
        "drift.kind" => json!(drift::kind(input.get("value"))),
        "drift.nullable" => {
            // A field that must be there, null allowed.
            #[derive(serde::Deserialize)]
            struct Doctor {
                #[serde(deserialize_with = "drift::nullable")]
                doctor: Option<String>,
            }
            assert_eq!(text(input, "field"), "doctor", "the Rust runner's type");
            match drift::from_value::<Doctor>("GET /x", &input["json"]) {
                Ok(d) => json!({"value": d.doctor}),
                Err(e) => drift_out(e, want),
            }
        }
        "drift.union" => {
            let shapes: Vec<(String, Vec<String>)> =
                serde_json::from_value(input["shapes"].clone()).unwrap();
            let members: Vec<Vec<&str>> = shapes
                .iter()
                .map(|(_, m)| m.iter().map(String::as_str).collect())
                .collect();
            let shapes: Vec<drift::Shape> = shapes
                .iter()
                .zip(&members)
                .map(|((n, _), m)| (n.as_str(), m.as_slice()))
                .collect();
            let items = input["json"].as_array().unwrap();
            match drift::union_items("GET /x", "$", items, &shapes) {
                Ok(found) => {
                    json!({"shapes": found.iter().map(|(i, _)| shapes[*i].0).collect::<Vec<_>>()})
                }
                Err(e) => drift_out(e, want),
            }
        }
        "drift.path" => {
            #[derive(serde::Deserialize)]
            #[allow(dead_code)]
            struct Start {
                start: String,
            }
            #[derive(serde::Deserialize)]
            #[allow(dead_code)]
            struct Data {
                data: BTreeMap<String, Vec<Start>>,
            }
            match drift::from_value::<Data>("GET /x", &input["json"]) {
                Ok(_) => json!("read"),
                Err(e) => drift_out(e, want),
            }
        }
        other => panic!("the Rust SDK has no helper for scenario `{other}`"),
    }
}

/// A built request as the scenarios describe it.
fn request(r: &Request) -> Value {
    let headers: Vec<Value> = r
        .headers()
        .iter()
        .map(|h| match &h.value {
            HeaderValue::Text(t) => json!([h.name, "text", t]),
            HeaderValue::Secret(s) => json!([h.name, "secret", s]),
            HeaderValue::SecretWithPrefix(p) => json!([h.name, "prefix", p.prefix, p.name]),
        })
        .collect();
    let templated: Vec<Value> = r
        .templated()
        .iter()
        .map(|t| json!([t.header, t.before, t.secret, t.after]))
        .collect();
    json!({"url": r.url(), "endpoint": r.endpoint_name(), "headers": headers, "templated": templated})
}

#[test]
fn every_scenario_gives_the_same_output_here() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/parity/scenarios.json");
    let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut failed = Vec::new();
    let scenarios = file["scenarios"].as_array().unwrap();
    for s in scenarios {
        let helper = text(s, "helper");
        let got = run(&helper, &s["in"], &s["out"]);
        if got != s["out"] {
            failed.push(format!(
                "{helper} {}: got {got}, want {}",
                s["in"], s["out"]
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} scenarios differ:\n{}",
        failed.len(),
        scenarios.len(),
        failed.join("\n")
    );
}
