//! Shadow replay: before a version takes over, it is replayed on the flight recorder's
//! cassettes of its connector (the runs that drifted or failed, and the baselines), each
//! in a sandbox against a scratch store, and compared with the active version replayed
//! on the same cassette. Per cassette: the failure fixed or not, the records identical or
//! different (added, removed, changed, with the first external ids), or an error. The
//! replaying itself (a replay server, a scratch passerelle) is the kit's: it sits above
//! this crate and is handed in as a [`Replayer`] by the binary, as Spin hands a factor
//! to its runtime.
//!
//! `passerelle plugins shadow NAME VERSION` (`POST /v1/connectors/{name}/shadow`) prints
//! the report; with `plugins.shadow_gate` naming the connector, a candidate whose report
//! shows an unexpected difference (records different, or an error, on a cassette the
//! active version replays) waits for `plugins approve` instead of activating.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::replayer::{Replayed, Replayer};
use super::Cassette;
use crate::app::Passerelle;
use crate::{ServiceError, ServiceResult};
use passerelle_model::run::Status;
use passerelle_store::connectors::ConnectorVersion;

/// The newest cassettes a shadow replays, at most.
pub const MAX_CASSETTES: usize = 50;
/// External ids listed per difference, at most.
const FIRST_IDS: usize = 5;

/// What a candidate did on one cassette.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// A drifted run's cassette: the candidate reads it.
    DriftFixed,
    /// A drifted run's cassette: the candidate drifts too.
    StillDrifting,
    /// A failed run's cassette: the candidate succeeds on it.
    Fixed,
    /// A failed run's cassette: the candidate fails too.
    StillFailing,
    /// A successful run's cassette: the same records as the active version.
    Identical,
    /// A successful run's cassette: other records than the active version's.
    RecordsDifferent,
    /// The candidate could not be replayed, or ended otherwise than the cases above.
    Error,
    /// A successful run's cassette the active version does not replay (nothing to
    /// compare with).
    NoReference,
}

/// One cassette's line of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShadowCase {
    pub run_id: i64,
    pub account_id: String,
    /// Why the run kept its cassette (`drift`, `failed:<kind>`, `quarantine`, `baseline`).
    pub reason: String,
    pub verdict: Verdict,
    /// Whether this verdict blocks activation under `plugins.shadow_gate`.
    pub unexpected: bool,
    pub added: usize,
    pub removed: usize,
    pub changed: usize,
    /// The first external ids added, removed or changed.
    pub first_ids: Vec<String>,
    /// How the candidate ended when it did not succeed (`drift at $.x`, an error kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A shadow replay of one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShadowReport {
    pub connector: String,
    pub version: String,
    /// The active version it was compared with, if there is one.
    pub against: Option<String>,
    pub cases: Vec<ShadowCase>,
    /// How many cases are unexpected.
    pub unexpected: usize,
}

impl ShadowReport {
    /// One line for an approval: how many cassettes differ unexpectedly.
    pub fn summary(&self) -> String {
        format!(
            "shadow replay: {} of {} cassettes with an unexpected difference ({})",
            self.unexpected,
            self.cases.len(),
            self.cases
                .iter()
                .filter(|c| c.unexpected)
                .map(|c| format!("run {}: {}", c.run_id, verdict_text(c.verdict)))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// How a verdict reads.
pub fn verdict_text(v: Verdict) -> &'static str {
    match v {
        Verdict::DriftFixed => "drift fixed",
        Verdict::StillDrifting => "still drifting",
        Verdict::Fixed => "fixed",
        Verdict::StillFailing => "still failing",
        Verdict::Identical => "records identical",
        Verdict::RecordsDifferent => "records different",
        Verdict::Error => "error",
        Verdict::NoReference => "no reference",
    }
}

impl Passerelle {
    /// Hands the process the kit's replayer (the binary does, at start).
    pub fn set_replayer(&self, replayer: Arc<dyn Replayer>) {
        let _ = self.replayer.set(replayer);
    }

    /// The shadow report of a kept version of `name` (`plugins shadow`). Audited
    /// (`connector.shadow`): it reads the connector's cassettes.
    pub async fn shadow(&self, name: &str, version: &str) -> ServiceResult<ShadowReport> {
        let row = self
            .store
            .connector_version(name, version)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("no version {version} of `{name}`")))?;
        let bytes = self.component_bytes(&row).await?;
        self.shadow_component(name, version, &bytes).await
    }

