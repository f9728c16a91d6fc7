//! Reaping: running runs whose daemon stopped renewing their lease are closed as
//! interrupted, keeping what their checkpoints committed, and queued again.

use sqlx::Row;

use crate::error::{DbContext, StoreResult};
use crate::{literal, now_text, Store};
use passerelle_model::run::{ErrorKind, Run, Status};

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
    /// Closes running runs whose daemon is gone — their lease expired, or (`scope`)
    /// every leased one — as `cancelled` (interrupted), keeping what their checkpoints
    /// committed, and queues each account's work again unless it is at `max_attempts`.
    pub async fn reap(&self, scope: ReapScope, max_attempts: u32) -> StoreResult<Vec<Reaped>> {
        let now = now_text();
        let rows = sqlx::query(&format!(
            "SELECT id, account_id, owner, lease_until, attempt FROM runs
             WHERE status = {} AND lease_until IS NOT NULL AND (lease_until < $1 OR $2 = 1)",
            literal(Status::Running.as_str())
        ))
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
            let closed = sqlx::query(&format!(
                "UPDATE runs SET status = $2, finished_at = $3, error_kind = $4, error_detail = $5,
                    lease_until = NULL
                 WHERE id = $1 AND status = {} AND lease_until = $6",
                literal(Status::Running.as_str())
            ))
            .bind(id)
            .bind(Status::Cancelled.as_str())
            .bind(&now)
            .bind(ErrorKind::Interrupted.as_str())
            .bind(format!(
                "interrupted: its daemon ({owner}) stopped renewing its lease (ended {lease}); \
                 what its checkpoints committed is kept"
            ))
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
}
