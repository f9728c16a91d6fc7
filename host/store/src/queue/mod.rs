//! The shared run queue: runs are queued, claimed and leased in the database, so any
//! number of daemons on one PostgreSQL share one queue (SQLite holds one daemon).
//!
//! - queuing coalesces in the database: one queued run per account (a unique index),
//!   and a request for an account that is queued or running answers with that run (a
//!   manual request lifts a queued run to manual, a full one makes it full);
//! - a practice's scheduled slot is taken once across daemons ([`SlotClaim`]);
//! - a daemon claims the next run it may start (`FOR UPDATE SKIP LOCKED` on PostgreSQL;
//!   SQLite's write lock serialises claims) and holds it with a lease it renews;
//! - a running run whose lease expired is interrupted and queued again ([`Store::reap`]).
//!
//! Instants are stored as RFC 3339 UTC text with milliseconds, which orders as text.

mod claim;
mod reap;

pub use claim::Claimed;
pub use reap::{ReapScope, Reaped};

use sqlx::Row;

use super::audit::Write;
use super::error::{DbContext, StoreResult};
use super::{literal, now_text, placeholders, Backend, Store};
use passerelle_model::run::{Mode, NewRun, PauseReason, Status, Trigger};

/// A practice's scheduled slot, to be taken before its runs are queued.
#[derive(Debug, Clone)]
pub struct SlotClaim<'a> {
    pub practice_id: &'a str,
    /// The slot's instant (stored text).
    pub slot: String,
}

/// How runs are queued: attempt, backoff, the scheduled slots they come from, the daemon
/// queuing them, and for "Sync now" the minimum interval between manual runs.
#[derive(Debug, Clone)]
pub struct QueueRequest<'a> {
    pub attempt: u32,
    /// A retry's backoff: not claimed before this instant (stored text).
    pub not_before: Option<String>,
    pub slots: &'a [SlotClaim<'a>],
    pub daemon: &'a str,
    /// "Sync now": refused ([`Queued::TooSoon`]) if the account had a manual run queued
    /// at or after this instant (stored text) — checked in the insert itself, so two
    /// daemons answering at once cannot both pass it.
    pub manual_since: Option<String>,
    /// A re-drive: queued only while the account still needs it — checked in the insert
    /// itself, so a run that settled the account after the caller looked (its pause
    /// lifted, its quarantined items resolved) is not followed by a needless second one.
    pub only_while: Option<Outstanding>,
}

/// What must still hold of an account for a re-drive to be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outstanding {
    /// The account is paused for drift.
    DriftPause,
    /// The account has quarantined items.
    Quarantine,
}

impl Outstanding {
    /// The condition on the account `account` (an SQL expression), for the insert's
    /// `WHERE`.
    fn condition(self, account: &str) -> String {
        match self {
            Outstanding::DriftPause => format!(
                "EXISTS (SELECT 1 FROM account_pauses WHERE account_id = {account} AND reason = '{}')",
                PauseReason::Drift.as_str()
            ),
            Outstanding::Quarantine => {
                format!("EXISTS (SELECT 1 FROM quarantined_items WHERE account_id = {account})")
            }
        }
    }
}

/// Rows per multi-row statement when queuing (7 parameters each: well under SQLite's and
/// PostgreSQL's parameter limits).
const QUEUE_ROWS_PER_STATEMENT: usize = 500;

/// What became of one queue request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Queued {
    /// Queued, as this run.
    New(i64),
    /// The account already had this run queued or running.
    Coalesced(i64),
    /// Another daemon took this practice's slot: nothing to do.
    SlotTaken,
    /// A manual run was asked for inside the minimum interval (its last one was queued
    /// at this instant).
    TooSoon { last: String },
    /// A re-drive whose account no longer needs it ([`QueueRequest::only_while`]).
    Settled,
}

/// What [`Store::queue_runs`] did: an answer per run, and the practices whose slot
/// another daemon had taken.
#[derive(Debug, Clone, Default)]
pub struct QueueOutcome {
    pub runs: Vec<Queued>,
    pub slots_taken_elsewhere: std::collections::HashSet<String>,
}

