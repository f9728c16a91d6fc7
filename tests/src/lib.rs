//! Shared test scaffolding: the built connectors, databases (SQLite always; PostgreSQL
//! unless `PASSERELLE_SKIP_POSTGRES=1`, never silently), a host opened on a temporary
//! data directory, and a small HTTP server on loopback for the HTTP defences.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use passerelle::model::run::{Mode, Run, Trigger};
use passerelle::service::config::Config;
use passerelle::service::sync::SyncOptions;
use passerelle::Passerelle;
use tempfile::TempDir;

pub mod console;
pub mod daemon;
pub mod kit;

/// Where `cargo xtask build-plugins` put the components.
pub fn plugins_dir() -> PathBuf {
    match std::env::var_os("PASSERELLE_PLUGINS_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"),
    }
}

/// A built connector component; panics with the command to run if it is missing.
pub fn component(name: &str) -> PathBuf {
    let path = plugins_dir().join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask build-plugins` (or `cargo xtask test`)",
        path.display()
    );
    path
}

/// A second build of a connector (`target/plugins/variants/`, made by
/// `cargo xtask build-plugins` with a cargo feature): what the hot-swap tests install.
pub fn variant(file: &str) -> PathBuf {
    let path = plugins_dir().join("variants").join(file);
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask build-plugins` (or `cargo xtask test`)",
        path.display()
    );
    path
}

