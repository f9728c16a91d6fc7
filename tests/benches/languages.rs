//! One connector in three languages, on equal work: Maiia in Rust (plugins/maiia), in
//! Python (plugins/examples/maiia-python, componentize-py) and in JavaScript
//! (plugins/examples/maiia-js, componentize-js). For each: component size,
//! compile time, compile-cache load time, instantiate time (p50), one full sync of the
//! simulator's Maiia account (wall time, in the sandbox) and the guest's peak linear
//! memory.
//!
//! `cargo xtask bench` (or, with the components built, `cargo bench -p passerelle-tests
//! --bench languages`).

use std::path::Path;
use std::time::{Duration, Instant};

use passerelle::model::limits::Limits;
use passerelle::model::run::{Mode, Status};
use passerelle::runtime::sandbox::{RunParts, Runtime, RuntimeConfig};
use passerelle::service::config::Config;
use passerelle_sim::{Platform, SimConfig};
use passerelle_tests::{component, example, sim_config, sim_env_replacing, Db};

fn parts() -> RunParts {
    RunParts::bare(tracing::Span::none(), Limits::default())
}

async fn measure(label: &str, wasm: &Path) {
    let size = std::fs::metadata(wasm).unwrap().len();
    let cache = tempfile::tempdir().unwrap();
    let config = || RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..RuntimeConfig::default()
    };
    let runtime = Runtime::new(config()).unwrap();
    let t = Instant::now();
    runtime.load_file(wasm).unwrap();
    let compile = t.elapsed();
    drop(runtime);
    let runtime = Runtime::new(config()).unwrap();
    let t = Instant::now();
    let loaded = runtime.load_file(wasm).unwrap();
    let cached = t.elapsed();
    let mut samples: Vec<Duration> = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let mut store = runtime.new_store(parts());
        loaded.pre.instantiate_async(&mut store).await.unwrap();
        drop(store);
        samples.push(t.elapsed());
    }
    samples.sort();
    let instantiate = samples[samples.len() / 2];

    let db = Db {
        name: "sqlite",
        url: None,
    };
    let world = SimConfig {
        platforms: vec![Platform::Doctolib, Platform::Maiia],
        ..sim_config(3, 10)
    };
    let e = sim_env_replacing(
        &db,
        world,
        Config::default(),
        &[("maiia", wasm.to_path_buf())],
    )
    .await;
    // The first run compiles (cache in the data directory); the second is measured.
    let _ = e.sync("p001-maiia", Mode::Full).await;
    let run = e.sync("p001-maiia", Mode::Full).await;
    assert_eq!(run.status, Status::Succeeded, "{run:?}");
    let (in_sandbox, waiting) = e.env.app.metrics.sandbox_seconds("maiia");
    let peak = e.env.app.metrics.guest_memory_peak("maiia");
    println!(
        "{label:<7} {:>7} KiB  compile {:>7.0} ms  cache load {:>5.1} ms  instantiate p50 {:>7.0} µs  full run {:>4} ms ({} slots; {:.0} ms in the sandbox over 2 runs, {:.0} ms of it waiting on the platform)  peak guest memory {:.1} MiB",
        size / 1024,
        compile.as_secs_f64() * 1000.0,
        cached.as_secs_f64() * 1000.0,
        instantiate.as_secs_f64() * 1e6,
        run.duration_ms.unwrap_or_default(),
        e.env.app.store.slots("p001-maiia").await.unwrap().len(),
        in_sandbox * 1000.0,
        waiting * 1000.0,
        peak as f64 / (1024.0 * 1024.0),
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!("\nMaiia, one connector in three languages (the simulator's p001-maiia, SQLite)");
        measure("rust", &component("maiia")).await;
        measure("python", &example("maiia-python")).await;
        measure("js", &example("maiia-js")).await;
    });
}
