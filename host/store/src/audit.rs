//! The audit trail (`audit_log`): who did what, when — every admin action and every read
//! of patient data — as a hash chain. Entry `n` stores the SHA-256 of entry `n-1` and
//! its own over both, so editing an entry, deleting one, or reordering them shows in
//! [`Store::verify_audit`]. Appends are serialised (SQLite's write lock; a transaction
//! advisory lock on PostgreSQL, where several daemons append), so the chain has one
//! order. Removing the newest entries leaves a valid shorter chain: the head (sequence
//! number and hash) is logged at every daemon start and printed by `audit verify`, to
//! compare with one kept elsewhere.

use passerelle_model::audit::{AuditEntry, AuditReport};
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::error::{DbContext, StoreResult};
use super::{now_text, Backend, Store};

/// The hash before the first entry.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// An arbitrary key for PostgreSQL's transaction advisory lock on appends.
const APPEND_LOCK: i64 = 0x7061_7373_6175_6474;

fn entry_hash(
    prev: &str,
    seq: i64,
    at: &str,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> String {
    let canonical = serde_json::to_string(&(prev, seq, at, actor, action, target, detail))
        .expect("strings serialise");
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

impl Store {
    /// Appends an entry at the end of the chain; returns its sequence number.
    pub async fn append_audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: &str,
    ) -> StoreResult<i64> {
        let mut tx = self.begin_write().await?;
        if self.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(APPEND_LOCK)
                .execute(&mut *tx)
                .await
                .context("locking the audit trail")?;
        }
        let last = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await
            .context("reading the audit trail's head")?;
        let (seq, prev) = match last {
            Some(r) => (r.get::<i64, _>("seq") + 1, r.get::<String, _>("hash")),
            None => (1, GENESIS.to_string()),
        };
        let at = now_text();
        let hash = entry_hash(&prev, seq, &at, actor, action, target, detail);
        sqlx::query(
            "INSERT INTO audit_log (seq, at, actor, action, target, detail, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(seq)
        .bind(&at)
        .bind(actor)
        .bind(action)
        .bind(target)
        .bind(detail)
        .bind(&prev)
        .bind(&hash)
        .execute(&mut *tx)
        .await
        .context("appending to the audit trail")?;
        tx.commit().await.context("appending to the audit trail")?;
        Ok(seq)
    }

    /// The newest `limit` entries, newest first.
    pub async fn audit_entries(&self, limit: i64) -> StoreResult<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, target, detail, prev_hash, hash FROM audit_log
             ORDER BY seq DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .context("reading the audit trail")?;
        Ok(rows.iter().map(entry_from_row).collect())
    }

    /// Walks the whole chain and reports every break: an entry whose content does not
    /// match its hash (edited), a missing sequence number (deleted), an entry that does
    /// not name its predecessor's hash (removed, reordered or forged).
    pub async fn verify_audit(&self) -> StoreResult<AuditReport> {
        let mut report = AuditReport {
            entries: 0,
            head_seq: 0,
            head_hash: GENESIS.to_string(),
            problems: Vec::new(),
        };
        let mut after = 0i64;
        loop {
            let rows = sqlx::query(
                "SELECT seq, at, actor, action, target, detail, prev_hash, hash FROM audit_log
                 WHERE seq > $1 ORDER BY seq LIMIT 1000",
            )
            .bind(after)
            .fetch_all(&self.pool)
            .await
            .context("reading the audit trail")?;
            if rows.is_empty() {
                return Ok(report);
            }
            for e in rows.iter().map(entry_from_row) {
                if e.seq != report.head_seq + 1 {
                    report.problems.push(format!(
                        "entries {} to {} are missing (deleted)",
                        report.head_seq + 1,
                        e.seq - 1
                    ));
                }
                if e.prev_hash != report.head_hash {
                    report.problems.push(format!(
                        "entry {} does not follow entry {} (the chain is broken there)",
                        e.seq, report.head_seq
                    ));
                }
                let computed = entry_hash(
                    &e.prev_hash,
                    e.seq,
                    &e.at,
                    &e.actor,
                    &e.action,
                    &e.target,
                    &e.detail,
                );
                if computed != e.hash {
                    report.problems.push(format!(
                        "entry {} was altered (its content does not match its hash)",
                        e.seq
                    ));
                }
                report.entries += 1;
                report.head_seq = e.seq;
                report.head_hash = e.hash;
                after = report.head_seq;
            }
        }
    }
}

fn entry_from_row(r: &sqlx::any::AnyRow) -> AuditEntry {
    AuditEntry {
        seq: r.get("seq"),
        at: r.get("at"),
        actor: r.get("actor"),
        action: r.get("action"),
        target: r.get("target"),
        detail: r.get("detail"),
        prev_hash: r.get("prev_hash"),
        hash: r.get("hash"),
    }
}
