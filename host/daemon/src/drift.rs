//! The drift loop in the daemon: paused accounts get `skipped` runs instead of scheduled
//! ones; when a connector version activates (install, approval, rollback — in this
//! process or, seen within a minute, another), its drift-paused accounts are re-driven
//! from their last checkpoint (trigger `redrive`) through the normal queue, caps and rate
//! limits, and its accounts with quarantined items are re-read in full (the items were
//! skipped past the cursor); an operator can also resume an account by hand.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use super::{until_true, Daemon};
use passerelle_model::pause::Pause;
use passerelle_model::run::{ErrorKind, Mode, PauseReason, Trigger};
use passerelle_service::recorder::RunOf;
use passerelle_service::requests::{QueueAsk, Submitted};
use passerelle_store::practices::Account;
use passerelle_store::queue::{Outstanding, Queued};

/// How often the daemon looks for activations made by other processes.
const RECHECK: Duration = Duration::from_secs(60);

impl Daemon {
    /// Separates the paused accounts (each with its pause) from the others.
    pub(crate) async fn take_paused(
        &self,
        accounts: Vec<Account>,
    ) -> Result<(Vec<Account>, Vec<(Account, Pause)>)> {
        let pauses: HashMap<String, Pause> = self
            .app
            .store
            .pauses(None)
            .await?
            .into_iter()
            .map(|p| (p.account_id.clone(), p))
            .collect();
        if pauses.is_empty() {
            return Ok((accounts, Vec::new()));
        }
        let (mut kept, mut paused) = (Vec::with_capacity(accounts.len()), Vec::new());
        for account in accounts {
            match pauses.get(&account.id) {
                Some(p) => paused.push((account, p.clone())),
                None => kept.push(account),
            }
        }
        Ok((kept, paused))
    }

    /// Records a `skipped` run for each paused account, with its pause and how to lift it.
    pub(crate) async fn record_paused(
        &self,
        paused: &[(Account, Pause)],
        trigger: Trigger,
    ) -> Result<usize> {
        for (account, pause) in paused {
            let run = RunOf {
                account,
                version: pause.into(),
                trigger,
                mode: Mode::Incremental,
            };
            let reason = match pause.reason {
                PauseReason::Drift => format!(
                    "paused for drift since run {} ({} {}: {}); a new version of the connector re-drives it, or `passerelle accounts resume {}`",
                    pause.run_id, pause.connector, pause.version, pause.drift, account.id
                ),
                PauseReason::Security => format!(
                    "paused by a security event in run {} ({} {}: {}); only `passerelle accounts resume {}` lifts it",
                    pause.run_id, pause.connector, pause.version, pause.drift.found, account.id
                ),
            };
            self.app
                .recorder()
                .skip(run, ErrorKind::Paused, &reason)
                .await?;
        }
        Ok(paused.len())
    }

    /// Queues a `redrive` run for every drift-paused account whose pause was recorded
    /// on another version than the one that now runs for it (its connector's active
    /// version, or a canary), incremental from its last checkpoint; and for every account
    /// with items quarantined by another version, in full (the items lie behind the
    /// cursor). Returns the runs requested.
    pub async fn redrive(&self) -> Result<Vec<(String, Submitted)>> {
        let store = &self.app.store;
        let mut paused = Vec::new();
        // A security pause waits for the operator, whatever version runs now.
        for p in store
            .pauses(None)
            .await?
            .into_iter()
            .filter(|p| p.reason == PauseReason::Drift)
        {
            if let Some(a) = self.moved_on(&p.account_id, &p.sha256).await? {
                paused.push(a);
            }
        }
        let mut quarantined = Vec::new();
        for (account_id, sha256) in store.quarantined_versions().await? {
            if let Some(a) = self.moved_on(&account_id, &sha256).await? {
                if !quarantined.iter().any(|q: &Account| q.id == a.id) {
                    quarantined.push(a);
                }
            }
        }
        let mut out = Vec::new();
        self.redrive_accounts(&paused, Outstanding::DriftPause, &mut out)
            .await?;
        self.redrive_accounts(&quarantined, Outstanding::Quarantine, &mut out)
            .await?;
        Ok(out)
    }

    /// The account, if the version that runs for it now is not `sha256`.
    async fn moved_on(&self, account_id: &str, sha256: &str) -> Result<Option<Account>> {
        let store = &self.app.store;
        let Some(account) = store.account(account_id).await? else {
            return Ok(None);
        };
        let now = store
            .connector_for(&account.connector, &account.practice_id)
            .await?;
        Ok(now.filter(|v| v.sha256 != sha256).map(|_| account))
    }

    /// Queues the re-drives of `accounts` (from the last checkpoint for a drift pause, in
    /// full for quarantined items), each only if the account still needs it when the run
    /// is inserted: a run may have settled it since [`Daemon::redrive`] looked.
    async fn redrive_accounts(
        &self,
        accounts: &[Account],
        outstanding: Outstanding,
        out: &mut Vec<(String, Submitted)>,
    ) -> Result<()> {
        if accounts.is_empty() {
            return Ok(());
        }
        let mode = match outstanding {
            Outstanding::DriftPause => Mode::Incremental,
            Outstanding::Quarantine => Mode::Full,
        };
        let ask = QueueAsk {
            only_while: Some(outstanding),
            ..QueueAsk::new(Trigger::Redrive, mode)
        };
        let (answers, _) = self.queue_runs(accounts, &ask).await?;
        let mut queued = 0;
        for (account, answer) in accounts.iter().zip(answers) {
            match answer {
                Ok(Queued::New(id)) => {
                    queued += 1;
                    out.push((account.id.clone(), Submitted::Queued(id)));
                }
                Ok(Queued::Coalesced(id)) => {
                    out.push((account.id.clone(), Submitted::Coalesced(id)))
                }
                Ok(Queued::Settled | Queued::SlotTaken | Queued::TooSoon { .. }) => {}
                Err(e) => tracing::error!(account = %account.id, "cannot re-drive: {e:#}"),
            }
        }
        if queued > 0 {
            tracing::info!(
                accounts = queued,
                %mode,
                "re-driving accounts on the connector version that now runs for them"
            );
        }
        Ok(())
    }

    /// Re-drives paused accounts at start, after every activation in this process, and
    /// every minute (activations by another process sharing the database).
    pub(crate) async fn run_redriver(self: Arc<Self>) {
        let mut stopping = self.stopping.subscribe();
        let mut activations = self.app.activations.subscribe();
        loop {
            if let Err(e) = self.redrive().await {
                if self.is_stopping() {
                    return;
                }
                tracing::error!("cannot re-drive paused accounts: {e:#}");
            }
            self.refresh_pause_gauge().await;
            tokio::select! {
                changed = activations.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(RECHECK) => {}
                _ = until_true(&mut stopping) => return,
            }
        }
    }

    /// Sets the paused-accounts gauge from the database.
    pub async fn refresh_pause_gauge(&self) {
        let Ok(pauses) = self.app.store.pauses(None).await else {
            return;
        };
        let mut counts: HashMap<String, i64> = HashMap::new();
        for p in pauses {
            *counts.entry(p.connector).or_default() += 1;
        }
        self.app.metrics.set_paused(&counts);
    }
}
