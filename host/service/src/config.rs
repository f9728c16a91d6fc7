//! The operator's configuration: one TOML file, every key optional with a documented
//! default (see `docs/configuration.md`), environment variables on top
//! (`PASSERELLE_<SECTION>__<KEY>`, e.g. `PASSERELLE_DAEMON__LISTEN`; `PASSERELLE_DATA_DIR`
//! and `PASSERELLE_DATABASE_URL` for the top-level keys), command-line flags above both.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use passerelle_model::limits::Limits;
use passerelle_runtime::capabilities::http::HttpPolicy;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Data directory (database, installed plugins, compile cache).
    pub data_dir: Option<PathBuf>,
    /// `sqlite://…` or `postgres://…`; default: SQLite in the data directory.
    pub database_url: Option<String>,
    /// Per-run limits.
    pub limits: Limits,
    /// Outbound HTTP policy.
    pub http: HttpPolicy,
    pub sync: SyncConfig,
    pub runtime: RuntimeSection,
    /// `passerelle serve`: listening address, token, concurrency, shutdown.
    pub daemon: DaemonConfig,
    /// When practices sync by default.
    pub schedule: ScheduleConfig,
    /// Retries of transient failures.
    pub retry: crate::retry::RetryPolicy,
    /// New connector versions: the watched directory, uploads.
    pub plugins: PluginsConfig,
    /// Where drift alerts go besides the log and the metrics.
    pub alerts: AlertsConfig,
    /// The change feed's retention.
    pub feed: FeedConfig,
    /// Webhook delivery of the change feed to subscriptions.
    pub delivery: DeliveryConfig,
    /// The open-data export a daemon refreshes.
    pub export: ExportConfig,
    /// What one account may keep in the database, and the disk guard.
    pub quotas: passerelle_model::Quotas,
    /// What runs that drift or fail keep of their HTTP exchanges.
    pub flight_recorder: FlightRecorderConfig,
}

/// The change feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedConfig {
    /// Changes older than this are removed, except those an active subscription has
    /// yet to deliver. A reader behind what was removed is told so (HTTP 410).
    pub retention_days: u32,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig { retention_days: 7 }
    }
}

/// Webhook delivery (`passerelle subscriptions`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Changes per POST at most.
    pub batch_size: u32,
    /// Attempts of one batch before the subscription is dead (`subscriptions replay`
    /// brings it back).
    pub max_attempts: u32,
    /// Delay before the first retry; doubles with each failed attempt.
    pub backoff_base_ms: u64,
    /// The longest delay between two attempts.
    pub backoff_max_secs: u64,
    /// How long a receiver has to answer one POST.
    pub timeout_secs: u64,
    /// How often a daemon looks for changes to deliver.
    pub poll_ms: u64,
    /// Subscriptions one daemon delivers to at once: a receiver slow to answer holds
    /// one of them for up to `timeout_secs`, not the others.
    pub concurrency: u32,
    /// Let every subscription's URL be a private or loopback address (one subscription
    /// can be allowed with `subscriptions add --allow-private`).
    pub allow_private: bool,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            batch_size: 100,
            max_attempts: 12,
            backoff_base_ms: 1000,
            backoff_max_secs: 3600,
            timeout_secs: 10,
            poll_ms: 1000,
            concurrency: 4,
            allow_private: false,
        }
    }
}

/// The ViteMaDose-format open-data export (`passerelle export vitemadose`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportConfig {
    /// A daemon rewrites the export here after each night's runs (unset: only on demand).
    pub vitemadose_dir: Option<PathBuf>,
    /// Visit motive (as the platform names it) → the name published in `vaccine_type`
    /// (ViteMaDose's vocabulary: `Pfizer-BioNTech`, `Moderna`, `ARNm`, `AstraZeneca`,
    /// `Janssen`…). Only mapped motives are published: a motive is the platform's free
    /// text, and the export is public. The export reports the unmapped ones.
    pub motives: std::collections::BTreeMap<String, String>,
}

