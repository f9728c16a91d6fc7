//! Requests for runs, one rule each, whoever asks: runs queued for the daemons (scheduled
//! slots, retries, re-drives, catch-up — each coalesced with the account's queued or
//! running run), "Sync now" (the minimum interval between manual runs, coalescing, the
//! audit entry) and a resume; and the same "Sync now" and resume done here in the
//! foreground by the command line without a daemon.
//!
//! The queue is the database ([`passerelle_store::queue`]); a new queued run is announced
//! in this process ([`Passerelle::queued`], which wakes the daemon's workers) and to the
//! other daemons (`NOTIFY`).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::app::Passerelle;
use crate::plugins::connector_not_installed;
use crate::recorder::RunOf;
use crate::runs::{Requested, Resumed, SyncRequest};
use crate::sync::SyncOptions;
use crate::{ServiceError, ServiceResult};
use passerelle_model::run::{Mode, Run, Trigger};
use passerelle_store::connectors::ConnectorVersion;
use passerelle_store::notify::Change;
use passerelle_store::practices::Account;
use passerelle_store::queue::{Outstanding, QueueRequest, Queued, SlotClaim};
use passerelle_store::runs::time_text;

/// What to queue: the run's trigger, mode and attempt, a retry's backoff, the scheduled
/// slots it comes from (taken in the same transaction, by `owner`), for "Sync now" the
/// minimum interval between manual runs, for a re-drive what must still hold.
#[derive(Debug, Clone, Copy)]
pub struct QueueAsk<'a> {
    pub trigger: Trigger,
    pub mode: Mode,
    pub attempt: u32,
    pub delay: Option<Duration>,
    pub slots: &'a [SlotClaim<'a>],
    /// Who takes the slots (a daemon's id).
    pub owner: &'a str,
    pub manual_interval: Option<Duration>,
    pub only_while: Option<Outstanding>,
}

impl<'a> QueueAsk<'a> {
    /// A first attempt of `trigger` in `mode`, with no slot and no condition.
    pub fn new(trigger: Trigger, mode: Mode) -> QueueAsk<'a> {
        QueueAsk {
            trigger,
            mode,
            attempt: 1,
            delay: None,
            slots: &[],
            owner: "",
            manual_interval: None,
            only_while: None,
        }
    }
}

/// What became of a request for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    /// Queued, as this run.
    Queued(i64),
    /// The account already had this run queued or running.
    Coalesced(i64),
}

impl Submitted {
    /// The run that answers: the new one, or the one joined.
    pub fn run_id(&self) -> i64 {
        match self {
            Submitted::Queued(id) | Submitted::Coalesced(id) => *id,
        }
    }
}

/// Answers per account, and the practices whose slot another daemon took.
pub type QueueAnswers = (Vec<ServiceResult<Queued>>, HashSet<String>);

impl Passerelle {
    /// The minimum interval between two manual runs of an account.
    fn manual_interval(&self) -> Duration {
        Duration::from_secs(self.config.daemon.manual_min_interval_secs)
    }

    /// Queues runs of `accounts` in the database (taking `ask.slots` first), each
    /// coalesced with its account's queued or running run; announces new ones. An answer
    /// per account (an account whose connector is not installed gets its error), and
    /// the practices whose slot another daemon took.
    pub async fn queue_runs(
        &self,
        accounts: &[Account],
        ask: &QueueAsk<'_>,
    ) -> ServiceResult<QueueAnswers> {
        let (answers, any_new, _) = self.queue_runs_in(false, accounts, ask).await?;
        if any_new {
            self.announce(Change::Queued).await;
        }
        Ok(answers)
    }

