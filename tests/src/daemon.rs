//! Scaffolding for daemon tests: a daemon started in-process on a temporary data
//! directory (admin API on a loopback port, the in-process simulator behind it), an API
//! client, and the `passerelle` binary for tests that run the daemon as a process.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use passerelle::model::run::{Run, Status};
use passerelle::serve::{Running, ServeOptions};
use passerelle::service::config::Config;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::{sim_env_with, Db, Env, SimEnv};

/// A clock that reads `start` when first read (as the daemon starts), then runs at
/// the real pace.
pub fn clock_from(start: chrono::DateTime<chrono::Utc>) -> passerelle::daemon::Clock {
    use chrono::Utc;
    let first_read = std::sync::OnceLock::new();
    std::sync::Arc::new(move || start + (Utc::now() - *first_read.get_or_init(Utc::now)))
}

/// The admin token tests configure.
pub const TOKEN: &str = "test-admin-token-0123456789";

/// A daemon configuration for tests: API on a free loopback port, a known token, quick
/// retries, a short grace period.
pub fn daemon_config() -> Config {
    let mut config = Config::default();
    config.runtime.cache_dir = Some(crate::shared_compile_cache());
    config.daemon.listen = ([127, 0, 0, 1], 0).into();
    config.daemon.token = Some(TOKEN.into());
    config.daemon.max_concurrent_runs = 4;
    config.daemon.max_concurrent_per_connector = 4;
    config.daemon.shutdown_grace_secs = 2;
    config.retry.base_secs = 0.2;
    config.retry.max_delay_secs = 1.0;
    // Never sooner than 0.5 s: a test sees a failure and changes the faults first.
    config.retry.min_delay_secs = 0.5;
    config.retry.max_attempts = 3;
    config
}

/// A daemon serving in this process, wired to an in-process simulator.
pub struct DaemonEnv {
    pub running: Running,
    /// The simulator and the ground truth; its `env.app` is a second handle on the same
    /// database, for reading what was stored.
    pub sim: SimEnv,
    pub base: String,
    http: reqwest::Client,
}

/// Provisions the simulator's practices and starts a daemon on them.
pub async fn daemon_env(
    db: &Db,
    sim_config: passerelle_sim::SimConfig,
    config: Config,
    options: ServeOptions,
) -> DaemonEnv {
    let sim = sim_env_with(db, sim_config, config.clone()).await;
    let running = start_daemon(sim.env.dir.path(), sim.env.app.config.clone(), options).await;
    DaemonEnv::attach(running, sim)
}

/// A daemon in this process on `dir` (its own host on that data directory).
pub async fn start_daemon(dir: &Path, config: Config, options: ServeOptions) -> Running {
    let app = passerelle::Passerelle::open(dir, config)
        .await
        .expect("open the daemon's host");
    passerelle::serve::start(app, options)
        .await
        .expect("start the daemon")
}

/// [`ServeOptions`] for a test's own daemon: the system clock, no address file.
pub fn quiet_options() -> ServeOptions {
    ServeOptions {
        write_address_file: false,
        ..ServeOptions::default()
    }
}

/// An API answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// The error code of a JSON error answer.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("not a JSON error: {}", self.text))
            .to_string()
    }
}

impl DaemonEnv {
    /// Wraps a daemon the test started itself on `sim`'s data directory.
    pub fn attach(running: Running, sim: SimEnv) -> DaemonEnv {
        let base = format!("http://{}", running.api_address);
        DaemonEnv {
            running,
            sim,
            base,
            http: reqwest::Client::new(),
        }
    }

    /// The simulator's practice ids.
    pub fn practice_ids(&self) -> Vec<String> {
        self.sim
            .sim
            .world()
            .practices
            .iter()
            .map(|p| p.id.clone())
            .collect()
    }

