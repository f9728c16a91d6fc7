//! Several daemons on one PostgreSQL, in this process (each its own host, id and admin
//! API on one database): one shared queue, each scheduled slot run once, catch-up decided
//! once, "Sync now" coalescing and its minimum interval across daemons, a dead daemon's
//! runs interrupted and done by another while a live one's are left alone; a daemon on
//! another machine (its own data directory) running the versions installed elsewhere,
//! from the database; and SQLite holding one daemon.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use passerelle_tests as common;

use common::daemon::{clock_from, daemon_config, runs_in_order, wait_for_runs};
use common::{databases, sim_config, sim_env_with, Db, SimEnv};
use passerelle::model::run::{Mode, NewRun, Run, Status, Trigger};
use passerelle::serve::{Running, ServeOptions};
use passerelle::service::runs::SyncRequest;
use passerelle::service::ServiceError;
use passerelle_sim::Faults;

/// The PostgreSQL database of this test, or None (SQLite only: skipped, and said).
async fn postgres() -> Option<Db> {
    let db = databases().await.into_iter().find(|d| d.url.is_some());
    if db.is_none() {
        eprintln!("SKIPPING: several daemons need PostgreSQL");
    }
    db
}

/// Starts daemon `id` on the simulator's database and configuration (its own host on
/// the same data dir).
async fn start(sim: &SimEnv, id: &str, options: ServeOptions) -> Running {
    let mut config = sim.env.app.config.clone();
    config.daemon.id = Some(id.into());
    let app = passerelle::Passerelle::open(sim.env.dir.path(), config)
        .await
        .expect("open a daemon's host");
    passerelle::serve::start(
        app,
        ServeOptions {
            write_address_file: false,
            ..options
        },
    )
    .await
    .unwrap_or_else(|e| panic!("start daemon {id}: {e:#}"))
}

/// Waits until `n` runs are recorded and none is queued or running.
async fn wait_until_ended(store: &passerelle::store::Store, n: usize) -> Vec<Run> {
    common::daemon::wait_until_settled(store, n, 120).await
}

/// No account's runs overlap in time (recorded start and end).
fn assert_no_overlap(runs: &[Run]) {
    let mut by_account: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    for r in runs.iter().filter(|r| r.duration_ms.is_some()) {
        let end = r.finished_at.as_deref().expect("ended");
        by_account
            .entry(&r.account_id)
            .or_default()
            .push((&r.started_at, end));
    }
    for (account, mut spans) in by_account {
        spans.sort();
        for w in spans.windows(2) {
            assert!(w[0].1 <= w[1].0, "{account}: runs overlap: {w:?}");
        }
    }
}

