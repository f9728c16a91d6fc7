//! Webhook subscriptions: where the change feed goes, how far each got, the batch in
//! flight (retried as the same message), its retry schedule, and which daemon holds it.
//!
//! A daemon claims a due subscription for a while (`claimed_until_ms`); on PostgreSQL
//! the claim skips rows another daemon is claiming (`FOR UPDATE SKIP LOCKED`), so
//! several daemons deliver each batch once per attempt. Secrets are sealed like
//! account secrets.

use sqlx::Row;

use super::error::{DbContext, StoreError, StoreResult};
use super::{now_text, Backend, Store};
use passerelle_model::feed::{ChangeKind, SubscriptionState};

/// A subscription as stored (without its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub url: String,
    /// Only these practices' changes (all when empty).
    pub practices: Vec<String>,
    /// Only these kinds (all when empty).
    pub kinds: Vec<ChangeKind>,
    /// Whether deliveries carry patient fields.
    pub patients: bool,
    /// Whether the URL may be a private or loopback address.
    pub allow_private: bool,
    pub state: SubscriptionState,
    pub delivered_through: i64,
    /// The batch in flight (first and last sequence number), if any.
    pub batch: Option<(i64, i64)>,
    pub attempts: i64,
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
    pub delivered_changes: i64,
    pub created_at: String,
}

/// A subscription to add.
pub struct NewSubscription<'a> {
    pub id: &'a str,
    pub url: &'a str,
    pub practices: &'a [String],
    pub kinds: &'a [ChangeKind],
    pub patients: bool,
    pub allow_private: bool,
    pub secret: &'a str,
    pub delivered_through: i64,
}

/// The keyring binding of a subscription's secret.
fn sealed_as(id: &str) -> String {
    format!("subscription:{id}")
}
const SECRET_NAME: &str = "webhook-secret";

