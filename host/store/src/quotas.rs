//! Per-account quotas and the disk guard, checked inside each commit that adds rows,
//! before it commits: an account past its appointments, slots or quarantined bytes, or
//! a SQLite database whose disk has less free space than `min_free_disk_mib`, gets
//! [`QuotaExceeded`] and nothing of the commit is written. A commit that adds nothing
//! costs no statement; one that does, one count per kind it added.

use std::path::Path;

use super::error::{DbContext, StoreError, StoreResult};
use super::{Backend, Store};
use passerelle_model::records::{CommitCounts, Scope};
pub use passerelle_model::{QuotaExceeded, Quotas};
use sqlx::{Any, Transaction};

/// Free space of the file system holding `path`, in MiB.
fn free_mib(path: &Path) -> std::io::Result<u64> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let stat = rustix::fs::statvfs(dir)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize) / (1024 * 1024))
}

impl Store {
    /// The quotas and disk guard its commits enforce.
    pub fn with_quotas(mut self, quotas: Quotas) -> Store {
        self.quotas = quotas;
        self
    }

    pub fn quotas(&self) -> Quotas {
        self.quotas
    }

    /// Refuses the commit in `tx` if what it added takes `scope`'s account past a quota
    /// or the database's disk below its guard.
    pub(crate) async fn check_quotas(
        &self,
        tx: &mut Transaction<'_, Any>,
        scope: &Scope,
        added: &CommitCounts,
    ) -> StoreResult<()> {
        let grows =
            added.appointments_added > 0 || added.slots_written > 0 || added.quarantined > 0;
        if !grows {
            return Ok(());
        }
        let q = self.quotas;
        if let (Backend::Sqlite, Some(file)) = (self.backend, &self.sqlite_file) {
            let free = free_mib(file).map_err(|e| {
                StoreError::Invalid(format!(
                    "cannot read the free space of {}: {e}",
                    file.display()
                ))
            })?;
            if free < q.min_free_disk_mib {
                return Err(QuotaExceeded(format!(
                    "the database's disk has {free} MiB free, below quotas.min_free_disk_mib ({}): account {} stores nothing more until space is freed",
                    q.min_free_disk_mib, scope.account_id
                ))
                .into());
            }
        }
        let bytes = match self.backend {
            Backend::Sqlite => "LENGTH(CAST(item AS BLOB))",
            Backend::Postgres => "OCTET_LENGTH(item)",
        };
        let checks = [
            (
                added.appointments_added > 0,
                "SELECT COUNT(*) FROM appointments WHERE account_id = $1".to_string(),
                q.appointments,
                "appointments",
                "quotas.appointments",
            ),
            (
                added.slots_written > 0,
                "SELECT COUNT(*) FROM slots WHERE account_id = $1".to_string(),
                q.slots,
                "slots",
                "quotas.slots",
            ),
            (
                added.quarantined > 0,
                format!(
                    "SELECT CAST(COALESCE(SUM({bytes}), 0) / 1024 AS BIGINT) FROM quarantined_items WHERE account_id = $1"
                ),
                q.quarantined_kib,
                "KiB of quarantined items",
                "quotas.quarantined_kib",
            ),
        ];
        for (needed, sql, limit, what, setting) in checks {
            if !needed {
                continue;
            }
            let stored: i64 = sqlx::query_scalar(&sql)
                .bind(&scope.account_id)
                .fetch_one(&mut **tx)
                .await
                .context("counting an account's rows against its quota")?;
            if u64::try_from(stored).unwrap_or(0) > limit {
                return Err(QuotaExceeded(format!(
                    "account {} would store {stored} {what}, more than {setting} ({limit})",
                    scope.account_id
                ))
                .into());
            }
        }
        Ok(())
    }
}
