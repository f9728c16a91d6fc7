//! Three `passerelle serve` processes on one PostgreSQL, 2,000 practices due at each
//! minute, and about 100 SIGKILLs of a random daemon at seeded random moments, each
//! followed by a restart: right after the kills every account's stored data is what its
//! runs' records say they committed (and the simulator's), no slot ran twice, no account
//! ever had two runs at once; then every interrupted run's work is done again and the
//! stored data is the simulator's.

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
/// Practices (one Doctolib account each; `PASSERELLE_CHAOS_PRACTICES` for another number).
const PRACTICES: usize = 2_000;
const KILLS: usize = 100;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[tokio::test]
async fn three_daemons_killed_at_random_lose_and_duplicate_nothing() {
    let Some(db) = databases().await.into_iter().find(|d| d.url.is_some()) else {
        eprintln!("SKIPPING: several daemons need PostgreSQL");
        return;
    };
    let seed = env_or("PASSERELLE_CHAOS_SEED", SEED);
    let practices = env_or("PASSERELLE_CHAOS_PRACTICES", PRACTICES);
    let mut config = daemon_config();
    config.schedule.spread_secs = 0;
    config.daemon.lease_secs = 3;
    config.daemon.poll_secs = 1;
    config.daemon.max_concurrent_runs = 8;
    config.daemon.manual_min_interval_secs = 0;
    // An interrupted run's work is queued again up to the attempts allowed: enough here
    // that a run killed again and again is still done.
    config.retry.max_attempts = 10;
    let sim = sim_env_with(&db, sim_config(practices, 4), config).await;
    sim.sim.set_faults(
        "doctolib",
        Faults {
            latency_ms: 10,
            ..Faults::default()
        },
    );
    let store = sim.env.app.store.clone();
    let dirs: Vec<tempfile::TempDir> = (0..DAEMONS).map(|_| tempfile::tempdir().unwrap()).collect();
    for dir in &dirs {
        common::share_secrets_key(sim.env.dir.path(), dir.path());
    }
    // Every practice is due at one slot: the next minute at least 6 s away once the
    // practices are provisioned (hourly, so no second slot comes during the test). Set
    // after provisioning, which takes a while on a busy machine: a slot that passed
    // before the daemons started would be missed, with no earlier plan to catch up from.
    let mut daemons_config = sim.env.app.config.clone();
    let slot = chrono::Utc::now() + chrono::Duration::seconds(66);
    daemons_config.schedule.default_cron = format!("{} * * * *", chrono::Timelike::minute(&slot));
    let config_path = write_config(sim.env.dir.path(), &daemons_config);
    let start = |i: usize| {
        let dir: PathBuf = dirs[i].path().to_path_buf();
        let config_path = config_path.clone();
        async move { ServeProcess::start(&config_path, &dir, &dir.join("serve.log")).await }
    };
    let mut daemons = Vec::new();
    for i in 0..DAEMONS {
        daemons.push(start(i).await);
    }
    // The slot: every practice's run queued.
    let started = std::time::Instant::now();
    wait_for_runs(&store, practices / 2).await;
    eprintln!("chaos: the slot came after {:.0?}", started.elapsed());
    let started = std::time::Instant::now();
    // Kill a random daemon every 0.15–0.8 s, and start it again at once.
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(rng.random_range(150..800))).await;
        let i = rng.random_range(0..DAEMONS);
        let victim = daemons.remove(i);
        victim.signal(Signal::SIGKILL);
        assert!(!victim.exit().await.success());
        daemons.insert(i, start(i).await);
    }
    // The last kill takes them all: what is stored now is checked against what each
    // account's runs recorded as committed — nothing healed it yet.
    for d in daemons {
        d.signal(Signal::SIGKILL);
        assert!(!d.exit().await.success());
    }
    let runs = common::all_runs(&sim.env.app).await;
    let open = runs
        .iter()
        .filter(|r| matches!(r.status, Status::Queued | Status::Running))
        .count();
    let world = sim.sim.world().clone();
    let mut with_killed_runs = 0;
    for account in world.accounts() {
        let mut mine: Vec<&Run> = runs.iter().filter(|r| r.account_id == account.id).collect();
        mine.sort_by_key(|r| r.id);
        // The simulator's world does not change here: whatever was stored is the truth,
        // and was added once, by the run whose checkpoint says so.
        let stored = sim.stored(&account.id).await;
        let added: i64 = mine.iter().map(|r| r.counts.appointments_added).sum();
        assert_eq!(
            stored.len() as i64,
            added,
            "{}: stored appointments against the runs' records",
            account.id
        );
        let truth = sim.truth(&account.id);
        for s in &stored {
            let t = truth.iter().find(|t| t.id == s.id);
            assert!(
                t == Some(s),
                "{}: appointment {} is not the simulator's",
                account.id,
                s.id
            );
        }
        let last_commit = mine
            .iter()
            .rev()
            .find(|r| r.counts.checkpoints > 0)
            .and_then(|r| r.cursor_after.clone());
        assert_eq!(
            store.cursor(&account.id).await.unwrap(),
            last_commit,
            "{}: the cursor is the last committed checkpoint's",
            account.id
        );
        if mine.iter().any(|r| r.status == Status::Running) {
            with_killed_runs += 1;
        }
    }
    eprintln!(
        "chaos: seed {seed}, {KILLS} kills in {:.0?}, {with_killed_runs} accounts with a run killed at the end, {open} runs left",
        started.elapsed()
    );

    // Then every interrupted run's work is done again, and they stop cleanly.
    let mut daemons = Vec::new();
    for i in 0..DAEMONS {
        daemons.push(start(i).await);
    }
    let started = std::time::Instant::now();
    common::daemon::wait_until_settled(&store, 1, 300).await;
    eprintln!("chaos: settled in {:.0?}", started.elapsed());
    for d in daemons {
        d.signal(Signal::SIGTERM);
        assert!(d.exit().await.success());
    }

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
            // At most one per slot (a slot's run coalesces with one still queued); a slot
            // that fell while every daemon was down (the last kill) is one catch-up.
            assert!(
                (1..=taken).contains(&first_attempts) && catch_up <= 1,
                "{}: {first_attempts} scheduled runs for {taken} slots taken, {catch_up} catch-up runs",
                account.id
            );
            // Every interrupted run's work was queued again and done.
            let mut mine: Vec<&Run> = runs
                .iter()
                .filter(|r| r.account_id == account.id && r.status != Status::Skipped)
                .collect();
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

/// Waits until at least `n` runs exist: at most 180 s (the slot is at most 66 s after
/// the test began; queueing 2,000 runs while the test beside this one compiles
/// components on both cores took longer than the 90 s this allowed before).
async fn wait_for_runs(store: &passerelle::store::Store, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM runs")
            .fetch_one(store.pool())
            .await
            .unwrap();
        if row.get::<i64, _>("n") as usize >= n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no slot queued runs: {} of {n} after 180 s",
            row.get::<i64, _>("n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
