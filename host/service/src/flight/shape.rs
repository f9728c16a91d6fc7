//! The drift report's shape: where a connector reports a drift at a JSON path, the host
//! looks the path up in the run's recorded responses and describes the structure around
//! it — member names and JSON types, never a value — so an author sees what changed
//! (`start_date` gone, `start_date_v2` there) without the cassette. Member names pass the
//! run's scrubber (a platform may key a map by a person's name); depth, members and length
//! are bounded.

use serde_json::Value;

use passerelle_runtime::capabilities::http::Recorded;
use passerelle_runtime::scrub::Scrubber;

/// Levels shown below the node described.
const DEPTH: usize = 2;
/// Members shown per object.
const MEMBERS: usize = 24;
/// The longest description, in bytes.
const LONGEST: usize = 1500;

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// The structure around `path` in the last recorded JSON response that holds the most
/// of it: `"$.appointments[0]: {…}"`. None when no response holds even its first step,
/// or the path is not one this reads (`$`, `.name`, `[n]`, `["name"]`).
pub fn around(exchanges: &[Recorded], path: &str, scrubber: &mut Scrubber) -> Option<String> {
    let steps = parse(path)?;
    let mut best: Option<(usize, Value)> = None;
    for e in exchanges.iter().rev() {
        let Ok(body) = serde_json::from_slice::<Value>(&e.body) else {
            continue;
        };
        let held = resolved(&body, &steps);
        if held > 0 && best.as_ref().is_none_or(|(b, _)| held > *b) {
            best = Some((held, body));
        }
    }
    let (held, body) = best?;
    // The node that holds the offending step: its parent when the whole path exists
    // (a value of the wrong type), else the deepest step found.
    let shown = held.min(steps.len().saturating_sub(1));
    let mut node = &body;
    for step in &steps[..shown] {
        node = child(node, step).expect("resolved above");
    }
    let mut text = format!("{}: ", render_path(&steps[..shown], scrubber));
    describe(node, DEPTH, scrubber, &mut text);
    if text.len() > LONGEST {
        let mut cut = LONGEST;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    Some(text)
}

fn parse(path: &str) -> Option<Vec<Step>> {
    let mut rest = path.trim().strip_prefix('$')?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return None;
            }
            steps.push(Step::Key(r[..end].to_string()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = &r[..end];
            let quoted = inner
                .strip_prefix('"')
                .and_then(|i| i.strip_suffix('"'))
                .or_else(|| inner.strip_prefix('\'').and_then(|i| i.strip_suffix('\'')));
            steps.push(match quoted {
                Some(key) => Step::Key(key.to_string()),
                None => Step::Index(inner.parse().ok()?),
            });
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    Some(steps)
}

fn child<'v>(v: &'v Value, step: &Step) -> Option<&'v Value> {
    match step {
        Step::Key(k) => v.as_object()?.get(k),
        Step::Index(i) => v.as_array()?.get(*i),
    }
}

/// How many of `steps` exist in `v`.
fn resolved(v: &Value, steps: &[Step]) -> usize {
    let mut node = v;
    for (n, step) in steps.iter().enumerate() {
        match child(node, step) {
            Some(next) => node = next,
            None => return n,
        }
    }
    steps.len()
}

fn render_path(steps: &[Step], scrubber: &mut Scrubber) -> String {
    let mut out = String::from("$");
    for step in steps {
        match step {
            Step::Key(k) => {
                out.push('.');
                out.push_str(&scrubber.scrub(k));
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn describe(v: &Value, depth: usize, scrubber: &mut Scrubber, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(_) => out.push_str("boolean"),
        Value::Number(_) => out.push_str("number"),
        Value::String(_) => out.push_str("string"),
        Value::Array(items) => match items.first() {
            None => out.push_str("[]"),
            Some(first) if depth > 0 => {
                out.push('[');
                describe(first, depth - 1, scrubber, out);
                out.push_str(&format!("; {} items]", items.len()));
            }
            Some(_) => out.push_str(&format!("[…; {} items]", items.len())),
        },
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Object(map) if depth == 0 => out.push_str(&format!("{{…{} members}}", map.len())),
        Value::Object(map) => {
            out.push('{');
            for (n, (key, value)) in map.iter().enumerate() {
                if n == MEMBERS {
                    out.push_str(&format!(", …{} more", map.len() - MEMBERS));
                    break;
                }
                if n > 0 {
                    out.push_str(", ");
                }
                out.push_str(&serde_json::to_string(&scrubber.scrub(key)).expect("a string"));
                out.push_str(": ");
                describe(value, depth - 1, scrubber, out);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(body: Value) -> Recorded {
        Recorded {
            method: "GET".into(),
            url: "https://p.example/api".into(),
            request_body: None,
            status: 200,
            headers: vec![],
            body: serde_json::to_vec(&body).unwrap(),
        }
    }

    /// A renamed member: the object that lost it is shown, names and types only.
    #[test]
    fn the_structure_around_a_missing_member_without_values() {
        let body = serde_json::json!({"appointments": [
            {"id": 17, "start_date_v2": "2026-06-10T08:00:00Z", "cancelled": false,
             "patient": {"first_name": "Zoéline", "phone": "+33 6 55 12 34 56"}, "notes": null}
        ], "total": 1});
        let mut scrubber = Scrubber::new();
        let shape = around(
            &[exchange(serde_json::json!({"other": 1})), exchange(body)],
            "$.appointments[0].start_date",
            &mut scrubber,
        )
        .unwrap();
        assert_eq!(
            shape,
            r#"$.appointments[0]: {"cancelled": boolean, "id": number, "notes": null, "patient": {"first_name": string, "phone": string}, "start_date_v2": string}"#
        );
        assert!(!shape.contains("Zoéline") && !shape.contains("2026"));
    }

    /// A value of the wrong type: its parent is shown; keys naming a known value are
    /// scrubbed; an unreadable path or an absent one gives nothing.
    #[test]
    fn wrong_types_scrubbed_keys_and_unknown_paths() {
        let body = serde_json::json!({"by_patient": {"Quintardeau": {"slots": [1, 2, 3]}}});
        let mut scrubber = Scrubber::new();
        scrubber.add_patient_value("Quintardeau");
        let shape = around(
            &[exchange(body.clone())],
            "$['by_patient'].x",
            &mut scrubber,
        )
        .unwrap();
        assert!(!shape.contains("Quintardeau"), "{shape}");
        assert!(shape.starts_with("$.by_patient: {"), "{shape}");
        assert!(
            shape.contains(r#"{"[redacted]": {"slots": […; 3 items]}}"#),
            "{shape}"
        );
        assert_eq!(
            around(&[exchange(body.clone())], "$.nothing.here", &mut scrubber),
            None
        );
        assert_eq!(
            around(&[exchange(body)], "appointments", &mut scrubber),
            None
        );
    }
}
