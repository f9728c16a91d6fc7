//! Practices, their accounts on platforms, and the accounts' secrets.
//!
//! Secret values are stored apart from settings, are write-only through this API
//! (listing returns names), and are read back only by the runner for substitution.

use std::collections::BTreeMap;

use super::error::{is_unique_violation, DbContext, StoreError, StoreResult};
use sqlx::Row;

use super::audit::Write;
use super::feed::ForgetPatient;
use super::{now_text, Store};

pub use passerelle_model::practice::{Account, Practice};

impl Store {
    pub async fn add_practice(
        &self,
        id: &str,
        name: &str,
        timezone: &str,
    ) -> StoreResult<Practice> {
        let mut w = self.write().await?;
        let practice = self.add_practice_in(&mut w, id, name, timezone).await?;
        w.commit().await?;
        Ok(practice)
    }

    /// [`Self::add_practice`] in an action's transaction.
    pub async fn add_practice_in(
        &self,
        w: &mut Write,
        id: &str,
        name: &str,
        timezone: &str,
    ) -> StoreResult<Practice> {
        let res = sqlx::query(
            "INSERT INTO practices (id, name, timezone, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(name)
        .bind(timezone)
        .bind(now_text())
        .execute(&mut *w.tx)
        .await;
        if let Err(e) = res {
            if is_unique_violation(&e) {
                return Err(StoreError::Conflict(format!(
                    "practice `{id}` already exists"
                )));
            }
            return Err(e).context("adding practice");
        }
        Ok(Practice {
            id: id.into(),
            name: name.into(),
            timezone: timezone.into(),
            schedule: None,
            public: None,
        })
    }

    pub async fn list_practices(&self) -> StoreResult<Vec<Practice>> {
        let rows = sqlx::query(
            "SELECT id, name, timezone, schedule, public_info FROM practices ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(practice_from_row).collect())
    }

    pub async fn practice(&self, id: &str) -> StoreResult<Option<Practice>> {
        let row = sqlx::query(
            "SELECT id, name, timezone, schedule, public_info FROM practices WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(practice_from_row))
    }

    /// Sets (or with None resets to the default) a practice's schedule (validated by the
    /// service).
    pub async fn set_practice_schedule(
        &self,
        id: &str,
        schedule: Option<&str>,
    ) -> StoreResult<Practice> {
        let mut w = self.write().await?;
        self.set_practice_schedule_in(&mut w, id, schedule).await?;
        w.commit().await?;
        self.practice(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no practice `{id}`")))
    }

    /// [`Self::set_practice_schedule`] in an action's transaction.
    pub async fn set_practice_schedule_in(
        &self,
        w: &mut Write,
        id: &str,
        schedule: Option<&str>,
    ) -> StoreResult<()> {
        let n = sqlx::query("UPDATE practices SET schedule = $2 WHERE id = $1")
            .bind(id)
            .bind(schedule.map(str::trim))
            .execute(&mut *w.tx)
            .await
            .context("setting the schedule")?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "no practice `{id}` (see `passerelle practices list`)"
            )));
        }
        Ok(())
    }

    /// Sets (or, with None, clears) an account's own listing, in an action's transaction.
    pub async fn set_account_listing_in(
        &self,
        w: &mut Write,
        id: &str,
        listing: Option<&passerelle_model::public::Listing>,
    ) -> StoreResult<()> {
        set_public_info(w, "accounts", id, listing, "setting the account's listing").await
    }

    /// Sets (or, with None, clears) a practice's public metadata, in an action's
    /// transaction.
    pub async fn set_practice_public_in(
        &self,
        w: &mut Write,
        id: &str,
        public: Option<&passerelle_model::public::PublicInfo>,
    ) -> StoreResult<()> {
        set_public_info(
            w,
            "practices",
            id,
            public,
            "setting the practice's public metadata",
        )
        .await
    }

    pub async fn add_account(
        &self,
        id: &str,
        practice_id: &str,
        connector: &str,
        label: Option<&str>,
        settings: &BTreeMap<String, String>,
    ) -> StoreResult<Account> {
        self.add_account_with_secrets(
            id,
            practice_id,
            connector,
            label,
            settings,
            &BTreeMap::new(),
        )
        .await
    }

    /// Adds an account and its secrets (sealed) in one transaction: all or nothing.
    pub async fn add_account_with_secrets(
        &self,
        id: &str,
        practice_id: &str,
        connector: &str,
        label: Option<&str>,
        settings: &BTreeMap<String, String>,
        secrets: &BTreeMap<String, String>,
    ) -> StoreResult<Account> {
        let mut w = self.write().await?;
        let account = self
            .add_account_in(&mut w, id, practice_id, connector, label, settings, secrets)
            .await?;
        w.commit().await?;
        Ok(account)
    }

