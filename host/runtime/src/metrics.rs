//! The process's metrics (`GET /metrics` on the daemon): OpenMetrics as `prometheus-client`
//! writes it, or Prometheus' text format 0.0.4 made from it ([`prometheus_text`]).
//!
//! Labels are connector names, run statuses, triggers, record kinds and HTTP status
//! codes only: never a practice, an account, a patient or a URL.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use passerelle_model::run::{Run, Status};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    connector: String,
    status: String,
    trigger: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectorLabel {
    connector: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotRetriedLabels {
    connector: String,
    /// `permanent` (the same run would fail the same way) or `exhausted`.
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RecordLabels {
    connector: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    connector: String,
    /// The response's status code, or `error` when none came back.
    status: String,
}

/// Every metric the process exports.
pub struct Metrics {
    registry: Mutex<Registry>,
    runs: Family<RunLabels, Counter>,
    run_duration: Family<ConnectorLabel, Histogram>,
    records: Family<RecordLabels, Counter>,
    http_requests: Family<HttpLabels, Counter>,
    rate_limit_waits: Family<ConnectorLabel, Counter>,
    rate_limit_wait_seconds: Family<ConnectorLabel, Counter<f64, std::sync::atomic::AtomicU64>>,
    drift_events: Family<ConnectorLabel, Counter>,
    retries: Family<ConnectorLabel, Counter>,
    not_retried: Family<NotRetriedLabels, Counter>,
    scheduler_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    guest_seconds: Family<ConnectorLabel, Counter<f64, std::sync::atomic::AtomicU64>>,
    platform_wait_seconds: Family<ConnectorLabel, Counter<f64, std::sync::atomic::AtomicU64>>,
    activations: Family<ConnectorLabel, Counter>,
    rejections: Family<KindLabel, Counter>,
    alerts: Family<KindLabel, Counter>,
    /// Accounts paused by drift, per connector.
    paused_accounts: Family<ConnectorLabel, Gauge>,
    /// This daemon (its id as a label, 1).
    daemon_info: Family<DaemonLabel, Gauge>,
    /// Runs waiting in the queue (all daemons on the database).
    pub queue_depth: Gauge,
    /// Runs this daemon is executing.
    pub runs_in_flight: Gauge,
    /// What this daemon's runs hold of its memory budget, in bytes.
    pub runs_memory_bytes: Gauge,
    /// Changes delivered to subscriptions, and failed delivery attempts.
    deliveries: Family<KindLabel, Counter>,
    /// The largest linear memory a run of each connector had, since start.
    guest_memory_peak: Family<ConnectorLabel, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DaemonLabel {
    daemon: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("passerelle");
        let runs = Family::<RunLabels, Counter>::default();
        registry.register(
            "runs",
            "Runs ended, by connector, status and trigger",
            runs.clone(),
        );
        let run_duration = Family::<ConnectorLabel, Histogram>::new_with_constructor(|| {
            Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0])
        });
        registry.register(
            "run_duration_seconds",
            "Duration of runs that executed, by connector",
            run_duration.clone(),
        );
        let records = Family::<RecordLabels, Counter>::default();
        registry.register(
            "records_written",
            "Records committed (appointments added or changed, slots written), by connector",
            records.clone(),
        );
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "platform_http_requests",
            "HTTP requests connectors sent to platforms, by connector and response status",
            http_requests.clone(),
        );
        let rate_limit_waits = Family::<ConnectorLabel, Counter>::default();
        registry.register(
            "rate_limit_waits",
            "Requests that waited for the platform's rate limit",
            rate_limit_waits.clone(),
        );
        let rate_limit_wait_seconds = Family::default();
        registry.register(
            "rate_limit_wait_seconds",
            "Time requests spent waiting for the platform's rate limit",
            rate_limit_wait_seconds.clone(),
        );
        let guest_seconds = Family::default();
        registry.register(
            "guest_seconds",
            "Time runs spent in the connector's sandbox (instantiation and its sync call, host calls included), by connector",
            guest_seconds.clone(),
        );
        let platform_wait_seconds = Family::default();
        registry.register(
            "platform_wait_seconds",
            "Time connectors waited for platforms' HTTP answers, by connector",
            platform_wait_seconds.clone(),
        );
        let drift_events = Family::<ConnectorLabel, Counter>::default();
        registry.register(
            "drift_events",
            "Runs that ended in schema drift",
            drift_events.clone(),
        );
        let retries = Family::<ConnectorLabel, Counter>::default();
        registry.register(
            "retries",
            "Runs queued again after a transient failure",
            retries.clone(),
        );
        let not_retried = Family::<NotRetriedLabels, Counter>::default();
        registry.register(
            "runs_not_retried",
            "Failed runs not tried again: permanent failures (drift, unauthorized, invalid configuration, connector bugs, limits) and transient ones whose attempts are used up",
            not_retried.clone(),
        );
        let scheduler_seconds = Counter::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "scheduler_seconds",
            "Time the scheduler spent queueing scheduled runs (reading accounts, recording runs)",
            scheduler_seconds.clone(),
        );
        let activations = Family::<ConnectorLabel, Counter>::default();
        registry.register(
            "connector_activations",
            "Connector versions made active (install, approval, rollback)",
            activations.clone(),
        );
        let rejections = Family::<KindLabel, Counter>::default();
        registry.register(
            "connector_rejections",
            "Candidate components refused, by reason",
            rejections.clone(),
        );
        let alerts = Family::<KindLabel, Counter>::default();
        registry.register(
            "drift_alerts",
            "Drift alerts by outcome: raised, webhook-delivered, webhook-failed",
            alerts.clone(),
        );
        let paused_accounts = Family::<ConnectorLabel, Gauge>::default();
        registry.register(
            "paused_accounts",
            "Accounts paused by schema drift",
            paused_accounts.clone(),
        );
        let daemon_info = Family::<DaemonLabel, Gauge>::default();
        registry.register(
            "daemon_info",
            "This daemon, by its id (several can share a database)",
            daemon_info.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Runs waiting to start, all daemons",
            queue_depth.clone(),
        );
        let runs_in_flight = Gauge::default();
        registry.register(
            "runs_in_flight",
            "Runs this daemon is executing",
            runs_in_flight.clone(),
        );
        let runs_memory_bytes = Gauge::default();
        registry.register(
            "runs_memory_bytes",
            "Memory this daemon's runs hold (linear memories, pending records), in bytes",
            runs_memory_bytes.clone(),
        );
        let deliveries = Family::<KindLabel, Counter>::default();
        registry.register(
            "deliveries",
            "Webhook deliveries: `changes` delivered, `failed` attempts",
            deliveries.clone(),
        );
        let guest_memory_peak = Family::<ConnectorLabel, Gauge>::default();
        registry.register(
            "guest_memory_peak_bytes",
            "The largest linear memory one run of the connector had, since start (set limits.memory_mib above it)",
            guest_memory_peak.clone(),
        );
        Metrics {
            deliveries,
            guest_memory_peak,
            registry: Mutex::new(registry),
            runs,
            run_duration,
            records,
            http_requests,
            rate_limit_waits,
            rate_limit_wait_seconds,
            drift_events,
            retries,
            not_retried,
            scheduler_seconds,
            guest_seconds,
            platform_wait_seconds,
            activations,
            rejections,
            alerts,
            paused_accounts,
            daemon_info,
            queue_depth,
            runs_in_flight,
            runs_memory_bytes,
        }
    }

    /// A run reached its end (any status).
    pub fn run_ended(&self, run: &Run) {
        let connector = run.connector.clone();
        self.runs
            .get_or_create(&RunLabels {
                connector: connector.clone(),
                status: run.status.to_string(),
                trigger: run.trigger.to_string(),
            })
            .inc();
        if matches!(run.status, Status::Skipped | Status::Cancelled) && run.duration_ms.is_none() {
            return;
        }
        if let Some(ms) = run.duration_ms {
            self.run_duration
                .get_or_create(&ConnectorLabel {
                    connector: connector.clone(),
                })
                .observe(ms as f64 / 1000.0);
        }
        let c = &run.counts;
        for (kind, n) in [
            (
                "appointments",
                c.appointments_added + c.appointments_changed + c.appointments_deleted,
            ),
            ("slots", c.slots_written),
        ] {
            if n > 0 {
                self.records
                    .get_or_create(&RecordLabels {
                        connector: connector.clone(),
                        kind: kind.into(),
                    })
                    .inc_by(n as u64);
            }
        }
        if run.status == Status::Drift {
            self.drift_events
                .get_or_create(&ConnectorLabel { connector })
                .inc();
        }
    }

    /// A connector version became active.
    pub fn activated(&self, connector: &str) {
        self.activations
            .get_or_create(&ConnectorLabel {
                connector: connector.into(),
            })
            .inc();
    }

    /// Sets the accounts paused by drift, per connector (the whole family).
    pub fn set_paused(&self, counts: &std::collections::HashMap<String, i64>) {
        self.paused_accounts.clear();
        for (connector, n) in counts {
            self.paused_accounts
                .get_or_create(&ConnectorLabel {
                    connector: connector.clone(),
                })
                .set(*n);
        }
    }

    /// `n` changes reached a subscription's receiver.
    pub fn delivered(&self, n: u64) {
        self.deliveries
            .get_or_create(&KindLabel {
                kind: "changes".into(),
            })
            .inc_by(n);
    }

    /// A delivery attempt failed.
    pub fn delivery_failed(&self) {
        self.deliveries
            .get_or_create(&KindLabel {
                kind: "failed".into(),
            })
            .inc();
    }

    /// A candidate component was refused.
    pub fn candidate_rejected(&self, kind: &str) {
        self.rejections
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
    }

    /// A drift alert event (`raised`, `webhook-delivered`, `webhook-failed`).
    pub fn alert(&self, kind: &str) {
        self.alerts
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
    }

    /// A request went to a platform; `status` None when no response came back.
    pub fn http_request(&self, connector: &str, status: Option<u16>) {
        self.http_requests
            .get_or_create(&HttpLabels {
                connector: connector.into(),
                status: status.map_or_else(|| "error".into(), |s| s.to_string()),
            })
            .inc();
    }

    /// A run's time in the sandbox and, within it, waiting on the platform.
    pub fn sandbox_time(&self, connector: &str, in_sandbox: Duration, platform_wait: Duration) {
        let label = ConnectorLabel {
            connector: connector.into(),
        };
        self.guest_seconds
            .get_or_create(&label)
            .inc_by(in_sandbox.as_secs_f64());
        self.platform_wait_seconds
            .get_or_create(&label)
            .inc_by(platform_wait.as_secs_f64());
    }

    /// A run of `connector` had `bytes` of linear memory at most.
    pub fn guest_memory(&self, connector: &str, bytes: usize) {
        let gauge = self.guest_memory_peak.get_or_create(&ConnectorLabel {
            connector: connector.into(),
        });
        let bytes = bytes as i64;
        if gauge.get() < bytes {
            gauge.set(bytes);
        }
    }

    /// The largest linear memory a run of `connector` had since start, in bytes.
    pub fn guest_memory_peak(&self, connector: &str) -> i64 {
        self.guest_memory_peak
            .get_or_create(&ConnectorLabel {
                connector: connector.into(),
            })
            .get()
    }

    /// Seconds `connector`'s runs spent in the sandbox, and of those waiting on the
    /// platform, since start.
    pub fn sandbox_seconds(&self, connector: &str) -> (f64, f64) {
        let label = ConnectorLabel {
            connector: connector.into(),
        };
        (
            self.guest_seconds.get_or_create(&label).get(),
            self.platform_wait_seconds.get_or_create(&label).get(),
        )
    }

    /// A request waited `waited` for the platform's rate limit.
    pub fn rate_limit_wait(&self, connector: &str, waited: Duration) {
        let label = ConnectorLabel {
            connector: connector.into(),
        };
        self.rate_limit_waits.get_or_create(&label).inc();
        self.rate_limit_wait_seconds
            .get_or_create(&label)
            .inc_by(waited.as_secs_f64());
    }

    /// A failed run is not tried again: `permanent` or `exhausted`.
    pub fn not_retried(&self, connector: &str, reason: &'static str) {
        self.not_retried
            .get_or_create(&NotRetriedLabels {
                connector: connector.into(),
                reason,
            })
            .inc();
    }

    /// A failed run was queued again.
    pub fn retry(&self, connector: &str) {
        self.retries
            .get_or_create(&ConnectorLabel {
                connector: connector.into(),
            })
            .inc();
    }

    /// Names this process's daemon in the metrics.
    pub fn daemon_info(&self, id: &str) {
        self.daemon_info
            .get_or_create(&DaemonLabel { daemon: id.into() })
            .set(1);
    }

    /// The scheduler spent `spent` queueing runs.
    pub fn scheduler_busy(&self, spent: Duration) {
        self.scheduler_seconds.inc_by(spent.as_secs_f64());
    }

    /// Total time the scheduler spent queueing runs, in seconds.
    pub fn scheduler_seconds(&self) -> f64 {
        self.scheduler_seconds.get()
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().expect("metrics registry lock");
        encode(&mut out, &registry).expect("writing to a String cannot fail");
        out
    }

    /// The same metrics in Prometheus' text format (0.0.4), for clients that do not
    /// read OpenMetrics ([`prometheus_text`]).
    pub fn render_prometheus_text(&self) -> String {
        prometheus_text(&self.render())
    }
}

