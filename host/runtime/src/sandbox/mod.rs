//! The sandbox: one wasmtime engine, components compiled once (and cached on disk), and a
//! fresh store + instance per run, dropped at its end.
//!
//! Defences per run: a memory and table limiter, a wall-clock deadline enforced by epoch
//! interruption (which also yields, so a busy guest cannot starve the executor) and by a
//! timer around host calls, HTTP/record budgets in the capabilities, and WASI with every
//! capability denied (no files, environment, arguments, sockets or name lookups; stdout
//! and stderr captured into the scrubbed log). A trap or limit fails that run only.

pub mod budget;
pub mod cache;
pub mod denied_http;
pub mod state;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument as _;

use anyhow::{Context, Result};
use wasmtime::component::Linker;
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline,
};
use wasmtime_wasi::WasiCtxBuilder;

use self::state::{RunLimiter, RunState};
use crate::capabilities::http::HttpSession;
use crate::capabilities::records::RecordsSession;
use crate::capabilities::Capabilities;
use crate::contract::wit;
use crate::contract::ConnectorPre;
use crate::scrub::Scrubber;
use passerelle_model::limits::Limits;

pub use self::cache::Origin;
use passerelle_model::run::ErrorKind;
use passerelle_model::{sha256_hex, LimitExceeded, QuotaExceeded, SecretEchoed};

/// The contract version this host implements (`wit/v0.1.3`). Components built against
/// it, or an earlier patch of the same minor version (0.1.0, 0.1.1, 0.1.2), load.
pub const CONTRACT_VERSION: &str = "0.1.3";

/// The version in an import or export name of the passerelle contract
/// (`passerelle:connector/http@0.1.0` gives `0.1.0`).
fn contract_version(name: &str) -> Option<&str> {
    name.strip_prefix("passerelle:connector/")?
        .split_once('@')
        .map(|(_, v)| v)
}

/// Whether a component built against contract `version` can run on this host.
fn supported_contract(version: &str) -> bool {
    let (Ok(found), Ok(ours)) = (
        semver::Version::parse(version),
        semver::Version::parse(CONTRACT_VERSION),
    ) else {
        return false;
    };
    found.major == ours.major && found.minor == ours.minor && found.patch <= ours.patch
}

/// Why bytes are not a connector this host can run.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    #[error("not a valid WebAssembly component (build connectors for wasm32-wasip2 as a component): {0}")]
    NotComponent(String),
    #[error("built against passerelle:connector@{found}; this host implements passerelle:connector@{CONTRACT_VERSION} (and earlier patches of it)")]
    UnsupportedContract { found: String },
    #[error("does not implement the passerelle:connector@{CONTRACT_VERSION} world: {0}")]
    WrongWorld(String),
    #[error("is {size} bytes; components may be at most {max} bytes (`max_component_bytes`)")]
    TooLarge { size: u64, max: u64 },
    #[error("took more than {secs} s to compile (`runtime.max_compile_secs`)")]
    TooSlow { secs: f64 },
    #[error("starts with {needs_mib:.1} MiB of linear memory; runs may have {limit_mib} MiB (`limits.memory_mib`)")]
    MemoryLimit { needs_mib: f64, limit_mib: u64 },
    /// The component is fine; this host could not set it up (the kernel refused its
    /// memory images). Loading it again may work.
    #[error("could not be prepared by this host (try again): {0}")]
    Host(String),
}

impl LoadError {
    /// The rejection kind reported to operators.
    pub fn kind(&self) -> &'static str {
        match self {
            LoadError::NotComponent(_) => "not-a-component",
            LoadError::UnsupportedContract { .. } => "unsupported-contract",
            LoadError::WrongWorld(_) => "wrong-world",
            LoadError::TooLarge { .. } => "too-large",
            LoadError::TooSlow { .. } => "too-slow-to-compile",
            LoadError::MemoryLimit { .. } => "memory-limit",
            LoadError::Host(_) => "host-error",
        }
    }
}