    /// The shadow report of a component not installed (`plugins validate --shadow`), as
    /// version `version` of `name`. Audited (`connector.shadow`).
    pub async fn shadow_component(
        &self,
        name: &str,
        version: &str,
        bytes: &[u8],
    ) -> ServiceResult<ShadowReport> {
        let report = self.shadow_bytes(name, version, bytes).await?;
        self.audit(
            "connector.shadow",
            name,
            serde_json::json!({"version": version, "cassettes": report.cases.len(),
                "unexpected": report.unexpected}),
        )
        .await?;
        Ok(report)
    }

    /// The shadow report of `bytes` as version `version` of `name`, against the active
    /// version (installation calls it before keeping a candidate).
    pub(crate) async fn shadow_bytes(
        &self,
        name: &str,
        version: &str,
        bytes: &[u8],
    ) -> ServiceResult<ShadowReport> {
        let replayer = self.replayer.get().ok_or_else(|| {
            ServiceError::Internal(anyhow::anyhow!(
                "shadow replay is not available in this process"
            ))
        })?;
        let active = self.store.active_connector(name).await?;
        let active_bytes = match &active {
            Some(a) if a.version != version => Some(self.component_bytes(a).await?),
            _ => None,
        };
        let mut cases = Vec::new();
        for meta in self
            .store
            .cassettes(Some(name))
            .await?
            .into_iter()
            .take(MAX_CASSETTES)
        {
            let Some((meta, text)) = self.store.open_cassette(meta.run_id).await? else {
                continue; // removed by retention meanwhile
            };
            let cassette: Cassette = serde_json::from_str(&text).map_err(|e| {
                passerelle_store::error::StoreError::Corrupt {
                    what: "run cassette",
                    detail: e.to_string(),
                }
            })?;
            let candidate = replayer.replay(bytes, &cassette).await;
            let reference = match (&active_bytes, meta.reason.as_str()) {
                (Some(active), "baseline" | "quarantine") => {
                    Some(replayer.replay(active, &cassette).await)
                }
                _ => None,
            };
            cases.push(judge(
                &meta.reason,
                candidate,
                reference,
                meta.run_id,
                meta.account_id,
            ));
        }
        let unexpected = cases.iter().filter(|c| c.unexpected).count();
        Ok(ShadowReport {
            connector: name.to_string(),
            version: version.to_string(),
            against: active.map(|a| a.version),
            cases,
            unexpected,
        })
    }

    /// A kept version's bytes: this process's file when it holds them, else the store's.
    async fn component_bytes(&self, row: &ConnectorVersion) -> ServiceResult<Vec<u8>> {
        if let Ok(bytes) = std::fs::read(&row.path) {
            if passerelle_model::sha256_hex(&bytes) == row.sha256 {
                return Ok(bytes);
            }
        }
        self.store.component(&row.sha256).await?.ok_or_else(|| {
            ServiceError::not_found(format!(
                "the bytes of {} {} are neither in {} nor in the database",
                row.name, row.version, row.path
            ))
        })
    }
}

fn ended(r: &Replayed) -> String {
    match (r.status, r.error_kind, &r.detail) {
        (Some(Status::Drift), _, Some(path)) => format!("drift at {path}"),
        (status, kind, detail) => format!(
            "{}{}{}",
            status.map(|s| s.to_string()).unwrap_or_default(),
            kind.map(|k| format!(" {}", k.as_str())).unwrap_or_default(),
            detail
                .as_ref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        ),
    }
}

