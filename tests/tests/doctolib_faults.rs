//! Each simulator fault produces the outcome DESIGN.md prescribes, and nothing already
//! stored is lost. SQLite and PostgreSQL.

use passerelle_tests as common;

use common::{databases, sim_config, sim_env, Db, SimEnv};
use passerelle::model::run::{Mode, Run, Status};
use passerelle_sim::{Change, Drift, Faults};

const ACCOUNT: &str = "p001-cabinet";

/// A host with a good full sync stored, then `faults` switched on and one more run.
async fn after_baseline(db: &Db, faults: Faults, mode: Mode) -> (SimEnv, Run) {
    let e = sim_env(db, sim_config(1, 120)).await;
    let run = e.sync(ACCOUNT, Mode::Full).await;
    assert_eq!(run.status, Status::Succeeded);
    e.sim.set_faults("doctolib", faults);
    let run = e.sync(ACCOUNT, mode).await;
    (e, run)
}

fn detail(run: &Run) -> String {
    format!("{:?}: {:?}", run.error_kind, run.error_detail)
}

#[tokio::test]
async fn drift_in_appointments_keeps_the_pages_before_it_and_resumes_there() {
    for db in databases().await {
        let e = sim_env(&db, sim_config(1, 150)).await;
        e.sim.set_faults(
            "doctolib",
            Faults {
                endpoint: Some("appointments".into()),
                drift: Some(Drift {
                    field: "start_date".into(),
                    change: Change::Retype,
                    nth: Some(120),
                }),
                ..Faults::default()
            },
        );
        let run = e.sync(ACCOUNT, Mode::Full).await;
        assert_eq!(run.status, Status::Drift, "{}", detail(&run));
        assert_eq!(
            run.error_kind
                .map(passerelle::model::run::ErrorKind::as_str),
            Some("schema-drift")
        );
        let d = run.error_detail.clone().unwrap();
        assert!(
            d.contains("GET /api/v1/profiles/{id}/appointments")
                && d.contains("$.appointments[20].start_date")
                && d.contains("found integer"),
            "{d}"
        );
        // Page 1 was checkpointed; page 2 (where the drift is) and the slots were not.
        assert_eq!(run.counts.checkpoints, 1);
        assert_eq!(e.stored(ACCOUNT).await.len(), 100, "{}", db.name);
        assert!(e.env.app.store.slots(ACCOUNT).await.unwrap().is_empty());
        assert!(run.cursor_after.is_some());

        // The platform is fixed: an incremental run resumes from the checkpoint.
        e.sim.clear_faults();
        let run = e.sync(ACCOUNT, Mode::Incremental).await;
        assert_eq!(run.status, Status::Succeeded, "{}", detail(&run));
        assert_eq!(run.counts.appointments_added, 50);
        e.assert_matches_truth(ACCOUNT, db.name).await;
    }
}

#[tokio::test]
async fn drift_in_the_booking_document_loses_nothing() {
    for db in databases().await {
        let faults = Faults {
            endpoint: Some("booking".into()),
            drift: Some(Drift {
                field: "visit_motive_ids_by_practice_id".into(),
                change: Change::Rename,
                nth: None,
            }),
            ..Faults::default()
        };
        let (e, run) = after_baseline(&db, faults, Mode::Full).await;
        assert_eq!(run.status, Status::Drift, "{}", detail(&run));
        let d = run.error_detail.clone().unwrap();
        assert!(
            d.contains("GET /booking/{centre}.json")
                && d.contains("$.data.agendas[0].visit_motive_ids_by_practice_id")
                && d.contains("found missing"),
            "{d}"
        );
        assert_eq!(run.counts.appointments_tombstoned, 0);
        e.assert_matches_truth(ACCOUNT, db.name).await;
    }
}

