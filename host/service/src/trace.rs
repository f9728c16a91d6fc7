//! What a run's trace holds that `tracing` cannot say by itself: a span for work done
//! before the run's span existed (the daemon's claim of the run), made with its real
//! start and end through OpenTelemetry under the run's span. Without an OTLP exporter
//! (the global provider is a no-op) this costs nothing and sends nothing.

use std::time::SystemTime;

use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Records `name` from `start` to `end` as a child of `parent` in its trace.
pub fn past_span(parent: &tracing::Span, name: &'static str, start: SystemTime, end: SystemTime) {
    let context = parent.context();
    if !context.span().span_context().is_valid() {
        // No exporter, or the parent is not traced.
        return;
    }
    let tracer = opentelemetry::global::tracer("passerelle");
    let mut span = tracer
        .span_builder(name)
        .with_start_time(start)
        .start_with_context(&tracer, &context);
    span.end_with_timestamp(end);
}