/// The verdict on one cassette.
fn judge(
    reason: &str,
    candidate: anyhow::Result<Replayed>,
    reference: Option<anyhow::Result<Replayed>>,
    run_id: i64,
    account_id: String,
) -> ShadowCase {
    let mut case = ShadowCase {
        run_id,
        account_id,
        reason: reason.to_string(),
        verdict: Verdict::Error,
        unexpected: false,
        added: 0,
        removed: 0,
        changed: 0,
        first_ids: Vec::new(),
        detail: None,
    };
    let candidate = match candidate {
        Ok(c) => c,
        Err(e) => {
            case.detail = Some(format!("{e:#}"));
            case.unexpected = true;
            return case;
        }
    };
    let succeeded = candidate.status == Some(Status::Succeeded);
    if !succeeded {
        case.detail = Some(ended(&candidate));
    }
    match reason {
        "drift" => {
            case.verdict = match candidate.status {
                Some(Status::Succeeded) => Verdict::DriftFixed,
                Some(Status::Drift) => Verdict::StillDrifting,
                _ => Verdict::Error,
            };
        }
        r if r.starts_with("failed") => {
            case.verdict = if succeeded {
                Verdict::Fixed
            } else {
                Verdict::StillFailing
            };
        }
        _ => match reference {
            Some(Ok(reference)) if reference.status == Some(Status::Succeeded) => {
                if !succeeded {
                    case.verdict = Verdict::Error;
                    case.unexpected = true;
                    return case;
                }
                let mut first = Vec::new();
                let (a1, r1, c1) =
                    differ(&reference.appointments, &candidate.appointments, &mut first);
                let (a2, r2, c2) = differ(&reference.slots, &candidate.slots, &mut first);
                (case.added, case.removed, case.changed) = (a1 + a2, r1 + r2, c1 + c2);
                case.first_ids = first;
                case.verdict = if case.added + case.removed + case.changed == 0 {
                    Verdict::Identical
                } else {
                    Verdict::RecordsDifferent
                };
                case.unexpected = case.verdict == Verdict::RecordsDifferent;
            }
            _ if !succeeded => {
                case.verdict = Verdict::Error;
                case.unexpected = true;
            }
            _ => case.verdict = Verdict::NoReference,
        },
    }
    case
}

/// Added, removed and changed keys from `before` to `after`; the first few into `first`.
fn differ(
    before: &BTreeMap<String, serde_json::Value>,
    after: &BTreeMap<String, serde_json::Value>,
    first: &mut Vec<String>,
) -> (usize, usize, usize) {
    let (mut added, mut removed, mut changed) = (0, 0, 0);
    let note = |id: &String, first: &mut Vec<String>| {
        if first.len() < FIRST_IDS {
            first.push(id.clone());
        }
    };
    for (id, record) in after {
        match before.get(id) {
            None => {
                added += 1;
                note(id, first);
            }
            Some(old) if old != record => {
                changed += 1;
                note(id, first);
            }
            Some(_) => {}
        }
    }
    for id in before.keys().filter(|id| !after.contains_key(*id)) {
        removed += 1;
        note(id, first);
    }
    (added, removed, changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replayed(status: Status, appointments: &[(&str, i64)]) -> Replayed {
        Replayed {
            status: Some(status),
            appointments: appointments
                .iter()
                .map(|(id, v)| (id.to_string(), serde_json::json!({ "v": v })))
                .collect(),
            ..Replayed::default()
        }
    }

    #[test]
    fn verdicts_by_reason_and_records() {
        let drift = |s| judge("drift", Ok(replayed(s, &[])), None, 1, "a".into()).verdict;
        assert_eq!(drift(Status::Succeeded), Verdict::DriftFixed);
        assert_eq!(drift(Status::Drift), Verdict::StillDrifting);
        let base = |candidate: Replayed| {
            judge(
                "baseline",
                Ok(candidate),
                Some(Ok(replayed(
                    Status::Succeeded,
                    &[("x", 1), ("y", 2), ("z", 3)],
                ))),
                2,
                "a".into(),
            )
        };
        let same = base(replayed(Status::Succeeded, &[("x", 1), ("y", 2), ("z", 3)]));
        assert_eq!((same.verdict, same.unexpected), (Verdict::Identical, false));
        let other = base(replayed(Status::Succeeded, &[("x", 1), ("y", 9), ("w", 4)]));
        assert_eq!(
            (other.verdict, other.unexpected),
            (Verdict::RecordsDifferent, true)
        );
        assert_eq!((other.added, other.removed, other.changed), (1, 1, 1));
        assert_eq!(other.first_ids, ["w", "y", "z"]);
        let failing = base(replayed(Status::Failed, &[]));
        assert_eq!(
            (failing.verdict, failing.unexpected),
            (Verdict::Error, true)
        );
        let err = judge(
            "baseline",
            Err(anyhow::anyhow!("boom")),
            None,
            3,
            "a".into(),
        );
        assert!(err.unexpected && err.detail.as_deref() == Some("boom"));
    }
}
