//! The flight recorder's store: one sealed cassette per run that kept one (a run that
//! drifted or failed), with what can be shown without opening it (connector, version,
//! why it was kept, how many exchanges, how many bytes). The cassette itself is text the
//! service layer made (redacted already) and is sealed here with the secrets keyring,
//! bound to its account and run — a row copied to another run does not open. Retention
//! (age, bytes per account, bytes in all) is applied as each one is kept.

use sqlx::Row;

use super::error::{DbContext, StoreError, StoreResult};
use super::{now_text, Store};

const COLUMNS: &str =
    "run_id, account_id, practice_id, connector, version, reason, exchanges, bytes, recorded_at";

/// A kept cassette, as listed (its content stays sealed).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CassetteMeta {
    pub run_id: i64,
    pub account_id: String,
    pub practice_id: String,
    pub connector: String,
    pub version: String,
    /// Why the run kept it: `drift`, `failed:<error kind>`, `quarantine`, `baseline`.
    pub reason: String,
    pub exchanges: i64,
    /// The size of the cassette's text (before sealing).
    pub bytes: i64,
    pub recorded_at: String,
}

/// How long and how much the flight recorder keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Cassettes recorded before this instant (RFC 3339 text) are removed.
    pub older_than: Option<chrono::DateTime<chrono::Utc>>,
    /// Bytes one account's cassettes may take; the oldest go first.
    pub per_account_bytes: u64,
    /// Bytes all cassettes may take; the oldest go first.
    pub total_bytes: u64,
}

/// The reason of a successful run's cassette kept as its account's baseline.
pub const BASELINE: &str = "baseline";

fn binding(run_id: i64) -> String {
    format!("cassette:{run_id}")
}

