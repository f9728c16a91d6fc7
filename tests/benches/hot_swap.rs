//! Hot swap figures, on the daemon in-process with the simulator (SQLite):
//!
//! 1. a new component file dropped into the watched directory → active → first run on
//!    it, with an empty compile cache and with the artifact already cached;
//! 2. activation itself (a kept, linked version made active: one transaction), p50/p99
//!    over many switches;
//! 3. run throughput under continuous "Sync now" load, in windows taken in turn: steady,
//!    one in which a new version is dropped in (compiled, described, activated), and ones
//!    with ten switches between kept versions; with the compile's CPU share of a window
//!    (its CPU time, measured with the daemon otherwise idle, over window × cores) for
//!    comparison.
//!
//! `cargo xtask bench` (or, with the components built, `cargo bench -p passerelle-tests
//! --bench hot_swap`). PASSERELLE_BENCH_SWAP_SECS sets each throughput window (default 10).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use passerelle::model::run::{RunFilter, Status};
use passerelle::serve::ServeOptions;
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

/// The process's CPU time so far (user + system).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is the 12th, stime
    // the 13th, in clock ticks (100 per second on Linux).
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// Drops the fixed version into the watched directory; returns (drop → active, active →
/// first run on it ended, the process's CPU time from drop to active).
async fn drop_and_first_run(d: &DaemonEnv, watched: &Path) -> (Duration, Duration, Duration) {
    let bytes = std::fs::read(variant(FIXED)).unwrap();
    let sha = passerelle::model::sha256_hex(&bytes);
    let store = &d.sim.env.app.store;
    let tmp = watched.join(".fixed.part");
    std::fs::write(&tmp, &bytes).unwrap();
    let cpu_before = cpu_time();
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
    let cpu = cpu_time().saturating_sub(cpu_before);
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
    (active, dropped.elapsed() - active, cpu)
}

/// Runs ended per second over `window`, under continuous Sync now load on every practice.
async fn throughput(
    d: &DaemonEnv,
    window: Duration,
    during: impl std::future::Future<Output = ()>,
) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let load = sync_load(d.base.clone(), d.practice_ids(), stop.clone());
    tokio::time::sleep(Duration::from_secs(1)).await; // warm: the queue is full
    let store = &d.sim.env.app.store;
    let ended = |store: passerelle::store::Store| async move {
        store
            .list_runs(&RunFilter {
                limit: Some(10_000),
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
    let (cold_active, cold_run, compile_cpu) = drop_and_first_run(&d, watched.path()).await;
    let cache = d.sim.env.dir.path().join("cache");
    let (_, sim) = d.shutdown().await;
    let watched2 = tempfile::tempdir().unwrap();
    let d = start(watched2.path(), &db).await;
    copy_dir(&cache, &d.sim.env.dir.path().join("cache"));
    drop(sim);
    let (warm_active, warm_run, warm_cpu) = drop_and_first_run(&d, watched2.path()).await;
    println!(
        "new file → active: {:.0} ms with an empty compile cache, {:.0} ms with the artifact cached (settle time 100 ms included)",
        cold_active.as_secs_f64() * 1000.0,
        warm_active.as_secs_f64() * 1000.0
    );
    println!(
        "CPU time from drop to active (compile, describe, activation; the daemon otherwise idle): {:.0} ms cold, {:.0} ms cached",
        compile_cpu.as_secs_f64() * 1000.0,
        warm_cpu.as_secs_f64() * 1000.0
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

    // 3. Throughput, windows in turn: steady; a new version dropped in (compiled,
    // described, activated); steady; ten switches; steady; ten switches.
    let watched3 = tempfile::tempdir().unwrap();
    let d = start(watched3.path(), &db).await;
    let window = Duration::from_secs(secs);
    let app = d.running.daemon.app.clone();
    let switches = || {
        let app = app.clone();
        async move {
            for _ in 0..10 {
                tokio::time::sleep(window / 12).await;
                app.rollback("doctolib", None).await.unwrap();
            }
        }
    };
    let mut steady = vec![throughput(&d, window, async {}).await];
    let dir = watched3.path().to_path_buf();
    let app2 = app.clone();
    let with_compile = throughput(&d, window, async move {
        std::fs::copy(variant(FIXED), dir.join("fixed.wasm")).unwrap();
        while app2
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
    })
    .await;
    let mut with_switches = Vec::new();
    for _ in 0..2 {
        steady.push(throughput(&d, window, async {}).await);
        with_switches.push(throughput(&d, window, switches()).await);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let base = mean(&steady);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    println!(
        "throughput (8 practices × 2 accounts, 4 workers, continuous Sync now, {secs} s windows): steady {base:.1} runs/s (windows {steady:.1?}); with a new version compiled and activated {with_compile:.1} ({:+.1}%; the compile's CPU share of the window: {:.1}%); with 10 switches {:.1} ({:+.1}%, windows {with_switches:.1?})",
        (with_compile / base - 1.0) * 100.0,
        compile_cpu.as_secs_f64() / (window.as_secs_f64() * cores) * 100.0,
        mean(&with_switches),
        (mean(&with_switches) / base - 1.0) * 100.0,
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
