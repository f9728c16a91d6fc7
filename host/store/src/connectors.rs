//! Installed connector versions: name, version, content hash, where the component file
//! is kept (and the component's bytes, by content, for daemons elsewhere), its manifest,
//! which version of each connector is active (and since when), which wait for the
//! operator's approval; and the candidates that were refused.

use super::error::{DbContext, StoreError, StoreResult};
use passerelle_model::connector::{Canary, Rejection};
use serde::Serialize;
use sqlx::Row;

use super::audit::Write;
use super::{now_text, Backend, Store};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConnectorVersion {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub path: String,
    /// The manifest as JSON (what `describe()` returned at install).
    pub manifest: serde_json::Value,
    pub installed_at: String,
    pub active: bool,
    /// Set while the version waits for `plugins approve`: what it asks for beyond the
    /// version that was active when it arrived.
    pub pending_approval: Option<String>,
    /// When it was last made active.
    pub activated_at: Option<String>,
}

/// A version being recorded ([`Store::add_connector_version`]).
pub struct NewVersion<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub sha256: &'a str,
    /// This daemon's copy of the file.
    pub path: &'a str,
    pub manifest: &'a serde_json::Value,
    /// The component's bytes (their hash is `sha256`).
    pub component: &'a [u8],
}

async fn insert_component(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    sha256: &str,
    bytes: &[u8],
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO components (sha256, bytes, stored_at) VALUES ($1, $2, $3)
         ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(sha256)
    .bind(bytes)
    .bind(now_text())
    .execute(&mut **tx)
    .await
    .context("storing a component")?;
    Ok(())
}

impl Store {
    /// Records an installed version and its component's bytes, in one transaction.
    /// Returns false if this exact name+version exists.
    pub async fn add_connector_version(
        &self,
        new: &NewVersion<'_>,
        pending_approval: Option<&str>,
    ) -> StoreResult<bool> {
        let mut w = self.write().await?;
        if !self
            .add_connector_version_in(&mut w, new, pending_approval)
            .await?
        {
            return Ok(false);
        }
        w.commit().await?;
        Ok(true)
    }

    /// [`Store::add_connector_version`] in `w` (an audited action's transaction). On
    /// false (this name+version exists) `w` is to be dropped: PostgreSQL has aborted it.
    pub async fn add_connector_version_in(
        &self,
        w: &mut Write,
        new: &NewVersion<'_>,
        pending_approval: Option<&str>,
    ) -> StoreResult<bool> {
        let tx = &mut w.tx;
        insert_component(tx, new.sha256, new.component).await?;
        let res = sqlx::query(
            "INSERT INTO connector_versions (name, version, sha256, path, manifest, installed_at, active, pending_approval)
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7)",
        )
        .bind(new.name)
        .bind(new.version)
        .bind(new.sha256)
        .bind(new.path)
        .bind(new.manifest.to_string())
        .bind(now_text())
        .bind(pending_approval)
        .execute(&mut **tx)
        .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if super::error::is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e).context("recording connector version"),
        }
    }

    /// The bytes of the component whose content hash is `sha256`, if stored.
    pub async fn component(&self, sha256: &str) -> StoreResult<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT bytes FROM components WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await
            .context("reading a component")?;
        Ok(row.map(|r| r.get::<Vec<u8>, _>("bytes")))
    }

    /// Stores a component's bytes under their content hash, unless they are there.
    pub async fn keep_component(&self, sha256: &str, bytes: &[u8]) -> StoreResult<()> {
        // Most often they are: a read, not a write of a megabyte.
        let there = sqlx::query("SELECT 1 AS one FROM components WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await
            .context("reading a component")?;
        if there.is_some() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        insert_component(&mut tx, sha256, bytes).await?;
        tx.commit().await.context("storing a component")?;
        Ok(())
    }

    /// Makes `version` the one active version of `name`, atomically (one transaction:
    /// a run starting at any instant sees exactly one active version). Clears a pending
    /// approval: activating is approving.
    pub async fn activate_connector_version(&self, name: &str, version: &str) -> StoreResult<()> {
        let mut w = self.write().await?;
        self.activate_connector_version_in(&mut w, name, version)
            .await?;
        w.commit().await
    }

    /// [`Store::activate_connector_version`] in `w` (an audited action's transaction).
    pub async fn activate_connector_version_in(
        &self,
        w: &mut Write,
        name: &str,
        version: &str,
    ) -> StoreResult<()> {
        let tx = &mut w.tx;
        sqlx::query("UPDATE connector_versions SET active = 0 WHERE name = $1")
            .bind(name)
            .execute(&mut **tx)
            .await?;
        let n = sqlx::query(
            "UPDATE connector_versions SET active = 1, pending_approval = NULL, activated_at = $3
             WHERE name = $1 AND version = $2",
        )
        .bind(name)
        .bind(version)
        .bind(now_text())
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if n != 1 {
            return Err(StoreError::NotFound(format!(
                "connector `{name}` has no installed version `{version}`"
            )));
        }
        Ok(())
    }

    pub async fn connector_versions(
        &self,
        name: Option<&str>,
    ) -> StoreResult<Vec<ConnectorVersion>> {
        let rows = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM connector_versions
             WHERE ($1 IS NULL OR name = $1) ORDER BY name, installed_at"
        ))
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(version_from_row).collect()
    }

    pub async fn active_connector(&self, name: &str) -> StoreResult<Option<ConnectorVersion>> {
        let row = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM connector_versions
             WHERE name = $1 AND active = 1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(version_from_row).transpose()
    }

    /// Records a refused candidate.
    pub async fn add_rejection(&self, r: &Rejection) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO connector_rejections (at, source, sha256, name, version, kind, reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&r.at)
        .bind(&r.source)
        .bind(&r.sha256)
        .bind(r.name.as_deref())
        .bind(r.version.as_deref())
        .bind(&r.kind)
        .bind(&r.reason)
        .execute(&self.pool)
        .await
        .context("recording a rejected connector")?;
        Ok(())
    }

    /// The latest refused candidates, newest first.
    pub async fn rejections(&self, limit: i64) -> StoreResult<Vec<Rejection>> {
        let rows = sqlx::query(
            "SELECT at, source, sha256, name, version, kind, reason FROM connector_rejections
             ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| Rejection {
                at: row.get("at"),
                source: row.get("source"),
                sha256: row.get("sha256"),
                name: row.get("name"),
                version: row.get("version"),
                kind: row.get("kind"),
                reason: row.get("reason"),
            })
            .collect())
    }
}