impl Store {
    pub async fn add_subscription_in(
        &self,
        w: &mut super::audit::Write,
        new: &NewSubscription<'_>,
    ) -> StoreResult<()> {
        let secret = self
            .keyring()?
            .seal(&sealed_as(new.id), SECRET_NAME, new.secret);
        let kinds: Vec<&str> = new.kinds.iter().map(|k| k.as_str()).collect();
        sqlx::query(
            "INSERT INTO subscriptions (id, url, practices, kinds, patients, allow_private, secret,
                state, delivered_through, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $9)",
        )
        .bind(new.id)
        .bind(new.url)
        .bind(serde_json::to_string(new.practices).expect("strings serialise"))
        .bind(serde_json::to_string(&kinds).expect("strings serialise"))
        .bind(i64::from(new.patients))
        .bind(i64::from(new.allow_private))
        .bind(secret)
        .bind(new.delivered_through)
        .bind(now_text())
        .execute(&mut *w.tx)
        .await
        .context("adding a subscription")?;
        Ok(())
    }

    pub async fn subscriptions(&self) -> StoreResult<Vec<Subscription>> {
        let rows = sqlx::query("SELECT * FROM subscriptions ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await
            .context("reading subscriptions")?;
        rows.iter().map(subscription_from_row).collect()
    }

    pub async fn subscription(&self, id: &str) -> StoreResult<Option<Subscription>> {
        let row = sqlx::query("SELECT * FROM subscriptions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .context("reading a subscription")?;
        row.as_ref().map(subscription_from_row).transpose()
    }

    /// Whether there was one to remove.
    pub async fn remove_subscription_in(
        &self,
        w: &mut super::audit::Write,
        id: &str,
    ) -> StoreResult<bool> {
        let n = sqlx::query("DELETE FROM subscriptions WHERE id = $1")
            .bind(id)
            .execute(&mut *w.tx)
            .await
            .context("removing a subscription")?
            .rows_affected();
        Ok(n == 1)
    }

    /// A subscription's signing secret, opened. Never print it.
    pub async fn subscription_secret(&self, id: &str) -> StoreResult<String> {
        let stored: String = sqlx::query_scalar("SELECT secret FROM subscriptions WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .context("reading a subscription's secret")?;
        self.keyring()?
            .open(&sealed_as(id), SECRET_NAME, &stored)
            .map_err(|e| StoreError::Corrupt {
                what: "subscription secret",
                detail: e.to_string(),
            })
    }

    /// Claims one active subscription due at `now_ms` for `daemon` until
    /// `now_ms + lease_ms` (none claimed by another daemon meanwhile).
    pub async fn claim_subscription(
        &self,
        daemon: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> StoreResult<Option<Subscription>> {
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE subscriptions SET claimed_by = $1, claimed_until_ms = $2
             WHERE id = (SELECT id FROM subscriptions
                 WHERE state = 'active' AND next_attempt_ms <= $3
                   AND (claimed_until_ms IS NULL OR claimed_until_ms < $3)
                 ORDER BY next_attempt_ms, id LIMIT 1{lock})
             RETURNING *"
        );
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&sql)
            .bind(daemon)
            .bind(now_ms + lease_ms)
            .bind(now_ms)
            .fetch_optional(&mut *tx)
            .await
            .context("claiming a subscription")?;
        tx.commit().await.context("claiming a subscription")?;
        row.as_ref().map(subscription_from_row).transpose()
    }

    /// Records the batch about to be delivered (so a retry, by any daemon, sends the
    /// same message). False if `daemon` no longer holds the subscription.
    pub async fn set_subscription_batch(
        &self,
        id: &str,
        daemon: &str,
        batch: (i64, i64),
    ) -> StoreResult<bool> {
        let n = sqlx::query(
            "UPDATE subscriptions SET batch_from = $3, batch_through = $4
             WHERE id = $1 AND claimed_by = $2 AND state = 'active'",
        )
        .bind(id)
        .bind(daemon)
        .bind(batch.0)
        .bind(batch.1)
        .execute(&self.pool)
        .await
        .context("recording a delivery batch")?
        .rows_affected();
        Ok(n == 1)
    }

    /// The receiver acknowledged everything through `through` (`delivered` changes of
    /// it matched): the position moves on, the batch and the attempts reset, the claim
    /// ends; the subscription is due again at `next_ms` (now after a batch, so the
    /// others due before it go first; a poll later when it had nothing to send). False
    /// if `daemon` no longer held it (its lease ran out).
    pub async fn subscription_delivered(
        &self,
        id: &str,
        daemon: &str,
        through: i64,
        delivered: i64,
        next_ms: i64,
    ) -> StoreResult<bool> {
        let n = sqlx::query(
            "UPDATE subscriptions SET delivered_through = $3, batch_from = NULL,
                batch_through = NULL, attempts = 0, next_attempt_ms = $5, last_error = NULL,
                delivered_changes = delivered_changes + $4, claimed_by = NULL,
                claimed_until_ms = NULL
             WHERE id = $1 AND claimed_by = $2 AND delivered_through <= $3",
        )
        .bind(id)
        .bind(daemon)
        .bind(through)
        .bind(delivered)
        .bind(next_ms)
        .execute(&self.pool)
        .await
        .context("recording a delivery")?
        .rows_affected();
        Ok(n == 1)
    }

    /// An attempt failed: the next is due at `next_attempt_ms`, or the subscription is
    /// dead; the claim ends.
    pub async fn subscription_failed(
        &self,
        id: &str,
        daemon: &str,
        error: &str,
        next_attempt_ms: i64,
        dead: bool,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE subscriptions SET attempts = attempts + 1, last_error = $3,
                next_attempt_ms = $4, state = $5, claimed_by = NULL, claimed_until_ms = NULL
             WHERE id = $1 AND claimed_by = $2",
        )
        .bind(id)
        .bind(daemon)
        .bind(error)
        .bind(next_attempt_ms)
        .bind(if dead {
            SubscriptionState::Dead.as_str()
        } else {
            SubscriptionState::Active.as_str()
        })
        .execute(&self.pool)
        .await
        .context("recording a failed delivery")?;
        Ok(())
    }

    /// Delivers again from `after` (the last sequence number the receiver keeps): the
    /// subscription is active, its batch and attempts reset. False if there is none.
    pub async fn replay_subscription_in(
        &self,
        w: &mut super::audit::Write,
        id: &str,
        after: i64,
    ) -> StoreResult<bool> {
        let n = sqlx::query(
            "UPDATE subscriptions SET delivered_through = $2, batch_from = NULL,
                batch_through = NULL, attempts = 0, next_attempt_ms = 0, last_error = NULL,
                state = 'active', claimed_by = NULL, claimed_until_ms = NULL
             WHERE id = $1",
        )
        .bind(id)
        .bind(after)
        .execute(&mut *w.tx)
        .await
        .context("replaying a subscription")?
        .rows_affected();
        Ok(n == 1)
    }

    /// The lowest position an active subscription has yet to deliver from (retention
    /// keeps the changes after it).
    pub async fn lowest_undelivered(&self) -> StoreResult<Option<i64>> {
        sqlx::query_scalar(
            "SELECT MIN(delivered_through) FROM subscriptions WHERE state = 'active'",
        )
        .fetch_one(&self.pool)
        .await
        .context("reading subscriptions' positions")
    }

    /// Seals every subscription secret not sealed under `keyring`'s current key, in
    /// `tx` (part of [`Store::reseal_secrets`]).
    pub(super) async fn reseal_subscription_secrets(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        keyring: &super::sealed::Keyring,
        first: bool,
    ) -> StoreResult<u64> {
        let rows = sqlx::query("SELECT id, secret FROM subscriptions")
            .fetch_all(&mut **tx)
            .await
            .context("reading subscription secrets")?;
        let mut n = 0;
        for r in &rows {
            let (id, stored): (String, String) = (r.get("id"), r.get("secret"));
            if keyring.is_current(&stored) || (!first && !keyring.is_sealed(&stored)) {
                continue;
            }
            let value = keyring
                .open_legacy(&sealed_as(&id), SECRET_NAME, &stored)
                .map_err(|e| StoreError::Corrupt {
                    what: "subscription secret",
                    detail: e.to_string(),
                })?;
            sqlx::query("UPDATE subscriptions SET secret = $1 WHERE id = $2")
                .bind(keyring.seal(&sealed_as(&id), SECRET_NAME, &value))
                .bind(&id)
                .execute(&mut **tx)
                .await
                .context("sealing a subscription secret")?;
            n += 1;
        }
        Ok(n)
    }
}

