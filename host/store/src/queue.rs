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

use sqlx::Row;

use super::error::{is_unique_violation, DbContext, StoreResult};
use super::{now_text, placeholders, Backend, Store};
use passerelle_model::run::{ErrorKind, Mode, NewRun, PauseReason, Run, Status, Trigger};

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
    /// The condition on account `$2`, for the insert's `WHERE`.
    fn condition(self) -> String {
        match self {
            Outstanding::DriftPause => format!(
                "EXISTS (SELECT 1 FROM account_pauses WHERE account_id = $2 AND reason = '{}')",
                PauseReason::Drift.as_str()
            ),
            Outstanding::Quarantine => {
                "EXISTS (SELECT 1 FROM quarantined_items WHERE account_id = $2)".into()
            }
        }
    }
}

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

/// A run a daemon has claimed (status `running`, owned by it).
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub run_id: i64,
    pub practice_id: String,
    pub account_id: String,
    pub connector: String,
    pub trigger: Trigger,
    pub mode: Mode,
    pub attempt: u32,
}

/// A running run whose daemon stopped renewing its lease, closed by [`Store::reap`].
#[derive(Debug, Clone, PartialEq)]
pub struct Reaped {
    pub run_id: i64,
    /// The run as recorded once closed.
    pub run: Option<Run>,
    pub account_id: String,
    pub owner: String,
    /// The run queued to do its work again, if it was (not past the attempts allowed,
    /// and the account had none queued already).
    pub requeued: Option<i64>,
}

/// Which running runs [`Store::reap`] closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReapScope {
    /// Leases that expired.
    Expired,
    /// Every leased run: at the start of the only daemon a SQLite database can have
    /// (it holds the lock, so the runs' daemon is gone).
    AllLeased,
}

impl Store {
    /// Queues runs in one transaction (a slot shared by many practices), each coalesced
    /// with its account's queued or running run. The practices' `slots` are taken
    /// first: runs of a practice whose slot another daemon took are answered
    /// [`Queued::SlotTaken`]. `not_before`: a retry's backoff. One answer per run.
    pub async fn queue_runs(
        &self,
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
        let insert = format!(
            "INSERT INTO runs (practice_id, account_id, connector, connector_version, connector_sha256,
                trigger, mode, status, started_at, queued_at, attempt, not_before)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11
             WHERE NOT EXISTS (SELECT 1 FROM runs WHERE account_id = $2 AND status = $12)
               AND NOT EXISTS (SELECT 1 FROM runs WHERE account_id = $2 AND trigger = $13
                               AND queued_at >= $14)
               AND {}
             ON CONFLICT DO NOTHING RETURNING id",
            only_while.map_or_else(|| "1 = 1".into(), Outstanding::condition)
        );
        let now = now_text();
        let mut tx = self.begin_write().await?;
        let mut lost = std::collections::HashSet::new();
        for s in slots.iter() {
            let taken = sqlx::query(
                "INSERT INTO scheduled_slots (practice_id, slot, daemon, taken_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(s.practice_id)
            .bind(&s.slot)
            .bind(*daemon)
            .bind(&now)
            .execute(&mut *tx)
            .await
            .context("taking scheduled slots")?;
            if taken.rows_affected() == 0 {
                lost.insert(s.practice_id);
            }
        }
        if self.backend == Backend::Postgres {
            // Queuing for an account is serialised across daemons: the checks below then
            // see a run another daemon queued (and maybe already claimed) a moment ago,
            // instead of racing past it. Locked in one order, so two daemons queuing
            // overlapping accounts cannot deadlock. (SQLite has one writer.)
            let mut ids: Vec<&str> = runs
                .iter()
                .filter(|r| !lost.contains(r.practice_id))
                .map(|r| r.account_id)
                .collect();
            ids.sort_unstable();
            ids.dedup();
            for chunk in ids.chunks(500) {
                let sql = format!(
                    "SELECT id FROM accounts WHERE id IN ({}) ORDER BY id FOR UPDATE",
                    placeholders(1, chunk.len())
                );
                let mut query = sqlx::query(&sql);
                for id in chunk {
                    query = query.bind(*id);
                }
                query
                    .fetch_all(&mut *tx)
                    .await
                    .context("locking the accounts to queue their runs")?;
            }
        }
        let mut answers = Vec::with_capacity(runs.len());
        for run in runs {
            if lost.contains(run.practice_id) {
                answers.push(Queued::SlotTaken);
                continue;
            }
            let row = super::runs::bind_run(sqlx::query(&insert), run)
                .bind(Status::Queued.as_str())
                .bind(&now)
                .bind(i64::from(*attempt))
                .bind(not_before.as_deref())
                .bind(Status::Running.as_str())
                .bind(Trigger::Manual.as_str())
                // No interval: a bound no stored instant reaches.
                .bind(manual_since.as_deref().unwrap_or("~"))
                .fetch_optional(&mut *tx)
                .await
                .context("recording queued runs")?;
            if let Some(row) = row {
                answers.push(Queued::New(row.get("id")));
                continue;
            }
            // The account is queued or running: that run answers, lifted if needed.
            let holder = sqlx::query(
                "SELECT id, status FROM runs WHERE account_id = $1 AND status IN ($2, $3)
                 ORDER BY id DESC LIMIT 1",
            )
            .bind(run.account_id)
            .bind(Status::Queued.as_str())
            .bind(Status::Running.as_str())
            .fetch_optional(&mut *tx)
            .await
            .context("reading the account's queued run")?;
            let Some(holder) = holder else {
                if only_while.is_some() {
                    answers.push(Queued::Settled);
                    continue;
                }
                // Neither queued nor running: refused by the manual interval.
                let last = sqlx::query(
                    "SELECT MAX(queued_at) AS at FROM runs WHERE account_id = $1 AND trigger = $2",
                )
                .bind(run.account_id)
                .bind(Trigger::Manual.as_str())
                .fetch_one(&mut *tx)
                .await
                .context("reading the account's last manual run")?;
                let last: Option<String> = last.get("at");
                answers.push(Queued::TooSoon {
                    last: last.unwrap_or_default(),
                });
                continue;
            };
            let id: i64 = holder.get("id");
            if holder.get::<String, _>("status") == Status::Queued.as_str() {
                lift(&mut tx, id, run.trigger, run.mode, *attempt == 1).await?;
            }
            answers.push(Queued::Coalesced(id));
        }
        tx.commit().await.context("recording queued runs")?;
        Ok(QueueOutcome {
            runs: answers,
            slots_taken_elsewhere: lost.into_iter().map(str::to_string).collect(),
        })
    }

