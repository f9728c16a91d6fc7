//! The change feed's read rate and webhook delivery's throughput: 40 practices on
//! Doctolib fully synced (appointments and slots: tens of thousands of changes), then
//! the whole feed read a page of 1,000 at a time through the service, then delivered
//! from 0 to a receiver on loopback (signed, batches of `delivery.batch_size`), on
//! SQLite and on PostgreSQL when one is reachable.
//!
//! `cargo xtask bench` (or, with the components built, `cargo bench -p passerelle-tests
//! --bench feed`). Size with PASSERELLE_BENCH_PRACTICES (default 40).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use passerelle::model::run::{Mode, Trigger};
use passerelle::service::delivery::{Delivered, Deliverer};
use passerelle::service::feed::ChangeQuery;
use passerelle::service::subscriptions::AddSubscription;
use passerelle::service::sync::SyncOptions;
use passerelle::Passerelle;
use passerelle_tests::{component, postgres_schema_url, sim_config};

async fn bench(label: &str, database_url: Option<String>, practices: usize) {
    let sim = passerelle_sim::Simulator::new(sim_config(practices, 120));
    let running = sim.serve(([127, 0, 0, 1], 0).into()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = passerelle::service::config::Config {
        http: passerelle::dev::demo::simulator_policy(&running.base_url),
        database_url,
        ..Default::default()
    };
    let batch = config.delivery.batch_size;
    let app = Arc::new(Passerelle::open(dir.path(), config).await.unwrap());
    app.install_plugin(&component("doctolib")).await.unwrap();
    let world = sim.world().clone();
    passerelle::dev::demo::provision(&app, &world)
        .await
        .unwrap();
    for account in world.accounts() {
        let account = app.store.account(&account.id).await.unwrap().unwrap();
        let options = SyncOptions {
            trigger: Trigger::Manual,
            mode: Mode::Full,
            now: None,
            record: None,
        };
        app.sync_account(&account, options).await.unwrap();
    }
    let head = app.store.feed_state().await.unwrap().head;

    // Reading: every change, a page of 1,000 at a time.
    let started = Instant::now();
    let (mut after, mut read) = (0, 0);
    loop {
        let page = app
            .changes(&ChangeQuery {
                after,
                limit: Some(1000),
                ..ChangeQuery::default()
            })
            .await
            .unwrap();
        read += page.changes.len();
        after = page.next_after;
        if !page.more {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(read as i64, head);
    println!(
        "{label:<10} feed read: {read} changes in {secs:.2} s: {:.0} changes/s (pages of 1,000, records decoded, initials)",
        read as f64 / secs
    );

    // Delivering: from 0 to a receiver that answers 204 at once.
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let counter = counter.clone();
            async move {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let n = v["data"]["changes"].as_array().unwrap().len() as u64;
                counter.fetch_add(n, Ordering::Relaxed);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });
    app.add_subscription(&AddSubscription {
        url,
        allow_private: true,
        after: Some(0),
        ..AddSubscription::default()
    })
    .await
    .unwrap();
    let deliverer = Deliverer::new(app.clone(), "bench".into()).unwrap();
    let started = Instant::now();
    let mut batches = 0;
    while received.load(Ordering::Relaxed) < head as u64 {
        match deliverer
            .deliver_one(chrono::Utc::now().timestamp_millis())
            .await
            .unwrap()
        {
            Delivered::Batch { .. } => batches += 1,
            Delivered::Failed { .. } => panic!("a delivery failed"),
            _ => {}
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{label:<10} delivery: {head} changes in {batches} POSTs ({batch} per batch) in {secs:.2} s: {:.0} changes/s, {:.0} POSTs/s",
        head as f64 / secs,
        batches as f64 / secs
    );
    drop(running);
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
        println!(
            "\n{practices} practices on Doctolib, 120 appointments per account, one full sync"
        );
        bench("sqlite", None, practices).await;
        match std::env::var("PASSERELLE_TEST_POSTGRES_URL") {
            Ok(base) => {
                bench(
                    "postgres",
                    Some(postgres_schema_url(&base).await),
                    practices,
                )
                .await
            }
            Err(_) => println!("postgres   left out (PASSERELLE_TEST_POSTGRES_URL is not set)"),
        }
    });
}
