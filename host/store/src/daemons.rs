//! The live daemons on this database: each registers at start, renews its heartbeat
//! (with its runs' leases) and leaves at shutdown; one that stops renewing is gone once
//! its lease ends. What `passerelle daemons` and `/healthz` list.

use passerelle_model::daemon::DaemonRow;
use sqlx::Row;

use super::error::{DbContext, StoreResult};
use super::{literal, Store};
use passerelle_model::run::Status;

/// Who a daemon is, for [`Store::register_daemon`].
#[derive(Debug, Clone)]
pub struct DaemonIdentity<'a> {
    pub id: &'a str,
    pub host: &'a str,
    pub pid: u32,
    pub version: &'a str,
}

impl Store {
    /// Records this daemon as live until `lease_until`. Refused when a live daemon
    /// already has this id (two processes must not share one).
    pub async fn register_daemon(
        &self,
        who: &DaemonIdentity<'_>,
        now: &str,
        lease_until: &str,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let existing = sqlx::query("SELECT lease_until FROM daemons WHERE id = $1")
            .bind(who.id)
            .fetch_optional(&mut *tx)
            .await
            .context("reading daemons")?;
        if let Some(row) = existing {
            let until: String = row.get("lease_until");
            if until.as_str() > now {
                return Err(super::error::StoreError::Conflict(format!(
                    "a live daemon is registered as `{}` (lease until {until}): give this one another daemon.id",
                    who.id
                )));
            }
        }
        sqlx::query(
            "INSERT INTO daemons (id, host, pid, version, started_at, heartbeat_at, lease_until)
             VALUES ($1, $2, $3, $4, $5, $5, $6)
             ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
                version = excluded.version, started_at = excluded.started_at,
                heartbeat_at = excluded.heartbeat_at, lease_until = excluded.lease_until",
        )
        .bind(who.id)
        .bind(who.host)
        .bind(i64::from(who.pid))
        .bind(who.version)
        .bind(now)
        .bind(lease_until)
        .execute(&mut *tx)
        .await
        .context("registering the daemon")?;
        tx.commit().await.context("registering the daemon")?;
        Ok(())
    }

    /// Renews this daemon's heartbeat and its runs' leases, in one transaction.
    pub async fn heartbeat(&self, id: &str, now: &str, lease_until: &str) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE daemons SET heartbeat_at = $2, lease_until = $3 WHERE id = $1")
            .bind(id)
            .bind(now)
            .bind(lease_until)
            .execute(&mut *tx)
            .await
            .context("renewing the daemon's heartbeat")?;
        sqlx::query(&format!(
            "UPDATE runs SET lease_until = $2 WHERE owner = $1 AND status = {}",
            literal(Status::Running.as_str())
        ))
        .bind(id)
        .bind(lease_until)
        .execute(&mut *tx)
        .await
        .context("renewing run leases")?;
        tx.commit()
            .await
            .context("renewing the daemon's heartbeat")?;
        Ok(())
    }

    /// This daemon leaves (graceful shutdown).
    pub async fn unregister_daemon(&self, id: &str) -> StoreResult<()> {
        // Through the writer: on SQLite it waits its turn behind the transactions
        // still ending there instead of meeting the write lock in the busy handler.
        sqlx::query("DELETE FROM daemons WHERE id = $1")
            .bind(id)
            .execute(&self.writer)
            .await
            .context("unregistering the daemon")?;
        Ok(())
    }

    /// The daemons live at `now` (lease not ended), each with the runs it holds; rows of
    /// daemons gone for a day are forgotten.
    pub async fn live_daemons(
        &self,
        now: &str,
        forget_before: &str,
    ) -> StoreResult<Vec<DaemonRow>> {
        sqlx::query("DELETE FROM daemons WHERE lease_until < $1")
            .bind(forget_before)
            .execute(&self.pool)
            .await
            .context("forgetting old daemons")?;
        let rows = sqlx::query(&format!(
            "SELECT d.id, d.host, d.pid, d.version, d.started_at, d.heartbeat_at, d.lease_until,
                (SELECT COUNT(*) FROM runs r WHERE r.owner = d.id AND r.status = {}) AS running
             FROM daemons d WHERE d.lease_until >= $1 ORDER BY d.id",
            literal(Status::Running.as_str())
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .context("listing daemons")?;
        Ok(rows
            .iter()
            .map(|r| DaemonRow {
                id: r.get("id"),
                host: r.get("host"),
                pid: r.get("pid"),
                version: r.get("version"),
                started_at: r.get("started_at"),
                heartbeat_at: r.get("heartbeat_at"),
                lease_until: r.get("lease_until"),
                running: r.get("running"),
            })
            .collect())
    }
}
