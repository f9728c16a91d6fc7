//! Drift probes: for each JSON response a run read, each field in turn is removed, then
//! changed to another type, and the run replayed on a fresh account. The connector must
//! end the run `schema-drift` naming that field (or the value holding it), or store
//! exactly the same records (it does not need the field) — never trap, never store
//! different data silently.
//!
//! Arrays are probed through their first element, so a page of 800 items costs the
//! probes of one.

use serde::Serialize;
use serde_json::Value;

use super::harness::{Bench, Outcome};
use super::KitError;
use passerelle_model::run::{Mode, Status};

/// What a probe did to the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mutation {
    Removed,
    Retyped,
}

/// How the connector took it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// `schema-drift` naming the field (or the value holding it).
    Drift { endpoint: String, path: String },
    /// The same records: the connector does not need the field.
    NotNeeded,
    /// Anything else: the records differ, or the run failed another way.
    Violation { what: String },
}

/// One probe and its outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    /// The request whose response was changed.
    pub request: String,
    /// The cassette exchange (1-based) whose response was changed.
    pub exchange: usize,
    pub path: String,
    pub mutation: Mutation,
    /// For a retyped field: the JSON kinds before and after (`string → integer`).
    pub retyped: Option<String>,
    pub verdict: Verdict,
}

impl Probe {
    pub fn passed(&self) -> bool {
        !matches!(self.verdict, Verdict::Violation { .. })
    }
}

/// Every probe of every JSON response `baseline` read.
pub async fn run(bench: &Bench, baseline: &Outcome, mode: Mode) -> Result<Vec<Probe>, KitError> {
    let mut exchanges: Vec<(usize, String)> = Vec::new();
    for seen in &baseline.seen {
        if let Some(i) = seen.exchange {
            if !exchanges.iter().any(|(e, _)| *e == i) {
                exchanges.push((i, seen.request.line()));
            }
        }
    }
    let mut probes = Vec::new();
    for (index, request) in exchanges {
        let exchange = &bench.replay().cassette().exchanges[index];
        let Ok(body) = serde_json::from_slice::<Value>(&exchange.body) else {
            continue;
        };
        for (path, pointer, in_object) in fields(&body) {
            let mutations: &[Mutation] = if in_object {
                &[Mutation::Removed, Mutation::Retyped]
            } else {
                &[Mutation::Retyped]
            };
            for &mutation in mutations {
                let mut changed = body.clone();
                mutate(&mut changed, &pointer, mutation);
                bench
                    .replay()
                    .substitute(index, serde_json::to_vec(&changed).expect("serialisable"));
                let account = bench.new_account().await;
                let outcome = match account {
                    Ok(account) => bench.run(&account, mode).await,
                    Err(e) => Err(e),
                };
                bench.replay().restore();
                let verdict = judge(baseline, &outcome?, &path, &exchange.method);
                let retyped = (mutation == Mutation::Retyped).then(|| {
                    let before = body.pointer(&pointer);
                    let after = changed.pointer(&pointer);
                    format!("{} → {}", kind(before), kind(after))
                });
                probes.push(Probe {
                    request: request.clone(),
                    exchange: index + 1,
                    path: path.clone(),
                    mutation,
                    retyped,
                    verdict,
                });
            }
        }
    }
    Ok(probes)
}

fn judge(baseline: &Outcome, probe: &Outcome, path: &str, method: &str) -> Verdict {
    if let (Status::Drift, Some(d)) = (probe.run.status, &probe.run.drift) {
        let names_it = d.path == path
            || path
                .strip_prefix(d.path.as_str())
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['));
        return if names_it && d.endpoint.starts_with(method) {
            Verdict::Drift {
                endpoint: d.endpoint.clone(),
                path: d.path.clone(),
            }
        } else {
            Verdict::Violation {
                what: format!("schema-drift naming {} {} instead", d.endpoint, d.path),
            }
        };
    }
    if probe.run.status == baseline.run.status && probe.records == baseline.records {
        return Verdict::NotNeeded;
    }
    let what = if probe.run.status != baseline.run.status {
        format!(
            "the run ended {} ({}) instead of {}",
            probe.run.status,
            probe
                .run
                .error_detail
                .as_deref()
                .unwrap_or("no detail")
                .chars()
                .take(200)
                .collect::<String>(),
            baseline.run.status
        )
    } else {
        format!(
            "stored {} slots and {} appointments instead of {} and {}, without a drift",
            probe.records.slots.len(),
            probe.records.appointments.len(),
            baseline.records.slots.len(),
            baseline.records.appointments.len()
        )
    };
    Verdict::Violation { what }
}

/// Every field under `value`: (its path as drift reports write it, its JSON pointer,
/// whether removing it is a probe). Arrays contribute their first element only. Members
/// whose keys are not identifiers (ids, dates) are data, not fields: a map keyed by
/// practice id without some practice is another answer, not a changed shape, so they
/// are only retyped.
pub fn fields(value: &Value) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    walk(value, "$", "", &mut out);
    out
}