impl Store {
    /// Seals and keeps `text` as the cassette of `meta.run_id` (replacing one it had),
    /// then applies `retention`. Returns how many cassettes retention removed (the new
    /// one among them if it alone is over a bound).
    pub async fn keep_cassette(
        &self,
        meta: &CassetteMeta,
        text: &str,
        retention: Retention,
    ) -> StoreResult<u64> {
        let sealed = self
            .keyring()?
            .seal(&meta.account_id, &binding(meta.run_id), text);
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM run_cassettes WHERE run_id = $1")
            .bind(meta.run_id)
            .execute(&mut *tx)
            .await
            .context("replacing a run's cassette")?;
        if meta.reason == BASELINE {
            // One baseline per account: its last successful run.
            sqlx::query("DELETE FROM run_cassettes WHERE account_id = $1 AND reason = $2")
                .bind(&meta.account_id)
                .bind(BASELINE)
                .execute(&mut *tx)
                .await
                .context("replacing an account's baseline")?;
        }
        sqlx::query(&format!(
            "INSERT INTO run_cassettes ({COLUMNS}, sealed)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(meta.run_id)
        .bind(&meta.account_id)
        .bind(&meta.practice_id)
        .bind(&meta.connector)
        .bind(&meta.version)
        .bind(&meta.reason)
        .bind(meta.exchanges)
        .bind(text.len() as i64)
        .bind(now_text())
        .bind(sealed)
        .execute(&mut *tx)
        .await
        .context("keeping a run's cassette")?;
        tx.commit().await.context("keeping a run's cassette")?;
        self.apply_cassette_retention(Some((&meta.account_id, meta.run_id)), retention)
            .await
    }

    /// Removes the cassettes past `retention`: too old, then the oldest of `account`
    /// (when given, with the run whose cassette was just kept) past its bytes, then the
    /// oldest of all past the total. The cassette just kept stays even if it alone is
    /// over a bound: the newest evidence is the one an author needs.
    pub async fn apply_cassette_retention(
        &self,
        account: Option<(&str, i64)>,
        retention: Retention,
    ) -> StoreResult<u64> {
        let mut removed = 0;
        if let Some(cutoff) = retention.older_than {
            let cutoff = cutoff.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            removed += sqlx::query("DELETE FROM run_cassettes WHERE recorded_at < $1")
                .bind(cutoff)
                .execute(&self.pool)
                .await
                .context("removing old cassettes")?
                .rows_affected();
        }
        let (account, newest) = match account {
            Some((account, newest)) => (Some(account), Some(newest)),
            None => (None, None),
        };
        if let Some(account) = account {
            removed += self
                .trim_cassettes(Some(account), retention.per_account_bytes, newest)
                .await?;
        }
        removed += self
            .trim_cassettes(None, retention.total_bytes, newest)
            .await?;
        Ok(removed)
    }

    /// Removes the oldest cassettes (of one account or all) but `spare` until they take
    /// at most `bound` bytes.
    async fn trim_cassettes(
        &self,
        account: Option<&str>,
        bound: u64,
        spare: Option<i64>,
    ) -> StoreResult<u64> {
        let total: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM run_cassettes
             WHERE ($1 IS NULL OR account_id = $1)",
        )
        .bind(account)
        .fetch_one(&self.pool)
        .await
        .context("measuring kept cassettes")?;
        let mut over = total - bound.min(i64::MAX as u64) as i64;
        if over <= 0 {
            return Ok(0);
        }
        let rows = sqlx::query(
            "SELECT run_id, bytes FROM run_cassettes WHERE ($1 IS NULL OR account_id = $1)
             ORDER BY recorded_at, run_id",
        )
        .bind(account)
        .fetch_all(&self.pool)
        .await
        .context("listing kept cassettes")?;
        let mut doomed = Vec::new();
        for r in &rows {
            if over <= 0 {
                break;
            }
            let run_id: i64 = r.get("run_id");
            if Some(run_id) == spare {
                continue;
            }
            doomed.push(run_id);
            over -= r.get::<i64, _>("bytes");
        }
        let mut removed = 0;
        for run_id in doomed {
            removed += sqlx::query("DELETE FROM run_cassettes WHERE run_id = $1")
                .bind(run_id)
                .execute(&self.pool)
                .await
                .context("removing a cassette past its bound")?
                .rows_affected();
        }
        Ok(removed)
    }

    /// The run whose cassette is the account's baseline, if it keeps one.
    pub async fn baseline_of(&self, account_id: &str) -> StoreResult<Option<i64>> {
        sqlx::query_scalar(
            "SELECT run_id FROM run_cassettes WHERE account_id = $1 AND reason = $2
             ORDER BY run_id DESC LIMIT 1",
        )
        .bind(account_id)
        .bind(BASELINE)
        .fetch_optional(&self.pool)
        .await
        .context("reading an account's baseline")
    }

    /// What is known of a run's cassette without opening it.
    pub async fn cassette_meta(&self, run_id: i64) -> StoreResult<Option<CassetteMeta>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM run_cassettes WHERE run_id = $1"
        ))
        .bind(run_id)
        .fetch_optional(&self.pool)
        .await
        .context("reading a cassette")?;
        Ok(row.as_ref().map(meta_from_row))
    }

    /// The kept cassettes, of one connector or all, newest first.
    pub async fn cassettes(&self, connector: Option<&str>) -> StoreResult<Vec<CassetteMeta>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM run_cassettes WHERE ($1 IS NULL OR connector = $1)
             ORDER BY recorded_at DESC, run_id DESC"
        ))
        .bind(connector)
        .fetch_all(&self.pool)
        .await
        .context("listing cassettes")?;
        Ok(rows.iter().map(meta_from_row).collect())
    }

    /// A run's cassette, opened: its listing and its text.
    pub async fn open_cassette(&self, run_id: i64) -> StoreResult<Option<(CassetteMeta, String)>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS}, sealed FROM run_cassettes WHERE run_id = $1"
        ))
        .bind(run_id)
        .fetch_optional(&self.pool)
        .await
        .context("reading a cassette")?;
        let Some(row) = row else { return Ok(None) };
        let meta = meta_from_row(&row);
        let sealed: String = row.get("sealed");
        let text = self
            .keyring()?
            .open(&meta.account_id, &binding(run_id), &sealed)
            .map_err(|e| StoreError::Corrupt {
                what: "run cassette",
                detail: e.to_string(),
            })?;
        Ok(Some((meta, text)))
    }

    /// Seals every cassette sealed under a previous key with `keyring`'s current one,
    /// inside a rotation's transaction.
    pub(super) async fn reseal_cassettes(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        keyring: &super::sealed::Keyring,
    ) -> StoreResult<u64> {
        let rows = sqlx::query("SELECT run_id, account_id, sealed FROM run_cassettes")
            .fetch_all(&mut **tx)
            .await
            .context("reading cassettes")?;
        let mut n = 0;
        for r in &rows {
            let sealed: String = r.get("sealed");
            if keyring.is_current(&sealed) {
                continue;
            }
            let (run_id, account): (i64, String) = (r.get("run_id"), r.get("account_id"));
            let text = keyring
                .open(&account, &binding(run_id), &sealed)
                .map_err(|e| StoreError::Corrupt {
                    what: "run cassette",
                    detail: e.to_string(),
                })?;
            sqlx::query("UPDATE run_cassettes SET sealed = $1 WHERE run_id = $2")
                .bind(keyring.seal(&account, &binding(run_id), &text))
                .bind(run_id)
                .execute(&mut **tx)
                .await
                .context("sealing a cassette")?;
            n += 1;
        }
        Ok(n)
    }
}

fn meta_from_row(r: &sqlx::any::AnyRow) -> CassetteMeta {
    CassetteMeta {
        run_id: r.get("run_id"),
        account_id: r.get("account_id"),
        practice_id: r.get("practice_id"),
        connector: r.get("connector"),
        version: r.get("version"),
        reason: r.get("reason"),
        exchanges: r.get("exchanges"),
        bytes: r.get("bytes"),
        recorded_at: r.get("recorded_at"),
    }
}
