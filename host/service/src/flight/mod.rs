//! The flight recorder: every run keeps its HTTP exchanges in memory (at most
//! `per_account_kib` of bodies, charged to the run's memory budget; what does not fit is
//! left out and the cassette marked truncated); a run that
//! ends `drift`, fails in a way its connector may be at fault for, or sets items aside
//! under the `quarantine` policy keeps them — redacted ([`redact`]), sealed with the
//! secrets keyring, within `[flight_recorder]`'s retention — as a cassette attached to
//! the run. Reading one is audited (`run.cassette.read`); `passerelle runs cassette RUN
//! --out DIR` writes it in the kit's cassette format, so `connector test` replays the
//! failing run offline.

pub mod cassette;
pub mod redact;
pub mod replayer;
pub mod shadow;
pub mod shape;

pub use cassette::{Cassette, CassetteExchange, CassetteReplay};

use serde::{Deserialize, Serialize};

use crate::app::Passerelle;
use crate::{ServiceError, ServiceResult};
use passerelle_model::run::{ErrorKind, Status};
use passerelle_runtime::capabilities::http::Recorded;
use passerelle_runtime::scrub::Scrubber;
use passerelle_store::cassettes::CassetteMeta;
use passerelle_store::practices::Account;

/// The reason a successful run keeps its exchanges as its account's baseline.
pub const BASELINE: &str = passerelle_store::cassettes::BASELINE;

/// Why a run keeps its exchanges, if it does: `drift`, `failed:<kind>` for the kinds a
/// connector may be at fault for, `quarantine` when it set items aside, `baseline` for a
/// successful run of a sampled account.
pub fn reason_to_keep(
    status: Status,
    kind: Option<ErrorKind>,
    quarantined: i64,
    baseline: bool,
) -> Option<String> {
    match (status, kind) {
        (Status::Drift, _) => Some("drift".into()),
        (
            Status::Failed,
            Some(
                k @ (ErrorKind::SchemaDrift
                | ErrorKind::Internal
                | ErrorKind::LimitExceeded
                | ErrorKind::Trap
                | ErrorKind::Unauthorized),
            ),
        ) => Some(format!("failed:{}", k.as_str())),
        _ if quarantined > 0 => Some("quarantine".into()),
        (Status::Succeeded, _) if baseline => Some(BASELINE.into()),
        _ => None,
    }
}

/// What the flight recorder needs of an ended run to keep its exchanges.
pub(crate) struct Ended<'a> {
    pub account: &'a Account,
    pub run_id: i64,
    pub connector: &'a str,
    pub version: &'a str,
    pub reason: String,
    pub replay: CassetteReplay,
    pub exchanges: Vec<Recorded>,
    /// Exchanges were left out of the recording.
    pub truncated: bool,
    pub scrubber: &'a mut Scrubber,
}

impl Passerelle {
    /// Keeps an ended run's exchanges as its cassette. Never fails the run: a cassette
    /// that cannot be kept is logged (without its content) and dropped.
    pub(crate) async fn keep_flight(&self, ended: Ended<'_>) {
        if ended.exchanges.is_empty() {
            return;
        }
        let run_id = ended.run_id;
        if let Err(e) = self.try_keep_flight(ended).await {
            tracing::warn!(run = run_id, error = %e, "the run's cassette was not kept");
        }
    }

