//! The kit's [`Replayer`] for the service's shadow replay: each replay is a bench — the
//! component installed in a scratch passerelle (temporary data directory, SQLite), the
//! cassette served by a replay server on loopback — one full run at the cassette's clock,
//! window and settings — incremental from its cursor when the recorded run was — with a
//! stand-in for each secret the manifest declares (a recorded cassette holds none).

use futures::future::BoxFuture;

use super::cassette;
use super::harness::{Bench, BenchOptions, Target};
use super::record::write_cassette;
use passerelle_model::run::Mode;
use passerelle_service::flight::replayer::{Replayed, Replayer};
use passerelle_service::flight::Cassette;

/// Replays on a scratch bench.
#[derive(Debug, Clone, Copy, Default)]
pub struct BenchReplayer;

impl Replayer for BenchReplayer {
    fn replay<'a>(
        &'a self,
        component: &'a [u8],
        recorded: &'a Cassette,
    ) -> BoxFuture<'a, anyhow::Result<Replayed>> {
        Box::pin(async move {
            let dir = tempfile::tempdir()?;
            let file = dir.path().join("candidate.wasm");
            std::fs::write(&file, component)?;
            let folder = dir.path().join("cassette");
            write_cassette(&folder, recorded, "passerelle shadow replay")?;
            let loaded = cassette::Cassette::load(&folder, &[])?;
            let options = BenchOptions::default().over(&loaded.replay);
            let mut bench = Bench::open(&file, Target::Replay(loaded), options).await?;
            bench.options.secrets = bench
                .manifest
                .secrets
                .iter()
                .map(|s| (s.name.clone(), format!("shadow-{}", s.name)))
                .collect();
            let account = bench.new_account().await?;
            // As the recorded run ran: an incremental one from its cursor.
            let mode = match recorded.replay.mode.as_deref() {
                Some("incremental") => Mode::Incremental,
                _ => Mode::Full,
            };
            let outcome = bench.run(&account, mode).await?;
            let key = |v: &serde_json::Value, field: &str| {
                v.get(field)
                    .and_then(|x| x.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            Ok(Replayed {
                status: Some(outcome.run.status),
                error_kind: outcome.run.error_kind,
                detail: match &outcome.run.drift {
                    Some(d) => Some(d.path.clone()),
                    None => outcome.run.error_detail.clone(),
                },
                appointments: outcome
                    .records
                    .appointments
                    .into_iter()
                    .map(|a| (key(&a, "external_id"), a))
                    .collect(),
                slots: outcome
                    .records
                    .slots
                    .into_iter()
                    .map(|s| {
                        (
                            format!("{} {}", key(&s, "external_id"), key(&s, "starts_at")),
                            s,
                        )
                    })
                    .collect(),
            })
        })
    }
}