/// How new connector versions arrive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginsConfig {
    /// Watch a directory for component files (`passerelle serve` only).
    pub watch: bool,
    /// The watched directory. Default: `<data dir>/incoming`.
    pub watch_dir: Option<PathBuf>,
    /// A file is considered once it has not changed for this long.
    pub settle_ms: u64,
    /// Largest component the admin API accepts.
    pub max_upload_bytes: usize,
    /// Per connector, what happens to an item it cannot read: `fail` (default: the run
    /// ends `drift` and the account pauses) or `quarantine` (the item is set aside for
    /// review and the run goes on; needs a connector built against contract 0.1.1 or later).
    pub drift_policy: std::collections::BTreeMap<String, DriftPolicy>,
    /// Allowed-host patterns the operator accepts without approving each version that
    /// asks for them, though they need consent (plain `http://`, IP addresses, wildcards
    /// over a public suffix), exactly as the manifest writes them. Any other such
    /// pattern makes the version wait for `passerelle plugins approve`, first install
    /// included.
    pub trusted_hosts: Vec<String>,
    /// The connector kit's own temporary host, where the author tests a component they
    /// built: every pattern is trusted there. Not settable in the config file.
    #[serde(skip)]
    pub trust_every_host: bool,
    /// Connectors whose new versions are replayed on the flight recorder's cassettes
    /// before they activate (`passerelle plugins shadow`): one with an unexpected
    /// difference (records different, or an error, where the active version succeeds)
    /// waits for `passerelle plugins approve`.
    pub shadow_gate: Vec<String>,
}

/// What happens to an item a connector cannot read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftPolicy {
    #[default]
    Fail,
    Quarantine,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig {
            watch: true,
            watch_dir: None,
            settle_ms: 500,
            max_upload_bytes: 32 << 20,
            drift_policy: Default::default(),
            trusted_hosts: Vec::new(),
            trust_every_host: false,
            shadow_gate: Vec::new(),
        }
    }
}

/// Drift alerts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// POST a JSON drift report here (no patient data, no secrets). Retried with backoff.
    pub webhook_url: Option<String>,
    /// Delivery attempts per alert (default 5).
    pub webhook_attempts: Option<u32>,
}

/// What a daemon takes besides what its runs hold (engine, compiled code, pools,
/// connections, responses being read), in MiB: the part of `daemon.memory_ceiling_mib`
/// not given to the runs' budget; measured idle at about 60 MiB.
pub const BASE_MEMORY_MIB: u64 = 128;

/// The daemon's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonConfig {
    /// Admin API address. Loopback by default: put a reverse proxy with TLS in front to
    /// reach it from elsewhere.
    pub listen: std::net::SocketAddr,
    /// Admin API bearer token. Default: generated at first start into
    /// `<data dir>/admin-token` (mode 0600) and read from there afterwards.
    pub token: Option<String>,
    /// Runs at once, all platforms. A run waiting on a platform is cheap to hold (its
    /// instance's memory as used, 1–2 MiB for a Rust connector), so against slow
    /// platforms this can be raised well past the default (256 runs in flight on
    /// SQLite: docs/capacity.md); `memory_ceiling_mib` then bounds what they hold. At
    /// most `runtime.max_instances - 1`.
    pub max_concurrent_runs: usize,
    /// Runs at once per connector (platform): keeps one platform's runs, waiting on its
    /// rate limit, from taking every place.
    pub max_concurrent_per_connector: usize,
    /// Threads that execute runs, each with its own single-threaded scheduler (a run
    /// stays on its thread from claim to end, so it does not wake the others at each
    /// await). 0, the default: one per CPU core, at most `max_concurrent_runs`.
    pub run_threads: usize,
    /// On SIGTERM, how long running runs may go on before they are cancelled.
    pub shutdown_grace_secs: u64,
    /// Shortest time between two manual syncs of an account ("Sync now"), across every
    /// daemon on the database.
    pub manual_min_interval_secs: u64,
    /// This daemon's name in the sync log, logs, metrics and `passerelle daemons`.
    /// Default: `<host name>/<pid>`. Two live daemons must not share one.
    pub id: Option<String>,
    /// How long a daemon's claim on a running run lasts unless renewed (it renews every
    /// third of it). A daemon that dies loses its runs to the others after this long.
    pub lease_secs: u64,
    /// How often a daemon looks for runs queued by others when nothing woke it (on
    /// PostgreSQL, `LISTEN/NOTIFY` wakes it at once; this is the fallback).
    pub poll_secs: u64,
    /// The memory the daemon may use, in MiB (set it a little under the service's
    /// memory limit, e.g. systemd's `MemoryMax`). Runs share what is left after the
    /// daemon's base (128 MiB): their linear memories and pending records are charged
    /// as they grow; a new run starts only when one more of the usual size fits, and a
    /// run whose growth does not fit fails as a host failure, retried with backoff
    /// (nothing it committed is lost). It must leave room for one run at its limits.
    /// Unset: runs are bounded by the caps and their own limits only.
    pub memory_ceiling_mib: Option<u64>,
    /// Wrong tokens (API bearer or console login) one client address may present in a
    /// minute, all at once or spread; past that it is refused (429) before its tokens
    /// are looked at, until its allowance refills.
    pub wrong_tokens_per_minute: u32,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            listen: ([127, 0, 0, 1], 8787).into(),
            token: None,
            wrong_tokens_per_minute: 10,
            max_concurrent_runs: 8,
            max_concurrent_per_connector: 4,
            run_threads: 0,
            shutdown_grace_secs: 30,
            manual_min_interval_secs: 60,
            id: None,
            lease_secs: 30,
            poll_secs: 5,
            memory_ceiling_mib: None,
        }
    }
}

