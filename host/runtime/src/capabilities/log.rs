//! The `log` import and guest stdout/stderr: held back briefly, scrubbed, then written
//! through `tracing` inside the run's span.
//!
//! Lines are buffered until the next checkpoint or the end of the run, so that a line
//! written just before the records it talks about are emitted is still scrubbed of their
//! patient values. What a run may log is bounded by its [`LogBudget`] (`limits.log_lines`,
//! `limits.log_kib`), which also bounds the buffer: past it the run ends as
//! `limit-exceeded`.

use std::sync::Arc;

use super::log_budget::LogBudget;
use super::output::CapturedOutput;
use crate::contract::bindings::passerelle::connector::log;
use crate::contract::wit::Level;
use crate::scrub::Scrubber;
use passerelle_model::limits::Limits;

/// Captured stdout/stderr per stream between two flushes.
const OUTPUT_CAP: usize = 64 * 1024;

const MAX_LINE_BYTES: usize = 8192;

struct Line {
    level: Level,
    message: String,
    fields: Vec<(String, String)>,
}

/// One run's pending connector log lines.
#[derive(Default)]
pub struct LogBuffer {
    lines: Vec<Line>,
    /// Lines dropped because the run logged more than the cap in one burst.
    pub dropped: u64,
}

impl LogBuffer {
    /// Queues a line until the next flush.
    pub fn push(&mut self, level: Level, mut message: String, fields: Vec<(String, String)>) {
        truncate(&mut message, MAX_LINE_BYTES);
        let fields = fields
            .into_iter()
            .take(32)
            .map(|(mut k, mut v)| {
                truncate(&mut k, 64);
                truncate(&mut v, 1024);
                (k, v)
            })
            .collect();
        self.lines.push(Line {
            level,
            message,
            fields,
        });
    }

    /// Queues guest stdout/stderr text, one line each.
    pub fn push_output(&mut self, stream: &str, text: &str) {
        for l in text.lines().filter(|l| !l.trim().is_empty()) {
            self.push(
                Level::Info,
                l.to_string(),
                vec![("stream".into(), stream.into())],
            );
        }
    }

    /// Scrubs and writes every queued line (to the current tracing span).
    pub fn flush(&mut self, scrubber: &mut Scrubber) {
        for line in self.lines.drain(..) {
            let message = scrubber.scrub(&line.message);
            if line.fields.is_empty() {
                emit(line.level, &message, None);
            } else {
                let map: serde_json::Map<String, serde_json::Value> = line
                    .fields
                    .iter()
                    .map(|(k, v)| {
                        (
                            scrubber.scrub(k),
                            serde_json::Value::String(scrubber.scrub(v)),
                        )
                    })
                    .collect();
                emit(
                    line.level,
                    &message,
                    Some(&serde_json::Value::Object(map).to_string()),
                );
            }
        }
    }
}

/// What a run's guest logs: its `log` lines and its stdout/stderr, written inside the
/// run's span.
pub struct GuestLog {
    buffer: LogBuffer,
    budget: Arc<LogBudget>,
    stdout: CapturedOutput,
    stderr: CapturedOutput,
    span: tracing::Span,
}

impl GuestLog {
    pub fn new(span: tracing::Span, limits: &Limits) -> GuestLog {
        let budget = LogBudget::new(limits);
        GuestLog {
            buffer: LogBuffer::default(),
            stdout: CapturedOutput::new(OUTPUT_CAP, budget.clone()),
            stderr: CapturedOutput::new(OUTPUT_CAP, budget.clone()),
            budget,
            span,
        }
    }

    /// The guest's stdout, for its WASI context.
    pub fn stdout(&self) -> CapturedOutput {
        self.stdout.clone()
    }

    /// The guest's stderr, for its WASI context.
    pub fn stderr(&self) -> CapturedOutput {
        self.stderr.clone()
    }

    /// The run's span.
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Moves captured stdout/stderr into the buffer and writes it all out, scrubbed.
    pub fn flush(&mut self, scrubber: &mut Scrubber) {
        for (name, stream) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let (text, dropped) = stream.take();
            self.buffer.push_output(name, &text);
            if dropped > 0 {
                self.buffer
                    .push_output(name, &format!("({dropped} bytes of {name} dropped)"));
            }
        }
        let _enter = self.span.enter();
        self.buffer.flush(scrubber);
    }
}

/// The `log` import's view of a run: its log and its scrubber.
pub struct LogView<'a> {
    pub log: &'a mut GuestLog,
    pub scrubber: &'a mut Scrubber,
}

impl log::Host for LogView<'_> {
    async fn log(
        &mut self,
        level: Level,
        message: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        let bytes = message.len() + fields.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        self.log.budget.charge(1, bytes as u64)?;
        self.log.buffer.push(level, message, fields);
        Ok(())
    }
}

/// One connector line through `tracing`, target `connector`, fields as one JSON value.
fn emit(level: Level, message: &str, fields: Option<&str>) {
    macro_rules! at {
        ($lvl:ident) => {
            match fields {
                Some(f) => tracing::$lvl!(target: "connector", fields = %f, "{message}"),
                None => tracing::$lvl!(target: "connector", "{message}"),
            }
        };
    }
    match level {
        Level::Trace => at!(trace),
        Level::Debug => at!(debug),
        Level::Info => at!(info),
        Level::Warn => at!(warn),
        Level::Error => at!(error),
    }
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
}
