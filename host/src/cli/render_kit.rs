//! The text of a `connector test` report: the run, requests (and the closest exchanges
//! of an unmatched one), records, log lines, checks and drift probes.

use std::fmt::Write as _;

use super::printable::printable;
use passerelle_kit::probes::Verdict as ProbeVerdict;
use passerelle_kit::TestReport;

pub fn text(r: &TestReport) -> String {
    let mut out = String::new();
    let run = &r.run;
    let _ = writeln!(out, "{} {}: run {}", r.connector, r.version, run.status);
    if let Some(kind) = &run.error_kind {
        let detail = run.error_detail.as_deref().unwrap_or("");
        let _ = writeln!(out, "  error: {kind}: {}", printable(detail));
    }
    if let Some(m) = &run.message {
        let _ = writeln!(out, "  message: {}", printable(m));
    }
    if let Some(c) = &run.cursor {
        let _ = writeln!(out, "  cursor: {}", printable(c));
    }
    let _ = writeln!(out, "\nrequests ({}):", r.requests.len());
    for q in &r.requests {
        match q.exchange {
            Some(i) => {
                let _ = writeln!(out, "  [{i}] {}", printable(&q.request));
            }
            None => {
                let _ = writeln!(out, "  UNMATCHED {}", printable(&q.request));
                for c in &q.closest {
                    let _ = writeln!(out, "      closest {}", printable(c));
                }
            }
        }
    }
    let _ = writeln!(out, "\nslots ({}):", r.records.slots.len());
    for s in &r.records.slots {
        let field = |k: &str| text_of(s, k);
        let _ = writeln!(
            out,
            "  {}  {} → {}  {} / {} / {}",
            printable(&field("external_id")),
            field("starts_at"),
            field("ends_at"),
            printable(&field("practitioner")),
            printable(&field("visit_motive")),
            printable(&field("place"))
        );
    }
    let _ = writeln!(out, "\nappointments ({}):", r.records.appointments.len());
    for a in &r.records.appointments {
        let field = |k: &str| text_of(a, k);
        // Patients are not printed: the golden file holds them.
        let _ = writeln!(
            out,
            "  {}  {}  {}",
            printable(&field("external_id")),
            field("starts_at"),
            field("status")
        );
    }
    if !r.logs.is_empty() {
        let _ = writeln!(out, "\nlog ({} lines):", r.logs.len());
        for l in &r.logs {
            let _ = writeln!(out, "  {}", printable(l));
        }
    }
    if let Some(e) = &r.expected {
        let _ = writeln!(out);
        if e.blessed {
            let _ = writeln!(out, "expected records written to {}", e.path.display());
        } else if e.matches {
            let _ = writeln!(out, "records match {}", e.path.display());
        } else {
            let _ = writeln!(out, "records differ from {}:", e.path.display());
            for d in &e.differences {
                let _ = writeln!(out, "  {}", printable(d));
            }
        }
    }
    if !r.checks.is_empty() {
        let _ = writeln!(out, "\nchecks:");
        for c in &r.checks {
            let mark = if c.passed { "ok  " } else { "FAIL" };
            let _ = writeln!(
                out,
                "  {mark} {:<13} {}",
                c.check.name(),
                printable(&c.detail)
            );
        }
    }
    if !r.probes.is_empty() {
        let _ = writeln!(out, "\nprobes:");
        for p in &r.probes {
            let verdict = match &p.verdict {
                ProbeVerdict::Drift { endpoint, path } => format!("drift at {endpoint} {path}"),
                ProbeVerdict::NotNeeded => "not needed (same records)".into(),
                ProbeVerdict::Violation { what } => format!("VIOLATION: {what}"),
            };
            let _ = writeln!(
                out,
                "  {:<8} {} in {}: {}",
                format!("{:?}", p.mutation).to_lowercase(),
                printable(&p.path),
                printable(&p.request),
                printable(&verdict)
            );
        }
    }
    let _ = writeln!(out, "\n{}", if r.passed() { "PASSED" } else { "FAILED" });
    out
}

/// A record's text field, `-` when absent or null.
fn text_of(record: &serde_json::Value, key: &str) -> String {
    record
        .get(key)
        .and_then(|v| v.as_str())
        .unwrap_or("-")
        .to_string()
}