/// Scheduling defaults; a practice can have its own cron expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Five-field cron expression, in each practice's time zone.
    pub default_cron: String,
    /// Practices' runs are spread over this many seconds after each slot, by a stable
    /// hash of the practice id.
    pub spread_secs: u64,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            default_cron: crate::schedule::DEFAULT_CRON.into(),
            spread_secs: crate::schedule::DEFAULT_SPREAD.as_secs(),
        }
    }
}

impl ScheduleConfig {
    pub fn spread(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.spread_secs)
    }

    /// When `practice` syncs: its own cron expression or `default_cron`, with runs
    /// spread over `spread_secs`.
    pub fn schedule_of(
        &self,
        practice: &passerelle_store::practices::Practice,
    ) -> anyhow::Result<crate::schedule::Schedule> {
        crate::schedule::practice_schedule(practice, &self.default_cron, self.spread())
    }
}

/// What a sync covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncConfig {
    /// Days before now that a sync window starts.
    pub window_past_days: u32,
    /// Days after now that a sync window ends.
    pub window_future_days: u32,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            window_past_days: 30,
            window_future_days: 90,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSection {
    /// Connector instances alive at once (sizes the instance pool).
    pub max_instances: u32,
    /// Keep precompiled components on disk so restarts do not recompile.
    pub compile_cache: bool,
    /// Where they are kept (default: `cache/` in the data directory). Daemons or
    /// commands of one machine may share one: entries are keyed by the component's
    /// content and the engine's settings, and written atomically.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_dir: Option<std::path::PathBuf>,
    /// The largest component file installed or compiled, in bytes.
    pub max_component_bytes: u64,
    /// The longest a new component may take to compile at install, in seconds.
    pub max_compile_secs: f64,
}

impl Default for RuntimeSection {
    fn default() -> Self {
        RuntimeSection {
            max_instances: 256,
            compile_cache: true,
            cache_dir: None,
            max_component_bytes: passerelle_runtime::sandbox::MAX_COMPONENT_BYTES,
            max_compile_secs: 120.0,
        }
    }
}

/// Top-level keys that environment variables may set.
const SECTIONS: &[&str] = &[
    "data_dir",
    "database_url",
    "limits",
    "http",
    "sync",
    "runtime",
    "daemon",
    "schedule",
    "retry",
    "plugins",
    "alerts",
    "feed",
    "delivery",
    "export",
    "quotas",
];