const VERSION_COLUMNS: &str =
    "name, version, sha256, path, manifest, installed_at, active, pending_approval, activated_at";

fn version_from_row(row: &sqlx::any::AnyRow) -> StoreResult<ConnectorVersion> {
    let manifest: String = row.get("manifest");
    Ok(ConnectorVersion {
        name: row.get("name"),
        version: row.get("version"),
        sha256: row.get("sha256"),
        path: row.get("path"),
        manifest: serde_json::from_str(&manifest).context("corrupt stored manifest")?,
        installed_at: row.get("installed_at"),
        active: row.get::<i64, _>("active") != 0,
        pending_approval: row.get("pending_approval"),
        activated_at: row.get("activated_at"),
    })
}

impl Store {
    /// Starts (or replaces) the canary of connector `name`.
    pub async fn set_canary(
        &self,
        name: &str,
        version: &str,
        practices: &[String],
    ) -> StoreResult<()> {
        let mut w = self.write().await?;
        self.set_canary_in(&mut w, name, version, practices).await?;
        w.commit().await
    }

    /// [`Store::set_canary`] in `w` (an audited action's transaction).
    pub async fn set_canary_in(
        &self,
        w: &mut Write,
        name: &str,
        version: &str,
        practices: &[String],
    ) -> StoreResult<()> {
        let tx = &mut w.tx;
        sqlx::query("DELETE FROM connector_canaries WHERE name = $1")
            .bind(name)
            .execute(&mut **tx)
            .await?;
        sqlx::query(
            "INSERT INTO connector_canaries (name, version, practices, started_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(name)
        .bind(version)
        .bind(serde_json::to_string(practices).expect("serialisable"))
        .bind(now_text())
        .execute(&mut **tx)
        .await
        .context("recording the canary")?;
        Ok(())
    }

    /// Stops the canary of `name`; false if there was none.
    pub async fn clear_canary(&self, name: &str) -> StoreResult<bool> {
        let n = sqlx::query("DELETE FROM connector_canaries WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// [`Store::clear_canary`] in `w` (an audited action's transaction).
    pub async fn clear_canary_in(&self, w: &mut Write, name: &str) -> StoreResult<bool> {
        let n = sqlx::query("DELETE FROM connector_canaries WHERE name = $1")
            .bind(name)
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// Every running canary.
    pub async fn canaries(&self) -> StoreResult<Vec<Canary>> {
        let rows = sqlx::query(
            "SELECT name, version, practices, started_at FROM connector_canaries ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let practices: String = row.get("practices");
                Ok(Canary {
                    name: row.get("name"),
                    version: row.get("version"),
                    practices: serde_json::from_str(&practices).context("corrupt canary")?,
                    started_at: row.get("started_at"),
                })
            })
            .collect()
    }

    /// One version of `name`.
    pub async fn connector_version(
        &self,
        name: &str,
        version: &str,
    ) -> StoreResult<Option<ConnectorVersion>> {
        let row = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM connector_versions WHERE name = $1 AND version = $2"
        ))
        .bind(name)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(version_from_row).transpose()
    }

    /// The version of `name` that runs for `practice_id` ([`chosen_version`]).
    pub async fn connector_for(
        &self,
        name: &str,
        practice_id: &str,
    ) -> StoreResult<Option<ConnectorVersion>> {
        let row = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM connector_versions WHERE name = $1 AND version = {}",
            chosen_version(self.backend, "version", "$1", "$2")
        ))
        .bind(name)
        .bind(practice_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(version_from_row).transpose()
    }
}

/// The rule that picks the version a run runs on, as an SQL expression giving its
/// `column` (`version`, `sha256`) for the connector and practice named by the SQL
/// expressions `connector` and `practice`: the connector's canary when the practice is
/// in the canary's set, else its active version; NULL if it has neither. Used by
/// [`Store::connector_for`] and by the claim that starts a daemon's run.
pub(crate) fn chosen_version(
    backend: Backend,
    column: &str,
    connector: &str,
    practice: &str,
) -> String {
    let in_canary = match backend {
        Backend::Sqlite => {
            format!("EXISTS (SELECT 1 FROM json_each(c.practices) m WHERE m.value = {practice})")
        }
        Backend::Postgres => format!("jsonb_exists(c.practices::jsonb, {practice})"),
    };
    format!(
        "COALESCE(
            (SELECT v.{column} FROM connector_versions v
                JOIN connector_canaries c ON c.name = v.name AND c.version = v.version
                WHERE v.name = {connector} AND {in_canary}),
            (SELECT v.{column} FROM connector_versions v
                WHERE v.name = {connector} AND v.active = 1))"
    )
}
