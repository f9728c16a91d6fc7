//! The contract checks `connector test` runs on a replayed connector: what every
//! connector must do whatever its platform, decided from what the runs stored, asked
//! and logged. Each check is a pure function of [`Outcome`]s, so it can be tested
//! without a component.

use std::collections::BTreeMap;

use chrono::DateTime;
use serde::Serialize;

use super::harness::Outcome;

/// The checks, by the name `--checks` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// A second run on the same cassette stores the same records and adds or changes none.
    Idempotent,
    /// An incremental run after the first never moves the cursor backwards.
    Cursor,
    /// Secret values leave only in request headers: never in a URL, a request body, a
    /// log line, a record, or the run's message or error.
    Secrets,
    /// No log line carries a value of an emitted patient record.
    PatientLogs,
    /// Every stored timestamp is RFC 3339 with an offset.
    Timestamps,
    /// Each field the connector reads, removed and retyped in turn, ends the run in
    /// `schema-drift` naming it, or stores the same records.
    Probes,
}

impl Check {
    pub const ALL: [Check; 6] = [
        Check::Idempotent,
        Check::Cursor,
        Check::Secrets,
        Check::PatientLogs,
        Check::Timestamps,
        Check::Probes,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Check::Idempotent => "idempotent",
            Check::Cursor => "cursor",
            Check::Secrets => "secrets",
            Check::PatientLogs => "patient-logs",
            Check::Timestamps => "timestamps",
            Check::Probes => "probes",
        }
    }
}

/// A check's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub check: Check,
    pub passed: bool,
    pub detail: String,
}

impl Verdict {
    fn new(check: Check, problems: Vec<String>, ok: impl Into<String>) -> Verdict {
        Verdict {
            check,
            passed: problems.is_empty(),
            detail: if problems.is_empty() {
                ok.into()
            } else {
                problems.join("; ")
            },
        }
    }
}

/// `second` replays `first`: same records, nothing added or changed.
pub fn idempotent(first: &Outcome, second: &Outcome) -> Verdict {
    let mut problems = Vec::new();
    if second.run.status != first.run.status {
        problems.push(format!(
            "the second run ended {} where the first ended {}",
            second.run.status, first.run.status
        ));
    }
    if second.records != first.records {
        problems.push(format!(
            "the second run left {} slots and {} appointments where the first left {} and {}",
            second.records.slots.len(),
            second.records.appointments.len(),
            first.records.slots.len(),
            first.records.appointments.len()
        ));
    }
    let c = &second.run.counts;
    if c.appointments_added > 0 || c.appointments_changed > 0 {
        problems.push(format!(
            "the second run added {} and changed {} appointments",
            c.appointments_added, c.appointments_changed
        ));
    }
    Verdict::new(
        Check::Idempotent,
        problems,
        "a second run stored the same records",
    )
}

/// `later` (incremental, from `earlier`'s cursor) does not move the cursor backwards.
/// Cursors are opaque: compared as timestamps when both are, as integers when both are,
/// else as text.
pub fn cursor(earlier: &Outcome, later: &Outcome) -> Verdict {
    let (Some(before), Some(after)) = (
        earlier.run.cursor_after.as_deref(),
        later.run.cursor_after.as_deref(),
    ) else {
        return Verdict::new(
            Check::Cursor,
            match (&earlier.run.cursor_after, &later.run.cursor_after) {
                (Some(_), None) if later.run.status.as_str() == "succeeded" => {
                    vec!["the incremental run dropped the cursor".into()]
                }
                _ => vec![],
            },
            "no cursor to compare (the connector keeps none)",
        );
    };
    let backwards = match (
        DateTime::parse_from_rfc3339(before),
        DateTime::parse_from_rfc3339(after),
    ) {
        (Ok(b), Ok(a)) => a < b,
        _ => match (before.parse::<i128>(), after.parse::<i128>()) {
            (Ok(b), Ok(a)) => a < b,
            _ => after < before,
        },
    };
    Verdict::new(
        Check::Cursor,
        if backwards {
            vec![format!("the cursor went back from `{before}` to `{after}`")]
        } else {
            vec![]
        },
        format!("the cursor went from `{before}` to `{after}`"),
    )
}