/// A connector written in another language (`target/plugins/examples/`, built by
/// `cargo xtask build-plugins` from `plugins/examples/NAME`).
pub fn example(name: &str) -> PathBuf {
    let path = plugins_dir().join("examples").join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask build-plugins` (it installs componentize-py into target/toolchains/python)",
        path.display()
    );
    path
}

/// A database to run a test against.
pub struct Db {
    pub name: &'static str,
    /// None: SQLite in the data directory.
    pub url: Option<String>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The PostgreSQL URL for tests, or None when skipping was asked for explicitly.
pub fn postgres_url() -> Option<String> {
    if std::env::var("PASSERELLE_SKIP_POSTGRES").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPING the PostgreSQL half of this test (PASSERELLE_SKIP_POSTGRES=1)");
        return None;
    }
    Some(
        std::env::var("PASSERELLE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
    )
}

/// A fresh schema in the test PostgreSQL database, as a URL whose connections use it.
pub async fn postgres_schema_url(base: &str) -> String {
    use sqlx::Executor;
    sqlx::any::install_default_drivers();
    let schema = unique("t");
    let pool = sqlx::AnyPool::connect(base).await.unwrap_or_else(|e| {
        panic!(
            "cannot reach PostgreSQL at {base}: {e}. Start it, set PASSERELLE_TEST_POSTGRES_URL, \
             or run `cargo xtask test --no-postgres` outside CI"
        )
    });
    drop_stale_schemas(&pool).await;
    pool.execute(format!("CREATE SCHEMA {schema}").as_str())
        .await
        .expect("create schema");
    pool.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

/// A manual incremental run's options (the run's clock: the machine's).
pub fn manual_incremental() -> passerelle::service::sync::SyncOptions {
    passerelle::service::sync::SyncOptions {
        trigger: passerelle::model::run::Trigger::Manual,
        mode: passerelle::model::run::Mode::Incremental,
        now: None,
        record: None,
    }
}

/// The schema a URL from [`postgres_schema_url`] uses.
pub fn postgres_schema_of(url: &str) -> String {
    url.rsplit_once("search_path%3D")
        .map(|(_, schema)| schema.split('&').next().unwrap_or(schema).to_string())
        .expect("a test schema URL")
}

/// A new, empty database on the test server (for what restores a whole dump: the
/// schema names inside stay the source's): its URL, and its name to drop afterwards.
pub async fn postgres_new_database(base: &str) -> (String, String) {
    use sqlx::Executor;
    sqlx::any::install_default_drivers();
    let name = unique("r");
    let pool = sqlx::AnyPool::connect(base)
        .await
        .expect("reach PostgreSQL");
    pool.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap_or_else(|e| panic!("creating database {name} (the test role needs CREATEDB): {e}"));
    pool.close().await;
    let (head, query) = base
        .split_once('?')
        .map_or((base, None), |(h, q)| (h, Some(q)));
    let server = head.rsplit_once('/').map_or(head, |(server, _)| server);
    let url = match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    };
    (url, name)
}

/// Drops a database made by [`postgres_new_database`], closing its sessions.
pub async fn postgres_drop_database(base: &str, name: &str) {
    use sqlx::Executor;
    let pool = sqlx::AnyPool::connect(base)
        .await
        .expect("reach PostgreSQL");
    let _ = pool
        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await;
    pool.close().await;
}

/// Drops test schemas left by earlier test processes that are gone.
async fn drop_stale_schemas(pool: &sqlx::AnyPool) {
    use sqlx::{Executor, Row};
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    DONE.get_or_init(|| async {
        let mine = format!("t_{}_", std::process::id());
        let rows = sqlx::query(
            "SELECT nspname::text AS nspname FROM pg_namespace WHERE nspname LIKE 't\\_%'",
        )
        .fetch_all(pool)
        .await
        .unwrap_or_default();
        for row in rows {
            let name: String = row.get("nspname");
            // `t_{pid}_…`: a schema of a test process still running (another checkout's
            // tests, a CI run beside this one) is left alone.
            let alive = name
                .split('_')
                .nth(1)
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
            if !name.starts_with(&mine) && !alive {
                let _ = pool
                    .execute(format!("DROP SCHEMA IF EXISTS {name} CASCADE").as_str())
                    .await;
            }
        }
    })
    .await;
}

/// SQLite, and PostgreSQL unless explicitly skipped.
pub async fn databases() -> Vec<Db> {
    let mut dbs = vec![Db {
        name: "sqlite",
        url: None,
    }];
    if let Some(base) = postgres_url() {
        dbs.push(Db {
            name: "postgres",
            url: Some(postgres_schema_url(&base).await),
        });
    }
    dbs
}

/// A host on a temporary data directory.
pub struct Env {
    pub app: Passerelle,
    pub dir: TempDir,
}

/// The compile cache the tests share (`target/test-compile-cache`): each test has its
/// own data directory, and would otherwise compile the same components again (the
/// Python and JavaScript ports' take tens of seconds each). The tests of the cache itself
/// give the runtime a directory of their own.
pub fn shared_compile_cache() -> PathBuf {
    kit::repo().join("target/test-compile-cache")
}

pub async fn env(db: &Db, mut config: Config) -> Env {
    let dir = tempfile::tempdir().unwrap();
    if config.runtime.cache_dir.is_none() {
        config.runtime.cache_dir = Some(shared_compile_cache());
    }
    // The testing connector calls loopback test servers over plain http.
    config
        .plugins
        .trusted_hosts
        .extend(TESTING_HOSTS.map(String::from));
    config.database_url = db.url.clone();
    let app = Passerelle::open(dir.path(), config)
        .await
        .expect("open host");
    Env { app, dir }
}

impl Env {
    /// Installs the testing connector and adds practice `p1`.
    pub async fn with_testing(self) -> Self {
        self.app
            .install_plugin(&component("testing"))
            .await
            .expect("install testing connector");
        self.app
            .store
            .add_practice("p1", "Cabinet de test", "Europe/Paris")
            .await
            .unwrap();
        self
    }

    pub async fn account(&self, id: &str, settings: &[(&str, &str)]) {
        let settings: BTreeMap<String, String> = settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.app
            .store
            .add_account(id, "p1", "testing", None, &settings)
            .await
            .unwrap();
    }

    pub async fn sync(&self, account: &str, mode: Mode) -> Run {
        let account = self.app.store.account(account).await.unwrap().unwrap();
        self.app
            .sync_account(
                &account,
                SyncOptions {
                    trigger: Trigger::Manual,
                    mode,
                    now: None,
                    record: None,
                },
            )
            .await
            .expect("the host itself must not fail")
    }
}

/// What the loopback test server saw.
#[derive(Default, Clone)]
pub struct Seen {
    pub requests: Arc<Mutex<Vec<(String, HeaderMap)>>>,
    pub rate_limited_once: Arc<Mutex<bool>>,
}

impl Seen {
    pub fn paths(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|(p, _)| p.clone())
            .collect()
    }
    pub fn header_values(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, h)| {
                h.values()
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).to_string())
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

fn record(seen: &Seen, path: &str, headers: &HeaderMap) {
    seen.requests
        .lock()
        .unwrap()
        .push((path.to_string(), headers.clone()));
}

fn header_lines(headers: &HeaderMap) -> String {
    headers
        .iter()
        .map(|(k, v)| format!("{k}: {}", String::from_utf8_lossy(v.as_bytes())))
        .collect::<Vec<_>>()
        .join("\n")
}

fn authorization(headers: &HeaderMap) -> String {
    headers
        .get("authorization")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default()
}

/// Gives the data directory `to` the secrets key of `from`: daemons on one database
/// must share it (an operator does it with `PASSERELLE_SECRETS_KEY` or a systemd
/// credential). The copy keeps the file's 0600 mode.
pub fn share_secrets_key(from: &std::path::Path, to: &std::path::Path) {
    std::fs::copy(from.join("secrets.key"), to.join("secrets.key")).expect("copy the secrets key");
}

/// The testing connector's allowed hosts that need the operator's consent.
pub const TESTING_HOSTS: [&str; 2] = ["http://127.0.0.1:*", "http://localhost:*"];

/// Starts the test server on 127.0.0.1; returns its base URL.
///
/// - `/echo`: answers with every request header, as a hostile platform would;
/// - `/echo-upper`, `/echo-base64`: the same, upper-cased or in base64;
/// - `/header-echo`: the request's `authorization` back in a response header;
/// - `/redirect-echo`: 302 to `/ok?token=<the request's authorization>`;
/// - `/ok`: `ok`;
/// - `/redirect-out`: 302 to a host off the allowlist;
/// - `/slow`: answers after 10 s;
/// - `/limited`: 429 with Retry-After: 1 the first time, then 200;
/// - `/big`: a 3 MiB body.
pub async fn server() -> (String, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .route(
            "/echo",
            get(|State(seen): State<Seen>, headers: HeaderMap| async move {
                record(&seen, "/echo", &headers);
                header_lines(&headers)
            }),
        )
        .route(
            "/echo-upper",
            get(|State(seen): State<Seen>, headers: HeaderMap| async move {
                record(&seen, "/echo-upper", &headers);
                header_lines(&headers).to_uppercase()
            }),
        )
        .route(
            "/echo-base64",
            get(|State(seen): State<Seen>, headers: HeaderMap| async move {
                use base64::Engine;
                record(&seen, "/echo-base64", &headers);
                headers
                    .iter()
                    .map(|(_, v)| base64::engine::general_purpose::STANDARD.encode(v.as_bytes()))
                    .collect::<Vec<_>>()
                    .join("\n")
            }),
        )
        .route(
            "/header-echo",
            get(|State(seen): State<Seen>, headers: HeaderMap| async move {
                record(&seen, "/header-echo", &headers);
                let auth = authorization(&headers);
                ([("x-seen-authorization", auth)], "ok")
            }),
        )
        .route(
            "/redirect-echo",
            get(|State(seen): State<Seen>, headers: HeaderMap| async move {
                record(&seen, "/redirect-echo", &headers);
                let token = authorization(&headers).replace("Bearer ", "");
                (
                    StatusCode::FOUND,
                    [("location", format!("/ok?token={token}"))],
                )
            }),
        )
        .route(
            "/ok",
            get(|State(seen): State<Seen>, headers: HeaderMap| async move {
                record(&seen, "/ok", &headers);
                "ok"
            }),
        )
        .route(
            "/redirect-out",
            get(|State(seen): State<Seen>, headers: HeaderMap| async move {
                record(&seen, "/redirect-out", &headers);
                (
                    StatusCode::FOUND,
                    [("location", "http://evil.example.org/steal")],
                )
            }),
        )
        .route(
            "/slow",
            get(|State(seen): State<Seen>, headers: HeaderMap| async move {
                record(&seen, "/slow", &headers);
                tokio::time::sleep(Duration::from_secs(10)).await;
                "late"
            }),
        )
        .route(
            "/limited",
            get(|State(seen): State<Seen>, headers: HeaderMap| async move {
                record(&seen, "/limited", &headers);
                let mut once = seen.rate_limited_once.lock().unwrap();
                if !*once {
                    *once = true;
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        [("retry-after", "1")],
                        "slow down",
                    )
                        .into_response()
                } else {
                    (StatusCode::OK, "ok").into_response()
                }
            }),
        )
        .route("/big", get(|| async { "x".repeat(3 << 20) }))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), seen)
}

