//! The fixed cost of a run: one Doctolib centre at a time (its booking document and one
//! availabilities page, ViteMaDose's recorded "basic" centre), served by a static local
//! server in its own process, synced by the host with doctolib.wasm and its durable
//! writes (the run's bookkeeping, the slot snapshot) on SQLite and on PostgreSQL.
//!
//! Prints per database: wall time and CPU time of this process per centre (the server's
//! CPU is its own process's, not counted), and the runs' p50/p95; on SQLite also with the
//! flight recorder off (`no flight`: what holding each run's exchanges in memory costs). The yardstick is
//! ViteMaDose's Python scraper on the same recording, measured by the issue that asked
//! for this bench (it stores nothing): about 1.6–1.9 ms wall per centre.
//!
//! Then the same centre the way an operator runs it: `passerelle serve` (this build's
//! binary, as a process) with the default window (30 days back, 90 ahead), one run at a
//! time, SQLite; one "Sync now" of a practice with `PASSERELLE_BENCH_DAEMON_CENTRES`
//! accounts (default 200). Prints per centre the daemon's wall and CPU time (all its
//! threads, from `/proc`), its context switches (every thread's, voluntary and not),
//! the requests made, and what queueing alone costs (the service's "Sync now" of that
//! practice, in this process, with no daemon to run the runs). Twice: the recording as
//! served (its slots are of 2021, so with the real clock none is stored), and the
//! recording moved to today in memory (one slot in the window: each run stores it, as
//! a first sync of a centre does).
//!
//! `cargo xtask bench` (or `cargo bench -p passerelle-tests --bench centre` with the
//! components built). PASSERELLE_BENCH_CENTRES sizes the first part (default 2,000 runs);
//! PASSERELLE_TEST_POSTGRES_URL names the database (left out without it).
//! PASSERELLE_BENCH_COUNT_STATEMENTS=1 also prints the SQL statements one run makes (from
//! sqlx's query log, which costs CPU of its own: keep that run's counts, not its times).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use nix::sys::resource::{getrusage, UsageWho};
use passerelle::model::run::{Mode, Status, Trigger};
use passerelle::service::sync::SyncOptions;
use passerelle::Passerelle;
use passerelle_tests::component;

/// Set in the child that serves the recorded files: the port file to write.
const SERVE_ENV: &str = "PASSERELLE_BENCH_CENTRE_SERVE";
/// Set in that child to serve the recording moved to today (see [`moved_to_today`]).
const TODAY_ENV: &str = "PASSERELLE_BENCH_CENTRE_TODAY";

/// The instant the recording was made at (its slots are bookable then).
const RECORDED_AT: &str = "2021-04-03T07:00:00Z";

/// The recorded body with every date-time moved by whole days so that the recording's
/// day is today (in memory only: the recording is never edited). The daemon's runs use
/// the real clock: served as recorded, every slot is years past and none is stored.
fn moved_to_today(body: &[u8]) -> Vec<u8> {
    fn shift(value: &mut serde_json::Value, by: chrono::Duration) {
        match value {
            serde_json::Value::String(s) => {
                if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                    *s = (t + by).to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| shift(v, by)),
            serde_json::Value::Object(members) => members.values_mut().for_each(|v| shift(v, by)),
            _ => {}
        }
    }
    let recorded: DateTime<Utc> = RECORDED_AT.parse().unwrap();
    let by = chrono::Duration::days((Utc::now() - recorded).num_days());
    let mut value: serde_json::Value = serde_json::from_slice(body).expect("recorded JSON");
    shift(&mut value, by);
    serde_json::to_vec(&value).unwrap()
}

/// The recorded "basic" centre.
fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/vitemadose/fixtures/doctolib")
        .join(name)
}