#[tokio::test]
async fn short_429s_are_honoured_and_the_run_completes() {
    for db in databases().await {
        let e = sim_env(&db, sim_config(1, 120)).await;
        // The run's first two requests are answered 429, whatever number it makes.
        e.sim.set_faults(
            "doctolib",
            Faults {
                rate_limit_first: 2,
                retry_after_secs: 1,
                ..Faults::default()
            },
        );
        let run = e.sync(ACCOUNT, Mode::Full).await;
        assert_eq!(run.status, Status::Succeeded, "{}", detail(&run));
        let limited = e.sim.requests().iter().filter(|r| r.status == 429).count();
        assert_eq!(limited, 2, "the fault must have fired");
        assert!(
            run.duration_ms.unwrap() >= 1000 * limited as i64 - 100,
            "each 429 holds the platform's requests for its Retry-After ({} ms for {limited})",
            run.duration_ms.unwrap()
        );
        e.assert_matches_truth(ACCOUNT, db.name).await;
    }
}

#[tokio::test]
async fn long_429_fails_rate_limited_and_loses_nothing() {
    for db in databases().await {
        let faults = Faults {
            rate_limit_every: 1,
            retry_after_secs: 120,
            ..Faults::default()
        };
        let (e, run) = after_baseline(&db, faults, Mode::Incremental).await;
        assert_eq!(run.status, Status::Failed);
        assert_eq!(
            run.error_kind
                .map(passerelle::model::run::ErrorKind::as_str),
            Some("rate-limited")
        );
        assert!(run.error_detail.as_deref().unwrap().contains("120 s"));
        e.assert_matches_truth(ACCOUNT, db.name).await;
    }
}

#[tokio::test]
async fn server_errors_fail_unavailable_and_lose_nothing() {
    for db in databases().await {
        let faults = Faults {
            error_every: 2,
            error_status: Some(502),
            ..Faults::default()
        };
        let (e, run) = after_baseline(&db, faults, Mode::Full).await;
        assert_eq!(run.status, Status::Failed);
        assert_eq!(
            run.error_kind
                .map(passerelle::model::run::ErrorKind::as_str),
            Some("unavailable"),
            "{}",
            detail(&run)
        );
        assert!(run.error_detail.as_deref().unwrap().contains("HTTP 502"));
        assert_eq!(run.counts.appointments_tombstoned, 0);
        e.assert_matches_truth(ACCOUNT, db.name).await;
    }
}

#[tokio::test]
async fn truncated_bodies_fail_clearly_and_lose_nothing() {
    for db in databases().await {
        let faults = Faults {
            truncate_every: 1,
            ..Faults::default()
        };
        let (e, run) = after_baseline(&db, faults, Mode::Full).await;
        assert_eq!(run.status, Status::Failed);
        assert_eq!(
            run.error_kind
                .map(passerelle::model::run::ErrorKind::as_str),
            Some("unavailable")
        );
        assert!(
            run.error_detail
                .as_deref()
                .unwrap()
                .contains("response body truncated"),
            "{}",
            detail(&run)
        );
        e.assert_matches_truth(ACCOUNT, db.name).await;
    }
}

#[tokio::test]
async fn latency_slows_but_does_not_fail() {
    let db = &databases().await[0];
    let e = sim_env(db, sim_config(1, 30)).await;
    e.sim.set_faults(
        "doctolib",
        Faults {
            endpoint: Some("booking".into()),
            latency_ms: 300,
            ..Faults::default()
        },
    );
    let run = e.sync(ACCOUNT, Mode::Full).await;
    assert_eq!(run.status, Status::Succeeded);
    assert!(run.duration_ms.unwrap() >= 300);
    e.assert_matches_truth(ACCOUNT, db.name).await;
}

#[tokio::test]
async fn a_wrong_token_is_unauthorized_and_loses_nothing() {
    for db in databases().await {
        let (e, _) = after_baseline(&db, Faults::default(), Mode::Full).await;
        e.env
            .app
            .store
            .set_secret(ACCOUNT, "api-token", "sim-token-wrong")
            .await
            .unwrap();
        let run = e.sync(ACCOUNT, Mode::Full).await;
        assert_eq!(run.status, Status::Failed);
        assert_eq!(
            run.error_kind
                .map(passerelle::model::run::ErrorKind::as_str),
            Some("unauthorized"),
            "{}",
            detail(&run)
        );
        assert!(!run.error_detail.as_deref().unwrap().contains("sim-token"));
        e.assert_matches_truth(ACCOUNT, db.name).await;
    }
}