/// A host wired to an in-process platform simulator, with the connectors of the
/// simulator's platforms installed and its practices and accounts provisioned.
pub struct SimEnv {
    pub env: Env,
    pub sim: passerelle_sim::Simulator,
    pub running: passerelle_sim::RunningSim,
}

/// A simulator with a fixed seed at the current hour (so the host's window covers it),
/// its practices on Doctolib only.
pub fn sim_config(practices: usize, appointments: usize) -> passerelle_sim::SimConfig {
    passerelle_sim::SimConfig {
        seed: 7,
        practices,
        appointments_per_account: appointments,
        platforms: vec![passerelle_sim::Platform::Doctolib],
        ..passerelle_sim::SimConfig::default()
    }
}

pub async fn sim_env(db: &Db, sim_config: passerelle_sim::SimConfig) -> SimEnv {
    sim_env_with(db, sim_config, Config::default()).await
}

/// [`sim_env`] with a configuration (its HTTP policy is replaced by the simulator's).
pub async fn sim_env_with(
    db: &Db,
    sim_config: passerelle_sim::SimConfig,
    config: Config,
) -> SimEnv {
    sim_env_replacing(db, sim_config, config, &[]).await
}

/// [`sim_env_with`], installing `replace`'s component for a connector name instead of
/// the bundled one (a port of a connector to another language).
pub async fn sim_env_replacing(
    db: &Db,
    sim_config: passerelle_sim::SimConfig,
    config: Config,
    replace: &[(&str, PathBuf)],
) -> SimEnv {
    sim_env_routed(db, sim_config, config, replace, |_| {}).await
}

