//! passerelle's platform simulator: HTTP servers that behave like the booking platforms,
//! over real sockets, for tests, the demo and connector authors.
//!
//! - [`world`] owns the data, the availability grid and the ground truth; `generate`
//!   builds it (deterministic from a seed), [`life`] moves its appointments on;
//! - [`faults`] owns the switchable faults;
//! - one module per platform renders its API in the shapes ViteMaDose recorded
//!   ([`doctolib`], [`keldoc`], [`maiia`], [`ordoclic`], [`mapharma`]): each has its
//!   `routes()`, the connector settings of an account (`settings`) and how the platform
//!   publishes a bookable free time (`publish`, which the ground truth uses);
//! - [`control`] is the simulator's own API under `/_sim` (faults, advancing time, the
//!   practices and their tokens).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let sim = passerelle_sim::Simulator::new(passerelle_sim::SimConfig::default());
//! let running = sim.serve("127.0.0.1:0".parse()?).await?;
//! println!("simulator at {}", running.base_url);
//! # Ok(()) }
//! ```

pub mod control;
pub mod doctolib;
pub mod faults;
mod generate;
pub mod keldoc;
pub mod life;
pub mod maiia;
pub mod mapharma;
pub mod names;
pub mod ordoclic;
pub mod world;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::Serialize;
use serde_json::Value;

pub use faults::{Change, Drift, Faults};
pub use life::Changes;
pub use world::{ExpectedSlot, Platform, SimConfig, World};

/// The platforms the simulator serves.
pub const PLATFORMS: &[&str] = &["doctolib", "keldoc", "maiia", "ordoclic", "mapharma"];

/// The real origins the simulator stands in for, by platform: a host pointed at the
/// simulator redirects these (`http.overrides`) to it. The simulator is the one place
/// that knows which platform hosts it impersonates; the host names none.
pub const ORIGINS: &[(&str, &str)] = &[
    ("doctolib", "https://www.doctolib.fr"),
    ("doctolib", "https://partners.doctolib.fr"),
    ("keldoc", "https://booking.keldoc.com"),
    ("keldoc", "https://www.keldoc.com"),
    ("maiia", "https://www.maiia.com"),
    ("ordoclic", "https://api.ordoclic.fr"),
    ("mapharma", "https://mapharma.net"),
];

/// A bookable free time as `account`'s platform publishes it (`None`: not at all).
pub fn publish(
    world: &World,
    account: &world::Account,
    agenda: &world::Agenda,
    motive: &world::Motive,
    t: &chrono::DateTime<chrono_tz::Tz>,
) -> Option<ExpectedSlot> {
    match account.platform {
        Platform::Doctolib => doctolib::publish(world, account, agenda, motive, t),
        Platform::Keldoc => Some(keldoc::publish(account, agenda, motive, t)),
        Platform::Maiia => Some(maiia::publish(account, agenda, motive, t)),
        Platform::Ordoclic => Some(ordoclic::publish(account, agenda, motive, t)),
        Platform::Mapharma => Some(mapharma::publish(t)),
    }
}

/// An account's connector settings and secrets: how passerelle points at it.
pub type Settings = Vec<(&'static str, String)>;

/// The settings and secrets of `account` for its platform's connector.
pub fn settings(account: &world::Account) -> (Settings, Settings) {
    match account.platform {
        Platform::Doctolib => doctolib::settings(account),
        Platform::Keldoc => keldoc::settings(account),
        Platform::Maiia => maiia::settings(account),
        Platform::Ordoclic => ordoclic::settings(account),
        Platform::Mapharma => mapharma::settings(account),
    }
}

/// An error answer of a platform: its status and JSON body.
pub(crate) type Failure = (StatusCode, Value);

pub(crate) fn failure(status: StatusCode, message: impl Into<String>) -> Failure {
    (status, serde_json::json!({ "error": message.into() }))
}

pub(crate) fn path_and_query(uri: &Uri) -> String {
    uri.path_and_query()
        .map_or_else(|| uri.path().to_string(), |p| p.to_string())
}

/// A stable id for a free time (or anything else) from numbers that name it.
pub(crate) fn stable_id(parts: &[u64]) -> u64 {
    parts
        .iter()
        .fold(0x5EED_u64, |acc, p| world::mix(acc ^ world::mix(*p)))
}

/// How many requests [`Simulator::requests`] remembers.
const REQUEST_LOG: usize = 20_000;

/// One request the simulator answered.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    pub platform: &'static str,
    pub endpoint: &'static str,
    /// Path and query.
    pub uri: String,
    pub status: u16,
}

struct Inner {
    world: RwLock<World>,
    faults: Mutex<BTreeMap<String, Faults>>,
    counters: Mutex<BTreeMap<String, u64>>,
    /// Drifted-field occurrences seen per platform (for `Drift::nth`).
    drift_seen: Mutex<BTreeMap<String, usize>>,
    log: Mutex<VecDeque<RequestRecord>>,
    /// Time spent building answers, per platform (injected latency excluded).
    busy: Mutex<BTreeMap<String, Duration>>,
}

/// The simulator: its world, faults and request log. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

impl Simulator {
    pub fn new(config: SimConfig) -> Simulator {
        Simulator::from_world(World::generate(config))
    }

