//! End-to-end sync rate: the in-process simulator (no artificial latency), the host and
//! doctolib.wasm on SQLite, all over real HTTP. Prints runs/s and appointments/s for a
//! full sync of every account and for an incremental sync after one simulated step, run
//! one at a time and with several runs in flight.
//!
//! `cargo xtask bench` (or, with the components built, `cargo bench -p passerelle-tests
//! --bench e2e`). Size with PASSERELLE_BENCH_PRACTICES (default 40).

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use passerelle::model::run::{Mode, Run, Status, Trigger};
use passerelle::service::sync::SyncOptions;
use passerelle::Passerelle;
use passerelle_tests::{component, sim_config};

async fn sync_all(
    app: &Arc<Passerelle>,
    ids: &[String],
    mode: Mode,
    in_flight: usize,
) -> (Vec<Run>, f64) {
    let started = Instant::now();
    let runs: Vec<Run> = futures::stream::iter(ids.iter().cloned())
        .map(|id| {
            let app = app.clone();
            tokio::spawn(async move {
                let account = app.store.account(&id).await.unwrap().unwrap();
                app.sync_account(
                    &account,
                    SyncOptions {
                        trigger: Trigger::Manual,
                        mode,
                        now: None,
                        record: None,
                    },
                )
                .await
                .unwrap()
            })
        })
        .buffer_unordered(in_flight)
        .map(|r| r.unwrap())
        .collect()
        .await;
    (runs, started.elapsed().as_secs_f64())
}

fn report(label: &str, runs: &[Run], secs: f64) {
    let failed = runs
        .iter()
        .filter(|r| r.status != Status::Succeeded)
        .count();
    assert_eq!(
        failed,
        0,
        "{label}: {failed} runs failed: {:?}",
        runs.iter()
            .find(|r| r.status != Status::Succeeded)
            .map(|r| &r.error_detail)
    );
    let appointments: i64 = runs
        .iter()
        .map(|r| r.counts.appointments_added + r.counts.appointments_changed)
        .sum();
    let slots: i64 = runs.iter().map(|r| r.counts.slots_written).sum();
    let requests: i64 = runs.iter().map(|r| r.counts.http_requests).sum();
    let mut durations: Vec<i64> = runs.iter().map(|r| r.duration_ms.unwrap_or(0)).collect();
    durations.sort();
    println!(
        "{label:<40} {:>4} runs in {secs:>6.2} s: {:>7.1} runs/s, {:>8.0} appointments/s ({appointments} written), {:>8.0} slots/s, {:>6.0} HTTP req/s; run p50 {} ms, max {} ms",
        runs.len(),
        runs.len() as f64 / secs,
        appointments as f64 / secs,
        slots as f64 / secs,
        requests as f64 / secs,
        durations[durations.len() / 2],
        durations[durations.len() - 1],
    );
}

fn main() {
    let practices: usize = std::env::var("PASSERELLE_BENCH_PRACTICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for in_flight in [1usize, 4] {
            let sim = passerelle_sim::Simulator::new(sim_config(practices, 120));
            let running = sim.serve(([127, 0, 0, 1], 0).into()).await.unwrap();
            let dir = tempfile::tempdir().unwrap();
            let config = passerelle::service::config::Config {
                http: passerelle::dev::demo::simulator_policy(&running.base_url),
                ..Default::default()
            };
            let app = Arc::new(Passerelle::open(dir.path(), config).await.unwrap());
            app.install_plugin(&component("doctolib")).await.unwrap();
            let world = sim.world().clone();
            passerelle::dev::demo::provision(&app, &world).await.unwrap();
            let ids: Vec<String> = world.accounts().map(|a| a.id.clone()).collect();
            println!(
                "\n{practices} practices, {} accounts, 120 appointments each, SQLite, {in_flight} run(s) in flight",
                ids.len()
            );
            let (runs, secs) = sync_all(&app, &ids, Mode::Full, in_flight).await;
            report("full sync (appointments + availability)", &runs, secs);
            sim.advance();
            let (runs, secs) = sync_all(&app, &ids, Mode::Incremental, in_flight).await;
            report("incremental after one simulated step", &runs, secs);
            drop(running);
        }
    });
}