/// [`sim_env_replacing`], with `route` changing the HTTP policy that points the
/// platforms at the simulator (another override, private addresses allowed).
pub async fn sim_env_routed(
    db: &Db,
    sim_config: passerelle_sim::SimConfig,
    config: Config,
    replace: &[(&str, PathBuf)],
    route: impl FnOnce(&mut passerelle::runtime::capabilities::http::HttpPolicy),
) -> SimEnv {
    let sim = passerelle_sim::Simulator::new(sim_config);
    let running = sim
        .serve(([127, 0, 0, 1], 0).into())
        .await
        .expect("start the simulator");
    let mut http = passerelle::dev::demo::simulator_policy(&running.base_url);
    route(&mut http);
    let config = Config { http, ..config };
    let env = env(db, config).await;
    let world = sim.world().clone();
    let platforms: std::collections::BTreeSet<&str> =
        world.accounts().map(|a| a.platform.as_str()).collect();
    for connector in platforms {
        let file = replace
            .iter()
            .find(|(name, _)| *name == connector)
            .map_or_else(|| component(connector), |(_, path)| path.clone());
        env.app
            .install_plugin(&file)
            .await
            .unwrap_or_else(|e| panic!("install {connector}: {e}"));
    }
    passerelle::dev::demo::provision(&env.app, &world)
        .await
        .expect("provision");
    SimEnv { env, sim, running }
}

/// A stored appointment reduced to what the simulator's ground truth says.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Fact {
    pub id: String,
    pub starts_at: String,
    pub ends_at: Option<String>,
    pub status: String,
    pub practitioner: Option<String>,
    pub visit_motive: Option<String>,
    /// external id, first, last, birth date, phone, e-mail
    pub patient: Option<[Option<String>; 6]>,
    pub updated_at: Option<String>,
}