    pub fn from_world(world: World) -> Simulator {
        Simulator {
            inner: Arc::new(Inner {
                world: RwLock::new(world),
                faults: Mutex::default(),
                counters: Mutex::default(),
                drift_seen: Mutex::default(),
                log: Mutex::default(),
                busy: Mutex::default(),
            }),
        }
    }

    /// The world, for reading the ground truth. Do not hold across an `.await`.
    pub fn world(&self) -> RwLockReadGuard<'_, World> {
        self.inner.world.read().expect("world lock")
    }

    /// Moves the world one step on (see [`World::advance`]).
    pub fn advance(&self) -> Changes {
        self.inner.world.write().expect("world lock").advance()
    }

    /// Replaces a platform's faults.
    pub fn set_faults(&self, platform: &str, faults: Faults) {
        self.inner
            .counters
            .lock()
            .expect("counters")
            .remove(platform);
        self.inner
            .faults
            .lock()
            .expect("faults")
            .insert(platform.to_string(), faults);
    }

    pub fn faults(&self, platform: &str) -> Faults {
        self.inner
            .faults
            .lock()
            .expect("faults")
            .get(platform)
            .cloned()
            .unwrap_or_default()
    }

    /// Turns every fault off.
    pub fn clear_faults(&self) {
        self.inner.faults.lock().expect("faults").clear();
        self.inner.counters.lock().expect("counters").clear();
        self.inner.drift_seen.lock().expect("drift").clear();
    }

    /// The requests answered so far (the most recent 20,000).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.inner
            .log
            .lock()
            .expect("log")
            .iter()
            .cloned()
            .collect()
    }

    /// Time spent building answers so far, per platform (injected latency excluded):
    /// what benchmarks subtract to tell the host's share from the simulator's.
    pub fn busy(&self) -> BTreeMap<String, Duration> {
        self.inner.busy.lock().expect("busy").clone()
    }

    pub fn clear_requests(&self) {
        self.inner.log.lock().expect("log").clear();
    }

    /// Every platform's routes and the `/_sim` control API.
    pub fn router(&self) -> Router {
        Router::new()
            .merge(doctolib::routes())
            .merge(keldoc::routes())
            .merge(maiia::routes())
            .merge(ordoclic::routes())
            .merge(mapharma::routes())
            .merge(control::routes())
            .with_state(self.clone())
    }

    /// Serves on `addr` (port 0: any free port) until the returned handle is dropped.
    pub async fn serve(&self, addr: SocketAddr) -> anyhow::Result<RunningSim> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = self.router();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(RunningSim {
            base_url: format!("http://{addr}"),
            addr,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// Applies the platform's faults to one request and builds its response.
    /// `build` answers from the world: a JSON document, or an error status and body.
    pub(crate) async fn respond(
        &self,
        platform: &'static str,
        endpoint: &'static str,
        uri: String,
        build: impl FnOnce(&World) -> Result<Value, (StatusCode, Value)>,
    ) -> Response {
        let faults = self.faults(platform);
        let affected = faults.applies_to(endpoint);
        let verdict = if affected {
            let n = {
                let mut counters = self.inner.counters.lock().expect("counters");
                let n = counters.entry(platform.to_string()).or_insert(0);
                *n += 1;
                *n
            };
            faults.verdict(n)
        } else {
            faults::Verdict::Serve { truncate: false }
        };
        if affected && faults.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
        }
        let building = std::time::Instant::now();
        let (status, response) = match verdict {
            faults::Verdict::Error(code) => {
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                (
                    status,
                    json(status, &serde_json::json!({"error": "simulated failure"})),
                )
            }
            faults::Verdict::RateLimited(after) => (
                StatusCode::TOO_MANY_REQUESTS,
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, after.to_string())],
                    json(
                        StatusCode::TOO_MANY_REQUESTS,
                        &serde_json::json!({"error": "too many requests"}),
                    ),
                )
                    .into_response(),
            ),
            faults::Verdict::Serve { truncate } => {
                let built = build(&self.world());
                match built {
                    Ok(mut doc) => {
                        if let (true, Some(drift)) = (affected, &faults.drift) {
                            let mut seen = self.inner.drift_seen.lock().expect("drift");
                            drift.apply(&mut doc, seen.entry(platform.to_string()).or_insert(0));
                        }
                        let mut bytes = serde_json::to_vec(&doc).expect("JSON serialises");
                        if truncate {
                            bytes.truncate(bytes.len() / 2);
                        }
                        (StatusCode::OK, body(StatusCode::OK, bytes))
                    }
                    Err((status, doc)) => (status, json(status, &doc)),
                }
            }
        };
        *self
            .inner
            .busy
            .lock()
            .expect("busy")
            .entry(platform.to_string())
            .or_default() += building.elapsed();
        let mut log = self.inner.log.lock().expect("log");
        if log.len() >= REQUEST_LOG {
            log.pop_front();
        }
        log.push_back(RequestRecord {
            platform,
            endpoint,
            uri,
            status: status.as_u16(),
        });
        response
    }
}

fn json(status: StatusCode, doc: &Value) -> Response {
    body(status, serde_json::to_vec(doc).expect("JSON serialises"))
}

fn body(status: StatusCode, bytes: Vec<u8>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        Body::from(bytes),
    )
        .into_response()
}

/// A simulator serving on a socket; stops when dropped.
pub struct RunningSim {
    pub base_url: String,
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningSim {
    /// Waits until the server stops (it never does on its own).
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
