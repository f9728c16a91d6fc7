//! One replay bench: a temporary data directory and SQLite store, the component
//! installed through the real installation path, one practice, and a replay server for
//! the cassette. Each run goes through [`Passerelle::sync_account`] — the same code the
//! CLI and the daemon run — with the HTTP capability pointed at the replay server, and
//! returns what it stored, the requests it made and the connector's log lines.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::instrument::WithSubscriber;
use tracing_subscriber::layer::SubscriberExt;

use super::cassette::{parse_now, parse_window, Cassette, ReplayDefaults};
use super::replay::{ReplayServer, Seen};
use super::KitError;
use passerelle_model::connector::Manifest;
use passerelle_model::records::{AppointmentRecord, SlotRecord};
use passerelle_model::run::{Mode, Run, Trigger};
use passerelle_runtime::capabilities::http::{HttpPolicy, RateLimitOverride};
use passerelle_service::accounts::{NewAccount, SecretValues};
use passerelle_service::app::Passerelle;
use passerelle_service::config::Config;
use passerelle_service::practices::NewPractice;
use passerelle_service::sync::SyncOptions;
use passerelle_store::practices::Account;

/// The practice every bench account belongs to.
const PRACTICE: &str = "kit-practice";

/// What a bench runs with.
#[derive(Debug, Clone, Default)]
pub struct BenchOptions {
    pub settings: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, String>,
    /// The run's clock (default: now).
    pub now: Option<DateTime<Utc>>,
    /// Days of the sync window before and after `now` (default: the configuration's).
    pub window: Option<(u32, u32)>,
    /// The cursor each new account starts from (a recorded incremental run's).
    pub cursor: Option<String>,
}

/// The records an account has, in a stable order: what `--expect` files hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Records {
    pub slots: Vec<serde_json::Value>,
    pub appointments: Vec<serde_json::Value>,
}

/// One run on the bench.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub run: Run,
    pub records: Records,
    pub seen: Vec<Seen>,
    /// The connector's log lines as the host wrote them (scrubbed).
    pub logs: Vec<String>,
    /// The emitted appointments, with patients, for the privacy checks.
    pub appointments: Vec<AppointmentRecord>,
}

/// Where a bench's requests go.
pub enum Target {
    /// A cassette's replay server: nothing reaches the network.
    Replay(Cassette),
    /// The platform itself, under this HTTP policy (`connector test --record`).
    Live(HttpPolicy),
}

/// A component installed in a temporary passerelle, and its replay server.
pub struct Bench {
    app: Passerelle,
    /// None for a live bench.
    server: Option<ReplayServer>,
    pub manifest: Manifest,
    pub options: BenchOptions,
    accounts: Mutex<u32>,
    _dir: tempfile::TempDir,
}

impl BenchOptions {
    /// These options over the cassette's `[replay]` defaults.
    pub fn over(mut self, defaults: &ReplayDefaults) -> BenchOptions {
        for (k, v) in &defaults.settings {
            self.settings.entry(k.clone()).or_insert_with(|| v.clone());
        }
        if self.now.is_none() {
            self.now = defaults.now.as_deref().and_then(|t| parse_now(t).ok());
        }
        // One clock for every run of a test (the first, the idempotent one, the probes'):
        // a connector that dates what it asks for by the clock must see the same day.
        if self.now.is_none() {
            self.now = Some(Utc::now());
        }
        if self.cursor.is_none() {
            self.cursor = defaults.cursor.clone();
        }
        if self.window.is_none() {
            self.window = defaults
                .window
                .as_deref()
                .and_then(|w| parse_window(w).ok());
        }
        self
    }
}

impl Bench {
    /// Starts the cassette's replay server (for a replay), installs the component.
    pub async fn open(
        component: &Path,
        target: Target,
        options: BenchOptions,
    ) -> Result<Bench, KitError> {
        if !component.is_file() {
            return Err(KitError::Component(format!(
                "{}: no such component file",
                component.display()
            )));
        }
        let mut config = Config::default();
        // The author tests their own component: no approval to wait for.
        config.plugins.trust_every_host = true;
        let server = match target {
            Target::Replay(cassette) => {
                let server = ReplayServer::start(cassette).await.map_err(|e| {
                    KitError::Internal(anyhow::anyhow!("starting the replay server: {e}"))
                })?;
                config.http.replay_to = Some(server.base().clone());
                Some(server)
            }
            Target::Live(policy) => {
                config.http = policy;
                None
            }
        };
        let dir = tempfile::tempdir()
            .map_err(|e| KitError::Internal(anyhow::anyhow!("a temporary directory: {e}")))?;
        if let Some((past, future)) = options.window {
            config.sync.window_past_days = past;
            config.sync.window_future_days = future;
        }
        let mut app = Passerelle::open(dir.path(), config)
            .await
            .map_err(KitError::Internal)?;
        let installed = app
            .install_plugin(component)
            .await
            .map_err(|e| KitError::Component(e.to_string()))?;
        let manifest = installed.manifest.clone();
        // A replay has no platform to be polite to.
        if server.is_some() {
            app.config.http.rate_limits.insert(
                manifest.name.clone(),
                RateLimitOverride {
                    requests_per_second: 10_000,
                    burst: 10_000,
                },
            );
        }
        app.create_practice(
            NewPractice {
                id: PRACTICE.into(),
                name: "Connector test".into(),
                timezone: "Europe/Paris".into(),
                schedule: None,
            },
            Utc::now(),
        )
        .await?;
        Ok(Bench {
            app,
            server,
            manifest,
            options,
            accounts: Mutex::new(0),
            _dir: dir,
        })
    }

