//! The text of a `connector test` report: the run with its clock and window, requests
//! in the order made with the exchange that answered each (and the closest exchanges of
//! an unmatched one), records (slots by start, the first named), log lines, checks and
//! drift probes — in full, or counts only (`--summary`); and the line that sums up
//! several cassettes.

use std::fmt::Write as _;

use super::printable::printable;
use passerelle_kit::probes::Verdict as ProbeVerdict;
use passerelle_kit::TestReport;

/// The reports of several cassettes, each as [`text`], then a line counting them.
pub fn texts(reports: &[TestReport], summary: bool) -> String {
    let mut out = String::new();
    for r in reports {
        let _ = writeln!(out, "== {}", r.cassette.display());
        out.push_str(&text(r, summary));
        out.push('\n');
    }
    let failed: Vec<String> = reports
        .iter()
        .filter(|r| !r.passed())
        .map(|r| r.cassette.display().to_string())
        .collect();
    let _ = write!(
        out,
        "{} cassettes: {} passed, {} failed",
        reports.len(),
        reports.len() - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        let _ = write!(out, " ({})", failed.join(", "));
    }
    out.push('\n');
    out
}

/// One cassette's report; `summary`: counts instead of the listings.
pub fn text(r: &TestReport, summary: bool) -> String {
    let mut out = String::new();
    let run = &r.run;
    let _ = writeln!(out, "{} {}: run {}", r.connector, r.version, run.status);
    let _ = writeln!(
        out,
        "  clock {}, window {} days back and {} ahead",
        r.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        r.window.0,
        r.window.1
    );
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
    requests(&mut out, r, summary);
    records(&mut out, r, summary);
    if !r.logs.is_empty() && !summary {
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
    if !r.probes.is_empty() && summary {
        let failed = r.probes.iter().filter(|p| !p.passed()).count();
        let _ = writeln!(out, "\nprobes: {}, {failed} failed", r.probes.len());
    }
    if !r.probes.is_empty() && !summary {
        let _ = writeln!(out, "\nprobes:");
        for p in &r.probes {
            let verdict = match &p.verdict {
                ProbeVerdict::Drift { endpoint, path } => format!("drift at {endpoint} {path}"),
                ProbeVerdict::NotNeeded => "not needed (same records)".into(),
                ProbeVerdict::Violation { what } => format!("VIOLATION: {what}"),
            };
            let retyped = p
                .retyped
                .as_deref()
                .map(|k| format!(" ({k})"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:<8} {}{retyped} in exchange {} ({}): {}",
                format!("{:?}", p.mutation).to_lowercase(),
                printable(&p.path),
                p.exchange,
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

/// Requests in the order made, each with the exchange that answered it and that
/// exchange's note; an unmatched one with the closest exchanges. In a summary: the
/// count, and the unmatched ones.
fn requests(out: &mut String, r: &TestReport, summary: bool) {
    let unmatched = r.requests.iter().filter(|q| q.exchange.is_none()).count();
    let _ = writeln!(
        out,
        "\nrequests ({}{}):",
        r.requests.len(),
        if unmatched > 0 {
            format!(", {unmatched} UNMATCHED")
        } else {
            String::new()
        }
    );
    for (n, q) in r.requests.iter().enumerate() {
        match q.exchange {
            Some(_) if summary => {}
            Some(i) => {
                let note = q
                    .note
                    .as_deref()
                    .map(|n| format!(" ({})", printable(n)))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  {:>2}. {}  <- exchange {i}{note}",
                    n + 1,
                    printable(&q.request)
                );
            }
            None => {
                let _ = writeln!(out, "  {:>2}. UNMATCHED {}", n + 1, printable(&q.request));
                for c in &q.closest {
                    let _ = writeln!(out, "      closest {}", printable(c));
                }
            }
        }
    }
}

/// Slots by start with the first one named, and appointments (patients never printed:
/// the golden file holds them). In a summary: counts and the first slot.
fn records(out: &mut String, r: &TestReport, summary: bool) {
    let mut slots: Vec<&serde_json::Value> = r.records.slots.iter().collect();
    // By instant (what the host stored), then id.
    let start = |s: &serde_json::Value| {
        s.get("starts_at")
            .and_then(|v| v.as_str())
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_millis())
    };
    slots.sort_by_key(|s| (start(s), text_of(s, "external_id")));
    let _ = writeln!(out, "\nslots ({}):", slots.len());
    if let Some(first) = slots.first() {
        let _ = writeln!(
            out,
            "  first slot: {} ({})",
            text_of(first, "starts_at"),
            printable(&text_of(first, "external_id"))
        );
    }
    if !summary {
        for s in &slots {
            let field = |k: &str| text_of(s, k);
            let _ = writeln!(
                out,
                "  {} → {}  {}  {} / {} / {}",
                field("starts_at"),
                field("ends_at"),
                printable(&field("external_id")),
                printable(&field("practitioner")),
                printable(&field("visit_motive")),
                printable(&field("place"))
            );
        }
    }
    let _ = writeln!(out, "\nappointments ({}):", r.records.appointments.len());
    if !summary {
        for a in &r.records.appointments {
            let field = |k: &str| text_of(a, k);
            let _ = writeln!(
                out,
                "  {}  {}  {}",
                printable(&field("external_id")),
                field("starts_at"),
                field("status")
            );
        }
    }
}