impl Fact {
    /// The names of the fields where two facts differ.
    pub fn differing_fields(&self, other: &Fact) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut check = |name, same: bool| {
            if !same {
                out.push(name)
            }
        };
        check("id", self.id == other.id);
        check("starts_at", self.starts_at == other.starts_at);
        check("ends_at", self.ends_at == other.ends_at);
        check("status", self.status == other.status);
        check("practitioner", self.practitioner == other.practitioner);
        check("visit_motive", self.visit_motive == other.visit_motive);
        check("patient", self.patient == other.patient);
        check("updated_at", self.updated_at == other.updated_at);
        out
    }
}

impl SimEnv {
    pub async fn sync(&self, account: &str, mode: Mode) -> Run {
        self.env.sync(account, mode).await
    }

    /// Every account, one run each.
    pub async fn sync_all(&self, mode: Mode) -> Vec<Run> {
        let ids: Vec<String> = self.sim.world().accounts().map(|a| a.id.clone()).collect();
        let mut runs = Vec::new();
        for id in ids {
            runs.push(self.sync(&id, mode).await);
        }
        runs
    }

    /// What the simulator holds for an account.
    pub fn truth(&self, account: &str) -> Vec<Fact> {
        let world = self.sim.world();
        let a = world.account(account).expect("simulated account");
        let motive = |id: u64| {
            a.motives
                .iter()
                .find(|m| m.id == id)
                .map(|m| m.name.clone())
        };
        let doctor = |id: u64| {
            a.agendas
                .iter()
                .find(|g| g.id == id)
                .map(|g| g.practitioner.clone())
        };
        let mut facts: Vec<Fact> = a
            .appointments
            .values()
            .map(|x| Fact {
                id: x.id.clone(),
                starts_at: passerelle_sim::world::normalised(&x.start),
                ends_at: Some(passerelle_sim::world::normalised(&x.end)),
                status: x.status.as_str().to_string(),
                practitioner: doctor(x.agenda_id),
                visit_motive: motive(x.motive_id),
                patient: Some([
                    Some(x.patient.id.clone()),
                    Some(x.patient.first_name.clone()),
                    Some(x.patient.last_name.clone()),
                    Some(x.patient.birth_date.format("%Y-%m-%d").to_string()),
                    Some(x.patient.phone.clone()),
                    Some(x.patient.email.clone()),
                ]),
                updated_at: Some(x.updated_at.fixed_offset().to_rfc3339()),
            })
            .collect();
        facts.sort();
        facts
    }

    /// What passerelle stored for an account (live appointments only).
    pub async fn stored(&self, account: &str) -> Vec<Fact> {
        let mut facts: Vec<Fact> = self
            .env
            .app
            .store
            .appointments(account)
            .await
            .unwrap()
            .into_iter()
            .filter(|s| s.deleted_reason.is_none())
            .map(|s| {
                let r = s.record;
                Fact {
                    id: r.external_id,
                    starts_at: r.starts_at,
                    ends_at: r.ends_at,
                    status: r.status,
                    practitioner: r.practitioner,
                    visit_motive: r.visit_motive,
                    patient: r.patient.map(|p| {
                        [
                            p.external_id,
                            Some(p.first_name),
                            Some(p.last_name),
                            p.birth_date,
                            p.phone,
                            p.email,
                        ]
                    }),
                    updated_at: r.platform_updated_at,
                }
            })
            .collect();
        facts.sort();
        facts
    }

    /// Stored slots vs the simulator's bookable ones, as comparable tuples.
    pub async fn slots(
        &self,
        account: &str,
    ) -> (
        Vec<passerelle_sim::ExpectedSlot>,
        Vec<passerelle_sim::ExpectedSlot>,
    ) {
        let expected = {
            let world = self.sim.world();
            world.expected_slots(world.account(account).unwrap())
        };
        let mut stored: Vec<passerelle_sim::ExpectedSlot> = self
            .env
            .app
            .store
            .slots(account)
            .await
            .unwrap()
            .into_iter()
            .map(|s| passerelle_sim::ExpectedSlot {
                starts_at: s.starts_at,
                ends_at: s.ends_at,
                practitioner: s.practitioner.unwrap_or_default(),
                visit_motive: s.visit_motive.unwrap_or_default(),
                place: s.place.unwrap_or_default(),
            })
            .collect();
        stored.sort();
        (expected, stored)
    }