fn walk(value: &Value, path: &str, pointer: &str, out: &mut Vec<(String, String, bool)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let p = join(path, k);
                let ptr = format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push((p.clone(), ptr.clone(), is_identifier(k)));
                walk(v, &p, &ptr, out);
            }
        }
        Value::Array(items) => {
            if let Some(first) = items.first() {
                let p = format!("{path}[0]");
                let ptr = format!("{pointer}/0");
                out.push((p.clone(), ptr.clone(), false));
                walk(first, &p, &ptr, out);
            }
        }
        _ => {}
    }
}

/// A member of a path, as the SDK writes drift paths: `.key` for identifiers,
/// `['key']` for anything else (dates, numbers, dashes).
fn join(base: &str, key: &str) -> String {
    if is_identifier(key) {
        format!("{base}.{key}")
    } else {
        format!(
            "{base}['{}']",
            key.replace('\\', "\\\\").replace('\'', "\\'")
        )
    }
}

fn mutate(root: &mut Value, pointer: &str, mutation: Mutation) {
    match mutation {
        Mutation::Retyped => {
            if let Some(v) = root.pointer_mut(pointer) {
                *v = retyped(v);
            }
        }
        Mutation::Removed => {
            let (parent, key) = pointer.rsplit_once('/').expect("a member pointer");
            let key = key.replace("~1", "/").replace("~0", "~");
            if let Some(Value::Object(map)) = root.pointer_mut(parent) {
                map.remove(&key);
            }
        }
    }
}

fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A value of another JSON type.
/// A JSON value's kind, as drift reports name it.
fn kind(v: Option<&Value>) -> &'static str {
    match v {
        None => "missing",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Number(n)) if n.is_f64() => "number",
        Some(Value::Number(_)) => "integer",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "array",
        Some(Value::Object(_)) => "object",
    }
}

fn retyped(v: &Value) -> Value {
    match v {
        Value::String(_) => Value::from(0),
        _ => Value::from("passerelle-probe"),
    }
}

#[cfg(test)]
mod tests {
    use crate::probes::*;

    #[test]
    fn fields_follow_objects_and_the_first_element_of_arrays() {
        let v: Value =
            serde_json::from_str(r#"{"data":{"items":[{"id":1},{"id":2}],"2021-06-16":true}}"#)
                .unwrap();
        let paths: Vec<String> = fields(&v).into_iter().map(|f| f.0).collect();
        assert_eq!(
            paths,
            [
                "$.data",
                "$.data['2021-06-16']",
                "$.data.items",
                "$.data.items[0]",
                "$.data.items[0].id"
            ]
        );
    }

    #[test]
    fn mutations_remove_members_and_change_types() {
        let v: Value = serde_json::from_str(r#"{"a":{"b/c":"x","n":[1]}}"#).unwrap();
        let mut removed = v.clone();
        mutate(&mut removed, "/a/b~1c", Mutation::Removed);
        assert_eq!(removed, serde_json::json!({"a":{"n":[1]}}));
        let mut retyped = v.clone();
        mutate(&mut retyped, "/a/b~1c", Mutation::Retyped);
        assert_eq!(retyped["a"]["b/c"], 0);
        mutate(&mut retyped, "/a/n/0", Mutation::Retyped);
        assert_eq!(retyped["a"]["n"][0], "passerelle-probe");
    }
}