/// How often the epoch advances: the granularity of deadlines and of yielding.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Default per-run limits (memory and tables also size the instance pool).
    pub limits: Limits,
    /// Where precompiled artifacts are kept; None compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// Instances that may be alive at once (the pool's size).
    pub max_instances: u32,
    /// The largest component file compiled (compile time and memory grow with it).
    pub max_component_bytes: u64,
    /// Of a linear memory given back to the pool, how much may stay resident (reset
    /// with `memset` instead of returned to the kernel): what a warm slot keeps, at
    /// most, while no run uses it.
    pub keep_resident_bytes: usize,
    /// The memory all runs may hold together (linear memories and pending records), in
    /// bytes ([`budget`]); None counts without refusing.
    pub memory_budget_bytes: Option<usize>,
}

/// Default [`RuntimeConfig::keep_resident_bytes`].
pub const KEEP_RESIDENT_BYTES: usize = 2 << 20;

/// Of a table given back to the pool, how much stays resident (the connectors' tables
/// are a few KiB).
const TABLE_KEEP_RESIDENT: usize = 64 << 10;

/// Default [`RuntimeConfig::max_component_bytes`]: 64 MiB, several times the largest
/// interpreter-carrying component (Python, JavaScript) seen.
pub const MAX_COMPONENT_BYTES: u64 = 64 << 20;

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            limits: Limits::default(),
            cache_dir: None,
            max_instances: 256,
            max_component_bytes: MAX_COMPONENT_BYTES,
            keep_resident_bytes: KEEP_RESIDENT_BYTES,
            memory_budget_bytes: None,
        }
    }
}

/// The wasmtime engine and linker shared by every run.
pub struct Runtime {
    engine: Engine,
    linker: Linker<RunState>,
    budget: budget::MemoryBudget,
    config: RuntimeConfig,
    stop_ticker: Arc<AtomicBool>,
}

/// A compiled, linked connector version, ready to instantiate.
#[derive(Clone)]
pub struct LoadedConnector {
    pub sha256: String,
    pub pre: ConnectorPre<RunState>,
    pub origin: Origin,
}

/// Which export a run calls.
pub enum Call {
    Describe,
    Check(wit::Account),
    Sync(wit::SyncRequest),
}

impl Call {
    /// The export it calls.
    pub fn name(&self) -> &'static str {
        match self {
            Call::Describe => "describe",
            Call::Check(_) => "check",
            Call::Sync(_) => "sync",
        }
    }
}

/// What the export returned.
#[derive(Debug)]
pub enum CallOutput {
    Manifest(wit::Manifest),
    Checked(Result<(), wit::SyncError>),
    Synced(Result<wit::Summary, wit::SyncError>),
}

/// Why a run ended without an answer from the connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A run limit (memory, deadline, requests, bytes, records).
    Limit(String),
    /// The guest trapped (a panic, an invalid operation).
    Trap(String),
    /// The host failed to set the run up (instantiation).
    Host(String),
    /// A platform's answer carried a secret back ([`SecretEchoed`]).
    Security(String),
    /// A checkpoint would take the account past its quota ([`QuotaExceeded`]).
    Quota(String),
}

impl Failure {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Failure::Limit(_) => ErrorKind::LimitExceeded,
            Failure::Security(_) => ErrorKind::Security,
            Failure::Quota(_) => ErrorKind::Quota,
            Failure::Trap(_) => ErrorKind::Trap,
            Failure::Host(_) => ErrorKind::Host,
        }
    }
    pub fn detail(&self) -> &str {
        match self {
            Failure::Limit(d)
            | Failure::Trap(d)
            | Failure::Host(d)
            | Failure::Security(d)
            | Failure::Quota(d) => d,
        }
    }
}

/// The capabilities a run gets.
pub struct RunParts {
    pub http: Option<HttpSession>,
    pub records: Option<RecordsSession>,
    pub scrubber: Scrubber,
    /// The run's "now" (the `clock` import).
    pub clock: crate::capabilities::clock::RunClock,
    pub span: tracing::Span,
    pub limits: Limits,
}

impl RunParts {
    /// A run given nothing beyond WASI's denials and its log: no network, no records, the
    /// wall clock (`describe()`, and tests of the sandbox).
    pub fn bare(span: tracing::Span, limits: Limits) -> RunParts {
        RunParts {
            http: None,
            records: None,
            scrubber: Scrubber::new().limit_patterns(limits.scrub_patterns),
            clock: crate::capabilities::clock::RunClock::at(chrono::Utc::now()),
            span,
            limits,
        }
    }
}