#[tokio::test]
async fn three_daemons_share_one_queue_and_run_each_slot_once() {
    let Some(db) = postgres().await else { return };
    // 03:00 Paris on 10 June 2026 is 01:00 UTC; every daemon starts one second before.
    let slot = Utc.with_ymd_and_hms(2026, 6, 10, 1, 0, 0).unwrap();
    let mut config = daemon_config();
    config.schedule.spread_secs = 0;
    config.daemon.max_concurrent_runs = 2;
    let sim = sim_env_with(&db, sim_config(8, 20), config.clone()).await;
    sim.sim.set_faults(
        "doctolib",
        Faults {
            latency_ms: 40,
            ..Faults::default()
        },
    );
    let options = || ServeOptions {
        clock: clock_from(slot - chrono::Duration::seconds(1)),
        write_address_file: false,
    };
    let (a, b, c) = tokio::join!(
        start(&sim, "daemon-a", options()),
        start(&sim, "daemon-b", options()),
        start(&sim, "daemon-c", options()),
    );
    let store = sim.env.app.store.clone();
    let live = store
        .live_daemons(
            &passerelle::store::now_text(),
            &passerelle::store::now_text(),
        )
        .await
        .unwrap();
    let ids: Vec<&str> = live.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["daemon-a", "daemon-b", "daemon-c"]);

    let accounts: Vec<String> = sim.sim.world().accounts().map(|a| a.id.clone()).collect();
    let all = wait_until_ended(&store, accounts.len()).await;
    assert_eq!(all.len(), accounts.len(), "one run per account: {all:?}");
    let mut seen = BTreeSet::new();
    for run in &all {
        assert_eq!(
            (run.trigger, run.status),
            (Trigger::Schedule, Status::Succeeded),
            "{run:?}"
        );
        assert!(seen.insert(run.account_id.clone()), "twice: {run:?}");
    }
    let owners: BTreeSet<&str> = all.iter().filter_map(|r| r.owner.as_deref()).collect();
    assert!(
        owners.len() >= 2,
        "the runs were shared between daemons: {owners:?}"
    );
    // "Sync now" of one practice through all three daemons at once: one run each
    // account, whichever daemon answers.
    let practice = sim.sim.world().practices[0].id.clone();
    let request = SyncRequest {
        account: None,
        full: false,
    };
    let (ra, rb, rc) = tokio::join!(
        a.daemon.sync_now(&practice, &request),
        b.daemon.sync_now(&practice, &request),
        c.daemon.sync_now(&practice, &request),
    );
    let mut run_ids = BTreeSet::new();
    let mut refused = 0;
    for answer in [ra, rb, rc] {
        match answer {
            Ok(requested) => run_ids.extend(requested.iter().map(|r| r.run_id)),
            // A daemon that answers after the run ended is inside the interval.
            Err(ServiceError::TooSoon { .. }) => refused += 1,
            Err(e) => panic!("{e:#}"),
        }
    }
    let practice_accounts = sim.sim.world().practices[0].accounts.len();
    assert_eq!(run_ids.len(), practice_accounts, "coalesced across daemons");
    assert!(refused < 3);
    let manual = wait_for_runs(&store, &run_ids.iter().copied().collect::<Vec<_>>()).await;
    assert!(manual.iter().all(|r| r.status == Status::Succeeded));
    // Inside the minimum interval, every daemon refuses a new manual run.
    for d in [&a, &b, &c] {
        assert!(matches!(
            d.daemon.sync_now(&practice, &request).await,
            Err(ServiceError::TooSoon { .. })
        ));
    }
    assert_no_overlap(&runs_in_order(&store).await);
    for d in [a, b, c] {
        d.shutdown().await.unwrap();
    }
    for account in &accounts {
        sim.assert_matches_truth(account, db.name).await;
    }
}

#[tokio::test]
async fn catch_up_is_decided_once_however_many_daemons_start() {
    let Some(db) = postgres().await else { return };
    let config = daemon_config();
    let sim = sim_env_with(&db, sim_config(3, 20), config.clone()).await;
    let store = sim.env.app.store.clone();
    let now = Utc::now();
    store
        .set_daemon_state(
            "scheduler.scheduled_until",
            &passerelle::store::runs::time_text(now - chrono::Duration::days(3)),
        )
        .await
        .unwrap();
    let options = || ServeOptions {
        clock: clock_from(now),
        write_address_file: false,
    };
    let (a, b) = tokio::join!(
        start(&sim, "daemon-a", options()),
        start(&sim, "daemon-b", options()),
    );
    let accounts = sim.sim.world().accounts().count();
    let all = wait_until_ended(&store, accounts * 2).await;
    let skipped = all.iter().filter(|r| r.status == Status::Skipped).count();
    let catch_up = all.iter().filter(|r| r.trigger == Trigger::CatchUp).count();
    assert_eq!(
        (skipped, catch_up, all.len()),
        (accounts, accounts, accounts * 2),
        "{all:?}"
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// A full scheduled run of an account, as a daemon queues it.
fn new_run<'a>(
    practice: &'a str,
    account: &'a str,
    version: &'a passerelle::store::connectors::ConnectorVersion,
) -> NewRun<'a> {
    NewRun {
        practice_id: practice,
        account_id: account,
        connector: "doctolib",
        connector_version: &version.version,
        connector_sha256: &version.sha256,
        trigger: Trigger::Schedule,
        mode: Mode::Full,
        cursor_before: None,
    }
}

