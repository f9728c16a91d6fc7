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

/// A run a daemon has claimed (status `running`, owned by it), with what its run needs
/// to start, read by the claiming statement itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub run_id: i64,
    pub practice_id: String,
    pub account_id: String,
    pub connector: String,
    pub trigger: Trigger,
    pub mode: Mode,
    pub attempt: u32,
    /// Its account as claimed (None: deleted meanwhile).
    pub account: Option<passerelle_model::practice::Account>,
    /// The connector version it runs on, chosen and recorded by the claim as
    /// [`Store::connector_for`] chooses (the canary's for a practice in its set, else
    /// the active one; the version it was queued with if none is installed any more).
    pub connector_version: String,
    pub connector_sha256: String,
    /// The cursor it starts from (recorded as `cursor_before`; None for a full run).
    pub cursor: Option<String>,
    /// Whether the account had a pause (drift, security event) when claimed: only a
    /// run of a paused account has one to lift.
    pub paused: bool,
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
    ///
    /// A constant number of statements whatever the number of runs (per 500): the
    /// slots in one multi-row insert, the runs in another (every condition checked in
    /// it), then one read of the runs that answer for the accounts not queued anew.
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
        let now = now_text();
        let mut tx = self.begin_write().await?;
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
                    .fetch_all(&mut *tx)
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
                    .fetch_all(&mut *tx)
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
            const FIXED: usize = 7;
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
                    $1, $2, $2, $3, $4
                 FROM (VALUES {}) AS v
                 WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.account_id = v.column2 AND r.status = $5)
                   AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.account_id = v.column2 AND r.trigger = $6
                                   AND r.queued_at >= $7)
                   AND {condition}
                 ON CONFLICT DO NOTHING RETURNING id, account_id",
                values.join(", ")
            );
            let mut query = sqlx::query(&sql)
                .bind(Status::Queued.as_str())
                .bind(&now)
                .bind(i64::from(*attempt))
                .bind(not_before.as_deref())
                .bind(Status::Running.as_str())
                .bind(Trigger::Manual.as_str())
                // No interval: a bound no stored instant reaches.
                .bind(manual_since.as_deref().unwrap_or("~"));
            for run in chunk {
                query = super::runs::bind_run(query, run);
            }
            for row in query
                .fetch_all(&mut *tx)
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
                "SELECT id, account_id, status FROM runs WHERE status IN ($1, $2) AND account_id IN ({})",
                placeholders(3, chunk.len())
            );
            let mut query = sqlx::query(&sql)
                .bind(Status::Queued.as_str())
                .bind(Status::Running.as_str());
            for a in chunk {
                query = query.bind(*a);
            }
            for row in query
                .fetch_all(&mut *tx)
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
                     WHERE trigger = $1 AND account_id IN ({}) GROUP BY account_id",
                    placeholders(2, chunk.len())
                );
                let mut query = sqlx::query(&sql).bind(Trigger::Manual.as_str());
                for a in chunk {
                    query = query.bind(*a);
                }
                for row in query
                    .fetch_all(&mut *tx)
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
                        lift(&mut tx, *id, run.trigger, run.mode, *attempt == 1).await?;
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
        match self.claim_one(owner, lease_until, full).await {
            Ok(c) => Ok(c),
            // A local `passerelle sync` started the account meanwhile: not claimable now,
            // looked at again on the next change.
            Err(e) if is_unique_violation(&e) => Ok(None),
            Err(source) => Err(super::error::StoreError::Database {
                context: "claiming a queued run",
                source,
            }),
        }
    }

    /// One statement: the oldest claimable manual run, else the oldest claimable run.
    async fn claim_one(
        &self,
        owner: &str,
        lease_until: &str,
        full: &[String],
    ) -> Result<Option<Claimed>, sqlx::Error> {
        let now = now_text();
        // $1..$5 fixed, then the full connectors.
        let not_full = if full.is_empty() {
            String::new()
        } else {
            format!(" AND q.connector NOT IN ({})", placeholders(6, full.len()))
        };
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let candidate = |manual_only: bool| {
            // Manual runs: a partial index of queued manual runs finds them without
            // reading the other queued runs; its condition is written as literals so the
            // planners can match it.
            let manual = if manual_only {
                format!(
                    " AND q.status = '{}' AND q.trigger = '{}'",
                    Status::Queued.as_str(),
                    Trigger::Manual.as_str()
                )
            } else {
                String::new()
            };
            format!(
                "(SELECT q.id FROM runs q
                  WHERE q.status = $5 AND (q.not_before IS NULL OR q.not_before <= $4){manual}{not_full}
                    AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.account_id = q.account_id AND r.status = $1)
                  ORDER BY q.id LIMIT 1 {lock})"
            )
        };
        // The names of the account's secrets, as a JSON array.
        let secret_names = match self.backend {
            Backend::Sqlite => {
                "(SELECT json_group_array(name) FROM (SELECT name FROM account_secrets s
                    WHERE s.account_id = runs.account_id ORDER BY name))"
            }
            Backend::Postgres => {
                "(SELECT COALESCE(json_agg(name ORDER BY name), '[]'::json)::text
                    FROM account_secrets s WHERE s.account_id = runs.account_id)"
            }
        };
        // The version the run runs on, as `connector_for` chooses it (the one queued if
        // none is installed any more: the run then fails saying so).
        let version_column = |column: &str| {
            format!(
                "COALESCE({}, runs.connector_{column})",
                super::connectors::chosen_version(
                    self.backend,
                    column,
                    "runs.connector",
                    "runs.practice_id"
                )
            )
        };
        // One statement (a transaction of its own: on SQLite a writing statement takes
        // the write lock as it starts) that also starts the run — the version it runs
        // on, the cursor it starts from — and reads what it needs: its account and
        // whether it is paused. Starting a run costs no further round trip.
        let sql = format!(
            "UPDATE runs SET status = $1, owner = $2, lease_until = $3, started_at = $4,
                connector_version = {}, connector_sha256 = {},
                cursor_before = CASE WHEN runs.mode = '{}'
                    THEN (SELECT c.cursor FROM sync_state c WHERE c.account_id = runs.account_id)
                    END
             WHERE id = COALESCE({}, {})
             RETURNING id, practice_id, account_id, connector, trigger, mode, attempt,
                connector_version, connector_sha256, cursor_before,
                (SELECT a.label FROM accounts a WHERE a.id = runs.account_id) AS account_label,
                (SELECT a.settings FROM accounts a WHERE a.id = runs.account_id) AS account_settings,
                (SELECT a.public_info FROM accounts a WHERE a.id = runs.account_id) AS account_listing,
                {secret_names} AS account_secrets,
                CAST(CASE WHEN EXISTS (SELECT 1 FROM account_pauses p WHERE p.account_id = runs.account_id)
                    THEN 1 ELSE 0 END AS BIGINT) AS paused",
            version_column("version"),
            version_column("sha256"),
            Mode::Incremental.as_str(),
            candidate(true),
            candidate(false)
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
        let Some(row) = query.fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let account_id: String = row.get("account_id");
        let practice_id: String = row.get("practice_id");
        let connector: String = row.get("connector");
        let account = match row.get::<Option<String>, _>("account_settings") {
            None => None,
            Some(settings) => Some(passerelle_model::practice::Account {
                id: account_id.clone(),
                practice_id: practice_id.clone(),
                connector: connector.clone(),
                label: row.get("account_label"),
                settings: serde_json::from_str(&settings)
                    .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                secrets: serde_json::from_str(
                    &row.get::<Option<String>, _>("account_secrets")
                        .unwrap_or_else(|| "[]".into()),
                )
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                listing: row
                    .get::<Option<String>, _>("account_listing")
                    .and_then(|j| serde_json::from_str(&j).ok()),
            }),
        };
        Ok(Some(Claimed {
            run_id: row.get("id"),
            practice_id,
            account_id,
            connector,
            trigger: decode(Trigger::parse(&row.get::<String, _>("trigger")))?,
            mode: decode(Mode::parse(&row.get::<String, _>("mode")))?,
            attempt: u32::try_from(row.get::<i64, _>("attempt")).unwrap_or(1),
            account,
            connector_version: row.get("connector_version"),
            connector_sha256: row.get("connector_sha256"),
            cursor: row.get("cursor_before"),
            paused: row.get::<i64, _>("paused") != 0,
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
                    MAX(CASE WHEN status IN ($1, $2) THEN 1 ELSE 0 END) AS active,
                    MAX(CASE WHEN trigger = $3 THEN queued_at END) AS last_manual
                 FROM runs WHERE account_id IN ({}) GROUP BY account_id",
                placeholders(4, chunk.len())
            );
            let mut query = sqlx::query(&sql)
                .bind(Status::Queued.as_str())
                .bind(Status::Running.as_str())
                .bind(Trigger::Manual.as_str());
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