/// A finished run: the connector's answer (or why there is none) and the capabilities
/// back, with their counters, so the caller can commit and record.
pub struct Finished {
    pub output: Result<CallOutput, Failure>,
    pub http: Option<HttpSession>,
    pub records: Option<RecordsSession>,
    pub scrubber: Scrubber,
    pub elapsed: Duration,
    /// The largest linear memory the guest had.
    pub peak_memory_bytes: usize,
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> Result<Self> {
        config.limits.validate()?;
        let mut wasm = Config::new();
        wasm.wasm_component_model(true);
        wasm.epoch_interruption(true);
        let n = config.max_instances.max(1);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(n)
            .total_core_instances(n * 8)
            .total_memories(n)
            .total_tables(n * 8)
            .total_stacks(n)
            .max_core_instances_per_component(16)
            // One linear memory per run: the memory limit is then the run's limit
            // (several memories would each get it). No GC heap: the engine is built
            // without the `gc` feature, and no contract version needs one.
            .max_memories_per_component(1)
            .max_tables_per_component(16)
            .max_memory_size(config.limits.memory_bytes())
            .table_elements(config.limits.table_elements)
            // A slot given back is reset with `memset` of the pages the run touched
            // (found with PAGEMAP_SCAN where the kernel has it), up to these sizes,
            // instead of `madvise`: no page-table change, so no TLB shootdown across the
            // daemon's threads, and no page faults when the next run writes them.
            .pagemap_scan(wasmtime::Enabled::Auto)
            .linear_memory_keep_resident(config.keep_resident_bytes)
            .table_keep_resident(TABLE_KEEP_RESIDENT);
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm)
            .map_err(anyhow::Error::from)
            .context("creating the wasmtime engine")?;

        let mut linker = Linker::<RunState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(anyhow::Error::from)
            .context("linking WASI")?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(anyhow::Error::from)
            .context("linking wasi:http (every request denied)")?;
        crate::capabilities::add_to_linker(&mut linker).context("linking passerelle imports")?;