/// What a daemon that died mid-run leaves: its run `running` under a lease that has
/// ended. A live daemon closes it as interrupted and does its work again; a run whose
/// lease is still being renewed is never touched.
#[tokio::test]
async fn a_dead_daemons_run_is_taken_over_and_a_live_ones_is_not() {
    let Some(db) = postgres().await else { return };
    let mut config = daemon_config();
    config.daemon.lease_secs = 3;
    let sim = sim_env_with(&db, sim_config(2, 20), config.clone()).await;
    let store = sim.env.app.store.clone();
    let world = sim.sim.world().clone();
    let dead = &world.practices[0].accounts[0];
    let alive = &world.practices[1].accounts[0];
    let version = store.active_connector("doctolib").await.unwrap().unwrap();
    let (dead_practice, dead_account) = (world.practices[0].id.as_str(), dead.id.as_str());
    let (alive_practice, alive_account) = (world.practices[1].id.as_str(), alive.id.as_str());
    let past = passerelle::store::runs::time_text(Utc::now() - chrono::Duration::seconds(5));
    let future = passerelle::store::runs::time_text(Utc::now() + chrono::Duration::hours(1));
    let mut claimed = Vec::new();
    for (r, owner, lease) in [
        (
            new_run(dead_practice, dead_account, &version),
            "ghost/1",
            &past,
        ),
        (
            new_run(alive_practice, alive_account, &version),
            "elsewhere/2",
            &future,
        ),
    ] {
        let options = passerelle::store::queue::QueueRequest {
            attempt: 1,
            not_before: None,
            slots: &[],
            daemon: owner,
            manual_since: None,
            only_while: None,
        };
        store.queue_runs(&[r], &options).await.unwrap();
        let c = store.claim_run(owner, lease, &[]).await.unwrap().unwrap();
        claimed.push(c.run_id);
    }
    let d = start(&sim, "daemon-a", ServeOptions::default()).await;
    // The dead daemon's run: interrupted, its work queued again and done here.
    let ended = wait_for_runs(&store, &claimed[..1]).await;
    assert_eq!(ended[0].status, Status::Cancelled);
    let detail = ended[0].error_detail.as_deref().unwrap();
    assert!(
        detail.contains("ghost/1") && detail.contains("stopped renewing its lease"),
        "{detail}"
    );
    // Ended by the run recorder, like every run: counted by the run-ended metric.
    let metrics = d.daemon.app.metrics.render();
    assert!(
        metrics.contains(
            r#"passerelle_runs_total{connector="doctolib",status="cancelled",trigger="schedule"} 1"#
        ),
        "{metrics}"
    );
    let again: Vec<i64> = runs_in_order(&store)
        .await
        .iter()
        .filter(|r| r.account_id == dead_account && r.attempt == 2)
        .map(|r| r.id)
        .collect();
    assert_eq!(again.len(), 1);
    let again = wait_for_runs(&store, &again).await;
    assert_eq!(
        (again[0].status, again[0].mode, again[0].owner.as_deref()),
        (Status::Succeeded, Mode::Full, Some("daemon-a"))
    );
    // The live one's run is still running, its lease untouched, and a "Sync now" of its
    // account coalesces with it rather than running beside it.
    let live = store.run(claimed[1]).await.unwrap().unwrap();
    assert_eq!(live.status, Status::Running);
    let answer = d
        .daemon
        .sync_now(
            alive_practice,
            &SyncRequest {
                account: Some(alive_account.into()),
                full: false,
            },
        )
        .await
        .unwrap();
    assert_eq!((answer[0].run_id, answer[0].coalesced), (claimed[1], true));
    d.shutdown().await.unwrap();
    let live = store.run(claimed[1]).await.unwrap().unwrap();
    assert_eq!(
        live.status,
        Status::Running,
        "never taken from a live daemon"
    );
}