impl Config {
    /// The defaults, then the config file (if any), then the environment
    /// (`PASSERELLE_<SECTION>__<KEY>`), then validation.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        use figment::providers::{Env, Format, Serialized, Toml};
        let mut figment = figment::Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = path {
            if !path.exists() {
                anyhow::bail!("config file {} not found", path.display());
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        let figment = figment.merge(Env::prefixed("PASSERELLE_").split("__").filter(|key| {
            let section = key.as_str().split('.').next().unwrap_or_default();
            SECTIONS.iter().any(|s| s.eq_ignore_ascii_case(section))
        }));
        let source = path.map_or("the environment".to_string(), |p| {
            format!("{} or the environment", p.display())
        });
        let config: Config = figment
            .extract()
            .map_err(|e| anyhow::anyhow!("invalid configuration in {source}: {e}"))?;
        config.validate().with_context(|| format!("in {source}"))?;
        Ok(config)
    }

    /// The memory a daemon may need at worst, in MiB: every run at its limits at once,
    /// plus the daemon's own base. Reported, not reserved: with `memory_ceiling_mib` the
    /// runs are bounded by what they hold ([`Config::run_memory_budget_mib`]).
    pub fn worst_case_memory_mib(&self) -> u64 {
        BASE_MEMORY_MIB
            + (self.daemon.max_concurrent_runs as u64)
                .saturating_mul(self.limits.run_worst_case_mib())
    }

    /// How many threads execute runs: `daemon.run_threads`, or one per CPU core; never
    /// more than `daemon.max_concurrent_runs`.
    pub fn run_threads(&self) -> usize {
        let wanted = match self.daemon.run_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        wanted.clamp(1, self.daemon.max_concurrent_runs.max(1))
    }

    /// What the runs may hold together, in MiB: the ceiling less the daemon's base.
    pub fn run_memory_budget_mib(&self) -> Option<u64> {
        self.daemon
            .memory_ceiling_mib
            .map(|c| c.saturating_sub(BASE_MEMORY_MIB))
    }

    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<()> {
        self.limits.validate()?;
        crate::schedule::Schedule::new(
            &self.schedule.default_cron,
            crate::schedule::DEFAULT_TIMEZONE,
            self.schedule.spread(),
            "check",
        )
        .context("schedule.default_cron")?;
        if self.daemon.max_concurrent_runs == 0 || self.daemon.max_concurrent_per_connector == 0 {
            anyhow::bail!(
                "daemon.max_concurrent_runs and daemon.max_concurrent_per_connector must be at least 1"
            );
        }
        if let Some(ceiling) = self.daemon.memory_ceiling_mib {
            let one_run = self.limits.run_worst_case_mib();
            anyhow::ensure!(
                BASE_MEMORY_MIB + one_run <= ceiling,
                "daemon.memory_ceiling_mib = {ceiling} leaves no room for one run at its limits: \
                 {one_run} MiB (limits: memory_mib {}, pending_records_mib {}, 2 × response_mib {}, log_kib {}, scrub_patterns {}) + {BASE_MEMORY_MIB} MiB base; \
                 lower those limits or raise the ceiling",
                self.limits.memory_mib,
                self.limits.pending_records_mib,
                self.limits.response_mib,
                self.limits.log_kib,
                self.limits.scrub_patterns,
            );
        }
        if self.daemon.max_concurrent_runs >= self.runtime.max_instances as usize {
            anyhow::bail!(
                "daemon.max_concurrent_runs = {} needs runtime.max_instances above it (now {}): \
                 checks and installs take instances from the same pool",
                self.daemon.max_concurrent_runs,
                self.runtime.max_instances
            );
        }
        let d = &self.delivery;
        if d.batch_size == 0 || d.max_attempts == 0 || d.timeout_secs == 0 || d.poll_ms == 0 {
            anyhow::bail!(
                "delivery.batch_size, delivery.max_attempts, delivery.timeout_secs and delivery.poll_ms must be at least 1"
            );
        }
        if !(1..=64).contains(&d.concurrency) {
            anyhow::bail!("delivery.concurrency must be between 1 and 64");
        }
        self.flight_recorder.validate()?;
        if self.feed.retention_days == 0 {
            anyhow::bail!("feed.retention_days must be at least 1");
        }
        if self.daemon.lease_secs < 3 || self.daemon.poll_secs == 0 {
            anyhow::bail!("daemon.lease_secs must be at least 3 and daemon.poll_secs at least 1");
        }
        if self
            .daemon
            .id
            .as_deref()
            .is_some_and(|id| id.trim().is_empty() || id.len() > 200)
        {
            anyhow::bail!("daemon.id must be 1 to 200 characters");
        }
        if !(self.retry.min_delay_secs >= 0.0
            && self.retry.min_delay_secs <= self.retry.max_delay_secs)
        {
            anyhow::bail!("retry.min_delay_secs must be between 0 and retry.max_delay_secs");
        }
        if let Some(url) = &self.alerts.webhook_url {
            let parsed = reqwest::Url::parse(url)
                .with_context(|| format!("alerts.webhook_url `{url}` is not a URL"))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                anyhow::bail!("alerts.webhook_url must be http:// or https://");
            }
        }
        if self.plugins.max_upload_bytes < 1024 {
            anyhow::bail!("plugins.max_upload_bytes must be at least 1024");
        }
        if self.retry.max_attempts == 0 {
            anyhow::bail!("retry.max_attempts must be at least 1 (1: never retry)");
        }
        if let Some(token) = &self.daemon.token {
            if token.len() < 16 {
                anyhow::bail!("daemon.token must be at least 16 characters");
            }
        }
        Ok(())
    }
}

