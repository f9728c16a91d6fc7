//! Installed connector versions: name, version, content hash, where the component file
//! is kept, its manifest, and which version of each connector is active.

use anyhow::{Context, Result};
use serde::Serialize;
use sqlx::Row;

use super::{now_text, Store};

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
}

impl Store {
    /// Records an installed version. Returns false if this exact name+version exists.
    pub async fn add_connector_version(
        &self,
        name: &str,
        version: &str,
        sha256: &str,
        path: &str,
        manifest: &serde_json::Value,
    ) -> Result<bool> {
        let res = sqlx::query(
            "INSERT INTO connector_versions (name, version, sha256, path, manifest, installed_at, active)
             VALUES ($1, $2, $3, $4, $5, $6, 0)",
        )
        .bind(name)
        .bind(version)
        .bind(sha256)
        .bind(path)
        .bind(manifest.to_string())
        .bind(now_text())
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if super::practices::is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e).context("recording connector version"),
        }
    }

    /// Makes `version` the one active version of `name`, atomically.
    pub async fn activate_connector_version(&self, name: &str, version: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE connector_versions SET active = 0 WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query(
            "UPDATE connector_versions SET active = 1 WHERE name = $1 AND version = $2",
        )
        .bind(name)
        .bind(version)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        anyhow::ensure!(
            n == 1,
            "connector `{name}` has no installed version `{version}`"
        );
        tx.commit().await?;
        Ok(())
    }

    pub async fn connector_versions(&self, name: Option<&str>) -> Result<Vec<ConnectorVersion>> {
        let rows = sqlx::query(
            "SELECT name, version, sha256, path, manifest, installed_at, active FROM connector_versions
             WHERE ($1 IS NULL OR name = $1) ORDER BY name, installed_at",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(version_from_row).collect()
    }

    pub async fn active_connector(&self, name: &str) -> Result<Option<ConnectorVersion>> {
        let row = sqlx::query(
            "SELECT name, version, sha256, path, manifest, installed_at, active FROM connector_versions
             WHERE name = $1 AND active = 1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(version_from_row).transpose()
    }
}

fn version_from_row(row: &sqlx::any::AnyRow) -> Result<ConnectorVersion> {
    let manifest: String = row.get("manifest");
    Ok(ConnectorVersion {
        name: row.get("name"),
        version: row.get("version"),
        sha256: row.get("sha256"),
        path: row.get("path"),
        manifest: serde_json::from_str(&manifest).context("corrupt stored manifest")?,
        installed_at: row.get("installed_at"),
        active: row.get::<i64, _>("active") != 0,
    })
}