    /// The replay server (a replay bench's).
    pub fn replay(&self) -> &ReplayServer {
        self.server.as_ref().expect("a replay bench")
    }

    /// The temporary passerelle.
    pub fn app(&self) -> &Passerelle {
        &self.app
    }

    /// A new account with the bench's settings and secrets (checked by the connector's
    /// `check()` as `accounts add` does: its refusal is an error).
    pub async fn new_account(&self) -> Result<Account, KitError> {
        let id = {
            let mut n = self.accounts.lock().expect("not poisoned");
            *n += 1;
            format!("kit-account-{n}")
        };
        // Forced: the refusal is reported here, with the check's own words.
        let checked = self
            .app
            .create_account(
                PRACTICE,
                NewAccount {
                    id: id.clone(),
                    connector: self.manifest.name.clone(),
                    label: None,
                    settings: self.options.settings.clone(),
                    secrets: SecretValues(self.options.secrets.clone()),
                    force: true,
                },
            )
            .await?;
        let check = match checked.check {
            Some(check) => check,
            None => self.app.check_account(&id).await?,
        };
        if !check.ok {
            return Err(KitError::Refused(format!(
                "{}: {}",
                check.error_kind.map(|k| k.as_str()).unwrap_or("refused"),
                check.detail.unwrap_or_default()
            )));
        }
        // A recorded incremental run's requests depend on where it started.
        if let Some(cursor) = &self.options.cursor {
            self.app.store.seed_cursor(&id, cursor).await?;
        }
        Ok(self.app.account(&id).await?)
    }

    /// One run of `account`, with what it stored, asked and logged.
    pub async fn run(&self, account: &Account, mode: Mode) -> Result<Outcome, KitError> {
        if let Some(server) = &self.server {
            server.take_seen();
        }
        let lines = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Capture(lines.clone()));
        let run = self
            .app
            .sync_account(
                account,
                SyncOptions {
                    trigger: Trigger::Manual,
                    mode,
                    now: self.options.now,
                    record: None,
                },
            )
            .with_subscriber(subscriber)
            .await?;
        let seen = self
            .server
            .as_ref()
            .map(|s| s.take_seen())
            .unwrap_or_default();
        let logs = std::mem::take(&mut *lines.lock().expect("not poisoned"));
        let slots = self.app.store.slots(&account.id).await?;
        let stored = self.app.store.appointments(&account.id).await?;
        let appointments: Vec<AppointmentRecord> = stored
            .iter()
            .filter(|a| a.deleted_reason.is_none())
            .map(|a| a.record.clone())
            .collect();
        Ok(Outcome {
            run,
            records: records_of(&slots, &appointments),
            seen,
            logs,
            appointments,
        })
    }
}

fn records_of(slots: &[SlotRecord], appointments: &[AppointmentRecord]) -> Records {
    let value = |v: serde_json::Result<serde_json::Value>| v.expect("records serialise");
    let mut slots: Vec<serde_json::Value> = slots
        .iter()
        .map(|s| value(serde_json::to_value(s)))
        .collect();
    slots.sort_by(|a, b| a["external_id"].as_str().cmp(&b["external_id"].as_str()));
    let mut appointments: Vec<serde_json::Value> = appointments
        .iter()
        .map(|a| value(serde_json::to_value(a)))
        .collect();
    appointments.sort_by(|a, b| a["external_id"].as_str().cmp(&b["external_id"].as_str()));
    Records {
        slots,
        appointments,
    }
}

/// A tracing layer keeping every event of a run as one line of text. It takes no span:
/// the run's spans would otherwise belong to this run's own registry, and sqlx's SQLite
/// worker threads, which carry the caller's current span with each statement, would drop
/// them under the process's global subscriber, which does not know them (a panic).
struct Capture(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn enabled(
        &self,
        meta: &tracing::Metadata<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        !meta.is_span()
    }

    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        // The host's and the connector's lines, not the HTTP client's.
        let meta = event.metadata();
        let ours = meta.target().starts_with("passerelle") || meta.target() == "connector";
        if !ours || *meta.level() > tracing::Level::DEBUG {
            return;
        }
        let mut line = format!("{:5}", event.metadata().level());
        event.record(&mut LineVisitor(&mut line));
        self.0.lock().expect("not poisoned").push(line);
    }
}

struct LineVisitor<'a>(&'a mut String);

impl tracing::field::Visit for LineVisitor<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.push_str(&format!(" {value:?}"));
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(&format!(" {value}"));
        } else {
            self.0.push_str(&format!(" {}={value}", field.name()));
        }
    }
}
