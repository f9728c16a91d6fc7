//! The console's queries at scale: 10,000 practices with one account each and 14 days
//! of runs (4 a day per account: 560,000 runs, a few failed or drifted), then the
//! overview (every aggregate it shows), a practice search, a page of the sync log
//! filtered by platform and status, and a practice's accounts with their last run —
//! each timed over several rounds, on SQLite and on PostgreSQL when one is reachable.
//! The target: the overview under 100 ms.
//!
//! `cargo xtask bench` (or `cargo bench -p passerelle-tests --bench console`). Size with
//! PASSERELLE_BENCH_PRACTICES (default 10,000) and PASSERELLE_BENCH_RUNS_PER_DAY
//! (default 4).

use std::time::{Duration, Instant};

use chrono::{Duration as Span, Utc};
use passerelle::service::runs::RunQuery;
use passerelle::store::durations::duration_bucket;
use passerelle::Passerelle;
use passerelle_tests::postgres_schema_url;
use sqlx::any::AnyPoolOptions;

const CONNECTORS: [&str; 5] = ["doctolib", "keldoc", "maiia", "mapharma", "ordoclic"];

/// Writes the practices, accounts and runs straight into the database, in batches.
async fn seed(url: &str, practices: usize, runs_per_day: usize) {
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    let now = Utc::now();
    let created = now.to_rfc3339();
    for chunk in (0..practices).collect::<Vec<_>>().chunks(400) {
        let mut sql =
            String::from("INSERT INTO practices (id, name, timezone, created_at) VALUES ");
        let mut accounts = String::from(
            "INSERT INTO accounts (id, practice_id, connector, settings, created_at) VALUES ",
        );
        for (k, i) in chunk.iter().enumerate() {
            let sep = if k == 0 { "" } else { "," };
            sql.push_str(&format!(
                "{sep}('p{i:05}', 'Cabinet {i}', 'Europe/Paris', '{created}')"
            ));
            accounts.push_str(&format!(
                "{sep}('a{i:05}', 'p{i:05}', '{}', '{{}}', '{created}')",
                CONNECTORS[i % CONNECTORS.len()]
            ));
        }
        sqlx::query(&sql).execute(&mut *tx).await.unwrap();
        sqlx::query(&accounts).execute(&mut *tx).await.unwrap();
    }
    let runs = practices * runs_per_day * 14;
    let step = Span::milliseconds((86_400_000 / (runs_per_day * practices.max(1)) as i64).max(1));
    let mut rows = Vec::with_capacity(500);
    // What the host counts as each run ends, counted here for the seeded runs.
    let mut durations: std::collections::BTreeMap<(String, String, i64), i64> = Default::default();
    for n in 0..runs {
        let i = n % practices;
        let at = now - step * (runs - n) as i32;
        let status = match n % 97 {
            0 => "failed",
            1 => "drift",
            _ => "succeeded",
        };
        let duration = 200 + (n * 7919 % 5000) as i64;
        let started = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        *durations
            .entry((
                CONNECTORS[i % CONNECTORS.len()].to_string(),
                started[..10].to_string(),
                duration_bucket(duration),
            ))
            .or_default() += 1;
        let finished = (at + Span::milliseconds(duration))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        rows.push(format!(
            "('p{i:05}', 'a{i:05}', '{}', '1.0.0', 'abc', 'schedule', 'incremental', '{status}', '{started}', '{finished}', {duration})",
            CONNECTORS[i % CONNECTORS.len()]
        ));
        if rows.len() == 500 || n + 1 == runs {
            let sql = format!(
                "INSERT INTO runs (practice_id, account_id, connector, connector_version, connector_sha256, trigger, mode, status, started_at, finished_at, duration_ms) VALUES {}",
                rows.join(",")
            );
            sqlx::query(&sql).execute(&mut *tx).await.unwrap();
            rows.clear();
        }
    }
    let rows: Vec<String> = durations
        .into_iter()
        .map(|((c, day, bucket), n)| format!("('{c}', '{day}', {bucket}, {n})"))
        .collect();
    for chunk in rows.chunks(500) {
        sqlx::query(&format!(
            "INSERT INTO run_durations (connector, day, bucket, runs) VALUES {}",
            chunk.join(",")
        ))
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    if url.starts_with("postgres") {
        // What autovacuum does soon after a bulk load (statistics, visibility map).
        sqlx::query("VACUUM ANALYZE runs")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("VACUUM ANALYZE run_durations")
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
}

/// Median and worst of `rounds` timings of `work`.
async fn time<F, Fut, T>(rounds: usize, mut work: F) -> (Duration, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut all = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        std::hint::black_box(work().await);
        all.push(started.elapsed());
    }
    all.sort();
    (all[all.len() / 2], all[all.len() - 1])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn bench(label: &str, database_url: Option<String>, practices: usize, runs_per_day: usize) {
    let dir = tempfile::tempdir().unwrap();
    let config = passerelle::service::config::Config {
        database_url: database_url.clone(),
        ..Default::default()
    };
    // Opening applies the migrations; the data then goes in directly.
    let app = Passerelle::open(dir.path(), config.clone()).await.unwrap();
    drop(app);
    let url = database_url
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("passerelle.db").display()));
    let started = Instant::now();
    seed(&url, practices, runs_per_day).await;
    let seeded = started.elapsed();
    let app = Passerelle::open(dir.path(), config).await.unwrap();
    let now = Utc::now();
    let overview = app.overview(now).await.unwrap();
    let runs_day: i64 = overview.platforms.iter().map(|p| p.total).sum();
    let rounds = 9;
    let (o50, omax) = time(rounds, || app.overview(now)).await;
    let day_ago = now - Span::hours(24);
    let (c50, _) = time(rounds, || app.store.run_counts_since(day_ago)).await;
    let (q50, _) = time(rounds, || app.store.runs_per_quarter(day_ago)).await;
    let (d50, _) = time(rounds, || {
        app.store.duration_percentiles(now - Span::days(14))
    })
    .await;
    let (s50, smax) = time(rounds, || {
        app.practice_page(Some("cabinet 99"), None, Some(50), now)
    })
    .await;
    let (p50, pmax) = time(rounds, || {
        app.practice_page(None, Some("p05000"), Some(50), now)
    })
    .await;
    let query = RunQuery {
        connector: Some("maiia".into()),
        status: Some(passerelle::model::run::Status::Failed),
        limit: Some(50),
        ..RunQuery::default()
    };
    let (r50, rmax) = time(rounds, || app.runs(&query)).await;
    let (a50, amax) = time(rounds, || app.account_states("p04242")).await;
    println!(
        "{label}: {practices} practices, {} runs seeded in {:.1} s ({runs_day} in the last 24 h)",
        practices * runs_per_day * 14,
        seeded.as_secs_f64()
    );
    println!(
        "  overview (all aggregates)      p50 {:7.1} ms  max {:7.1} ms",
        ms(o50),
        ms(omax)
    );
    println!(
        "    of which: 24 h counts {:.1} ms, per quarter-hour {:.1} ms, 14-day durations {:.1} ms",
        ms(c50),
        ms(q50),
        ms(d50)
    );
    println!(
        "  practices search 'cabinet 99'   p50 {:7.1} ms  max {:7.1} ms",
        ms(s50),
        ms(smax)
    );
    println!(
        "  practices page after p05000    p50 {:7.1} ms  max {:7.1} ms",
        ms(p50),
        ms(pmax)
    );
    println!(
        "  runs: maiia, failed, 50        p50 {:7.1} ms  max {:7.1} ms",
        ms(r50),
        ms(rmax)
    );
    println!(
        "  a practice's accounts          p50 {:7.1} ms  max {:7.1} ms",
        ms(a50),
        ms(amax)
    );
}

#[tokio::main]
async fn main() {
    let practices = std::env::var("PASSERELLE_BENCH_PRACTICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let runs_per_day = std::env::var("PASSERELLE_BENCH_RUNS_PER_DAY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    bench("sqlite", None, practices, runs_per_day).await;
    if let Some(base) = passerelle_tests::postgres_url() {
        let url = postgres_schema_url(&base).await;
        bench("postgres", Some(url), practices, runs_per_day).await;
    } else {
        println!("postgres: skipped (no PASSERELLE_TEST_POSTGRES_URL and none on 127.0.0.1:5432)");
    }
}
