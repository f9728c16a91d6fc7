//! The daemon at scale: N practices (default 10,000) on the five platforms — every
//! practice on Doctolib with two profiles; one in three also on Keldoc and Maiia, one on
//! Ordoclic, one on Mapharma — all due at the same scheduled slot (no spread), against
//! the in-process simulator with no artificial latency, on SQLite. The daemon runs as
//! `passerelle serve` does (scheduler, queue, workers), with a clock set just before the
//! slot.
//!
//! Prints: time from the slot to the last run's end, runs/s, the scheduler's time per
//! run, resident memory (the process's peak, which includes the simulator, and the
//! simulator's share measured before the host starts), and per platform: runs, runs/s
//! over its runs' span, mean run time, and where run time went — in the guest (its
//! sandbox time less its wait on the platform), in the simulator (building answers),
//! and in the host (the rest: store, HTTP client and server, scheduling).
//!
//! `cargo xtask bench` (or, with the components built, `cargo bench -p passerelle-tests
//! --bench daemon`). PASSERELLE_BENCH_DAEMON_PRACTICES sizes it; PASSERELLE_BENCH_WORKERS
//! sets daemon.max_concurrent_runs (default 8).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use passerelle::serve::ServeOptions;
use passerelle::service::config::Config;
use passerelle::Passerelle;
use passerelle_tests::component;
use sqlx::Row;

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn count(store: &passerelle::store::Store, sql: &str) -> i64 {
    sqlx::query(sql)
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get::<i64, _>(0)
}

