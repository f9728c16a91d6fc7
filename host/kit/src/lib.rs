//! The connector kit: `passerelle connector new` writes a connector crate that builds
//! out of tree and `connector build` builds it ([`scaffold`]); `connector test` replays a cassette of recorded HTTP
//! exchanges ([`cassette`], [`replay`]) through the real sandbox on a temporary store
//! ([`harness`]), compares what was stored with a golden file, and runs the contract
//! checks ([`checks`], [`probes`]). The CLI only parses arguments and renders the
//! [`TestReport`]. `passerelle sync --record` writes a cassette of a live run
//! ([`record`]).

pub mod cassette;
pub mod checks;
pub mod harness;
pub mod languages;
pub mod probes;
pub mod record;
pub mod replay;
pub mod scaffold;
pub mod shadow;

use std::path::PathBuf;

use serde::Serialize;

use cassette::CassetteError;
use checks::{Check, Verdict};
use harness::{Bench, BenchOptions, Records, Target};
use passerelle_model::run::{DriftReport, Mode, RunCounts, Status};
use passerelle_service::ServiceError;

/// Why a connector test could not run (a test that ran and failed is a [`TestReport`]).
#[derive(Debug, thiserror::Error)]
pub enum KitError {
    #[error(transparent)]
    Cassette(#[from] CassetteError),
    /// The component is missing, not a component, or not a connector.
    #[error("{0}")]
    Component(String),
    /// The connector's `check()` refused the settings and secrets given.
    #[error("the connector refused the account: {0}")]
    Refused(String),
    #[error("{path}: {message}")]
    Expect { path: PathBuf, message: String },
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Store(#[from] passerelle_store::error::StoreError),
    /// `connector new` or `connector build` cannot do what was asked.
    #[error("{0}")]
    Scaffold(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// `connector test`, validated.
#[derive(Debug, Clone)]
pub struct TestOptions {
    pub component: PathBuf,
    /// The cassette replayed; with `live`, where the live run is recorded first.
    pub cassette: PathBuf,
    /// Folders outside the cassette its `body` entries may name.
    pub fixtures: Vec<PathBuf>,
    /// Record a run against the platform itself, under this HTTP policy, into
    /// `cassette` (a new or empty folder), then test on that recording.
    pub live: Option<passerelle_runtime::capabilities::http::HttpPolicy>,
    pub bench: BenchOptions,
    /// Full sync (default: incremental, which on a first run has no cursor).
    pub full: bool,
    /// Golden file of the stored records.
    pub expect: Option<PathBuf>,
    /// Rewrite the golden file instead of comparing.
    pub bless: bool,
    pub checks: Vec<Check>,
}

/// Everything `connector test` found; `passed()` decides the exit code.
#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    pub connector: String,
    pub version: String,
    /// The cassette folder tested.
    pub cassette: PathBuf,
    /// The clock every run of the test had (`--now`, the cassette's, or the test's start).
    pub now: chrono::DateTime<chrono::Utc>,
    /// The sync window: days before and after `now`.
    pub window: (u32, u32),
    pub run: RunReport,
    pub requests: Vec<RequestReport>,
    pub records: Records,
    pub logs: Vec<String>,
    /// `None` without `--expect`; with `--bless`, true.
    pub expected: Option<ExpectReport>,
    pub checks: Vec<Verdict>,
    pub probes: Vec<probes::Probe>,
}

/// The first run's result.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub status: Status,
    pub error_kind: Option<String>,
    pub error_detail: Option<String>,
    pub message: Option<String>,
    pub drift: Option<DriftReport>,
    pub cursor: Option<String>,
    pub counts: RunCounts,
}

/// One request of the first run (no header values: they may carry secrets).
#[derive(Debug, Clone, Serialize)]
pub struct RequestReport {
    pub request: String,
    /// The exchange (1-based, as numbered in `cassette.toml`) that answered it.
    pub exchange: Option<usize>,
    /// The cassette's note on that exchange (`"made up"`).
    pub note: Option<String>,
    /// For an unmatched request: the closest exchanges and what differs.
    pub closest: Vec<String>,
}

/// The golden-file comparison.
#[derive(Debug, Clone, Serialize)]
pub struct ExpectReport {
    pub path: PathBuf,
    pub blessed: bool,
    pub matches: bool,
    pub differences: Vec<String>,
}

impl TestReport {
    /// The run succeeded, every request was answered, the records are as expected and
    /// every check and probe passed.
    pub fn passed(&self) -> bool {
        self.run.status == Status::Succeeded
            && self.requests.iter().all(|r| r.exchange.is_some())
            && self.expected.as_ref().is_none_or(|e| e.matches)
            && self.checks.iter().all(|c| c.passed)
            && self.probes.iter().all(|p| p.passed())
    }
}

/// Runs a connector test.
pub async fn test(options: TestOptions) -> Result<TestReport, KitError> {
    let mode = if options.full {
        Mode::Full
    } else {
        Mode::Incremental
    };
    if let Some(policy) = &options.live {
        let live = Bench::open(
            &options.component,
            Target::Live(policy.clone()),
            options.bench.clone(),
        )
        .await?;
        let account = live.new_account().await?;
        record::record_sync(live.app(), &account.id, mode, &options.cassette).await?;
    }
    let cassette = cassette::Cassette::load(&options.cassette, &options.fixtures)?;
    // A recording of a full run replays in full.
    let mode = match cassette.replay.mode.as_deref() {
        Some("full") => Mode::Full,
        _ => mode,
    };
    let bench_options = options.bench.clone().over(&cassette.replay);
    let bench = Bench::open(&options.component, Target::Replay(cassette), bench_options).await?;
    let account = bench.new_account().await?;
    let first = bench.run(&account, mode).await?;
    let cassette = bench.replay().cassette();
    let requests = first
        .seen
        .iter()
        .map(|s| RequestReport {
            request: s.request.line(),
            exchange: s.exchange.map(|i| i + 1),
            note: s
                .exchange
                .and_then(|i| cassette.exchanges.get(i))
                .and_then(|e| e.note.clone()),
            closest: match s.exchange {
                Some(_) => Vec::new(),
                None => cassette
                    .closest(&s.request)
                    .into_iter()
                    .map(|(i, why)| format!("exchange {}: {}", i + 1, why.join(", ")))
                    .collect(),
            },
        })
        .collect();
    let expected = match &options.expect {
        None => None,
        Some(path) => Some(expect(path, &first.records, options.bless)?),
    };
    let mut verdicts = Vec::new();
    let mut probes = Vec::new();
    let mut outcomes = vec![first.clone()];
    for check in Check::ALL
        .into_iter()
        .filter(|c| options.checks.contains(c))
    {
        match check {
            Check::Idempotent => {
                let again = bench.run(&account, mode).await?;
                verdicts.push(checks::idempotent(&first, &again));
                outcomes.push(again);
            }
            Check::Cursor => {
                let later = bench.run(&account, Mode::Incremental).await?;
                verdicts.push(checks::cursor(&first, &later));
                outcomes.push(later);
            }
            Check::Secrets => {}
            Check::PatientLogs => {}
            Check::Timestamps => verdicts.push(checks::timestamps(&first)),
            Check::Probes => {
                probes = probes::run(&bench, &first, mode).await?;
                let failed = probes.iter().filter(|p| !p.passed()).count();
                verdicts.push(Verdict {
                    check,
                    passed: failed == 0,
                    detail: format!(
                        "{} probes: {} drift, {} not needed, {failed} violations",
                        probes.len(),
                        probes
                            .iter()
                            .filter(|p| matches!(p.verdict, probes::Verdict::Drift { .. }))
                            .count(),
                        probes
                            .iter()
                            .filter(|p| p.verdict == probes::Verdict::NotNeeded)
                            .count(),
                    ),
                });
            }
        }
    }
    // The privacy checks look at every run above.
    let all: Vec<&harness::Outcome> = outcomes.iter().collect();
    if options.checks.contains(&Check::Secrets) {
        verdicts.push(checks::secrets(&all, &options.bench.secrets));
    }
    if options.checks.contains(&Check::PatientLogs) {
        verdicts.push(checks::patient_logs(&all));
    }
    verdicts.sort_by_key(|v| v.check);
    let run = &first.run;
    let config = &bench.app().config.sync;
    Ok(TestReport {
        connector: bench.manifest.name.clone(),
        version: bench.manifest.version.clone(),
        cassette: options.cassette.clone(),
        now: bench.options.now.expect("over() fixes the clock"),
        window: (config.window_past_days, config.window_future_days),
        run: RunReport {
            status: run.status,
            error_kind: run.error_kind.map(|k| k.as_str().to_string()),
            error_detail: run.error_detail.clone(),
            message: run.message.clone(),
            drift: run.drift.clone(),
            cursor: run.cursor_after.clone(),
            counts: run.counts.clone(),
        },
        requests,
        records: first.records.clone(),
        logs: first.logs.clone(),
        expected,
        checks: verdicts,
        probes,
    })
}

/// Compares `records` with the golden file, or (bless) rewrites it.
fn expect(
    path: &std::path::Path,
    records: &Records,
    bless: bool,
) -> Result<ExpectReport, KitError> {
    let bad = |message: String| KitError::Expect {
        path: path.to_path_buf(),
        message,
    };
    if bless {
        let text = serde_json::to_string_pretty(records).expect("serialisable") + "\n";
        std::fs::write(path, text).map_err(|e| bad(format!("cannot write: {e}")))?;
        return Ok(ExpectReport {
            path: path.to_path_buf(),
            blessed: true,
            matches: true,
            differences: Vec::new(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        bad(format!(
            "cannot read the expected records ({e}); --bless writes them"
        ))
    })?;
    let wanted: Records =
        serde_json::from_str(&text).map_err(|e| bad(format!("not a records file: {e}")))?;
    let mut differences = Vec::new();
    for (kind, got, want) in [
        ("slot", &records.slots, &wanted.slots),
        ("appointment", &records.appointments, &wanted.appointments),
    ] {
        differences.extend(compare(kind, got, want));
    }
    Ok(ExpectReport {
        path: path.to_path_buf(),
        blessed: false,
        matches: differences.is_empty(),
        differences,
    })
}

/// What differs between stored and expected records, by external id.
fn compare(kind: &str, got: &[serde_json::Value], want: &[serde_json::Value]) -> Vec<String> {
    let id = |v: &serde_json::Value| v["external_id"].as_str().unwrap_or("?").to_string();
    let mut out = Vec::new();
    for w in want {
        match got.iter().find(|g| id(g) == id(w)) {
            None => out.push(format!("{kind} `{}` expected, not stored", id(w))),
            Some(g) if g != w => {
                let fields: Vec<String> = w
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, v)| g.get(k.as_str()) != Some(v))
                    .map(|(k, v)| match k.as_str() {
                        // Patient values stay out of the report.
                        "patient" => "patient differs".to_string(),
                        _ => format!(
                            "{k}: expected {v}, stored {}",
                            g.get(k.as_str()).unwrap_or(&serde_json::Value::Null)
                        ),
                    })
                    .collect();
                out.push(format!("{kind} `{}` differs: {}", id(w), fields.join(", ")));
            }
            Some(_) => {}
        }
    }
    for g in got.iter().filter(|g| !want.iter().any(|w| id(w) == id(g))) {
        out.push(format!("{kind} `{}` stored, not expected", id(g)));
    }
    out
}