    /// [`Self::add_account_with_secrets`] in an action's transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn add_account_in(
        &self,
        w: &mut Write,
        id: &str,
        practice_id: &str,
        connector: &str,
        label: Option<&str>,
        settings: &BTreeMap<String, String>,
        secrets: &BTreeMap<String, String>,
    ) -> StoreResult<Account> {
        let practice = sqlx::query("SELECT 1 AS one FROM practices WHERE id = $1")
            .bind(practice_id)
            .fetch_optional(&mut *w.tx)
            .await
            .context("reading the practice")?;
        if practice.is_none() {
            return Err(StoreError::NotFound(format!(
                "no practice `{practice_id}`: add it first with `passerelle practices add`"
            )));
        }
        let now = now_text();
        let res = sqlx::query(
            "INSERT INTO accounts (id, practice_id, connector, label, settings, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(practice_id)
        .bind(connector)
        .bind(label)
        .bind(serde_json::to_string(settings).expect("settings serialise"))
        .bind(&now)
        .execute(&mut *w.tx)
        .await;
        if let Err(e) = res {
            if is_unique_violation(&e) {
                return Err(StoreError::Conflict(format!(
                    "account `{id}` already exists"
                )));
            }
            return Err(e).context("adding account");
        }
        for (name, value) in secrets {
            let sealed = self.keyring()?.seal(id, name, value);
            sqlx::query(
                "INSERT INTO account_secrets (account_id, name, value, updated_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(id)
            .bind(name)
            .bind(&sealed)
            .bind(&now)
            .execute(&mut *w.tx)
            .await
            .context("storing secret")?;
        }
        Ok(Account {
            id: id.into(),
            practice_id: practice_id.into(),
            connector: connector.into(),
            label: label.map(str::to_string),
            settings: settings.clone(),
            secrets: secrets.keys().cloned().collect(),
            listing: None,
        })
    }

    /// Accounts, optionally of one practice, with their secret names.
    pub async fn list_accounts(&self, practice_id: Option<&str>) -> StoreResult<Vec<Account>> {
        let rows = sqlx::query(
            "SELECT id, practice_id, connector, label, settings, public_info FROM accounts
             WHERE ($1 IS NULL OR practice_id = $1) ORDER BY practice_id, id",
        )
        .bind(practice_id)
        .fetch_all(&self.pool)
        .await?;
        // Secret names in one query, not one per account.
        let secret_rows = sqlx::query(
            "SELECT account_id, name FROM account_secrets
             WHERE ($1 IS NULL OR account_id IN (SELECT id FROM accounts WHERE practice_id = $1))
             ORDER BY account_id, name",
        )
        .bind(practice_id)
        .fetch_all(&self.pool)
        .await?;
        let mut names: std::collections::HashMap<String, Vec<String>> = Default::default();
        for r in &secret_rows {
            names
                .entry(r.get::<String, _>("account_id"))
                .or_default()
                .push(r.get::<String, _>("name"));
        }
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut account = account_from_row(row)?;
            account.secrets = names.remove(&account.id).unwrap_or_default();
            out.push(account);
        }
        Ok(out)
    }

    /// Renames a practice or changes its time zone (None: unchanged).
    pub async fn update_practice(
        &self,
        id: &str,
        name: Option<&str>,
        timezone: Option<&str>,
    ) -> StoreResult<Practice> {
        let mut w = self.write().await?;
        self.update_practice_in(&mut w, id, name, timezone).await?;
        w.commit().await?;
        self.practice(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no practice `{id}`")))
    }

    /// [`Self::update_practice`] in an action's transaction.
    pub async fn update_practice_in(
        &self,
        w: &mut Write,
        id: &str,
        name: Option<&str>,
        timezone: Option<&str>,
    ) -> StoreResult<()> {
        let n = sqlx::query(
            "UPDATE practices SET name = COALESCE($2, name), timezone = COALESCE($3, timezone)
             WHERE id = $1",
        )
        .bind(id)
        .bind(name)
        .bind(timezone)
        .execute(&mut *w.tx)
        .await
        .context("updating the practice")?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("no practice `{id}`")));
        }
        Ok(())
    }

    /// Deletes a practice with everything stored for it: accounts, secrets, sync state,
    /// appointments, slots and runs, in an action's transaction. Returns false if there
    /// was no such practice. The feed keeps its changes with each patient reduced by
    /// `forget`.
    pub async fn delete_practice_in(
        &self,
        w: &mut Write,
        id: &str,
        forget: ForgetPatient,
    ) -> StoreResult<bool> {
        let tx = &mut w.tx;
        super::feed::append_removal(tx, "practice_id = $1", id, &now_text(), forget).await?;
        for table in ["appointments", "slots", "runs"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE practice_id = $1"))
                .bind(id)
                .execute(&mut **tx)
                .await
                .context("deleting the practice's records")?;
        }
        for table in [
            "account_secrets",
            "sync_state",
            "account_pauses",
            "quarantined_items",
            "run_cassettes",
        ] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE account_id IN (SELECT id FROM accounts WHERE practice_id = $1)"
            ))
            .bind(id)
            .execute(&mut **tx)
            .await
            .context("deleting the practice's records")?;
        }
        sqlx::query("DELETE FROM accounts WHERE practice_id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await
            .context("deleting the practice's accounts")?;
        let n = sqlx::query("DELETE FROM practices WHERE id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await
            .context("deleting the practice")?
            .rows_affected();
        Ok(n > 0)
    }

    /// Deletes an account with its secrets, sync state, appointments, slots and runs,
    /// in an action's transaction. Returns false if there was no such account.
    pub async fn delete_account_in(
        &self,
        w: &mut Write,
        id: &str,
        forget: ForgetPatient,
    ) -> StoreResult<bool> {
        let tx = &mut w.tx;
        super::feed::append_removal(tx, "id = $1", id, &now_text(), forget).await?;
        for table in [
            "appointments",
            "slots",
            "runs",
            "account_secrets",
            "sync_state",
            "account_pauses",
            "quarantined_items",
            "run_cassettes",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE account_id = $1"))
                .bind(id)
                .execute(&mut **tx)
                .await
                .context("deleting the account's records")?;
        }
        let n = sqlx::query("DELETE FROM accounts WHERE id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await
            .context("deleting the account")?
            .rows_affected();
        Ok(n > 0)
    }

    /// Sets or clears an account's label, in an action's transaction.
    pub async fn set_account_label_in(
        &self,
        w: &mut Write,
        id: &str,
        label: Option<&str>,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE accounts SET label = $2 WHERE id = $1")
            .bind(id)
            .bind(label)
            .execute(&mut *w.tx)
            .await
            .context("setting the label")?;
        Ok(())
    }

    pub async fn account(&self, id: &str) -> StoreResult<Option<Account>> {
        let row = sqlx::query(
            "SELECT id, practice_id, connector, label, settings, public_info FROM accounts WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Ok(None),
            Some(row) => {
                let mut account = account_from_row(&row)?;
                account.secrets = self.secret_names(&account.id).await?;
                Ok(Some(account))
            }
        }
    }

    /// Replaces an account's settings.
    pub async fn update_account_settings(
        &self,
        account_id: &str,
        settings: &BTreeMap<String, String>,
    ) -> StoreResult<()> {
        let mut w = self.write().await?;
        self.update_account_settings_in(&mut w, account_id, settings)
            .await?;
        w.commit().await
    }

    /// [`Self::update_account_settings`] in an action's transaction.
    pub async fn update_account_settings_in(
        &self,
        w: &mut Write,
        account_id: &str,
        settings: &BTreeMap<String, String>,
    ) -> StoreResult<()> {
        let n = sqlx::query("UPDATE accounts SET settings = $2 WHERE id = $1")
            .bind(account_id)
            .bind(serde_json::to_string(settings).expect("settings serialise"))
            .execute(&mut *w.tx)
            .await
            .context("replacing the settings")?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("no account `{account_id}`")));
        }
        Ok(())
    }
}