#[tokio::test]
async fn a_local_sync_of_an_account_a_daemon_runs_is_refused() {
    for db in databases().await {
        let config = daemon_config();
        let sim = sim_env_with(&db, sim_config(1, 40), config.clone()).await;
        sim.sim.set_faults(
            "doctolib",
            Faults {
                latency_ms: 400,
                ..Faults::default()
            },
        );
        let d = start(&sim, "daemon-a", ServeOptions::default()).await;
        let practice = sim.sim.world().practices[0].id.clone();
        let account_id = sim.sim.world().practices[0].accounts[0].id.clone();
        let answer = d
            .daemon
            .sync_now(
                &practice,
                &SyncRequest {
                    account: Some(account_id.clone()),
                    full: true,
                },
            )
            .await
            .unwrap();
        let store = sim.env.app.store.clone();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while store.run(answer[0].run_id).await.unwrap().unwrap().status != Status::Running {
            assert!(tokio::time::Instant::now() < deadline, "never started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let account = store.account(&account_id).await.unwrap().unwrap();
        let refused = sim
            .env
            .app
            .sync_account(
                &account,
                passerelle::service::sync::SyncOptions {
                    trigger: Trigger::Manual,
                    mode: Mode::Incremental,
                    now: None,
                    record: None,
                },
            )
            .await
            .unwrap_err();
        assert!(
            refused.to_string().contains(&format!(
                "account `{account_id}` is already running: run {}, started",
                answer[0].run_id
            )) && refused.to_string().contains("by daemon-a"),
            "{}: {refused}",
            db.name
        );
        d.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn a_sqlite_database_holds_one_daemon() {
    let db = Db {
        name: "sqlite",
        url: None,
    };
    let config = daemon_config();
    let sim = sim_env_with(&db, sim_config(1, 10), config.clone()).await;
    let first = start(&sim, "daemon-a", ServeOptions::default()).await;
    let mut second_config = sim.env.app.config.clone();
    second_config.daemon.id = Some("daemon-b".into());
    let app = passerelle::Passerelle::open(sim.env.dir.path(), second_config)
        .await
        .unwrap();
    let refused = passerelle::serve::start(app, ServeOptions::default())
        .await
        .err()
        .expect("a second daemon on one SQLite file is refused");
    let message = format!("{refused:#}");
    assert!(
        message.contains("another `passerelle serve` is running on")
            && message.contains("use PostgreSQL"),
        "{message}"
    );
    first.shutdown().await.unwrap();
    // Once the first has stopped, a daemon starts again.
    let again = start(&sim, "daemon-b", ServeOptions::default()).await;
    again.shutdown().await.unwrap();
}

/// A version installed by one daemon runs on a daemon with another data directory (on
/// PostgreSQL: another machine) or whose file is gone (SQLite), from the component's
/// bytes in the database; a version installed before components were stored there has
/// them added the first time a daemon links it from its own file.
#[tokio::test]
async fn a_daemon_without_the_file_runs_the_version_from_the_database() {
    use sqlx::Row;
    for db in databases().await {
        let sim = sim_env_with(&db, sim_config(1, 40), daemon_config()).await;
        let store = sim.env.app.store.clone();
        let account_id = sim.sim.world().practices[0].accounts[0].id.clone();
        let account = store.account(&account_id).await.unwrap().unwrap();
        let active = store.active_connector("doctolib").await.unwrap().unwrap();
        let sync = |app: passerelle::Passerelle| {
            let account = account.clone();
            async move {
                app.sync_account(
                    &account,
                    passerelle::service::sync::SyncOptions {
                        trigger: Trigger::Manual,
                        mode: Mode::Full,
                        now: None,
                        record: None,
                    },
                )
                .await
            }
        };
        let stored = |sha: String| {
            let store = store.clone();
            async move {
                sqlx::query("SELECT COUNT(*) AS n FROM components WHERE sha256 = $1")
                    .bind(sha)
                    .fetch_one(store.pool())
                    .await
                    .unwrap()
                    .get::<i64, _>("n")
            }
        };
        assert_eq!(
            stored(active.sha256.clone()).await,
            1,
            "{}: stored at install",
            db.name
        );

        // As if installed before components were stored: linked from the file, kept.
        sqlx::query("DELETE FROM components")
            .execute(store.pool())
            .await
            .unwrap();
        let same_dir = passerelle::Passerelle::open(sim.env.dir.path(), sim.env.app.config.clone())
            .await
            .unwrap();
        let run = sync(same_dir).await.expect("sync from the file");
        assert_eq!(run.status, Status::Succeeded, "{}: {run:?}", db.name);
        assert_eq!(
            stored(active.sha256.clone()).await,
            1,
            "{}: kept from the file",
            db.name
        );

        // A daemon with no file: on PostgreSQL another data directory, on SQLite the
        // same one with its plugins folder gone.
        let elsewhere = tempfile::tempdir().unwrap();
        common::share_secrets_key(sim.env.dir.path(), elsewhere.path());
        let dir = if db.url.is_some() {
            elsewhere.path().to_path_buf()
        } else {
            std::fs::remove_dir_all(sim.env.app.plugins_dir()).unwrap();
            sim.env.dir.path().to_path_buf()
        };
        let other = passerelle::Passerelle::open(&dir, sim.env.app.config.clone())
            .await
            .unwrap();
        assert!(!other.plugins_dir().join("doctolib").exists());
        let run = sync(other).await.expect("sync from the database");
        assert_eq!(run.status, Status::Succeeded, "{}: {run:?}", db.name);
        assert_eq!(run.connector_sha256, active.sha256);
        sim.assert_matches_truth(&account_id, db.name).await;
    }
}
