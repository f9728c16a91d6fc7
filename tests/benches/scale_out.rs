//! Several daemons on one database, as an operator runs them: the night of N practices
//! (default 10,000) with two Doctolib profiles each, all due at one slot, with the
//! simulator in its own process (`passerelle sim`) and the daemons as `passerelle serve`
//! processes (release build) — on PostgreSQL with 1, 2 and 3 daemons, and on SQLite
//! with one.
//!
//! Prints per setup: the time from the slot to the last run's end, runs/s, each
//! daemon's peak resident memory (RSS, and PSS sampled every 200 ms), and where the machine's CPU went over the night: the
//! daemons, the simulator, and the rest (PostgreSQL, for the most part).
//!
//! `cargo xtask bench` (or `cargo bench -p passerelle-tests --bench scale_out` with the
//! components built and `cargo build --release -p passerelle --bin passerelle`).
//! PASSERELLE_BENCH_SCALE_PRACTICES sizes it; PASSERELLE_BENCH_SCALE_SETUPS picks setups
//! (default `pg1,pg2,pg3,sqlite1`); PASSERELLE_TEST_POSTGRES_URL names the database;
//! PASSERELLE_BENCH_SCALE_LATENCY_MS makes the simulator answer every request that much
//! later (a real platform's 100–500 ms); PASSERELLE_BENCH_SCALE_WORKERS sets
//! `daemon.max_concurrent_runs` (default: the configuration's default), the cap per
//! connector following it (one platform here). The most runs in flight at once (sampled
//! from the database every 200 ms) is printed with the rest.
//! PASSERELLE_BENCH_SCALE_SQL_LOG=FILE writes the daemon's statements with their times
//! there (sqlx's query log, `RUST_LOG=sqlx::query=trace`): how each one's cost moves as
//! the night grows.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use passerelle::service::config::Config;
use passerelle::Passerelle;
use passerelle_tests::component;
use sqlx::Row;

const SEED: u64 = 11;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The release `passerelle` binary.
fn release_binary() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = root.join("target/release/passerelle");
    assert!(
        path.exists(),
        "{} is missing: `cargo build --release -p passerelle --bin passerelle` (cargo xtask bench does)",
        path.display()
    );
    path
}

/// A free loopback port (bound, then released for the child to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A process's CPU time so far (user + system), from /proc.
fn cpu_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which ends with ')'): utime is the 12th, stime 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    Duration::from_secs_f64(ticks as f64 / 100.0)
}

