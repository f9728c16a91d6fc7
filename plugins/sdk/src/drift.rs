//! Turning a response body into typed data, or into a precise `schema-drift` report.
//!
//! The report names the endpoint, the JSON path (`$.data.agendas[2].practice_id`), what
//! the type expected and what kind of JSON value was found there (`string`, `null`,
//! `missing`). It never carries the offending value itself: it could be patient data.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Drift, DriftPolicy, SyncError};

/// Parses `body` as JSON into `T`.
///
/// - a truncated body is `unavailable` (transient: the retry will likely get it whole);
/// - a body that is not JSON at all, or JSON of another shape, is `schema-drift`.
pub fn parse<T: DeserializeOwned>(endpoint: &str, body: &[u8]) -> Result<T, SyncError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        if e.is_eof() {
            SyncError::Unavailable(format!("{endpoint}: response body truncated"))
        } else {
            drift(
                endpoint,
                "$".into(),
                "a JSON document".into(),
                format!("invalid JSON at line {} column {}", e.line(), e.column()),
            )
        }
    })?;
    from_value(endpoint, &value)
}

/// Deserialises an already parsed JSON value into `T`, reporting drift precisely.
pub fn from_value<T: DeserializeOwned>(endpoint: &str, value: &Value) -> Result<T, SyncError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().clone();
        let message = err.inner().to_string();
        let mut json_path = render_path(&path);
        let at = lookup(value, &path);
        let (expected, found) = if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|m| m.strip_suffix('`'))
        {
            json_path = join(&json_path, field);
            ("a value".to_string(), "missing".to_string())
        } else {
            (expected_of(&message), kind(at))
        };
        drift(endpoint, json_path, expected, found)
    })
}

/// Parses each element of a list on its own. An element that does not fit `T` is, under
/// the operator's `quarantine` policy, set aside with the host (kept for review, never
/// logged) and skipped; under `fail` (the default) it ends the run as `schema-drift`.
/// `base` is the list's JSON path (`$.appointments`), so reports read
/// `$.appointments[3].start_date`.
pub fn items<T: DeserializeOwned>(
    endpoint: &str,
    base: &str,
    values: Vec<Value>,
) -> Result<Vec<T>, SyncError> {
    let mut policy = None;
    items_with(endpoint, base, values, &mut |drift, item| match *policy
        .get_or_insert_with(crate::emit::drift_policy)
    {
        DriftPolicy::Quarantine => crate::emit::quarantine(drift, item),
        DriftPolicy::Fail => Err(SyncError::SchemaDrift(drift)),
    })
}

/// [`items`] with the decision for a bad element given (`Ok`: skip it; `Err`: stop).
pub fn items_with<T: DeserializeOwned>(
    endpoint: &str,
    base: &str,
    values: Vec<Value>,
    bad: &mut dyn FnMut(Drift, &Value) -> Result<(), SyncError>,
) -> Result<Vec<T>, SyncError> {
    let mut out = Vec::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        match from_value::<T>(endpoint, value) {
            Ok(item) => out.push(item),
            Err(SyncError::SchemaDrift(mut d)) => {
                let inner = d.path.strip_prefix('$').unwrap_or(&d.path).to_string();
                d.path = format!("{base}[{i}]{inner}");
                bad(d, value)?;
            }
            Err(other) => return Err(other),
        }
    }
    Ok(out)
}

/// For a field that must be present but may be null: put
/// `#[serde(deserialize_with = "passerelle_sdk::drift::nullable")]` on its `Option<T>`.
/// Null reads as `None`; a missing field is `schema-drift` (`found: missing`) — serde
/// alone reads a missing `Option` as `None` too, and a renamed field would go unseen.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer)
}

/// One shape of a list whose items come in several: its name and the members an item
/// of it has (`("slot", &["start", "end"])`, `("trailer", &["total"])`).
pub type Shape<'a> = (&'a str, &'a [&'a str]);

/// A list whose items come in several shapes, told apart by their members (slots, then
/// a trailer object with a count): each item with the index in `shapes` of the first
/// shape whose members it all has. An item of no shape is `schema-drift` at
/// `base[i]`, expecting the shapes by name, finding its JSON kind.
pub fn union_items<'v>(
    endpoint: &str,
    base: &str,
    values: &'v [Value],
    shapes: &[Shape<'_>],
) -> Result<Vec<(usize, &'v Value)>, SyncError> {
    let mut out = Vec::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        let shape = value.as_object().and_then(|members| {
            shapes
                .iter()
                .position(|(_, needs)| needs.iter().all(|m| members.contains_key(*m)))
        });
        match shape {
            Some(s) => out.push((s, value)),
            None => {
                return Err(report(
                    endpoint,
                    &format!("{base}[{i}]"),
                    &one_of(shapes),
                    &kind(Some(value)),
                ))
            }
        }
    }
    Ok(out)
}