    /// A request with the token.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.call_as(Some(TOKEN), method, path, body).await
    }

    /// A request with the given token (or none).
    pub async fn call_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        if let Some(b) = body {
            request = request.json(&b);
        }
        let response = request.send().await.expect("the API answers");
        Answer {
            status: response.status(),
            headers: response.headers().clone(),
            text: response.text().await.unwrap(),
        }
    }

    /// Uploads a component (`POST` with the bytes as the body).
    pub async fn upload(&self, path: &str, bytes: Vec<u8>) -> Answer {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .header("content-type", "application/wasm")
            .body(bytes)
            .send()
            .await
            .expect("the API answers");
        Answer {
            status: response.status(),
            headers: response.headers().clone(),
            text: response.text().await.unwrap(),
        }
    }

    /// Waits until these runs have ended (none queued or running); returns them.
    pub async fn wait_for(&self, ids: &[i64]) -> Vec<Run> {
        wait_for_runs(&self.sim.env.app.store, ids).await
    }

    pub async fn shutdown(self) -> (passerelle::serve::Stopped, SimEnv) {
        let stopped = self.running.shutdown().await.expect("shutdown");
        (stopped, self.sim)
    }
}

/// The sync log, oldest run first (up to 10,000 runs).
pub async fn runs_in_order(store: &passerelle::store::Store) -> Vec<Run> {
    let mut runs = store
        .list_runs(&passerelle::model::run::RunFilter {
            limit: Some(1_000_000),
            ..Default::default()
        })
        .await
        .unwrap();
    runs.reverse();
    runs
}