impl Store {
    /// Queues runs in one transaction (a slot shared by many practices), each coalesced
    /// with its account's queued or running run. The practices' `slots` are taken
    /// first: runs of a practice whose slot another daemon took are answered
    /// [`Queued::SlotTaken`]. `not_before`: a retry's backoff. One answer per run.
    ///
    /// A constant number of statements whatever the number of runs (per 500): the
    /// slots in one multi-row insert, the runs in another (every condition checked in
    /// it), then one read of the runs that answer for the accounts not queued anew.
    pub async fn queue_runs(
        &self,
        runs: &[NewRun<'_>],
        options: &QueueRequest<'_>,
    ) -> StoreResult<QueueOutcome> {
        let mut w = self.write().await?;
        let outcome = self.queue_runs_in(&mut w, runs, options).await?;
        w.commit().await?;
        Ok(outcome)
    }

    /// [`Store::queue_runs`] in `w` (an audited action's transaction: a "Sync now").
    pub async fn queue_runs_in(
        &self,
        w: &mut Write,
        runs: &[NewRun<'_>],
        options: &QueueRequest<'_>,
    ) -> StoreResult<QueueOutcome> {
        let QueueRequest {
            attempt,
            not_before,
            slots,
            daemon,
            manual_since,
            only_while,
        } = options;
        let now = now_text();
        let tx = &mut w.tx;
        let mut lost = std::collections::HashSet::new();
        if !slots.is_empty() {
            let mut taken = std::collections::HashSet::new();
            for chunk in slots.chunks(QUEUE_ROWS_PER_STATEMENT) {
                let values: Vec<String> = (0..chunk.len())
                    .map(|i| format!("(${}, ${}, $1, $2)", 3 + 2 * i, 4 + 2 * i))
                    .collect();
                let sql = format!(
                    "INSERT INTO scheduled_slots (practice_id, slot, daemon, taken_at)
                     VALUES {} ON CONFLICT DO NOTHING RETURNING practice_id, slot",
                    values.join(", ")
                );
                let mut query = sqlx::query(&sql).bind(*daemon).bind(&now);
                for s in chunk {
                    query = query.bind(s.practice_id).bind(&s.slot);
                }
                for row in query
                    .fetch_all(&mut **tx)
                    .await
                    .context("taking scheduled slots")?
                {
                    taken.insert((
                        row.get::<String, _>("practice_id"),
                        row.get::<String, _>("slot"),
                    ));
                }
            }
            for s in slots.iter() {
                if !taken.contains(&(s.practice_id.to_string(), s.slot.clone())) {
                    lost.insert(s.practice_id);
                }
            }
        }
        let todo: Vec<&NewRun> = runs
            .iter()
            .filter(|r| !lost.contains(r.practice_id))
            .collect();
        if self.backend == Backend::Postgres {
            // Queuing for an account is serialised across daemons: the checks below then
            // see a run another daemon queued (and maybe already claimed) a moment ago,
            // instead of racing past it. Locked in one order, so two daemons queuing
            // overlapping accounts cannot deadlock. (SQLite has one writer.)
            let mut ids: Vec<&str> = todo.iter().map(|r| r.account_id).collect();
            ids.sort_unstable();
            ids.dedup();
            for chunk in ids.chunks(QUEUE_ROWS_PER_STATEMENT) {
                let sql = format!(
                    "SELECT id FROM accounts WHERE id IN ({}) ORDER BY id FOR UPDATE",
                    placeholders(1, chunk.len())
                );
                let mut query = sqlx::query(&sql);
                for id in chunk {
                    query = query.bind(*id);
                }
                query
                    .fetch_all(&mut **tx)
                    .await
                    .context("locking the accounts to queue their runs")?;
            }
        }
        // The new runs, every condition in the insert: not running, outside the manual
        // interval, still needing it (a re-drive); one queued run per account (the
        // unique index: a conflict is a coalesced request).
        let mut new: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
        let condition = only_while.map_or_else(|| "1 = 1".into(), |o| o.condition("v.column2"));
        for chunk in todo.chunks(QUEUE_ROWS_PER_STATEMENT) {
            const FIXED: usize = 4;
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let b = FIXED + 1 + 7 * i;
                    format!(
                        "(${b}, ${}, ${}, ${}, ${}, ${}, ${})",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5,
                        b + 6
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO runs (practice_id, account_id, connector, connector_version, connector_sha256,
                    trigger, mode, status, started_at, queued_at, attempt, not_before)
                 SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7,
                    {queued}, $1, $1, $2, $3
                 FROM (VALUES {}) AS v
                 WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.account_id = v.column2 AND r.status = {running})
                   AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.account_id = v.column2 AND r.trigger = {manual}
                                   AND r.queued_at >= $4)
                   AND {condition}
                 ON CONFLICT DO NOTHING RETURNING id, account_id",
                values.join(", "),
                // Literals, not parameters: see [`crate::literal`].
                queued = literal(Status::Queued.as_str()),
                running = literal(Status::Running.as_str()),
                manual = literal(Trigger::Manual.as_str()),
            );
            let mut query = sqlx::query(&sql)
                .bind(&now)
                .bind(i64::from(*attempt))
                .bind(not_before.as_deref())
                // No interval: a bound no stored instant reaches.
                .bind(manual_since.as_deref().unwrap_or("~"));
            for run in chunk {
                query = super::runs::bind_run(query, run);
            }
            for row in query
                .fetch_all(&mut **tx)
                .await
                .context("recording queued runs")?
            {
                new.insert(row.get("account_id"), row.get("id"));
            }
        }
        // The accounts not queued anew: the run that answers for each (queued or
        // running), else why not (a re-drive no longer needed, the manual interval).
        let mut answered: std::collections::HashSet<&str> = std::collections::HashSet::new();
        let rest: Vec<&str> = todo
            .iter()
            .map(|r| r.account_id)
            .filter(|a| !new.contains_key(*a))
            .collect();
        let mut holders: std::collections::HashMap<String, (i64, String)> =
            std::collections::HashMap::new();
        let mut last_manual: std::collections::HashMap<String, String> =
            std::collections::HashMap::new();
        for chunk in rest.chunks(QUEUE_ROWS_PER_STATEMENT) {
            let sql = format!(
                "SELECT id, account_id, status FROM runs WHERE status IN ({}, {}) AND account_id IN ({})",
                literal(Status::Queued.as_str()),
                literal(Status::Running.as_str()),
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for a in chunk {
                query = query.bind(*a);
            }
            for row in query
                .fetch_all(&mut **tx)
                .await
                .context("reading the accounts' queued or running runs")?
            {
                let account: String = row.get("account_id");
                let (id, status): (i64, String) = (row.get("id"), row.get("status"));
                // A queued run answers before a running one (it is the one lifted).
                let keep = holders
                    .get(&account)
                    .is_none_or(|(_, s)| s == Status::Running.as_str());
                if keep {
                    holders.insert(account, (id, status));
                }
            }
            if only_while.is_none() {
                let sql = format!(
                    "SELECT account_id, MAX(queued_at) AS at FROM runs
                     WHERE trigger = {} AND account_id IN ({}) GROUP BY account_id",
                    literal(Trigger::Manual.as_str()),
                    placeholders(1, chunk.len())
                );
                let mut query = sqlx::query(&sql);
                for a in chunk {
                    query = query.bind(*a);
                }
                for row in query
                    .fetch_all(&mut **tx)
                    .await
                    .context("reading the accounts' last manual runs")?
                {
                    if let Some(at) = row.get::<Option<String>, _>("at") {
                        last_manual.insert(row.get("account_id"), at);
                    }
                }
            }
        }
        let mut answers = Vec::with_capacity(runs.len());
        for run in runs {
            if lost.contains(run.practice_id) {
                answers.push(Queued::SlotTaken);
                continue;
            }
            // An account asked for twice: its new run answers the first time only.
            if let Some(&id) = new.get(run.account_id) {
                if answered.insert(run.account_id) {
                    answers.push(Queued::New(id));
                } else {
                    answers.push(Queued::Coalesced(id));
                }
                continue;
            }
            match holders.get(run.account_id) {
                Some((id, status)) => {
                    if status == Status::Queued.as_str() {
                        lift(tx, *id, run.trigger, run.mode, *attempt == 1).await?;
                    }
                    answers.push(Queued::Coalesced(*id));
                }
                None if only_while.is_some() => answers.push(Queued::Settled),
                // Neither queued nor running: refused by the manual interval.
                None => answers.push(Queued::TooSoon {
                    last: last_manual.get(run.account_id).cloned().unwrap_or_default(),
                }),
            }
        }
        Ok(QueueOutcome {
            runs: answers,
            slots_taken_elsewhere: lost.into_iter().map(str::to_string).collect(),
        })
    }

    /// The account's queued or running run, if any.
    pub async fn active_run(&self, account_id: &str) -> StoreResult<Option<i64>> {
        let row = sqlx::query(&format!(
            "SELECT id FROM runs WHERE account_id = $1 AND status IN ({}, {}) ORDER BY id DESC LIMIT 1",
            literal(Status::Queued.as_str()),
            literal(Status::Running.as_str()),
        ))
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await
        .context("reading the account's active run")?;
        Ok(row.map(|r| r.get("id")))
    }

    /// For each of `accounts` that is idle (no run queued or running), when its last
    /// manual run was queued, if ever: what the minimum interval between manual runs is
    /// judged on. One statement per 500 accounts.
    pub async fn idle_last_manual(
        &self,
        accounts: &[&str],
    ) -> StoreResult<std::collections::HashMap<String, Option<String>>> {
        let mut out = std::collections::HashMap::new();
        for chunk in accounts.chunks(QUEUE_ROWS_PER_STATEMENT) {
            let sql = format!(
                "SELECT account_id,
                    MAX(CASE WHEN status IN ({}, {}) THEN 1 ELSE 0 END) AS active,
                    MAX(CASE WHEN trigger = {} THEN queued_at END) AS last_manual
                 FROM runs WHERE account_id IN ({}) GROUP BY account_id",
                literal(Status::Queued.as_str()),
                literal(Status::Running.as_str()),
                literal(Trigger::Manual.as_str()),
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for a in chunk {
                query = query.bind(*a);
            }
            let mut seen = std::collections::HashSet::new();
            for row in query
                .fetch_all(&self.pool)
                .await
                .context("reading the accounts' last manual runs")?
            {
                let account: String = row.get("account_id");
                seen.insert(account.clone());
                if row.get::<i64, _>("active") == 0 {
                    out.insert(account, row.get::<Option<String>, _>("last_manual"));
                }
            }
            for a in chunk {
                if !seen.contains(*a) {
                    out.insert(a.to_string(), None);
                }
            }
        }
        Ok(out)
    }

    /// When the account's last manual run was queued (any daemon), if ever.
    pub async fn last_manual_request(&self, account_id: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query(&format!(
            "SELECT MAX(queued_at) AS at FROM runs WHERE account_id = $1 AND trigger = {}",
            literal(Trigger::Manual.as_str())
        ))
        .bind(account_id)
        .fetch_one(&self.pool)
        .await
        .context("reading the account's last manual run")?;
        Ok(row.get::<Option<String>, _>("at"))
    }

    /// Runs waiting in the queue (all daemons).
    pub async fn queue_depth(&self) -> StoreResult<i64> {
        let row = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM runs WHERE status = {}",
            literal(Status::Queued.as_str())
        ))
        .fetch_one(&self.pool)
        .await
        .context("counting queued runs")?;
        Ok(row.get("n"))
    }

