//! Account secrets: stored sealed with the keyring (never in plain text once a
//! database is sealed), read back open only for a run's HTTP capability, removed, and
//! sealed again under a new key (rotation) in one transaction.

use std::collections::BTreeMap;

use sqlx::Row;

use super::audit::Write;
use super::error::{DbContext, StoreError, StoreResult};
use super::{now_text, Store};

impl Store {
    /// Removes one secret; false if the account had no such secret.
    pub async fn delete_secret_in(
        &self,
        w: &mut Write,
        account_id: &str,
        name: &str,
    ) -> StoreResult<bool> {
        let n = sqlx::query("DELETE FROM account_secrets WHERE account_id = $1 AND name = $2")
            .bind(account_id)
            .bind(name)
            .execute(&mut *w.tx)
            .await
            .context("deleting the secret")?
            .rows_affected();
        Ok(n > 0)
    }

    /// Seals and opens secrets with `keyring` from now on.
    pub fn with_keyring(mut self, keyring: std::sync::Arc<super::sealed::Keyring>) -> Store {
        self.keyring = Some(keyring);
        self
    }

    pub(super) fn keyring(&self) -> StoreResult<&super::sealed::Keyring> {
        self.keyring
            .as_deref()
            .ok_or_else(|| StoreError::Invalid("this store has no secrets key".into()))
    }

    /// Sets (or replaces) one secret of an account, sealed.
    pub async fn set_secret(&self, account_id: &str, name: &str, value: &str) -> StoreResult<()> {
        let mut w = self.write().await?;
        self.set_secret_in(&mut w, account_id, name, value).await?;
        w.commit().await
    }

    /// [`Self::set_secret`] in an action's transaction.
    pub async fn set_secret_in(
        &self,
        w: &mut Write,
        account_id: &str,
        name: &str,
        value: &str,
    ) -> StoreResult<()> {
        let there = sqlx::query("SELECT 1 AS one FROM accounts WHERE id = $1")
            .bind(account_id)
            .fetch_optional(&mut *w.tx)
            .await
            .context("reading the account")?;
        if there.is_none() {
            return Err(StoreError::NotFound(format!("no account `{account_id}`")));
        }
        let value = self.keyring()?.seal(account_id, name, value);
        sqlx::query(
            "INSERT INTO account_secrets (account_id, name, value, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (account_id, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(account_id)
        .bind(name)
        .bind(&value)
        .bind(now_text())
        .execute(&mut *w.tx)
        .await
        .context("storing secret")?;
        Ok(())
    }

    pub async fn secret_names(&self, account_id: &str) -> StoreResult<Vec<String>> {
        let rows =
            sqlx::query("SELECT name FROM account_secrets WHERE account_id = $1 ORDER BY name")
                .bind(account_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(|r| r.get::<String, _>("name")).collect())
    }

    /// Secret values, opened, for the runner's substitution only. Never print the result.
    pub async fn secret_values(&self, account_id: &str) -> StoreResult<BTreeMap<String, String>> {
        let keyring = self.keyring()?;
        let rows = sqlx::query("SELECT name, value FROM account_secrets WHERE account_id = $1")
            .bind(account_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let name: String = r.get("name");
                let value = keyring
                    .open(account_id, &name, &r.get::<String, _>("value"))
                    .map_err(|e| StoreError::Corrupt {
                        what: "account secret",
                        detail: e.to_string(),
                    })?;
                Ok((name, value))
            })
            .collect()
    }

    /// Seals every secret sealed under a previous key with `keyring`'s current one (a
    /// rotation), in one transaction: all or none. Plain rows are left as they are
    /// (refused when read). Returns how many.
    pub async fn reseal_secrets(&self, keyring: &super::sealed::Keyring) -> StoreResult<u64> {
        self.reseal(keyring, false).await
    }

    /// On opening: the first time, seals the plain secrets from before sealing existed
    /// and records that the database's secrets are sealed; after that, a plain secret
    /// was not written by passerelle: counted, left alone, refused when read.
    pub async fn seal_plain_secrets(
        &self,
        keyring: &super::sealed::Keyring,
    ) -> StoreResult<PlainSecrets> {
        let sealed_before: Option<String> =
            sqlx::query_scalar("SELECT value FROM store_meta WHERE key = 'secrets_sealed'")
                .fetch_optional(&self.pool)
                .await
                .context("reading when secrets were sealed")?;
        let plain = self.plain_secrets().await?;
        Ok(match (sealed_before, plain) {
            (None, _) => PlainSecrets::SealedNow(self.reseal(keyring, true).await?),
            (Some(_), 0) => PlainSecrets::None,
            (Some(_), n) => PlainSecrets::Refused(n),
        })
    }

    async fn reseal(&self, keyring: &super::sealed::Keyring, first: bool) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query("SELECT account_id, name, value FROM account_secrets")
            .fetch_all(&mut *tx)
            .await
            .context("reading secrets")?;
        let mut n = 0;
        for r in &rows {
            let stored: String = r.get("value");
            if keyring.is_current(&stored) || (!first && !keyring.is_sealed(&stored)) {
                continue;
            }
            let (account, name): (String, String) = (r.get("account_id"), r.get("name"));
            let value =
                keyring
                    .open_legacy(&account, &name, &stored)
                    .map_err(|e| StoreError::Corrupt {
                        what: "account secret",
                        detail: e.to_string(),
                    })?;
            sqlx::query(
                "UPDATE account_secrets SET value = $1 WHERE account_id = $2 AND name = $3",
            )
            .bind(keyring.seal(&account, &name, &value))
            .bind(&account)
            .bind(&name)
            .execute(&mut *tx)
            .await
            .context("sealing a secret")?;
            n += 1;
        }
        n += Store::reseal_subscription_secrets(&mut tx, keyring, first).await?;
        if !first {
            n += Store::reseal_cassettes(&mut tx, keyring).await?;
        }
        if first {
            sqlx::query(
                "INSERT INTO store_meta (key, value) VALUES ('secrets_sealed', $1)
                 ON CONFLICT (key) DO NOTHING",
            )
            .bind(now_text())
            .execute(&mut *tx)
            .await
            .context("recording that secrets are sealed")?;
        }
        tx.commit().await.context("sealing secrets")?;
        Ok(n)
    }

    /// How many stored secrets are plain text.
    pub async fn plain_secrets(&self) -> StoreResult<i64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM account_secrets WHERE value NOT LIKE 'sealed1:%')
                  + (SELECT COUNT(*) FROM subscriptions WHERE secret NOT LIKE 'sealed1:%')",
        )
        .fetch_one(&self.pool)
        .await
        .context("counting plain secrets")?;
        Ok(n)
    }
}

/// What opening a store found of plain-text secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlainSecrets {
    /// None: every secret is sealed.
    None,
    /// The database's first sealing: this many secrets sealed now.
    SealedNow(u64),
    /// This many plain secrets in a database already sealed: refused.
    Refused(i64),
}