    /// [`Self::queue_runs`], announcing nothing; whether a run is new. `audited`: the
    /// runs are queued in an audited action's transaction, begun once the reads are
    /// done (a read inside it would wait for a pooled connection while holding the
    /// write lock others wait for) and returned for the caller to commit, then announce.
    async fn queue_runs_in(
        &self,
        audited: bool,
        accounts: &[Account],
        ask: &QueueAsk<'_>,
    ) -> ServiceResult<(QueueAnswers, bool, Option<passerelle_store::audit::Write>)> {
        let mut versions: HashMap<&str, Option<ConnectorVersion>> = HashMap::new();
        let mut answers: Vec<Option<ServiceResult<Queued>>> = Vec::with_capacity(accounts.len());
        let mut todo = Vec::new();
        for (i, account) in accounts.iter().enumerate() {
            if !versions.contains_key(account.connector.as_str()) {
                let v = self.store.active_connector(&account.connector).await?;
                versions.insert(&account.connector, v);
            }
            if versions[account.connector.as_str()].is_some() {
                todo.push(i);
                answers.push(None);
            } else {
                answers.push(Some(Err(connector_not_installed(
                    &account.connector,
                    &account.id,
                ))));
            }
        }
        // The row names the version active now; the run records the one it starts on.
        let rows: Vec<RunOf> = todo
            .iter()
            .map(|&i| {
                let account = &accounts[i];
                let version = versions[account.connector.as_str()].as_ref().expect("kept");
                RunOf {
                    account,
                    version: version.into(),
                    trigger: ask.trigger,
                    mode: ask.mode,
                }
            })
            .collect();
        let now = Utc::now();
        let request = QueueRequest {
            attempt: ask.attempt,
            not_before: ask
                .delay
                .map(|d| time_text(now + chrono::Duration::from_std(d).unwrap_or_default())),
            slots: ask.slots,
            daemon: ask.owner,
            manual_since: ask
                .manual_interval
                .map(|min| time_text(now - chrono::Duration::from_std(min).unwrap_or_default())),
            only_while: ask.only_while,
        };
        let mut w = match audited {
            true => Some(self.audited().await?),
            false => None,
        };
        let outcome = match &mut w {
            Some(w) => self.recorder().queue_in(w, &rows, &request).await?,
            None => self.recorder().queue(&rows, &request).await?,
        };
        let any_new = outcome.runs.iter().any(|q| matches!(q, Queued::New(_)));
        for (&i, q) in todo.iter().zip(outcome.runs) {
            answers[i] = Some(Ok(q));
        }
        Ok((
            (
                answers
                    .into_iter()
                    .map(|a| a.expect("every account answered"))
                    .collect(),
                outcome.slots_taken_elsewhere,
            ),
            any_new,
            w,
        ))
    }

    /// Queues a run of each of `accounts` (a first attempt, or a retry after `delay`),
    /// or joins its queued or running run. One answer per account, in order.
    pub async fn request_runs(
        &self,
        accounts: &[Account],
        ask: &QueueAsk<'_>,
    ) -> ServiceResult<Vec<ServiceResult<Submitted>>> {
        let (answers, _) = self.queue_runs(accounts, ask).await?;
        Ok(answers
            .into_iter()
            .zip(accounts)
            .map(|(a, account)| a.and_then(|q| self.submitted(&account.id, q)))
            .collect())
    }

    /// A queue answer as the caller sees it (no slot was taken).
    pub fn submitted(&self, account_id: &str, queued: Queued) -> ServiceResult<Submitted> {
        match queued {
            Queued::New(id) => Ok(Submitted::Queued(id)),
            Queued::Coalesced(id) => Ok(Submitted::Coalesced(id)),
            Queued::SlotTaken => Err(ServiceError::Conflict {
                code: "slot_taken",
                message: "another daemon took this scheduled slot".into(),
            }),
            Queued::Settled => Err(ServiceError::Conflict {
                code: "settled",
                message: format!("account `{account_id}` no longer needs a re-drive"),
            }),
            Queued::TooSoon { last } => Err(too_soon(account_id, &last, self.manual_interval())),
        }
    }

    /// The accounts a manual sync of `practice_id` covers, refused as a whole if one
    /// that would get a new run is inside its minimum interval between manual runs (a
    /// queued or running one is simply joined). The last manual request is read from
    /// the database: every daemon and every command line sees the same.
    async fn manual_accounts(
        &self,
        practice_id: &str,
        request: &SyncRequest,
    ) -> ServiceResult<Vec<Account>> {
        let accounts = self
            .accounts_to_sync(practice_id, request.account.as_deref())
            .await?;
        let min = self.manual_interval();
        let now = Utc::now();
        let ids: Vec<&str> = accounts.iter().map(|a| a.id.as_str()).collect();
        let idle = self.store.idle_last_manual(&ids).await?;
        for a in &accounts {
            let Some(Some(last)) = idle.get(&a.id) else {
                continue;
            };
            let Ok(last) = DateTime::parse_from_rfc3339(last) else {
                continue;
            };
            let elapsed = (now - last.with_timezone(&Utc))
                .to_std()
                .unwrap_or_default();
            if elapsed < min {
                return Err(too_soon(&a.id, &time_text(last.with_timezone(&Utc)), min));
            }
        }
        Ok(accounts)
    }

