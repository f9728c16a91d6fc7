//! The change feed's table: changes appended in the checkpoint's transaction that made
//! them, numbered in commit order; read back after a sequence number; pruned by age.
//!
//! Numbers come from `feed_state.head`, raised as the transaction's last write: its row
//! lock is held until commit, so concurrent commits (several daemons on PostgreSQL)
//! take their numbers one after the other and commit in that order. A reader that has
//! seen N therefore never later meets a change numbered N or below.

use sqlx::{Any, Row, Transaction};

use super::error::{DbContext, StoreError, StoreResult};
use super::{placeholders, row_params, Store};
use passerelle_model::feed::{ChangeKind, ChangeOp, StoredChange};
use passerelle_model::records::{AppointmentRecord, PatientRecord, Scope};

/// What is left of a patient in the feed once their account is deleted (the rule is the
/// service's; the store applies it).
pub type ForgetPatient = fn(PatientRecord) -> PatientRecord;

/// Rewrites the patient of every appointment change the account's feed keeps with
/// `forget`, in the deleting transaction: the feed outlives the account (replay), its
/// patients' names, birth dates, phones and e-mails must not.
async fn forget_patients(
    tx: &mut Transaction<'_, Any>,
    account_id: &str,
    forget: ForgetPatient,
) -> StoreResult<()> {
    let rows = sqlx::query(
        "SELECT seq, record FROM changes WHERE account_id = $1 AND kind = $2 AND record IS NOT NULL",
    )
    .bind(account_id)
    .bind(ChangeKind::Appointment.as_str())
    .fetch_all(&mut **tx)
    .await
    .context("reading the account's appointment changes")?;
    for row in rows {
        let seq: i64 = row.get("seq");
        let text: String = row.get("record");
        let mut record: AppointmentRecord = serde_json::from_str(&text)
            // Where, not what: the record holds patient data.
            .map_err(|e| StoreError::Corrupt {
                what: "change record",
                detail: format!("change {seq}: {:?} at column {}", e.classify(), e.column()),
            })?;
        let Some(patient) = record.patient.take() else {
            continue;
        };
        record.patient = Some(forget(patient));
        sqlx::query("UPDATE changes SET record = $1 WHERE seq = $2")
            .bind(serde_json::to_string(&record).expect("records serialise"))
            .bind(seq)
            .execute(&mut **tx)
            .await
            .context("forgetting the account's patients in the feed")?;
    }
    Ok(())
}

/// A change a commit made, not yet numbered.
#[derive(Debug, Clone)]
pub(super) struct Change {
    pub kind: ChangeKind,
    pub op: ChangeOp,
    pub external_id: String,
    /// The record's JSON (`added`, `changed`).
    pub record: Option<String>,
}

impl Change {
    pub fn with_record<T: serde::Serialize>(
        kind: ChangeKind,
        op: ChangeOp,
        external_id: &str,
        record: &T,
    ) -> Change {
        Change {
            kind,
            op,
            external_id: external_id.to_string(),
            record: Some(serde_json::to_string(record).expect("records serialise")),
        }
    }

    pub fn key_only(kind: ChangeKind, op: ChangeOp, external_id: &str) -> Change {
        Change {
            kind,
            op,
            external_id: external_id.to_string(),
            record: None,
        }
    }
}

/// Changes per multi-row insert (11 parameters each).
const CHANGES_PER_STATEMENT: usize = 20;

/// Numbers `changes` and appends them to the feed, inside the commit's transaction;
/// call it as the transaction's last write (it holds the feed's head until commit).
pub(super) async fn append(
    tx: &mut Transaction<'_, Any>,
    scope: &Scope,
    changes: &[Change],
    now: &str,
) -> StoreResult<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let head: i64 =
        sqlx::query_scalar("UPDATE feed_state SET head = head + $1 WHERE id = 1 RETURNING head")
            .bind(changes.len() as i64)
            .fetch_one(&mut **tx)
            .await
            .context("numbering the commit's changes")?;
    let first = head - changes.len() as i64 + 1;
    let now_ms = chrono::DateTime::parse_from_rfc3339(now)
        .map(|d| d.timestamp_millis())
        .unwrap_or_default();
    for (chunk_index, chunk) in changes.chunks(CHANGES_PER_STATEMENT).enumerate() {
        let mut sql = String::from(
            "INSERT INTO changes (seq, practice_id, account_id, connector, kind, op, external_id,
                record, run_id, created_at, created_at_ms) VALUES ",
        );
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("({})", row_params(tx, i * 11 + 1, 11)));
        }
        let mut query = sqlx::query(&sql);
        for (i, c) in chunk.iter().enumerate() {
            let seq = first + (chunk_index * CHANGES_PER_STATEMENT + i) as i64;
            query = query
                .bind(seq)
                .bind(&scope.practice_id)
                .bind(&scope.account_id)
                .bind(&scope.connector)
                .bind(c.kind.as_str())
                .bind(c.op.as_str())
                .bind(&c.external_id)
                .bind(c.record.as_deref())
                .bind(scope.run_id)
                .bind(now)
                .bind(now_ms);
        }
        query
            .execute(&mut **tx)
            .await
            .context("appending to the change feed")?;
    }
    Ok(())
}

