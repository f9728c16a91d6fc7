//! [`Passerelle`]: one process's shared state (store, runtime, HTTP service, config),
//! opened once; the service layer ([`crate`]) is its methods, which the CLI,
//! the daemon and the admin API call.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};

use crate::config::Config;
use passerelle_model::connector::Manifest;
use passerelle_runtime::capabilities::http::HttpService;
use passerelle_runtime::metrics::Metrics;
use passerelle_runtime::sandbox::{LoadedConnector, Runtime, RuntimeConfig};
use passerelle_store::connectors::ConnectorVersion;
use passerelle_store::notify::Change;
use passerelle_store::secrets::PlainSecrets;
use passerelle_store::Store;

/// mimalloc as the process allocator: the daemon allocates from many threads (tokio
/// workers, sqlx's SQLite workers, wasmtime), where glibc's per-thread arenas fragment
/// (measured: a third more resident memory in the daemon benchmark) and malloc/free
/// were an eighth of the CPU profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Makes mimalloc give freed memory back to the OS at once and commit arena memory
/// only when used: a daemon's resident size should follow its load (measured: 77 MiB
/// instead of 156 MiB for the daemon benchmark at 6,000 runs, for about 5% of its
/// throughput). Called by [`Passerelle::open`]; the environment (`MIMALLOC_*`) still
/// wins for experiments.
pub fn tune_allocator() {
    // mimalloc.h: mi_option_arena_eager_commit = 4, mi_option_purge_delay = 15.
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for (option, var, value) in [
            (PURGE_DELAY, "MIMALLOC_PURGE_DELAY", 0),
            (ARENA_EAGER_COMMIT, "MIMALLOC_ARENA_EAGER_COMMIT", 0),
        ] {
            if std::env::var_os(var).is_none() {
                // SAFETY: setting a documented mimalloc option; no memory is touched.
                unsafe { libmimalloc_sys::mi_option_set(option, value) };
            }
        }
    });
}

pub struct Passerelle {
    pub store: Store,
    pub runtime: Arc<Runtime>,
    pub http: HttpService,
    pub config: Config,
    pub data_dir: PathBuf,
    pub metrics: Arc<Metrics>,
    /// The key that seals account secrets in the store (and the ones that still open).
    pub keyring: Arc<passerelle_store::sealed::Keyring>,
    /// Linked components by content hash, so a version is compiled once per process.
    pub(crate) loaded: Mutex<HashMap<String, LoadedConnector>>,
    /// Links under way, one lock per content hash: the runs that need a version not
    /// linked yet wait for one compile ([`Passerelle::link`]).
    pub(crate) linking: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Connector versions (row and manifest) claimed runs ran on, by name, version and
    /// hash ([`Passerelle::claimed_connector`]).
    pub(crate) versions: Mutex<HashMap<String, (ConnectorVersion, Manifest)>>,
    /// Installations happen one at a time (the "newer than active" check and the
    /// activation must not interleave).
    pub(crate) install_lock: tokio::sync::Mutex<()>,
    /// Counts activations in this process; the daemon watches it to re-drive paused
    /// accounts.
    pub activations: tokio::sync::watch::Sender<u64>,
    /// Counts changes to practices and schedules in this process; the daemon's
    /// scheduler watches it to reload its plan.
    pub practices_changed: tokio::sync::watch::Sender<u64>,
    /// Woken when runs are queued in this process (or announced by another daemon):
    /// the daemon's run queue waits on it ([`tokio::sync::Notify::notify_waiters`]: a
    /// worker registers before it looks, so nothing is missed).
    pub queued: Arc<tokio::sync::Notify>,
    /// Drift alerts (log, metric, webhook).
    pub alerts: crate::alerts::Alerts,
    /// Wrong tokens by client address ([`Passerelle::authenticate`]).
    pub auth_limiter: crate::auth_limit::AuthLimiter,
    /// Replays a version on recorded cassettes for the shadow report (the kit's, handed
    /// in by the binary: [`Passerelle::set_replayer`]).
    pub(crate) replayer: std::sync::OnceLock<Arc<dyn crate::flight::replayer::Replayer>>,
}