    /// "Sync now" for a practice (all its accounts, or one), queued for the daemons: a
    /// queued or running run of an account is returned (coalescing); a new one is
    /// refused inside the account's minimum interval between manual runs (checked again
    /// in the insert, so two daemons answering at once cannot both pass it). Audited.
    pub async fn sync_now(
        &self,
        practice_id: &str,
        request: &SyncRequest,
    ) -> ServiceResult<Vec<Requested>> {
        let accounts = self.manual_accounts(practice_id, request).await?;
        let ask = QueueAsk {
            manual_interval: Some(self.manual_interval()),
            ..QueueAsk::new(Trigger::Manual, request.mode())
        };
        // Every account in one queueing (a constant number of statements), committed
        // with the request's audit entry: both or neither.
        let ((answers, _), any_new, w) = self.queue_runs_in(true, &accounts, &ask).await?;
        let w = w.expect("an audited queueing returns its transaction");
        let mut out = Vec::with_capacity(accounts.len());
        for (a, answer) in accounts.iter().zip(answers) {
            let submitted = answer.and_then(|q| self.submitted(&a.id, q))?;
            out.push(Requested {
                account_id: a.id.clone(),
                run_id: submitted.run_id(),
                coalesced: matches!(submitted, Submitted::Coalesced(_)),
            });
        }
        self.commit_audited(
            w,
            "sync.request",
            practice_id,
            sync_detail(request, out.iter().map(|r| r.run_id)),
        )
        .await?;
        if any_new {
            self.announce(Change::Queued).await;
        }
        Ok(out)
    }

    /// "Sync now" done here, in the foreground, one account after the other (the
    /// command line without a daemon): the same minimum interval and audit entry as
    /// [`Self::sync_now`]; an account running elsewhere is refused (`already-running`:
    /// its run cannot be done here). `each` hears of each account before its run.
    pub async fn sync_here(
        &self,
        practice_id: &str,
        request: &SyncRequest,
        each: impl Fn(usize, usize, &Account),
    ) -> ServiceResult<Vec<Run>> {
        let accounts = self.manual_accounts(practice_id, request).await?;
        let options = SyncOptions {
            trigger: Trigger::Manual,
            mode: request.mode(),
            now: None,
            record: None,
        };
        let mut runs = Vec::new();
        for (i, account) in accounts.iter().enumerate() {
            each(i, accounts.len(), account);
            runs.push(self.sync_account(account, options.clone()).await?);
        }
        self.audit_sync(practice_id, request, runs.iter().map(|r| r.id))
            .await?;
        Ok(runs)
    }

    /// The audit entry of a manual sync done here: appended once its runs ended (they
    /// each commit on their own; the entry says what was done).
    async fn audit_sync(
        &self,
        practice_id: &str,
        request: &SyncRequest,
        runs: impl Iterator<Item = i64>,
    ) -> ServiceResult<()> {
        self.audit("sync.request", practice_id, sync_detail(request, runs))
            .await
    }

    /// Lifts an account's pause by hand and queues a `redrive` run from its last
    /// checkpoint (or joins its queued or running run).
    pub async fn resume(&self, id: &str) -> ServiceResult<Resumed> {
        let account = self.lift_pause(id).await?;
        let submitted = self
            .request_runs(
                std::slice::from_ref(&account),
                &QueueAsk::new(Trigger::Redrive, Mode::Incremental),
            )
            .await?
            .pop()
            .expect("one answer per account")?;
        Ok(Resumed {
            account_id: id.to_string(),
            run_id: submitted.run_id(),
            coalesced: matches!(submitted, Submitted::Coalesced(_)),
        })
    }

    /// Lifts an account's pause and re-drives it here from its last checkpoint.
    pub async fn resume_here(&self, id: &str) -> ServiceResult<Run> {
        let account = self.lift_pause(id).await?;
        let options = SyncOptions {
            trigger: Trigger::Redrive,
            mode: Mode::Incremental,
            now: None,
            record: None,
        };
        self.sync_account(&account, options).await
    }
}

/// "Sync now" refused: the account's last manual run was queued at `last`, less than
/// `min` ago.
fn too_soon(account_id: &str, last: &str, min: Duration) -> ServiceError {
    let elapsed = DateTime::parse_from_rfc3339(last)
        .ok()
        .and_then(|t| (Utc::now() - t.with_timezone(&Utc)).to_std().ok())
        .unwrap_or_default();
    let retry_after_secs = min.saturating_sub(elapsed).as_secs_f64().ceil().max(1.0) as u64;
    ServiceError::TooSoon {
        message: format!(
            "a manual sync of account `{account_id}` was requested less than {} s ago; retry in {retry_after_secs} s",
            min.as_secs()
        ),
        retry_after_secs,
    }
}

/// What a manual sync's audit entry says: the account asked for (or all), the mode, the
/// runs that answer.
fn sync_detail(request: &SyncRequest, runs: impl Iterator<Item = i64>) -> serde_json::Value {
    serde_json::json!({"account": request.account, "full": request.full,
        "runs": runs.collect::<Vec<_>>()})
}