    /// Claims the next run this daemon may start: manual runs first, then the oldest;
    /// not one still in its backoff, of a connector in `full` (at this daemon's cap), or
    /// of an account running elsewhere. The run becomes `running`, owned by `owner`
    /// until `lease_until` unless renewed.
    pub async fn claim_run(
        &self,
        owner: &str,
        lease_until: &str,
        full: &[String],
    ) -> StoreResult<Option<Claimed>> {
        for manual_only in [true, false] {
            match self.claim_one(owner, lease_until, full, manual_only).await {
                Ok(Some(c)) => return Ok(Some(c)),
                Ok(None) => {}
                // A local `passerelle sync` started the account meanwhile: not claimable
                // now, looked at again on the next change.
                Err(e) if is_unique_violation(&e) => return Ok(None),
                Err(source) => {
                    return Err(super::error::StoreError::Database {
                        context: "claiming a queued run",
                        source,
                    })
                }
            }
        }
        Ok(None)
    }

    async fn claim_one(
        &self,
        owner: &str,
        lease_until: &str,
        full: &[String],
        manual_only: bool,
    ) -> Result<Option<Claimed>, sqlx::Error> {
        let now = now_text();
        // $1..$5 fixed, then the full connectors. Manual runs only: a partial index of
        // queued manual runs finds them without reading the other queued runs; its
        // condition is written as literals so the planners can match it.
        let mut filter = String::new();
        if manual_only {
            filter.push_str(&format!(
                " AND q.status = '{}' AND q.trigger = '{}'",
                Status::Queued.as_str(),
                Trigger::Manual.as_str()
            ));
        }
        if !full.is_empty() {
            filter.push_str(&format!(
                " AND q.connector NOT IN ({})",
                placeholders(6, full.len())
            ));
        }
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE runs SET status = $1, owner = $2, lease_until = $3, started_at = $4
             WHERE id = (SELECT q.id FROM runs q
                 WHERE q.status = $5 AND (q.not_before IS NULL OR q.not_before <= $4){filter}
                   AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.account_id = q.account_id AND r.status = $1)
                 ORDER BY q.id LIMIT 1 {lock})
             RETURNING id, practice_id, account_id, connector, trigger, mode, attempt"
        );
        let mut query = sqlx::query(&sql)
            .bind(Status::Running.as_str())
            .bind(owner)
            .bind(lease_until)
            .bind(&now)
            .bind(Status::Queued.as_str());
        for c in full {
            query = query.bind(c.as_str());
        }
        let mut tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        let row = query.fetch_optional(&mut *tx).await?;
        tx.commit().await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(Claimed {
            run_id: row.get("id"),
            practice_id: row.get("practice_id"),
            account_id: row.get("account_id"),
            connector: row.get("connector"),
            trigger: decode(Trigger::parse(&row.get::<String, _>("trigger")))?,
            mode: decode(Mode::parse(&row.get::<String, _>("mode")))?,
            attempt: u32::try_from(row.get::<i64, _>("attempt")).unwrap_or(1),
        }))
    }

    /// Closes running runs whose daemon is gone — their lease expired, or (`scope`)
    /// every leased one — as `cancelled` (interrupted), keeping what their checkpoints
    /// committed, and queues each account's work again unless it is at `max_attempts`.
    pub async fn reap(&self, scope: ReapScope, max_attempts: u32) -> StoreResult<Vec<Reaped>> {
        let now = now_text();
        let rows = sqlx::query(
            "SELECT id, account_id, owner, lease_until, attempt FROM runs
             WHERE status = $1 AND lease_until IS NOT NULL AND (lease_until < $2 OR $3 = 1)",
        )
        .bind(Status::Running.as_str())
        .bind(&now)
        .bind(i64::from(scope == ReapScope::AllLeased))
        .fetch_all(&self.pool)
        .await
        .context("reading expired leases")?;
        let mut reaped = Vec::new();
        for row in rows {
            let id: i64 = row.get("id");
            let owner: String = row.get::<Option<String>, _>("owner").unwrap_or_default();
            let lease: String = row.get("lease_until");
            let attempt: i64 = row.get("attempt");
            let mut tx = self.begin_write().await?;
            let closed = sqlx::query(
                "UPDATE runs SET status = $2, finished_at = $3, error_kind = $4, error_detail = $5,
                    lease_until = NULL
                 WHERE id = $1 AND status = $6 AND lease_until = $7",
            )
            .bind(id)
            .bind(Status::Cancelled.as_str())
            .bind(&now)
            .bind(ErrorKind::Interrupted.as_str())
            .bind(format!(
                "interrupted: its daemon ({owner}) stopped renewing its lease (ended {lease}); \
                 what its checkpoints committed is kept"
            ))
            .bind(Status::Running.as_str())
            .bind(&lease)
            .execute(&mut *tx)
            .await
            .context("closing a run whose lease expired")?;
            if closed.rows_affected() == 0 {
                continue; // renewed or ended meanwhile
            }
            let mut requeued = None;
            if attempt < i64::from(max_attempts) {
                let row = sqlx::query(
                    "INSERT INTO runs (practice_id, account_id, connector, connector_version,
                        connector_sha256, trigger, mode, status, started_at, queued_at, attempt)
                     SELECT practice_id, account_id, connector, connector_version, connector_sha256,
                        trigger, mode, $2, $3, $3, attempt + 1
                     FROM runs WHERE id = $1
                     ON CONFLICT DO NOTHING RETURNING id",
                )
                .bind(id)
                .bind(Status::Queued.as_str())
                .bind(&now)
                .fetch_optional(&mut *tx)
                .await
                .context("queueing an interrupted run again")?;
                requeued = row.map(|r| r.get::<i64, _>("id"));
            }
            tx.commit()
                .await
                .context("closing a run whose lease expired")?;
            reaped.push(Reaped {
                run_id: id,
                run: self.run(id).await?,
                account_id: row.get("account_id"),
                owner,
                requeued,
            });
        }
        Ok(reaped)
    }

    /// The account's queued or running run, if any.
    pub async fn active_run(&self, account_id: &str) -> StoreResult<Option<i64>> {
        let row = sqlx::query(
            "SELECT id FROM runs WHERE account_id = $1 AND status IN ($2, $3) ORDER BY id DESC LIMIT 1",
        )
        .bind(account_id)
        .bind(Status::Queued.as_str())
        .bind(Status::Running.as_str())
        .fetch_optional(&self.pool)
        .await
        .context("reading the account's active run")?;
        Ok(row.map(|r| r.get("id")))
    }

    /// When the account's last manual run was queued (any daemon), if ever.
    pub async fn last_manual_request(&self, account_id: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query(
            "SELECT MAX(queued_at) AS at FROM runs WHERE account_id = $1 AND trigger = $2",
        )
        .bind(account_id)
        .bind(Trigger::Manual.as_str())
        .fetch_one(&self.pool)
        .await
        .context("reading the account's last manual run")?;
        Ok(row.get::<Option<String>, _>("at"))
    }

    /// Runs waiting in the queue (all daemons).
    pub async fn queue_depth(&self) -> StoreResult<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM runs WHERE status = $1")
            .bind(Status::Queued.as_str())
            .fetch_one(&self.pool)
            .await
            .context("counting queued runs")?;
        Ok(row.get("n"))
    }

    /// The earliest backoff end among queued runs, if any waits.
    pub async fn next_not_before(&self) -> StoreResult<Option<String>> {
        let row = sqlx::query(
            "SELECT MIN(not_before) AS t FROM runs WHERE status = $1 AND not_before IS NOT NULL",
        )
        .bind(Status::Queued.as_str())
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
fn decode<T>(v: Result<T, passerelle_model::run::UnknownValue>) -> Result<T, sqlx::Error> {
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
    if first_attempt {
        sqlx::query("UPDATE runs SET not_before = NULL WHERE id = $1 AND not_before IS NOT NULL")
            .bind(id)
            .execute(&mut **tx)
            .await
            .context("lifting a queued run's backoff")?;
    }
    if trigger == Trigger::Manual {
        sqlx::query("UPDATE runs SET trigger = $2 WHERE id = $1")
            .bind(id)
            .bind(Trigger::Manual.as_str())
            .execute(&mut **tx)
            .await
            .context("lifting a queued run to manual")?;
    }
    if mode == Mode::Full {
        sqlx::query("UPDATE runs SET mode = $2 WHERE id = $1")
            .bind(id)
            .bind(Mode::Full.as_str())
            .execute(&mut **tx)
            .await
            .context("making a queued run full")?;
    }
    Ok(())
}