/// Appends a `removed` change for every appointment and slot of the accounts matching
/// `accounts_where` (an SQL condition on `accounts`, `$1` bound to `id`), inside the
/// transaction that deletes them, so a consumer replaying the feed drops them too.
/// Such changes carry run 0 (no run made them: an operator's deletion).
pub(super) async fn append_removal(
    tx: &mut Transaction<'_, Any>,
    accounts_where: &str,
    id: &str,
    now: &str,
    forget: ForgetPatient,
) -> StoreResult<()> {
    let accounts = sqlx::query(&format!(
        "SELECT id, practice_id, connector FROM accounts WHERE {accounts_where}"
    ))
    .bind(id)
    .fetch_all(&mut **tx)
    .await
    .context("reading the accounts to delete")?;
    for a in &accounts {
        let scope = Scope {
            connector: a.get("connector"),
            practice_id: a.get("practice_id"),
            account_id: a.get("id"),
            run_id: 0,
            version_sha256: String::new(),
            stored_slots: None,
        };
        let mut changes = Vec::new();
        for (kind, table) in [
            (ChangeKind::Appointment, "appointments"),
            (ChangeKind::Slot, "slots"),
        ] {
            let ids: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT external_id FROM {table} WHERE account_id = $1 ORDER BY external_id"
            ))
            .bind(&scope.account_id)
            .fetch_all(&mut **tx)
            .await
            .context("reading the records to delete")?;
            changes.extend(
                ids.iter()
                    .map(|id| Change::key_only(kind, ChangeOp::Removed, id)),
            );
        }
        append(tx, &scope, &changes, now).await?;
        forget_patients(tx, &scope.account_id, forget).await?;
    }
    Ok(())
}

/// Where the feed stands: the last number given, and the last one retention removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedState {
    pub head: i64,
    pub pruned_through: i64,
}

/// Which changes to read.
#[derive(Debug, Clone, Default)]
pub struct ChangeFilter {
    /// Only these practices (all when empty).
    pub practices: Vec<String>,
    /// Only these kinds (all when empty).
    pub kinds: Vec<ChangeKind>,
    /// Not past this number (a head read before, so a page never runs past it).
    pub through: Option<i64>,
}

impl Store {
    /// Where the feed stands.
    pub async fn feed_state(&self) -> StoreResult<FeedState> {
        let row = sqlx::query("SELECT head, pruned_through FROM feed_state WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .context("reading the feed's state")?;
        Ok(FeedState {
            head: row.get("head"),
            pruned_through: row.get("pruned_through"),
        })
    }

    /// Up to `limit` changes numbered after `after`, in order.
    pub async fn changes_after(
        &self,
        after: i64,
        limit: i64,
        filter: &ChangeFilter,
    ) -> StoreResult<Vec<StoredChange>> {
        let mut sql = String::from("SELECT * FROM changes WHERE seq > $1");
        let mut next = 2;
        if filter.through.is_some() {
            sql.push_str(&format!(" AND seq <= ${next}"));
            next += 1;
        }
        if !filter.practices.is_empty() {
            sql.push_str(&format!(
                " AND practice_id IN ({})",
                placeholders(next, filter.practices.len())
            ));
            next += filter.practices.len();
        }
        if !filter.kinds.is_empty() {
            sql.push_str(&format!(
                " AND kind IN ({})",
                placeholders(next, filter.kinds.len())
            ));
            next += filter.kinds.len();
        }
        sql.push_str(&format!(" ORDER BY seq LIMIT ${next}"));
        let mut query = sqlx::query(&sql).bind(after);
        if let Some(through) = filter.through {
            query = query.bind(through);
        }
        for p in &filter.practices {
            query = query.bind(p);
        }
        for k in &filter.kinds {
            query = query.bind(k.as_str());
        }
        let rows = query
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .context("reading the change feed")?;
        rows.iter().map(change_from_row).collect()
    }

    /// Removes the changes made before `cutoff_ms`, but none past `keep_after` (the
    /// lowest position a subscription still has to deliver from); the new
    /// `pruned_through`.
    pub async fn prune_changes(&self, cutoff_ms: i64, keep_after: Option<i64>) -> StoreResult<i64> {
        let mut tx = self.begin_write().await?;
        let old: Option<i64> =
            sqlx::query_scalar("SELECT MAX(seq) FROM changes WHERE created_at_ms < $1")
                .bind(cutoff_ms)
                .fetch_one(&mut *tx)
                .await
                .context("finding the changes past retention")?;
        let state: i64 = sqlx::query_scalar("SELECT pruned_through FROM feed_state WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        let through = match (old, keep_after) {
            (Some(old), Some(keep)) => old.min(keep),
            (Some(old), None) => old,
            (None, _) => return Ok(state),
        };
        if through <= state {
            return Ok(state);
        }
        sqlx::query("DELETE FROM changes WHERE seq <= $1")
            .bind(through)
            .execute(&mut *tx)
            .await
            .context("pruning the change feed")?;
        sqlx::query("UPDATE feed_state SET pruned_through = $1 WHERE id = 1")
            .bind(through)
            .execute(&mut *tx)
            .await?;
        tx.commit().await.context("pruning the change feed")?;
        Ok(through)
    }
}

fn change_from_row(r: &sqlx::any::AnyRow) -> StoreResult<StoredChange> {
    let kind: String = r.get("kind");
    let op: String = r.get("op");
    Ok(StoredChange {
        seq: r.get("seq"),
        practice_id: r.get("practice_id"),
        account_id: r.get("account_id"),
        connector: r.get("connector"),
        kind: ChangeKind::parse(&kind).ok_or_else(|| StoreError::Corrupt {
            what: "change kind",
            detail: kind.clone(),
        })?,
        op: ChangeOp::parse(&op).ok_or_else(|| StoreError::Corrupt {
            what: "change op",
            detail: op.clone(),
        })?,
        external_id: r.get("external_id"),
        record: r.get("record"),
        run_id: r.get("run_id"),
        created_at: r.get("created_at"),
    })
}