    async fn try_keep_flight(&self, ended: Ended<'_>) -> ServiceResult<()> {
        // The patients the run stored before it failed get stand-ins of their shape;
        // those it emitted and lost are known to its scrubber.
        let patients: Vec<_> = self
            .store
            .appointments_of_run(&ended.account.id, ended.run_id)
            .await?
            .into_iter()
            .filter_map(|a| a.record.patient)
            .collect();
        let mut exchanges = redact::redact(
            &ended.exchanges,
            redact::Redaction {
                patients: &patients,
                names_by_member: true,
                scrubber: Some(ended.scrubber),
            },
        );
        if ended.reason != BASELINE {
            exchanges.extend(self.baseline_exchanges(&ended.account.id).await?);
        }
        let cassette = Cassette {
            replay: ended.replay,
            exchanges,
            truncated: ended.truncated,
        };
        let text = serde_json::to_string(&cassette).expect("serialisable");
        let meta = CassetteMeta {
            run_id: ended.run_id,
            account_id: ended.account.id.clone(),
            practice_id: ended.account.practice_id.clone(),
            connector: ended.connector.to_string(),
            version: ended.version.to_string(),
            reason: ended.reason,
            exchanges: cassette.exchanges.len() as i64,
            bytes: text.len() as i64,
            recorded_at: String::new(),
        };
        let removed = self
            .store
            .keep_cassette(
                &meta,
                &text,
                self.config.flight_recorder.retention(chrono::Utc::now()),
            )
            .await?;
        tracing::info!(
            run = meta.run_id,
            reason = %meta.reason,
            exchanges = meta.exchanges,
            bytes = meta.bytes,
            removed,
            "the run's exchanges were kept as a cassette"
        );
        Ok(())
    }

    /// The exchanges of the account's baseline, if it keeps one, each noted as such.
    async fn baseline_exchanges(&self, account: &str) -> ServiceResult<Vec<CassetteExchange>> {
        let Some(run_id) = self.store.baseline_of(account).await? else {
            return Ok(Vec::new());
        };
        let Some((_, text)) = self.store.open_cassette(run_id).await? else {
            return Ok(Vec::new());
        };
        let baseline: Cassette = serde_json::from_str(&text).map_err(|e| {
            passerelle_store::error::StoreError::Corrupt {
                what: "run cassette",
                detail: e.to_string(),
            }
        })?;
        Ok(baseline
            .exchanges
            .into_iter()
            .filter(|e| e.note.is_none())
            .map(|e| CassetteExchange {
                note: Some(format!("baseline run {run_id}")),
                ..e
            })
            .collect())
    }

    /// What is known of a run's cassette without opening it (none: nothing was kept,
    /// or retention removed it).
    pub async fn run_cassette_meta(&self, run_id: i64) -> ServiceResult<Option<CassetteMeta>> {
        Ok(self.store.cassette_meta(run_id).await?)
    }

    /// The kept cassettes, of one connector or all, newest first.
    pub async fn run_cassettes(&self, connector: Option<&str>) -> ServiceResult<Vec<CassetteMeta>> {
        Ok(self.store.cassettes(connector).await?)
    }

    /// A run's cassette, opened: the run's answers from its platform, redacted. Needs
    /// `patients:read`; the read is on the audit trail (`run.cassette.read`).
    pub async fn run_cassette(&self, run_id: i64) -> ServiceResult<RunCassette> {
        crate::principal::require(
            crate::principal::Scope::PatientsRead,
            "reading a run's cassette",
        )?;
        let run = self.run(run_id).await?;
        let Some((meta, text)) = self.store.open_cassette(run.id).await? else {
            return Err(ServiceError::not_found(format!(
                "run {} kept no cassette (only a run that drifts, fails in a way its connector may be at fault for, or quarantines items keeps one; the flight recorder may be off, or retention removed it)",
                run.id
            )));
        };
        let cassette: Cassette = serde_json::from_str(&text).map_err(|e| {
            passerelle_store::error::StoreError::Corrupt {
                what: "run cassette",
                detail: e.to_string(),
            }
        })?;
        self.audit(
            "run.cassette.read",
            &run.account_id,
            serde_json::json!({"run": run.id, "exchanges": meta.exchanges, "bytes": meta.bytes}),
        )
        .await?;
        Ok(RunCassette {
            run_id: meta.run_id,
            account_id: meta.account_id,
            connector: meta.connector,
            version: meta.version,
            reason: meta.reason,
            recorded_at: meta.recorded_at,
            cassette,
        })
    }
}

/// A run's cassette as the API and the CLI hand it out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunCassette {
    pub run_id: i64,
    pub account_id: String,
    pub connector: String,
    pub version: String,
    /// Why the run kept it: `drift`, `failed:<error kind>`, `quarantine`.
    pub reason: String,
    pub recorded_at: String,
    pub cassette: Cassette,
}