/// Polls the sync log until at least `at_least` runs are recorded and none is queued or
/// running (at most `secs`); every run, oldest first.
pub async fn wait_until_settled(
    store: &passerelle::store::Store,
    at_least: usize,
    secs: u64,
) -> Vec<Run> {
    use sqlx::Row;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        // Counted in the database: a night's sync log is too long to read every 50 ms.
        let row = sqlx::query(
            "SELECT COUNT(*) AS total,
                    COUNT(CASE WHEN status IN ('queued', 'running') THEN 1 END) AS open
             FROM runs",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        let (total, open) = (row.get::<i64, _>("total"), row.get::<i64, _>("open"));
        if total as usize >= at_least && open == 0 {
            return runs_in_order(store).await;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{total} runs, {open} still queued or running"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Continuous "Sync now" of every practice until `stop` is set; returns the run ids the
/// daemon answered (queued or coalesced).
pub fn sync_load(
    base: String,
    practices: Vec<String>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<Vec<i64>> {
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut ids = Vec::new();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            for p in &practices {
                let a: Value = http
                    .post(format!("{base}/v1/practices/{p}/sync"))
                    .bearer_auth(TOKEN)
                    .json(&serde_json::json!({}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                ids.extend(
                    a["runs"]
                        .as_array()
                        .unwrap_or_else(|| panic!("not a sync answer: {a}"))
                        .iter()
                        .map(|r| r["run_id"].as_i64().unwrap()),
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        ids
    })
}

/// Polls the sync log until these runs have ended (at most a minute).
pub async fn wait_for_runs(store: &passerelle::store::Store, ids: &[i64]) -> Vec<Run> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut runs = Vec::new();
        for id in ids {
            runs.push(store.run(*id).await.unwrap().expect("run recorded"));
        }
        if runs
            .iter()
            .all(|r| !matches!(r.status, Status::Queued | Status::Running))
        {
            return runs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "runs did not end: {:?}",
            runs.iter().map(|r| (r.id, r.status)).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The run ids of a "Sync now" answer.
pub fn run_ids(answer: &Answer) -> Vec<i64> {
    answer.json()["runs"]
        .as_array()
        .unwrap_or_else(|| panic!("not a sync answer: {}", answer.text))
        .iter()
        .map(|r| r["run_id"].as_i64().unwrap())
        .collect()
}

/// Runs a command on a blocking thread (so a daemon served by this runtime keeps
/// answering it); returns whether it succeeded and its stdout then stderr.
pub async fn output_of(mut cmd: std::process::Command) -> (bool, String) {
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run the command"))
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// The `passerelle` binary (`cargo xtask test` builds it first).
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> → target/<profile>/passerelle
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("passerelle"))
        .unwrap();
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p passerelle` (cargo xtask test does)",
        path.display()
    );
    path
}

impl Env {
    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

/// `passerelle serve` as a process (JSON logs appended to a file), with an API client.
pub struct ServeProcess {
    pub child: Child,
    pub base: String,
    http: reqwest::Client,
}

/// A daemon a test left running (it failed first) is killed with it: left alone it would
/// hold its database connections and go on running against later tests' databases.
impl Drop for ServeProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl ServeProcess {
    /// Starts it on `data_dir` with the configuration file `config`; returns once its
    /// API answers.
    pub async fn start(config: &Path, data_dir: &Path, log: &Path) -> ServeProcess {
        Self::start_with_env(config, data_dir, log, &[]).await
    }

    /// [`ServeProcess::start`] with more environment variables (`FAILPOINTS`, say).
    pub async fn start_with_env(
        config: &Path,
        data_dir: &Path,
        log: &Path,
        env: &[(&str, &str)],
    ) -> ServeProcess {
        let address_file = data_dir.join("api-address");
        let _ = std::fs::remove_file(&address_file);
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(binary())
            .args(["--log-format", "json", "serve"])
            .env("PASSERELLE_CONFIG", config)
            .env("PASSERELLE_DATA_DIR", data_dir)
            .env_remove("RUST_LOG")
            .env_remove("FAILPOINTS")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start passerelle serve");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let base = loop {
            if let Ok(text) = std::fs::read_to_string(&address_file) {
                if text.ends_with('\n') {
                    break text.trim().to_string();
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the daemon did not start: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        ServeProcess {
            child,
            base,
            http: reqwest::Client::new(),
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    pub async fn get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }

    /// Sync now for every practice; the run ids.
    pub async fn sync_all(&self, practices: &[String], full: bool) -> Vec<i64> {
        let mut ids = Vec::new();
        for p in practices {
            let (status, body) = self
                .post(&format!("/v1/practices/{p}/sync"), json!({"full": full}))
                .await;
            assert_eq!(status, 202, "{body}");
            for r in body["runs"].as_array().unwrap() {
                ids.push(r["run_id"].as_i64().unwrap());
            }
        }
        ids
    }

    pub async fn wait_running(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self
            .get("/v1/runs?status=running")
            .await
            .as_array()
            .unwrap()
            .len()
            < n
        {
            assert!(tokio::time::Instant::now() < deadline, "runs did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The daemon's id, as `/healthz` says it.
    pub async fn id(&self) -> String {
        let r = self
            .http
            .get(format!("{}/healthz", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        body["daemon"].as_str().unwrap().to_string()
    }

    /// Waits (at most 60 s) until this daemon runs a run (it holds the lease) whose
    /// committed checkpoints are at least `checkpoints`; that run's id.
    pub async fn wait_own_run(&self, checkpoints: u64) -> i64 {
        let me = self.id().await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let runs = self.get("/v1/runs?status=running").await;
            let mine = runs.as_array().unwrap().iter().find(|r| {
                r["owner"].as_str() == Some(me.as_str())
                    && r["counts"]["checkpoints"].as_u64().unwrap_or(0) >= checkpoints
            });
            if let Some(run) = mine {
                return run["id"].as_i64().unwrap();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{me} ran no run with {checkpoints} checkpoints: {runs}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    /// Waits for the process to exit (at most 30 s); its exit status.
    pub async fn exit(mut self) -> std::process::ExitStatus {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if tokio::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the daemon did not exit");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Writes `config` as `passerelle.toml` in `dir`; its path.
pub fn write_config(dir: &Path, config: &passerelle::service::config::Config) -> PathBuf {
    let path = dir.join("passerelle.toml");
    std::fs::write(&path, toml::to_string(config).unwrap()).unwrap();
    path
}