/// The static server: every booking document is the recorded one, every availabilities
/// page too. Runs in the child process until killed.
fn serve(port_file: &str) {
    use axum::routing::get;
    let booking = std::fs::read(fixture("basic-booking.json")).expect("the recorded booking");
    let mut availabilities =
        std::fs::read(fixture("basic-availabilities.json")).expect("the recorded availabilities");
    if std::env::var_os(TODAY_ENV).is_some() {
        availabilities = moved_to_today(&availabilities);
    }
    let json = |body: Vec<u8>| {
        move || {
            let body = body.clone();
            async move { ([("content-type", "application/json")], body) }
        }
    };
    let app = axum::Router::new()
        .route("/booking/{centre}", get(json(booking)))
        .route("/availabilities.json", get(json(availabilities)));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        std::fs::write(port_file, format!("{port}\n")).unwrap();
        axum::serve(listener, app).await.unwrap();
    });
}

struct Server {
    child: Child,
    base_url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(dir: &std::path::Path, today: bool) -> Server {
    let port_file = dir.join(if today { "port-today" } else { "port" });
    let mut command = Command::new(std::env::current_exe().unwrap());
    if today {
        command.env(TODAY_ENV, "1");
    }
    let child = command
        .env(SERVE_ENV, &port_file)
        .stdout(Stdio::null())
        .spawn()
        .expect("start the static server");
    let deadline = Instant::now() + Duration::from_secs(30);
    let port = loop {
        if let Ok(text) = std::fs::read_to_string(&port_file) {
            if text.ends_with('\n') {
                break text.trim().to_string();
            }
        }
        assert!(Instant::now() < deadline, "the static server did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    Server {
        child,
        base_url: format!("http://127.0.0.1:{port}"),
    }
}

fn cpu_now() -> Duration {
    let usage = getrusage(UsageWho::RUSAGE_SELF).unwrap();
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    tv(usage.user_time()) + tv(usage.system_time())
}

async fn bench(
    label: &str,
    runs: usize,
    database_url: Option<String>,
    server: &Server,
    flight_recorder: bool,
) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = passerelle::service::config::Config {
        http: passerelle::dev::demo::simulator_policy(&server.base_url),
        database_url,
        ..Default::default()
    };
    config.flight_recorder.enabled = flight_recorder;
    // ViteMaDose's window: one availabilities page (14 days from today) per motive.
    config.sync.window_past_days = 0;
    config.sync.window_future_days = 13;
    let app = Passerelle::open(dir.path(), config).await.unwrap();
    app.install_plugin(&component("doctolib")).await.unwrap();
    app.store
        .add_practice("centre-practice", "Centre", "Europe/Paris")
        .await
        .unwrap();
    let settings = [("centre".to_string(), "centre-basic".to_string())].into();
    app.store
        .add_account(
            "centre-account",
            "centre-practice",
            "doctolib",
            None,
            &settings,
        )
        .await
        .unwrap();
    let account = app.store.account("centre-account").await.unwrap().unwrap();
    // The recording's clock, so that its slots are still bookable.
    let now: DateTime<Utc> = RECORDED_AT.parse().unwrap();
    let one = || async {
        let run = app
            .sync_account(
                &account,
                SyncOptions {
                    trigger: Trigger::Schedule,
                    mode: Mode::Incremental,
                    now: Some(now),
                    record: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(run.status, Status::Succeeded, "{run:?}");
        assert_eq!(run.counts.http_requests, 2, "{run:?}");
        run
    };
    // Warm: the component compiled and cached, connections open.
    for _ in 0..50 {
        one().await;
    }
    let cpu = cpu_now();
    let started = Instant::now();
    let mut durations = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        one().await;
        durations.push(t.elapsed());
    }
    let wall = started.elapsed();
    let cpu = cpu_now() - cpu;
    durations.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{label:<28} {runs} runs, one at a time: {:.3} ms wall, {:.3} ms CPU per centre; run p50 {:.3} ms, p95 {:.3} ms",
        ms(wall) / runs as f64,
        ms(cpu) / runs as f64,
        ms(durations[runs / 2]),
        ms(durations[runs * 95 / 100]),
    );
    app.store.close().await;
}

/// A process's CPU time (user + system, all threads) from `/proc/<pid>/stat`.
fn process_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // After the command's name in parentheses: state is field 3; utime 14, stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .unwrap()
        .unwrap_or(100) as u64;
    Duration::from_micros(ticks * 1_000_000 / hz)
}