        let stop_ticker = Arc::new(AtomicBool::new(false));
        let (ticker_engine, stop) = (engine.clone(), stop_ticker.clone());
        std::thread::Builder::new()
            .name("passerelle-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticker_engine.increment_epoch();
                }
            })
            .context("starting the epoch ticker")?;
        Ok(Runtime {
            engine,
            linker,
            budget: budget::MemoryBudget::new(config.memory_budget_bytes),
            config,
            stop_ticker,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn default_limits(&self) -> &Limits {
        &self.config.limits
    }

    /// The memory budget every run of this runtime shares.
    pub fn memory_budget(&self) -> &budget::MemoryBudget {
        &self.budget
    }

    /// Compiles (or loads from cache) and links a component file.
    pub fn load_file(&self, path: &Path) -> Result<LoadedConnector> {
        let size = std::fs::metadata(path)
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        self.check_size(size)
            .with_context(|| format!("loading {}", path.display()))?;
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        self.load_bytes(&bytes)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("loading {}", path.display()))
    }

    /// Refuses a component whose memories start larger than a run may grow one (an
    /// interpreter's preinitialised heap, say), naming both sizes; malformed bytes are
    /// left to the compiler to describe.
    fn check_initial_memory(&self, bytes: &[u8]) -> Result<(), LoadError> {
        let mut largest: u64 = 0;
        for payload in wasmparser::Parser::new(0).parse_all(bytes) {
            let Ok(wasmparser::Payload::MemorySection(memories)) = payload else {
                continue;
            };
            for memory in memories.into_iter().flatten() {
                let page = 1u64 << memory.page_size_log2.unwrap_or(16);
                largest = largest.max(memory.initial.saturating_mul(page));
            }
        }
        let limit = self.config.limits.memory_bytes() as u64;
        if largest > limit {
            return Err(LoadError::MemoryLimit {
                needs_mib: largest as f64 / (1024.0 * 1024.0),
                limit_mib: self.config.limits.memory_mib,
            });
        }
        Ok(())
    }

    /// Compiles (or loads from cache) and links component bytes. The error says which
    /// of the three ways a candidate can fail to be a connector it is ([`LoadError`]).
    pub fn load_bytes(&self, bytes: &[u8]) -> Result<LoadedConnector, LoadError> {
        self.load_bytes_within(bytes, None)
    }

    /// [`Runtime::load_bytes`], refused if compiling ends after `deadline` (the caller
    /// stops waiting then; this thread finishes the compile, keeps nothing, and says so).
    pub fn load_bytes_within(
        &self,
        bytes: &[u8],
        deadline: Option<(Instant, f64)>,
    ) -> Result<LoadedConnector, LoadError> {
        self.check_size(bytes.len() as u64)?;
        self.check_initial_memory(bytes)?;
        let sha256 = sha256_hex(bytes);
        let (component, origin, artifact) = cache::load(
            &self.engine,
            bytes,
            &sha256,
            self.config.cache_dir.as_deref(),
        )
        .map_err(|e| LoadError::NotComponent(one_line(&format!("{e:#}"))))?;
        cache::prepare_images(&component)
            .map_err(|e| LoadError::Host(one_line(&format!("{e:#}"))))?;
        if let Some((at, secs)) = deadline {
            if Instant::now() > at {
                return Err(LoadError::TooSlow { secs });
            }
        }
        let ty = component.component_type();
        for (name, _) in ty.imports(&self.engine).chain(ty.exports(&self.engine)) {
            if let Some(found) = contract_version(name) {
                if !supported_contract(found) {
                    return Err(LoadError::UnsupportedContract {
                        found: found.to_string(),
                    });
                }
            }
        }
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::WrongWorld(one_line(&format!("{e:#}"))))?;
        let pre = ConnectorPre::new(pre)
            .map_err(|e| LoadError::WrongWorld(one_line(&format!("{e:#}"))))?;
        if let Some(artifact) = artifact {
            artifact.keep();
        }
        Ok(LoadedConnector {
            sha256,
            pre,
            origin,
        })
    }

    /// Refuses a component over [`RuntimeConfig::max_component_bytes`] before reading or
    /// compiling it.
    pub fn check_size(&self, size: u64) -> Result<(), LoadError> {
        let max = self.config.max_component_bytes;
        if size > max {
            return Err(LoadError::TooLarge { size, max });
        }
        Ok(())
    }

    /// A fresh store for one run, with its limits, deadline and capabilities. Most
    /// callers want [`Runtime::execute`]; this is public for benchmarks.
    pub fn new_store(&self, parts: RunParts) -> Store<RunState> {
        let memory = Arc::new(std::sync::Mutex::new(self.budget.run()));
        let mut records = parts.records;
        if let Some(records) = &mut records {
            records.charge_to(memory.clone());
        }
        let mut http = parts.http;
        if let Some(http) = &mut http {
            http.charge_to(memory.clone());
        }
        let capabilities = Capabilities::new(
            http,
            records,
            parts.scrubber,
            parts.clock,
            parts.span,
            &parts.limits,
        );
        let wasi = WasiCtxBuilder::new()
            .stdout(capabilities.log.stdout())
            .stderr(capabilities.log.stderr())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let limits = parts.limits;
        // What the guest can make the host hold outside passerelle's imports: WASI's and
        // wasi:http's resources, counted and each header map bounded.
        let mut table = wasmtime::component::ResourceTable::new();
        table.set_max_capacity(limits.wasi_resources);
        let state = RunState {
            wasi,
            table,
            limiter: RunLimiter {
                memory_bytes: limits.memory_bytes().min(self.config.limits.memory_bytes()),
                table_elements: limits.table_elements.min(self.config.limits.table_elements),
                peak_memory_bytes: 0,
                memory_now_bytes: 0,
                memory,
            },
            http: denied_http::DeniedHttp::new(limits.wasi_fields_bytes()),
            capabilities,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        let deadline = Instant::now() + limits.deadline();
        let text = deadline_text(&limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(LimitExceeded(text.clone()).into())
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }

    /// Instantiates `connector` in a fresh store, calls one export, drops the store.
    pub async fn execute(
        &self,
        connector: &LoadedConnector,
        parts: RunParts,
        call: Call,
    ) -> Finished {
        let started = Instant::now();
        let limits = parts.limits.clone();
        let span = parts.span.clone();
        let mut store = self.new_store(parts);
        let run = async {
            let instance = connector
                .pre
                .instantiate_async(&mut store)
                .instrument(tracing::debug_span!("instantiate"))
                .await
                .map_err(|e| Failure::Host(format!("instantiation failed: {e:#}")))?;
            // The guest's time, with the host calls it makes (HTTP, checkpoints) inside.
            let guest = tracing::debug_span!("guest", export = call.name());
            let out = match call {
                Call::Describe => instance
                    .call_describe(&mut store)
                    .instrument(guest)
                    .await
                    .map(CallOutput::Manifest),
                Call::Check(account) => instance
                    .call_check(&mut store, &account)
                    .instrument(guest)
                    .await
                    .map(CallOutput::Checked),
                Call::Sync(request) => instance
                    .call_sync(&mut store, &request)
                    .instrument(guest)
                    .await
                    .map(CallOutput::Synced),
            };
            out.map_err(|e| classify(e, &limits))
        }
        .instrument(span);
        // Epochs stop a guest that computes; this timer also stops one that waits on a
        // host call. The small grace lets the epoch path report first.
        let output =
            match tokio::time::timeout(limits.deadline() + Duration::from_millis(250), run).await {
                Ok(r) => r,
                Err(_) => Err(Failure::Limit(deadline_text(&limits))),
            };
        let state = store.into_data();
        let peak_memory_bytes = state.limiter.peak_memory_bytes;
        // The linear memory went back to the pool with the store.
        state
            .limiter
            .memory
            .lock()
            .expect("run memory")
            .shrink(state.limiter.memory_now_bytes);
        let mut caps = state.capabilities;
        caps.flush_logs();
        let output = output.map_err(|f| scrub_failure(f, &mut caps.scrubber));
        Finished {
            output,
            http: caps.http,
            records: caps.records,
            scrubber: caps.scrubber,
            elapsed: started.elapsed(),
            peak_memory_bytes,
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// A compiler's or linker's message on one line (some spread a byte list over many).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn deadline_text(limits: &Limits) -> String {
    format!("deadline: the run may take {:.1} s", limits.deadline_secs)
}

/// Sorts an error out of a call into a limit hit or a trap, with a one-line reason.
fn classify(err: wasmtime::Error, limits: &Limits) -> Failure {
    if let Some(limit) = err.downcast_ref::<LimitExceeded>() {
        return Failure::Limit(limit.0.clone());
    }
    if let Some(exhausted) = err.downcast_ref::<budget::BudgetExhausted>() {
        return Failure::Host(exhausted.to_string());
    }
    if let Some(echo) = err.downcast_ref::<SecretEchoed>() {
        return Failure::Security(echo.to_string());
    }
    if let Some(quota) = err.downcast_ref::<QuotaExceeded>() {
        return Failure::Quota(quota.to_string());
    }
    if let Some(
        wasmtime_wasi_http::FieldMapError::TotalSizeTooBig
        | wasmtime_wasi_http::FieldMapError::TooManyFields,
    ) = err.downcast_ref::<wasmtime_wasi_http::FieldMapError>()
    {
        return Failure::Limit(format!(
            "wasi:http header map: at most {} KiB each (limits.wasi_fields_kib)",
            limits.wasi_fields_kib
        ));
    }
    if let Some(wasmtime::component::ResourceTableError::Full) =
        err.downcast_ref::<wasmtime::component::ResourceTableError>()
    {
        return Failure::Limit(format!(
            "WASI resources: the run may hold {} at once (limits.wasi_resources)",
            limits.wasi_resources
        ));
    }
    if let Some(trap) = err.downcast_ref::<wasmtime::Trap>() {
        let hint = match trap {
            wasmtime::Trap::UnreachableCodeReached => " (a panic or abort in the connector)",
            wasmtime::Trap::StackOverflow => " (runaway recursion)",
            _ => "",
        };
        return Failure::Trap(format!("connector trapped: {trap}{hint}"));
    }
    Failure::Trap(format!("connector failed: {}", err.root_cause()))
}

fn scrub_failure(f: Failure, scrubber: &mut Scrubber) -> Failure {
    match f {
        Failure::Limit(d) => Failure::Limit(scrubber.scrub(&d)),
        Failure::Trap(d) => Failure::Trap(scrubber.scrub(&d)),
        Failure::Host(d) => Failure::Host(scrubber.scrub(&d)),
        Failure::Security(d) => Failure::Security(scrubber.scrub(&d)),
        Failure::Quota(d) => Failure::Quota(scrubber.scrub(&d)),
    }
}
