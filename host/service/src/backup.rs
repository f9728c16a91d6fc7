//! Backup and restore of a data directory's embedded database: `passerelle backup`
//! writes a consistent copy while daemons run (installed components included: the
//! database keeps them by content), never the secrets key; `passerelle restore` makes a
//! new data directory of one — the copy checked, migrated if it is older, the audit
//! trail verified and every sealed secret opened with the key the operator put there.
//! A PostgreSQL database is backed up with `pg_dump` and restored with `pg_restore`
//! (docs/operations.md); `restore --check` then checks it as a restore does.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use super::{ServiceError, ServiceResult};
use crate::app::{create_private_dir, Passerelle};
use crate::config::Config;
use passerelle_store::backup::Totals;
use passerelle_store::sealed::Keyring;

/// What a backup wrote.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    pub file: PathBuf,
    pub bytes: u64,
    /// What the copy holds (read from the copy).
    pub totals: Totals,
}

/// What a restore made.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub data_dir: PathBuf,
    pub totals: Totals,
    /// The audit trail's length and head, intact.
    pub audit_entries: u64,
    pub audit_head: String,
    /// Sealed secrets opened with the key (all of them, or the restore fails).
    pub secrets: usize,
}

impl Passerelle {
    /// Writes a consistent copy of the database to `out` (a new file, mode 0600).
    pub async fn backup(&self, out: &Path) -> ServiceResult<BackupReport> {
        if out.exists() {
            return Err(ServiceError::invalid(format!(
                "{} exists: a backup is never written over a file",
                out.display()
            )));
        }
        let partial = out.with_extension("partial");
        let _ = std::fs::remove_file(&partial);
        self.store.backup_into(&partial).await?;
        restrict(&partial)?;
        let totals = match passerelle_store::backup::totals_of(&partial).await {
            Ok(totals) => totals,
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e.into());
            }
        };
        std::fs::rename(&partial, out).with_context(|| format!("writing {}", out.display()))?;
        let bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
        self.audit(
            "backup.create",
            &out.display().to_string(),
            serde_json::json!({"bytes": bytes, "totals": totals}),
        )
        .await?;
        tracing::info!(file = %out.display(), bytes, "backup written");
        Ok(BackupReport {
            file: out.to_path_buf(),
            bytes,
            totals,
        })
    }
}

/// Makes `data_dir` (new, or without a database) from the backup `file`.
pub async fn restore(file: &Path, data_dir: &Path, config: Config) -> ServiceResult<RestoreReport> {
    if config.database_url.is_some() {
        return Err(ServiceError::invalid(
            "the configuration names a database URL: a PostgreSQL database is restored with pg_restore (docs/operations.md); `passerelle restore` makes an embedded SQLite database",
        ));
    }
    let db = data_dir.join("passerelle.db");
    if db.exists() {
        return Err(ServiceError::conflict(
            "conflict",
            format!(
                "{} already holds a database: restore into a new directory",
                data_dir.display()
            ),
        ));
    }
    if !file.is_file() {
        return Err(ServiceError::not_found(format!(
            "{}: no such backup",
            file.display()
        )));
    }
    // The secrets and the audit trail's tags are sealed under the source's key: without
    // it a new key would be made and nothing would open.
    if Keyring::configured(data_dir).is_none() {
        return Err(ServiceError::invalid(format!(
            "no secrets key for {}: the backup's secrets and audit trail are sealed under its source's key, which a backup never holds; copy the source's {} into {} (mode 0600) or set PASSERELLE_SECRETS_KEY, then restore again",
            data_dir.display(),
            Keyring::KEY_FILE,
            data_dir.display()
        )));
    }
    create_private_dir(data_dir)?;
    let restoring = data_dir.join("passerelle.db.restoring");
    let _ = std::fs::remove_file(&restoring);
    std::fs::copy(file, &restoring)
        .with_context(|| format!("copying {} into {}", file.display(), data_dir.display()))?;
    restrict(&restoring)?;
    if let Err(e) = passerelle_store::backup::check_copy(&restoring).await {
        let _ = std::fs::remove_file(&restoring);
        return Err(e.into());
    }
    std::fs::rename(&restoring, &db).with_context(|| format!("writing {}", db.display()))?;
    // Opening migrates an older copy to this version's schema.
    let app = Passerelle::open(data_dir, config).await?;
    let report = app.check_restored(&file.display().to_string()).await;
    app.store.close().await;
    report
}

/// `restore --check`: opens the database `config` names with `data_dir`'s key (which
/// must be there already: a new one would open nothing) and checks it as a restore
/// does.
pub async fn check(data_dir: &Path, config: Config) -> ServiceResult<RestoreReport> {
    if Keyring::configured(data_dir).is_none() {
        return Err(ServiceError::invalid(format!(
            "no secrets key for {}: the database's secrets and audit trail are sealed under its source's key; copy the source's {} into {} (mode 0600) or set PASSERELLE_SECRETS_KEY, then check again",
            data_dir.display(),
            Keyring::KEY_FILE,
            data_dir.display()
        )));
    }
    let source = match &config.database_url {
        Some(url) => passerelle_store::redact_url(url),
        None => {
            let db = data_dir.join("passerelle.db");
            if !db.exists() {
                return Err(ServiceError::not_found(format!(
                    "{} holds no database to check",
                    data_dir.display()
                )));
            }
            db.display().to_string()
        }
    };
    let app = Passerelle::open(data_dir, config).await?;
    let report = app.check_restored(&source).await;
    app.store.close().await;
    report
}

impl Passerelle {
    /// The checks of a restore, on the database this host opened (the copy `restore`
    /// just made, or a PostgreSQL database `pg_restore` made, named by the
    /// configuration): the audit trail verifies under this key and every sealed secret
    /// opens with it. Audited as `backup.restore` with what the database holds.
    pub async fn check_restored(&self, source: &str) -> ServiceResult<RestoreReport> {
        let audit = self.verify_audit().await?;
        if !audit.problems.is_empty() {
            return Err(ServiceError::invalid(format!(
                "the restored audit trail does not verify under this key ({}): is it the source's key?",
                audit.problems.join("; ")
            )));
        }
        let mut secrets = 0;
        for account in self.store.list_accounts(None).await? {
            if account.secrets.is_empty() {
                continue;
            }
            let opened = self.store.secret_values(&account.id).await.map_err(|e| {
                ServiceError::invalid(format!(
                    "a secret of account `{}` does not open with this key ({e}): is it the source's key?",
                    account.id
                ))
            })?;
            secrets += opened.len();
        }
        let totals = self.store.totals().await?;
        self.audit(
            "backup.restore",
            source,
            serde_json::json!({"totals": totals}),
        )
        .await?;
        Ok(RestoreReport {
            data_dir: self.data_dir.clone(),
            totals,
            audit_entries: audit.entries,
            audit_head: format!("{} {}", audit.head_seq, audit.head_hash),
            secrets,
        })
    }
}

/// Owner-only permissions on a copy of the database.
fn restrict(path: &Path) -> ServiceResult<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {}", path.display()))?;
    }
    Ok(())
}
