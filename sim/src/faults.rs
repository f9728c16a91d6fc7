//! Switchable faults, per platform: latency, 5xx, 429 with Retry-After, truncated bodies
//! and schema drift (a field renamed, retyped or removed in one endpoint's responses).
//!
//! Faults are deterministic: "every Nth request" rather than a probability, so a test
//! knows which request fails. They are set at run time through [`crate::Simulator`] or
//! `PUT /_sim/faults/{platform}`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The faults of one platform. Everything off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Only requests to this endpoint are affected (`booking`, `availabilities`,
    /// `appointments`); all of the platform's endpoints when absent.
    pub endpoint: Option<String>,
    /// Added to every response, in milliseconds.
    pub latency_ms: u64,
    /// Every Nth affected request answers `error_status` (0: never).
    pub error_every: u32,
    /// The status of those errors (default 503).
    pub error_status: Option<u16>,
    /// Every Nth affected request answers 429 with `Retry-After: retry_after_secs`.
    pub rate_limit_every: u32,
    /// The first N affected requests answer 429 with `Retry-After: retry_after_secs`
    /// (whatever number of requests a run makes, it meets one).
    pub rate_limit_first: u32,
    pub retry_after_secs: u32,
    /// Every Nth affected request gets only the first half of its body.
    pub truncate_every: u32,
    /// Schema drift in every affected response.
    pub drift: Option<Drift>,
}

/// One field changed in the responses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Drift {
    /// The object key to change, wherever it occurs (e.g. `start_date`).
    pub field: String,
    pub change: Change,
    /// Only the Nth occurrence (0-based) counted across the platform's affected
    /// responses since the faults were set, in document order (so `nth: 120` with pages
    /// of 100 hits the second page); every occurrence when absent.
    pub nth: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// The key becomes `<field>_v2`.
    Rename,
    /// The value changes JSON type (string ↔ number, object/array → string).
    Retype,
    /// The key disappears.
    Remove,
}

/// What to do with one request, decided before the handler runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Serve { truncate: bool },
    Error(u16),
    RateLimited(u32),
}

impl Faults {
    pub fn applies_to(&self, endpoint: &str) -> bool {
        self.endpoint.as_deref().is_none_or(|e| e == endpoint)
    }

    /// The verdict for the `n`th affected request (1-based).
    pub fn verdict(&self, n: u64) -> Verdict {
        let every = |k: u32| k > 0 && n.is_multiple_of(u64::from(k));
        if n <= u64::from(self.rate_limit_first) || every(self.rate_limit_every) {
            Verdict::RateLimited(self.retry_after_secs)
        } else if every(self.error_every) {
            Verdict::Error(self.error_status.unwrap_or(503))
        } else {
            Verdict::Serve {
                truncate: every(self.truncate_every),
            }
        }
    }
}

impl Drift {
    /// Applies the drift to a response document; `seen` counts occurrences across
    /// responses.
    pub fn apply(&self, doc: &mut Value, seen: &mut usize) {
        self.walk(doc, seen);
    }

    fn walk(&self, value: &mut Value, seen: &mut usize) {
        match value {
            Value::Object(map) => {
                if map.contains_key(&self.field) {
                    let hit = self.nth.is_none_or(|n| n == *seen);
                    *seen += 1;
                    if hit {
                        let old = map.remove(&self.field).expect("checked above");
                        match self.change {
                            Change::Rename => {
                                map.insert(format!("{}_v2", self.field), old);
                            }
                            Change::Retype => {
                                map.insert(self.field.clone(), retyped(old));
                            }
                            Change::Remove => {}
                        }
                    }
                }
                for v in map.values_mut() {
                    self.walk(v, seen);
                }
            }
            Value::Array(items) => {
                for v in items {
                    self.walk(v, seen);
                }
            }
            _ => {}
        }
    }
}

fn retyped(old: Value) -> Value {
    match old {
        Value::String(s) => s.parse::<i64>().map_or(Value::from(0), Value::from),
        Value::Number(n) => Value::String(n.to_string()),
        Value::Bool(b) => Value::String(b.to_string()),
        Value::Null => Value::from(0),
        other => Value::String(other.to_string().chars().take(8).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_nth() {
        let f = Faults {
            error_every: 3,
            rate_limit_every: 5,
            retry_after_secs: 2,
            truncate_every: 2,
            ..Faults::default()
        };
        assert_eq!(f.verdict(1), Verdict::Serve { truncate: false });
        assert_eq!(f.verdict(2), Verdict::Serve { truncate: true });
        assert_eq!(f.verdict(3), Verdict::Error(503));
        assert_eq!(f.verdict(5), Verdict::RateLimited(2));
        assert_eq!(f.verdict(15), Verdict::RateLimited(2));
    }

    #[test]
    fn drift_changes() {
        let mut doc = json!({"a": [{"id": 1, "x": "2"}, {"id": 2, "x": "3"}]});
        // `nth` counts across responses: the 4th occurrence is the second of response 2.
        let retype = Drift {
            field: "x".into(),
            change: Change::Retype,
            nth: Some(3),
        };
        let mut seen = 0;
        let mut first = doc.clone();
        retype.apply(&mut first, &mut seen);
        assert_eq!(first, doc);
        retype.apply(&mut doc, &mut seen);
        assert_eq!(doc, json!({"a": [{"id": 1, "x": "2"}, {"id": 2, "x": 3}]}));
        Drift {
            field: "id".into(),
            change: Change::Rename,
            nth: None,
        }
        .apply(&mut doc, &mut 0);
        assert_eq!(
            doc,
            json!({"a": [{"id_v2": 1, "x": "2"}, {"id_v2": 2, "x": 3}]})
        );
        Drift {
            field: "x".into(),
            change: Change::Remove,
            nth: Some(0),
        }
        .apply(&mut doc, &mut 0);
        assert_eq!(doc, json!({"a": [{"id_v2": 1}, {"id_v2": 2, "x": 3}]}));
    }
}