/// The content type of [`Metrics::render`].
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of [`Metrics::render_prometheus_text`].
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// OpenMetrics text as Prometheus' text format (0.0.4), which `prometheus-client` does
/// not write: a counter family is named by its samples (`x_total`), `info` becomes a
/// gauge named `x_info`, `unknown` is `untyped`; `# UNIT`, `# EOF`, exemplars and
/// `_created` samples are left out. Samples are otherwise the same lines.
pub fn prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut help: Option<(&str, &str)> = None;
    let mut counter: Option<String> = None;
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest.split_once(' ').unwrap_or((rest, "")));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (family, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (name, kind) = match kind {
                "counter" => (format!("{family}_total"), "counter"),
                "info" => (format!("{family}_info"), "gauge"),
                "unknown" => (family.to_string(), "untyped"),
                "stateset" => (family.to_string(), "gauge"),
                "gaugehistogram" => (family.to_string(), "histogram"),
                other => (family.to_string(), other),
            };
            counter = (kind == "counter").then(|| family.to_string());
            if let Some((of, text)) = help.take() {
                if of == family {
                    out.push_str(&format!("# HELP {name} {text}\n"));
                }
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        let sample = line.split(" # {").next().unwrap_or(line);
        if let Some(family) = &counter {
            if sample.starts_with(&format!("{family}_created")) {
                continue;
            }
        }
        out.push_str(sample);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod text_format_tests {
    use super::prometheus_text;

    #[test]
    fn openmetrics_becomes_prometheus_text() {
        let om = "# HELP passerelle_runs Runs finished.\n\
                  # TYPE passerelle_runs counter\n\
                  passerelle_runs_total{connector=\"maiia\",status=\"succeeded\"} 3\n\
                  passerelle_runs_created{connector=\"maiia\",status=\"succeeded\"} 1.7e9\n\
                  # HELP passerelle_run_seconds Run durations.\n\
                  # TYPE passerelle_run_seconds histogram\n\
                  # UNIT passerelle_run_seconds seconds\n\
                  passerelle_run_seconds_sum{connector=\"maiia\"} 0.5\n\
                  passerelle_run_seconds_count{connector=\"maiia\"} 2\n\
                  passerelle_run_seconds_bucket{le=\"+Inf\",connector=\"maiia\"} 2 # {trace_id=\"a\"} 0.3\n\
                  # TYPE passerelle_build info\n\
                  passerelle_build_info{version=\"1\"} 1\n\
                  # EOF\n";
        assert_eq!(
            prometheus_text(om),
            "# HELP passerelle_runs_total Runs finished.\n\
             # TYPE passerelle_runs_total counter\n\
             passerelle_runs_total{connector=\"maiia\",status=\"succeeded\"} 3\n\
             # HELP passerelle_run_seconds Run durations.\n\
             # TYPE passerelle_run_seconds histogram\n\
             passerelle_run_seconds_sum{connector=\"maiia\"} 0.5\n\
             passerelle_run_seconds_count{connector=\"maiia\"} 2\n\
             passerelle_run_seconds_bucket{le=\"+Inf\",connector=\"maiia\"} 2\n\
             # TYPE passerelle_build_info gauge\n\
             passerelle_build_info{version=\"1\"} 1\n"
        );
    }
}
