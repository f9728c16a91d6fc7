//! Traces of runs over OTLP, when an endpoint is configured (`--otlp-endpoint`, or the
//! standard `OTEL_EXPORTER_OTLP_ENDPOINT`): the `tracing` spans of passerelle's own
//! crates (a run's inner spans are at debug level: free when nothing exports them) and
//! its log events at info level and above become OpenTelemetry spans and span events
//! (tracing-opentelemetry),
//! batched and sent as OTLP/HTTP protobuf to `<endpoint>/v1/traces` from the batch
//! processor's own thread. The daemon's long-lived `daemon` span is left out, so each
//! run is a trace of its own. What spans carry is what logs carry (ids, connector,
//! endpoint shapes, statuses, counts): never a URL, a secret or a patient value.

use std::time::Duration;

use anyhow::{Context, Result};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::Subscriber;
use tracing_subscriber::filter::FilterFn;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The exporter's handle: [`Traces::shutdown`] sends what is still batched.
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Flushes the batch and stops the exporter (at exit).
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("warning: the last traces could not be sent: {e}");
        }
    }
}

/// The layer that turns passerelle's spans into OTLP traces sent to `endpoint` (the
/// collector's base URL, as `OTEL_EXPORTER_OTLP_ENDPOINT` gives it).
pub fn otlp_layer<S>(endpoint: &str) -> Result<(impl Layer<S>, Traces)>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    url::Url::parse(&url).with_context(|| format!("invalid OTLP endpoint `{endpoint}`"))?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url)
        .with_timeout(Duration::from_secs(10))
        .build()
        .context("setting up the OTLP trace exporter")?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name("passerelle")
                .with_attribute(opentelemetry::KeyValue::new(
                    "service.version",
                    env!("CARGO_PKG_VERSION"),
                ))
                .build(),
        )
        .build();
    // The service's past spans (a run's claim) are made through the global provider.
    opentelemetry::global::set_tracer_provider(provider.clone());
    let tracer = provider.tracer("passerelle");
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(FilterFn::new(|meta| {
            // A run's inner spans are at debug level, so that without an exporter (and
            // at the daemon's usual info level) they cost nothing; events (log lines)
            // are exported from info up.
            let level = if meta.is_span() {
                tracing::Level::DEBUG
            } else {
                tracing::Level::INFO
            };
            meta.target().starts_with("passerelle")
                && meta.name() != "daemon"
                && *meta.level() <= level
        }));
    Ok((layer, Traces { provider }))
}