/// Context switches of every thread of a process (voluntary and not), from
/// `/proc/<pid>/task/*/status`, by thread name (tokio's workers, sqlx-sqlite's
/// connection threads…).
fn process_switches(pid: u32) -> std::collections::BTreeMap<String, u64> {
    let mut by_name = std::collections::BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        let mut name = String::new();
        let mut total = 0;
        for line in status.lines() {
            if let Some(n) = line.strip_prefix("Name:") {
                // One entry per kind of thread, not per thread.
                name = n
                    .trim()
                    .trim_end_matches(|c: char| c.is_ascii_digit() || c == '-')
                    .to_string();
            }
            if let Some(n) = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                total += n.trim().parse::<u64>().unwrap_or(0);
            }
        }
        *by_name.entry(name).or_default() += total;
    }
    by_name
}

/// The centre as an operator runs it: provisioned here, synced by `passerelle serve`.
async fn daemon_bench(centres: usize, server: &Server, served: &str) {
    use passerelle::service::runs::SyncRequest;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut config = passerelle_tests::daemon::daemon_config();
    config.http = passerelle::dev::demo::simulator_policy(&server.base_url);
    config.daemon.max_concurrent_runs = 1;
    config.daemon.max_concurrent_per_connector = 1;
    config.daemon.manual_min_interval_secs = 0;
    let config_file = passerelle_tests::daemon::write_config(dir.path(), &config);
    let practice = "centre-practice";
    {
        let app = Passerelle::open(&data_dir, config.clone()).await.unwrap();
        app.install_plugin(&component("doctolib")).await.unwrap();
        app.store
            .add_practice(practice, "Centre", "Europe/Paris")
            .await
            .unwrap();
        let settings = [("centre".to_string(), "centre-basic".to_string())].into();
        for i in 0..centres {
            app.store
                .add_account(
                    &format!("centre-{i:05}"),
                    practice,
                    "doctolib",
                    None,
                    &settings,
                )
                .await
                .unwrap();
        }
        // Queueing alone: the service's "Sync now" of the practice, nothing to run them.
        let cpu = cpu_now();
        let started = Instant::now();
        let queued = app
            .sync_now(practice, &SyncRequest::default())
            .await
            .unwrap();
        let (wall, cpu) = (started.elapsed(), cpu_now() - cpu);
        assert_eq!(queued.len(), centres);
        println!(
            "queueing {centres} runs (one \"Sync now\"): {:.3} ms wall, {:.3} ms CPU per run",
            wall.as_secs_f64() * 1000.0 / centres as f64,
            cpu.as_secs_f64() * 1000.0 / centres as f64
        );
        // Leave nothing queued for the daemon's first pass.
        sqlx::query("DELETE FROM runs")
            .execute(app.store.pool())
            .await
            .unwrap();
        app.store.close().await;
    }
    let log = dir.path().join("daemon.log");
    // Counting statements logs each one (sqlx's query log), which costs CPU of its own: a
    // run with PASSERELLE_BENCH_COUNT_STATEMENTS prints the count, not a time to keep.
    let counting = std::env::var_os("PASSERELLE_BENCH_COUNT_STATEMENTS").is_some();
    let env: &[(&str, &str)] = if counting {
        &[("RUST_LOG", "warn,sqlx::query=trace")]
    } else {
        &[]
    };
    let daemon =
        passerelle_tests::daemon::ServeProcess::start_with_env(&config_file, &data_dir, &log, env)
            .await;
    let log_len = || std::fs::metadata(&log).map_or(0, |m| m.len());
    let pid = daemon.child.id();
    let store = passerelle::store::Store::open_in_data_dir(&data_dir)
        .await
        .unwrap();
    let pending = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM runs WHERE status IN ('queued', 'running')",
        )
        .fetch_one(store.pool())
        .await
        .unwrap()
    };
    // Settled after its start (recovery, catch-up, the first claims find nothing).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log_from = log_len();
    let (cpu, switches) = (process_cpu(pid), process_switches(pid));
    let started = Instant::now();
    let (status, body) = daemon
        .post(
            &format!("/v1/practices/{practice}/sync"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    while pending().await > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wall = started.elapsed();
    let (cpu, after) = (process_cpu(pid) - cpu, process_switches(pid));
    let by_thread: Vec<(String, u64)> = after
        .iter()
        .map(|(name, n)| (name.clone(), n - switches.get(name).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    let switches: u64 = by_thread.iter().map(|(_, n)| n).sum();
    let (ok, requests, slots): (i64, i64, i64) = sqlx::query_as(
        "SELECT SUM(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END), SUM(http_requests),
            SUM(slots_written) FROM runs",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(
        ok as usize,
        centres,
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let n = centres as f64;
    println!(
        "passerelle serve, {centres} centres, one at a time, default window, {served}: {:.3} ms wall, {:.3} ms CPU, {:.1} context switches, {:.1} requests, {:.1} slots stored per centre",
        wall.as_secs_f64() * 1000.0 / n,
        cpu.as_secs_f64() * 1000.0 / n,
        switches as f64 / n,
        requests as f64 / n,
        slots as f64 / n,
    );
    println!(
        "  context switches per centre by thread: {}",
        by_thread
            .iter()
            .map(|(name, k)| format!("{name} {:.1}", *k as f64 / n))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if counting {
        let text = std::fs::read(&log).unwrap_or_default();
        let text = String::from_utf8_lossy(&text[log_from as usize..]);
        let mut by_statement: std::collections::BTreeMap<String, usize> = Default::default();
        for line in text.lines() {
            let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if event["target"] != "sqlx::query" {
                continue;
            }
            let summary = event["fields"]["summary"]
                .as_str()
                .unwrap_or("?")
                .to_string();
            *by_statement.entry(summary).or_default() += 1;
        }
        let total: usize = by_statement.values().sum();
        println!(
            "statements: {:.1} per centre (sqlx's query log, all the daemon's connections)",
            total as f64 / n
        );
        for (summary, count) in by_statement.iter().rev() {
            println!("  {:>6.2}  {summary}", *count as f64 / n);
        }
    }
    store.close().await;
    drop(daemon);
}

fn main() {
    if let Ok(port_file) = std::env::var(SERVE_ENV) {
        serve(&port_file);
        return;
    }
    if std::env::var("RUST_LOG").is_ok() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
    let runs: usize = std::env::var("PASSERELLE_BENCH_CENTRES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), false);
    println!(
        "centre: ViteMaDose's recorded Doctolib \"basic\" centre (2 requests) from a static local server, doctolib.wasm, durable writes"
    );
    let centres: usize = std::env::var("PASSERELLE_BENCH_DAEMON_CENTRES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let today = start_server(dir.path(), true);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(daemon_bench(centres, &server, "as recorded"));
    rt.block_on(daemon_bench(centres, &today, "moved to today"));
    drop(today);
    if std::env::var_os("PASSERELLE_BENCH_DAEMON_ONLY").is_some() {
        return;
    }
    let postgres = passerelle_tests::postgres_url();
    if postgres.is_none() {
        println!("postgres skipped: PASSERELLE_TEST_POSTGRES_URL is not set");
    }
    // The daemon's runtime (multi-thread), and a current-thread one: the difference is
    // what waking tasks across threads costs when one run at a time keeps it idle.
    for (runtime, multi) in [("multi-thread", true), ("current-thread", false)] {
        let rt = if multi {
            tokio::runtime::Builder::new_multi_thread()
        } else {
            tokio::runtime::Builder::new_current_thread()
        }
        .enable_all()
        .build()
        .unwrap();
        rt.block_on(async {
            bench(&format!("sqlite, {runtime}"), runs, None, &server, true).await;
            // What recording every run's exchanges in memory costs (the flight recorder
            // keeps nothing of a run that succeeds).
            bench(
                &format!("sqlite, {runtime}, no flight"),
                runs,
                None,
                &server,
                false,
            )
            .await;
            if let Some(base) = &postgres {
                let url = passerelle_tests::postgres_schema_url(base).await;
                bench(
                    &format!("postgres, {runtime}"),
                    runs,
                    Some(url),
                    &server,
                    true,
                )
                .await;
            }
        });
    }
}