    /// The earliest backoff end among queued runs, if any waits.
    pub async fn next_not_before(&self) -> StoreResult<Option<String>> {
        let row = sqlx::query(&format!(
            "SELECT MIN(not_before) AS t FROM runs WHERE status = {} AND not_before IS NOT NULL",
            literal(Status::Queued.as_str())
        ))
        .fetch_one(&self.pool)
        .await
        .context("reading queued backoffs")?;
        Ok(row.get::<Option<String>, _>("t"))
    }

    /// The (practice, slot) pairs taken at or after `since` (stored text).
    pub async fn slots_taken_since(
        &self,
        since: &str,
    ) -> StoreResult<std::collections::HashSet<(String, String)>> {
        let rows = sqlx::query("SELECT practice_id, slot FROM scheduled_slots WHERE slot >= $1")
            .bind(since)
            .fetch_all(&self.pool)
            .await
            .context("reading taken slots")?;
        Ok(rows
            .iter()
            .map(|r| (r.get("practice_id"), r.get("slot")))
            .collect())
    }

    /// Forgets taken slots older than `before` (they can never come again).
    pub async fn prune_slots(&self, before: &str) -> StoreResult<u64> {
        let res = sqlx::query("DELETE FROM scheduled_slots WHERE slot < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .context("pruning scheduled slots")?;
        Ok(res.rows_affected())
    }
}

/// A stored value that cannot be read back, as sqlx's decoding error.
pub(super) fn decode<T>(
    v: Result<T, passerelle_model::run::UnknownValue>,
) -> Result<T, sqlx::Error> {
    v.map_err(|e| sqlx::Error::Decode(e.to_string().into()))
}

/// A queued run asked for again: a first attempt (a slot, a catch-up, "Sync now"; not
/// another retry) lifts its backoff — the work is due now, whatever Retry-After a
/// connector gave the retry waiting there; a manual request also makes it manual; a full
/// one makes it full.
async fn lift(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: i64,
    trigger: Trigger,
    mode: Mode,
    first_attempt: bool,
) -> StoreResult<()> {
    let manual = trigger == Trigger::Manual;
    let full = mode == Mode::Full;
    if !(first_attempt || manual || full) {
        return Ok(());
    }
    sqlx::query(
        "UPDATE runs SET
            not_before = CASE WHEN $2 = 1 THEN NULL ELSE not_before END,
            trigger = CASE WHEN $3 = 1 THEN $5 ELSE trigger END,
            mode = CASE WHEN $4 = 1 THEN $6 ELSE mode END
         WHERE id = $1",
    )
    .bind(id)
    .bind(i64::from(first_attempt))
    .bind(i64::from(manual))
    .bind(i64::from(full))
    .bind(Trigger::Manual.as_str())
    .bind(Mode::Full.as_str())
    .execute(&mut **tx)
    .await
    .context("lifting a queued run (backoff, manual, full)")?;
    Ok(())
}
