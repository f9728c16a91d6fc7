//! Sandbox overhead of one run, with the small `testing` connector (scenario `nop`):
//!
//! - instantiate from `InstancePre` (store + instantiate + drop);
//! - full per-run overhead: `Runtime::execute` (store, WASI context, instantiate, `sync`
//!   call, log flush, drop), no network, no database;
//! - resident memory per live instance after a run.
//!
//! Targets (issue #2): overhead ≤ 50 µs p50; ≤ 256 KiB resident per instance.
//! Run with `cargo xtask bench`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use passerelle_model::limits::Limits;
use passerelle_runtime::contract::wit;
use passerelle_runtime::sandbox::{Call, CallOutput, RunParts, Runtime, RuntimeConfig};

fn parts() -> RunParts {
    RunParts::bare(tracing::Span::none(), Limits::default())
}

fn request() -> wit::SyncRequest {
    wit::SyncRequest {
        account: wit::Account {
            practice_id: "p1".into(),
            account_id: "a1".into(),
            settings: vec![wit::Setting {
                key: "scenario".into(),
                value: "nop".into(),
            }],
            secrets: vec![],
        },
        mode: wit::SyncMode::Incremental,
        cursor: None,
        window: wit::TimeWindow {
            start: "2026-01-01T00:00:00Z".into(),
            end: "2026-04-01T00:00:00Z".into(),
        },
    }
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let p = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    (p(0.50), p(0.99))
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    let wasm = std::env::var_os("PASSERELLE_PLUGINS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"))
        .join("testing.wasm");
    assert!(
        wasm.exists(),
        "{} missing: run `cargo xtask bench`",
        wasm.display()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let live = 1000u32;
        let runtime = Runtime::new(RuntimeConfig {
            max_instances: live + 16,
            ..RuntimeConfig::default()
        })
        .unwrap();
        let loaded = runtime.load_file(&wasm).unwrap();
        println!("component: {} ({} KiB)", wasm.display(), std::fs::metadata(&wasm).unwrap().len() / 1024);

        // 1. Store + instantiate + drop.
        let n = 5000;
        for _ in 0..200 {
            let mut store = runtime.new_store(parts());
            loaded.pre.instantiate_async(&mut store).await.unwrap();
        }
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            let mut store = runtime.new_store(parts());
            loaded.pre.instantiate_async(&mut store).await.unwrap();
            drop(store);
            samples.push(t.elapsed());
        }
        let (p50, p99) = percentiles(samples);
        println!("instantiate from InstancePre (store + instantiate + drop): p50 {p50:?}  p99 {p99:?}  (n={n})");

        // 2. The whole per-run sandbox path, as the runner uses it.
        for _ in 0..200 {
            runtime.execute(&loaded, parts(), Call::Sync(request())).await;
        }
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            let finished = runtime.execute(&loaded, parts(), Call::Sync(request())).await;
            samples.push(t.elapsed());
            assert!(matches!(finished.output, Ok(CallOutput::Synced(Ok(_)))));
        }
        let (p50, p99) = percentiles(samples);
        println!("per-run sandbox overhead (store + WASI + instantiate + sync() + drop): p50 {p50:?}  p99 {p99:?}  (n={n}; target p50 <= 50us)");

        // 3. Resident memory per live instance, each after a run.
        let before = rss_bytes();
        let mut kept = Vec::with_capacity(live as usize);
        for _ in 0..live {
            let mut store = runtime.new_store(parts());
            let instance = loaded.pre.instantiate_async(&mut store).await.unwrap();
            let out = instance.call_sync(&mut store, &request()).await.unwrap();
            assert!(out.is_ok());
            kept.push((store, instance));
        }
        let after = rss_bytes();
        let per = (after.saturating_sub(before)) / u64::from(live);
        println!(
            "resident memory per live instance after a run: {:.1} KiB  ({} instances, RSS {} -> {} MiB; target <= 256 KiB)",
            per as f64 / 1024.0,
            live,
            before >> 20,
            after >> 20
        );
        drop(kept);
    });
}