/// Secret values appear only in request headers.
pub fn secrets(outcomes: &[&Outcome], secrets: &BTreeMap<String, String>) -> Verdict {
    let mut problems = Vec::new();
    for (name, value) in secrets.iter().filter(|(_, v)| !v.is_empty()) {
        let mut found = |place: String| {
            let p = format!("secret `{name}` found in {place}");
            if !problems.contains(&p) {
                problems.push(p);
            }
        };
        for o in outcomes {
            for s in &o.seen {
                let r = &s.request;
                if r.path.contains(value.as_str())
                    || r.query
                        .iter()
                        .any(|(k, v)| k.contains(value.as_str()) || v.contains(value.as_str()))
                {
                    found(format!("the URL of {} {}", r.method, r.path));
                }
                if contains(&r.body, value) {
                    found(format!("the body of {} {}", r.method, r.path));
                }
            }
            if o.logs.iter().any(|l| l.contains(value.as_str())) {
                found("a log line".into());
            }
            let records = serde_json::to_string(&o.records).expect("serialisable");
            if records.contains(value.as_str()) {
                found("a stored record".into());
            }
            for text in [&o.run.message, &o.run.error_detail].into_iter().flatten() {
                if text.contains(value.as_str()) {
                    found("the run's message or error".into());
                }
            }
        }
    }
    let ok = if secrets.is_empty() {
        "no secret given (--secret)"
    } else {
        "secret values left only in request headers"
    };
    Verdict::new(Check::Secrets, problems, ok)
}

/// No log line carries a patient value of a stored appointment.
pub fn patient_logs(outcomes: &[&Outcome]) -> Verdict {
    let mut problems = Vec::new();
    let mut values = 0;
    for o in outcomes {
        for a in &o.appointments {
            let Some(p) = &a.patient else { continue };
            let fields = [
                ("a first name", Some(&p.first_name)),
                ("a last name", Some(&p.last_name)),
                ("a birth date", p.birth_date.as_ref()),
                ("a phone number", p.phone.as_ref()),
                ("an e-mail address", p.email.as_ref()),
            ];
            // Values this short are not identifying and would match anywhere.
            for (what, value) in fields.into_iter().filter_map(|(w, v)| Some((w, v?))) {
                if value.chars().count() < 3 {
                    continue;
                }
                values += 1;
                if o.logs.iter().any(|l| l.contains(value.as_str())) {
                    let p = format!(
                        "a log line carries {what} of appointment `{}`",
                        a.external_id
                    );
                    if !problems.contains(&p) {
                        problems.push(p);
                    }
                }
            }
        }
    }
    Verdict::new(
        Check::PatientLogs,
        problems,
        format!("{values} patient values, none in the log"),
    )
}

/// Every stored timestamp is RFC 3339 with an offset.
pub fn timestamps(outcome: &Outcome) -> Verdict {
    let mut problems = Vec::new();
    let mut n = 0;
    let rows = outcome
        .records
        .slots
        .iter()
        .chain(&outcome.records.appointments);
    for row in rows {
        for field in ["starts_at", "ends_at", "platform_updated_at"] {
            let Some(text) = row.get(field).and_then(|v| v.as_str()) else {
                continue;
            };
            n += 1;
            if DateTime::parse_from_rfc3339(text).is_err() {
                problems.push(format!(
                    "`{}` {field} is not RFC 3339 with an offset",
                    row["external_id"].as_str().unwrap_or("?")
                ));
            }
        }
    }
    Verdict::new(
        Check::Timestamps,
        problems,
        format!("{n} timestamps, all RFC 3339 with an offset"),
    )
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    let needle = needle.as_bytes();
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