/// `[flight_recorder]`: what failing runs keep of their HTTP exchanges, and for how long.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlightRecorderConfig {
    /// Keep the exchanges of runs that drift or fail (false: runs record nothing).
    pub enabled: bool,
    /// Cassettes older than this are removed.
    pub keep_days: u32,
    /// What one account's cassettes may take, in KiB; the oldest go first.
    pub per_account_kib: u64,
    /// What all cassettes may take, in MiB; the oldest go first.
    pub total_mib: u64,
    /// Baselines: per connector, the share of its accounts (percent, chosen by a stable
    /// hash of the account id) whose successful runs keep their exchanges too — the
    /// account's last one only. A cassette kept for a drift or a failure ends with the
    /// account's baseline exchanges (noted as such), so a fixed version replays the
    /// requests the failing run never reached.
    pub baselines: std::collections::BTreeMap<String, u8>,
}

impl Default for FlightRecorderConfig {
    fn default() -> Self {
        FlightRecorderConfig {
            enabled: true,
            keep_days: 14,
            per_account_kib: 8 * 1024,
            total_mib: 512,
            baselines: Default::default(),
        }
    }
}

impl FlightRecorderConfig {
    /// The store's retention as of `now`.
    pub fn retention(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> passerelle_store::cassettes::Retention {
        passerelle_store::cassettes::Retention {
            older_than: Some(now - chrono::Duration::days(self.keep_days.into())),
            per_account_bytes: self.per_account_kib.saturating_mul(1024),
            total_bytes: self.total_mib.saturating_mul(1024 * 1024),
        }
    }

    /// Checks what types alone cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.keep_days >= 1 && self.per_account_kib >= 1 && self.total_mib >= 1,
            "flight_recorder.keep_days, per_account_kib and total_mib must be at least 1"
        );
        if let Some((connector, percent)) = self.baselines.iter().find(|(_, p)| **p > 100) {
            anyhow::bail!(
                "flight_recorder.baselines.{connector} = {percent}: a share of accounts, 0 to 100"
            );
        }
        Ok(())
    }

    /// Whether `account`'s successful runs on `connector` keep a baseline.
    pub fn keeps_baseline(&self, connector: &str, account: &str) -> bool {
        let percent = self.baselines.get(connector).copied().unwrap_or(0);
        // A stable choice (FNV-1a of the id): the same accounts from run to run.
        let hash = account.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        hash % 100 < u64::from(percent)
    }
}

/// The default data directory: `$XDG_DATA_HOME/passerelle` (or `~/.local/share/…`).
pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("passerelle")
}

#[cfg(test)]
mod tests {
    use crate::config::*;

    #[test]
    fn the_memory_ceiling_bounds_what_runs_hold_not_a_worst_case_per_run() {
        let mut config = Config::default();
        // 64 runs at their limits would need 19 GiB: not reserved, only reported.
        config.daemon.max_concurrent_runs = 64;
        assert_eq!(
            config.worst_case_memory_mib(),
            BASE_MEMORY_MIB + 64 * config.limits.run_worst_case_mib()
        );
        config.daemon.memory_ceiling_mib = Some(512);
        config.validate().unwrap();
        assert_eq!(config.run_memory_budget_mib(), Some(512 - BASE_MEMORY_MIB));
        // A ceiling that leaves no room for one run at its limits is refused.
        let one_run = config.limits.run_worst_case_mib();
        config.daemon.memory_ceiling_mib = Some(BASE_MEMORY_MIB + one_run - 1);
        let err = format!("{:#}", config.validate().unwrap_err());
        assert!(
            err.contains("leaves no room for one run at its limits"),
            "{err}"
        );
        config.limits.memory_mib = 32;
        config.validate().unwrap();
    }

    #[test]
    fn runs_at_once_stay_under_the_instance_pool() {
        let mut config = Config::default();
        config.daemon.max_concurrent_runs = config.runtime.max_instances as usize;
        let err = format!("{:#}", config.validate().unwrap_err());
        assert!(err.contains("runtime.max_instances above it"), "{err}");
        config.runtime.max_instances += 1;
        config.validate().unwrap();
    }

    #[test]
    fn delivery_workers_are_bounded() {
        let mut config = Config::default();
        assert_eq!(config.delivery.concurrency, 4);
        for bad in [0, 65] {
            config.delivery.concurrency = bad;
            let err = format!("{:#}", config.validate().unwrap_err());
            assert!(err.contains("delivery.concurrency"), "{bad}: {err}");
        }
        config.delivery.concurrency = 1;
        config.validate().unwrap();
    }
}