#[tokio::main]
async fn main() {
    let practices = env_usize("PASSERELLE_BENCH_DAEMON_PRACTICES", 10_000);
    let workers = env_usize("PASSERELLE_BENCH_WORKERS", 8);
    let rss_start = rss_kib("VmRSS:");
    // 03:00 Paris on 10 June 2026 (01:00 UTC): the slot every practice shares.
    let slot = Utc.with_ymd_and_hms(2026, 6, 10, 1, 0, 0).unwrap();
    let sim = passerelle_sim::Simulator::new(passerelle_sim::SimConfig {
        seed: 11,
        practices,
        dentist_every: 1,
        appointments_per_account: 10,
        availability_days: 7,
        ..passerelle_sim::SimConfig::default()
    });
    let running_sim = sim.serve(([127, 0, 0, 1], 0).into()).await.unwrap();
    let rss_sim = rss_kib("VmRSS:");
    let accounts = sim.world().accounts().count();

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        http: passerelle::dev::demo::simulator_policy(&running_sim.base_url),
        ..Config::default()
    };
    config.daemon.listen = ([127, 0, 0, 1], 0).into();
    config.daemon.max_concurrent_runs = workers;
    config.daemon.max_concurrent_per_connector = workers;
    config.schedule.spread_secs = 0;
    let provisioning = Instant::now();
    {
        let app = Passerelle::open(dir.path(), config.clone()).await.unwrap();
        for platform in passerelle_sim::PLATFORMS {
            app.install_plugin(&component(platform)).await.unwrap();
        }
        let world = sim.world().clone();
        passerelle::dev::demo::provision(&app, &world)
            .await
            .unwrap();
        app.store.close().await;
    }
    let mut per_platform = std::collections::BTreeMap::<&str, usize>::new();
    for a in sim.world().accounts() {
        *per_platform.entry(a.platform.as_str()).or_default() += 1;
    }
    println!(
        "daemon bench: {practices} practices, {accounts} accounts ({per_platform:?}), SQLite, {workers} runs at once; provisioned in {:.1} s",
        provisioning.elapsed().as_secs_f64()
    );
    let rss_before = rss_kib("VmRSS:");

    // The daemon's clock reads one second before the slot when it starts.
    let first_read = std::sync::OnceLock::new();
    let lead = Duration::from_secs(1);
    let clock: passerelle::daemon::Clock = Arc::new(move || {
        slot - chrono::Duration::from_std(lead).unwrap()
            + (Utc::now() - *first_read.get_or_init(Utc::now))
    });
    let app = Passerelle::open(dir.path(), config).await.unwrap();
    let store = app.store.clone();
    let metrics_app = app.metrics.clone();
    let started = Instant::now();
    let running = passerelle::serve::start(
        app,
        ServeOptions {
            clock,
            write_address_file: false,
        },
    )
    .await
    .unwrap();
    let window_start = started + lead;
    let mut last_report = Instant::now();
    let mut all_queued_at = None;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let ended = count(
            &store,
            "SELECT COUNT(*) FROM runs WHERE status NOT IN ('queued', 'running')",
        )
        .await;
        if all_queued_at.is_none()
            && count(&store, "SELECT COUNT(*) FROM runs").await >= accounts as i64
        {
            all_queued_at = Some(window_start.elapsed());
        }
        if ended >= accounts as i64 {
            break;
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            println!(
                "  … {ended}/{accounts} runs ended after {:.0} s",
                window_start.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
    }
    let elapsed = window_start.elapsed().as_secs_f64();
    let succeeded = count(
        &store,
        "SELECT COUNT(*) FROM runs WHERE status = 'succeeded'",
    )
    .await;
    let appointments = count(&store, "SELECT COUNT(*) FROM appointments").await;
    let per_run = sqlx::query(
        "SELECT AVG(duration_ms * 1.0), AVG(http_requests * 1.0), AVG(slots_written * 1.0),
                AVG(appointments_added * 1.0) FROM runs",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    let rss_peak = rss_kib("VmHWM:");
    let scheduler = metrics_app.scheduler_seconds();
    // Per platform: runs, their span (first start to last end), mean and total time.
    let rows = sqlx::query(
        "SELECT connector, COUNT(*), SUM(duration_ms) * 1.0,
                (julianday(MAX(finished_at)) - julianday(MIN(started_at))) * 86400.0
         FROM runs GROUP BY connector ORDER BY connector",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let busy = sim.busy();
    running.shutdown().await.unwrap();
    assert_eq!(succeeded, accounts as i64, "every run must succeed");
    println!(
        "  all {accounts} runs done {elapsed:.1} s after the slot: {:.0} runs/s, {appointments} appointments stored",
        accounts as f64 / elapsed
    );
    println!(
        "  per run: {:.0} ms, {:.1} HTTP requests, {:.0} slots and {:.1} appointments written",
        per_run.get::<f64, _>(0),
        per_run.get::<f64, _>(1),
        per_run.get::<f64, _>(2),
        per_run.get::<f64, _>(3)
    );
    println!(
        "  every run queued {:.2} s after the slot; scheduler time {:.2} s in all, {:.1} µs per run",
        all_queued_at.map_or(f64::NAN, |d| d.as_secs_f64()),
        scheduler,
        scheduler * 1e6 / accounts as f64
    );
    println!(
        "  resident memory: peak {:.0} MiB for the process; the simulator and its world took {:.0} MiB before the host opened; so the daemon's share is about {:.0} MiB",
        rss_peak as f64 / 1024.0,
        (rss_sim.saturating_sub(rss_start)) as f64 / 1024.0,
        (rss_peak.saturating_sub(rss_sim)) as f64 / 1024.0,
    );
    println!(
        "  per platform: runs, runs/s over its runs' span, mean run ms; share of run time in the guest / simulator / host"
    );
    for row in rows {
        let connector: String = row.get(0);
        let runs: i64 = row.get(1);
        let total_s = row.get::<f64, _>(2) / 1000.0;
        let span_s: f64 = row.get(3);
        let (sandbox_s, wait_s) = metrics_app.sandbox_seconds(&connector);
        let sim_s = busy.get(&connector).map_or(0.0, Duration::as_secs_f64);
        let guest_s = (sandbox_s - wait_s).max(0.0);
        let host_s = (total_s - guest_s - sim_s).max(0.0);
        let pct = |x: f64| 100.0 * x / total_s.max(f64::EPSILON);
        println!(
            "    {connector:<9} {runs:>6} runs  {:>7.0} runs/s  {:>6.1} ms/run  guest {:>4.1}%  simulator {:>4.1}%  host {:>4.1}%",
            runs as f64 / span_s.max(f64::EPSILON),
            1000.0 * total_s / runs as f64,
            pct(guest_s),
            pct(sim_s),
            pct(host_s),
        );
    }
    let _ = rss_before;
}
