//! Items set aside under the `quarantine` drift policy: written with a run's checkpoint
//! (one row per account and item content, updated when seen again), listed for review,
//! cleared when a full run of the account no longer sets them aside.

use super::error::{DbContext, StoreResult};
use passerelle_model::quarantine::{QuarantineFilter, QuarantinedItem};
use sqlx::Row;

use super::Store;
use passerelle_model::records::{QuarantineRecord, Scope};
use passerelle_model::run::DriftReport;

/// Writes one item within a commit's transaction.
pub(super) async fn upsert(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    scope: &Scope,
    q: &QuarantineRecord,
    now: &str,
) -> StoreResult<()> {
    let sha = passerelle_model::sha256_hex(q.item.as_bytes());
    sqlx::query(
        "INSERT INTO quarantined_items (connector, practice_id, account_id, endpoint, path,
            expected, found, item, item_sha256, version_sha256, first_run_id, last_run_id,
            first_seen, last_seen, times_seen)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $12, 1)
         ON CONFLICT (account_id, item_sha256) DO UPDATE SET
            endpoint = excluded.endpoint, path = excluded.path, expected = excluded.expected,
            found = excluded.found, version_sha256 = excluded.version_sha256,
            last_run_id = excluded.last_run_id, last_seen = excluded.last_seen,
            times_seen = quarantined_items.times_seen + 1",
    )
    .bind(&scope.connector)
    .bind(&scope.practice_id)
    .bind(&scope.account_id)
    .bind(&q.drift.endpoint)
    .bind(&q.drift.path)
    .bind(&q.drift.expected)
    .bind(&q.drift.found)
    .bind(&q.item)
    .bind(&sha)
    .bind(&scope.version_sha256)
    .bind(scope.run_id)
    .bind(now)
    .execute(&mut **tx)
    .await
    .context("setting an item aside")?;
    Ok(())
}

/// After a successful full run: items of the account this run did not set aside again
/// are resolved (the connector reads them now, or they are gone). Returns how many.
pub(super) async fn clear_resolved(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    scope: &Scope,
) -> StoreResult<u64> {
    let n =
        sqlx::query("DELETE FROM quarantined_items WHERE account_id = $1 AND last_run_id <> $2")
            .bind(&scope.account_id)
            .bind(scope.run_id)
            .execute(&mut **tx)
            .await
            .context("clearing resolved quarantined items")?
            .rows_affected();
    Ok(n)
}

impl Store {
    /// Items set aside, newest first.
    pub async fn quarantined(&self, f: &QuarantineFilter) -> StoreResult<Vec<QuarantinedItem>> {
        // The items themselves (up to 64 KiB each) are read only when asked for.
        let item = if f.with_items { "item" } else { "NULL" };
        let bytes = match self.backend {
            super::Backend::Sqlite => "LENGTH(CAST(item AS BLOB))",
            super::Backend::Postgres => "CAST(OCTET_LENGTH(item) AS BIGINT)",
        };
        let rows = sqlx::query(&format!(
            "SELECT id, connector, practice_id, account_id, endpoint, path, expected, found,
                {item} AS item, {bytes} AS item_bytes, item_sha256, version_sha256,
                first_run_id, last_run_id, first_seen, last_seen, times_seen
             FROM quarantined_items
             WHERE ($1 IS NULL OR connector = $1) AND ($2 IS NULL OR account_id = $2)
             ORDER BY last_seen DESC, id DESC LIMIT $3"
        ))
        .bind(f.connector.as_deref())
        .bind(f.account_id.as_deref())
        .bind(f.limit.unwrap_or(100))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| QuarantinedItem {
                id: row.get("id"),
                connector: row.get("connector"),
                practice_id: row.get("practice_id"),
                account_id: row.get("account_id"),
                drift: DriftReport {
                    endpoint: row.get("endpoint"),
                    path: row.get("path"),
                    expected: row.get("expected"),
                    found: row.get("found"),
                    shape: None,
                },
                item_sha256: Some(row.get("item_sha256")),
                item_bytes: row.get("item_bytes"),
                item: row.get("item"),
                version_sha256: row.get("version_sha256"),
                first_run_id: row.get("first_run_id"),
                last_run_id: row.get("last_run_id"),
                first_seen: row.get("first_seen"),
                last_seen: row.get("last_seen"),
                times_seen: row.get("times_seen"),
            })
            .collect())
    }

    /// (account, version hash) pairs that have items set aside: an account whose
    /// connector now runs another version is re-read in full.
    pub async fn quarantined_versions(&self) -> StoreResult<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT DISTINCT account_id, version_sha256 FROM quarantined_items ORDER BY account_id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("account_id"), r.get("version_sha256")))
            .collect())
    }
}
