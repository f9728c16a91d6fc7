//! The daemon's run life cycle, in-process against the simulator with a controllable
//! clock: scheduled runs at their slot, missed slots recorded as skipped with one
//! catch-up run per account, retries of transient failures (and none for drift), and
//! graceful shutdown. SQLite and PostgreSQL.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use passerelle_tests as common;

use common::daemon::{
    clock_from, daemon_config, daemon_env, run_ids, runs_in_order, wait_for_runs,
};
use common::{databases, sim_config};
use passerelle::model::run::{Mode, Run, Status, Trigger};
use passerelle::serve::ServeOptions;
use passerelle_sim::{Change, Drift, Faults};
use reqwest::{Method, StatusCode};

async fn wait_until_ended(store: &passerelle::store::Store, expected: usize) -> Vec<Run> {
    common::daemon::wait_until_settled(store, expected, 60).await
}

/// Waits until the daemon's metrics show `line`.
async fn wait_for_metric(d: &passerelle_tests::daemon::DaemonEnv, line: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let metrics = d.call(Method::GET, "/metrics", None).await.text;
        if metrics.contains(line) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never saw {line}: {metrics}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_slot_queues_one_incremental_run_per_account() {
    for db in databases().await {
        // 03:00 Paris on 10 June 2026 is 01:00 UTC; start one second before, no spread.
        let slot = Utc.with_ymd_and_hms(2026, 6, 10, 1, 0, 0).unwrap();
        let mut config = daemon_config();
        config.schedule.spread_secs = 0;
        let d = daemon_env(
            &db,
            sim_config(2, 30),
            config,
            ServeOptions {
                clock: clock_from(slot - chrono::Duration::seconds(1)),
                write_address_file: false,
            },
        )
        .await;
        let accounts = d.sim.sim.world().accounts().count();
        let all = wait_until_ended(&d.sim.env.app.store, accounts).await;
        assert_eq!(all.len(), accounts, "exactly one run per account: {all:?}");
        for run in &all {
            assert_eq!(
                (run.trigger, run.mode, run.status),
                (Trigger::Schedule, Mode::Incremental, Status::Succeeded),
                "{run:?}"
            );
        }
        let per_account: BTreeMap<_, usize> = all.iter().fold(BTreeMap::new(), |mut m, r| {
            *m.entry(r.account_id.clone()).or_default() += 1;
            m
        });
        assert!(per_account.values().all(|n| *n == 1));
        let (_, sim) = d.shutdown().await;
        let ids: Vec<String> = sim.sim.world().accounts().map(|a| a.id.clone()).collect();
        for id in ids {
            sim.assert_matches_truth(&id, db.name).await;
        }
    }
}

#[tokio::test]
async fn missed_slots_are_skipped_and_caught_up_once() {
    for db in databases().await {
        // Down from Friday 27 March 2026 12:00 UTC to Monday 30 March 12:00 UTC: the
        // slots of 28, 29 (the spring-forward day) and 30 March are missed.
        let down = Utc.with_ymd_and_hms(2026, 3, 27, 12, 0, 0).unwrap();
        let up = Utc.with_ymd_and_hms(2026, 3, 30, 12, 0, 0).unwrap();
        let sim = common::sim_env_with(&db, sim_config(3, 30), daemon_config()).await;
        sim.env
            .app
            .store
            .set_daemon_state(
                "scheduler.scheduled_until",
                &passerelle::store::runs::time_text(down),
            )
            .await
            .unwrap();
        let dir = sim.env.dir.path().to_path_buf();
        let app = passerelle::Passerelle::open(&dir, sim.env.app.config.clone())
            .await
            .unwrap();
        let running = passerelle::serve::start(
            app,
            ServeOptions {
                clock: clock_from(up),
                write_address_file: false,
            },
        )
        .await
        .unwrap();
        let accounts: Vec<String> = sim.sim.world().accounts().map(|a| a.id.clone()).collect();
        let store = &sim.env.app.store;
        let all = wait_until_ended(store, accounts.len() * 2).await;
        let skipped: Vec<&Run> = all.iter().filter(|r| r.status == Status::Skipped).collect();
        let catch_up: Vec<&Run> = all
            .iter()
            .filter(|r| r.trigger == Trigger::CatchUp)
            .collect();
        assert_eq!(
            skipped.len(),
            accounts.len(),
            "one skipped run per account for the whole gap"
        );
        assert_eq!(
            catch_up.len(),
            accounts.len(),
            "one catch-up run per account"
        );
        assert_eq!(all.len(), accounts.len() * 2, "nothing else ran");
        for r in &skipped {
            assert_eq!(r.trigger, Trigger::Schedule);
            assert_eq!(
                r.error_kind.map(passerelle::model::run::ErrorKind::as_str),
                Some("missed")
            );
            let detail = r.error_detail.as_deref().unwrap();
            assert!(
                detail.contains("at 3 scheduled times from 2026-03-28T")
                    && detail.contains(" to 2026-03-30T"),
                "{detail}"
            );
        }
        for r in &catch_up {
            assert_eq!(r.status, Status::Succeeded, "{r:?}");
            assert_eq!(r.mode, Mode::Incremental);
        }
        let stopped = running.shutdown().await.unwrap();
        assert_eq!((stopped.left_queued, stopped.interrupted), (0, 0));

        // A restart an hour later has nothing to catch up.
        let app = passerelle::Passerelle::open(&dir, sim.env.app.config.clone())
            .await
            .unwrap();
        let running = passerelle::serve::start(
            app,
            ServeOptions {
                clock: clock_from(up + chrono::Duration::hours(1)),
                write_address_file: false,
            },
        )
        .await
        .unwrap();
        // Catch-up is decided during start (it has returned): nothing to catch up, and
        // the next slot is hours away, so nothing else may have been recorded.
        assert_eq!(runs_in_order(store).await.len(), all.len(), "no new runs");
        running.shutdown().await.unwrap();
        for a in &accounts {
            sim.assert_matches_truth(a, db.name).await;
        }
    }
}

/// A data directory last run with its clock in 2021, started on today's clock: one
/// skipped run per account for the whole gap (with the number of slots and the range) and
/// one catch-up each — not a row per missed slot.
#[tokio::test]
async fn a_years_long_gap_is_one_skipped_run_and_one_catch_up_per_account() {
    for db in databases().await {
        let sim = common::sim_env_with(&db, sim_config(2, 10), daemon_config()).await;
        let store = sim.env.app.store.clone();
        store
            .set_daemon_state(
                "scheduler.scheduled_until",
                &passerelle::store::runs::time_text(
                    Utc.with_ymd_and_hms(2021, 1, 1, 12, 0, 0).unwrap(),
                ),
            )
            .await
            .unwrap();
        let running = common::daemon::start_daemon(
            sim.env.dir.path(),
            sim.env.app.config.clone(),
            common::daemon::quiet_options(),
        )
        .await;
        let accounts = sim.sim.world().accounts().count();
        let all = wait_until_ended(&store, accounts * 2).await;
        assert_eq!(all.len(), accounts * 2, "{all:?}");
        let skipped: Vec<&Run> = all.iter().filter(|r| r.status == Status::Skipped).collect();
        assert_eq!(skipped.len(), accounts);
        for r in skipped {
            let detail = r.error_detail.as_deref().unwrap();
            let count: usize = detail
                .split(" scheduled times")
                .next()
                .and_then(|head| head.rsplit(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{detail}"));
            // Daily since 2 January 2021: over two thousand slots, in one row.
            assert!(count > 2000, "{detail}");
            assert!(detail.contains("from 2021-01-02T"), "{detail}");
        }
        assert_eq!(
            all.iter().filter(|r| r.trigger == Trigger::CatchUp).count(),
            accounts
        );
        running.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn transient_failures_retry_and_drift_does_not() {
    for db in databases().await {
        let d = daemon_env(
            &db,
            sim_config(2, 30),
            daemon_config(),
            ServeOptions::default(),
        )
        .await;
        // Every appointments request fails with 503 until the faults are cleared.
        d.sim.sim.set_faults(
            "doctolib",
            Faults {
                endpoint: Some("appointments".into()),
                error_every: 1,
                error_status: Some(503),
                ..Faults::default()
            },
        );
        let a = d.call(Method::POST, "/v1/practices/p002/sync", None).await;
        assert_eq!(a.status, StatusCode::ACCEPTED);
        let first = d.wait_for(&run_ids(&a)).await;
        assert_eq!(first[0].status, Status::Failed);
        assert_eq!(
            first[0]
                .error_kind
                .map(passerelle::model::run::ErrorKind::as_str),
            Some("unavailable")
        );
        assert_eq!(first[0].attempt, 1);
        d.sim.sim.clear_faults();
        let store = &d.sim.env.app.store;
        let all = wait_until_ended(store, 2).await;
        let retry = all
            .iter()
            .find(|r| r.attempt == 2)
            .expect("a second attempt");
        assert_eq!(retry.status, Status::Succeeded, "{retry:?}");
        assert_eq!(retry.trigger, Trigger::Manual, "a retry keeps its trigger");
        assert_eq!(retry.account_id, "p002-cabinet");

        // Failing every time: attempts stop at retry.max_attempts (3).
        d.sim.sim.set_faults(
            "doctolib",
            Faults {
                endpoint: Some("appointments".into()),
                error_every: 1,
                error_status: Some(502),
                ..Faults::default()
            },
        );
        let a = d
            .call(
                Method::POST,
                "/v1/practices/p001/sync",
                Some(serde_json::json!({"account": "p001-cabinet"})),
            )
            .await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
        let all = wait_until_ended(store, 2 + 3).await;
        let p1: Vec<&Run> = all
            .iter()
            .filter(|r| r.account_id == "p001-cabinet")
            .collect();
        assert_eq!(p1.len(), 3, "{p1:?}");
        assert_eq!(p1.iter().map(|r| r.attempt).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(p1.iter().all(|r| r.status == Status::Failed));
        // The worker's decision after the third attempt, then the sync log.
        wait_for_metric(
            &d,
            r#"passerelle_runs_not_retried_total{connector="doctolib",reason="exhausted"} 1"#,
        )
        .await;
        assert_eq!(runs_in_order(store).await.len(), 5, "no fourth attempt");

        // Drift never retries.
        d.sim.sim.set_faults(
            "doctolib",
            Faults {
                endpoint: Some("appointments".into()),
                drift: Some(Drift {
                    field: "start_date".into(),
                    change: Change::Retype,
                    nth: None,
                }),
                ..Faults::default()
            },
        );
        let a = d
            .call(
                Method::POST,
                "/v1/practices/p001/sync",
                Some(serde_json::json!({"account": "p001-dentaire"})),
            )
            .await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
        let drift = d.wait_for(&run_ids(&a)).await;
        assert_eq!(drift[0].status, Status::Drift);
        wait_for_metric(
            &d,
            r#"passerelle_runs_not_retried_total{connector="doctolib",reason="permanent"} 1"#,
        )
        .await;
        assert_eq!(runs_in_order(store).await.len(), 6, "drift is not retried");
        let metrics = d.call(Method::GET, "/metrics", None).await.text;
        assert!(
            metrics.contains(r#"passerelle_drift_events_total{connector="doctolib"} 1"#),
            "{metrics}"
        );
        assert!(
            metrics.contains(r#"passerelle_retries_total{connector="doctolib"} 3"#),
            "{metrics}"
        );
        assert!(metrics.contains(
            r#"passerelle_platform_http_requests_total{connector="doctolib",status="502"}"#
        ));
        d.shutdown().await;
    }
}

#[tokio::test]
async fn shutdown_leaves_what_is_queued_and_interrupts_what_outlives_the_grace() {
    for db in databases().await {
        let mut config = daemon_config();
        config.daemon.max_concurrent_runs = 1;
        config.daemon.shutdown_grace_secs = 1;
        let d = daemon_env(&db, sim_config(3, 30), config, ServeOptions::default()).await;
        // Each response takes 300 ms: a run takes several seconds.
        d.sim.sim.set_faults(
            "doctolib",
            Faults {
                latency_ms: 300,
                ..Faults::default()
            },
        );
        let mut ids = Vec::new();
        for p in ["p001", "p002", "p003"] {
            let a = d
                .call(Method::POST, &format!("/v1/practices/{p}/sync"), None)
                .await;
            ids.extend(run_ids(&a));
        }
        // Shut down once the first run is under way (an event, not a delay).
        let store = d.sim.env.app.store.clone();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        while store.run(ids[0]).await.unwrap().unwrap().status != Status::Running {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the first run never started"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let (stopped, sim) = d.shutdown().await;
        assert_eq!(stopped.interrupted, 1);
        assert_eq!(stopped.left_queued, ids.len() - 1);
        let first = wait_for_runs(&store, &ids[..1]).await;
        assert_eq!(first[0].status, Status::Cancelled, "{:?}", first[0]);
        assert!(first[0]
            .error_detail
            .as_deref()
            .unwrap()
            .contains("grace period"));
        for id in &ids[1..] {
            let run = store.run(*id).await.unwrap().unwrap();
            assert_eq!(
                run.status,
                Status::Queued,
                "left for the next daemon: {run:?}"
            );
        }
        // The next daemon on the database runs what was left queued.
        sim.sim.clear_faults();
        let app = passerelle::Passerelle::open(sim.env.dir.path(), sim.env.app.config.clone())
            .await
            .unwrap();
        let next = passerelle::serve::start(
            app,
            ServeOptions {
                write_address_file: false,
                ..ServeOptions::default()
            },
        )
        .await
        .unwrap();
        for run in wait_for_runs(&store, &ids[1..]).await {
            assert_eq!(run.status, Status::Succeeded, "{run:?}");
        }
        next.shutdown().await.unwrap();
        // What the interrupted run committed at its checkpoints is consistent: another
        // (foreground) full sync completes the data exactly.
        sim.sync("p001-cabinet", Mode::Full).await;
        sim.assert_matches_truth("p001-cabinet", db.name).await;
    }
}

/// A connector's `rate-limited(u32::MAX)` (136 years) queues the retry no later than
/// `retry.max_delay_secs`; and the account's next slot, asked for while that retry
/// waits, runs it now instead of waiting with it.
#[tokio::test]
async fn a_huge_retry_after_is_bounded_and_the_next_slot_still_runs() {
    use sqlx::Row;
    for db in databases().await {
        let mut config = daemon_config();
        config.retry.max_delay_secs = 600.0;
        let e = common::env(&db, config.clone()).await.with_testing().await;
        e.account("limited", &[("scenario", "rate-limited")]).await;
        let d = common::daemon::start_daemon(
            e.dir.path(),
            e.app.config.clone(),
            common::daemon::quiet_options(),
        )
        .await;
        let store = &e.app.store;
        let account = store.account("limited").await.unwrap().unwrap();
        let submitted = d
            .daemon
            .request_run(&account, Trigger::Manual, Mode::Incremental, 1, None)
            .await
            .unwrap();
        let first = common::daemon::wait_for_runs(store, &[submitted.run_id()]).await;
        assert_eq!(
            (
                first[0].error_kind.map(|k| k.as_str()),
                first[0].retry_after_secs
            ),
            (Some("rate-limited"), Some(i64::from(u32::MAX))),
            "{}: {:?}",
            db.name,
            first[0]
        );
        // The retry, queued by the worker after it recorded the run.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        let (retry, not_before) = loop {
            let row = sqlx::query(
                "SELECT id, not_before FROM runs WHERE account_id = 'limited' AND status = 'queued'",
            )
            .fetch_optional(store.pool())
            .await
            .unwrap();
            if let Some(row) = row {
                break (
                    row.get::<i64, _>("id"),
                    row.get::<Option<String>, _>("not_before")
                        .expect("a backoff"),
                );
            }
            assert!(tokio::time::Instant::now() < deadline, "no retry queued");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        let not_before = chrono::DateTime::parse_from_rfc3339(&not_before).unwrap();
        assert!(
            not_before <= Utc::now() + chrono::Duration::seconds(600),
            "{}: retry at {not_before}, later than max_delay_secs",
            db.name
        );
        // The account's next slot comes while the retry waits: it runs now.
        let submitted = d
            .daemon
            .request_run(&account, Trigger::Schedule, Mode::Incremental, 1, None)
            .await
            .unwrap();
        assert_eq!(
            submitted.run_id(),
            retry,
            "{}: the slot joins the waiting retry",
            db.name
        );
        let ran = common::daemon::wait_for_runs(store, &[retry]).await;
        assert_eq!(
            (ran[0].attempt, ran[0].status),
            (2, Status::Failed),
            "{}: {:?}",
            db.name,
            ran[0]
        );
        d.shutdown().await.unwrap();
    }
}