pub(super) fn practice_from_row(row: &sqlx::any::AnyRow) -> Practice {
    Practice {
        id: row.get("id"),
        name: row.get("name"),
        timezone: row.get("timezone"),
        schedule: row.get("schedule"),
        // Written by this code from a checked value; an unreadable one is not published.
        public: row
            .get::<Option<String>, _>("public_info")
            .and_then(|j| serde_json::from_str(&j).ok()),
    }
}

fn account_from_row(row: &sqlx::any::AnyRow) -> StoreResult<Account> {
    let settings: String = row.get("settings");
    Ok(Account {
        id: row.get("id"),
        practice_id: row.get("practice_id"),
        connector: row.get("connector"),
        label: row.get("label"),
        settings: serde_json::from_str(&settings).context("corrupt account settings")?,
        secrets: vec![],
        // Written by this code from a checked value; an unreadable one is not published.
        listing: row
            .get::<Option<String>, _>("public_info")
            .and_then(|j| serde_json::from_str(&j).ok()),
    })
}

/// Writes (or clears) the `public_info` column of one row of `table`.
async fn set_public_info(
    w: &mut Write,
    table: &'static str,
    id: &str,
    value: Option<&impl serde::Serialize>,
    doing: &'static str,
) -> StoreResult<()> {
    let json = value.map(|v| serde_json::to_string(v).expect("public metadata serialises"));
    sqlx::query(&format!(
        "UPDATE {table} SET public_info = $2 WHERE id = $1"
    ))
    .bind(id)
    .bind(json)
    .execute(&mut *w.tx)
    .await
    .context(doing)?;
    Ok(())
}