fn subscription_from_row(r: &sqlx::any::AnyRow) -> StoreResult<Subscription> {
    let practices: String = r.get("practices");
    let kinds: String = r.get("kinds");
    let kinds: Vec<String> = serde_json::from_str(&kinds).context("corrupt subscription kinds")?;
    let state: String = r.get("state");
    let batch = match (
        r.get::<Option<i64>, _>("batch_from"),
        r.get::<Option<i64>, _>("batch_through"),
    ) {
        (Some(a), Some(b)) => Some((a, b)),
        _ => None,
    };
    Ok(Subscription {
        id: r.get("id"),
        url: r.get("url"),
        practices: serde_json::from_str(&practices).context("corrupt subscription practices")?,
        kinds: kinds.iter().filter_map(|k| ChangeKind::parse(k)).collect(),
        patients: r.get::<i64, _>("patients") != 0,
        allow_private: r.get::<i64, _>("allow_private") != 0,
        state: if state == "dead" {
            SubscriptionState::Dead
        } else {
            SubscriptionState::Active
        },
        delivered_through: r.get("delivered_through"),
        batch,
        attempts: r.get("attempts"),
        next_attempt_ms: r.get("next_attempt_ms"),
        last_error: r.get("last_error"),
        delivered_changes: r.get("delivered_changes"),
        created_at: r.get("created_at"),
    })
}
