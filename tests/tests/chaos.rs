//! Three `passerelle serve` processes on one PostgreSQL, SIGKILLed at seeded random
//! moments and restarted while every practice is due each minute: no slot runs twice or
//! is lost, no account ever has two runs at once, every interrupted run's work is done
//! again, and the stored data is the simulator's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::Signal;
use passerelle_tests as common;
use rand::{Rng, SeedableRng};
use sqlx::Row;

use common::daemon::{daemon_config, write_config, ServeProcess};
use common::{databases, sim_config, sim_env_with};
use passerelle::model::run::{Run, Status, Trigger};
use passerelle_sim::Faults;

/// The seed of the kill schedule (`PASSERELLE_CHAOS_SEED` for another).
const SEED: u64 = 14;
const DAEMONS: usize = 3;

#[tokio::test]
async fn three_daemons_killed_at_random_lose_and_duplicate_nothing() {
    let Some(db) = databases().await.into_iter().find(|d| d.url.is_some()) else {
        eprintln!("SKIPPING: several daemons need PostgreSQL");
        return;
    };
    let seed = std::env::var("PASSERELLE_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED);
    let mut config = daemon_config();
    // Every practice is due every minute, at the minute.
    config.schedule.default_cron = "* * * * *".into();
    config.schedule.spread_secs = 0;
    config.daemon.lease_secs = 3;
    config.daemon.poll_secs = 1;
    config.daemon.max_concurrent_runs = 4;
    config.daemon.manual_min_interval_secs = 0;
    // An interrupted run's work is queued again up to the attempts allowed: enough here
    // that a run killed again and again is still done.
    config.retry.max_attempts = 10;
    let sim = sim_env_with(&db, sim_config(30, 30), config).await;
    sim.sim.set_faults(
        "doctolib",
        Faults {
            latency_ms: 40,
            ..Faults::default()
        },
    );
    let store = sim.env.app.store.clone();
    let dirs: Vec<tempfile::TempDir> = (0..DAEMONS).map(|_| tempfile::tempdir().unwrap()).collect();
    let config_path = write_config(sim.env.dir.path(), &sim.env.app.config);
    let start = |i: usize| {
        let dir: PathBuf = dirs[i].path().to_path_buf();
        let config_path = config_path.clone();
        async move { ServeProcess::start(&config_path, &dir, &dir.join("serve.log")).await }
    };
    let mut daemons = Vec::new();
    for i in 0..DAEMONS {
        daemons.push(start(i).await);
    }
    // Kill a random daemon every 0.3–2 s for 100 s (at least one slot boundary), and
    // start it again at once.
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let until = tokio::time::Instant::now() + Duration::from_secs(100);
    let mut kills = 0;
    while tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..2000))).await;
        let i = rng.random_range(0..DAEMONS);
        let victim = daemons.remove(i);
        victim.signal(Signal::SIGKILL);
        assert!(!victim.exit().await.success());
        kills += 1;
        daemons.insert(i, start(i).await);
    }
    // Let every interrupted run's lease end and its work be done, then stop cleanly
    // between two slots.
    tokio::time::sleep(Duration::from_secs(4)).await;
    common::daemon::wait_until_settled(&store, 1, 120).await;
    for d in daemons {
        d.signal(Signal::SIGTERM);
        assert!(d.exit().await.success());
    }
    eprintln!("chaos: seed {seed}, {kills} kills");
    assert!(kills >= 50, "{kills} kills");

    let runs = common::all_runs(&sim.env.app).await;
    // Each practice's slots taken once (the primary key), and each account has at most
    // one first-attempt scheduled run per slot its practice took.
    let rows =
        sqlx::query("SELECT practice_id, COUNT(*) AS n FROM scheduled_slots GROUP BY practice_id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    let slots: BTreeMap<String, i64> = rows
        .iter()
        .map(|r| (r.get::<String, _>("practice_id"), r.get::<i64, _>("n")))
        .collect();
    let world = sim.sim.world().clone();
    for practice in &world.practices {
        let taken = slots.get(&practice.id).copied().unwrap_or(0);
        assert!(taken >= 1, "{}: no slot taken", practice.id);
        for account in &practice.accounts {
            let first_attempts = runs
                .iter()
                .filter(|r| {
                    r.account_id == account.id
                        && r.trigger == Trigger::Schedule
                        && r.attempt == 1
                        && r.status != Status::Skipped
                })
                .count() as i64;
            let catch_up = runs
                .iter()
                .filter(|r| r.account_id == account.id && r.trigger == Trigger::CatchUp)
                .count();
            // At most one per slot (a slot's run coalesces with one still queued).
            assert!(
                (1..=taken).contains(&first_attempts) && catch_up == 0,
                "{}: {first_attempts} scheduled runs for {taken} slots taken, {catch_up} catch-up runs while daemons lived",
                account.id
            );
            // Every interrupted run's work was queued again and done.
            let mut mine: Vec<&Run> = runs.iter().filter(|r| r.account_id == account.id).collect();
            mine.sort_by_key(|r| r.id);
            let last = mine.last().unwrap();
            assert_eq!(last.status, Status::Succeeded, "{last:?}");
        }
    }
    // No account ever had two runs at once.
    let mut spans: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    for r in runs.iter().filter(|r| r.status != Status::Skipped) {
        if let Some(end) = r.finished_at.as_deref() {
            spans
                .entry(&r.account_id)
                .or_default()
                .push((&r.started_at, end));
        }
    }
    for (account, mut s) in spans {
        s.sort();
        for w in s.windows(2) {
            assert!(w[0].1 <= w[1].0, "{account}: runs overlap: {w:?}");
        }
    }
    let interrupted = runs
        .iter()
        .filter(|r| {
            r.error_detail
                .as_deref()
                .is_some_and(|d| d.contains("stopped renewing its lease"))
        })
        .count();
    assert!(interrupted > 0, "the kills interrupted runs");
    let owners: BTreeSet<&str> = runs.iter().filter_map(|r| r.owner.as_deref()).collect();
    eprintln!(
        "chaos: {} runs, {interrupted} interrupted by a kill, {} daemon ids",
        runs.len(),
        owners.len()
    );
    for account in world.accounts() {
        sim.assert_matches_truth(&account.id, db.name).await;
    }
}