    /// Asserts that the account's appointments and slots are exactly the simulator's.
    pub async fn assert_matches_truth(&self, account: &str, db: &str) {
        let truth = self.truth(account);
        let stored = self.stored(account).await;
        assert_eq!(
            stored.len(),
            truth.len(),
            "{db}/{account}: appointment count"
        );
        for (s, t) in stored.iter().zip(&truth) {
            // Simulated patients, but the message still names fields, never values.
            assert!(
                s == t,
                "{db}/{account}: appointment {} differs from the simulator in {:?}",
                t.id,
                s.differing_fields(t)
            );
        }
        let (expected, stored) = self.slots(account).await;
        assert!(!expected.is_empty(), "{account} must have bookable slots");
        assert_eq!(stored.len(), expected.len(), "{db}/{account}: slot count");
        assert_eq!(stored, expected, "{db}/{account}: slots differ");
    }
}

/// Everything `tracing` writes, captured in memory at TRACE (but for the compiler's
/// internals, which never see run data). The process's global subscriber: installed by
/// the first call, shared by the later ones (so a test also sees the logs of tests
/// running beside it — none of which may hold patient data either).
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    pub fn install() -> Capture {
        static GLOBAL: std::sync::OnceLock<Capture> = std::sync::OnceLock::new();
        GLOBAL
            .get_or_init(|| {
                let capture = Capture::default();
                let writer = capture.clone();
                tracing_subscriber::fmt()
                    .with_env_filter("trace,cranelift_codegen=info,cranelift_frontend=info,regalloc2=info,wasmtime_cranelift=info,wasmtime_environ=info")
                    .with_writer(move || writer.clone())
                    .with_ansi(false)
                    .init();
                capture
            })
            .clone()
    }

    /// What was written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// A named admin-API token with `scopes`; its secret.
pub async fn token(app: &Passerelle, name: &str, scopes: &[&str]) -> String {
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    app.create_token(name, &scopes).await.unwrap().secret
}

/// Every run in the sync log (up to 10,000), newest first.
pub async fn all_runs(app: &Passerelle) -> Vec<Run> {
    app.store
        .list_runs(&passerelle::model::run::RunFilter {
            limit: Some(1_000_000),
            ..Default::default()
        })
        .await
        .unwrap()
}

/// Faults that rename Doctolib's `start_date` in the appointments' responses: every run
/// of a Doctolib account ends `drift` (and the account is paused) while they are set.
pub fn renamed_start_date() -> passerelle_sim::Faults {
    passerelle_sim::Faults {
        endpoint: Some("appointments".into()),
        drift: Some(passerelle_sim::Drift {
            field: "start_date".into(),
            change: passerelle_sim::Change::Rename,
            nth: None,
        }),
        ..passerelle_sim::Faults::default()
    }
}

/// Asserts that `text` (a recording, a webhook body, a log) holds no e-mail address but
/// the stand-ins (`…@example.invalid`) and no patient value of `world`: e-mails,
/// phones, full names, and first or last names as whole JSON strings (a lone surname
/// may be a practitioner's too). Returns how many patients were looked for.
pub fn assert_no_patient_value(text: &str, world: &passerelle_sim::World, what: &str) -> usize {
    for (at, _) in text.match_indices('@') {
        assert!(
            text[at + 1..].starts_with("example.invalid"),
            "an e-mail address is in {what}: …{}…",
            &text[at.saturating_sub(20)..(at + 20).min(text.len())]
        );
    }
    let mut patients = 0;
    for a in world.accounts() {
        for appointment in a.appointments.values() {
            let p = &appointment.patient;
            for value in [
                &p.email,
                &p.phone,
                &format!("\"{}\"", p.first_name),
                &format!("\"{}\"", p.last_name),
                &format!("{} {}", p.first_name, p.last_name),
            ] {
                assert!(
                    !text.contains(value.as_str()),
                    "a patient value is in {what}"
                );
            }
            patients += 1;
        }
    }
    patients
}