/// `one of: slot (start, end), trailer (total)`.
fn one_of(shapes: &[Shape<'_>]) -> String {
    let names: Vec<String> = shapes
        .iter()
        .map(|(name, members)| format!("{name} ({})", members.join(", ")))
        .collect();
    format!("one of: {}", names.join(", "))
}

/// A `schema-drift` report for a value the connector checked itself (a date that is
/// not one, a union with none of its shapes): `found` names the JSON kind seen there
/// (`string`, `missing`…), never the value.
pub fn report(endpoint: &str, path: &str, expected: &str, found: &str) -> SyncError {
    drift(endpoint, path.into(), expected.into(), found.into())
}

fn drift(endpoint: &str, path: String, expected: String, found: String) -> SyncError {
    SyncError::SchemaDrift(Drift {
        endpoint: endpoint.to_string(),
        path,
        expected,
        found,
    })
}

fn render_path(path: &serde_path_to_error::Path) -> String {
    let mut out = String::from("$");
    for segment in path.iter() {
        match segment {
            serde_path_to_error::Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            serde_path_to_error::Segment::Map { key } => out = join(&out, key),
            serde_path_to_error::Segment::Enum { variant } => out = join(&out, variant),
            serde_path_to_error::Segment::Unknown => out.push_str(".?"),
        }
    }
    out
}

/// `base.key` when the key is an identifier (a letter or `_`, then letters, digits or
/// `_`), else `base['key']` (dates, numbers, dashes, spaces: `$.slots[0]['2021-06-16']`).
fn join(base: &str, key: &str) -> String {
    let mut chars = key.chars();
    let identifier = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if identifier {
        format!("{base}.{key}")
    } else {
        let quoted = key.replace('\\', "\\\\").replace('\'', "\\'");
        format!("{base}['{quoted}']")
    }
}

fn lookup<'a>(value: &'a Value, path: &serde_path_to_error::Path) -> Option<&'a Value> {
    let mut at = value;
    for segment in path.iter() {
        at = match segment {
            serde_path_to_error::Segment::Seq { index } => at.get(*index)?,
            serde_path_to_error::Segment::Map { key } => at.get(key)?,
            serde_path_to_error::Segment::Enum { variant } => at.get(variant)?,
            serde_path_to_error::Segment::Unknown => return None,
        };
    }
    Some(at)
}

/// The JSON kind of a value, never the value: what a drift report's `found` says
/// (`missing`, `null`, `boolean`, `integer`, `number`, `string`, `array`, `object`).
pub fn kind(value: Option<&Value>) -> String {
    match value {
        None => "missing",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Number(n)) if n.is_f64() => "number",
        Some(Value::Number(_)) => "integer",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "array",
        Some(Value::Object(_)) => "object",
    }
    .to_string()
}

/// What serde said it expected, without the part that quotes the input.
fn expected_of(message: &str) -> String {
    if let Some((_, expected)) = message.split_once(", expected ") {
        return expected.to_string();
    }
    // Custom errors from a type's own parser (dates…): keep only the part before any
    // quoted input.
    message
        .split(['`', '"'])
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Agenda {
        id: u64,
        practice_id: u64,
    }
    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Data {
        agendas: Vec<Agenda>,
    }
    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Booking {
        data: Data,
    }

    fn drift_of(body: &str) -> Drift {
        match parse::<Booking>("GET /booking/1.json", body.as_bytes()) {
            Err(SyncError::SchemaDrift(d)) => d,
            other => panic!("expected drift, got {other:?}"),
        }
    }

    #[test]
    fn retyped_field_names_path_and_kinds_without_value() {
        let d = drift_of(
            r#"{"data":{"agendas":[{"id":1,"practice_id":2},{"id":2,"practice_id":"Dupont"}]}}"#,
        );
        assert_eq!(d.path, "$.data.agendas[1].practice_id");
        assert_eq!(d.expected, "u64");
        assert_eq!(d.found, "string");
        assert!(!format!("{d:?}").contains("Dupont"));
    }

    #[test]
    fn missing_field_is_reported_at_its_own_path() {
        let d = drift_of(r#"{"data":{"agendas":[{"id":1}]}}"#);
        assert_eq!(d.path, "$.data.agendas[0].practice_id");
        assert_eq!(d.found, "missing");
    }

    #[test]
    fn keys_that_are_not_identifiers_use_brackets() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Day {
            start: String,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Page {
            slots: Vec<std::collections::BTreeMap<String, Vec<Day>>>,
        }
        let body = br#"{"slots":[{"2021-06-16":[{"start":7}]}]}"#;
        let SyncError::SchemaDrift(d) = parse::<Page>("GET /x", body).unwrap_err() else {
            panic!("not drift")
        };
        assert_eq!(d.path, "$.slots[0]['2021-06-16'][0].start");
        assert_eq!(join("$", "it's"), "$['it\\'s']");
        assert_eq!(join("$", "visit_motive_ids"), "$.visit_motive_ids");
        assert_eq!(join("$", "7"), "$['7']");
    }

    #[test]
    fn truncated_body_is_transient() {
        let r = parse::<Booking>("GET /x", br#"{"data":{"agen"#);
        assert!(matches!(r, Err(SyncError::Unavailable(_))));
    }

    #[test]
    fn items_report_their_index_and_set_aside_or_stop() {
        let values: Vec<Value> = serde_json::from_str(
            r#"[{"id":1,"practice_id":2},{"id":2,"practice_id":"Dupont"},{"id":3,"practice_id":4}]"#,
        )
        .unwrap();
        let mut aside = Vec::new();
        let kept: Vec<Agenda> = items_with("GET /x", "$.agendas", values.clone(), &mut |d, v| {
            aside.push((d, v.clone()));
            Ok(())
        })
        .unwrap();
        assert_eq!(kept.len(), 2);
        assert_eq!(aside.len(), 1);
        assert_eq!(aside[0].0.path, "$.agendas[1].practice_id");
        assert_eq!(aside[0].1["id"], 2);
        let stopped = items_with::<Agenda>("GET /x", "$.agendas", values, &mut |d, _| {
            Err(SyncError::SchemaDrift(d))
        });
        match stopped {
            Err(SyncError::SchemaDrift(d)) => assert_eq!(d.path, "$.agendas[1].practice_id"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn html_instead_of_json_is_drift_at_root() {
        let d = match parse::<Booking>("GET /x", b"<html>") {
            Err(SyncError::SchemaDrift(d)) => d,
            other => panic!("{other:?}"),
        };
        assert_eq!(d.path, "$");
    }
}
