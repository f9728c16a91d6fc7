//! Hot swap figures, on the daemon in-process with the simulator (SQLite):
//!
//! 1. a new component file dropped into the watched directory → active → first run on
//!    it, with an empty compile cache and with the artifact already cached;
//! 2. activation itself (a kept, linked version made active: one transaction), p50/p99
//!    over many switches;
//! 3. run throughput under continuous "Sync now" load: steady, and during a window in
//!    which a new version is dropped in (compiled and activated) and then rolled back
//!    and forth.
//!
//! `cargo xtask bench` (or, with the components built, `cargo bench -p passerelle-tests
//! --bench hot_swap`). PASSERELLE_BENCH_SWAP_SECS sets each throughput window (default 10).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use passerelle::daemon::ServeOptions;
use passerelle::store::runs::{RunFilter, Status};
use passerelle_tests::daemon::{daemon_config, daemon_env, sync_load, DaemonEnv};
use passerelle_tests::{databases, sim_config, variant};
use serde_json::json;

const FIXED: &str = "doctolib-0.2.0-start-date-v2.wasm";

async fn start(watched: &Path, db: &passerelle_tests::Db) -> DaemonEnv {
    let mut config = daemon_config();
    config.daemon.manual_min_interval_secs = 0;
    config.daemon.max_concurrent_runs = 4;
    config.plugins.watch_dir = Some(watched.to_path_buf());
    config.plugins.settle_ms = 100;
    daemon_env(db, sim_config(8, 20), config, ServeOptions::default()).await
}

/// Drops the fixed version into the watched directory; returns (drop → active, active →
/// first run on it ended, how the component was obtained).
async fn drop_and_first_run(d: &DaemonEnv, watched: &Path) -> (Duration, Duration) {
    let bytes = std::fs::read(variant(FIXED)).unwrap();
    let sha = passerelle::runtime::sha256_hex(&bytes);
    let store = &d.sim.env.app.store;
    let tmp = watched.join(".fixed.part");
    std::fs::write(&tmp, &bytes).unwrap();
    let dropped = Instant::now();
    std::fs::rename(&tmp, watched.join("fixed.wasm")).unwrap();
    loop {
        if let Some(a) = store.active_connector("doctolib").await.unwrap() {
            if a.sha256 == sha {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let active = dropped.elapsed();
    let practice = d.sim.sim.world().practices[0].id.clone();
    let answer = d
        .call(
            reqwest::Method::POST,
            &format!("/v1/practices/{practice}/sync"),
            Some(json!({})),
        )
        .await;
    let ids = passerelle_tests::daemon::run_ids(&answer);
    let runs = d.wait_for(&ids).await;
    assert!(runs
        .iter()
        .all(|r| r.connector_sha256 == sha && r.status == Status::Succeeded));
    (active, dropped.elapsed() - active)
}

/// Runs ended per second over `window`, under continuous Sync now load on every practice.
async fn throughput(
    d: &DaemonEnv,
    window: Duration,
    during: impl std::future::Future<Output = ()>,
) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let practices: Vec<String> = d
        .sim
        .sim
        .world()
        .practices
        .iter()
        .map(|p| p.id.clone())
        .collect();
    let load = sync_load(d.base.clone(), practices, stop.clone());
    tokio::time::sleep(Duration::from_secs(1)).await; // warm: the queue is full
    let store = &d.sim.env.app.store;
    let ended = |store: passerelle::store::Store| async move {
        store
            .list_runs(&RunFilter {
                limit: Some(100_000),
                ..RunFilter::default()
            })
            .await
            .unwrap()
            .iter()
            .filter(|r| r.status == Status::Succeeded)
            .count()
    };
    let before = ended(store.clone()).await;
    let started = Instant::now();
    tokio::join!(during, tokio::time::sleep(window));
    let after = ended(store.clone()).await;
    let rate = (after - before) as f64 / started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    // Let the queue drain before the next measure.
    loop {
        let busy = store
            .list_runs(&RunFilter {
                limit: Some(100),
                ..RunFilter::default()
            })
            .await
            .unwrap()
            .iter()
            .any(|r| matches!(r.status, Status::Queued | Status::Running));
        if !busy {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let failed = store
        .list_runs(&RunFilter {
            status: Some(Status::Failed),
            limit: Some(10),
            ..RunFilter::default()
        })
        .await
        .unwrap();
    assert!(failed.is_empty(), "runs failed: {failed:?}");
    rate
}

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::var("PASSERELLE_BENCH_SWAP_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let db = databases().await.remove(0);
    assert_eq!(db.name, "sqlite");

    // 1. New file → first run, cold then with the artifact cached.
    let watched = tempfile::tempdir().unwrap();
    let d = start(watched.path(), &db).await;
    let (cold_active, cold_run) = drop_and_first_run(&d, watched.path()).await;
    let cache = d.sim.env.dir.path().join("cache");
    let (_, sim) = d.shutdown().await;
    let watched2 = tempfile::tempdir().unwrap();
    let d = start(watched2.path(), &db).await;
    copy_dir(&cache, &d.sim.env.dir.path().join("cache"));
    drop(sim);
    let (warm_active, warm_run) = drop_and_first_run(&d, watched2.path()).await;
    println!(
        "new file → active: {:.0} ms with an empty compile cache, {:.0} ms with the artifact cached (settle time 100 ms included)",
        cold_active.as_secs_f64() * 1000.0,
        warm_active.as_secs_f64() * 1000.0
    );
    println!(
        "active → first run on it ended (one practice's accounts, Sync now): {:.0} ms cold, {:.0} ms cached",
        cold_run.as_secs_f64() * 1000.0,
        warm_run.as_secs_f64() * 1000.0
    );

    // 2. Activation alone: switch between two kept, linked versions.
    let app = d.running.daemon.app.clone();
    let mut ms: Vec<f64> = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        app.rollback("doctolib", None).await.unwrap();
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    println!(
        "activation (compile excluded, 200 switches): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms[ms.len() / 2],
        ms[ms.len() * 99 / 100],
        ms[ms.len() - 1]
    );
    d.shutdown().await;

    // 3. Throughput: steady, then while a new version is compiled, activated and
    // switched back and forth.
    let watched3 = tempfile::tempdir().unwrap();
    let d = start(watched3.path(), &db).await;
    let window = Duration::from_secs(secs);
    let steady = throughput(&d, window, async {}).await;
    let app = d.running.daemon.app.clone();
    let dir = watched3.path().to_path_buf();
    let compile = Arc::new(std::sync::Mutex::new(Duration::ZERO));
    let c = compile.clone();
    let swapping = throughput(&d, window, async move {
        let t = Instant::now();
        std::fs::copy(variant(FIXED), dir.join("fixed.wasm")).unwrap();
        while app
            .store
            .active_connector("doctolib")
            .await
            .unwrap()
            .unwrap()
            .version
            != "0.2.0"
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        *c.lock().unwrap() = t.elapsed();
        for _ in 0..10 {
            tokio::time::sleep(window / 12).await;
            app.rollback("doctolib", None).await.unwrap();
        }
    })
    .await;
    println!(
        "throughput (8 practices × 2 accounts, 4 workers, continuous Sync now): steady {steady:.1} runs/s; during a swap window {swapping:.1} runs/s ({:+.1}%); drop → active took {:.0} ms of the {secs} s window, then 10 switches",
        (swapping / steady - 1.0) * 100.0,
        compile.lock().unwrap().as_secs_f64() * 1000.0
    );
    d.shutdown().await;
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}
