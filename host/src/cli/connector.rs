//! `passerelle connector …`: the connector kit's commands. Arguments become a
//! [`passerelle_kit::TestOptions`]; the report is rendered here as text or JSON.

use std::fmt::Write as _;

use anyhow::{bail, Result};

use super::args::ConnectorCmd;
use super::printable::printable;
use super::render::write_stdout;
use passerelle_kit::checks::Check;
use passerelle_kit::harness::BenchOptions;
use passerelle_kit::probes::Verdict as ProbeVerdict;
use passerelle_kit::{TestOptions, TestReport};
use passerelle_service::config::Config;

/// Runs a `connector` command; an error (non-zero exit) when the test did not pass.
pub async fn run(command: ConnectorCmd, config: &Config, json: bool) -> Result<()> {
    match command {
        ConnectorCmd::New { name, dir, lang } => {
            let made = passerelle_kit::scaffold::new_connector(&name, &dir, lang)?;
            let shown = made.display();
            let (first, wasm) = match lang {
                passerelle_kit::languages::Lang::Rust => (
                    format!("cd {shown} && cargo test            # its unit test\n  "),
                    format!(
                        "{shown}/target/wasm32-wasip2/release/{}.wasm",
                        name.replace('-', "_")
                    ),
                ),
                _ => (String::new(), format!("{shown}/target/{name}.wasm")),
            };
            write_stdout(&format!(
                "wrote the connector {shown}\n\
                 next:\n  \
                 {first}passerelle connector build {shown}\n  \
                 passerelle connector test {wasm} \\\n      \
                 --cassette {shown}/cassettes/example --secret api-key=made-up-key \\\n      \
                 --expect {shown}/cassettes/example/expected.json\n"
            ))?;
            Ok(())
        }
        ConnectorCmd::Build { dir } => {
            let component = passerelle_kit::scaffold::build_connector(&dir)?;
            write_stdout(&format!("{}\n", component.display()))?;
            Ok(())
        }
        ConnectorCmd::Test {
            component,
            cassette,
            record,
            settings,
            secrets,
            now,
            window,
            full,
            expect,
            bless,
            checks,
        } => {
            let checks = match checks {
                None => Check::ALL.to_vec(),
                Some(list) => list.into_iter().flatten().collect(),
            };
            let (cassette, live) = match (cassette, record) {
                (_, Some(dir)) => (dir, Some(config.http.clone())),
                (Some(dir), None) => (dir, None),
                (None, None) => bail!("give --cassette DIR, or --record DIR to record one"),
            };
            let options = TestOptions {
                component,
                cassette,
                live,
                bench: BenchOptions {
                    settings: settings.into_iter().collect(),
                    secrets: secrets.into_iter().collect(),
                    now,
                    window,
                },
                full,
                expect,
                bless,
                checks,
            };
            let report = passerelle_kit::test(options).await?;
            if json {
                write_stdout(&(serde_json::to_string_pretty(&report)? + "\n"))?;
            } else {
                write_stdout(&text(&report))?;
            }
            if !report.passed() {
                bail!("connector test failed");
            }
            Ok(())
        }
    }
}

fn text(r: &TestReport) -> String {
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