impl Passerelle {
    /// Opens the data directory (created 0700 if missing), the database and the runtime.
    pub async fn open(data_dir: &Path, config: Config) -> Result<Passerelle> {
        crate::app::tune_allocator();
        create_private_dir(data_dir)?;
        let store = match &config.database_url {
            Some(url) => Store::open(url).await?,
            None => Store::open_in_data_dir(data_dir).await?,
        };
        let keyring = Arc::new(passerelle_store::sealed::Keyring::load(data_dir)?);
        let store = store
            .with_keyring(keyring.clone())
            .with_quotas(config.quotas);
        // The audit trail keyed under the current key (entries from before it was keyed,
        // or under a key being retired, re-tagged once if their chain is intact).
        store.key_audit_trail().await?;
        match store.seal_plain_secrets(&keyring).await? {
            PlainSecrets::None | PlainSecrets::SealedNow(0) => {}
            PlainSecrets::SealedNow(n) => tracing::info!(
                secrets = n,
                key = keyring.key_id(),
                "plain-text secrets sealed"
            ),
            PlainSecrets::Refused(n) => tracing::warn!(
                secrets = n,
                "security: plain-text secrets in a database whose secrets are sealed; passerelle did not write them and will not use them (set them again)"
            ),
        }
        let runtime = Runtime::new(RuntimeConfig {
            limits: config.limits.clone(),
            cache_dir: config.runtime.compile_cache.then(|| {
                config
                    .runtime
                    .cache_dir
                    .clone()
                    .unwrap_or_else(|| data_dir.join("cache"))
            }),
            max_instances: config.runtime.max_instances,
            max_component_bytes: config.runtime.max_component_bytes,
            memory_budget_bytes: config
                .run_memory_budget_mib()
                .map(|m| usize::try_from(m << 20).unwrap_or(usize::MAX)),
            ..RuntimeConfig::default()
        })?;
        let metrics = Arc::new(Metrics::new());
        let http = HttpService::new(&config.http, metrics.clone())?;
        let alerts = crate::alerts::Alerts::new(&config.alerts, metrics.clone())?;
        let auth_limiter =
            crate::auth_limit::AuthLimiter::new(config.daemon.wrong_tokens_per_minute);
        Ok(Passerelle {
            store,
            runtime: Arc::new(runtime),
            http,
            config,
            data_dir: data_dir.to_path_buf(),
            metrics,
            keyring,
            loaded: Mutex::default(),
            linking: Mutex::default(),
            versions: Mutex::default(),
            install_lock: tokio::sync::Mutex::new(()),
            activations: tokio::sync::watch::channel(0).0,
            practices_changed: tokio::sync::watch::channel(0).0,
            queued: Arc::new(tokio::sync::Notify::new()),
            alerts,
            auth_limiter,
            replayer: std::sync::OnceLock::new(),
        })
    }

    /// Something other daemons must hear of at once: signalled in this process and
    /// sent to the others (PostgreSQL `NOTIFY`).
    pub async fn announce(&self, change: Change) {
        self.signal(change);
        self.store.notify(change).await;
    }

    /// Signals a change in this process only (what another daemon announced).
    pub fn signal(&self, change: Change) {
        match change {
            Change::Activation => self.activations.send_modify(|n| *n += 1),
            Change::Practices => self.practices_changed.send_modify(|n| *n += 1),
            Change::Queued => self.queued.notify_waiters(),
        }
    }

    /// Where installed component files are kept.
    pub fn plugins_dir(&self) -> PathBuf {
        self.data_dir.join("plugins")
    }
}

/// Creates a directory readable by its owner only.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {}", dir.display()))?;
    }
    Ok(())
}