/// The whole machine's busy CPU time so far, from /proc/stat.
fn machine_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = stat.lines().next().unwrap_or("");
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy = v.iter().take(8).sum::<u64>()
        - v.get(3).copied().unwrap_or(0)
        - v.get(4).copied().unwrap_or(0);
    Duration::from_secs_f64(busy as f64 / 100.0)
}

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// A process's proportional set size now, in MiB (`/proc/PID/smaps_rollup`): pages
/// shared between mappings or processes counted once, where RSS counts them once per
/// mapping — each instance maps its connector's initial memory image from one file.
fn pss_mib(pid: u32) -> f64 {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    rollup
        .lines()
        .find(|l| l.starts_with("Pss:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn stop(child: &mut Child) {
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A fresh PostgreSQL schema, as a URL.
async fn postgres() -> String {
    let base = passerelle_tests::postgres_url().expect("PostgreSQL (PASSERELLE_TEST_POSTGRES_URL)");
    passerelle_tests::postgres_schema_url(&base).await
}

struct Setup {
    name: String,
    daemons: usize,
    database_url: Option<String>,
}

async fn night(practices: usize, setup: Setup, workers: usize, latency_ms: u64) {
    let bin = release_binary();
    let dir = tempfile::tempdir().unwrap();
    // The simulator, in its own process.
    let port = free_port();
    let mut sim = Command::new(&bin)
        .args(["sim", "--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--practices",
            &practices.to_string(),
            "--seed",
            &SEED.to_string(),
        ])
        .args(["--appointments", "10", "--availability-days", "7"])
        .args(["--dentist-every", "1", "--platforms", "doctolib"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start passerelle sim");
    let base_url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(300);
    while reqwest::get(format!("{base_url}/_sim/practices"))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the simulator did not start");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if latency_ms > 0 {
        let faults = passerelle_sim::Faults {
            latency_ms,
            ..Default::default()
        };
        let set = reqwest::Client::new()
            .put(format!("{base_url}/_sim/faults/doctolib"))
            .json(&faults)
            .send()
            .await
            .expect("set the simulator's latency");
        assert!(set.status().is_success(), "{}", set.status());
    }
    // The same world, generated here, provisions the database.
    let world = passerelle_sim::Simulator::new(passerelle_sim::SimConfig {
        seed: SEED,
        practices,
        dentist_every: 1,
        appointments_per_account: 10,
        availability_days: 7,
        platforms: vec![passerelle_sim::Platform::Doctolib],
        ..passerelle_sim::SimConfig::default()
    })
    .world()
    .clone();
    let accounts = world.accounts().count();
    let mut config = Config {
        http: passerelle::dev::demo::simulator_policy(&base_url),
        database_url: setup.database_url.clone(),
        ..Config::default()
    };
    config.daemon.listen = ([127, 0, 0, 1], 0).into();
    config.daemon.token = Some("bench-admin-token-0123456789".into());
    config.daemon.max_concurrent_runs = workers;
    config.daemon.max_concurrent_per_connector = workers;
    // Checks and installs take instances from the same pool.
    config.runtime.max_instances = config.runtime.max_instances.max(workers as u32 + 64);
    config.schedule.spread_secs = 0;
    {
        let app = Passerelle::open(dir.path(), config.clone()).await.unwrap();
        app.install_plugin(&component("doctolib")).await.unwrap();
        passerelle::dev::demo::provision(&app, &world)
            .await
            .unwrap();
        app.store.close().await;
    }
    drop(world);
    // Every practice is due at the next whole minute at least 20 s away.
    let now = Utc::now();
    let mut slot: DateTime<Utc> = now + chrono::Duration::seconds(80 - i64::from(now.second()));
    slot = slot.with_second(0).unwrap().with_nanosecond(0).unwrap();
    // The cron is read in each practice's time zone (Europe/Paris).
    let paris = slot.with_timezone(&chrono_tz::Europe::Paris);
    config.schedule.default_cron = format!("{} {} * * *", paris.minute(), paris.hour());
    let config_path = dir.path().join("passerelle.toml");
    std::fs::write(&config_path, toml::to_string(&config).unwrap()).unwrap();
    let mut daemons = Vec::new();
    for i in 0..setup.daemons {
        let data = dir.path().join(format!("daemon-{i}"));
        std::fs::create_dir_all(&data).unwrap();
        // Daemons on one database share the secrets key.
        std::fs::copy(dir.path().join("secrets.key"), data.join("secrets.key")).unwrap();
        let data = if setup.database_url.is_none() {
            dir.path().to_path_buf() // SQLite: the provisioned database's data dir
        } else {
            data
        };
        let sql_log = std::env::var_os("PASSERELLE_BENCH_SCALE_SQL_LOG")
            .map(|f| std::fs::File::create(format!("{}.{i}", f.to_string_lossy())).unwrap());
        let child = Command::new(&bin)
            .args(["serve"])
            .env("PASSERELLE_CONFIG", &config_path)
            .env("PASSERELLE_DATA_DIR", &data)
            .env(
                "RUST_LOG",
                if sql_log.is_some() {
                    "warn,sqlx::query=trace"
                } else {
                    "warn"
                },
            )
            .stdout(Stdio::null())
            .stderr(sql_log.map_or(Stdio::null(), Stdio::from))
            .spawn()
            .expect("start passerelle serve");
        daemons.push(child);
    }
    let reader = Passerelle::open(dir.path(), config.clone()).await.unwrap();
    // Wait for the slot, then for every account's run to end.
    let wait = (slot - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait).await;
    let cpu_start = machine_cpu();
    let proc_start: Vec<Duration> = daemons.iter().map(|d| cpu_of(d.id())).collect();
    let sim_start = cpu_of(sim.id());
    let started = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(1800);
    let mut most_in_flight = 0i64;
    let mut peak_pss = vec![0.0f64; daemons.len()];
    let ended = loop {
        let running: i64 = sqlx::query("SELECT COUNT(*) AS n FROM runs WHERE status = 'running'")
            .fetch_one(reader.store.pool())
            .await
            .unwrap()
            .get("n");
        most_in_flight = most_in_flight.max(running);
        for (peak, d) in peak_pss.iter_mut().zip(&daemons) {
            *peak = peak.max(pss_mib(d.id()));
        }
        let row =
            sqlx::query("SELECT COUNT(*) AS n FROM runs WHERE status NOT IN ('queued', 'running')")
                .fetch_one(reader.store.pool())
                .await
                .unwrap();
        let n: i64 = row.get("n");
        if n as usize >= accounts {
            break n;
        }
        assert!(Instant::now() < deadline, "{n} of {accounts} runs ended");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let wall = started.elapsed();
    let machine = machine_cpu().saturating_sub(cpu_start);
    let daemon_cpu: Vec<Duration> = daemons
        .iter()
        .zip(&proc_start)
        .map(|(d, s)| cpu_of(d.id()).saturating_sub(*s))
        .collect();
    let sim_cpu = cpu_of(sim.id()).saturating_sub(sim_start);
    let rss: Vec<f64> = daemons.iter().map(|d| peak_rss_mib(d.id())).collect();
    let failed: i64 = sqlx::query("SELECT COUNT(*) AS n FROM runs WHERE status <> 'succeeded'")
        .fetch_one(reader.store.pool())
        .await
        .unwrap()
        .get("n");
    for d in &mut daemons {
        stop(d);
    }
    stop(&mut sim);
    reader.store.close().await;
    let all_daemons: Duration = daemon_cpu.iter().sum();
    let rest = machine.saturating_sub(all_daemons + sim_cpu);
    println!(
        "{:<8} {} daemon(s), {workers} workers, latency {latency_ms} ms: {ended} runs ({failed} not succeeded) in {:.1} s = {:.0} runs/s, at most {most_in_flight} in flight; \
         peak RSS per daemon {} MiB (PSS {} MiB); CPU: daemons {:.1} s ({}), simulator {:.1} s, rest (database, system) {:.1} s, machine {:.1} s of {:.1} s available",
        setup.name,
        setup.daemons,
        wall.as_secs_f64(),
        ended as f64 / wall.as_secs_f64(),
        rss.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join("/"),
        peak_pss
            .iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join("/"),
        all_daemons.as_secs_f64(),
        daemon_cpu
            .iter()
            .map(|c| format!("{:.1}", c.as_secs_f64()))
            .collect::<Vec<_>>()
            .join("/"),
        sim_cpu.as_secs_f64(),
        rest.as_secs_f64(),
        machine.as_secs_f64(),
        wall.as_secs_f64() * std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64),
    );
}

#[tokio::main]
async fn main() {
    let practices = env_usize("PASSERELLE_BENCH_SCALE_PRACTICES", 10_000);
    let setups = std::env::var("PASSERELLE_BENCH_SCALE_SETUPS")
        .unwrap_or_else(|_| "pg1,pg2,pg3,sqlite1".into());
    let workers = env_usize(
        "PASSERELLE_BENCH_SCALE_WORKERS",
        Config::default().daemon.max_concurrent_runs,
    );
    let latency_ms = env_usize("PASSERELLE_BENCH_SCALE_LATENCY_MS", 0) as u64;
    println!(
        "scale-out: {practices} practices × 2 Doctolib profiles, one slot, simulator in its own process, {workers} workers per daemon, {latency_ms} ms per request"
    );
    for setup in setups.split(',') {
        let (kind, n) = setup.split_at(
            setup
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(setup.len()),
        );
        let daemons: usize = n.parse().unwrap_or(1);
        let database_url = match kind {
            "pg" => Some(postgres().await),
            "sqlite" => None,
            other => panic!("unknown setup `{other}`: pgN or sqlite1"),
        };
        night(
            practices,
            Setup {
                name: setup.to_string(),
                daemons,
                database_url,
            },
            workers,
            latency_ms,
        )
        .await;
    }
}
