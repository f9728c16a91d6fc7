//! No patient datum and no secret in any log line, error or run record, with logs captured
//! at the most verbose level while a careless connector logs patient data on purpose.

use passerelle_tests as common;

use common::{env, server, Db};
use passerelle::model::run::Mode;
use passerelle::runtime::capabilities::http::HttpPolicy;
use passerelle::service::config::Config;

const SECRET: &str = "pk_live_Zy81-secret";

#[tokio::test]
async fn patient_data_and_secrets_never_reach_logs_errors_or_runs() {
    let capture = common::Capture::install();

    let (base, _seen) = server().await;
    let mut config = Config {
        http: HttpPolicy {
            allow_private_addresses: true,
            ..HttpPolicy::default()
        },
        ..Config::default()
    };
    config.sync.window_future_days = 3650;
    for db in common::databases().await {
        let e = env(&db, config.clone()).await.with_testing().await;
        e.account(
            "careless",
            &[
                ("scenario", "emit"),
                ("count", "30"),
                ("checkpoint_every", "7"),
            ],
        )
        .await;
        e.account(
            "echo",
            &[("scenario", "fetch"), ("url", &format!("{base}/echo"))],
        )
        .await;
        e.app
            .store
            .set_secret("echo", "api-token", SECRET)
            .await
            .unwrap();
        // Logs a patient's values, then 300 more lines, before emitting the patient
        // (before: a forced flush at 256 lines wrote the first line unscrubbed).
        e.account(
            "chatty",
            &[("scenario", "emit"), ("count", "5"), ("chatter", "300")],
        )
        .await;
        e.account("cp", &[("scenario", "checkpoint-fail")]).await;
        e.account("boom", &[("scenario", "panic")]).await;
        for account in ["careless", "chatty", "echo", "cp", "boom"] {
            e.sync(account, Mode::Full).await;
            e.sync(account, Mode::Incremental).await;
        }
        check(&e, &db, &capture).await;
    }
}

async fn check(e: &common::Env, db: &Db, capture: &common::Capture) {
    let logs = capture.text();
    let logs_lower = logs.to_lowercase();
    assert!(
        logs.contains("first patient [redacted]"),
        "the careless line must be logged, scrubbed"
    );
    assert!(
        logs.contains("stderr also sees [redacted]"),
        "guest stderr must be logged, scrubbed"
    );

    let mut values = vec![SECRET.to_string()];
    for account in ["careless", "chatty", "cp"] {
        for a in e.app.store.appointments(account).await.unwrap() {
            let p = a.record.patient.unwrap();
            values.extend([p.first_name, p.last_name]);
            values.extend(p.birth_date);
            values.extend(p.email);
            if let Some(phone) = p.phone {
                values.push(phone.chars().filter(|c| c.is_ascii_digit()).collect());
                values.push(phone);
            }
        }
    }
    assert!(
        values.len() > 100,
        "{}: the runs must have stored patients",
        db.name
    );
    let runs = common::all_runs(&e.app).await;
    let runs_text = serde_json::to_string(&runs).unwrap().to_lowercase();
    // One case-insensitive pass over the TRACE output for all values at once.
    let finder = aho_corasick::AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(values.iter().map(|v| v.to_lowercase()))
        .unwrap();
    assert!(
        !finder.is_match(&logs_lower),
        "{}: a log line holds a patient value or secret",
        db.name
    );
    assert!(
        !finder.is_match(&runs_text),
        "{}: a run record holds a patient value or secret",
        db.name
    );
}
